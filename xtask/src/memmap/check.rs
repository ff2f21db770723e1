//! The comparison of a live memory map with the canonical layout.

use super::layout::ArchLayout;
use super::mtree::PhysRange;
use hal::layout::{Contents, ImageSections, Violation};
use hal::mm::{MapFlags, MappedRange, PAGE_SIZE};
use std::fmt;

/// One address space as walked.
#[derive(Clone, Debug)]
pub struct AddressSpace {
    /// `kernel`, or `process N (name)`.
    pub name: String,
    pub pid: Option<u32>,
    pub root: u64,
    /// The user half (processes only).
    pub user: Vec<MappedRange>,
    /// The kernel half as this space's tables have it.
    pub kernel: Vec<MappedRange>,
    /// Why a walk stopped early, if one did.
    pub walk_error: Option<String>,
}

/// A way the live map differs from the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The layout checker's verdict on a mapping, with what the layout
    /// expects there when it says.
    Layout {
        space: String,
        violation: Violation,
        expected: Option<String>,
    },
    /// Something the layout requires is not mapped (as required).
    Missing {
        space: String,
        what: String,
        start: u64,
        end: u64,
    },
    /// Device registers mapped as cacheable memory.
    CachedMmio { space: String, range: MappedRange },
    /// RAM mapped as device memory.
    DeviceRam { space: String, range: MappedRange },
    /// A process's kernel half differs from the kernel's.
    KernelHalfDiffers { space: String, detail: String },
    /// Tables could not be walked completely.
    Unwalkable { space: String, reason: String },
    /// The CPU's root table is none the kernel reported.
    UnknownRoot(u64),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Layout {
                space,
                violation,
                expected,
            } => {
                write!(f, "{space}: {violation}")?;
                match expected {
                    Some(expected) => write!(f, "; expected {expected}"),
                    None => Ok(()),
                }
            }
            Problem::Missing {
                space,
                what,
                start,
                end,
            } => write!(
                f,
                "{space}: missing {what}: {start:#x}-{end:#x} not mapped as required"
            ),
            Problem::CachedMmio { space, range } => write!(
                f,
                "{space}: device registers mapped cacheable: {:#x}-{:#x} -> {:#x} [{}]",
                range.virt,
                range.virt_end(),
                range.phys,
                range.flags
            ),
            Problem::DeviceRam { space, range } => write!(
                f,
                "{space}: RAM mapped as device memory: {:#x}-{:#x} -> {:#x} [{}]",
                range.virt,
                range.virt_end(),
                range.phys,
                range.flags
            ),
            Problem::KernelHalfDiffers { space, detail } => {
                write!(
                    f,
                    "{space}: kernel half differs from the kernel's: {detail}"
                )
            }
            Problem::Unwalkable { space, reason } => {
                write!(f, "{space}: tables not walkable: {reason}")
            }
            Problem::UnknownRoot(root) => {
                write!(
                    f,
                    "the CPU's root table {root:#x} is not one the kernel reported"
                )
            }
        }
    }
}

/// Everything the check needs besides the spaces.
pub struct Expectations<'a> {
    pub layout: &'a ArchLayout,
    pub image: &'a ImageSections,
    /// QEMU's physical map.
    pub physical: &'a [PhysRange],
    /// RAM the direct map must cover (physical `[start, end)` pieces).
    pub direct_mapped_ram: Vec<(u64, u64)>,
}

/// Whether every page of `[start, end)` is mapped in `ranges` with `flags`
/// at `virt - phys == offset` (for `offset` Some). Returns the first gap.
fn first_gap(
    ranges: &[MappedRange],
    start: u64,
    end: u64,
    flags: MapFlags,
    offset: Option<u64>,
) -> Option<(u64, u64)> {
    let mut cursor = start;
    while cursor < end {
        let covering = ranges.iter().find(|r| {
            r.virt <= cursor
                && cursor < r.virt_end()
                && r.flags == flags
                && offset.is_none_or(|o| r.virt.wrapping_sub(r.phys) == o)
        });
        match covering {
            Some(r) => cursor = r.virt_end(),
            None => {
                // The gap runs to the next suitable mapping.
                let next = ranges
                    .iter()
                    .filter(|r| r.virt > cursor && r.flags == flags)
                    .map(|r| r.virt)
                    .min()
                    .unwrap_or(end)
                    .min(end);
                return Some((cursor, next.max(cursor + PAGE_SIZE as u64)));
            }
        }
    }
    None
}

