//! The kernel's view of time, installed from the architecture's clock.

use spin::Once;

static NOW_NS: Once<fn() -> u64> = Once::new();

/// Makes [`now_ns`] read `A`'s monotonic clock.
pub fn install<A: hal::Time>() {
    NOW_NS.call_once(|| A::monotonic_ns);
}

/// Nanoseconds since boot; 0 before a clock is installed.
pub fn now_ns() -> u64 {
    NOW_NS.get().map_or(0, |now| now())
}
