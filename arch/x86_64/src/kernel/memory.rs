//! The kernel's page tables on x86_64, and the HAL memory implementation.
//!
//! At boot, the tables the boot code built (identity and kernel window over
//! the first 1 GiB, all writable and executable) are replaced: the kernel
//! builds its own from the layout, switches to them and checks the result
//! against the layout. Table frames for that come from just past the image,
//! reached through the boot window; afterwards everything goes through the
//! direct map.

use arch_x86_64::layout::{self, KERNEL_VIRT_OFFSET};
use arch_x86_64::paging::{self, PhysRead};
use core::sync::atomic::{AtomicU64, Ordering};
use hal::boot::ByteSize;
use hal::layout::ImageSections;
use hal::mm::{
    BumpFrames, FrameSource, MapError, MapFlags, PAGE_SIZE, RootTable, Space, Translation,
};
use hal::{BootInfo, MemoryKind, PhysRange};
use spin::{Mutex, Once};
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::structures::paging::mapper::{MapToError, TranslateResult, UnmapError};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size2MiB,
    Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

const LARGE_PAGE: u64 = 2 << 20;

/// Virtual address of physical address 0 for reaching page tables: the boot
/// window while the kernel's tables are built, the direct map after.
static TABLE_OFFSET: AtomicU64 = AtomicU64::new(KERNEL_VIRT_OFFSET);
/// Physical address of the kernel's PML4 (0 until it is built).
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);
/// Serialises page-table changes.
static TABLES: Mutex<()> = Mutex::new(());

/// RAM ranges the direct map covers.
static DIRECT_MAPPED: Once<([PhysRange; 32], usize)> = Once::new();

unsafe extern "C" {
    static __text_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __kernel_virt_end: u8;
    static boot_stack_guard: u8;
}

/// The image's sections, from the linker's symbols.
pub fn image_sections() -> ImageSections {
    static GUARDS: Once<[(u64, u64); 1]> = Once::new();
    let guard = &raw const boot_stack_guard as u64;
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
        guards: GUARDS.call_once(|| [(guard, guard + PAGE_SIZE as u64)]),
    }
}

/// Page tables reached at `TABLE_OFFSET`.
struct Tables;

impl PhysRead for Tables {
    fn read_u64(&self, paddr: u64) -> Option<u64> {
        // SAFETY: page tables are RAM, mapped at TABLE_OFFSET (boot window
        // or direct map) for as long as this module reads them.
        Some(unsafe {
            ((paddr + TABLE_OFFSET.load(Ordering::Relaxed)) as *const u64).read_volatile()
        })
    }
}

fn mapper(root: u64) -> OffsetPageTable<'static> {
    let offset = TABLE_OFFSET.load(Ordering::Relaxed);
    // SAFETY: `root` is a PML4 this module manages; the caller holds TABLES,
    // so no other mapper for it exists meanwhile.
    unsafe {
        OffsetPageTable::new(
            &mut *((root + offset) as *mut PageTable),
            VirtAddr::new(offset),
        )
    }
}

/// Adapts a [`FrameSource`] to the `x86_64` crate's allocator trait.
struct Frames<'a>(&'a dyn FrameSource);

// SAFETY: frames come zeroed and unused from the source.
unsafe impl FrameAllocator<Size4KiB> for Frames<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.0
            .allocate(1, PAGE_SIZE)
            .map(|p| PhysFrame::containing_address(PhysAddr::new(p)))
    }
}

fn map_error<S: x86_64::structures::paging::PageSize>(e: MapToError<S>) -> MapError {
    match e {
        MapToError::FrameAllocationFailed => MapError::OutOfMemory,
        MapToError::ParentEntryHugePage => MapError::SizeMismatch,
        MapToError::PageAlreadyMapped(_) => MapError::AlreadyMapped,
    }
}

fn is_active(root: u64) -> bool {
    Cr3::read().0.start_address().as_u64() == root
}