/// Checks the kernel's space and every process's against the layout.
pub fn check(
    expect: &Expectations<'_>,
    kernel: &AddressSpace,
    processes: &[AddressSpace],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for space in std::iter::once(kernel).chain(processes) {
        if let Some(reason) = &space.walk_error {
            problems.push(Problem::Unwalkable {
                space: space.name.clone(),
                reason: reason.clone(),
            });
        }
        // A process's kernel half is judged once, as the kernel's, unless
        // it differs from it.
        let shared = !std::ptr::eq(space, kernel) && space.kernel == kernel.kernel;
        let ranges = space
            .user
            .iter()
            .chain(if shared { &[][..] } else { &space.kernel[..] });
        for range in ranges {
            hal::layout::check(
                expect.layout.virtual_regions,
                expect.image,
                expect.layout.kernel_start,
                range,
                &mut |violation| {
                    problems.push(Problem::Layout {
                        space: space.name.clone(),
                        expected: expectation(expect, &violation),
                        violation,
                    })
                },
            );
            check_memory_type(expect.physical, &space.name, range, &mut problems);
        }
    }
    required_kernel_mappings(expect, kernel, &mut problems);
    for process in processes {
        required_user_mappings(process, &mut problems);
        if process.kernel != kernel.kernel {
            let detail = first_difference(&kernel.kernel, &process.kernel);
            problems.push(Problem::KernelHalfDiffers {
                space: process.name.clone(),
                detail,
            });
        }
    }
    problems
}

