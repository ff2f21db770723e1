//! The user-level benchmarks: what system calls and switches cost as a
//! program sees them. Each metric is printed on one line for
//! `cargo xtask bench`, in the kernel benchmarks' format with the
//! `ubench:` marker:
//!
//! ```text
//! ubench: metric null_syscall instructions 71 71 72 ...
//! ```
//!
//! Samples are per operation: the cycle counter (guest instructions under
//! `-icount shift=0`) and the monotonic clock in ns, each over a batch,
//! less the cost of measuring an empty batch.

use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, Ordering};
use rt::{arch, print, println, sys};

/// Samples per metric, and operations per sample.
const SAMPLES: usize = 51;
const BATCH: u64 = 64;
/// Process start and exit is costly; fewer, smaller samples.
const PROCESS_SAMPLES: usize = 15;
const PROCESS_BATCH: u64 = 4;

struct Metric {
    name: &'static str,
    cycles: Vec<u64>,
    ns: Vec<u64>,
}

/// Per-operation cycles and ns of `op`, over `samples` batches of `batch`.
fn sample(samples: usize, batch: u64, mut op: impl FnMut()) -> (Vec<u64>, Vec<u64>) {
    for _ in 0..batch {
        op();
    }
    let (mut cycles, mut ns) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let (t0, c0) = (sys::time_ns(), arch::cycle_counter());
        for _ in 0..batch {
            op();
        }
        let (c1, t1) = (arch::cycle_counter(), sys::time_ns());
        cycles.push(arch::cycles_between(c0, c1));
        ns.push(t1 - t0);
    }
    (
        cycles.into_iter().map(|c| c / batch).collect(),
        ns.into_iter().map(|n| n / batch).collect(),
    )
}

fn print_metric(name: &str, unit: &str, samples: &[u64]) {
    print!("ubench: metric {name} {unit}");
    for value in samples {
        print!(" {value}");
    }
    println!();
}

/// Subtracts the cheapest empty batch from every sample.
fn net(samples: Vec<u64>, floor: u64) -> Vec<u64> {
    samples
        .into_iter()
        .map(|s| s.saturating_sub(floor))
        .collect()
}

/// Two threads of this process take turns: each yield switches to the
/// other, so every yield is one thread switch.
fn yield_ping_pong() -> (Vec<u64>, Vec<u64>) {
    static STOP: AtomicBool = AtomicBool::new(false);
    STOP.store(false, Ordering::Relaxed);
    let partner = rt::thread::spawn(|| {
        while !STOP.load(Ordering::Relaxed) {
            sys::yield_now();
        }
    });
    if partner.is_err() {
        return (Vec::new(), Vec::new());
    }
    // Each measured yield of this thread brings one of the partner's:
    // two switches per operation.
    let (cycles, ns) = sample(SAMPLES, BATCH, sys::yield_now);
    STOP.store(true, Ordering::Relaxed);
    sys::yield_now();
    (
        cycles.into_iter().map(|c| c / 2).collect(),
        ns.into_iter().map(|n| n / 2).collect(),
    )
}

/// Touches fresh anonymous pages, one write each: every write takes a
/// page fault that maps a zeroed frame.
fn anonymous_page_faults() -> (Vec<u64>, Vec<u64>) {
    const FAULT_BATCH: u64 = 16;
    let pages = (SAMPLES as u64 + 1) * FAULT_BATCH;
    let len = pages as usize * 4096;
    let Ok(start) = sys::map(0, len, abi::PROT_READ | abi::PROT_WRITE) else {
        return (Vec::new(), Vec::new());
    };
    let mut next = start;
    let result = sample(SAMPLES, FAULT_BATCH, || {
        // SAFETY: the pages were mapped above for this process; each is
        // written once, in order.
        unsafe { (next as *mut u8).write_volatile(1) };
        next += 4096;
    });
    let _ = sys::unmap(start, len);
    result
}

/// The label that ends the probe's `ipc-echo` server.
const QUIT: usize = 0xdead;

