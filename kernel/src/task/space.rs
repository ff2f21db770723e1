//! A process's user address space: its page tables and the regions that
//! say what may be mapped where. The kernel reaches user memory only
//! through here, and only through the direct map of the frames behind it:
//! it never dereferences a user address (so SMAP and SMEP never stand in
//! its way, and a bad pointer can only ever produce an error).

use super::image::{Plan, Segment};
use crate::mm::PAGE_SIZE;
use crate::mm::frames::{self, KernelFrames};
use crate::mm::quota::{Charge, Quota};
use abi::Error;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use hal::Arch;
use hal::mm::{MapError, MapFlags, RootTable, Space};
use hal::trap::Access;

/// Regions per address space beyond which `map` refuses.
pub const MAX_REGIONS: usize = 256;
pub use abi::MAX_ANONYMOUS_BYTES;

/// What a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Loaded from the program image, every page present.
    Image,
    /// The main thread's stack: zero pages on first touch.
    Stack,
    /// Memory from `map`: zero pages on first touch.
    Anonymous,
    /// A memory object's frames, every page present; they belong to the
    /// object, not to the space.
    Shared,
}

/// A page-aligned range with one protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: usize,
    pub end: usize,
    pub flags: MapFlags,
    pub kind: RegionKind,
}

impl Region {
    /// Whether an access of this kind is allowed.
    fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => true,
            Access::Write => self.flags.contains(MapFlags::WRITE),
            Access::Execute => self.flags.contains(MapFlags::EXECUTE),
        }
    }
}

fn map_error(error: MapError) -> Error {
    match error {
        MapError::OutOfMemory => Error::OutOfMemory,
        _ => Error::InvalidArgument,
    }
}

/// Checks that `[address, address + len)` does not overflow and lies in
/// user space; returns its end.
pub fn check_bounds<A: Arch>(address: usize, len: usize) -> Result<usize, Error> {
    let end = address.checked_add(len).ok_or(Error::BadAddress)?;
    let (user_start, user_end) = A::user_range();
    if address < user_start || end > user_end {
        return Err(Error::BadAddress);
    }
    Ok(end)
}

/// One user address space.
pub struct UserSpace {
    root: RootTable,
    regions: Vec<Region>,
    /// The objects behind `Shared` regions, by region start: mapped, an
    /// object stays.
    shared: Vec<(usize, Arc<dyn Any + Send + Sync>)>,
    resident: usize,
    anonymous_bytes: usize,
    /// What its user memory (image, stack, anonymous memory) holds of its
    /// process's quota, if it is charged to one.
    charge: Option<Charge>,
}

impl UserSpace {
    /// An empty address space.
    pub fn new<A: Arch>() -> Result<UserSpace, Error> {
        let root = A::create_space(&KernelFrames).map_err(map_error)?;
        Ok(UserSpace {
            root,
            regions: Vec::new(),
            shared: Vec::new(),
            resident: 0,
            anonymous_bytes: 0,
            charge: None,
        })
    }

    /// Charges its user memory, from here, to `quota`.
    pub fn charge_to(&mut self, quota: &Arc<Quota>) -> Result<(), Error> {
        self.charge = Some(quota.charge(0)?);
        Ok(())
    }

    /// Charges `pages` more of user memory, held until the space goes.
    pub fn charge_pages(&mut self, pages: usize) -> Result<(), Error> {
        match &mut self.charge {
            Some(charge) => charge.add(pages),
            None => Ok(()),
        }
    }

    /// The page-table root, to activate.
    pub fn root(&self) -> RootTable {
        self.root
    }

    fn space(&self) -> Space {
        Space::User(self.root)
    }

    /// Frames mapped (not counting page tables).
    pub fn resident_pages(&self) -> usize {
        self.resident
    }

    /// The regions, in address order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Adds `region`, which must not overlap another.
    pub fn add_region(&mut self, region: Region) -> Result<(), Error> {
        if region.start >= region.end
            || !region.start.is_multiple_of(PAGE_SIZE)
            || !region.end.is_multiple_of(PAGE_SIZE)
        {
            return Err(Error::InvalidArgument);
        }
        let at = self.regions.partition_point(|r| r.end <= region.start);
        if self
            .regions
            .get(at)
            .is_some_and(|next| next.start < region.end)
        {
            return Err(Error::InvalidArgument);
        }
        if self.regions.len() >= MAX_REGIONS {
            return Err(Error::LimitReached);
        }
        self.regions
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        self.regions.insert(at, region);
        Ok(())
    }