fn root_of(space: Space, virt: u64) -> Result<u64, MapError> {
    match space {
        Space::Kernel if virt >= layout::KERNEL_SPACE_START => {
            Ok(KERNEL_PML4.load(Ordering::Relaxed))
        }
        Space::User(RootTable(root)) if virt < layout::USER_END => Ok(root),
        _ => Err(MapError::OutsideSpace),
    }
}

fn map_in(
    root: u64,
    virt: u64,
    phys: u64,
    size: usize,
    flags: MapFlags,
    frames: &dyn FrameSource,
) -> Result<(), MapError> {
    let leaf = paging::leaf_flags(flags)?;
    let parents = paging::table_flags(flags.contains(MapFlags::USER));
    let mut mapper = mapper(root);
    let mut allocator = Frames(frames);
    match size as u64 {
        4096 => {
            let page = Page::<Size4KiB>::from_start_address(VirtAddr::new(virt))
                .map_err(|_| MapError::Misaligned)?;
            let frame = PhysFrame::<Size4KiB>::from_start_address(PhysAddr::new(phys))
                .map_err(|_| MapError::Misaligned)?;
            // SAFETY: the caller owns the frame it maps; the page is free.
            unsafe { mapper.map_to_with_table_flags(page, frame, leaf, parents, &mut allocator) }
                .map_err(map_error)?
                .flush()
        }
        LARGE_PAGE => {
            let page = Page::<Size2MiB>::from_start_address(VirtAddr::new(virt))
                .map_err(|_| MapError::Misaligned)?;
            let frame = PhysFrame::<Size2MiB>::from_start_address(PhysAddr::new(phys))
                .map_err(|_| MapError::Misaligned)?;
            // SAFETY: as above.
            unsafe { mapper.map_to_with_table_flags(page, frame, leaf, parents, &mut allocator) }
                .map_err(map_error)?
                .flush()
        }
        _ => return Err(MapError::UnsupportedPageSize(size)),
    }
    Ok(())
}

fn translate_in(root: u64, virt: u64) -> Option<Translation> {
    match mapper(root).translate(VirtAddr::new_truncate(virt)) {
        TranslateResult::Mapped {
            frame,
            offset,
            flags,
        } => Some(Translation {
            paddr: frame.start_address().as_u64() + offset,
            flags: paging::effective_flags(&[flags]),
            page_size: frame.size() as usize,
        }),
        _ => None,
    }
}

/// Maps `[phys, phys + size)` at `virt` with the largest pages that fit.
fn map_linear(
    root: u64,
    virt: u64,
    phys: u64,
    size: u64,
    flags: MapFlags,
    frames: &dyn FrameSource,
) -> Result<(), MapError> {
    let mut offset = 0;
    while offset < size {
        let (v, p) = (virt + offset, phys + offset);
        if v % LARGE_PAGE == 0 && p % LARGE_PAGE == 0 && size - offset >= LARGE_PAGE {
            map_in(root, v, p, LARGE_PAGE as usize, flags, frames)?;
            offset += LARGE_PAGE;
            continue;
        }
        // A run of small pages, up to the next 2 MiB boundary: the first
        // through the mapper, which builds the tables above it, the rest
        // written straight into the same page table (a walk per page made
        // mapping RAM's first megabytes most of the kernel's boot time).
        let run_end = (v / LARGE_PAGE + 1) * LARGE_PAGE;
        let run = (run_end - v).min(size - offset);
        map_in(root, v, p, PAGE_SIZE, flags, frames)?;
        let table = page_table_of(root, v).ok_or(MapError::SizeMismatch)?;
        let leaf = paging::leaf_flags(flags)?;
        for page in (PAGE_SIZE as u64..run).step_by(PAGE_SIZE) {
            let entry = &mut table[((v + page) >> 12 & 511) as usize];
            if !entry.is_unused() {
                return Err(MapError::AlreadyMapped);
            }
            entry.set_addr(PhysAddr::new(p + page), leaf);
        }
        offset += run;
    }
    Ok(())
}

