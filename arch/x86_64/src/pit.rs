//! The legacy PIT (8254) as a reference clock: its commands, and the
//! bookkeeping of a long calibration window read only now and then.
//!
//! Boot measures the TSC against the PIT over a short window (a busy wait:
//! under instruction counting every nanosecond of it is an instruction of
//! boot time), good to a few percent. [`Refinement`] then measures it
//! again over tens of milliseconds without waiting: channel 0 counts down
//! once from [`REFINEMENT_COUNT`] (mode 0, whose output goes high at zero
//! and stays high), and each timer tick reads its status and count back.
//! A window read too late to tell how long it was (the output is high)
//! starts again; one read at least [`REFINEMENT_TICKS`] in gives the rate.

/// The PIT's input clock.
pub const PIT_HZ: u64 = 1_193_182;
/// Channel 0's data port.
pub const CHANNEL0: u16 = 0x40;
/// The mode/command port.
pub const COMMAND: u16 = 0x43;
/// Channel 0, low then high byte, mode 2 (rate generator), binary.
pub const CHANNEL0_RATE_GENERATOR: u8 = 0x34;
/// Channel 0, low then high byte, mode 0 (interrupt on terminal count),
/// binary.
pub const CHANNEL0_ONE_SHOT: u8 = 0x30;
/// Latches channel 0's count.
pub const LATCH_CHANNEL0: u8 = 0x00;
/// Read-back: latches channel 0's status and count (read in that order).
pub const READ_BACK_CHANNEL0: u8 = 0xc2;

/// Status bit: the channel's output pin.
const STATUS_OUTPUT: u8 = 1 << 7;
/// Status bit: the count written has not reached the counter yet.
const STATUS_NULL_COUNT: u8 = 1 << 6;

/// What the refinement window counts down from: the longest it can be.
pub const REFINEMENT_COUNT: u16 = 0xffff;
/// How long a refinement window must run: 20 ms, so that a read's
/// lateness (a tick's interrupt latency) is a small fraction of it.
pub const REFINEMENT_TICKS: u32 = (PIT_HZ / 50) as u32;

/// The rate of a counter that advanced `ticks` while the PIT advanced
/// `pit_ticks`.
pub fn rate_hz(ticks: u64, pit_ticks: u32) -> Option<u64> {
    let rate = (ticks as u128 * PIT_HZ as u128).checked_div(pit_ticks as u128)?;
    u64::try_from(rate).ok().filter(|&hz| hz > 0)
}

/// What one read of a refinement window says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Not long enough yet.
    Running,
    /// Read too late to know its length: program channel 0 again
    /// ([`CHANNEL0_ONE_SHOT`], [`REFINEMENT_COUNT`]) and call
    /// [`Refinement::restart`].
    Restart,
    /// The TSC's rate, over the window of `pit_ticks`.
    Measured { tsc_hz: u64, pit_ticks: u32 },
}

/// A window measuring the TSC against channel 0 counting down once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refinement {
    /// The TSC when channel 0 was programmed.
    start_tsc: u64,
    /// Windows started, the first included.
    pub windows: u32,
}

impl Refinement {
    /// A window programmed (just now) when the TSC read `tsc`.
    pub fn new(tsc: u64) -> Refinement {
        Refinement {
            start_tsc: tsc,
            windows: 1,
        }
    }

    /// Channel 0 programmed again at `tsc`.
    pub fn restart(&mut self, tsc: u64) {
        self.start_tsc = tsc;
        self.windows += 1;
    }

    /// Takes the read-back `status` and `count` of channel 0, latched when
    /// the TSC read `tsc`.
    pub fn read(&self, status: u8, count: u16, tsc: u64) -> Step {
        if status & STATUS_OUTPUT != 0 {
            return Step::Restart;
        }
        if status & STATUS_NULL_COUNT != 0 {
            return Step::Running;
        }
        let elapsed = u32::from(REFINEMENT_COUNT - count);
        if elapsed < REFINEMENT_TICKS {
            return Step::Running;
        }
        match rate_hz(tsc.wrapping_sub(self.start_tsc), elapsed) {
            Some(tsc_hz) => Step::Measured {
                tsc_hz,
                pit_ticks: elapsed,
            },
            // A TSC that did not move: measuring again will not help,
            // nor hurt.
            None => Step::Restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status byte read back in mode 0, binary, low-then-high access.
    fn status(output: bool, null_count: bool) -> u8 {
        (u8::from(output) << 7) | (u8::from(null_count) << 6) | 0x30
    }

    #[test]
    fn a_window_long_enough_gives_the_rate() {
        let start = 5_000_000;
        let window = Refinement::new(start);
        // 25 ms of PIT ticks at a 2.5 GHz TSC.
        let pit = (PIT_HZ / 40) as u16;
        let tsc = start + 2_500_000_000 / 40;
        match window.read(status(false, false), REFINEMENT_COUNT - pit, tsc) {
            Step::Measured { tsc_hz, pit_ticks } => {
                assert_eq!(pit_ticks, pit as u32);
                assert!(tsc_hz.abs_diff(2_500_000_000) < 100_000, "{tsc_hz}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_short_window_runs_on() {
        let window = Refinement::new(0);
        let count = REFINEMENT_COUNT - (REFINEMENT_TICKS as u16 - 1);
        assert_eq!(
            window.read(status(false, false), count, 1_000_000),
            Step::Running
        );
        // The count not loaded yet: nothing has elapsed.
        assert_eq!(
            window.read(status(false, true), 0, 1_000_000),
            Step::Running
        );
    }

    #[test]
    fn a_window_read_after_its_end_starts_again() {
        let mut window = Refinement::new(0);
        // Past zero the count wraps and says nothing; the output says so.
        assert_eq!(
            window.read(status(true, false), 0xfff0, 900_000_000),
            Step::Restart
        );
        window.restart(900_000_000);
        assert_eq!(window.windows, 2);
        let pit = REFINEMENT_TICKS as u16;
        assert!(matches!(
            window.read(status(false, false), REFINEMENT_COUNT - pit, 920_000_000),
            Step::Measured { .. }
        ));
    }

    #[test]
    fn a_tsc_that_stood_still_measures_again() {
        let window = Refinement::new(77);
        let pit = REFINEMENT_TICKS as u16;
        assert_eq!(
            window.read(status(false, false), REFINEMENT_COUNT - pit, 77),
            Step::Restart
        );
        assert_eq!(rate_hz(10, 0), None);
    }
}