    /// The region holding `address`.
    pub fn region_at(&self, address: usize) -> Option<&Region> {
        let at = self.regions.partition_point(|r| r.end <= address);
        self.regions.get(at).filter(|r| r.start <= address)
    }

    /// Maps a fresh zeroed frame at `page`; returns the frame. The last
    /// [`super::RESERVED_FRAMES`] frames are the kernel's: user memory
    /// cannot take them.
    fn populate<A: Arch>(&mut self, page: usize, flags: MapFlags) -> Result<u64, Error> {
        if frames::counts().1 <= super::RESERVED_FRAMES {
            return Err(Error::OutOfMemory);
        }
        let frame = frames::allocate_zeroed(1, PAGE_SIZE).map_err(|_| Error::OutOfMemory)?;
        if let Err(e) = A::map(self.space(), page, frame, PAGE_SIZE, flags, &KernelFrames) {
            // (AlreadyMapped reads as InvalidArgument.)
            frames::free(frame, 1);
            return Err(map_error(e));
        }
        self.resident += 1;
        Ok(frame)
    }

    /// The frame behind the page holding `address`, for `access`; a page
    /// of a demand-zero region is brought in on first touch.
    pub fn frame_for<A: Arch>(&mut self, address: usize, access: Access) -> Result<u64, Error> {
        let region = *self.region_at(address).ok_or(Error::BadAddress)?;
        if !region.allows(access) {
            return Err(Error::BadAddress);
        }
        let page = address & !(PAGE_SIZE - 1);
        match A::translate(self.space(), page) {
            Some(t) => Ok(t.paddr & !(PAGE_SIZE as u64 - 1)),
            None if matches!(region.kind, RegionKind::Stack | RegionKind::Anonymous) => {
                self.populate::<A>(page, region.flags)
            }
            None => Err(Error::BadAddress),
        }
    }

    /// Resolves a user-mode fault at `address` by bringing in a
    /// demand-zero page: [`Error::BadAddress`] if the access is not
    /// allowed there (or the page is present already, so the fault was
    /// about something else).
    pub fn resolve_fault<A: Arch>(&mut self, address: usize, access: Access) -> Result<(), Error> {
        let region = *self.region_at(address).ok_or(Error::BadAddress)?;
        if matches!(region.kind, RegionKind::Image | RegionKind::Shared) || !region.allows(access) {
            return Err(Error::BadAddress);
        }
        // A page that is present already makes `map` refuse: the fault
        // was about something else.
        self.populate::<A>(address & !(PAGE_SIZE - 1), region.flags)
            .map(|_| ())
            .map_err(|e| match e {
                Error::OutOfMemory => Error::OutOfMemory,
                _ => Error::BadAddress,
            })
    }

