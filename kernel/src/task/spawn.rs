//! Starting things: programs from the boot archive in new processes,
//! threads in the current process, and kernel threads.

use super::exit::exit_thread;
use super::image;
use super::process::{MAX_PROCESSES, MAX_THREADS_PER_PROCESS, Parent, Pid, Process, Resources};
use super::sched::{self, SCHEDULER};
use super::space::{Region, RegionKind, UserSpace};
use super::thread::{MAX_THREADS, PRIORITIES, Thread, ThreadRef, Tid};
use crate::archive::Archive;
use crate::mm::quota::Quota;
use crate::mm::{self, stack::KernelStack};
use abi::{Error, Name, layout};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use hal::mm::MapFlags;
use hal::{Arch, UserEntry};
use spin::Once;

/// Frames user memory never takes, and that starting a process or thread
/// leaves free: what the kernel itself may still need (its heap, page
/// tables, stacks) when user programs have used everything else.
pub const RESERVED_FRAMES: usize = 256;

/// Frames a new process or thread takes at least (stacks, tables, image).
const START_FRAMES: usize = 64;

static ARCHIVE: Once<Archive<'static>> = Once::new();

/// Programs will come from `archive`.
pub(super) fn set_archive(archive: Archive<'static>) {
    ARCHIVE.call_once(|| archive);
}

fn archive() -> Archive<'static> {
    ARCHIVE.get().copied().unwrap_or(Archive::EMPTY)
}

/// What `spawn` gives a new process.
pub struct SpawnOptions<'a> {
    /// Bytes copied to the top of its stack; their address and length are
    /// its entry point's two arguments.
    pub arguments: &'a [u8],
    /// Who learns how it ended.
    pub parent: Parent,
    /// Its capabilities.
    pub resources: Option<Resources>,
    /// The quota its memory is charged to (see `mm::quota`); `None`
    /// charges none.
    pub quota: Option<Arc<Quota>>,
}

/// Whether there is room to start a process or thread beyond the reserve.
fn enough_frames() -> bool {
    mm::frames::counts().1 >= RESERVED_FRAMES + START_FRAMES
}

/// Starts program `name` from the boot archive in a new process.
pub fn spawn<A: Arch>(name: &str, options: SpawnOptions<'_>) -> Result<Pid, Error> {
    let image = archive().find(name).ok_or(Error::NotFound)?;
    let plan = image::plan(image, image::Target::native(A::ELF_MACHINE)).map_err(|e| {
        log::warn!("program {name:?} cannot run: {e}");
        Error::BadImage
    })?;
    if options.arguments.len() > abi::MAX_ARGUMENTS_LENGTH {
        return Err(Error::TooLong);
    }
    {
        let s = SCHEDULER.lock();
        if s.processes.count() >= MAX_PROCESSES || s.threads.live() >= MAX_THREADS {
            return Err(Error::LimitReached);
        }
    }
    if !enough_frames() {
        return Err(Error::OutOfMemory);
    }
    // The record first: a user space has no destructor (freeing it needs
    // the architecture), so from here every failure path destroys it.
    let mut process = Process::new(name, options.parent, options.resources)?;
    let mut space = UserSpace::new::<A>()?;
    if let Some(quota) = &options.quota
        && let Err(error) = space.charge_to(quota)
    {
        space.destroy::<A>();
        return Err(error);
    }
    process.quota = options.quota;
    let stack_pointer = match prepare_image::<A>(&mut space, image, &plan, options.arguments) {
        Ok(sp) => sp,
        Err(e) => {
            space.destroy::<A>();
            return Err(e);
        }
    };
    let entry = UserEntry {
        pc: plan.entry,
        sp: stack_pointer,
        args: [stack_pointer, options.arguments.len()],
    };
    let mut thread = match new_user_thread::<A>(entry) {
        Ok(thread) => thread,
        Err(e) => {
            space.destroy::<A>();
            return Err(e);
        }
    };
    process.space = Some(space);
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    let inserted = s.processes.insert(process).and_then(|slot| {
        attach(&mut thread, slot, s.processes.get(slot));
        match s.threads.insert(thread) {
            Ok(index) => Ok((slot, index)),
            Err(_) => Err(s.processes.remove(slot).expect("just inserted")),
        }
    });
    match inserted {
        Ok((slot, index)) => {
            s.make_ready(index);
            let process = s.processes.get(slot);
            if let Some(space) = &process.space {
                crate::inspect::add_process(process.pid, process.name, space.root().0);
            }
            Ok(process.pid)
        }
        Err(mut process) => {
            drop(guard);
            if let Some(space) = process.space.take() {
                space.destroy::<A>();
            }
            Err(Error::LimitReached)
        }
    }
}

