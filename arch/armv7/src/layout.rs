//! The ARMv7 memory layout: every named region of the virtual and physical
//! address spaces, defined once. The linker script, the boot code, the
//! translation tables the kernel builds, the check of those tables at boot
//! and the generated `docs/memory-map-armv7.md` all come from here.
//!
//! The user/kernel split is at 2 GiB, not 3 GiB: with short descriptors,
//! TTBCR.N can only split at 2^(32-N), so N = 1 gives TTBR0 (user) 0-2 GiB
//! and TTBR1 (kernel) the rest. The kernel keeps the VA = PA + 0x4000_0000
//! direct map at 0xC000_0000 and puts its other windows between 2 and 3 GiB.
//!
//! This file is also compiled into the build script (with `hal` as a build
//! dependency), so it must stay plain data.

use hal::layout::{Contents, ImageSymbols, PhysicalKind, PhysicalRegion, Region};
use hal::mm::MapFlags;

const MIB: u32 = 1 << 20;

/// Physical base of RAM on vexpress-a15.
pub const RAM_BASE: u32 = 0x8000_0000;

/// Physical address the boot code is linked and loaded at. The 64 KiB below
/// it, at the base of RAM, is where QEMU places the device tree.
pub const KERNEL_LOAD_PHYS: u32 = 0x8001_0000;

/// Virtual address = physical address + this, for the kernel image and the
/// direct map of RAM.
pub const KERNEL_VIRT_OFFSET: u32 = 0x4000_0000;

/// Where the base of RAM appears in the kernel's address space.
pub const KERNEL_VIRT_BASE: u32 = RAM_BASE + KERNEL_VIRT_OFFSET;

/// Where the image's first byte is mapped.
pub const KERNEL_IMAGE_START: u32 = KERNEL_LOAD_PHYS + KERNEL_VIRT_OFFSET;

/// Room reserved for the image.
pub const KERNEL_IMAGE_MAX: u32 = 32 * MIB;

/// The boot translation table maps this much RAM from its base at
/// [`KERNEL_VIRT_BASE`]: the image, its stacks and the device tree.
pub const BOOT_MAPPED_SIZE: u32 = 16 * MIB;

/// RAM beyond this much is not mapped (and not used): the direct map fills
/// the top 1 GiB of the address space.
pub const DIRECT_MAP_MAX: u32 = 0x4000_0000;

/// TTBCR.N: TTBR0 translates the lowest 2^(32-N) bytes.
pub const TTBCR_N: u32 = 1;

/// User space: what TTBR0 translates.
pub const USER_END: u32 = 0x8000_0000;
/// User addresses below this are never mapped.
pub const USER_NULL_GUARD_END: u32 = abi::layout::NULL_GUARD_END as u32;
/// Where user programs are linked; the init process starts here.
pub const USER_IMAGE_BASE: u32 = abi::layout::IMAGE_BASE as u32;
/// End of the program image and main-stack window.
pub const USER_IMAGE_END: u32 = abi::layout::IMAGE_END as u32;
/// The init process's entry point.
pub const INIT_ENTRY: u32 = abi::layout::ENTRY as u32;
/// The init process's initial stack pointer.
pub const INIT_STACK_TOP: u32 = abi::layout::STACK_TOP as u32;
/// Anonymous memory user programs map at run time.
pub const USER_ANON_START: u32 = abi::layout::ANON_START as u32;

/// The kernel half: what TTBR1 translates.
pub const KERNEL_SPACE_START: u32 = USER_END;
/// Device registers, mapped as device memory.
pub const MMIO_BASE: u32 = 0xb000_0000;
/// Size of the MMIO window.
pub const MMIO_SIZE: u32 = 128 * MIB;
/// Kernel thread stacks, each in its own slot with unmapped guard pages.
pub const KERNEL_STACKS_BASE: u32 = 0xb800_0000;
/// Size of the stacks region.
pub const KERNEL_STACKS_SIZE: u32 = 64 * MIB;
/// Other kernel mappings made at run time (scratch, tests).
pub const KERNEL_DYNAMIC_BASE: u32 = 0xbc00_0000;
/// Size of the dynamic-mapping region.
pub const KERNEL_DYNAMIC_SIZE: u32 = 64 * MIB;

/// Stack sizes for each processor mode the kernel runs in.
pub const SVC_STACK_SIZE: u32 = 64 * 1024;
/// IRQ, abort, undefined and FIQ modes each get a stack this size.
pub const EXCEPTION_STACK_SIZE: u32 = 16 * 1024;

/// The linker symbols that bound the image's sections (see `link.ld.in`
/// and the per-mode stacks' guards in `boot.s`).
pub const IMAGE_SYMBOLS: ImageSymbols = ImageSymbols {
    text: "__text_start",
    rodata: "__rodata_start",
    data: "__data_start",
    end: "__kernel_virt_end",
    guards: &[
        "svc_stack_guard",
        "irq_stack_guard",
        "abort_stack_guard",
        "undefined_stack_guard",
        "fiq_stack_guard",
    ],
};

/// Single addresses worth knowing, for the documentation.
pub const KEY_ADDRESSES: &[(&str, u64)] = &[
    (
        "boot code load address (physical and virtual)",
        KERNEL_LOAD_PHYS as u64,
    ),
    (
        "kernel and direct map: virtual minus physical",
        KERNEL_VIRT_OFFSET as u64,
    ),
    ("virtual address of RAM's base", KERNEL_VIRT_BASE as u64),
    (
        "first kernel-half address (TTBR1, TTBCR.N = 1)",
        KERNEL_SPACE_START as u64,
    ),
    ("user programs are linked at", USER_IMAGE_BASE as u64),
    ("init entry point", INIT_ENTRY as u64),
    ("init initial stack pointer", INIT_STACK_TOP as u64),
];

