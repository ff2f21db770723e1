//! The system-call fuzzer. `fuzz run seed=S calls=N` starts workers one
//! after another (`fuzz worker ...`), each making up to `WORKER_CALLS`
//! random system calls with random and adversarial arguments, until `N`
//! calls have been made; it prints the seed first, so a run reproduces
//! (each worker's seed follows from it), and a summary last.
//!
//! A worker is disposable: it may unmap its own stack, start threads at
//! random addresses or exit; the kernel must survive whatever it does,
//! and a worker that faults is reported and the next one starts. One that
//! blocks past `WORKER_TIMEOUT_NS` (a receive with nobody to send, say)
//! is killed. Each worker counts its calls in a page its parent shares
//! with it, so calls made before a crash are counted too.
//!
//! Arguments come from pools: small numbers, sizes, the worker's own
//! handles (live, deleted, never issued), pointers into a scratch buffer
//! (aligned, misaligned, crossing its end), unmapped and read-only user
//! addresses, kernel addresses, and values at the edges of the word.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use rt::ipc::{Memory, Notification};
use rt::println;
use rt::process::Exit;

rt::entry!(main);

/// Calls one worker makes at most.
const WORKER_CALLS: u64 = 2_000;
/// How long a worker may take (guest time): a few times what 2,000 calls
/// take.
const WORKER_TIMEOUT_NS: u64 = 300_000_000;
/// The scratch buffer's size: the valid pointers point into it.
const SCRATCH: usize = 3 * 4096;
/// The IPC timeout every call but `ipc_timeout` itself runs under, so a
/// receive or wait with no partner ends.
const CALL_TIMEOUT_NS: u64 = 200_000;