/// The page table (last level) that maps `virt` under `root`, if the
/// levels above it exist and none maps a large page.
fn page_table_of(root: u64, virt: u64) -> Option<&'static mut PageTable> {
    let offset = TABLE_OFFSET.load(Ordering::Relaxed);
    let mut table = root;
    for shift in [39, 30, 21] {
        // SAFETY: page tables are RAM reached at TABLE_OFFSET; the caller
        // holds TABLES, so nothing else changes them meanwhile.
        let entries = unsafe { &*((table + offset) as *const PageTable) };
        let entry = &entries[(virt >> shift & 511) as usize];
        if entry.is_unused() || entry.flags().contains(PageTableFlags::HUGE_PAGE) {
            return None;
        }
        table = entry.addr().as_u64();
    }
    // SAFETY: as above; the caller uses the table only while holding TABLES.
    Some(unsafe { &mut *((table + offset) as *mut PageTable) })
}

/// Builds the kernel's page tables, switches to them and checks them
/// against the layout. Records the frames the tables took in `boot`.
pub fn init(boot: &mut BootInfo) -> Result<(), MapError> {
    let _lock = TABLES.lock();
    let image_end = boot.kernel_image.end.next_multiple_of(PAGE_SIZE as u64);
    let pool_end = boot
        .memory
        .regions()
        .iter()
        .find(|r| r.kind == MemoryKind::Usable && r.range.contains(image_end))
        .map(|r| r.range.end.min(layout::BOOT_MAPPED_SIZE) & !(PAGE_SIZE as u64 - 1))
        .ok_or(MapError::OutOfMemory)?;
    // SAFETY: RAM after the image, inside the boot window, is free and used
    // by nothing else until it is reserved below.
    let early = unsafe { BumpFrames::new(image_end, pool_end, KERNEL_VIRT_OFFSET) };
    let root = early.allocate(1, PAGE_SIZE).ok_or(MapError::OutOfMemory)?;
    KERNEL_PML4.store(root, Ordering::Relaxed);

    // Every kernel-half PML4 entry that can ever be used is created now, so
    // user address spaces can share them by copying the kernel half.
    let ram_end = boot
        .memory
        .regions()
        .iter()
        .filter(|r| r.kind.is_ram() || r.kind == MemoryKind::AcpiNvs)
        .map(|r| r.range.end)
        .max()
        .unwrap_or(0);
    let mut pml4_slots = [false; 512];
    for region in layout::VIRTUAL
        .iter()
        .filter(|r| r.start >= layout::KERNEL_SPACE_START)
    {
        let end = if region.start == layout::DIRECT_MAP_BASE {
            region.start + ram_end.max(1)
        } else {
            region.end
        };
        for slot in (region.start >> 39 & 511)..=((end - 1) >> 39 & 511) {
            pml4_slots[slot as usize] = true;
        }
    }
    // SAFETY: the new PML4 is a zeroed frame reached through the boot window.
    let pml4 = unsafe { &mut *((root + KERNEL_VIRT_OFFSET) as *mut PageTable) };
    for (slot, _) in pml4_slots.iter().enumerate().filter(|(_, used)| **used) {
        let pdpt = early.allocate(1, PAGE_SIZE).ok_or(MapError::OutOfMemory)?;
        pml4[slot].set_addr(PhysAddr::new(pdpt), paging::table_flags(false));
    }

    // The direct map: all RAM.
    let mut direct = ([PhysRange::default(); 32], 0);
    for region in boot
        .memory
        .regions()
        .iter()
        .filter(|r| r.kind.is_ram() || r.kind == MemoryKind::AcpiNvs)
    {
        let start = region.range.start.next_multiple_of(PAGE_SIZE as u64);
        let end = region.range.end & !(PAGE_SIZE as u64 - 1);
        if start >= end || end > layout::DIRECT_MAP_SIZE || direct.1 == direct.0.len() {
            continue;
        }
        map_linear(
            root,
            layout::DIRECT_MAP_BASE + start,
            start,
            end - start,
            MapFlags::KERNEL_RW,
            &early,
        )?;
        direct.0[direct.1] = PhysRange { start, end };
        direct.1 += 1;
    }

    // The image, in runs of pages with the same section permissions.
    let sections = image_sections();
    let mut page = sections.text.0;
    while page < sections.data.1 {
        let flags = sections.expected(page);
        let mut end = page + PAGE_SIZE as u64;
        while end < sections.data.1 && sections.expected(end) == flags {
            end += PAGE_SIZE as u64;
        }
        if let Some(flags) = flags {
            map_linear(
                root,
                page,
                page - KERNEL_VIRT_OFFSET,
                end - page,
                flags,
                &early,
            )?;
        }
        page = end;
    }

    // SAFETY: the new tables map the image (where this code runs, with its
    // stack and data) exactly as the old ones did, and the direct map the
    // rest of the kernel reaches through TABLE_OFFSET after the switch.
    unsafe {
        Cr4::update(|cr4| cr4.insert(Cr4Flags::PAGE_GLOBAL));
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(root)),
            Cr3Flags::empty(),
        );
    }
    TABLE_OFFSET.store(layout::DIRECT_MAP_BASE, Ordering::Relaxed);
    DIRECT_MAPPED.call_once(|| direct);
    let used = early.used();
    if !boot.reserved.push("kernel page tables (boot)", used) {
        log::warn!("reserved-range list full; boot page tables unprotected");
    }
    log::info!(
        "kernel page tables: {} at {:#x}",
        ByteSize(used.size()),
        used.start
    );
    Ok(())
}

