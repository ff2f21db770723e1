//! The kernel's translation tables on ARMv7, and the HAL memory
//! implementation.
//!
//! At boot the kernel replaces the boot code's table (sections, RAM mapped
//! writable and executable) with its own, built from the layout: RAM in
//! sections, the MiBs around the image in pages with per-section
//! permissions, devices in the MMIO window. TTBR1 holds it for the whole
//! kernel half (TTBCR.N = 1); TTBR0 holds the user half of the current
//! address space, or nothing (TTBCR.PD0). Tables are reached at
//! physical + 0x4000_0000: the boot mapping and the direct map agree on it.

use crate::cp15::{TTBCR_PD0, TlbiMvaa, Ttbcr, Ttbr1};
use aarch32_cpu::asm::{dsb, isb};
use aarch32_cpu::register::{
    BpIAll, Ctr, Dccmvau, Iciallu, SysRegRead, SysRegWrite, TlbIAll, Ttbr0,
};
use arch_armv7::layout::{self, KERNEL_VIRT_OFFSET};
use arch_armv7::mmu::{self, TableMemory, TableRead, Tables};
use core::sync::atomic::{AtomicBool, Ordering};
use hal::boot::ByteSize;
use hal::layout::ImageSections;
use hal::mm::{
    BumpFrames, FrameSource, MapError, MapFlags, PAGE_SIZE, RootTable, Space, Translation,
};
use hal::{BootInfo, PhysRange};
use spin::{Mutex, Once};

const SECTION: u32 = mmu::SECTION_SIZE;

// Zeroing pages 32 bytes per store: eight registers at a time with STM,
// where the compiler's memset stores a word at a time (a page fault on a
// demand-zero page spent most of its time there).
core::arch::global_asm!(
    ".section .text.armv7_zero_pages, \"ax\"",
    ".arm",
    ".global armv7_zero_pages",
    "armv7_zero_pages:", // r0: address, r1: bytes, a non-zero multiple of 64
    "    push {{r4-r9}}",
    "    mov r2, #0",
    "    mov r3, #0",
    "    mov r4, #0",
    "    mov r5, #0",
    "    mov r6, #0",
    "    mov r7, #0",
    "    mov r8, #0",
    "    mov r9, #0",
    "1:  stmia r0!, {{r2-r9}}",
    "    stmia r0!, {{r2-r9}}",
    "    subs r1, r1, #64",
    "    bhi 1b",
    "    pop {{r4-r9}}",
    "    bx lr",
);

unsafe extern "C" {
    fn armv7_zero_pages(address: usize, len: usize);
}

#[repr(C, align(16384))]
struct L1Table([u32; 4096]);

/// The kernel's L1 table (TTBR1).
static mut KERNEL_L1: L1Table = L1Table([0; 4096]);

/// Whether the kernel's table is live (TTBR1).
static SWITCHED: AtomicBool = AtomicBool::new(false);
/// Serialises table changes.
static TABLES: Mutex<()> = Mutex::new(());

/// RAM ranges the direct map covers.
static DIRECT_MAPPED: Once<([PhysRange; 8], usize)> = Once::new();

unsafe extern "C" {
    static __text_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __kernel_virt_end: u8;
    static boot_l1_table: u8;
    static svc_stack_guard: u8;
    static irq_stack_guard: u8;
    static abort_stack_guard: u8;
    static undefined_stack_guard: u8;
    static fiq_stack_guard: u8;
}

/// The image's sections, from the linker's symbols.
pub fn image_sections() -> ImageSections {
    static GUARDS: Once<[(u64, u64); 5]> = Once::new();
    let guards = GUARDS.call_once(|| {
        [
            &raw const svc_stack_guard,
            &raw const irq_stack_guard,
            &raw const abort_stack_guard,
            &raw const undefined_stack_guard,
            &raw const fiq_stack_guard,
        ]
        .map(|g| (g as u64, g as u64 + PAGE_SIZE as u64))
    });
    ImageSections {
        text: (
            &raw const __text_start as u64,
            &raw const __rodata_start as u64,
        ),
        rodata: (
            &raw const __rodata_start as u64,
            &raw const __data_start as u64,
        ),
        data: (
            &raw const __data_start as u64,
            &raw const __kernel_virt_end as u64,
        ),
        guards,
    }
}

