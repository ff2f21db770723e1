//! Tests of threads and the scheduler with kernel threads. The boot
//! thread running the suite is a thread like the others: it yields or
//! sleeps to let them run.

use crate::ktest::{Outcome, Test};
use crate::mm::{PAGE_SIZE, frames, heap};
use crate::{ensure, ensure_eq, fail, task, timer};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use hal::Arch;
use spin::Mutex;

pub(crate) fn tests<A: Arch>() -> [Test; 4] {
    [
        crate::ktest!(task, kernel_threads_take_turns_on_yield::<A>),
        crate::ktest!(task, higher_priority_runs_first::<A>),
        crate::ktest!(task, sleep_wakes_at_the_deadline::<A>),
        crate::ktest!(task, ended_threads_free_their_stacks::<A>),
    ]
}

/// What the test threads did, in order.
static LOG: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static FINISHED: AtomicUsize = AtomicUsize::new(0);

fn reset() {
    LOG.lock().clear();
    FINISHED.store(0, Ordering::SeqCst);
}

/// Yields until `count` test threads have finished, or fails.
fn yield_until_finished<A: Arch>(count: usize) -> Outcome {
    for _ in 0..10_000 {
        if FINISHED.load(Ordering::SeqCst) >= count {
            // One more turn, so the last one is reaped.
            task::yield_now::<A>();
            return Ok(());
        }
        task::yield_now::<A>();
    }
    fail!(
        "only {} of {count} threads finished",
        FINISHED.load(Ordering::SeqCst)
    )
}

/// Logs its argument three times, yielding in between.
fn take_turns<A: Arch>(id: usize) {
    for _ in 0..3 {
        LOG.lock().push(id);
        task::yield_now::<A>();
    }
    FINISHED.fetch_add(1, Ordering::SeqCst);
}

fn kernel_threads_take_turns_on_yield<A: Arch>() -> Outcome {
    reset();
    for id in [1, 2] {
        if let Err(e) = task::spawn_kernel_thread::<A>("turns", 4, take_turns::<A>, id) {
            fail!("spawn: {e}");
        }
    }
    yield_until_finished::<A>(2)?;
    ensure_eq!(*LOG.lock(), [1, 2, 1, 2, 1, 2], "order of turns");
    Ok(())
}

fn log_once(id: usize) {
    LOG.lock().push(id);
    FINISHED.fetch_add(1, Ordering::SeqCst);
}

fn higher_priority_runs_first<A: Arch>() -> Outcome {
    reset();
    // The boot thread runs at the default priority (4): the low thread
    // runs only once it sleeps, the high one at its first yield.
    for (id, priority) in [(1, 2), (2, 6), (3, 4)] {
        if let Err(e) = task::spawn_kernel_thread::<A>("priority", priority, log_once, id) {
            fail!("spawn: {e}");
        }
    }
    if let Err(e) = task::start_ticking::<A>() {
        fail!("tick: {e}");
    }
    task::yield_now::<A>();
    let after_yield = LOG.lock().clone();
    let slept = task::sleep_until::<A>(A::monotonic_ns() + 5_000_000);
    timer::stop::<A>();
    ensure!(slept.is_ok(), "sleep interrupted");
    ensure_eq!(after_yield, [2, 3], "ran at the boot thread's yield");
    ensure_eq!(*LOG.lock(), [2, 3, 1], "ran by the end of its sleep");
    Ok(())
}

fn sleep_wakes_at_the_deadline<A: Arch>() -> Outcome {
    if let Err(e) = task::start_ticking::<A>() {
        fail!("tick: {e}");
    }
    let mut late = Vec::new();
    for ms in [1u64, 3, 10] {
        let start = A::monotonic_ns();
        let deadline = start + ms * 1_000_000;
        if task::sleep_until::<A>(deadline).is_err() {
            timer::stop::<A>();
            fail!("sleep interrupted");
        }
        let woke = A::monotonic_ns();
        if woke < deadline {
            timer::stop::<A>();
            fail!("woke {} ns before the deadline", deadline - woke);
        }
        late.push(woke - deadline);
    }
    timer::stop::<A>();
    // The tick is 1 ms; allow for a slow host, but not for a missed tick.
    ensure!(
        late.iter().any(|&ns| ns < 5_000_000),
        "every wake-up late by 5 ms or more: {late:?} ns"
    );
    Ok(())
}

fn ended_threads_free_their_stacks<A: Arch>() -> Outcome {
    reset();
    // A warm-up round sizes the heap and the thread table.
    for _ in 0..8 {
        if let Err(e) = task::spawn_kernel_thread::<A>("short", 4, log_once, 0) {
            fail!("spawn: {e}");
        }
    }
    yield_until_finished::<A>(8)?;
    reset();
    let heap_before = heap::usage().0;
    let (_, free_before) = frames::counts();
    let (_, threads_before) = task::counts();
    for _ in 0..8 {
        if let Err(e) = task::spawn_kernel_thread::<A>("short", 4, log_once, 0) {
            fail!("spawn: {e}");
        }
    }
    ensure!(frames::counts().1 < free_before, "stacks took no frames");
    yield_until_finished::<A>(8)?;
    let heap_grew = (heap::usage().0 - heap_before) / PAGE_SIZE;
    ensure_eq!(task::counts().1, threads_before, "threads alive");
    ensure_eq!(
        frames::counts().1 + heap_grew,
        free_before,
        "free frames after eight threads ended"
    );
    Ok(())
}
