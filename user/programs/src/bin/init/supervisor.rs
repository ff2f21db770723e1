//! Init as supervisor: every driver and network stack init starts is a
//! service it keeps running. The kernel signals one notification bit per
//! service when the service's process ends (`process_watch`); a thread of
//! init, with that notification bound to it, collects the status, reports
//! how the process ended and starts it again the way it was started (the
//! same program, arguments and capabilities). A service that ran for
//! [`HEALTHY_NS`] or more is restarted at once; one that died younger
//! waits a back-off that doubles with each young death in a row, and after
//! [`MAX_YOUNG_DEATHS`] of them it is held (not restarted) and reported.
//! A service started after another, on whose server it depends (a network
//! stack on its NIC driver), is restarted with it: its session died with
//! the server.
//!
//! The same thread serves `protocols::supervisor` (the shell's `ps`,
//! `kill` and `crash`) on an endpoint registered with the name service.

use crate::fail;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocols::supervisor::{self, RECORD_SIZE, ServiceRecord, State};
use rt::Error;
use rt::ipc::{Endpoint, IpcBuffer, Message, Notification};
use rt::names::{Names, REGISTRAR};
use rt::println;
use rt::process::Child;
use spin::{Mutex, Once};

/// A run at least this long counts as healthy: the next death restarts
/// at once and forgets earlier young deaths.
pub const HEALTHY_NS: u64 = 1_000_000_000;
/// Young deaths in a row after which a service is held.
pub const MAX_YOUNG_DEATHS: u32 = 4;
/// The back-off after the first young death; it doubles with each next.
const BACKOFF_NS: u64 = 20_000_000;
/// Services kept at most: a notification bit each.
const MAX_SERVICES: usize = usize::BITS as usize;

/// How a service is started (again).
pub type Starter = Box<dyn Fn() -> Result<Child, String> + Send>;

struct Service {
    name: String,
    /// The service it depends on, which it is restarted with.
    after: Option<String>,
    /// Ended because what it depends on died: not a death of its own.
    ended_with_dependency: bool,
    start: Starter,
    /// The process while it runs.
    child: Option<Child>,
    /// Its current, or last, process id.
    pid: u32,
    started_ns: u64,
    restarts: u32,
    young_deaths: u32,
    state: Kept,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    Running,
    /// To start again at this time.
    RestartAt(u64),
    Held,
}

static SERVICES: Mutex<Vec<Service>> = Mutex::new(Vec::new());
/// Where the kernel signals deaths: bit `i` for service `i`.
static DEATHS: Once<Notification> = Once::new();

/// Starts the supervisor's thread and registers its service. Init's name
/// service must be up.
pub fn start() -> Result<(), String> {
    let deaths = Notification::create().map_err(fail("notification"))?;
    let bound = rt::ipc::cap_copy(deaths.handle(), abi::RIGHT_WAIT, 0).map_err(fail("copy"))?;
    DEATHS.call_once(|| deaths);
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let mut names = Names::from_handle(crate::names::capability(REGISTRAR).map_err(fail("names"))?)
        .map_err(fail("names"))?;
    names
        .register(supervisor::SERVICE, &endpoint)
        .map_err(fail("register"))?;
    rt::thread::spawn(move || serve(endpoint, Notification::from_handle(bound)))
        .map_err(fail("thread"))?;
    Ok(())
}

/// Starts a service called `name` with `start`, and keeps it running;
/// returns its process id.
pub fn supervise(name: &str, start: Starter) -> Result<u32, String> {
    supervise_after(name, None, start)
}

/// [`supervise`], for a service that depends on service `after`: when
/// that dies, this one is ended too, and restarted.
pub fn supervise_after(name: &str, after: Option<&str>, start: Starter) -> Result<u32, String> {
    let mut services = SERVICES.lock();
    if services.len() == MAX_SERVICES {
        return Err(format!("no room to supervise {name}"));
    }
    let slot = services.len();
    let child = start()?;
    let pid = child.pid;
    watch(&child, slot);
    services.push(Service {
        name: name.into(),
        after: after.map(String::from),
        ended_with_dependency: false,
        start,
        child: Some(child),
        pid,
        started_ns: rt::sys::time_ns(),
        restarts: 0,
        young_deaths: 0,
        state: Kept::Running,
    });
    Ok(pid)
}

