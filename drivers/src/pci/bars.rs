//! Checking and placing PCI BARs. Firmware may leave BARs unassigned
//! (qboot does), or assign them badly; a BAR placed over RAM or another
//! device corrupts memory as soon as the device is used. So every BAR the
//! firmware assigned is checked before anyone trusts it: inside a window
//! the firmware routes to PCI, aligned to its size, clear of RAM and the
//! platform's own devices (LAPIC, IOAPICs, the ECAM range) and of every
//! other BAR. A BAR that fails is refused, and its device with it, with a
//! report that names the device. Unassigned BARs are then placed in the
//! windows, aligned to their size, largest first so that alignment wastes
//! little, around everything already there.
//!
//! The logic needs no config space and no allocation: the caller reads
//! the BARs, lets [`plan`] check and place them, and writes the addresses
//! of the placed ones back (no crate does this part; `pci_types` decodes
//! BARs but leaves their placement to the system).

use super::Address;
use core::fmt;

/// The address space a BAR decodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Space {
    #[default]
    Memory,
    Io,
}

/// A half-open range `[start, end)` of one space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub const fn new(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    fn contains(&self, other: &Range) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// What became of a BAR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Assigned by the firmware, and found sound.
    Trusted,
    /// Unassigned, and placed by [`plan`]: its address is to be written.
    Placed,
    /// Refused (see the report): its device must not be enabled.
    Refused,
    /// Not yet looked at (what the caller gives [`plan`]).
    #[default]
    Unchecked,
}

/// One BAR of one function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bar {
    pub owner: Address,
    pub vendor: u16,
    pub device: u16,
    /// Its index, 0 to 5 (a 64-bit BAR takes its index and the next).
    pub index: u8,
    pub space: Space,
    /// Its address as read (0: unassigned); as placed after [`plan`].
    pub base: u64,
    /// Bytes it decodes: a power of two.
    pub size: u64,
    /// A 64-bit memory BAR may be placed above 4 GiB.
    pub wide: bool,
    pub state: State,
}

impl Bar {
    fn range(&self) -> Range {
        Range::new(self.base, self.base.saturating_add(self.size))
    }
}

/// A range no BAR may overlap, and what is there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    pub what: &'static str,
    pub space: Space,
    pub range: Range,
}

/// Why a BAR was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Its size is not a power of two (no device decodes such a BAR).
    BadSize,
    /// Its address is not a multiple of its size.
    Misaligned,
    /// It lies outside every window the firmware routes to PCI.
    OutsideWindows,
    /// It overlaps something that is not PCI.
    Overlaps(&'static str),
    /// It overlaps another BAR, of the function and index given.
    OverlapsBar(Address, u8),
    /// No room is left for it in the windows.
    NoRoom,
}

/// A refused BAR and why, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub bar: Bar,
    pub problem: Problem,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bar = &self.bar;
        write!(
            f,
            "PCI {} ({:04x}:{:04x}) BAR {} [{:#x}, {:#x} bytes]: ",
            bar.owner, bar.vendor, bar.device, bar.index, bar.base, bar.size
        )?;
        match self.problem {
            Problem::BadSize => write!(f, "its size is not a power of two"),
            Problem::Misaligned => write!(f, "not aligned to its size"),
            Problem::OutsideWindows => write!(f, "outside the firmware's PCI windows"),
            Problem::Overlaps(what) => write!(f, "overlaps {what}"),
            Problem::OverlapsBar(owner, index) => write!(f, "overlaps BAR {index} of {owner}"),
            Problem::NoRoom => write!(f, "no room left in the PCI windows"),
        }
    }
}