/// Loads a checked image, adds the main stack and copies the arguments to
/// its top; returns the initial stack pointer.
fn prepare_image<A: Arch>(
    space: &mut UserSpace,
    image: &[u8],
    plan: &image::Plan,
    arguments: &[u8],
) -> Result<usize, Error> {
    space.load::<A>(image, plan)?;
    // The image's pages and the whole stack, for as long as it lives.
    space.charge_pages(space.resident_pages() + layout::STACK_SIZE / mm::PAGE_SIZE)?;
    space.add_region(Region {
        start: layout::STACK_BASE,
        end: layout::IMAGE_END,
        flags: MapFlags::USER_RW,
        kind: RegionKind::Stack,
    })?;
    let stack_pointer = (layout::STACK_TOP - arguments.len()) & !15;
    space.write::<A>(stack_pointer, arguments)?;
    Ok(stack_pointer)
}

fn new_user_thread<A: Arch>(entry: UserEntry) -> Result<Box<Thread>, Error> {
    let stack = KernelStack::new().map_err(|_| Error::OutOfMemory)?;
    let top = stack.top();
    // SAFETY: the stack was just mapped and nothing uses it.
    let sp = unsafe { A::prepare_user_thread(top, entry) };
    Thread::new("user", Some(stack), top, sp)
}

/// Starts a thread in the current process at `entry(argument)` with stack
/// pointer `stack_top`.
pub fn spawn_thread<A: Arch>(
    entry: usize,
    stack_top: usize,
    argument: usize,
) -> Result<ThreadRef, Error> {
    let (user_start, user_end) = A::user_range();
    if !(user_start..user_end).contains(&entry) || !(user_start..=user_end).contains(&stack_top) {
        return Err(Error::BadAddress);
    }
    {
        let s = SCHEDULER.lock();
        let slot = s.current_process().ok_or(Error::InvalidArgument)?;
        if s.processes.get(slot).live_threads >= MAX_THREADS_PER_PROCESS {
            return Err(Error::LimitReached);
        }
    }
    if !enough_frames() {
        return Err(Error::OutOfMemory);
    }
    let mut thread = new_user_thread::<A>(UserEntry {
        pc: entry,
        sp: stack_top,
        args: [argument, 0],
    })?;
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    let slot = s.current_process().ok_or(Error::InvalidArgument)?;
    attach(&mut thread, slot, s.processes.get(slot));
    let index = s.threads.insert(thread)?;
    s.processes.get_mut(slot).live_threads += 1;
    let thread = s.threads.reference(index);
    s.make_ready(index);
    Ok(thread)
}

extern "C" fn kernel_thread_main<A: Arch>(_: usize) -> ! {
    sched::reap();
    let entry = {
        let s = SCHEDULER.lock();
        s.thread(s.current).entry
    };
    if let Some((work, argument)) = entry {
        work(argument);
    }
    exit_thread::<A>()
}

/// Starts a kernel thread running `work(argument)` at `priority`; it ends
/// when `work` returns.
pub fn spawn_kernel_thread<A: Arch>(
    name: &'static str,
    priority: u8,
    work: fn(usize),
    argument: usize,
) -> Result<Tid, Error> {
    if priority as usize >= PRIORITIES {
        return Err(Error::InvalidArgument);
    }
    let stack = KernelStack::new().map_err(|_| Error::OutOfMemory)?;
    let top = stack.top();
    // SAFETY: the stack was just mapped and nothing uses it.
    let sp = unsafe { A::prepare_kernel_thread(top, kernel_thread_main::<A>, 0) };
    let mut thread = Thread::new(name, Some(stack), top, sp)?;
    thread.entry = Some((work, argument));
    thread.priority = priority;
    let mut s = SCHEDULER.lock();
    let index = s.threads.insert(thread)?;
    let tid = s.thread(index).tid;
    s.make_ready(index);
    Ok(tid)
}

/// The names of the programs in the boot archive.
pub fn program_names() -> Result<Vec<Name>, Error> {
    let archive = archive();
    let mut names = Vec::new();
    names
        .try_reserve(archive.len())
        .map_err(|_| Error::OutOfMemory)?;
    names.extend(archive.names().map(abi::name_from));
    Ok(names)
}

/// Makes `thread` a thread of `process`, at `slot` of the process table.
pub(super) fn attach(thread: &mut Thread, slot: usize, process: &Process) {
    thread.process = Some(slot);
    thread.pid = process.pid;
    thread.space = process.space.as_ref().map(UserSpace::root);
    thread.resources = process.resources_at();
}