/// The virtual layout, lowest address first. Where regions overlap, the
/// first listed applies.
pub const VIRTUAL: &[Region] = &[
    Region {
        name: "user null guard",
        start: 0,
        end: USER_NULL_GUARD_END as u64,
        contents: Contents::Unmapped,
        note: "never mapped: null pointers and small offsets fault",
    },
    Region {
        name: "user image",
        start: USER_IMAGE_BASE as u64,
        end: USER_IMAGE_END as u64,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::USER_RX, MapFlags::USER_RO, MapFlags::USER_RW],
        },
        note: "program image, then the main thread's stack at its top",
    },
    Region {
        name: "user anonymous memory",
        start: USER_ANON_START as u64,
        end: USER_END as u64,
        contents: Contents::Dynamic {
            allowed: &[
                MapFlags::USER_RW,
                MapFlags::USER_RO,
                // A driver's device registers (memory objects over them).
                MapFlags::USER_RW.union(MapFlags::DEVICE),
                MapFlags::USER_RO.union(MapFlags::DEVICE),
            ],
        },
        note: "memory user programs map at run time; TTBR0 ends here (TTBCR.N = 1)",
    },
    Region {
        name: "unused kernel space",
        start: KERNEL_SPACE_START as u64,
        end: MMIO_BASE as u64,
        contents: Contents::Unmapped,
        note: "the boot code's identity mapping of itself lives here until the kernel's tables take over",
    },
    Region {
        name: "MMIO window",
        start: MMIO_BASE as u64,
        end: (MMIO_BASE + MMIO_SIZE) as u64,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::KERNEL_DEVICE],
        },
        note: "device registers; one 1 MiB slot per device MiB, pages mapped at their offset in it",
    },
    Region {
        name: "kernel stacks",
        start: KERNEL_STACKS_BASE as u64,
        end: (KERNEL_STACKS_BASE + KERNEL_STACKS_SIZE) as u64,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::KERNEL_RW],
        },
        note: "one slot per thread; the lowest page of each slot stays unmapped as a guard",
    },
    Region {
        name: "kernel dynamic mappings",
        start: KERNEL_DYNAMIC_BASE as u64,
        end: (KERNEL_DYNAMIC_BASE + KERNEL_DYNAMIC_SIZE) as u64,
        contents: Contents::Dynamic {
            allowed: &[MapFlags::KERNEL_RW, MapFlags::KERNEL_RO],
        },
        note: "temporary mappings",
    },
    Region {
        name: "kernel image",
        start: KERNEL_IMAGE_START as u64,
        end: (KERNEL_IMAGE_START + KERNEL_IMAGE_MAX) as u64,
        contents: Contents::KernelImage {
            phys_offset: KERNEL_VIRT_OFFSET as u64,
        },
        note: "inside the direct map, in 4 KiB pages: text r-x, rodata r--, data and bss rw-, stack guards unmapped",
    },
    Region {
        name: "direct map",
        start: KERNEL_VIRT_BASE as u64,
        end: KERNEL_VIRT_BASE as u64 + DIRECT_MAP_MAX as u64,
        contents: Contents::Linear {
            phys_offset: KERNEL_VIRT_OFFSET as u64,
            flags: MapFlags::KERNEL_RW,
        },
        note: "RAM at virtual = physical + 0x4000_0000, 1 MiB sections; holds the frame allocator's and the heap's memory",
    },
];

/// The physical layout of vexpress-a15. How much RAM there is comes from
/// the device tree.
pub const PHYSICAL: &[PhysicalRegion] = &[
    PhysicalRegion {
        name: "motherboard peripherals",
        start: 0x1c00_0000,
        end: 0x2000_0000,
        kind: PhysicalKind::Mmio,
        note: "sysreg 0x1c010000, UART0 0x1c090000, SP804 0x1c110000, VirtIO-MMIO 0x1c130000, PL031 0x1c170000",
    },
    PhysicalRegion {
        name: "GIC",
        start: 0x2c00_0000,
        end: 0x2c00_8000,
        kind: PhysicalKind::Mmio,
        note: "distributor 0x2c001000, CPU interface 0x2c002000",
    },
    PhysicalRegion {
        name: "device tree",
        start: RAM_BASE as u64,
        end: KERNEL_LOAD_PHYS as u64,
        kind: PhysicalKind::Firmware,
        note: "placed by QEMU at the base of RAM; never handed out",
    },
    PhysicalRegion {
        name: "kernel image",
        start: KERNEL_LOAD_PHYS as u64,
        end: (KERNEL_LOAD_PHYS + KERNEL_IMAGE_MAX) as u64,
        kind: PhysicalKind::KernelImage,
        note: "loaded by QEMU's ELF loader; boot translation table and mode stacks inside",
    },
    PhysicalRegion {
        name: "RAM",
        start: RAM_BASE as u64,
        end: RAM_BASE as u64 + DIRECT_MAP_MAX as u64,
        kind: PhysicalKind::Ram,
        note: "as much as the device tree says, up to the direct map's 1 GiB",
    },
];