/// xorshift64*: small, and the same sequence from the same seed on both
/// architectures.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Random {
        Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn option(arguments: &str, key: &str) -> Option<u64> {
    arguments
        .split_ascii_whitespace()
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// The call numbers `only=A,B,...` limits the workers to (all if none).
fn only(arguments: &str) -> Vec<usize> {
    arguments
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("only="))
        .map(|list| list.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

fn main(arguments: &str) -> i32 {
    let seed = option(arguments, "seed").unwrap_or(1);
    let only = only(arguments);
    match arguments.split_ascii_whitespace().next() {
        Some("run") => run(seed, option(arguments, "calls").unwrap_or(20_000), &only),
        Some("worker") => worker(
            seed,
            option(arguments, "calls").unwrap_or(WORKER_CALLS),
            &only,
        ),
        _ => {
            println!("fuzz: usage: fuzz run seed=S calls=N");
            2
        }
    }
}

/// What the workers' ends were.
#[derive(Default)]
struct Tally {
    calls: u64,
    workers: u64,
    finished: u64,
    faulted: u64,
    exited: u64,
    stuck: u64,
}

fn run(seed: u64, calls: u64, only: &[usize]) -> i32 {
    println!("fuzz: seed {seed}, {calls} calls");
    let only = match only.is_empty() {
        true => alloc::string::String::new(),
        false => {
            let list: Vec<alloc::string::String> = only.iter().map(|n| format!("{n}")).collect();
            format!(" only={}", list.join(","))
        }
    };
    let mut tally = Tally::default();
    let started = rt::sys::time_ns();
    while tally.calls < calls {
        let worker_seed = seed.wrapping_mul(1_000_003).wrapping_add(tally.workers);
        let wanted = WORKER_CALLS.min(calls - tally.calls);
        match one_worker(worker_seed, wanted, &only, &mut tally) {
            Ok(()) => {}
            Err(e) => {
                println!("fuzz: worker {} (seed {worker_seed}): {e}", tally.workers);
                return 1;
            }
        }
        tally.workers += 1;
    }
    let ms = (rt::sys::time_ns() - started) / 1_000_000;
    println!(
        "fuzz: done: {} calls in {} workers ({} finished, {} faulted, {} exited early, {} stuck and killed) in {ms} ms",
        tally.calls, tally.workers, tally.finished, tally.faulted, tally.exited, tally.stuck
    );
    0
}

/// Runs one worker to its end; counts its calls and how it ended.
fn one_worker(
    seed: u64,
    calls: u64,
    only: &str,
    tally: &mut Tally,
) -> Result<(), alloc::string::String> {
    let counter = Memory::create(4096, false).map_err(|e| format!("counter: {e}"))?;
    let mapping = counter.map(true).map_err(|e| format!("map counter: {e}"))?;
    // SAFETY: the page is mapped here, writable, until unmapped below;
    // the worker changes it only through atomic adds.
    let count = unsafe { &*(mapping.address as *const AtomicU64) };
    let done = Notification::create().map_err(|e| format!("notification: {e}"))?;
    let arguments = format!("worker seed={seed} calls={calls}{only}");
    let child = rt::process::start("fuzz", &arguments, &[counter.handle()])
        .map_err(|e| format!("start: {e}"))?;
    if child.watch(&done, 1).is_err() {
        // It has ended already.
        let _ = done.signal(1);
    }
    let _ = rt::ipc::set_timeout(Some(core::time::Duration::from_nanos(WORKER_TIMEOUT_NS)));
    let ended = done.wait();
    let _ = rt::ipc::set_timeout(None);
    if ended.is_err() {
        let _ = child.kill();
    }
    let exit = child.wait().map_err(|e| format!("wait: {e}"))?;
    // What a worker wrote into its counter through a system call (it may)
    // is not a count: never more than asked for.
    tally.calls += count.load(Ordering::Relaxed).min(calls);
    let _ = rt::ipc::memory_unmap(mapping.address);
    match exit {
        Exit::Code(0) => tally.finished += 1,
        Exit::Killed if ended.is_err() => tally.stuck += 1,
        Exit::Fault { .. } => tally.faulted += 1,
        _ => tally.exited += 1,
    }
    Ok(())
}

/// Values a worker draws its arguments from.
struct Pools {
    handles: Vec<usize>,
    scratch: usize,
    kernel: usize,
}

impl Pools {
    fn argument(&self, random: &mut Random) -> usize {
        const SMALL: [usize; 18] = [
            0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 255, 256, 4095, 4096, 4097,
        ];
        let top = usize::MAX;
        match random.below(10) {
            0 | 1 => random.pick(&SMALL),
            2 | 3 => match random.chance(80) && !self.handles.is_empty() {
                true => random.pick(&self.handles),
                false => random.below(80) as usize,
            },
            4 => self.scratch + random.below(SCRATCH as u64 + 64) as usize,
            5 => random.pick(&[
                self.scratch + SCRATCH - 3,
                self.scratch + 1,
                self.scratch + SCRATCH,
                abi::layout::ENTRY,
                abi::layout::ENTRY + 4093,
                0x1000,
                abi::layout::ANON_START + 0x0100_0000,
            ]),
            6 => self.kernel.wrapping_add(random.below(0x10000) as usize),
            7 => random.pick(&[top, top - 1, top - 4095, top / 2, top / 2 + 1, 1 << 31]),
            8 => random.below(1 << 22) as usize,
            _ => random.next() as usize,
        }
    }
}

/// The worker: makes up to `calls` random system calls, counting each in
/// the shared page (handle 0). Returns 0 if it made them all.
fn worker(seed: u64, calls: u64, only: &[usize]) -> i32 {
    let counter = Memory::from_handle(abi::initial_handle(0));
    let Ok(mapping) = counter.map(true) else {
        return 3;
    };
    // SAFETY: mapped just above, writable; its parent reads it.
    let count = unsafe { &*(mapping.address as *const AtomicU64) };
    let mut random = Random::new(seed);
    let Ok(scratch) = rt::sys::map(0, SCRATCH, abi::PROT_READ | abi::PROT_WRITE) else {
        return 4;
    };
    let kernel = rt::process::system().map_or(0, |s| s.kernel_address as usize);
    let mut pools = Pools {
        handles: Vec::new(),
        scratch,
        kernel,
    };
    // Some objects of each kind to name, and a handle deleted.
    for _ in 0..2 {
        if let Ok(endpoint) = rt::ipc::Endpoint::create() {
            pools.handles.push(endpoint.into_handle() as usize);
        }
        if let Ok(notification) = Notification::create() {
            pools.handles.push(notification.into_handle() as usize);
        }
    }
    if let Ok(memory) = Memory::create(4096, random.chance(50)) {
        pools.handles.push(memory.into_handle() as usize);
    }
    if let Ok(gone) = Notification::create() {
        pools.handles.push(gone.handle() as usize);
    }
    // Programs that end at once whatever their arguments (a fuzzer or an
    // init started with words that happen to mean something would not).
    let names = ["hello", "no-such-program"];
    let syscalls = abi::Syscall::ALL.len() as u64;
    for _ in 0..calls {
        let number = match random.below(20) {
            _ if !only.is_empty() => random.pick(only),
            0 => random.pick(&[
                usize::MAX,
                syscalls as usize,
                syscalls as usize + 1,
                1 << 20,
            ]),
            1 => random.next() as usize,
            _ => random.below(syscalls) as usize,
        };
        let mut args = [0usize; 6];
        for arg in &mut args {
            *arg = pools.argument(&mut random);
        }
        if !shape(number, &mut args, &mut random, &pools, &names) {
            continue;
        }
        if number != abi::Syscall::IpcTimeout as usize {
            let _ = rt::arch::syscall(
                abi::Syscall::IpcTimeout as usize,
                [CALL_TIMEOUT_NS as usize, 0, 0, 0, 0, 0],
            );
        }
        count.fetch_add(1, Ordering::Relaxed);
        let (first, second, _) = rt::arch::syscall_message(number, args);
        // What looks like a new handle joins the pool (`spawn` and
        // `thread_spawn` return theirs second).
        if abi::decode(first).is_ok() && pools.handles.len() < 64 {
            for value in [first, second] {
                if (1..256).contains(&value) && !pools.handles.contains(&value) {
                    pools.handles.push(value);
                }
            }
        }
    }
    0
}

/// A thread's entry that ends the thread.
extern "C" fn short_lived_thread(_: usize) -> ! {
    rt::sys::thread_exit()
}

/// Adjusts the arguments of the calls that would end the worker or stall
/// it for good so that they rarely do; returns whether to make the call.
fn shape(
    number: usize,
    args: &mut [usize; 6],
    random: &mut Random,
    pools: &Pools,
    names: &[&str],
) -> bool {
    use abi::Syscall;
    let is = |call: Syscall| number == call as usize;
    if is(Syscall::Exit) || is(Syscall::ThreadExit) {
        return random.chance(1);
    }
    if is(Syscall::Sleep) && random.chance(99) {
        args[0] %= 100_000;
        args[1] = 0;
    }
    if is(Syscall::IpcTimeout) && random.chance(90) {
        args[0] = args[0] % 1_000_000 + 1;
        args[1] = 0;
    }
    if is(Syscall::Read) {
        return random.chance(1);
    }
    if is(Syscall::Write) && random.chance(95) {
        // Mostly the scratch buffer: a random pointer into the program's
        // text would print its bytes on the console.
        args[0] = pools.scratch + args[0] % SCRATCH;
        args[1] %= 64;
    }
    if is(Syscall::ThreadSpawn) && random.chance(85) {
        // A thread that ends at once, on the scratch buffer's last bytes
        // as a stack: most threads then start, run and end, rather than
        // fault at a random address (which ends the worker).
        args[0] = short_lived_thread as *const () as usize;
        args[1] = (pools.scratch + SCRATCH) & !15;
    }
    if is(Syscall::Spawn) && random.chance(50) {
        // A real program, so that children start, run and end.
        let name = random.pick(names);
        // SAFETY: the scratch buffer is mapped, writable and ours.
        let buffer = unsafe { core::slice::from_raw_parts_mut(pools.scratch as *mut u8, 64) };
        buffer[..name.len()].copy_from_slice(name.as_bytes());
        args[0] = pools.scratch;
        args[1] = name.len();
        // Mostly quietly: `hello` otherwise greets on the console.
        if random.chance(90) {
            buffer[32..37].copy_from_slice(b"quiet");
            args[2] = pools.scratch + 32;
            args[3] = 5;
        } else {
            args[3] = args[3].min(8);
        }
    }
    true
}