/// Has the kernel signal service `slot`'s bit when `child` ends; one that
/// has ended already is signalled for here.
fn watch(child: &Child, slot: usize) {
    let Some(deaths) = DEATHS.get() else {
        return;
    };
    if child.watch(deaths, 1 << slot).is_err() {
        let _ = deaths.signal(1 << slot);
    }
}

/// Every running service's name and process id.
pub fn pids() -> Vec<(String, u32)> {
    SERVICES
        .lock()
        .iter()
        .filter(|s| s.child.is_some())
        .map(|s| (s.name.clone(), s.pid))
        .collect()
}

/// Service `name`'s record.
pub fn record(name: &str) -> Option<ServiceRecord> {
    SERVICES
        .lock()
        .iter()
        .find(|s| s.name == name)
        .map(Service::record)
}

/// Ends service `name`'s process (as a fault if `as_fault`), which the
/// supervisor then restarts; returns the id of the process ended.
pub fn end(name: &str, as_fault: bool) -> Result<u32, String> {
    end_where(|s| s.name == name, as_fault).map_err(|e| match e {
        NotEnded::NoService => format!("no service {name}"),
        NotEnded::NotRunning => format!("{name} is not running"),
        NotEnded::Kill(e) => format!("kill: {e}"),
    })
}

/// Why [`end_where`] ended nothing.
enum NotEnded {
    NoService,
    NotRunning,
    Kill(Error),
}

/// [`end`], for the first service `which` picks.
fn end_where(which: impl Fn(&Service) -> bool, as_fault: bool) -> Result<u32, NotEnded> {
    let services = SERVICES.lock();
    let service = services
        .iter()
        .find(|s| which(s))
        .ok_or(NotEnded::NoService)?;
    let child = service.child.as_ref().ok_or(NotEnded::NotRunning)?;
    let ended = match as_fault {
        true => child.crash(),
        false => child.kill(),
    };
    ended.map_err(NotEnded::Kill)?;
    Ok(child.pid)
}

/// Waits until service `name` runs as a process other than `old_pid`,
/// for up to `timeout_ns`; returns its record.
pub fn wait_restarted(name: &str, old_pid: u32, timeout_ns: u64) -> Result<ServiceRecord, String> {
    let deadline = rt::sys::time_ns() + timeout_ns;
    loop {
        let record = record(name).ok_or_else(|| format!("no service {name}"))?;
        if record.pid != old_pid && record.state == State::Running {
            return Ok(record);
        }
        if rt::sys::time_ns() >= deadline {
            return Err(format!(
                "{name} was not restarted in time: {}, process {}",
                record.state.name(),
                record.pid
            ));
        }
        rt::sys::sleep_ns(5_000_000);
    }
}

impl Service {
    fn record(&self) -> ServiceRecord {
        let state = match self.state {
            Kept::Running => State::Running,
            Kept::RestartAt(_) => State::Restarting,
            Kept::Held => State::Held,
        };
        ServiceRecord::new(self.pid, self.restarts, state, &self.name)
    }

    /// Collects its ended process, says how it ended and decides what
    /// comes next.
    fn died(&mut self, now: u64) {
        let Some(child) = self.child.take() else {
            return;
        };
        let exit = child.wait().map_or_else(
            |e| format!("could not be waited for ({e})"),
            |exit| format!("{exit}"),
        );
        let why = match core::mem::take(&mut self.ended_with_dependency) {
            true => format!(" with {}", self.after.as_deref().unwrap_or("?")),
            false if now - self.started_ns >= HEALTHY_NS => {
                self.young_deaths = 0;
                String::new()
            }
            false => {
                self.young_deaths += 1;
                String::new()
            }
        };
        let Some(delay) = self.schedule_restart(now) else {
            println!(
                "init: {} (process {}) {exit}; it died {} times in a row within {} ms of starting: held, not restarted",
                self.name,
                self.pid,
                self.young_deaths,
                HEALTHY_NS / 1_000_000
            );
            return;
        };
        println!(
            "init: {} (process {}) {exit}{why}; restarting it in {} ms",
            self.name,
            self.pid,
            delay / 1_000_000
        );
    }