/// Checks the firmware's BARs and places the unassigned ones. `windows`
/// are the ranges the firmware routes to PCI; `reserved`, what no BAR may
/// overlap. Each BAR ends `Trusted`, `Placed` or `Refused`; every refusal
/// goes to `report`. A memory BAR that is not `wide` is placed below
/// 4 GiB.
pub fn plan(
    bars: &mut [Bar],
    windows: &[(Space, Range)],
    reserved: &[Reserved],
    mut report: impl FnMut(Refusal),
) {
    let mut refuse = |bar: &mut Bar, problem: Problem| {
        bar.state = State::Refused;
        report(Refusal { bar: *bar, problem });
    };
    // The firmware's first, each against the fixed things and the windows.
    for bar in bars.iter_mut().filter(|bar| bar.base != 0) {
        let range = bar.range();
        let problem = if !bar.size.is_power_of_two() {
            Some(Problem::BadSize)
        } else if !bar.base.is_multiple_of(bar.size) {
            Some(Problem::Misaligned)
        } else if let Some(fixed) = reserved
            .iter()
            .find(|r| r.space == bar.space && r.range.overlaps(&range))
        {
            Some(Problem::Overlaps(fixed.what))
        } else if !windows
            .iter()
            .any(|(space, window)| *space == bar.space && window.contains(&range))
        {
            Some(Problem::OutsideWindows)
        } else {
            None
        };
        match problem {
            Some(problem) => refuse(bar, problem),
            None => bar.state = State::Trusted,
        }
    }
    // Then against each other: both of an overlapping pair are refused,
    // for neither can be trusted to be where the device decodes.
    for i in 0..bars.len() {
        for j in i + 1..bars.len() {
            let (a, b) = (bars[i], bars[j]);
            let live = |bar: &Bar| bar.state == State::Trusted || bar.state == State::Refused;
            if a.base == 0 || b.base == 0 || !live(&a) || !live(&b) {
                continue;
            }
            if a.space == b.space && a.range().overlaps(&b.range()) {
                if bars[i].state == State::Trusted {
                    refuse(&mut bars[i], Problem::OverlapsBar(b.owner, b.index));
                }
                if bars[j].state == State::Trusted {
                    refuse(&mut bars[j], Problem::OverlapsBar(a.owner, a.index));
                }
            }
        }
    }
    // The unassigned, largest first.
    while let Some(next) = largest_unplaced(bars) {
        let bar = bars[next];
        if !bar.size.is_power_of_two() {
            refuse(&mut bars[next], Problem::BadSize);
            continue;
        }
        match find_room(&bar, bars, windows, reserved) {
            Some(base) => {
                bars[next].base = base;
                bars[next].state = State::Placed;
            }
            None => refuse(&mut bars[next], Problem::NoRoom),
        }
    }
}

fn largest_unplaced(bars: &[Bar]) -> Option<usize> {
    (0..bars.len())
        .filter(|&i| bars[i].base == 0 && bars[i].state == State::Unchecked)
        .max_by_key(|&i| (bars[i].size, core::cmp::Reverse(i)))
}

