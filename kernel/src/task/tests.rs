//! Host tests of the task subsystem on the pretend machine: scheduling
//! order, wait queues, kills, the tick, exit accounting, and the switch
//! glue on the global scheduler.

extern crate std;

use super::exit::KERNEL_CHILD_WAITERS;
use super::process::{ExitStatus, MAX_PROCESSES, Parent, Process};
use super::queue::Place;
use super::sched::{self, SCHEDULER, Scheduler};
use super::space::UserSpace;
use super::spawn::attach;
use super::thread::{MAX_THREADS, State, Thread};
use super::timeout::DeadlineLinks;
use super::wait::WaitQueue;
use crate::fake_arch::{self, FakeArch};
use abi::Error;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::pin::Pin;
use std::sync::Mutex;

/// A thread with no stack that would resume at `sp`.
fn thread(name: &'static str, priority: u8, sp: usize) -> Box<Thread> {
    let mut thread = Thread::new(name, None, sp + 0x1000, sp).unwrap();
    thread.priority = priority;
    thread
}

/// A scheduler running its boot thread (index 0), with idle at index 1.
fn scheduler() -> Scheduler {
    let mut s = Scheduler::new();
    s.adopt(thread("boot", 4, 0x10_000), thread("idle", 0, 0x20_000))
        .unwrap();
    s
}

/// Adds a ready kernel thread; returns its index.
fn ready(s: &mut Scheduler, priority: u8) -> usize {
    let index = s
        .threads
        .insert(thread("worker", priority, 0x30_000))
        .unwrap();
    s.make_ready(index);
    index
}

/// Adds a process reporting to `parent` with one ready thread; returns
/// (slot, thread index).
fn process(s: &mut Scheduler, parent: Parent) -> (usize, usize) {
    let slot = s
        .processes
        .insert(Process::new("proc", parent, None).unwrap())
        .unwrap_or_else(|_| panic!("room for a process"));
    let mut t = thread("user", 4, 0x40_000);
    attach(&mut t, slot, s.processes.get(slot));
    let index = s.threads.insert(t).unwrap();
    s.make_ready(index);
    (slot, index)
}

/// Runs the scheduler's choice; returns the new current thread.
fn switch(s: &mut Scheduler) -> usize {
    s.pick_next();
    s.current
}

#[test]
fn the_highest_priority_runs_first_and_equals_take_turns() {
    let mut s = scheduler();
    let low = ready(&mut s, 2);
    let a = ready(&mut s, 6);
    let b = ready(&mut s, 6);
    assert!(
        s.preempts(a),
        "a more urgent thread preempts the boot thread"
    );
    assert!(!s.preempts(low));
    assert_eq!(switch(&mut s), a);
    assert_eq!(switch(&mut s), b, "a's turn ends: b is next among equals");
    assert_eq!(switch(&mut s), a);
    // Blocking both lets the boot thread (priority 4) run, then the low one.
    let queue = Box::pin(WaitQueue::new());
    s.block_current_in(queue.as_ref());
    assert_eq!(switch(&mut s), b);
    s.block_current_in(queue.as_ref());
    assert_eq!(switch(&mut s), 0, "the boot thread");
    s.block_current_in(queue.as_ref());
    assert_eq!(switch(&mut s), low);
    s.block_current_in(queue.as_ref());
    assert_eq!(switch(&mut s), 1, "nothing is ready: idle runs");
    assert_eq!(queue.len(&mut s.threads), 4);
    assert_eq!(s.wake_all_in(&queue), 4);
    assert_eq!(switch(&mut s), a, "woken in order, the most urgent first");
}

#[test]
fn only_a_more_urgent_thread_preempts_and_anything_preempts_idle() {
    let mut s = scheduler();
    let peer = ready(&mut s, 4);
    let urgent = ready(&mut s, 5);
    assert!(!s.preempts(peer), "equals wait for the time slice to end");
    assert!(s.preempts(urgent));
    let queue = Box::pin(WaitQueue::new());
    for _ in 0..3 {
        switch(&mut s);
        s.block_current_in(queue.as_ref());
    }
    assert_eq!(switch(&mut s), 1);
    let lowest = ready(&mut s, 0);
    assert!(s.preempts(lowest), "idle gives way to any thread");
    s.wake_all_in(&queue);
}