/// `call` round trips to a server: in another process (`probe ipc-echo`)
/// or in a thread of this one, each looping in `reply_recv`.
fn ipc_round_trips(other_process: bool) -> (Vec<u64>, Vec<u64>) {
    use rt::ipc::{Endpoint, Message};
    let Ok(endpoint) = Endpoint::create() else {
        return (Vec::new(), Vec::new());
    };
    let server = if other_process {
        match rt::process::start("probe", "ipc-echo", &[endpoint.handle()]) {
            Ok(child) => Some(child),
            Err(_) => return (Vec::new(), Vec::new()),
        }
    } else {
        let handle = endpoint.handle();
        let started = rt::thread::spawn(move || {
            let endpoint = core::mem::ManuallyDrop::new(Endpoint::from_handle(handle));
            let mut request = endpoint.recv();
            while let Ok(message) = request {
                if message.label == QUIT {
                    let _ = rt::ipc::reply(Message::default());
                    return;
                }
                request = endpoint.reply_recv(Message::new(message.label + 1, message.words));
            }
        });
        if started.is_err() {
            return (Vec::new(), Vec::new());
        }
        None
    };
    let message = Message::new(1, [1, 2, 3, 4]);
    // The reply's label is kept, as the null call's result is: keeping
    // the whole message would add the harness's stores of it to each
    // round trip.
    let result = sample(SAMPLES, BATCH, || {
        black_box(endpoint.call(message).map(|reply| reply.label).ok());
    });
    let _ = endpoint.call(Message::new(QUIT, [0; 4]));
    if let Some(child) = server {
        let _ = child.wait();
    }
    result
}

/// Calls with a 1 KiB payload to a server in another process that
/// answers with the payload reversed: two 1 KiB copies per round trip.
fn long_round_trips() -> (Vec<u64>, Vec<u64>) {
    use rt::ipc::{Endpoint, IpcBuffer, Message};
    let (Ok(endpoint), Ok(_buffer)) = (Endpoint::create(), IpcBuffer::register()) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(child) = rt::process::start("probe", "payload-echo", &[endpoint.handle()]) else {
        return (Vec::new(), Vec::new());
    };
    let message = Message::new(1, [0; 4]).with_payload(1024);
    let result = sample(SAMPLES, BATCH, || {
        black_box(endpoint.call(black_box(message)).ok());
    });
    let _ = endpoint.call(Message::new(QUIT, [0; 4]));
    let _ = child.wait();
    result
}

/// A call carrying a capability (moved) to a server in another process,
/// whose reply moves it back.
fn cap_transfer_round_trips() -> (Vec<u64>, Vec<u64>) {
    use rt::ipc::{Endpoint, Message, Notification};
    let (Ok(endpoint), Ok(notification)) = (Endpoint::create(), Notification::create()) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(child) = rt::process::start("probe", "cap-echo", &[endpoint.handle()]) else {
        return (Vec::new(), Vec::new());
    };
    let mut travelling = notification.into_handle();
    let result = sample(SAMPLES, BATCH, || {
        if let Ok(reply) = endpoint.call(Message::new(1, [0; 4]).carrying(travelling, true))
            && let Some(handle) = reply.capability()
        {
            travelling = handle;
        }
    });
    let _ = endpoint.call(Message::new(QUIT, [0; 4]));
    let _ = child.wait();
    let _ = rt::ipc::cap_delete(travelling);
    result
}

/// A notification signalled here wakes a waiter in another process,
/// which signals one back: each sample is two signal-to-wake trips.
fn notification_ping_pong() -> (Vec<u64>, Vec<u64>) {
    use rt::ipc::Notification;
    let (Ok(ping), Ok(pong)) = (Notification::create(), Notification::create()) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(child) = rt::process::start("probe", "notify-echo", &[ping.handle(), pong.handle()])
    else {
        return (Vec::new(), Vec::new());
    };
    let (cycles, ns) = sample(SAMPLES, BATCH, || {
        let _ = ping.signal(1);
        let _ = pong.wait();
    });
    let _ = ping.signal(1 << (usize::BITS - 1));
    let _ = child.wait();
    (
        cycles.into_iter().map(|c| c / 2).collect(),
        ns.into_iter().map(|n| n / 2).collect(),
    )
}