    /// Starts it again, if it is due at `now`.
    fn restart_if_due(&mut self, slot: usize, now: u64) {
        let Kept::RestartAt(due) = self.state else {
            return;
        };
        if due > now {
            return;
        }
        self.restarts += 1;
        self.started_ns = now;
        match (self.start)() {
            Ok(child) => {
                self.pid = child.pid;
                watch(&child, slot);
                self.child = Some(child);
                self.state = Kept::Running;
                println!(
                    "init: restarted {} as process {} (restart {})",
                    self.name, self.pid, self.restarts
                );
            }
            Err(e) => {
                println!("init: cannot restart {}: {e}", self.name);
                // A start that fails is a death at once.
                self.young_deaths += 1;
                let _ = self.schedule_restart(now);
            }
        }
    }

    /// After a death at `now`: holds the service if it died young too
    /// often, else sets when it starts again (after the back-off its young
    /// deaths in a row call for) and returns the delay.
    fn schedule_restart(&mut self, now: u64) -> Option<u64> {
        if self.young_deaths >= MAX_YOUNG_DEATHS {
            self.state = Kept::Held;
            return None;
        }
        let delay = match self.young_deaths {
            0 => 0,
            n => BACKOFF_NS << (n - 1),
        };
        self.state = Kept::RestartAt(now + delay);
        Some(delay)
    }
}

/// Whether `service` may start now as far as what it depends on goes:
/// that runs (a service waits for its dependency's restart).
fn dependency_runs(services: &[Service], service: &Service) -> bool {
    service.after.as_ref().is_none_or(|after| {
        services
            .iter()
            .any(|s| &s.name == after && s.state == Kept::Running)
    })
}

/// The supervisor's loop: deaths (as notifications) and requests, and
/// restarts when they fall due.
fn serve(endpoint: Endpoint, deaths: Notification) {
    let (Ok(mut buffer), Ok(())) = (IpcBuffer::register(), deaths.bind()) else {
        println!("init: the supervisor cannot wait for deaths; services are not restarted");
        return;
    };
    loop {
        // A dependent waiting for its dependency is no reason to wake: it
        // is started on the round after the one that restarts that (or
        // never, if that is held).
        let next_due = {
            let services = SERVICES.lock();
            services
                .iter()
                .filter(|s| dependency_runs(&services, s))
                .filter_map(|s| match s.state {
                    Kept::RestartAt(due) => Some(due),
                    _ => None,
                })
                .min()
        };
        let timeout = next_due.map(|due| {
            core::time::Duration::from_nanos(due.saturating_sub(rt::sys::time_ns()).max(1))
        });
        let _ = rt::ipc::set_timeout(timeout);
        match endpoint.recv() {
            Ok(message) if message.label & abi::NOTIFIED != 0 => {
                let now = rt::sys::time_ns();
                let mut services = SERVICES.lock();
                let mut dead = Vec::new();
                for (slot, service) in services.iter_mut().enumerate() {
                    if message.badge & (1 << slot) != 0 {
                        service.died(now);
                        dead.push(service.name.clone());
                    }
                }
                end_dependents(&mut services, &dead);
            }
            Ok(message) => {
                let (reply, crash_self) = answer(&message, &mut buffer);
                let _ = rt::ipc::reply(reply);
                if crash_self {
                    crash_here();
                }
            }
            Err(Error::TimedOut) => {}
            Err(e) => {
                println!("init: the supervisor stops: {e}");
                return;
            }
        }
        let now = rt::sys::time_ns();
        let mut services = SERVICES.lock();
        for slot in 0..services.len() {
            if dependency_runs(&services, &services[slot]) {
                services[slot].restart_if_due(slot, now);
            }
        }
    }
}