#[test]
fn a_wait_queue_wakes_in_arrival_order_and_records_where_threads_wait() {
    let mut s = scheduler();
    let queue = Box::pin(WaitQueue::new());
    let workers: Vec<usize> = (0..3).map(|_| ready(&mut s, 4)).collect();
    let mut order = Vec::new();
    for _ in 0..4 {
        let current = switch(&mut s);
        order.push(current);
        s.block_current_in(queue.as_ref());
        assert_eq!(s.thread(current).state, State::Blocked);
        assert!(matches!(s.threads.place_of(current), Some(Place::Queue(_))));
    }
    assert_eq!(
        order[..3],
        workers[..],
        "the boot thread was switched out first"
    );
    assert_eq!(switch(&mut s), 1, "all four wait: idle runs");
    s.wake_all_in(&queue);
    let woken: Vec<usize> = (0..4).map(|_| switch(&mut s)).collect();
    assert_eq!(woken, order);
}

#[test]
fn killing_a_process_wakes_its_threads_wherever_they_wait() {
    let mut s = scheduler();
    let queue = Box::pin(WaitQueue::new());
    let (slot, first) = process(&mut s, Parent::Orphan);
    let mut second = thread("user", 4, 0x50_000);
    attach(&mut second, slot, s.processes.get(slot));
    let second = s.threads.insert(second).unwrap();
    s.processes.get_mut(slot).live_threads += 1;
    s.make_ready(second);
    let bystander = ready(&mut s, 4);
    // `first` sleeps, `second` waits in the queue, the bystander too.
    assert_eq!(switch(&mut s), first);
    s.block_current_until(5_000);
    assert_eq!(switch(&mut s), second);
    s.block_current_in(queue.as_ref());
    assert_eq!(switch(&mut s), bystander);
    s.block_current_in(queue.as_ref());
    assert_eq!(switch(&mut s), 0);
    s.kill_threads_of(slot);
    for index in [first, second] {
        assert!(s.thread(index).killed);
        assert_eq!(s.thread(index).state, State::Ready);
        assert!(matches!(s.threads.place_of(index), Some(Place::Run(4))));
    }
    assert!(!s.thread(bystander).killed);
    assert_eq!(
        queue.len(&mut s.threads),
        1,
        "only the bystander still waits"
    );
    s.tick(10_000);
    assert_eq!(
        s.thread(first).state,
        State::Ready,
        "the kill took it out of the sleep list"
    );
    s.wake_all_in(&queue);
}

#[test]
fn the_tick_wakes_sleepers_when_due_and_ends_time_slices() {
    let mut s = scheduler();
    let threads: Vec<usize> = (0..3).map(|_| ready(&mut s, 4)).collect();
    for deadline in [300, 100, 200] {
        switch(&mut s);
        s.block_current_until(deadline);
    }
    assert_eq!(switch(&mut s), 0, "the sleepers are away: boot runs");
    s.tick(99);
    assert_eq!(switch(&mut s), 0, "none due yet");
    s.tick(250);
    assert_eq!(switch(&mut s), threads[1], "due at 100");
    assert_eq!(switch(&mut s), threads[2], "due at 200");
    assert_eq!(switch(&mut s), 0);
    assert_eq!(s.thread(threads[0]).state, State::Blocked);
    let before = s.thread(0).cpu_ticks;
    for _ in 0..super::TIMESLICE_TICKS {
        s.tick(260);
    }
    assert_eq!(
        s.thread(0).cpu_ticks,
        before + super::TIMESLICE_TICKS as u64
    );
    assert_eq!(s.thread(0).slice_left, 0);
    s.tick(300);
    assert_eq!(switch(&mut s), threads[1]);
    assert_eq!(s.thread(threads[1]).slice_left, super::TIMESLICE_TICKS);
}

