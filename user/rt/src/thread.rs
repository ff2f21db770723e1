//! Threads in the calling process.

use crate::sys;
use abi::Error;
use alloc::boxed::Box;

/// Stack each thread gets (demand-zero: untouched pages cost nothing).
pub const STACK_SIZE: usize = 64 * 1024;

type Work = Box<dyn FnOnce() + Send + 'static>;

/// Entry of every thread: runs the boxed closure passed as the argument.
extern "C" fn thread_start(work: usize) -> ! {
    // SAFETY: `spawn` passes a pointer from Box::into_raw of a `Work`,
    // handed to exactly this thread.
    let work = unsafe { Box::from_raw(work as *mut Work) };
    work();
    sys::thread_exit()
}

/// A thread started with [`start`]: its id and a capability to it
/// (deleted when this is dropped).
#[derive(Debug)]
pub struct Thread {
    pub tid: u32,
    handle: abi::Handle,
}

impl Thread {
    /// The capability to the thread.
    pub fn handle(&self) -> abi::Handle {
        self.handle
    }

    /// Sets the thread's priority (0-7); above the default, `control`
    /// must be a control capability with `RIGHT_RAISE_PRIORITY`.
    pub fn set_priority(&self, priority: usize, control: Option<abi::Handle>) -> Result<(), Error> {
        set_priority_of(self.handle, priority, control)
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        let _ = crate::ipc::cap_delete(self.handle);
    }
}

/// Sets the priority of the thread `thread` names.
pub fn set_priority_of(
    thread: abi::Handle,
    priority: usize,
    control: Option<abi::Handle>,
) -> Result<(), Error> {
    sys::raw(
        abi::Syscall::ThreadSetPriority as usize,
        [
            thread as usize,
            priority,
            control.unwrap_or(0) as usize,
            0,
            0,
            0,
        ],
    )
    .map(|_| ())
}

/// Starts `work` on a new thread; returns its id. The thread's stack is
/// not freed when it ends (threads live as long as their process here).
pub fn spawn(work: impl FnOnce() + Send + 'static) -> Result<u32, Error> {
    let thread = start(work)?;
    Ok(thread.tid)
}

/// Starts `work` on a new thread, keeping a capability to it.
pub fn start(work: impl FnOnce() + Send + 'static) -> Result<Thread, Error> {
    let stack = sys::map(0, STACK_SIZE, abi::PROT_READ | abi::PROT_WRITE)?;
    let work: Box<Work> = Box::new(Box::new(work));
    let argument = Box::into_raw(work) as usize;
    match sys::thread_spawn(
        thread_start as *const () as usize,
        stack + STACK_SIZE,
        argument,
    ) {
        Ok((tid, handle)) => Ok(Thread { tid, handle }),
        Err(e) => {
            // SAFETY: the thread did not start, so the box is still ours.
            drop(unsafe { Box::from_raw(argument as *mut Work) });
            let _ = sys::unmap(stack, STACK_SIZE);
            Err(e)
        }
    }
}
