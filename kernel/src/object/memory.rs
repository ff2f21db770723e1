//! Memory objects: zeroed frames that any process holding a capability
//! can map, and so share. A contiguous one also tells its holder where it
//! lies in physical memory, for devices that read and write memory
//! themselves (DMA). A device one covers a device's registers instead of
//! RAM, and is mapped uncached.
//!
//! The frames of RAM belong to the object: mappings and capabilities hold
//! it, and it frees them when the last goes. Dropping one takes no lock
//! but the frame allocator's, so it may happen anywhere.

use crate::mm::PAGE_SIZE;
use crate::mm::frames;
use crate::mm::quota::{Charge, Quota};
use abi::Error;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub struct MemoryObject {
    frames: Vec<u64>,
    backing: Backing,
    /// What its frames of RAM hold of its maker's quota, if charged.
    _charge: Option<Charge>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// Frames of RAM, wherever the allocator found them.
    Scattered,
    /// Frames of RAM, one run.
    Contiguous,
    /// Device registers, one run, owned by nobody.
    Device,
}

impl MemoryObject {
    /// An object of `size` bytes (rounded up to pages), physically
    /// contiguous if asked, charged to `quota` (if any) while it lives. It
    /// leaves the kernel's reserve of frames.
    pub fn new(
        size: usize,
        contiguous: bool,
        quota: Option<&Arc<Quota>>,
    ) -> Result<MemoryObject, Error> {
        if size == 0 {
            return Err(Error::InvalidArgument);
        }
        if size > abi::MAX_MEMORY_OBJECT_BYTES {
            return Err(Error::TooLong);
        }
        let pages = size.div_ceil(PAGE_SIZE);
        let charge = quota.map(|quota| quota.charge(pages)).transpose()?;
        if frames::counts().1 < crate::task::RESERVED_FRAMES + pages {
            return Err(Error::OutOfMemory);
        }
        let mut object = MemoryObject {
            frames: Vec::new(),
            backing: match contiguous {
                true => Backing::Contiguous,
                false => Backing::Scattered,
            },
            _charge: charge,
        };
        object
            .frames
            .try_reserve_exact(pages)
            .map_err(|_| Error::OutOfMemory)?;
        if contiguous {
            let base = frames::allocate_zeroed(pages, PAGE_SIZE).map_err(|_| Error::OutOfMemory)?;
            object
                .frames
                .extend((0..pages).map(|n| base + (n * PAGE_SIZE) as u64));
        } else {
            for _ in 0..pages {
                // On failure the frames taken so far go with `object`.
                let frame =
                    frames::allocate_zeroed(1, PAGE_SIZE).map_err(|_| Error::OutOfMemory)?;
                object.frames.push(frame);
            }
        }
        Ok(object)
    }

    /// An object over `pages` pages of device registers from `base`, which
    /// the caller checked lie in a device-memory range.
    pub fn device(base: u64, pages: usize) -> Result<MemoryObject, Error> {
        let mut frames = Vec::new();
        frames
            .try_reserve_exact(pages)
            .map_err(|_| Error::OutOfMemory)?;
        frames.extend((0..pages).map(|n| base + (n * PAGE_SIZE) as u64));
        // Device registers are no RAM: no quota is charged for them.
        Ok(MemoryObject {
            frames,
            backing: Backing::Device,
            _charge: None,
        })
    }

    /// Whether it covers device registers (mapped uncached).
    pub fn is_device(&self) -> bool {
        self.backing == Backing::Device
    }

    /// The frames, in order.
    pub fn frames(&self) -> &[u64] {
        &self.frames
    }

    /// Where a contiguous or device object starts in physical memory.
    pub fn physical(&self) -> Option<u64> {
        (self.backing != Backing::Scattered).then(|| self.frames[0])
    }
}

impl Drop for MemoryObject {
    fn drop(&mut self) {
        match self.backing {
            Backing::Contiguous => frames::free(self.frames[0], self.frames.len()),
            Backing::Scattered => self.frames.iter().for_each(|&frame| frames::free(frame, 1)),
            Backing::Device => {}
        }
    }
}
