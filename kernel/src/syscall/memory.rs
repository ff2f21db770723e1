//! Memory system calls: `map` and `unmap` of anonymous memory, and memory
//! objects: creating, mapping (shared), unmapping, locating.

use super::cap::{insert, object};
use super::decode::MapRequest;
use super::{Outcome, in_space, one, two, unmapping};
use crate::mm::PAGE_SIZE;
use crate::mm::quota::Quota;
use crate::object::Object;
use crate::object::cap::Capability;
use crate::object::memory::MemoryObject;
use crate::task;
use abi::{Error, Handle, ObjectKind, layout};
use alloc::sync::Arc;
use hal::Arch;
use hal::mm::MapFlags;

pub(super) fn map<A: Arch>(request: MapRequest) -> Outcome {
    let start = in_space(|space| {
        let start = match request.start {
            Some(start) => start,
            None => space
                .find_gap(request.len, layout::ANON_START, A::user_range().1)
                .ok_or(Error::OutOfMemory)?,
        };
        space.map_anonymous(start, request.len, request.flags)?;
        Ok(start)
    })?;
    one(start)
}

pub(super) fn unmap<A: Arch>(start: usize, end: usize) -> Outcome {
    unmapping(|space| space.unmap_anonymous::<A>(start, end))?;
    one(0)
}

pub(super) fn create(size: usize, contiguous: bool) -> Outcome {
    let object = MemoryObject::new(size, contiguous, task::current_quota().as_ref())?;
    let object = crate::mm::heap::try_box(object).map_err(|_| Error::OutOfMemory)?;
    let capability = Capability::new(Object::Memory(Arc::from(object)), abi::MEMORY_RIGHTS, 0);
    one(insert(capability)? as usize)
}

/// The quota `handle` names, if the capability has `rights`.
fn quota(handle: Handle, rights: abi::Rights) -> Result<Arc<Quota>, Error> {
    match object(handle, ObjectKind::Quota, rights)? {
        Object::Quota(quota) => Ok(quota),
        _ => Err(Error::WrongType),
    }
}

pub(super) fn split_quota(handle: Handle, pages: usize) -> Outcome {
    let split = quota(handle, abi::RIGHT_SPLIT)?.split(pages)?;
    let capability = Capability::new(Object::Quota(split), abi::QUOTA_RIGHTS, 0);
    one(insert(capability)? as usize)
}

pub(super) fn quota_info(handle: Handle) -> Outcome {
    let quota = quota(handle, 0)?;
    two(quota.limit(), quota.used())
}

/// The memory object `handle` names, if the capability has `rights`.
fn memory_object(handle: Handle, rights: abi::Rights) -> Result<Arc<MemoryObject>, Error> {
    match object(handle, ObjectKind::Memory, rights)? {
        Object::Memory(memory) => Ok(memory),
        _ => Err(Error::WrongType),
    }
}

pub(super) fn map_object<A: Arch>(handle: Handle, start: Option<usize>, writable: bool) -> Outcome {
    let rights = abi::RIGHT_MAP_READ | if writable { abi::RIGHT_MAP_WRITE } else { 0 };
    let object = memory_object(handle, rights)?;
    let len = object.frames().len() * PAGE_SIZE;
    let mut flags = if writable {
        MapFlags::USER_RW
    } else {
        MapFlags::USER_RO
    };
    if object.is_device() {
        flags |= MapFlags::DEVICE;
    }
    let user_end = A::user_range().1;
    let start = in_space(|space| {
        let start = match start {
            Some(start) if start.checked_add(len).is_some_and(|end| end <= user_end) => start,
            Some(_) => return Err(Error::InvalidArgument),
            None => space
                .find_gap(len, layout::ANON_START, user_end)
                .ok_or(Error::OutOfMemory)?,
        };
        let frames = object.frames();
        space.map_shared::<A>(start, frames, flags, object.clone())?;
        Ok(start)
    })?;
    // The mapping holds the object now; this reference goes outside the
    // lock (it is never the last: the mapping's is alive).
    drop(object);
    two(start, len)
}

pub(super) fn unmap_object<A: Arch>(start: usize) -> Outcome {
    let object = unmapping(|space| space.unmap_shared::<A>(start))?;
    drop(object);
    one(0)
}

pub(super) fn physical(handle: Handle) -> Outcome {
    let object = memory_object(handle, 0)?;
    let address = object.physical().ok_or(Error::InvalidArgument)?;
    two(address as usize, (address >> 32) as usize)
}