    /// Calls `each` with the kernel view of every piece of
    /// `[address, address + len)`, page by page, after checking that the
    /// whole range allows `access`.
    fn for_each_piece<A: Arch>(
        &mut self,
        address: usize,
        len: usize,
        access: Access,
        mut each: impl FnMut(usize, usize, usize),
    ) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let end = check_bounds::<A>(address, len)?;
        // Check everything before touching anything, so a failed copy has
        // no half-done effect.
        let mut page = address & !(PAGE_SIZE - 1);
        while page < end {
            self.frame_for::<A>(page.max(address), access)?;
            page += PAGE_SIZE;
        }
        let mut done = 0;
        while done < len {
            let at = address + done;
            let in_page = at % PAGE_SIZE;
            let piece = (PAGE_SIZE - in_page).min(len - done);
            let frame = self.frame_for::<A>(at, access)?;
            each(frames::to_virt(frame) + in_page, done, piece);
            done += piece;
        }
        Ok(())
    }

    /// Checks that regions with `access` cover `[address, address + len)`,
    /// without bringing any page in: for buffers the kernel may fill only
    /// in part.
    pub fn covers<A: Arch>(&self, address: usize, len: usize, access: Access) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let end = check_bounds::<A>(address, len)?;
        let mut cursor = address;
        while cursor < end {
            let region = self.region_at(cursor).ok_or(Error::BadAddress)?;
            if !region.allows(access) {
                return Err(Error::BadAddress);
            }
            cursor = region.end;
        }
        Ok(())
    }

    /// Checks that `[address, address + len)` allows `access`, bringing in
    /// demand-zero pages.
    pub fn check<A: Arch>(
        &mut self,
        address: usize,
        len: usize,
        access: Access,
    ) -> Result<(), Error> {
        self.for_each_piece::<A>(address, len, access, |_, _, _| {})
    }

    /// Copies user memory at `address` into `out`.
    pub fn read<A: Arch>(&mut self, address: usize, out: &mut [u8]) -> Result<(), Error> {
        self.for_each_piece::<A>(address, out.len(), Access::Read, |kernel, at, len| {
            // SAFETY: `kernel` is the direct-map view of `len` bytes of a
            // frame this space maps; the destination is a distinct buffer.
            unsafe {
                core::ptr::copy_nonoverlapping(kernel as *const u8, out[at..].as_mut_ptr(), len)
            }
        })
    }

    /// Copies `data` into user memory at `address`.
    pub fn write<A: Arch>(&mut self, address: usize, data: &[u8]) -> Result<(), Error> {
        self.for_each_piece::<A>(address, data.len(), Access::Write, |kernel, at, len| {
            // SAFETY: as in `read`, in the other direction.
            unsafe { core::ptr::copy_nonoverlapping(data[at..].as_ptr(), kernel as *mut u8, len) }
        })
    }

    /// Loads the segments of a checked image.
    pub fn load<A: Arch>(&mut self, image: &[u8], plan: &Plan) -> Result<(), Error> {
        for segment in plan.segments() {
            self.load_segment::<A>(image, segment)?;
        }
        Ok(())
    }

    fn load_segment<A: Arch>(&mut self, image: &[u8], segment: &Segment) -> Result<(), Error> {
        let (start, end) = segment.pages();
        self.add_region(Region {
            start,
            end,
            flags: segment.flags,
            kind: RegionKind::Image,
        })?;
        let file_end = segment.vaddr + segment.file_size;
        for page in (start..end).step_by(PAGE_SIZE) {
            let frame = self.populate::<A>(page, segment.flags)?;
            let kernel = frames::to_virt(frame);
            let (from, to) = (page.max(segment.vaddr), (page + PAGE_SIZE).min(file_end));
            if from < to {
                let source = &image[segment.file_offset + (from - segment.vaddr)..][..to - from];
                // SAFETY: the frame was just allocated and mapped only
                // here; the piece lies within it.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        source.as_ptr(),
                        (kernel + (from - page)) as *mut u8,
                        source.len(),
                    )
                };
            }
            if segment.flags.contains(MapFlags::EXECUTE) {
                A::sync_instructions(kernel, PAGE_SIZE);
            }
        }
        Ok(())
    }

    /// Finds room for `len` bytes of anonymous memory in `[low, high)`,
    /// leaving an unmapped guard page on both sides.
    pub fn find_gap(&self, len: usize, low: usize, high: usize) -> Option<usize> {
        let mut candidate = low.checked_add(PAGE_SIZE)?;
        for region in &self.regions {
            if region.end <= candidate {
                continue;
            }
            let limit = candidate.checked_add(len)?.checked_add(PAGE_SIZE)?;
            if limit <= region.start {
                break;
            }
            candidate = region.end.checked_add(PAGE_SIZE)?;
        }
        let limit = candidate.checked_add(len)?.checked_add(PAGE_SIZE)?;
        (limit <= high).then_some(candidate)
    }

    /// Adds a demand-zero anonymous region, within the per-process limit.
    pub fn map_anonymous(
        &mut self,
        start: usize,
        len: usize,
        flags: MapFlags,
    ) -> Result<(), Error> {
        // Checked: on 32 bits a huge length must not wrap past the limit.
        let total = self.anonymous_bytes.checked_add(len);
        if total.is_none_or(|t| t > MAX_ANONYMOUS_BYTES) {
            return Err(Error::LimitReached);
        }
        let end = start.checked_add(len).ok_or(Error::InvalidArgument)?;
        // Charged when mapped, so that a fault never fails for want of
        // quota.
        let pages = len.div_ceil(PAGE_SIZE);
        self.charge_pages(pages)?;
        let added = self.add_region(Region {
            start,
            end,
            flags,
            kind: RegionKind::Anonymous,
        });
        if let Err(error) = added {
            if let Some(charge) = &mut self.charge {
                charge.remove(pages);
            }
            return Err(error);
        }
        self.anonymous_bytes += len;
        Ok(())
    }

    /// Removes anonymous memory in `[start, end)`: every byte of it must be
    /// in anonymous regions. Regions are cut where the range ends inside
    /// them.
    pub fn unmap_anonymous<A: Arch>(&mut self, start: usize, end: usize) -> Result<(), Error> {
        // Check first: covered without gaps by anonymous regions.
        let mut cursor = start;
        while cursor < end {
            let region = self.region_at(cursor).ok_or(Error::InvalidArgument)?;
            if region.kind != RegionKind::Anonymous {
                return Err(Error::InvalidArgument);
            }
            cursor = region.end;
        }
        let mut kept = Vec::new();
        kept.try_reserve(self.regions.len() + 2)
            .map_err(|_| Error::OutOfMemory)?;
        for region in self.regions.drain(..) {
            if region.end <= start || region.start >= end {
                kept.push(region);
                continue;
            }
            if region.start < start {
                kept.push(Region {
                    end: start,
                    ..region
                });
            }
            if region.end > end {
                kept.push(Region {
                    start: end,
                    ..region
                });
            }
        }
        self.regions = kept;
        self.anonymous_bytes -= end - start;
        if let Some(charge) = &mut self.charge {
            charge.remove((end - start).div_ceil(PAGE_SIZE));
        }
        self.release_pages::<A>(start, end);
        Ok(())
    }

    /// Maps `frames` (a memory object's, which `object` keeps) at `start`
    /// with `flags`, every page at once.
    pub fn map_shared<A: Arch>(
        &mut self,
        start: usize,
        frames: &[u64],
        flags: MapFlags,
        object: Arc<dyn Any + Send + Sync>,
    ) -> Result<(), Error> {
        let end = frames
            .len()
            .checked_mul(PAGE_SIZE)
            .and_then(|len| start.checked_add(len))
            .ok_or(Error::InvalidArgument)?;
        self.shared.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        self.add_region(Region {
            start,
            end,
            flags,
            kind: RegionKind::Shared,
        })?;
        for (n, &frame) in frames.iter().enumerate() {
            let page = start + n * PAGE_SIZE;
            if let Err(e) = A::map(self.space(), page, frame, PAGE_SIZE, flags, &KernelFrames) {
                self.unmap_pages::<A>(start, page);
                self.regions.retain(|r| r.start != start);
                return Err(map_error(e));
            }
        }
        self.shared.push((start, object));
        Ok(())
    }

    /// Removes the memory object mapped at `start`; returns the object's
    /// reference, for the caller to drop.
    pub fn unmap_shared<A: Arch>(
        &mut self,
        start: usize,
    ) -> Result<Arc<dyn Any + Send + Sync>, Error> {
        let region = *self.region_at(start).ok_or(Error::InvalidArgument)?;
        if region.kind != RegionKind::Shared || region.start != start {
            return Err(Error::InvalidArgument);
        }
        self.unmap_pages::<A>(region.start, region.end);
        self.regions.retain(|r| r.start != start);
        let at = self
            .shared
            .iter()
            .position(|(s, _)| *s == start)
            .expect("a shared region has its object");
        Ok(self.shared.swap_remove(at).1)
    }

    /// Unmaps the pages of `[start, end)` without freeing their frames.
    fn unmap_pages<A: Arch>(&mut self, start: usize, end: usize) {
        for page in (start..end).step_by(PAGE_SIZE) {
            let _ = A::unmap(self.space(), page);
        }
    }

    /// Unmaps and frees every present page in `[start, end)`.
    fn release_pages<A: Arch>(&mut self, start: usize, end: usize) {
        for page in (start..end).step_by(PAGE_SIZE) {
            if let Ok(t) = A::unmap(self.space(), page) {
                frames::free(t.paddr & !(PAGE_SIZE as u64 - 1), 1);
                self.resident -= 1;
            }
        }
    }

    /// Frees every page and page table.
    pub fn destroy<A: Arch>(mut self) {
        for region in core::mem::take(&mut self.regions) {
            match region.kind {
                RegionKind::Shared => self.unmap_pages::<A>(region.start, region.end),
                _ => self.release_pages::<A>(region.start, region.end),
            }
        }
        // Memory objects only free frames when they go: no lock is taken.
        self.shared.clear();
        A::destroy_space(self.root, &KernelFrames);
    }
}