#[test]
fn a_switch_counts_a_preemption_but_a_yield_does_not() {
    let mut s = scheduler();
    let (slot, user) = process(&mut s, Parent::Orphan);
    let _other = ready(&mut s, 4);
    assert_eq!(switch(&mut s), user);
    switch(&mut s);
    assert_eq!(s.processes.get(slot).preemptions, 1);
    switch(&mut s); // boot
    assert_eq!(switch(&mut s), user);
    s.tick(0);
    assert_eq!(s.processes.get(slot).cpu_ticks, 1);
    s.note_yield();
    switch(&mut s);
    assert_eq!(s.processes.get(slot).preemptions, 1, "it gave way itself");
}

#[test]
fn a_process_ends_with_its_last_thread_and_its_parent_collects_it() {
    let mut s = scheduler();
    let (parent, parent_thread) = process(&mut s, Parent::Orphan);
    let parent_pid = s.processes.get(parent).pid;
    let (child, child_thread) = process(&mut s, Parent::Process(parent_pid));
    let child_pid = s.processes.get(child).pid;
    assert_eq!(s.processes.ended_child(parent_pid, None), Ok(None));
    assert_eq!(
        s.processes.ended_child(parent_pid, Some(child_pid + 100)),
        Err(Error::NotFound)
    );
    assert_eq!(
        s.processes.ended_child(child_pid, None),
        Err(Error::NoChildren)
    );
    // The parent waits for its child.
    assert_eq!(switch(&mut s), parent_thread);
    let waiters = s.processes.get(parent).child_waiters.as_ref();
    waiters.block(&mut s.threads, s.current);
    // The child exits with 7.
    assert_eq!(switch(&mut s), child_thread);
    let live_before = s.threads.live();
    s.processes.get_mut(child).exit = Some(ExitStatus::Exited(7));
    assert_eq!(s.exit_current(), Some(child));
    drop(s.finish_process::<FakeArch>(child));
    assert_eq!(s.threads.live(), live_before - 1);
    assert!(s.processes.get(child).zombie);
    assert_eq!(
        s.thread(parent_thread).state,
        State::Ready,
        "the parent woke"
    );
    assert_eq!(s.processes.ended_child(parent_pid, None), Ok(Some(child)));
    assert_eq!(s.processes.get(child).exit_status(), ExitStatus::Exited(7));
    // The ended thread's record goes once another thread runs.
    assert!(s.take_dead().is_none(), "still the current thread");
    switch(&mut s);
    assert!(s.take_dead().is_some());
    assert!(s.take_dead().is_none());
}