/// Physical address of the kernel's L1 table.
pub fn kernel_l1_paddr() -> u32 {
    (&raw const KERNEL_L1) as u32 - KERNEL_VIRT_OFFSET
}

/// Tables reached at physical + offset.
struct Live;

impl TableMemory for Live {
    fn read(&self, paddr: u32) -> u32 {
        // SAFETY: tables live in RAM mapped at paddr + offset (boot mapping,
        // then direct map); the caller holds TABLES.
        unsafe { ((paddr + KERNEL_VIRT_OFFSET) as *const u32).read_volatile() }
    }

    fn write(&mut self, paddr: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe { ((paddr + KERNEL_VIRT_OFFSET) as *mut u32).write_volatile(value) }
    }

    fn changed(&mut self, virt: u32) {
        dsb();
        // SAFETY: TLB maintenance only: drops any stale translation of the
        // page, in every address space (whichever ASID tags it).
        unsafe { TlbiMvaa::write_raw(virt & !0xfff) };
        BpIAll::write();
        dsb();
        isb();
    }
}

impl TableRead for Live {
    fn read_u32(&self, paddr: u32) -> Option<u32> {
        Some(self.read(paddr))
    }
}

fn kernel_tables() -> Tables {
    Tables {
        l1: kernel_l1_paddr(),
        indices: (layout::KERNEL_SPACE_START >> 20, 4096),
    }
}

fn user_tables(root: RootTable) -> Tables {
    Tables {
        l1: root.0 as u32,
        indices: (0, layout::USER_END >> 20),
    }
}

fn tables_for(space: Space, virt: usize) -> Result<Tables, MapError> {
    match space {
        Space::Kernel if virt as u32 >= layout::KERNEL_SPACE_START => Ok(kernel_tables()),
        Space::User(root) if (virt as u64) < layout::USER_END as u64 => Ok(user_tables(root)),
        _ => Err(MapError::OutsideSpace),
    }
}

/// A device page mapped in the MMIO window.
#[derive(Clone, Copy)]
struct DevicePage {
    phys: u32,
    virt: u32,
}

/// Device pages mapped so far, and the physical MiB of each window slot.
struct Devices {
    pages: [DevicePage; 64],
    count: usize,
    slots: [u32; (layout::MMIO_SIZE / SECTION) as usize],
    slots_used: usize,
}

static DEVICES: Mutex<Devices> = Mutex::new(Devices {
    pages: [DevicePage { phys: 0, virt: 0 }; 64],
    count: 0,
    slots: [0; (layout::MMIO_SIZE / SECTION) as usize],
    slots_used: 0,
});

/// The window address for device page `phys`: each physical MiB gets a
/// window MiB, pages at their offset in it.
fn device_virt(devices: &mut Devices, phys: u32) -> Option<u32> {
    let section = phys & !(SECTION - 1);
    let slot = match devices.slots[..devices.slots_used]
        .iter()
        .position(|&s| s == section)
    {
        Some(slot) => slot,
        None if devices.slots_used < devices.slots.len() => {
            devices.slots[devices.slots_used] = section;
            devices.slots_used += 1;
            devices.slots_used - 1
        }
        None => return None,
    };
    Some(layout::MMIO_BASE + slot as u32 * SECTION + (phys - section))
}

/// Maps device pages before the kernel's table is live: each MiB as a
/// section of the boot table, at the same address its page will have.
fn map_device_early(paddr: u32) -> Option<usize> {
    let mut devices = DEVICES.lock();
    let page = paddr & !(PAGE_SIZE as u32 - 1);
    let virt = device_virt(&mut devices, page)?;
    let section_virt = virt & !(SECTION - 1);
    let boot_table = (&raw const boot_l1_table) as u32 - KERNEL_VIRT_OFFSET;
    let entry = mmu::section(page & !(SECTION - 1), MapFlags::KERNEL_DEVICE).ok()?;
    let mut live = Live;
    live.write(boot_table + (section_virt >> 20) * 4, entry);
    live.changed(section_virt);
    if !devices.pages[..devices.count]
        .iter()
        .any(|p| p.phys == page)
        && devices.count < devices.pages.len()
    {
        let n = devices.count;
        devices.pages[n] = DevicePage { phys: page, virt };
        devices.count += 1;
    }
    Some((virt + (paddr - page)) as usize)
}

