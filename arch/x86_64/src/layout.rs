//! The x86_64 memory layout: every named region of the virtual and physical
//! address spaces, defined once. The linker script, the boot code, the page
//! tables the kernel builds, the check of those tables at boot and the
//! generated `docs/memory-map-x86_64.md` all come from here.
//!
//! This file is also compiled into the build script (with `hal` as a build
//! dependency), so it must stay plain data.

use hal::layout::{Contents, ImageSymbols, PhysicalKind, PhysicalRegion, Region};
use hal::mm::MapFlags;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Physical load address of the kernel image: 2 MiB, above the real-mode
/// area and BIOS ROMs, and aligned so the image can be mapped with 2 MiB
/// pages.
pub const KERNEL_PHYS_BASE: u64 = 2 * MIB;

/// Virtual address = physical address + this, for the kernel image. The top
/// 2 GiB of the address space is what the `kernel` code model addresses with
/// sign-extended 32-bit displacements.
pub const KERNEL_VIRT_OFFSET: u64 = 0xffff_ffff_8000_0000;

/// Where the image's first byte is mapped.
pub const KERNEL_IMAGE_START: u64 = KERNEL_VIRT_OFFSET + KERNEL_PHYS_BASE;

/// Room reserved for the image, virtually and physically.
pub const KERNEL_IMAGE_MAX: u64 = 32 * MIB;

/// The boot page tables map this much physical memory, from 0, both at its
/// identity and at [`KERNEL_VIRT_OFFSET`], until the kernel's own tables
/// replace them.
pub const BOOT_MAPPED_SIZE: u64 = GIB;

/// Size of the stack the boot CPU runs on until threads exist.
pub const BOOT_STACK_SIZE: u64 = 64 * KIB;

/// Physical memory below this is never handed out: IVT, BIOS data, EBDA,
/// VGA memory, option ROMs and the BIOS.
pub const LOW_MEMORY_END: u64 = MIB;

/// User space: the lower canonical half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// User addresses below this are never mapped, so null pointers and small
/// offsets from them fault.
pub const USER_NULL_GUARD_END: u64 = abi::layout::NULL_GUARD_END as u64;
/// Where user programs are linked; the init process starts here.
pub const USER_IMAGE_BASE: u64 = abi::layout::IMAGE_BASE as u64;
/// End of the program image and main-stack window.
pub const USER_IMAGE_END: u64 = abi::layout::IMAGE_END as u64;
/// The init process's entry point.
pub const INIT_ENTRY: u64 = abi::layout::ENTRY as u64;
/// The init process's initial stack pointer.
pub const INIT_STACK_TOP: u64 = abi::layout::STACK_TOP as u64;
/// Anonymous memory user programs map at run time.
pub const USER_ANON_START: u64 = abi::layout::ANON_START as u64;
/// End of the anonymous-memory window: one page below the canonical hole,
/// so that no instruction can end at the hole's edge (SYSRET to a
/// non-canonical address would fault in kernel mode).
pub const USER_ANON_END: u64 = USER_END - 4 * KIB;

/// The kernel half: the upper canonical half.
pub const KERNEL_SPACE_START: u64 = 0xffff_8000_0000_0000;
/// All of physical memory, mapped linearly for the kernel.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Physical memory beyond this is not mapped (and not used).
pub const DIRECT_MAP_SIZE: u64 = 64 * TIB;
/// Kernel thread stacks, each in its own slot with unmapped guard pages.
pub const KERNEL_STACKS_BASE: u64 = 0xffff_c000_0000_0000;
/// Size of the stacks region.
pub const KERNEL_STACKS_SIZE: u64 = 64 * GIB;
/// Device registers, mapped uncached.
pub const MMIO_BASE: u64 = 0xffff_d000_0000_0000;
/// Size of the MMIO window.
pub const MMIO_SIZE: u64 = 64 * GIB;
/// Other kernel mappings made at run time (firmware tables, scratch).
pub const KERNEL_DYNAMIC_BASE: u64 = 0xffff_e000_0000_0000;
/// Size of the dynamic-mapping region.
pub const KERNEL_DYNAMIC_SIZE: u64 = 64 * GIB;
/// Firmware tables (ACPI), mapped read-only where the firmware put them.
pub const FIRMWARE_TABLES_BASE: u64 = 0xffff_f000_0000_0000;
/// Size of the firmware-table window.
pub const FIRMWARE_TABLES_SIZE: u64 = GIB;

/// The linker symbols that bound the image's sections (see `link.ld.in`
/// and the boot stack's guard in `boot.s`).
pub const IMAGE_SYMBOLS: ImageSymbols = ImageSymbols {
    text: "__text_start",
    rodata: "__rodata_start",
    data: "__data_start",
    end: "__kernel_virt_end",
    guards: &["boot_stack_guard"],
};

/// Single addresses worth knowing, for the documentation.
pub const KEY_ADDRESSES: &[(&str, u64)] = &[
    ("kernel physical load address", KERNEL_PHYS_BASE),
    ("kernel image: virtual minus physical", KERNEL_VIRT_OFFSET),
    ("direct map: virtual address of physical 0", DIRECT_MAP_BASE),
    ("first kernel-half address", KERNEL_SPACE_START),
    ("user programs are linked at", USER_IMAGE_BASE),
    ("init entry point", INIT_ENTRY),
    ("init initial stack pointer", INIT_STACK_TOP),
];

