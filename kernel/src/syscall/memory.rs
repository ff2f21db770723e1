//! Memory system calls: `map` and `unmap` of anonymous memory.

use super::{Outcome, in_space, one};
use abi::{Error, layout};
use hal::Arch;
use hal::mm::{MapFlags, PAGE_SIZE};

/// The page-rounded length and mapping flags of a `map` request.
fn anonymous_request(len: usize, protection: usize) -> Result<(usize, MapFlags), Error> {
    if protection & !(abi::PROT_READ | abi::PROT_WRITE) != 0 || len == 0 {
        return Err(Error::InvalidArgument);
    }
    let len = len
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Error::InvalidArgument)?;
    let flags = if protection & abi::PROT_WRITE != 0 {
        MapFlags::USER_RW
    } else {
        MapFlags::USER_RO
    };
    Ok((len, flags))
}

/// Checks that `[address, address + len)` is page-aligned and inside the
/// anonymous-memory window.
fn anonymous_range<A: Arch>(address: usize, len: usize) -> Result<usize, Error> {
    let end = address.checked_add(len).ok_or(Error::InvalidArgument)?;
    if !address.is_multiple_of(PAGE_SIZE) || address < layout::ANON_START || end > A::user_range().1
    {
        return Err(Error::InvalidArgument);
    }
    Ok(end)
}

pub(super) fn map<A: Arch>(address: usize, len: usize, protection: usize) -> Outcome {
    let (len, flags) = anonymous_request(len, protection)?;
    let start = in_space(|space| {
        let start = if address == 0 {
            space
                .find_gap(len, layout::ANON_START, A::user_range().1)
                .ok_or(Error::OutOfMemory)?
        } else {
            anonymous_range::<A>(address, len)?;
            address
        };
        space.map_anonymous(start, len, flags)?;
        Ok(start)
    })?;
    one(start)
}

pub(super) fn unmap<A: Arch>(address: usize, len: usize) -> Outcome {
    let (len, _) = anonymous_request(len, abi::PROT_READ)?;
    let end = anonymous_range::<A>(address, len)?;
    in_space(|space| space.unmap_anonymous::<A>(address, end))?;
    one(0)
}