/// Ends the running services that depend on one of `dead`: their deaths
/// come back as notifications, and they are restarted.
fn end_dependents(services: &mut [Service], dead: &[String]) {
    for service in services.iter_mut() {
        let depends = service
            .after
            .as_ref()
            .is_some_and(|after| dead.contains(after));
        if let (true, Some(child)) = (depends, &service.child) {
            service.ended_with_dependency = true;
            let _ = child.kill();
        }
    }
}

/// The reply to a request, and whether the supervisor is to fault once
/// it has replied.
fn answer(message: &Message, buffer: &mut IpcBuffer) -> (Message, bool) {
    let refused = |error: Error| Message::new(protocols::status(Err(error)), [0; 4]);
    if let Some(handle) = message.capability() {
        let _ = rt::ipc::cap_delete(handle);
    }
    let pid = message.words[0] as u32;
    match message.plain_label() {
        supervisor::LIST => {
            let services = SERVICES.lock();
            let bytes = buffer.bytes();
            let fits = bytes.len() / RECORD_SIZE;
            for (service, chunk) in services.iter().zip(bytes.chunks_exact_mut(RECORD_SIZE)) {
                chunk.copy_from_slice(&service.record().encode());
            }
            let count = services.len().min(fits);
            let reply = Message::new(0, [count, 0, 0, 0]).with_payload(count * RECORD_SIZE);
            (reply, false)
        }
        supervisor::CRASH if pid == 1 => (Message::new(0, [0; 4]), true),
        label @ (supervisor::KILL | supervisor::CRASH) => {
            let ended = end_where(
                |s| s.pid == pid && s.child.is_some(),
                label == supervisor::CRASH,
            );
            let reply = match ended {
                Ok(_) => Message::new(0, [0; 4]),
                Err(_) => refused(Error::NotFound),
            };
            (reply, false)
        }
        _ => (refused(Error::InvalidArgument), false),
    }
}

/// Faults, for real: the supervisor's own death, as `crash 1` asks.
fn crash_here() -> ! {
    println!("init: crashing the supervisor on request");
    // SAFETY: not safe at all, on purpose: the first page of the user
    // half is never mapped, so this read faults and the kernel ends init.
    let _ = unsafe { core::ptr::read_volatile(8 as *const u8) };
    unreachable!("a read of the unmapped first page returned")
}

pub const TESTS: &[crate::Test] = &[
    crate::Test {
        name: "supervisor::watches_signal_deaths_and_faults_can_be_injected",
        run: watches_signal_deaths_and_faults_can_be_injected,
    },
    crate::Test {
        name: "supervisor::a_block_client_finishes_across_a_driver_crash_with_every_write_intact",
        run: a_block_client_finishes_across_a_driver_crash_with_every_write_intact,
    },
    crate::Test {
        name: "supervisor::a_service_dying_young_is_backed_off_then_held",
        run: a_service_dying_young_is_backed_off_then_held,
    },
];

