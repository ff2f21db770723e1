//! Time system calls: `sleep` (`time` is answered in the dispatcher).

use super::{Outcome, one};
use crate::task;
use hal::Arch;

pub(super) fn sleep<A: Arch>(ns: u64) -> Outcome {
    if ns == 0 {
        task::yield_now::<A>();
        return one(0);
    }
    let deadline = A::monotonic_ns().saturating_add(ns);
    task::sleep_until::<A>(deadline)?;
    one(0)
}