/// Maps the device registers at `paddr` for the early console.
pub fn map_console(paddr: u64) -> Option<usize> {
    map_device_early(u32::try_from(paddr).ok()?)
}

/// Builds the kernel's table, switches to it and records the frames its L2
/// tables took in `boot`.
pub fn init(boot: &mut BootInfo) -> Result<(), MapError> {
    let _lock = TABLES.lock();
    let image_end = (boot.kernel_image.end as u32).next_multiple_of(PAGE_SIZE as u32);
    let boot_mapped_end = layout::RAM_BASE + layout::BOOT_MAPPED_SIZE;
    // SAFETY: RAM after the image, inside the boot mapping, is free and
    // used by nothing else until it is reserved below.
    let early = unsafe {
        BumpFrames::new(
            image_end as u64,
            boot_mapped_end as u64,
            KERNEL_VIRT_OFFSET as u64,
        )
    };
    let kernel = kernel_tables();
    let mut live = Live;
    let sections = image_sections();
    let image_mibs = (
        (sections.text.0 as u32) >> 20,
        ((sections.end() as u32) - 1) >> 20,
    );

    let mut direct = ([PhysRange::default(); 8], 0);
    for region in boot.memory.regions().iter().filter(|r| r.kind.is_ram()) {
        let start = region
            .range
            .start
            .max(layout::RAM_BASE as u64)
            .next_multiple_of(SECTION as u64);
        let end = region
            .range
            .end
            .min(layout::RAM_BASE as u64 + layout::DIRECT_MAP_MAX as u64)
            & !(SECTION as u64 - 1);
        if start >= end || direct.1 == direct.0.len() {
            continue;
        }
        for phys in (start as u32..end as u32).step_by(SECTION as usize) {
            let virt = phys + KERNEL_VIRT_OFFSET;
            let mib = virt >> 20;
            if mib >= image_mibs.0 && mib <= image_mibs.1 {
                // Pages here: the image with its permissions, the rest RAM.
                for page in (virt..virt + SECTION).step_by(PAGE_SIZE) {
                    let page64 = page as u64;
                    let flags =
                        if page64 >= layout::KERNEL_IMAGE_START as u64 && page64 < sections.end() {
                            sections.expected(page64)
                        } else {
                            Some(MapFlags::KERNEL_RW)
                        };
                    if let Some(flags) = flags {
                        mmu::map(
                            &kernel,
                            &mut live,
                            &early,
                            page,
                            (page - KERNEL_VIRT_OFFSET) as u64,
                            PAGE_SIZE,
                            flags,
                        )?;
                    }
                }
            } else {
                mmu::map(
                    &kernel,
                    &mut live,
                    &early,
                    virt,
                    phys as u64,
                    SECTION as usize,
                    MapFlags::KERNEL_RW,
                )?;
            }
        }
        direct.0[direct.1] = PhysRange { start, end };
        direct.1 += 1;
    }
    // Devices mapped so far (the console), now as pages.
    {
        let devices = DEVICES.lock();
        for page in &devices.pages[..devices.count] {
            mmu::map(
                &kernel,
                &mut live,
                &early,
                page.virt,
                page.phys as u64,
                PAGE_SIZE,
                MapFlags::KERNEL_DEVICE,
            )?;
        }
    }

    let ttbr1 = kernel_l1_paddr() | mmu::TTBR_WALK_WRITE_BACK;
    dsb();
    // SAFETY: the new table maps the image, its stacks and data exactly as
    // the boot table did, and the console at the same address. TTBR1 is
    // unused until TTBCR.N becomes 1, which also turns TTBR0 walks off
    // (PD0: no user half yet); the full TLB invalidation then leaves no
    // stale translation.
    unsafe {
        Ttbr1::write_raw(ttbr1);
        Ttbcr::write_raw(layout::TTBCR_N | TTBCR_PD0);
    }
    isb();
    TlbIAll::write();
    BpIAll::write();
    dsb();
    isb();
    SWITCHED.store(true, Ordering::SeqCst);
    DIRECT_MAPPED.call_once(|| direct);
    let used = early.used();
    if !boot.reserved.push("kernel page tables (boot)", used) {
        log::warn!("reserved-range list full; boot page tables unprotected");
    }
    log::info!(
        "kernel translation table live; L2 tables {} at {:#x}",
        ByteSize(used.size()),
        used.start
    );
    Ok(())
}

