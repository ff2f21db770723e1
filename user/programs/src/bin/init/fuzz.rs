//! Init's fuzz mode: runs the system-call fuzzer (the `fuzz` program) on
//! a quota of its own and then checks that everything came back: the
//! quota's pages, the free frames (less what the kernel heap grew by, which
//! it keeps), the kernel heap's bytes in use and the page-table frames,
//! once every process the fuzzer started has ended.

use core::mem::ManuallyDrop;
use rt::println;
use rt::process::Exit;
use rt::quota::Quota;

/// Pages the fuzzer and its workers may hold at once.
const FUZZ_PAGES: usize = 4096;
/// How long the processes the fuzzer left (children of killed workers)
/// get to end.
const SETTLE_NS: u64 = 5_000_000_000;

/// Runs the fuzzer; 0 if it ran to its end and nothing was lost.
pub fn run() -> i32 {
    let seed = crate::option("fuzz.seed").unwrap_or("1");
    let calls = crate::option("fuzz.calls").unwrap_or("20000");
    let only = crate::option("fuzz.only")
        .map(|list| alloc::format!(" only={list}"))
        .unwrap_or_default();
    let arguments = alloc::format!("run seed={seed} calls={calls}{only}");
    let measure = || rt::process::memory().ok();
    // A run of no calls first, so that what the kernel keeps for init
    // itself (its capability table grown to hold the quota and the
    // fuzzer's handles) is kept before the figures are taken.
    if fuzz_once(&alloc::format!("run seed={seed} calls=0")) != 0 {
        return 1;
    }
    let Some(before) = measure() else {
        println!("fuzz: no memory figures");
        return 1;
    };
    let status = fuzz_once(&arguments);
    let Some(after) = measure() else {
        println!("fuzz: no memory figures");
        return 1;
    };
    let page = before.page_size.max(1);
    let heap_growth = after.heap_total.saturating_sub(before.heap_total) / page;
    println!(
        "fuzz: frames free {} before, {} after (the kernel heap took {heap_growth}); kernel heap {} bytes used before, {} after; table frames {} before, {} after",
        before.free_frames,
        after.free_frames,
        before.heap_used,
        after.heap_used,
        before.table_frames,
        after.table_frames
    );
    let lost = before.free_frames != after.free_frames + heap_growth
        || before.heap_used != after.heap_used
        || before.table_frames != after.table_frames;
    if lost {
        println!("fuzz: LEAK: memory did not all come back");
        return 1;
    }
    println!("fuzz: no leaks");
    status
}

/// Runs the fuzzer with `arguments` on a quota of its own, until it and
/// everything it started have ended; 0 if it finished and its quota came
/// back empty.
fn fuzz_once(arguments: &str) -> i32 {
    let init_quota = ManuallyDrop::new(Quota::from_handle(abi::INIT_QUOTA));
    let quota = match init_quota.split(FUZZ_PAGES) {
        Ok(quota) => quota,
        Err(e) => {
            println!("fuzz: no quota: {e}");
            return 1;
        }
    };
    let exit = quota
        .start("fuzz", arguments, &[])
        .and_then(|fuzzer| fuzzer.wait());
    let status = match exit {
        Ok(Exit::Code(0)) => 0,
        Ok(exit) => {
            println!("fuzz: the fuzzer {exit}");
            1
        }
        Err(e) => {
            println!("fuzz: cannot run the fuzzer: {e}");
            1
        }
    };
    if !settle() {
        println!("fuzz: processes the fuzzer started are still running");
        return 1;
    }
    match quota.usage() {
        Ok(usage) if usage.used == 0 => status,
        Ok(usage) => {
            println!(
                "fuzz: LEAK: the fuzzer's quota still has {} pages",
                usage.used
            );
            1
        }
        Err(e) => {
            println!("fuzz: quota: {e}");
            1
        }
    }
}

/// Waits until init is the only process left; false if others remain.
fn settle() -> bool {
    let deadline = rt::sys::time_ns() + SETTLE_NS;
    loop {
        match rt::process::processes() {
            Ok(processes) if processes.len() == 1 => return true,
            _ if rt::sys::time_ns() > deadline => return false,
            _ => rt::sys::sleep_ns(10_000_000),
        }
    }
}
