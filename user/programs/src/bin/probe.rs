//! Does one thing a test asks for, chosen by its arguments, and reports
//! through its exit status: the user-level tests run it as a child.
//!
//! - `exit N`: exits with status N.
//! - `wait-none`: waits for any child, having none; exits 0 if refused
//!   with `NoChildren`.
//! - `driver-view ARGS`: started as a driver is (`protocols::driver`),
//!   checks what it holds: exactly the capabilities a driver is given
//!   (10 if not), registers only within its device's (11), no claim of
//!   another line (12), no handle past those given (13).
//! - `spin DEADLINE_NS [PRIORITY]`: (at that priority) computes until the
//!   monotonic clock reaches the deadline; exits 0 if it made progress and
//!   was preempted along the way (as the kernel counts it), 1 if it never
//!   ran before the deadline, 2 if it was never preempted, 3 if the
//!   priority was refused, 4 if its process record could not be read.
//! - `fault KIND [ADDRESS]`: faults on purpose (null-read, ro-write,
//!   kernel-read ADDRESS, undefined, privileged, divide, exec-data).
//! - `memory PAGES`: maps and touches PAGES pages in this thread and as
//!   many in a second thread; exits 0 if the free frame count dropped by
//!   at least that much.
//! - `threads N`: N threads add to a shared counter; exits 0 if all ran.
//! - `hog`: maps and touches memory until the per-process limit (exits 0)
//!   or until the kernel kills it for want of memory.
//! - `power-off`: tries to power off; exits 0 if refused for lack of
//!   privilege.
//! - `sleep MS`: sleeps, then exits 0.
//! - `ipc-echo`: serves calls on the endpoint passed first: answers label
//!   L and words (a, b, c, d) with L + 1 and (d, c, b, badge); a call
//!   labelled `QUIT` ends it (status 0).
//! - `ipc-idle MS`: holds the endpoint passed, receives nothing, sleeps,
//!   exits 0.
//! - `ipc-vanish`: receives one call and exits without replying.
//! - `ipc-hoard N`: creates N endpoints, N notifications and N memory
//!   objects (every other one contiguous, each mapped), copies each, and
//!   exits holding them all.
//! - `payload-echo`: serves calls with payloads on the endpoint passed
//!   first, answering each with its payload reversed; a call labelled
//!   `QUIT` ends it.
//! - `cap-echo`: serves calls on the endpoint passed first, each carrying
//!   a capability, and replies with it (moved back); a call without one
//!   ends it.
//! - `cap-receiver N`: receives N calls on the endpoint passed first, each
//!   carrying a notification capability, signals it with the message's
//!   first word, and replies with the capability's rights; exits 0.
//! - `notify-echo`: waits on the notification passed first and signals
//!   the second each time, until woken with bit 63 (or 31) set.
//! - `shared-memory PAGES`: maps the memory object passed first; checks
//!   that page n starts with n + 1 (as the parent wrote), writes n + 100
//!   after it; exits 0 if all was as expected.

#![no_std]
#![no_main]

extern crate alloc;

use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering};
use rt::ipc::{Endpoint, Message, Notification};
use rt::{arch, sys};

/// The label that ends `ipc-echo`.
pub const QUIT: usize = 0xdead;

fn ipc_echo() -> i32 {
    let endpoint = Endpoint::from_handle(abi::initial_handle(0));
    let mut request = match endpoint.recv() {
        Ok(message) => message,
        Err(_) => return 1,
    };
    loop {
        if request.label == QUIT {
            return i32::from(rt::ipc::reply(Message::default()).is_err());
        }
        let [_, b, c, d] = request.words;
        let answer = Message::new(request.label + 1, [d, c, b, request.badge]);
        request = match endpoint.reply_recv(answer) {
            Ok(message) => message,
            Err(_) => return 2,
        };
    }
}

fn payload_echo() -> i32 {
    let endpoint = Endpoint::from_handle(abi::initial_handle(0));
    let Ok(mut buffer) = rt::ipc::IpcBuffer::register() else {
        return 1;
    };
    let mut request = endpoint.recv();
    loop {
        let Ok(message) = request else {
            return 2;
        };
        if message.plain_label() == QUIT {
            return i32::from(rt::ipc::reply(Message::default()).is_err());
        }
        let len = message.payload().unwrap_or(0);
        buffer.bytes()[..len].reverse();
        request = endpoint.reply_recv(Message::new(0, [0; 4]).with_payload(len));
    }
}