/// Checks the live kernel half against the layout; returns the number of
/// violations, each reported through `report`.
pub fn check_layout(
    report: &mut dyn FnMut(hal::layout::Violation),
) -> Result<usize, paging::WalkError> {
    let root = KERNEL_PML4.load(Ordering::Relaxed);
    let sections = image_sections();
    let mut count = 0;
    paging::walk(
        &Tables,
        root,
        paging::KERNEL_HALF_FIRST_INDEX..paging::ENTRIES,
        1 << 16,
        &mut |range| {
            hal::layout::check(
                layout::VIRTUAL,
                &sections,
                layout::KERNEL_SPACE_START,
                &range,
                &mut |v| {
                    count += 1;
                    report(v);
                },
            );
        },
    )?;
    Ok(count)
}

/// Every direct-mapped RAM range, as mapped.
pub fn direct_mapped() -> &'static [PhysRange] {
    DIRECT_MAPPED.get().map_or(&[], |(ranges, n)| &ranges[..*n])
}

/// Bump allocators for the windows this module hands out.
static MMIO_NEXT: AtomicU64 = AtomicU64::new(layout::MMIO_BASE);
static FIRMWARE_NEXT: AtomicU64 = AtomicU64::new(layout::FIRMWARE_TABLES_BASE);

/// Maps `[paddr, paddr + size)` into a window's next free pages.
fn map_window(
    next: &AtomicU64,
    window_end: u64,
    paddr: u64,
    size: usize,
    flags: MapFlags,
    frames: &dyn FrameSource,
) -> Result<usize, MapError> {
    let first = paddr & !(PAGE_SIZE as u64 - 1);
    let last = (paddr + size.max(1) as u64).next_multiple_of(PAGE_SIZE as u64);
    let pages = last - first;
    let virt = next.fetch_add(pages, Ordering::Relaxed);
    if virt + pages > window_end {
        return Err(MapError::OutOfMemory);
    }
    let _lock = TABLES.lock();
    let root = KERNEL_PML4.load(Ordering::Relaxed);
    for offset in (0..pages).step_by(PAGE_SIZE) {
        map_in(
            root,
            virt + offset,
            first + offset,
            PAGE_SIZE,
            flags,
            frames,
        )?;
    }
    Ok((virt + (paddr - first)) as usize)
}

/// Maps firmware tables read-only and returns the virtual address of
/// `paddr`.
pub fn map_firmware(paddr: u64, size: usize, frames: &dyn FrameSource) -> Result<usize, MapError> {
    map_window(
        &FIRMWARE_NEXT,
        layout::FIRMWARE_TABLES_BASE + layout::FIRMWARE_TABLES_SIZE,
        paddr,
        size,
        MapFlags::KERNEL_RO,
        frames,
    )
}