/// Interrupt to user-space handler: this thread is the handler, waiting
/// on the notification the machine's ticker's line signals; a spinner
/// thread of lower priority stores the cycle counter over and over. The
/// interrupt stops the spinner, and the handler's first read of the
/// counter less the spinner's last store is the delivery time, to within
/// one turn of the spinner's loop (a few instructions). Each sample is
/// one interrupt; the line is acknowledged after each.
fn irq_to_user_handler() -> Vec<u64> {
    use crate::device::Ticker;
    use core::sync::atomic::AtomicU64;
    static LAST: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    let Ok((ticker, irq)) = Ticker::find() else {
        return Vec::new();
    };
    let Ok(notification) = rt::ipc::Notification::create() else {
        return Vec::new();
    };
    let Ok(handler) = crate::device::irq_control().claim(irq, &notification, 1) else {
        return Vec::new();
    };
    STOP.store(false, Ordering::Relaxed);
    let spinner = rt::thread::spawn(|| {
        if sys::set_priority(3).is_err() {
            return;
        }
        while !STOP.load(Ordering::Relaxed) {
            LAST.store(arch::cycle_counter(), Ordering::Relaxed);
        }
    });
    if spinner.is_err() || ticker.start(100).is_err() {
        return Vec::new();
    }
    let mut samples = Vec::new();
    for n in 0..SAMPLES + 4 {
        if notification.wait().is_err() {
            break;
        }
        let now = arch::cycle_counter();
        let last = LAST.load(Ordering::Relaxed);
        // The first few warm the path up.
        if n >= 4 {
            samples.push(arch::cycles_between(last, now));
        }
        if ticker.clear().is_err() || handler.acknowledge().is_err() {
            break;
        }
    }
    let _ = ticker.stop();
    STOP.store(true, Ordering::Relaxed);
    sys::sleep_ns(1_000_000);
    samples
}

fn spawn_and_exit() {
    match rt::process::run("hello", "quiet") {
        Ok(rt::process::Exit::Code(0)) => {}
        other => println!("ubench: hello failed: {other:?}"),
    }
}

/// Runs every benchmark; returns the exit status.
pub fn run() -> i32 {
    println!("ubench: begin");
    if let Ok(system) = rt::process::system() {
        print_metric(
            "boot_to_first_user_instruction",
            "ns",
            &[system.first_user_ns],
        );
    }
    let (overhead_cycles, overhead_ns) = sample(SAMPLES, BATCH, || {
        black_box(());
    });
    let floor_cycles = overhead_cycles.iter().copied().min().unwrap_or(0);
    let floor_ns = overhead_ns.iter().copied().min().unwrap_or(0);
    let mut metrics = Vec::new();
    let (cycles, ns) = sample(SAMPLES, BATCH, || {
        black_box(sys::process_id());
    });
    metrics.push(Metric {
        name: "null_syscall",
        cycles,
        ns,
    });
    let (cycles, ns) = yield_ping_pong();
    metrics.push(Metric {
        name: "thread_switch_yield",
        cycles,
        ns,
    });
    let (cycles, ns) = ipc_round_trips(true);
    metrics.push(Metric {
        name: "ipc_call_reply_round_trip",
        cycles,
        ns,
    });
    let (cycles, ns) = ipc_round_trips(false);
    metrics.push(Metric {
        name: "ipc_round_trip_same_space",
        cycles,
        ns,
    });
    let (cycles, ns) = long_round_trips();
    metrics.push(Metric {
        name: "ipc_long_1k_round_trip",
        cycles,
        ns,
    });
    let (cycles, ns) = cap_transfer_round_trips();
    metrics.push(Metric {
        name: "cap_transfer_round_trip",
        cycles,
        ns,
    });
    let (cycles, ns) = notification_ping_pong();
    metrics.push(Metric {
        name: "notification_signal_to_wake",
        cycles,
        ns,
    });
    let (cycles, ns) = anonymous_page_faults();
    metrics.push(Metric {
        name: "anonymous_page_fault",
        cycles,
        ns,
    });
    let (cycles, ns) = sample(PROCESS_SAMPLES, PROCESS_BATCH, spawn_and_exit);
    metrics.push(Metric {
        name: "process_spawn_exit",
        cycles,
        ns,
    });
    for metric in metrics {
        print_metric(
            metric.name,
            "instructions",
            &net(metric.cycles, floor_cycles),
        );
        print_metric(metric.name, "ns", &net(metric.ns, floor_ns));
    }
    // Measured from one instant to another, not over a batch: nothing to
    // subtract; and in instructions only (the clock is a system call).
    print_metric(
        "irq_to_user_handler",
        "instructions",
        &irq_to_user_handler(),
    );
    for (name, unit, samples) in crate::bench_devices::run() {
        print_metric(&name, unit, &samples);
    }
    println!("ubench: end");
    0
}
