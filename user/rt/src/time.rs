//! Time.

use core::time::Duration;

/// Time since boot on the monotonic clock.
pub fn now() -> Duration {
    Duration::from_nanos(crate::sys::time_ns())
}

/// Waits for at least `duration`.
pub fn sleep(duration: Duration) {
    crate::sys::sleep_ns(duration.as_nanos().min(u64::MAX as u128) as u64);
}