/// The lowest base, aligned to `bar`'s size, at which it fits a window
/// clear of the reserved ranges and of every BAR in use.
fn find_room(
    bar: &Bar,
    bars: &[Bar],
    windows: &[(Space, Range)],
    reserved: &[Reserved],
) -> Option<u64> {
    let limit = match (bar.space, bar.wide) {
        (Space::Memory, false) => 1 << 32,
        _ => u64::MAX,
    };
    let taken = |range: &Range| {
        reserved
            .iter()
            .filter(|r| r.space == bar.space)
            .map(|r| r.range)
            .chain(
                bars.iter()
                    .filter(|b| {
                        b.space == bar.space && matches!(b.state, State::Trusted | State::Placed)
                    })
                    .map(Bar::range),
            )
            .find(|other| other.overlaps(range))
    };
    for (_, window) in windows.iter().filter(|(space, _)| *space == bar.space) {
        let mut base = window.start.checked_next_multiple_of(bar.size)?;
        loop {
            let end = base.checked_add(bar.size)?;
            if end > window.end || end > limit {
                break;
            }
            let candidate = Range::new(base, end);
            match taken(&candidate) {
                // Past what is in the way, aligned again.
                Some(other) => base = other.end.checked_next_multiple_of(bar.size)?,
                None => return Some(base),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn bar(device: u8, index: u8, space: Space, base: u64, size: u64) -> Bar {
        Bar {
            owner: Address::new(0, device, 0),
            vendor: 0x1af4,
            device: 0x1000 + device as u16,
            index,
            space,
            base,
            size,
            wide: false,
            state: State::Unchecked,
        }
    }

    /// q35's shape: RAM below 2 GiB, the PCI hole above it up to the
    /// IOAPIC, the ECAM range inside the hole, and ports above 0x1000.
    fn windows() -> [(Space, Range); 2] {
        [
            (Space::Memory, Range::new(0x8000_0000, 0xfec0_0000)),
            (Space::Io, Range::new(0x1000, 0x1_0000)),
        ]
    }

    fn reserved() -> [Reserved; 4] {
        [
            Reserved {
                what: "RAM",
                space: Space::Memory,
                range: Range::new(0, 0x8000_0000),
            },
            Reserved {
                what: "the ECAM range",
                space: Space::Memory,
                range: Range::new(0xb000_0000, 0xc000_0000),
            },
            Reserved {
                what: "the IOAPIC",
                space: Space::Memory,
                range: Range::new(0xfec0_0000, 0xfec0_1000),
            },
            Reserved {
                what: "the LAPIC",
                space: Space::Memory,
                range: Range::new(0xfee0_0000, 0xfee0_1000),
            },
        ]
    }

    /// The refusals `plan` reports.
    fn run(bars: &mut [Bar]) -> Vec<Refusal> {
        let mut reports = Vec::new();
        plan(bars, &windows(), &reserved(), |refusal| {
            reports.push(refusal)
        });
        reports
    }

    fn problems(reports: &[Refusal]) -> Vec<(u8, Problem)> {
        reports
            .iter()
            .map(|r| (r.bar.owner.device, r.problem))
            .collect()
    }

    /// Up to 24 BARs of any size, space and firmware address (0: left to
    /// the plan): whatever the firmware did, every BAR the plan keeps is
    /// aligned to its size, inside its space's window, clear of every
    /// reserved range and of every other BAR kept.
    #[test]
    fn fuzz_bar_plans() {
        bolero::check!()
            .with_type::<Vec<(u8, bool, u8, u32)>>()
            .for_each(|inputs| {
                let mut bars: Vec<Bar> = inputs
                    .iter()
                    .take(24)
                    .enumerate()
                    .map(|(n, &(device, io, size_log, base))| {
                        let space = if io { Space::Io } else { Space::Memory };
                        let size = 1u64 << (size_log % 28 + 4);
                        let base = if base % 4 == 0 { 0 } else { base as u64 };
                        bar(device % 32, (n % 6) as u8, space, base, size)
                    })
                    .collect();
                run(&mut bars);
                let kept: Vec<&Bar> = bars
                    .iter()
                    .filter(|b| matches!(b.state, State::Trusted | State::Placed))
                    .collect();
                for b in &kept {
                    assert_eq!(b.base % b.size, 0, "{b:?} misaligned");
                    assert!(
                        windows()
                            .iter()
                            .any(|(space, w)| *space == b.space && w.contains(&b.range())),
                        "{b:?} outside its window"
                    );
                    assert!(
                        !reserved()
                            .iter()
                            .any(|r| r.space == b.space && r.range.overlaps(&b.range())),
                        "{b:?} over a reserved range"
                    );
                }
                for (i, a) in kept.iter().enumerate() {
                    for b in &kept[i + 1..] {
                        assert!(
                            a.space != b.space || !a.range().overlaps(&b.range()),
                            "{a:?} and {b:?} overlap"
                        );
                    }
                }
            });
    }

    #[test]
    fn sound_firmware_bars_are_trusted_as_they_are() {
        let mut bars = [
            bar(1, 0, Space::Memory, 0xfd00_0000, 16 * MIB),
            bar(2, 0, Space::Memory, 0xfebf_0000, 0x1000),
            bar(2, 1, Space::Io, 0xc000, 0x40),
        ];
        let before = bars;
        assert_eq!(run(&mut bars), []);
        for (after, before) in bars.iter().zip(before) {
            assert_eq!((after.base, after.state), (before.base, State::Trusted));
        }
    }

    #[test]
    fn a_bar_over_ram_or_a_platform_device_is_refused_by_name() {
        let mut bars = [
            bar(1, 0, Space::Memory, 0x7ff0_0000, MIB),
            bar(2, 0, Space::Memory, 0xb000_0000, 0x1000),
            bar(3, 0, Space::Memory, 0xfee0_0000, 0x1000),
            bar(4, 0, Space::Memory, 0xfe00_1000, 0x2000),
            bar(5, 0, Space::Memory, 0xfed0_0000, 0x1000),
        ];
        let reports = run(&mut bars);
        assert_eq!(
            problems(&reports),
            [
                (1, Problem::Overlaps("RAM")),
                (2, Problem::Overlaps("the ECAM range")),
                (3, Problem::Overlaps("the LAPIC")),
                (4, Problem::Misaligned),
                (5, Problem::OutsideWindows),
            ]
        );
        assert!(bars.iter().all(|b| b.state == State::Refused));
        // The report names the device, its ids and the BAR.
        assert_eq!(
            reports[0].to_string(),
            "PCI 00:01.0 (1af4:1001) BAR 0 [0x7ff00000, 0x100000 bytes]: overlaps RAM"
        );
    }

    #[test]
    fn overlapping_bars_are_both_refused_and_other_spaces_do_not_clash() {
        let mut bars = [
            bar(1, 0, Space::Memory, 0xfe00_0000, 0x2000),
            bar(2, 0, Space::Memory, 0xfe00_1000, 0x1000),
            // Same numbers, other space: no clash.
            bar(3, 0, Space::Io, 0xfe00, 0x100),
            bar(4, 0, Space::Memory, 0xfe00_fe00, 0x100),
        ];
        let reports = run(&mut bars);
        assert_eq!(reports.len(), 2);
        assert_eq!(bars[0].state, State::Refused);
        assert_eq!(bars[1].state, State::Refused);
        assert_eq!(bars[2].state, State::Trusted);
        assert_eq!(bars[3].state, State::Trusted);
        assert!(problems(&reports).contains(&(1, Problem::OverlapsBar(Address::new(0, 2, 0), 0))));
    }

    #[test]
    fn unassigned_bars_are_placed_aligned_around_everything_else() {
        let mut bars = [
            bar(1, 0, Space::Memory, 0, 0x1000),
            bar(2, 0, Space::Memory, 0x8000_0000, 16 * MIB),
            bar(3, 0, Space::Memory, 0, 64 * MIB),
            bar(4, 0, Space::Io, 0, 0x20),
            bar(5, 0, Space::Memory, 0, 3 * 0x1000),
        ];
        assert_eq!(problems(&run(&mut bars)), [(5, Problem::BadSize)]);
        assert_eq!(bars[1].state, State::Trusted);
        // Largest first: after the firmware's 16 MiB, at the next multiple
        // of 64 MiB; then the page right after the 16 MiB.
        assert_eq!((bars[2].base, bars[2].state), (0x8400_0000, State::Placed));
        assert_eq!((bars[0].base, bars[0].state), (0x8100_0000, State::Placed));
        assert_eq!((bars[3].base, bars[3].state), (0x1000, State::Placed));
        // Nothing placed overlaps anything, and each is aligned.
        let placed: [Bar; 3] = [bars[0], bars[2], bars[3]];
        for b in placed {
            assert!(b.base.is_multiple_of(b.size));
            for r in reserved() {
                assert!(!(r.space == b.space && r.range.overlaps(&b.range())));
            }
        }
    }

    #[test]
    fn a_bar_too_large_for_the_windows_gets_no_room() {
        let mut bars = [
            bar(1, 0, Space::Memory, 0, 1 << 31),
            bar(2, 0, Space::Io, 0, 0x1_0000),
        ];
        assert_eq!(
            problems(&run(&mut bars)),
            [(1, Problem::NoRoom), (2, Problem::NoRoom)]
        );
        // A 64-bit BAR may go above 4 GiB, into a window there.
        let mut wide = [Bar {
            wide: true,
            ..bar(1, 0, Space::Memory, 0, 1 << 32)
        }];
        let windows = [(Space::Memory, Range::new(0x1_0000_0000, 0x10_0000_0000))];
        plan(&mut wide, &windows, &reserved(), |_| panic!("refused"));
        assert_eq!(
            (wide[0].base, wide[0].state),
            (0x1_0000_0000, State::Placed)
        );
    }
}