fn cap_echo() -> i32 {
    let endpoint = Endpoint::from_handle(abi::initial_handle(0));
    let mut request = endpoint.recv();
    loop {
        let Ok(message) = request else {
            return 1;
        };
        let Some(handle) = message.capability() else {
            return i32::from(rt::ipc::reply(Message::default()).is_err());
        };
        request = endpoint.reply_recv(Message::new(0, [0; 4]).carrying(handle, true));
    }
}

fn cap_receiver(calls: usize) -> i32 {
    let endpoint = Endpoint::from_handle(abi::initial_handle(0));
    for _ in 0..calls {
        let Ok(request) = endpoint.recv() else {
            return 1;
        };
        let Some(handle) = request.capability() else {
            return 2;
        };
        let rights = rt::ipc::cap_info(handle).map_or(0, |info| info.rights);
        let notification = Notification::from_handle(handle);
        if notification.signal(request.words[0]).is_err() {
            return 3;
        }
        if rt::ipc::reply(Message::new(0, [rights as usize, 0, 0, 0])).is_err() {
            return 4;
        }
    }
    0
}

/// The bit that ends `notify-echo`.
pub const NOTIFY_QUIT: usize = 1 << (usize::BITS - 1);

fn notify_echo() -> i32 {
    let (ping, pong) = (
        Notification::from_handle(abi::initial_handle(0)),
        Notification::from_handle(abi::initial_handle(1)),
    );
    loop {
        match ping.wait() {
            Ok(bits) if bits & NOTIFY_QUIT != 0 => return 0,
            Ok(_) => {
                if pong.signal(1).is_err() {
                    return 2;
                }
            }
            Err(_) => return 1,
        }
    }
}

fn shared_memory(pages: usize) -> i32 {
    let memory = rt::ipc::Memory::from_handle(abi::initial_handle(0));
    let Ok(mapping) = memory.map(true) else {
        return 1;
    };
    for page in 0..pages {
        let at = (mapping.address + page * 4096) as *mut usize;
        // SAFETY: the kernel mapped the object's pages here, writable.
        unsafe {
            if at.read_volatile() != page + 1 {
                return 2;
            }
            at.add(1).write_volatile(page + 100);
        }
    }
    0
}

/// Makes `count` rounds of objects and keeps them all, for the kernel to
/// free when the process ends. Given an interrupt line (and, as its
/// handles, the interrupt control and a device's registers), it also
/// claims the line, maps the registers and keeps a thread.
fn ipc_hoard(count: usize, irq: Option<u32>) -> i32 {
    if let Some(irq) = irq {
        let control = rt::device::IrqControl::from_handle(abi::initial_handle(0));
        let registers = rt::device::DeviceMemory::from_handle(abi::initial_handle(1));
        let Ok(notification) = Notification::create() else {
            return 5;
        };
        let Ok(handler) = control.claim(irq, &notification, 1) else {
            return 6;
        };
        let Ok(device) = registers.memory(0, 4096) else {
            return 7;
        };
        if device.map(false).is_err() {
            return 8;
        }
        let Ok(thread) = rt::thread::start(|| {
            loop {
                sys::sleep_ns(1_000_000_000);
            }
        }) else {
            return 9;
        };
        for handle in [
            control.into_handle(),
            registers.into_handle(),
            notification.into_handle(),
            handler.into_handle(),
            device.into_handle(),
        ] {
            let _ = handle;
        }
        core::mem::forget(thread);
    }
    for round in 0..count {
        let (Ok(endpoint), Ok(notification)) = (Endpoint::create(), Notification::create()) else {
            return 1;
        };
        let (Ok(e), Ok(n)) = (
            endpoint.copy(abi::RIGHT_SEND, 9),
            notification.copy(abi::RIGHT_SIGNAL, 0),
        ) else {
            return 2;
        };
        let Ok(memory) = rt::ipc::Memory::create(2 * 4096, round % 2 == 0) else {
            return 3;
        };
        if memory.map(true).is_err() {
            return 4;
        }
        // Kept: the kernel must free them when the process ends.
        for handle in [
            endpoint.into_handle(),
            notification.into_handle(),
            e.into_handle(),
            n.into_handle(),
            memory.into_handle(),
        ] {
            let _ = handle;
        }
    }
    0
}

rt::entry!(main);