/// Counts the ends it is told of, under its mark.
struct Told(&'static std::sync::atomic::AtomicUsize, usize);

impl super::process::OnExit for Told {
    fn ended(self: Box<Self>) {
        self.0
            .fetch_add(self.1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_watch_is_told_once_when_its_process_ends_and_only_then() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TOLD: AtomicUsize = AtomicUsize::new(0);
    let mut s = scheduler();
    let (child, child_thread) = process(&mut s, Parent::Orphan);
    let pid = s.processes.get(child).pid;
    let mut first: Option<Box<dyn super::process::OnExit>> = Some(Box::new(Told(&TOLD, 1)));
    assert_eq!(s.watch(pid, &mut first), Ok(()));
    assert!(first.is_none(), "nothing was replaced");
    // A second watch replaces the first, which is handed back untold.
    let mut second: Option<Box<dyn super::process::OnExit>> = Some(Box::new(Told(&TOLD, 10)));
    assert_eq!(s.watch(pid, &mut second), Ok(()));
    drop(second.take().expect("the first watch comes back"));
    assert_eq!(s.watch(pid + 100, &mut None), Err(Error::NotFound));
    assert_eq!(TOLD.load(Ordering::SeqCst), 0, "nobody told before the end");
    while switch(&mut s) != child_thread {}
    assert_eq!(s.exit_current(), Some(child));
    let ended = s.finish_process::<FakeArch>(child);
    assert_eq!(TOLD.load(Ordering::SeqCst), 0, "told only on release");
    ended.release();
    assert_eq!(TOLD.load(Ordering::SeqCst), 10, "the second watch, once");
    let mut late: Option<Box<dyn super::process::OnExit>> = Some(Box::new(Told(&TOLD, 100)));
    assert_eq!(
        s.watch(pid, &mut late),
        Err(Error::NotFound),
        "an ended process"
    );
    assert!(late.is_some(), "a refused watch is handed back");
}

#[test]
fn orphans_are_forgotten_when_they_end_and_zombies_when_their_parent_does() {
    let mut s = scheduler();
    let (parent, parent_thread) = process(&mut s, Parent::Orphan);
    let parent_pid = s.processes.get(parent).pid;
    let (ended, ended_thread) = process(&mut s, Parent::Process(parent_pid));
    let (living, living_thread) = process(&mut s, Parent::Process(parent_pid));
    let count = s.processes.count();
    for (slot, index) in [(ended, ended_thread), (parent, parent_thread)] {
        while switch(&mut s) != index {}
        assert_eq!(s.exit_current(), Some(slot));
        drop(s.finish_process::<FakeArch>(slot));
    }
    assert_eq!(
        s.processes.count(),
        count - 2,
        "the orphaned parent and its unwaited zombie are gone"
    );
    assert_eq!(s.processes.get(living).parent, Parent::Orphan);
    while switch(&mut s) != living_thread {}
    s.exit_current();
    drop(s.finish_process::<FakeArch>(living));
    assert_eq!(s.processes.count(), count - 3, "an orphan leaves no record");
}

#[test]
fn a_kernel_parent_is_woken_through_its_queue() {
    let _serial = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = scheduler();
    let (child, child_thread) = process(&mut s, Parent::Kernel);
    s.block_current_in(Pin::static_ref(&KERNEL_CHILD_WAITERS));
    assert_eq!(switch(&mut s), child_thread);
    assert_eq!(s.exit_current(), Some(child));
    drop(s.finish_process::<FakeArch>(child));
    assert_eq!(s.thread(0).state, State::Ready, "the boot thread woke");
    assert_eq!(KERNEL_CHILD_WAITERS.len(&mut s.threads), 0);
    assert!(s.processes.get(child).zombie);
}

#[test]
fn tables_refuse_entries_beyond_their_limits() {
    let mut s = scheduler();
    while s.threads.live() < MAX_THREADS {
        s.threads.insert(thread("filler", 4, 0)).unwrap();
    }
    assert_eq!(
        s.threads.insert(thread("one too many", 4, 0)).err(),
        Some(Error::LimitReached)
    );
    while s.processes.count() < MAX_PROCESSES {
        let p = Process::new("filler", Parent::Orphan, None).unwrap();
        assert!(s.processes.insert(p).is_ok());
    }
    let p = Process::new("one too many", Parent::Orphan, None).unwrap();
    assert!(s.processes.insert(p).is_err());
}

#[test]
fn ps_shows_running_blocked_and_ended_processes() {
    let _serial = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = scheduler();
    let (_, runs) = process(&mut s, Parent::Orphan);
    let (_, blocks) = process(&mut s, Parent::Orphan);
    let (ends, ends_thread) = process(&mut s, Parent::Kernel);
    let queue = Box::pin(WaitQueue::new());
    while switch(&mut s) != blocks {}
    s.block_current_in(queue.as_ref());
    while switch(&mut s) != ends_thread {}
    s.exit_current();
    drop(s.finish_process::<FakeArch>(ends));
    let states: Vec<u32> = s
        .processes
        .info(&s.threads)
        .unwrap()
        .iter()
        .map(|p| p.state)
        .collect();
    assert_eq!(
        states,
        [
            abi::ProcessState::Running as u32,
            abi::ProcessState::Blocked as u32,
            abi::ProcessState::Zombie as u32
        ]
    );
    assert_eq!(s.thread(runs).state, State::Ready);
    s.wake_all_in(&queue);
    // The kernel parent's queue was woken with nobody in it.
    assert_eq!(KERNEL_CHILD_WAITERS.len(&mut s.threads), 0);
}

#[test]
#[should_panic(expected = "dropped with threads waiting")]
fn dropping_a_queue_with_waiters_is_caught() {
    let mut s = scheduler();
    let queue = Box::pin(WaitQueue::new());
    s.block_current_in(queue.as_ref());
    drop(queue);
}

/// Serialises the tests that use the global scheduler or its statics.
static GLOBAL: Mutex<()> = Mutex::new(());

/// Runs `f` on a fresh global scheduler whose boot thread is current.
fn on_global_scheduler(f: impl FnOnce()) {
    let _serial = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    *SCHEDULER.lock() = scheduler();
    {
        let mut record = fake_arch::record();
        record.switches.clear();
        record.activated.clear();
        record.interrupts_enabled = true;
    }
    f();
    let old = core::mem::replace(&mut *SCHEDULER.lock(), Scheduler::new());
    drop(old);
}

#[test]
fn schedule_switches_stacks_and_address_spaces_as_the_scheduler_chose() {
    on_global_scheduler(|| {
        let (user, user_sp, root) = {
            let mut s = SCHEDULER.lock();
            let (slot, user) = process(&mut s, Parent::Orphan);
            let space = UserSpace::new::<FakeArch>().unwrap();
            let root = space.root();
            s.processes.get_mut(slot).space = Some(space);
            let s = &mut *s;
            attach(s.threads.get_mut(user), slot, s.processes.get(slot));
            (user, s.thread(user).saved_sp, root)
        };
        sched::yield_now::<FakeArch>();
        {
            let record = fake_arch::record();
            assert_eq!(record.switches.len(), 1);
            assert_eq!(
                record.switches[0].1, user_sp,
                "loads the user thread's stack"
            );
            assert_eq!(record.activated, [Some(root)]);
            assert_eq!(record.kernel_stack, user_sp + 0x1000, "traps use its stack");
            assert!(record.interrupts_enabled, "the interrupt state is restored");
        }
        let s = SCHEDULER.lock();
        assert_eq!(s.current, user);
        assert_eq!(super::current_pid(), s.processes.get(0).pid);
        assert_eq!(super::current_tid(), s.thread(user).tid);
        drop(s);
        // A kernel thread runs in whatever space is active: no activation.
        sched::yield_now::<FakeArch>();
        let record = fake_arch::record();
        assert_eq!(record.switches.len(), 2);
        assert_eq!(record.activated.len(), 1);
        assert_eq!(super::current_pid(), 0);
        let mut s = SCHEDULER.lock();
        if let Some(space) = s.processes.get_mut(0).space.take() {
            drop(record);
            space.destroy::<FakeArch>();
        }
    });
}

#[test]
fn set_priority_checks_privilege_and_range_and_gives_way() {
    on_global_scheduler(|| {
        let worker = ready(&mut SCHEDULER.lock(), 3);
        assert_eq!(
            sched::set_priority::<FakeArch>(8, false),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            sched::set_priority::<FakeArch>(256 + 4, false),
            Err(Error::InvalidArgument)
        );
        assert_eq!(SCHEDULER.lock().current, 0, "the boot thread still runs");
        assert_eq!(sched::set_priority::<FakeArch>(2, false), Ok(()));
        assert_eq!(
            SCHEDULER.lock().current,
            worker,
            "a more urgent thread took over"
        );
        // A user thread may not go above the default without the right.
        let mut s = SCHEDULER.lock();
        let (_, user) = process(&mut s, Parent::Orphan);
        drop(s);
        sched::yield_now::<FakeArch>();
        assert_eq!(SCHEDULER.lock().current, user);
        assert_eq!(
            sched::set_priority::<FakeArch>(5, false),
            Err(Error::PermissionDenied)
        );
        assert_eq!(sched::set_priority::<FakeArch>(4, false), Ok(()));
        assert_eq!(
            sched::set_priority::<FakeArch>(6, true),
            Ok(()),
            "with the capability checked"
        );
    });
}

#[test]
fn wait_on_blocks_until_woken_and_reports_a_kill() {
    on_global_scheduler(|| {
        let queue = Box::pin(WaitQueue::new());
        let worker = ready(&mut SCHEDULER.lock(), 4);
        // The pretend switch returns at once, as if woken at once.
        assert_eq!(sched::wait_on::<FakeArch>(queue.as_ref()), Ok(()));
        let s = SCHEDULER.lock();
        assert_eq!(s.current, worker);
        assert_eq!(s.thread(0).state, State::Blocked);
        drop(s);
        assert_eq!(sched::wake_all(&queue), 1);
        assert_eq!(SCHEDULER.lock().thread(0).state, State::Ready);
        // A killed thread does not start to wait.
        SCHEDULER.lock().thread_mut(worker).killed = true;
        assert_eq!(
            sched::wait_on::<FakeArch>(queue.as_ref()),
            Err(super::Killed)
        );
        assert_eq!(sched::wake_all(&queue), 0);
    });
}

#[test]
fn ipc_waits_time_out_in_deadline_order_and_leave_their_queue() {
    let mut s = scheduler();
    let queue = Box::pin(WaitQueue::new());
    let workers: Vec<usize> = (0..3).map(|_| ready(&mut s, 4)).collect();
    // Timeouts of 300, 100 and none, armed at time 1000.
    for (&worker, timeout) in workers.iter().zip([300, 100, 0]) {
        assert_eq!(switch(&mut s), worker);
        s.thread_mut(worker).ipc.timeout_ns = timeout;
        s.thread_mut(worker).ipc.start_wait(false, true);
        s.block_current_in(queue.as_ref());
        s.arm_timeout(|| 1000);
    }
    assert_eq!(
        s.deadlines.collect(&mut DeadlineLinks(&mut s.threads)),
        [workers[1], workers[0]]
    );
    s.tick(1050);
    assert_eq!(queue.len(&mut s.threads), 3, "nothing due yet");
    s.tick(1100);
    let (early, late, patient) = (workers[1], workers[0], workers[2]);
    assert_eq!(s.thread(early).state, State::Ready);
    assert_eq!(s.thread(early).ipc.outcome, Some(Error::TimedOut));
    assert!(!s.thread(early).ipc.receiving, "its wait is over");
    assert_eq!(queue.len(&mut s.threads), 2, "it left the queue");
    s.tick(100_000);
    assert_eq!(s.thread(late).ipc.outcome, Some(Error::TimedOut));
    assert_eq!(
        s.thread(patient).state,
        State::Blocked,
        "no timeout: it waits"
    );
    assert!(s.deadlines.is_empty());
    s.wake_all_in(&queue);
}

#[test]
fn a_caller_that_times_out_is_never_answered_by_its_server() {
    let mut s = scheduler();
    let caller = ready(&mut s, 4);
    let server = ready(&mut s, 4);
    assert_eq!(switch(&mut s), caller);
    s.thread_mut(caller).ipc.timeout_ns = 50;
    // The server took the call: the caller awaits the reply in no queue.
    let caller_ref = s.threads.reference(caller);
    let server_ref = s.threads.reference(server);
    s.thread_mut(caller).ipc.start_wait(true, false);
    s.thread_mut(caller).state = State::Blocked;
    s.thread_mut(caller).ipc.served_by = Some(server_ref);
    s.thread_mut(server).ipc.caller = Some(caller_ref);
    s.arm_timeout(|| 0);
    assert_eq!(switch(&mut s), server);
    s.tick(60);
    assert_eq!(s.thread(caller).ipc.outcome, Some(Error::TimedOut));
    assert!(!s.awaits_reply(caller_ref));
    let held = s.thread(server).ipc.caller.unwrap();
    assert!(
        s.threads.alive(held).is_none(),
        "the server's reference names nobody"
    );
    // The caller calls again; the stale reference still names nobody.
    s.thread_mut(caller).ipc.start_wait(true, false);
    s.thread_mut(caller).state = State::Blocked;
    assert!(!s.awaits_reply(held));
}