/// Frees the page tables of a user half: every table under PML4 entries
/// 0..256, not the frames the pages map.
fn free_user_tables(root: u64, frames: &dyn FrameSource) {
    fn free_table(table: u64, level: usize, frames: &dyn FrameSource) {
        if level > 0 {
            for index in 0..paging::ENTRIES {
                let Some(entry) = Tables.read_u64(table + index as u64 * 8) else {
                    continue;
                };
                let flags = PageTableFlags::from_bits_truncate(entry);
                if flags.contains(PageTableFlags::PRESENT)
                    && !flags.contains(PageTableFlags::HUGE_PAGE)
                {
                    free_table(entry & paging::ADDRESS_MASK, level - 1, frames);
                }
            }
        }
        frames.free(table, 1);
    }
    for index in 0..paging::KERNEL_HALF_FIRST_INDEX {
        let Some(entry) = Tables.read_u64(root + index as u64 * 8) else {
            continue;
        };
        if entry & 1 != 0 {
            free_table(entry & paging::ADDRESS_MASK, 2, frames);
        }
    }
    frames.free(root, 1);
}

impl hal::Memory for crate::arch::X86_64 {
    const KERNEL_STACKS: (usize, usize) = (
        layout::KERNEL_STACKS_BASE as usize,
        (layout::KERNEL_STACKS_BASE + layout::KERNEL_STACKS_SIZE) as usize,
    );
    const KERNEL_DYNAMIC: (usize, usize) = (
        layout::KERNEL_DYNAMIC_BASE as usize,
        (layout::KERNEL_DYNAMIC_BASE + layout::KERNEL_DYNAMIC_SIZE) as usize,
    );
    const USER_END: usize = layout::USER_END as usize;
    const PAGE_SIZES: &'static [usize] = &[PAGE_SIZE, LARGE_PAGE as usize];

    fn phys_to_virt(paddr: u64) -> Option<usize> {
        if KERNEL_PML4.load(Ordering::Relaxed) == 0 || DIRECT_MAPPED.get().is_none() {
            return (paddr < layout::BOOT_MAPPED_SIZE)
                .then(|| (paddr + KERNEL_VIRT_OFFSET) as usize);
        }
        direct_mapped()
            .iter()
            .any(|r| r.contains(paddr))
            .then(|| (paddr + layout::DIRECT_MAP_BASE) as usize)
    }

    fn virt_to_phys(vaddr: usize) -> Option<u64> {
        let vaddr = vaddr as u64;
        if (layout::DIRECT_MAP_BASE..layout::DIRECT_MAP_BASE + layout::DIRECT_MAP_SIZE)
            .contains(&vaddr)
        {
            Some(vaddr - layout::DIRECT_MAP_BASE)
        } else if (layout::KERNEL_IMAGE_START
            ..layout::KERNEL_IMAGE_START + layout::KERNEL_IMAGE_MAX)
            .contains(&vaddr)
        {
            Some(vaddr - KERNEL_VIRT_OFFSET)
        } else {
            None
        }
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
        let root = root_of(space, virt as u64)?;
        map_in(root, virt as u64, phys, page_size, flags, frames)
    }

    fn unmap(space: Space, virt: usize) -> Result<Translation, MapError> {
        let _lock = TABLES.lock();
        let root = root_of(space, virt as u64)?;
        let translation = translate_in(root, virt as u64).ok_or(MapError::NotMapped)?;
        if !virt.is_multiple_of(translation.page_size) {
            return Err(MapError::Misaligned);
        }
        let mut mapper = mapper(root);
        let address = VirtAddr::new(virt as u64);
        let result = match translation.page_size as u64 {
            LARGE_PAGE => Mapper::<Size2MiB>::unmap(&mut mapper, Page::containing_address(address))
                .map(|(_, f)| f.flush()),
            _ => Mapper::<Size4KiB>::unmap(&mut mapper, Page::containing_address(address))
                .map(|(_, f)| f.flush()),
        };
        // The flush reached the active space's entries only.
        if !is_active(root) {
            crate::asid::forget(root);
        }
        match result {
            Ok(()) => Ok(translation),
            Err(UnmapError::ParentEntryHugePage) => Err(MapError::SizeMismatch),
            Err(_) => Err(MapError::NotMapped),
        }
    }