/// `process_watch` signals its bits when the process ends, not before;
/// its arguments are checked; `process_kill` with `KILL_AS_FAULT` ends a
/// process with an injected fault naming the injector.
fn watches_signal_deaths_and_faults_can_be_injected() -> crate::Outcome {
    use rt::process::{self, Exit};
    let watcher = Notification::create().map_err(fail("notification"))?;
    let child = process::spawn("probe", "sleep 20").map_err(fail("spawn"))?;
    child.watch(&watcher, 1 << 3).map_err(fail("watch"))?;
    ensure_eq!(watcher.poll(), Ok(0), "bits before the end");
    ensure_eq!(
        child.watch(&watcher, 0),
        Err(Error::InvalidArgument),
        "a watch with no bits"
    );
    ensure_eq!(
        rt::sys::raw(
            abi::Syscall::ProcessWatch as usize,
            [
                watcher.handle() as usize,
                watcher.handle() as usize,
                1,
                0,
                0,
                0
            ],
        ),
        Err(Error::WrongType),
        "a notification named as the process"
    );
    ensure_eq!(watcher.wait(), Ok(1 << 3), "the bits once it ended");
    ensure_eq!(
        child.wait().map_err(fail("wait"))?,
        Exit::Code(0),
        "the watched child's status, still there for its parent"
    );
    let victim = process::spawn("probe", "sleep 5000").map_err(fail("spawn"))?;
    victim.watch(&watcher, 1).map_err(fail("watch"))?;
    victim.crash().map_err(fail("crash"))?;
    ensure_eq!(watcher.wait(), Ok(1), "the crashed child's bit");
    let me = rt::sys::process_id();
    ensure_eq!(
        victim.wait().map_err(fail("wait"))?,
        Exit::Fault {
            kind: abi::FaultKind::Injected,
            address: me as u64,
            pc: 0
        },
        "an injected fault, naming the injector"
    );
    ensure_eq!(
        victim.watch(&watcher, 1),
        Err(Error::NotFound),
        "a watch on a process collected"
    );
    ensure_eq!(
        rt::sys::raw(
            abi::Syscall::ProcessKill as usize,
            [victim.handle() as usize, 7, 0, 0, 0, 0],
        ),
        Err(Error::InvalidArgument),
        "an unknown way to kill"
    );
    Ok(())
}

/// A client writes 48 runs of 8 sectors while another thread crashes the
/// block driver (an injected fault) after the 16th is acknowledged. The
/// request in flight then fails with `PeerDied` (not acknowledged); the
/// client finds the driver the supervisor restarted, reconnects its
/// buffer and makes the request again. Every run then reads back as
/// written, and the supervisor counted one restart.
fn a_block_client_finishes_across_a_driver_crash_with_every_write_intact() -> crate::Outcome {
    use core::sync::atomic::{AtomicU32, Ordering};
    use protocols::block::SECTOR_SIZE;
    use rt::block::{Block, Failure};
    const RUNS: usize = 48;
    const SECTORS: usize = 8;
    const FIRST_SECTOR: u64 = 2048;
    const CRASH_AFTER: usize = 16;
    /// The pid the other thread crashed (`u32::MAX`: it could not).
    static CRASHED: AtomicU32 = AtomicU32::new(0);
    CRASHED.store(0, Ordering::SeqCst);
    let before = record("blk").ok_or("no blk service")?;
    let mut names =
        Names::from_handle(crate::names::capability(rt::names::CLIENT).map_err(fail("names"))?)
            .map_err(fail("names"))?;
    let server = names
        .lookup_alive("blk", 2_000_000_000)
        .map_err(fail("lookup"))?;
    let run_bytes = SECTORS * SECTOR_SIZE;
    let mut disk = Block::open(&server, run_bytes).map_err(fail("open"))?;
    let stamp = rt::sys::time_ns() as u8 | 1;
    let byte = |run: usize, at: usize| (run as u8).wrapping_mul(31) ^ (at as u8) ^ stamp;
    // The other thread crashes the driver once told: it then runs as soon
    // as this one waits for its next request, which is then in flight.
    let go = Notification::create().map_err(fail("notification"))?;
    let go_copy = rt::ipc::cap_copy(go.handle(), abi::RIGHT_WAIT, 0).map_err(fail("copy"))?;
    rt::thread::spawn(move || {
        let go = Notification::from_handle(go_copy);
        let crashed = match go.wait() {
            Ok(_) => end("blk", true).unwrap_or(u32::MAX),
            Err(_) => u32::MAX,
        };
        CRASHED.store(crashed, Ordering::SeqCst);
    })
    .map_err(fail("thread"))?;
    let mut refused = Vec::new();
    for run in 0..RUNS {
        for (at, b) in disk.buffer()[..run_bytes].iter_mut().enumerate() {
            *b = byte(run, at);
        }
        let sector = FIRST_SECTOR + (run * SECTORS) as u64;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match disk.write(sector, SECTORS, 0) {
                Ok(()) => break,
                Err(Failure::Ipc(Error::PeerDied)) if attempts < 5 => {
                    refused.push(run);
                    let server = names
                        .lookup_alive("blk", 2_000_000_000)
                        .map_err(fail("finding the restarted driver"))?;
                    disk.reconnect(&server)
                        .map_err(|e| format!("reconnecting: {e:?}"))?;
                }
                Err(e) => return Err(format!("write of run {run}: {e:?}")),
            }
        }
        if run + 1 == CRASH_AFTER {
            go.signal(1).map_err(fail("signal"))?;
        }
    }
    let crashed = loop {
        match CRASHED.load(Ordering::SeqCst) {
            0 => rt::sys::sleep_ns(1_000_000),
            u32::MAX => return Err("the block driver could not be crashed".into()),
            pid => break pid,
        }
    };
    ensure!(
        !refused.is_empty(),
        "the crash of process {crashed} failed no request of the client"
    );
    ensure!(
        refused.iter().all(|&run| run >= CRASH_AFTER),
        "runs refused before the crash: {refused:?}"
    );
    for run in 0..RUNS {
        let sector = FIRST_SECTOR + (run * SECTORS) as u64;
        disk.buffer()[..run_bytes].fill(0);
        disk.read(sector, SECTORS, 0)
            .map_err(|e| format!("read back run {run}: {e:?}"))?;
        let wrong = disk.buffer()[..run_bytes]
            .iter()
            .enumerate()
            .find(|&(at, &b)| b != byte(run, at));
        if let Some((at, b)) = wrong {
            return Err(format!(
                "run {run} (refused {refused:?}): byte {at} is {b:#x}, not {:#x}",
                byte(run, at)
            ));
        }
    }
    let after = record("blk").ok_or("no blk service")?;
    ensure_eq!(after.restarts, before.restarts + 1, "restarts counted");
    ensure!(after.pid != crashed, "the crashed driver still listed");
    Ok(())
}