/// Checks the live kernel half against the layout; returns the number of
/// violations, each reported through `report`.
pub fn check_layout(
    report: &mut dyn FnMut(hal::layout::Violation),
) -> Result<usize, mmu::WalkError> {
    let sections = image_sections();
    let mut count = 0;
    mmu::walk(&kernel_tables(), &Live, &mut |range| {
        hal::layout::check(
            layout::VIRTUAL,
            &sections,
            layout::KERNEL_SPACE_START as u64,
            &range,
            &mut |v| {
                count += 1;
                report(v);
            },
        );
    })?;
    Ok(count)
}

fn direct_mapped() -> &'static [PhysRange] {
    DIRECT_MAPPED.get().map_or(&[], |(ranges, n)| &ranges[..*n])
}

/// Loads TTBR0 with `root`'s table (or turns the user half off), a user
/// half being on now if `had_user_half`: TTBCR changes only when it comes
/// or goes.
#[inline(always)]
fn write_ttbr0(root: Option<RootTable>, had_user_half: bool) {
    let (ttbr0, ttbcr) = match root {
        Some(root) => (root.0 as u32 | mmu::TTBR_WALK_WRITE_BACK, layout::TTBCR_N),
        None => (0, layout::TTBCR_N | TTBCR_PD0),
    };
    // SAFETY: switching the user half leaves the kernel half (TTBR1)
    // untouched; the ASID changes around it as `asid::switch` requires.
    unsafe {
        crate::asid::switch(root.map(|r| r.0 as u32), || {
            Ttbr0::write(Ttbr0::new_with_raw_value(ttbr0));
            if !had_user_half || root.is_none() {
                Ttbcr::write_raw(ttbcr);
            }
        })
    };
}

/// The user table TTBR0 walks now, if any (for tests).
pub fn active_user_table() -> Option<u32> {
    current_ttbr0()
}

fn current_ttbr0() -> Option<u32> {
    let ttbcr = Ttbcr::read_raw();
    // With TTBCR.N = 1 the user table is 8 KiB aligned: TTBR0 holds its
    // address in bits [31:13] (walk attributes below).
    let base_mask = !((1u32 << (14 - layout::TTBCR_N)) - 1);
    (ttbcr & TTBCR_PD0 == 0).then(|| Ttbr0::read().raw_value() & base_mask)
}

impl hal::Memory for crate::arch::Armv7 {
    const KERNEL_STACKS: (usize, usize) = (
        layout::KERNEL_STACKS_BASE as usize,
        (layout::KERNEL_STACKS_BASE + layout::KERNEL_STACKS_SIZE) as usize,
    );
    const KERNEL_DYNAMIC: (usize, usize) = (
        layout::KERNEL_DYNAMIC_BASE as usize,
        (layout::KERNEL_DYNAMIC_BASE + layout::KERNEL_DYNAMIC_SIZE) as usize,
    );
    const USER_END: usize = layout::USER_END as usize;
    const PAGE_SIZES: &'static [usize] = &[PAGE_SIZE, SECTION as usize];

    fn phys_to_virt(paddr: u64) -> Option<usize> {
        let mapped = if SWITCHED.load(Ordering::Relaxed) {
            direct_mapped().iter().any(|r| r.contains(paddr))
        } else {
            (layout::RAM_BASE as u64..(layout::RAM_BASE + layout::BOOT_MAPPED_SIZE) as u64)
                .contains(&paddr)
        };
        mapped.then(|| (paddr + KERNEL_VIRT_OFFSET as u64) as usize)
    }

    fn virt_to_phys(vaddr: usize) -> Option<u64> {
        (vaddr as u32 >= layout::KERNEL_VIRT_BASE)
            .then(|| (vaddr as u32 - KERNEL_VIRT_OFFSET) as u64)
    }

    fn map_raw(
        space: Space,
        virt: usize,
        phys: u64,
        page_size: usize,
        flags: MapFlags,
        frames: &dyn FrameSource,
    ) -> Result<(), MapError> {
        let _lock = TABLES.lock();
        mmu::map(
            &tables_for(space, virt)?,
            &mut Live,
            frames,
            virt as u32,
            phys,
            page_size,
            flags,
        )
    }