/// The virtual layout, lowest address first. Where regions overlap, the
/// first listed applies.
pub const VIRTUAL: &[Region] = &[
    Region {
        name: "user null guard",
        start: 0,
        end: USER_NULL_GUARD_END,
        contents: Contents::Unmapped,
        note: "never mapped: null pointers and small offsets fault",
    },
    Region {
        name: "user image",
        start: USER_IMAGE_BASE,
        end: USER_IMAGE_END,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::USER_RX, MapFlags::USER_RO, MapFlags::USER_RW],
        },
        note: "program image, then the main thread's stack at its top",
    },
    Region {
        name: "user anonymous memory",
        start: USER_ANON_START,
        end: USER_ANON_END,
        contents: Contents::Dynamic {
            allowed: &[
                MapFlags::USER_RW,
                MapFlags::USER_RO,
                // A driver's device registers (memory objects over them).
                MapFlags::USER_RW.union(MapFlags::DEVICE),
                MapFlags::USER_RO.union(MapFlags::DEVICE),
            ],
        },
        note: "memory user programs map at run time",
    },
    Region {
        name: "direct map",
        start: DIRECT_MAP_BASE,
        end: DIRECT_MAP_BASE + DIRECT_MAP_SIZE,
        contents: Contents::Linear {
            phys_offset: DIRECT_MAP_BASE,
            flags: MapFlags::KERNEL_RW,
        },
        note: "all RAM at virtual = physical + base; 2 MiB pages; holds the frame allocator's and the heap's memory",
    },
    Region {
        name: "kernel stacks",
        start: KERNEL_STACKS_BASE,
        end: KERNEL_STACKS_BASE + KERNEL_STACKS_SIZE,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::KERNEL_RW],
        },
        note: "one slot per thread; the lowest page of each slot stays unmapped as a guard",
    },
    Region {
        name: "MMIO window",
        start: MMIO_BASE,
        end: MMIO_BASE + MMIO_SIZE,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::KERNEL_DEVICE],
        },
        note: "device registers, uncached",
    },
    Region {
        name: "kernel dynamic mappings",
        start: KERNEL_DYNAMIC_BASE,
        end: KERNEL_DYNAMIC_BASE + KERNEL_DYNAMIC_SIZE,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::KERNEL_RW, MapFlags::KERNEL_RO],
        },
        note: "temporary kernel mappings",
    },
    Region {
        name: "firmware tables",
        start: FIRMWARE_TABLES_BASE,
        end: FIRMWARE_TABLES_BASE + FIRMWARE_TABLES_SIZE,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::KERNEL_RO],
        },
        note: "ACPI tables, read-only, mapped on demand",
    },
    Region {
        name: "kernel image",
        start: KERNEL_IMAGE_START,
        end: KERNEL_IMAGE_START + KERNEL_IMAGE_MAX,
        contents: Contents::KernelImage {
            phys_offset: KERNEL_VIRT_OFFSET,
        },
        note: "text r-x, rodata r--, data and bss rw-; boot code and boot-stack guard page unmapped",
    },
];

/// The physical layout: fixed ranges on microvm and q35. How much RAM
/// there is, and where, comes from the firmware's memory map.
pub const PHYSICAL: &[PhysicalRegion] = &[
    PhysicalRegion {
        name: "real-mode area",
        start: 0,
        end: LOW_MEMORY_END,
        kind: PhysicalKind::Reserved,
        note: "IVT, BIOS data, EBDA, VGA memory, option ROMs, BIOS; never handed out",
    },
    PhysicalRegion {
        name: "kernel image",
        start: KERNEL_PHYS_BASE,
        end: KERNEL_PHYS_BASE + KERNEL_IMAGE_MAX,
        kind: PhysicalKind::KernelImage,
        note: "loaded by the PVH loader; boot page tables and boot stack inside",
    },
    PhysicalRegion {
        name: "RAM",
        start: LOW_MEMORY_END,
        end: 0xb000_0000,
        kind: PhysicalKind::Ram,
        note: "as far as the firmware map says; with more RAM, it continues above 4 GiB",
    },
    PhysicalRegion {
        name: "PCIe ECAM (q35)",
        start: 0xb000_0000,
        end: 0xc000_0000,
        kind: PhysicalKind::Mmio,
        note: "PCI configuration space",
    },
    PhysicalRegion {
        name: "PCI MMIO window (q35)",
        start: 0xc000_0000,
        end: 0xfeb0_0000,
        kind: PhysicalKind::Mmio,
        note: "device BARs, as the firmware assigned them",
    },
    PhysicalRegion {
        name: "VirtIO-MMIO (microvm)",
        start: 0xfeb0_0000,
        end: 0xfeb0_4000,
        kind: PhysicalKind::Mmio,
        note: "transports 0x200 apart, filled from the top",
    },
    PhysicalRegion {
        name: "I/O APICs",
        start: 0xfec0_0000,
        end: 0xfec2_0000,
        kind: PhysicalKind::Mmio,
        note: "as the ACPI MADT lists them",
    },
    PhysicalRegion {
        name: "local APIC",
        start: 0xfee0_0000,
        end: 0xfee0_1000,
        kind: PhysicalKind::Mmio,
        note: "per-CPU interrupt controller",
    },
];
