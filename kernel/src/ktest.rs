//! The in-kernel test runner.
//!
//! Tests are plain functions returning [`Outcome`]; they report failure with
//! [`ensure!`](crate::ensure) and friends rather than by panicking, because a
//! panic in a `no_std` kernel cannot be caught. Results are printed one per
//! line in a fixed format that `cargo xtask test` parses:
//!
//! ```text
//! ktest: begin 12
//! ktest: pass boot::memory_map_is_sorted 0.120 ms
//! ktest: fail console::loopback: sent 0x55, nothing came back (arch/.../tests.rs:40)
//! ktest: skip user::smep_and_smap: the CPU has no SMEP (arch/.../tests.rs:160)
//! ktest: end 10 passed 1 failed 1 skipped
//! ```
//!
//! A test skips (with [`skip!`](crate::skip)) only when the machine lacks
//! what it checks, and says what is missing.

use crate::{clock, fixed_string::FixedString, kprintln};
use core::fmt;
use spin::Mutex;

/// The message of the latest failure. Tests run one at a time, so one
/// buffer suffices, and it keeps [`Outcome`] small (the kernel may have no
/// heap when tests run).
static LAST_MESSAGE: Mutex<FixedString<320>> = Mutex::new(FixedString::new());

/// One in-kernel test.
#[derive(Clone, Copy)]
pub struct Test {
    /// `area::what_it_checks`, unique within a suite.
    pub name: &'static str,
    /// The test itself.
    pub run: fn() -> Outcome,
}

/// What a test returns.
pub type Outcome = Result<(), Failure>;

/// Where a test failed or skipped; the message is kept in
/// [`LAST_MESSAGE`].
#[derive(Debug)]
pub struct Failure {
    file: &'static str,
    line: u32,
    /// The test could not run here (the machine lacks what it checks).
    skipped: bool,
}

impl Failure {
    /// A failure at `file:line` with a formatted message.
    pub fn new(file: &'static str, line: u32, message: fmt::Arguments<'_>) -> Self {
        *LAST_MESSAGE.lock() = FixedString::from_fmt(message);
        Failure {
            file,
            line,
            skipped: false,
        }
    }

    /// A skip at `file:line`; the message says what the machine lacks.
    pub fn skip(file: &'static str, line: u32, reason: fmt::Arguments<'_>) -> Self {
        Failure {
            skipped: true,
            ..Failure::new(file, line, reason)
        }
    }

    /// The message of the most recent failure.
    pub fn message(&self) -> FixedString<320> {
        LAST_MESSAGE.lock().clone()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{})", self.message(), self.file, self.line)
    }
}

/// A [`Test`] named `area::function` that runs `function`, so the name in
/// reports is the function's: `ktest!(mm, heap_workload)`, or with the
/// architecture as a type argument, `ktest!(mm, large_pages::<A>)`.
#[macro_export]
macro_rules! ktest {
    ($area:ident, $test:ident $(::<$($generic:ty),+>)?) => {
        $crate::ktest::Test {
            name: concat!(stringify!($area), "::", stringify!($test)),
            run: $test $(::<$($generic),+>)?,
        }
    };
}

/// Fails the test with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)+) => {
        return Err($crate::ktest::Failure::new(file!(), line!(), format_args!($($arg)+)))
    };
}

/// Skips the test, saying what the machine lacks for it.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)+) => {
        return Err($crate::ktest::Failure::skip(file!(), line!(), format_args!($($arg)+)))
    };
}

/// Fails the test unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::fail!($($arg)+);
        }
    };
}

/// Fails the test unless the two values are equal, showing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    $crate::fail!("{}: {:?} != {:?}", format_args!($($arg)+), left, right);
                }
            }
        }
    };
}

/// Counts from a suite run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that could not run on this machine.
    pub skipped: usize,
}

impl Verdict {
    /// Whether the suite ran something and nothing failed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

/// Runs every test of every group in order and prints the results.
pub fn run(groups: &[&[Test]]) -> Verdict {
    let total: usize = groups.iter().map(|g| g.len()).sum();
    kprintln!("ktest: begin {total}");
    let mut verdict = Verdict::default();
    for test in groups.iter().flat_map(|g| g.iter()) {
        let start = clock::now_ns();
        match (test.run)() {
            Ok(()) => {
                let micros = (clock::now_ns() - start) / 1000;
                kprintln!(
                    "ktest: pass {} {}.{:03} ms",
                    test.name,
                    micros / 1000,
                    micros % 1000
                );
                verdict.passed += 1;
            }
            Err(skip) if skip.skipped => {
                kprintln!("ktest: skip {}: {skip}", test.name);
                verdict.skipped += 1;
            }
            Err(failure) => {
                kprintln!("ktest: fail {}: {failure}", test.name);
                verdict.failed += 1;
            }
        }
    }
    kprintln!(
        "ktest: end {} passed {} failed {} skipped",
        verdict.passed,
        verdict.failed,
        verdict.skipped
    );
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes() -> Outcome {
        let sum = core::hint::black_box(1) + 1;
        ensure!(sum == 2, "arithmetic");
        Ok(())
    }

    fn fails() -> Outcome {
        ensure_eq!(2 + 2, 5, "sum of {}", "twos");
        Ok(())
    }

    fn skips() -> Outcome {
        skip!("no {} here", "widget");
    }

    #[test]
    fn runner_counts_passes_and_failures() {
        let group = [
            Test {
                name: "a::passes",
                run: passes,
            },
            Test {
                name: "a::fails",
                run: fails,
            },
            Test {
                name: "a::skips",
                run: skips,
            },
        ];
        assert_eq!(
            run(&[&group]),
            Verdict {
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
        assert_eq!(skips().unwrap_err().message().as_str(), "no widget here");
    }

    #[test]
    fn failure_messages_show_both_values_and_location() {
        let failure = fails().unwrap_err();
        assert_eq!(failure.message().as_str(), "sum of twos: 4 != 5");
        assert!(failure.to_string().contains("ktest.rs:"));
    }

    #[test]
    fn an_empty_suite_is_not_a_pass() {
        assert!(!run(&[]).all_passed());
    }
}
