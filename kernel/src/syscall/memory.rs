//! Memory system calls: `map` and `unmap` of anonymous memory.

use super::decode::MapRequest;
use super::{Outcome, in_space, one};
use abi::{Error, layout};
use hal::Arch;

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
    in_space(|space| space.unmap_anonymous::<A>(start, end))?;
    one(0)
}