fn main(arguments: &str) -> i32 {
    let mut words = arguments.split_whitespace();
    let command = words.next().unwrap_or("");
    let number = |word: Option<&str>| -> u64 {
        let word = word.unwrap_or("0");
        match word.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap_or(0),
            None => word.parse().unwrap_or(0),
        }
    };
    match command {
        "exit" => number(words.next()) as i32,
        "driver-view" => driver_view(arguments.trim_start_matches("driver-view").trim()),
        "wait-none" => i32::from(rt::process::wait_any() != Err(abi::Error::NoChildren)),
        "spin" => {
            let deadline = number(words.next());
            if let Some(priority) = words.next()
                && sys::set_priority(number(Some(priority)) as usize).is_err()
            {
                return 3;
            }
            spin(deadline)
        }
        "fault" => fault(words.next().unwrap_or(""), number(words.next()) as usize),
        "memory" => memory(number(words.next()) as usize),
        "threads" => threads(number(words.next()) as usize),
        "hog" => {
            // Below the parent, so that it starts every hog before any
            // gets far: then all take memory together and one runs out,
            // however much RAM there is.
            if sys::set_priority(1).is_err() {
                return 3;
            }
            hog()
        }
        // The error's number: the test knows which it expects.
        "power-off" => sys::power_off(abi::initial_handle(0), 0) as i32,
        "sleep" => {
            rt::time::sleep(core::time::Duration::from_millis(number(words.next())));
            0
        }
        "ipc-echo" => ipc_echo(),
        "ipc-idle" => {
            let _endpoint = Endpoint::from_handle(abi::initial_handle(0));
            rt::time::sleep(core::time::Duration::from_millis(number(words.next())));
            0
        }
        "ipc-vanish" => match Endpoint::from_handle(abi::initial_handle(0)).recv() {
            Ok(_) => 0,
            Err(_) => 1,
        },
        "ipc-hoard" => ipc_hoard(
            number(words.next()) as usize,
            words.next().map(|word| number(Some(word)) as u32),
        ),
        "shared-memory" => shared_memory(number(words.next()) as usize),
        "notify-echo" => notify_echo(),
        "cap-receiver" => cap_receiver(number(words.next()) as usize),
        "cap-echo" => cap_echo(),
        "payload-echo" => payload_echo(),
        "irq-hold" => irq_hold(number(words.next()) as u32),
        "ipc-sit" => ipc_sit(number(words.next())),
        "names-call" => names_call(words.next().unwrap_or("")),
        "blk-acks" => blk_acks(number(words.next()), number(words.next()) as u32),
        "quota-take" => quota_take(number(words.next()) as usize, number(words.next()) as usize),
        _ => {
            rt::println!("probe: unknown request {arguments:?}");
            100
        }
    }
}

/// How often the kernel has switched this process out while it was ready
/// to run. Counted by the kernel, so a stall of the emulator (which stops
/// the clock's readers but switches nothing) is not taken for preemption.
fn preemptions() -> Option<u64> {
    let me = sys::process_id();
    rt::process::processes()
        .ok()?
        .into_iter()
        .find(|p| p.pid == me)
        .map(|p| p.preemptions)
}

fn spin(deadline: u64) -> i32 {
    let Some(before) = preemptions() else {
        return 4;
    };
    let mut iterations = 0u64;
    let mut now = sys::time_ns();
    if now >= deadline {
        return 1;
    }
    while now < deadline {
        for _ in 0..1000 {
            iterations = black_box(iterations + 1);
        }
        now = sys::time_ns();
    }
    let Some(after) = preemptions() else {
        return 4;
    };
    match (iterations, after - before) {
        (0, _) => 1,
        (_, 0) => 2,
        _ => 0,
    }
}

/// A constant in read-only data.
static READ_ONLY: u32 = 0x600d_f00d;

fn fault(kind: &str, address: usize) -> i32 {
    match kind {
        "null-read" => {
            // SAFETY: deliberately invalid; the kernel ends the process.
            black_box(unsafe { (black_box(0usize) as *const u32).read_volatile() });
        }
        "ro-write" => {
            let target = black_box(&READ_ONLY as *const u32 as *mut u32);
            rt::println!("probe: writing {target:p}");
            // SAFETY: deliberately invalid; the kernel ends the process.
            unsafe { target.write_volatile(0) };
        }
        "kernel-read" => {
            // A byte: the address need not be aligned.
            // SAFETY: deliberately invalid; the kernel ends the process.
            black_box(unsafe { (black_box(address) as *const u8).read_volatile() });
        }
        "undefined" => arch::undefined_instruction(),
        "privileged" => arch::privileged_instruction(),
        "divide" => {
            black_box(arch::hardware_divide(1, black_box(0)));
            // Where the hardware does not trap, Rust's own check panics.
            black_box(1 / black_box(0usize));
        }
        "exec-data" => {
            let code: &[u8; 4] = black_box(&[0; 4]);
            let data = alloc::boxed::Box::new(*code);
            // SAFETY: deliberately invalid: heap pages are never
            // executable, so the kernel ends the process.
            let function: extern "C" fn() =
                unsafe { core::mem::transmute(&*data as *const [u8; 4]) };
            function();
        }
        _ => return 100,
    }
    // Reaching here means the fault did not happen.
    99
}