    fn translate(space: Space, virt: usize) -> Option<Translation> {
        let _lock = TABLES.lock();
        translate_in(root_of(space, virt as u64).ok()?, virt as u64)
    }

    fn protect_raw(space: Space, virt: usize, flags: MapFlags) -> Result<(), MapError> {
        let leaf = paging::leaf_flags(flags)?;
        let _lock = TABLES.lock();
        let root = root_of(space, virt as u64)?;
        let translation = translate_in(root, virt as u64).ok_or(MapError::NotMapped)?;
        let mut mapper = mapper(root);
        let address = VirtAddr::new(virt as u64);
        // SAFETY: changes the flags of a page the caller owns.
        let result = unsafe {
            match translation.page_size as u64 {
                LARGE_PAGE => Mapper::<Size2MiB>::update_flags(
                    &mut mapper,
                    Page::from_start_address(address).map_err(|_| MapError::Misaligned)?,
                    leaf | PageTableFlags::HUGE_PAGE,
                )
                .map(|f| f.flush()),
                _ => Mapper::<Size4KiB>::update_flags(
                    &mut mapper,
                    Page::from_start_address(address).map_err(|_| MapError::Misaligned)?,
                    leaf,
                )
                .map(|f| f.flush()),
            }
        };
        if !is_active(root) {
            crate::asid::forget(root);
        }
        result.map_err(|_| MapError::NotMapped)
    }

    fn create_space(frames: &dyn FrameSource) -> Result<RootTable, MapError> {
        let root = frames.allocate(1, PAGE_SIZE).ok_or(MapError::OutOfMemory)?;
        let _lock = TABLES.lock();
        let kernel = KERNEL_PML4.load(Ordering::Relaxed);
        let offset = TABLE_OFFSET.load(Ordering::Relaxed);
        // SAFETY: both are PML4 frames reached through the direct map; the
        // new one is not in use by anything yet.
        unsafe {
            let from = &*((kernel + offset) as *const PageTable);
            let to = &mut *((root + offset) as *mut PageTable);
            for index in paging::KERNEL_HALF_FIRST_INDEX..paging::ENTRIES {
                to[index] = from[index].clone();
            }
        }
        Ok(RootTable(root))
    }

    fn destroy_space(root: RootTable, frames: &dyn FrameSource) {
        let _lock = TABLES.lock();
        if is_active(root.0) {
            // SAFETY: the kernel's tables map everything the kernel uses.
            unsafe { crate::asid::load(KERNEL_PML4.load(Ordering::Relaxed), true) };
        }
        crate::asid::forget(root.0);
        free_user_tables(root.0, frames);
    }

    fn kernel_root() -> u64 {
        KERNEL_PML4.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn activate(space: Option<RootTable>) {
        let root = space.map_or(KERNEL_PML4.load(Ordering::Relaxed), |r| r.0);
        if !is_active(root) {
            // SAFETY: every root shares the kernel half, so the kernel keeps
            // running after the switch.
            unsafe { crate::asid::load(root, space.is_none()) };
        }
    }

    fn check_layout(report: &mut dyn FnMut(hal::layout::Violation)) -> Result<usize, &'static str> {
        check_layout(report).map_err(|_| "the kernel's page tables cannot be walked")
    }

    fn map_device(paddr: u64, size: usize, frames: &dyn FrameSource) -> Result<usize, MapError> {
        map_window(
            &MMIO_NEXT,
            layout::MMIO_BASE + layout::MMIO_SIZE,
            paddr,
            size,
            MapFlags::KERNEL_DEVICE,
            frames,
        )
    }
}