/// What the layout wants where `violation` happened, for the report.
fn expectation(expect: &Expectations<'_>, violation: &Violation) -> Option<String> {
    let region_named = |name: &str| {
        expect
            .layout
            .virtual_regions
            .iter()
            .find(|r| r.name == name)
    };
    match violation {
        Violation::WrongFlags(range, region) => match region_named(region)?.contents {
            Contents::Dynamic { allowed } => Some(format!(
                "one of {}",
                allowed
                    .iter()
                    .map(|f| format!("[{f}]"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            Contents::Linear { flags, .. } => Some(format!("[{flags}]")),
            Contents::KernelImage { .. } => {
                expect.image.expected(range.virt).map(|f| format!("[{f}]"))
            }
            Contents::Unmapped => Some("nothing mapped".into()),
        },
        Violation::WrongPhysical(range, region) => match region_named(region)?.contents {
            Contents::Linear { phys_offset, .. } | Contents::KernelImage { phys_offset } => Some(
                format!("physical {:#x}", range.virt.wrapping_sub(phys_offset)),
            ),
            _ => None,
        },
        Violation::MustBeUnmapped(..) | Violation::OutsideRegions(_) => {
            Some("nothing mapped".into())
        }
        Violation::WriteExecute(_) => Some("writable or executable, not both".into()),
        Violation::UserInKernel(_) => Some("kernel-only".into()),
    }
}

/// Device registers must be mapped as device memory, and device memory
/// must be device registers.
fn check_memory_type(
    physical: &[PhysRange],
    space: &str,
    range: &MappedRange,
    problems: &mut Vec<Problem>,
) {
    let last = range.phys + range.size - 1;
    let overlaps = |p: &&PhysRange| p.start <= last && range.phys <= p.last;
    let io = physical.iter().filter(overlaps).any(PhysRange::is_io);
    let ram = physical.iter().filter(overlaps).any(|p| !p.is_io());
    if io && !range.flags.contains(MapFlags::DEVICE) {
        problems.push(Problem::CachedMmio {
            space: space.to_string(),
            range: *range,
        });
    }
    if ram && range.flags.contains(MapFlags::DEVICE) {
        problems.push(Problem::DeviceRam {
            space: space.to_string(),
            range: *range,
        });
    }
}

fn required_kernel_mappings(
    expect: &Expectations<'_>,
    kernel: &AddressSpace,
    problems: &mut Vec<Problem>,
) {
    let image = expect.image;
    let image_offset = expect.layout.image_offset;
    let sections = [
        ("kernel text", image.text, MapFlags::KERNEL_RX),
        ("kernel read-only data", image.rodata, MapFlags::KERNEL_RO),
        ("kernel data", image.data, MapFlags::KERNEL_RW),
    ];
    for (what, (start, end), flags) in sections {
        // Guard pages inside a section stay unmapped: check around them.
        let mut pieces = vec![(start, end)];
        for &(g0, g1) in image.guards {
            pieces = pieces
                .into_iter()
                .flat_map(|(a, b)| {
                    if g1 <= a || g0 >= b {
                        vec![(a, b)]
                    } else {
                        vec![(a, g0.max(a)), (g1.min(b), b)]
                    }
                })
                .filter(|(a, b)| a < b)
                .collect();
        }
        for (a, b) in pieces {
            if let Some((gap, gap_end)) = first_gap(&kernel.kernel, a, b, flags, Some(image_offset))
            {
                problems.push(Problem::Missing {
                    space: kernel.name.clone(),
                    what: what.to_string(),
                    start: gap,
                    end: gap_end,
                });
            }
        }
    }
    let Some(direct) = expect.layout.direct_map() else {
        return;
    };
    let Contents::Linear { phys_offset, flags } = direct.contents else {
        return;
    };
    // The image's own extent follows the image's rules instead.
    let image_span = expect
        .layout
        .image_region()
        .map_or((0, 0), |r| (r.start, image.end()));
    for &(start, end) in &expect.direct_mapped_ram {
        let (virt_start, virt_end) = (start + phys_offset, end + phys_offset);
        let mut pieces = vec![(virt_start, virt_end.min(direct.end))];
        if image_span.0 < image_span.1 {
            pieces = pieces
                .into_iter()
                .flat_map(|(a, b)| [(a, b.min(image_span.0)), (a.max(image_span.1), b)])
                .filter(|(a, b)| a < b)
                .collect();
        }
        for (a, b) in pieces {
            if let Some((gap, gap_end)) = first_gap(&kernel.kernel, a, b, flags, Some(phys_offset))
            {
                problems.push(Problem::Missing {
                    space: kernel.name.clone(),
                    what: format!("direct map of RAM {start:#x}-{end:#x}"),
                    start: gap,
                    end: gap_end,
                });
            }
        }
    }
}

/// Every program's image starts with its headers, read-only, and its
/// entry page is executable.
fn required_user_mappings(process: &AddressSpace, problems: &mut Vec<Problem>) {
    let page = PAGE_SIZE as u64;
    for (what, start, flags) in [
        (
            "program headers",
            abi::layout::IMAGE_BASE as u64,
            MapFlags::USER_RO,
        ),
        ("entry point", abi::layout::ENTRY as u64, MapFlags::USER_RX),
    ] {
        if first_gap(&process.user, start, start + page, flags, None).is_some() {
            problems.push(Problem::Missing {
                space: process.name.clone(),
                what: format!("{what} [{flags}]"),
                start,
                end: start + page,
            });
        }
    }
}

fn first_difference(expected: &[MappedRange], found: &[MappedRange]) -> String {
    let describe = |r: Option<&MappedRange>| match r {
        Some(r) => format!(
            "{:#x}-{:#x} -> {:#x} [{}]",
            r.virt,
            r.virt_end(),
            r.phys,
            r.flags
        ),
        None => "nothing".to_string(),
    };
    let n = expected
        .iter()
        .zip(found)
        .take_while(|(a, b)| a == b)
        .count();
    format!(
        "expected {}, found {}",
        describe(expected.get(n)),
        describe(found.get(n))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Arch;

    fn arm() -> ArchLayout {
        ArchLayout::of(Arch::Arm)
    }

    const IMAGE: ImageSections = ImageSections {
        text: (0xc002_0000, 0xc003_0000),
        rodata: (0xc003_0000, 0xc004_0000),
        data: (0xc004_0000, 0xc005_0000),
        guards: &[(0xc004_8000, 0xc004_9000)],
    };

    fn range(virt: u64, phys: u64, size: u64, flags: MapFlags) -> MappedRange {
        MappedRange {
            virt,
            phys,
            size,
            flags,
            page_size: 4096,
        }
    }

    fn physical() -> Vec<PhysRange> {
        let ram = |start, last| PhysRange {
            start,
            last,
            kind: "ram".into(),
            name: "ram0".into(),
            offset: 0,
        };
        vec![
            PhysRange {
                start: 0x1c09_0000,
                last: 0x1c09_0fff,
                kind: "i/o".into(),
                name: "pl011".into(),
                offset: 0,
            },
            ram(0x8000_0000, 0x80ff_ffff),
        ]
    }

    /// A kernel space as the kernel builds it: image sections, direct
    /// map around them, one device page.
    fn good_kernel() -> AddressSpace {
        let o = 0x4000_0000;
        let mut kernel = vec![
            range(0xb000_0000, 0x1c09_0000, 0x1000, MapFlags::KERNEL_DEVICE),
            range(0xc000_0000, 0x8000_0000, 0x1_0000, MapFlags::KERNEL_RW),
            range(0xc002_0000, 0xc002_0000 - o, 0x1_0000, MapFlags::KERNEL_RX),
            range(0xc003_0000, 0xc003_0000 - o, 0x1_0000, MapFlags::KERNEL_RO),
            range(0xc004_0000, 0xc004_0000 - o, 0x8000, MapFlags::KERNEL_RW),
            range(0xc004_9000, 0xc004_9000 - o, 0x7000, MapFlags::KERNEL_RW),
            range(0xc005_0000, 0x8005_0000, 0xfb_0000, MapFlags::KERNEL_RW),
        ];
        kernel.sort_by_key(|r| r.virt);
        AddressSpace {
            name: "kernel".into(),
            pid: None,
            root: 0x8000_4000,
            user: Vec::new(),
            kernel,
            walk_error: None,
        }
    }

    fn good_process(kernel: &AddressSpace) -> AddressSpace {
        AddressSpace {
            name: "process 1 (init)".into(),
            pid: Some(1),
            root: 0x8100_0000,
            user: vec![
                range(0x20_0000, 0x8200_0000, 0x1000, MapFlags::USER_RO),
                range(0x20_1000, 0x8200_1000, 0x2000, MapFlags::USER_RX),
                range(0x3f_f000, 0x8200_5000, 0x1000, MapFlags::USER_RW),
            ],
            kernel: kernel.kernel.clone(),
            walk_error: None,
        }
    }

    fn run(kernel: &AddressSpace, processes: &[AddressSpace]) -> Vec<Problem> {
        let layout = arm();
        let physical = physical();
        let expect = Expectations {
            layout: &layout,
            image: &IMAGE,
            physical: &physical,
            direct_mapped_ram: vec![(0x8000_0000, 0x8100_0000)],
        };
        check(&expect, kernel, processes)
    }

    #[test]
    fn a_map_as_the_kernel_builds_it_passes() {
        let kernel = good_kernel();
        let process = good_process(&kernel);
        assert_eq!(run(&kernel, &[process]), []);
    }

    #[test]
    fn each_kind_of_mismatch_is_reported() {
        let good = good_kernel();
        // Text made writable and executable.
        let mut kernel = good.clone();
        let text = kernel
            .kernel
            .iter_mut()
            .find(|r| r.virt == 0xc002_0000)
            .unwrap();
        text.flags = MapFlags::KERNEL_RX | MapFlags::WRITE;
        let problems = run(&kernel, &[]);
        assert!(problems.iter().any(|p| matches!(
            p,
            Problem::Layout {
                violation: Violation::WriteExecute(_),
                ..
            }
        )));
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::Missing { what, .. } if what == "kernel text"))
        );

        // Read-only data gone.
        let mut kernel = good.clone();
        kernel.kernel.retain(|r| r.virt != 0xc003_0000);
        let problems = run(&kernel, &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            matches!(&problems[0], Problem::Missing { what, start: 0xc003_0000, .. } if what == "kernel read-only data")
        );

        // A hole in the direct map.
        let mut kernel = good.clone();
        let last = kernel
            .kernel
            .iter_mut()
            .find(|r| r.virt == 0xc005_0000)
            .unwrap();
        last.size = 0x10_0000;
        let problems = run(&kernel, &[]);
        assert!(
            matches!(
                &problems[..],
                [Problem::Missing {
                    start: 0xc015_0000,
                    ..
                }]
            ),
            "{problems:?}"
        );

        // The UART mapped cacheable.
        let mut kernel = good.clone();
        kernel.kernel[0].flags = MapFlags::KERNEL_RW;
        let problems = run(&kernel, &[]);
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::CachedMmio { .. })),
            "{problems:?}"
        );

        // RAM mapped as a device.
        let mut kernel = good.clone();
        kernel.kernel[0].phys = 0x8000_1000;
        let problems = run(&kernel, &[]);
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::DeviceRam { .. })),
            "{problems:?}"
        );

        // A user-accessible kernel page.
        let mut kernel = good.clone();
        let data = kernel
            .kernel
            .iter_mut()
            .find(|r| r.virt == 0xc005_0000)
            .unwrap();
        data.flags |= MapFlags::USER;
        let problems = run(&kernel, &[]);
        assert!(problems.iter().any(|p| matches!(
            p,
            Problem::Layout {
                violation: Violation::UserInKernel(_),
                ..
            }
        )));
    }

    #[test]
    fn process_mismatches_are_reported() {
        let kernel = good_kernel();
        // No entry page, a stale kernel half, a walk that stopped.
        let mut process = good_process(&kernel);
        process.user.retain(|r| r.virt != 0x20_1000);
        process.kernel.pop();
        process.walk_error = Some("table at 0x1000 is not readable".into());
        let problems = run(&kernel, &[process]);
        assert!(problems.iter().any(|p| matches!(
            p,
            Problem::Missing {
                start: 0x20_1000,
                ..
            }
        )));
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::KernelHalfDiffers { .. }))
        );
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::Unwalkable { .. }))
        );
        // User pages in a kernel region, and a writable executable page.
        let mut process = good_process(&kernel);
        process.user.push(range(
            0x50_0000,
            0x8300_0000,
            0x1000,
            MapFlags::USER_RX | MapFlags::WRITE,
        ));
        let problems = run(&kernel, &[process]);
        assert!(problems.iter().any(|p| matches!(
            p,
            Problem::Layout {
                violation: Violation::WriteExecute(_),
                ..
            }
        )));
    }
}