fn free_frames() -> u64 {
    rt::process::memory().map_or(0, |m| m.free_frames)
}

fn touch(pages: usize) -> bool {
    let Ok(start) = sys::map(0, pages * 4096, abi::PROT_READ | abi::PROT_WRITE) else {
        return false;
    };
    for page in 0..pages {
        // SAFETY: the kernel mapped these pages for this process.
        unsafe { ((start + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    true
}

/// Within its quota: maps and touches `pages` of anonymous memory, then
/// makes a memory object of `object_pages`. Exits with 0, or with the
/// number of the first error and 100 more for the object's.
fn quota_take(pages: usize, object_pages: usize) -> i32 {
    if pages > 0 {
        let start = match sys::map(0, pages * 4096, abi::PROT_READ | abi::PROT_WRITE) {
            Ok(start) => start,
            Err(error) => return error as i32,
        };
        for page in 0..pages {
            // SAFETY: the kernel mapped these pages for this process.
            unsafe { ((start + page * 4096) as *mut u8).write_volatile(1) };
        }
    }
    if object_pages > 0
        && let Err(error) = rt::ipc::Memory::create(object_pages * 4096, false)
    {
        return 100 + error as i32;
    }
    0
}

fn memory(pages: usize) -> i32 {
    let before = free_frames();
    if !touch(pages) {
        return 1;
    }
    static DONE: AtomicUsize = AtomicUsize::new(0);
    if rt::thread::spawn(move || {
        if touch(pages) {
            DONE.store(1, Ordering::Release);
        } else {
            DONE.store(2, Ordering::Release);
        }
    })
    .is_err()
    {
        return 2;
    }
    while DONE.load(Ordering::Acquire) == 0 {
        sys::yield_now();
    }
    if DONE.load(Ordering::Acquire) != 1 {
        return 3;
    }
    if before - free_frames() < 2 * pages as u64 {
        return 4;
    }
    0
}

fn threads(count: usize) -> i32 {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    for _ in 0..count {
        if rt::thread::spawn(|| {
            for _ in 0..100 {
                COUNTER.fetch_add(1, Ordering::Relaxed);
                sys::yield_now();
            }
        })
        .is_err()
        {
            return 1;
        }
    }
    let deadline = sys::time_ns() + 5_000_000_000;
    while COUNTER.load(Ordering::Relaxed) < count * 100 {
        if sys::time_ns() > deadline {
            return 2;
        }
        sys::yield_now();
    }
    0
}

/// Takes memory until refused: exits with 0 at the per-process limit, 2
/// when its quota ran out first (unless a fault finds no frame first, and
/// the kernel kills it).
fn hog() -> i32 {
    // Small chunks, so a hog gets within a chunk of the limit.
    const CHUNK_BYTES: usize = 256 * 4096;
    let mut mapped = 0;
    loop {
        match sys::map(0, CHUNK_BYTES, abi::PROT_READ | abi::PROT_WRITE) {
            Ok(start) => {
                for page in (0..CHUNK_BYTES).step_by(4096) {
                    // SAFETY: mapped above for this process.
                    unsafe { ((start + page) as *mut u8).write_volatile(1) };
                }
                mapped += CHUNK_BYTES;
            }
            // Its stack and heap are anonymous memory too: within a chunk
            // and a megabyte of the limit, the limit refused it.
            Err(rt::Error::LimitReached)
                if mapped + CHUNK_BYTES + (1 << 20) > abi::MAX_ANONYMOUS_BYTES =>
            {
                return 0;
            }
            Err(rt::Error::LimitReached) => return 2,
            Err(_) => return 1,
        }
    }
}

/// A driver that claims line `irq` with the interrupt control it was
/// given and waits for its interrupts until it is killed.
fn irq_hold(irq: u32) -> i32 {
    let control = rt::device::IrqControl::from_handle(abi::initial_handle(0));
    let Ok(notification) = rt::ipc::Notification::create() else {
        return 1;
    };
    let Ok(_handler) = control.claim(irq, &notification, 1) else {
        return 2;
    };
    loop {
        if notification.wait().is_err() {
            return 3;
        }
    }
}

/// A slow server: takes one call, answers it after `ms` milliseconds,
/// then echoes the label of the next call at once.
fn ipc_sit(ms: u64) -> i32 {
    let endpoint = Endpoint::from_handle(abi::initial_handle(0));
    let Ok(first) = endpoint.recv() else {
        return 1;
    };
    rt::time::sleep(core::time::Duration::from_millis(ms));
    if rt::ipc::reply(Message::new(first.plain_label(), [0; 4])).is_err() {
        return 2;
    }
    let Ok(second) = endpoint.recv() else {
        return 3;
    };
    i32::from(rt::ipc::reply(Message::new(second.plain_label(), second.words)).is_err()) * 4
}

/// A client of the name service (its capability passed first): looks
/// `name` up and calls it as `ipc-echo` answers; registering must be
/// refused to it.
/// Writes `count` sectors of run `run` from `CHECK_FIRST_SECTOR` on, one
/// request each, and prints `ack N` once the block service has answered
/// the write of sector `N` (which it does once the device completed it):
/// the host kills the machine at some ack and checks the image.
fn blk_acks(run: u64, count: u32) -> i32 {
    use protocols::block::{CHECK_FIRST_SECTOR, SECTOR_SIZE, check_sector};
    let Ok(mut names) = rt::names::Names::from_handle(abi::initial_handle(0)) else {
        return 1;
    };
    let Ok(server) = names.lookup_alive("blk", 2_000_000_000) else {
        return 2;
    };
    let Ok(mut disk) = rt::block::Block::open(&server, SECTOR_SIZE) else {
        return 3;
    };
    for number in 0..count {
        disk.buffer()[..SECTOR_SIZE].copy_from_slice(&check_sector(run, number));
        if disk
            .write(CHECK_FIRST_SECTOR + number as u64, 1, 0)
            .is_err()
        {
            return 4;
        }
        rt::println!("ack {number}");
    }
    0
}

fn names_call(name: &str) -> i32 {
    let Ok(mut names) = rt::names::Names::from_handle(abi::initial_handle(0)) else {
        return 1;
    };
    let Ok(server) = names.lookup(name) else {
        return 2;
    };
    match server.call(Message::new(40, [1, 2, 3, 4])) {
        Ok(reply) if reply.plain_label() == 41 && reply.words[..3] == [4, 3, 2] => {}
        _ => return 3,
    }
    match names.register("mine", &server) {
        Err(rt::Error::PermissionDenied) => 0,
        _ => 4,
    }
}

fn driver_view(arguments: &str) -> i32 {
    use protocols::driver::{self, DriverArgs};
    let Some(args) = DriverArgs::parse(arguments) else {
        return 2;
    };
    // Every live handle: any slot, the first generations.
    let mut held = 0;
    for index in 0..abi::MAX_CAPABILITIES as u32 {
        for generation in 0..4u32 {
            let handle = generation << abi::HANDLE_INDEX_BITS | index;
            if handle != 0 && rt::ipc::cap_info(handle).is_ok() {
                held += 1;
            }
        }
    }
    let given = args.resource_handle(args.resources.len());
    if held != given {
        return 10;
    }
    let Ok(devices) = rt::process::devices() else {
        return 3;
    };
    let first = devices[args.resources[0]];
    let registers =
        rt::device::DeviceMemory::from_handle(abi::initial_handle(args.resource_handle(0)));
    let pages = (first.base % 4096 + first.size).div_ceil(4096) as usize;
    if registers.memory(0, pages * 4096 + 4096).is_ok()
        || registers.memory(pages * 4096, 4096).is_ok()
    {
        return 11;
    }
    if args.irq {
        let control = rt::device::IrqControl::from_handle(abi::initial_handle(driver::IRQ_CONTROL));
        let Ok(notification) = rt::ipc::Notification::create() else {
            return 3;
        };
        let other = if first.irq == 0 { 1 } else { first.irq - 1 };
        if control.claim(other, &notification, 1).err() != Some(abi::Error::PermissionDenied) {
            return 12;
        }
    }
    let past = rt::device::DeviceMemory::from_handle(abi::initial_handle(given));
    if past.memory(0, 4096).err() != Some(abi::Error::InvalidHandle) {
        return 13;
    }
    core::mem::forget(past);
    0
}