/// A service whose process faults as it starts is restarted after a
/// back-off that doubles (20, 40, 80 ms), and after its fourth young
/// death it is held: its record says so, and nothing restarts it.
fn a_service_dying_young_is_backed_off_then_held() -> crate::Outcome {
    let started = rt::sys::time_ns();
    let start: Starter =
        Box::new(|| rt::process::spawn("probe", "fault null-read").map_err(|e| format!("{e}")));
    supervise("crasher", start)?;
    let deadline = started + 3_000_000_000;
    let record = loop {
        let record = record("crasher").ok_or("no crasher service")?;
        if record.state == State::Held {
            break record;
        }
        if rt::sys::time_ns() > deadline {
            return Err(format!(
                "not held after 3 s: {}, {} restarts",
                record.state.name(),
                record.restarts
            ));
        }
        rt::sys::sleep_ns(5_000_000);
    };
    let elapsed = rt::sys::time_ns() - started;
    ensure_eq!(
        record.restarts,
        MAX_YOUNG_DEATHS - 1,
        "restarts before it was held"
    );
    let backoff: u64 = (0..MAX_YOUNG_DEATHS - 1).map(|n| BACKOFF_NS << n).sum();
    ensure!(
        elapsed >= backoff,
        "held after {elapsed} ns, before the back-offs' {backoff} ns"
    );
    // Twice the back-off the next restart would have waited.
    rt::sys::sleep_ns(BACKOFF_NS << MAX_YOUNG_DEATHS);
    ensure_eq!(
        crate::supervisor::record("crasher").map(|r| (r.state, r.restarts)),
        Some((State::Held, record.restarts)),
        "a held service is left alone"
    );
    Ok(())
}
