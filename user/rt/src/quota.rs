//! Memory quotas: a process's anonymous memory and the memory objects it
//! makes are charged to its quota, and a quota can be split to give a
//! child less than its parent (see `quota_split` in `docs/syscalls.md`).

use crate::sys;
use abi::{Error, Handle, Syscall};

/// A quota capability.
#[derive(Debug)]
pub struct Quota(Handle);
owned_handle!(Quota);

/// A quota's budget and what of it is held, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub limit: usize,
    pub used: usize,
}

impl Quota {
    /// A new quota of `pages`, taken from this one's budget until it goes.
    pub fn split(&self, pages: usize) -> Result<Quota, Error> {
        sys::raw(
            Syscall::QuotaSplit as usize,
            [self.0 as usize, pages, 0, 0, 0, 0],
        )
        .map(|handle| Quota(handle as Handle))
    }

    /// The budget and what is held of it.
    pub fn usage(&self) -> Result<Usage, Error> {
        usage(self.0)
    }

    /// Starts program `name` with `arguments`, its memory charged to this
    /// quota; the child gets this quota's capability first, then those
    /// `handles` name.
    pub fn start(
        &self,
        name: &str,
        arguments: &str,
        handles: &[Handle],
    ) -> Result<crate::process::Child, Error> {
        let mut all = alloc::vec::Vec::with_capacity(handles.len() + 1);
        all.push(self.0);
        all.extend_from_slice(handles);
        crate::process::start_with_flags(name, arguments, abi::SPAWN_QUOTA, &all)
    }
}

/// The budget and use of the quota `handle` names.
pub fn usage(handle: Handle) -> Result<Usage, Error> {
    sys::pair_call(Syscall::QuotaInfo, [handle as usize, 0, 0, 0, 0, 0])
        .map(|(limit, used)| Usage { limit, used })
}
