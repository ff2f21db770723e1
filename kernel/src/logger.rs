//! The `log` facade's backend: timestamped lines on the kernel console.

use core::fmt;

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Makes `log` macros print to the console, stamped with the kernel clock.
pub fn install() {
    // A second installation attempt is harmless: the first logger stays.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Seconds and microseconds, as in `[    1.000250]`.
struct Timestamp(u64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:5}.{:06}]",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000 / 1000
        )
    }
}

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = crate::clock::now_ns();
        crate::console::print(format_args!(
            "{} {:<5} {}\n",
            Timestamp(now),
            record.level(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn timestamps_show_seconds_and_microseconds() {
        assert_eq!(Timestamp(1_000_250_999).to_string(), "[    1.000250]");
        assert_eq!(Timestamp(0).to_string(), "[    0.000000]");
    }
}