    fn unmap(space: Space, virt: usize) -> Result<Translation, MapError> {
        let _lock = TABLES.lock();
        mmu::unmap(&tables_for(space, virt)?, &mut Live, virt as u32)
    }

    fn translate(space: Space, virt: usize) -> Option<Translation> {
        let _lock = TABLES.lock();
        mmu::translate(&tables_for(space, virt).ok()?, &Live, virt as u32)
    }

    fn protect_raw(space: Space, virt: usize, flags: MapFlags) -> Result<(), MapError> {
        let _lock = TABLES.lock();
        mmu::protect(&tables_for(space, virt)?, &mut Live, virt as u32, flags)
    }

    fn create_space(frames: &dyn FrameSource) -> Result<RootTable, MapError> {
        // An L1 table for TTBR0 with N = 1: 2048 entries, 8 KiB aligned.
        let root = frames.allocate(2, 8192).ok_or(MapError::OutOfMemory)?;
        Ok(RootTable(root))
    }

    fn destroy_space(root: RootTable, frames: &dyn FrameSource) {
        let _lock = TABLES.lock();
        if current_ttbr0() == Some(root.0 as u32) {
            write_ttbr0(None, true);
        }
        crate::asid::forget(root.0 as u32);
        mmu::free_l2_tables(&user_tables(root), &mut Live, frames);
        frames.free(root.0, 2);
    }

    fn kernel_root() -> u64 {
        kernel_l1_paddr() as u64
    }

    unsafe fn zero_pages(kernel_address: usize, len: usize) {
        debug_assert!(kernel_address.is_multiple_of(PAGE_SIZE) && len.is_multiple_of(PAGE_SIZE));
        if len > 0 {
            // SAFETY: the caller gives mapped, writable, unused memory of
            // whole pages, so a multiple of 64 bytes, which the loop takes.
            unsafe { armv7_zero_pages(kernel_address, len) };
        }
    }

    #[inline(always)]
    fn activate(space: Option<RootTable>) {
        // Compared with what the last switch loaded rather than read from
        // two registers.
        let active = crate::asid::user_table();
        if active != space.map_or(0, |r| r.0 as u32) {
            write_ttbr0(space, active != 0);
        }
    }

    fn check_layout(report: &mut dyn FnMut(hal::layout::Violation)) -> Result<usize, &'static str> {
        check_layout(report).map_err(|_| "the kernel's page tables cannot be walked")
    }

    fn map_device(paddr: u64, size: usize, frames: &dyn FrameSource) -> Result<usize, MapError> {
        let paddr = u32::try_from(paddr).map_err(|_| MapError::OutsideSpace)?;
        let first = paddr & !(PAGE_SIZE as u32 - 1);
        let last = (paddr + size.max(1) as u32).next_multiple_of(PAGE_SIZE as u32);
        let _lock = TABLES.lock();
        let mut devices = DEVICES.lock();
        let mut first_virt = None;
        for page in (first..last).step_by(PAGE_SIZE) {
            let virt = device_virt(&mut devices, page).ok_or(MapError::OutOfMemory)?;
            first_virt.get_or_insert(virt);
            match mmu::map(
                &kernel_tables(),
                &mut Live,
                frames,
                virt,
                page as u64,
                PAGE_SIZE,
                MapFlags::KERNEL_DEVICE,
            ) {
                Ok(()) | Err(MapError::AlreadyMapped) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((first_virt.ok_or(MapError::Misaligned)? + (paddr - first)) as usize)
    }
}

/// Cleans `[kernel_address, +len)` from the data cache to the point of
/// unification and drops the instruction cache and branch predictor, so
/// code written through the direct map can be fetched at its user address.
pub fn sync_instructions(kernel_address: usize, len: usize) {
    // CTR.DminLine: log2 of the smallest data-cache line, in words.
    let line = 4usize << ((Ctr::read_raw() >> 16) & 0xf);
    let start = kernel_address & !(line - 1);
    let end = kernel_address.saturating_add(len);
    for address in (start..end).step_by(line) {
        // SAFETY: cache maintenance by address has no architectural effect
        // beyond writing back the line; the range is mapped kernel memory.
        unsafe { Dccmvau::write(Dccmvau(address as u32)) };
    }
    dsb();
    Iciallu::write();
    BpIAll::write();
    dsb();
    isb();
}
