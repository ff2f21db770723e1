//! Frames, heap, mappings, faults and stacks.

use super::XorShift;
use crate::ktest::{Outcome, Test};
use crate::mm::frames::{self, KernelFrames};
use crate::mm::stack::KernelStack;
use crate::mm::{self, PAGE_SIZE, heap};
use crate::{ensure, ensure_eq, fail};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use hal::layout::Violation;
use hal::mm::{MapError, MapFlags, Space};
use hal::trap::{Access, Fault, FaultKind};
use hal::{Arch, MemoryKind};

pub(super) fn tests<A: Arch>() -> [Test; 13] {
    [
        crate::ktest!(mm, copy_move_and_fill_are_exact_at_every_alignment),
        crate::ktest!(mm, device_mappings_are_uncached::<A>),
        crate::ktest!(mm, live_tables_match_layout_and_violations_are_caught::<A>),
        crate::ktest!(mm, frames_unique_none_lost_reserved_untouched::<A>),
        crate::ktest!(mm, frame_blocks_of_mixed_sizes),
        crate::ktest!(mm, heap_stress_mixed_sizes),
        crate::ktest!(mm, heap_exhaustion_is_an_error),
        crate::ktest!(mm, map_translate_protect_unmap::<A>),
        crate::ktest!(mm, large_pages::<A>),
        crate::ktest!(mm, kernel_text_and_rodata_not_writable::<A>),
        crate::ktest!(mm, no_execute_pages_fault_on_fetch::<A>),
        crate::ktest!(mm, kernel_stack_guard_page_faults::<A>),
        crate::ktest!(mm, user_space_round_trip_frees_everything::<A>),
    ]
}

/// The byte at `index` of the test pattern.
fn pattern(index: usize) -> u8 {
    (index.wrapping_mul(131) ^ (index >> 8)) as u8 | 1
}

/// `memcpy`, `memmove` (both directions of overlap) and `memset` through
/// `core::ptr`, with lengths the compiler cannot see, for every pair of
/// alignments and the lengths around each of the routines' steps: each
/// writes exactly its bytes and leaves its neighbours alone. (ARMv7 links
/// its own assembly routines for these.)
fn copy_move_and_fill_are_exact_at_every_alignment() -> Outcome {
    use core::hint::black_box;
    const GUARD: u8 = 0;
    const SLACK: usize = 16;
    let lengths = (0..=72).chain([127, 128, 129, 1000, 4096 + 5]);
    for len in lengths {
        // Each routine works on `len` bytes within `SLACK` of a buffer's
        // start, so the checks scan short buffers.
        let size = len + 2 * SLACK;
        let source: Vec<u8> = (0..size).map(pattern).collect();
        let mut target = alloc::vec![GUARD; size];
        for from in 0..8 {
            for to in 0..8 {
                target.fill(GUARD);
                let (src, dst) = (black_box(SLACK + from), black_box(SLACK + to));
                // SAFETY: both ranges lie inside their own vectors.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        source.as_ptr().add(src),
                        target.as_mut_ptr().add(dst),
                        black_box(len),
                    )
                };
                let copied = |i: usize, outside: u8| match i.checked_sub(dst) {
                    Some(k) if k < len => pattern(src + k),
                    _ => outside,
                };
                if let Some((i, byte, expected)) = first_wrong(&target, |i| copied(i, GUARD)) {
                    fail!(
                        "copy of {len} bytes from offset {from} to {to}: byte {i} is {byte:#x}, not {expected:#x}"
                    );
                }
                // Within one buffer, the ranges overlapping either way.
                let mut buffer = source.clone();
                // SAFETY: both ranges lie inside `buffer`.
                unsafe {
                    core::ptr::copy(
                        buffer.as_ptr().add(src),
                        buffer.as_mut_ptr().add(dst),
                        black_box(len),
                    )
                };
                if let Some((i, byte, expected)) = first_wrong(&buffer, |i| copied(i, pattern(i))) {
                    fail!(
                        "move of {len} bytes from offset {from} to {to}: byte {i} is {byte:#x}, not {expected:#x}"
                    );
                }
            }
            let value = black_box(0x80 | from as u8);
            target.fill(GUARD);
            let dst = SLACK + from;
            // SAFETY: the range lies inside `target`.
            unsafe { core::ptr::write_bytes(target.as_mut_ptr().add(dst), value, black_box(len)) };
            let filled = |i| {
                if (dst..dst + len).contains(&i) {
                    value
                } else {
                    GUARD
                }
            };
            if let Some((i, byte, expected)) = first_wrong(&target, filled) {
                fail!(
                    "fill of {len} bytes at offset {from}: byte {i} is {byte:#x}, not {expected:#x}"
                );
            }
        }
    }
    Ok(())
}

/// The first byte of `buffer` that is not `expected(index)`: its index,
/// its value and the value expected.
fn first_wrong(buffer: &[u8], expected: impl Fn(usize) -> u8) -> Option<(usize, u8, u8)> {
    buffer
        .iter()
        .enumerate()
        .map(|(i, &byte)| (i, byte, expected(i)))
        .find(|(_, byte, expected)| byte != expected)
}

/// Frames taken by the heap since `heap_before` bytes.
fn heap_frames_since(heap_before: usize) -> usize {
    (heap::usage().0 - heap_before) / PAGE_SIZE
}

fn frames_unique_none_lost_reserved_untouched<A: Arch>() -> Outcome {
    let boot = A::boot_info();
    let heap_before = heap::usage().0;
    let (_, free_before) = frames::counts();
    let mut taken = match super::take_every_free_frame() {
        Ok(taken) => taken,
        Err(super::TakeAllError::NoHeap(n)) => fail!("no heap for a list of {n} frames"),
        Err(super::TakeAllError::MoreThanCounted) => {
            fail!("more frames handed out than were free")
        }
    };
    ensure_eq!(frames::counts().1, 0, "free frames once allocation fails");
    ensure_eq!(
        taken.len() + heap_frames_since(heap_before),
        free_before,
        "frames handed out"
    );

    // Sorted in place: with every frame taken, the heap cannot grow for a
    // copy.
    taken.sort_unstable();
    if let Some(pair) = taken.windows(2).find(|p| p[0] == p[1]) {
        fail!("frame {:#x} handed out twice", pair[0]);
    }
    for &frame in &taken {
        if let Some(r) = boot.reserved.containing(frame) {
            fail!("frame {frame:#x} is inside the reserved {}", r.name);
        }
        let usable = boot.memory.regions().iter().any(|r| {
            r.kind == MemoryKind::Usable
                && r.range.start <= frame
                && frame + PAGE_SIZE as u64 <= r.range.end
        });
        ensure!(usable, "frame {frame:#x} is not in usable RAM");
    }

    // Give them back in a scrambled order: buddies must still merge.
    XorShift::new(0x1234_5678_9abc_def1).shuffle(&mut taken);
    for &frame in &taken {
        frames::free(frame, 1);
    }
    ensure_eq!(
        frames::counts().1 + heap_frames_since(heap_before),
        free_before,
        "free frames after freeing all"
    );
    // Merged again: a 2 MiB block is available.
    let block = frames::allocate(512, 512 * PAGE_SIZE).map_err(|e| {
        crate::ktest::Failure::new(
            file!(),
            line!(),
            format_args!("no 2 MiB block after freeing: {e}"),
        )
    })?;
    ensure_eq!(block % (512 * PAGE_SIZE) as u64, 0, "2 MiB block alignment");
    frames::free(block, 512);
    Ok(())
}

fn frame_blocks_of_mixed_sizes() -> Outcome {
    let (_, free_before) = frames::counts();
    let heap_before = heap::usage().0;
    let mut blocks: Vec<(u64, usize)> = Vec::new();
    let mut rng = XorShift::new(42);
    for _ in 0..600 {
        let count = [1, 2, 3, 4, 5, 8, 13, 16, 64][rng.below(9)];
        let Ok(frame) = frames::allocate_zeroed(count, PAGE_SIZE) else {
            break;
        };
        let block = count.next_power_of_two() as u64 * PAGE_SIZE as u64;
        ensure_eq!(frame % block, 0, "alignment of a {count}-frame block");
        // Stamp the block to catch overlapping blocks.
        let stamp = blocks.len() as u64 + 1;
        // SAFETY: the frames are ours and direct-mapped.
        unsafe { (frames::to_virt(frame) as *mut u64).write(stamp) };
        blocks.push((frame, count));
        if rng.below(3) == 0 {
            let (frame, count) = blocks.swap_remove(rng.below(blocks.len()));
            frames::free(frame, count);
        }
    }
    for (i, &(frame, _)) in blocks.iter().enumerate() {
        // SAFETY: as above.
        let stamp = unsafe { (frames::to_virt(frame) as *const u64).read() };
        ensure!(stamp != 0, "block {i} at {frame:#x} was overwritten");
    }
    let mut sorted: Vec<(u64, u64)> = blocks
        .iter()
        .map(|&(f, c)| (f, f + (c.next_power_of_two() * PAGE_SIZE) as u64))
        .collect();
    sorted.sort_unstable();
    if let Some(p) = sorted.windows(2).find(|p| p[0].1 > p[1].0) {
        fail!("blocks {:#x?} and {:#x?} overlap", p[0], p[1]);
    }
    for (frame, count) in blocks.drain(..) {
        frames::free(frame, count);
    }
    drop(sorted);
    drop(blocks);
    ensure_eq!(
        frames::counts().1 + heap_frames_since(heap_before),
        free_before,
        "free frames after mixed blocks"
    );
    // Alignment beyond the block's size is refused rather than ignored.
    ensure!(
        frames::allocate(1, 2 * PAGE_SIZE).is_err(),
        "1 frame at 8 KiB alignment was granted"
    );
    Ok(())
}

/// Blocks of mixed sizes filled with patterns, freed in a scrambled order,
/// then a map of boxed values.
fn heap_workload() -> Outcome {
    let mut rng = XorShift::new(7);
    let mut live: Vec<(Vec<u8>, u8)> = Vec::new();
    for round in 0..3000 {
        let size = match rng.below(10) {
            0 => 4096 + rng.below(60_000),
            1..=3 => 256 + rng.below(4096),
            _ => 1 + rng.below(256),
        };
        let fill = (round % 251) as u8;
        let mut block = Vec::new();
        if block.try_reserve_exact(size).is_err() {
            fail!("heap refused {size} bytes in round {round}");
        }
        block.resize(size, fill);
        live.push((block, fill));
        if rng.below(2) == 0 {
            let (block, fill) = live.swap_remove(rng.below(live.len()));
            ensure!(
                block.iter().all(|&b| b == fill),
                "a freed block was corrupted"
            );
        }
    }
    for (i, (block, fill)) in live.iter().enumerate() {
        ensure!(
            block.iter().all(|b| b == fill),
            "block {i} of {} bytes was corrupted",
            block.len()
        );
    }
    drop(live);

    let mut map: BTreeMap<u32, Box<u64>> = BTreeMap::new();
    for key in 0..2000u32 {
        map.insert(key.wrapping_mul(2_654_435_761), Box::new(key as u64 * 3));
    }
    map.retain(|k, _| k % 3 != 0);
    for (k, v) in &map {
        ensure_eq!(**v % 3, 0, "value under key {k}");
    }
    Ok(())
}

fn heap_stress_mixed_sizes() -> Outcome {
    // The first run may grow the heap, which changes the frame allocator's
    // own records (kept on the heap too); the second must leave the heap
    // exactly as it found it.
    heap_workload()?;
    let before = heap::usage();
    heap_workload()?;
    ensure_eq!(
        heap::usage(),
        before,
        "heap (size, bytes in use) after a second run"
    );
    Ok(())
}

fn heap_exhaustion_is_an_error() -> Outcome {
    let (total, _) = frames::counts();
    let mut huge: Vec<u8> = Vec::new();
    ensure!(
        huge.try_reserve_exact(total * PAGE_SIZE * 2).is_err(),
        "twice the RAM was granted"
    );
    ensure!(
        heap::try_box([0u8; 64]).is_ok(),
        "the heap stopped working after a refusal"
    );
    Ok(())
}

/// A page in the dynamic window and a fresh frame behind nothing yet.
fn scratch_page() -> Result<(usize, u64), crate::ktest::Failure> {
    let virt = mm::reserve_dynamic(PAGE_SIZE, PAGE_SIZE)
        .map_err(|e| fail_with(format_args!("no virtual space: {e}")))?;
    let frame = frames::allocate_zeroed(1, PAGE_SIZE)
        .map_err(|e| fail_with(format_args!("no frame: {e}")))?;
    Ok((virt, frame))
}

fn fail_with(message: core::fmt::Arguments<'_>) -> crate::ktest::Failure {
    crate::ktest::Failure::new(file!(), line!(), message)
}

extern "C" fn write_byte(address: usize) {
    // SAFETY: tests call this under catch_fault on addresses they expect to
    // fault; a write that goes through is what they check for.
    unsafe { (address as *mut u8).write_volatile(0x5a) }
}

extern "C" fn read_byte(address: usize) {
    // SAFETY: as for `write_byte`.
    unsafe { core::hint::black_box((address as *const u8).read_volatile()) };
}

extern "C" fn call(address: usize) {
    // SAFETY: as for `write_byte`; the code there, if it runs at all, is a
    // single return instruction.
    let function: extern "C" fn() = unsafe { core::mem::transmute(address) };
    function();
}

/// Runs `f(address)` expecting a fault of `kind` on `access` at `address`.
fn expect_fault<A: Arch>(
    f: extern "C" fn(usize),
    address: usize,
    kind: FaultKind,
    access: Access,
    what: &str,
) -> Outcome {
    // SAFETY: the probes hold no locks and own nothing.
    match unsafe { A::catch_fault(f, address) } {
        Ok(()) => fail!("{what}: no fault"),
        Err(Fault {
            kind: k,
            access: Some(a),
            address: at,
            ..
        }) if k == kind && a == access && at == address => Ok(()),
        Err(fault) => fail!("{what}: unexpected fault: {fault}"),
    }
}

fn map_translate_protect_unmap<A: Arch>() -> Outcome {
    let (virt, frame) = scratch_page()?;
    let frames = &KernelFrames;
    if let Err(e) = A::map(
        Space::Kernel,
        virt,
        frame,
        PAGE_SIZE,
        MapFlags::KERNEL_RW,
        frames,
    ) {
        fail!("map: {e}");
    }
    let Some(t) = A::translate(Space::Kernel, virt + 0x123) else {
        fail!("mapped page does not translate")
    };
    ensure_eq!(
        (t.paddr, t.flags, t.page_size),
        (frame + 0x123, MapFlags::KERNEL_RW, PAGE_SIZE),
        "translation"
    );
    // SAFETY: the page was just mapped to a frame this test owns.
    unsafe { (virt as *mut u64).write_volatile(0xfeed_f00d_dead_beef) };
    // SAFETY: the same frame through the direct map.
    let through_direct_map = unsafe { (frames::to_virt(frame) as *const u64).read_volatile() };
    ensure_eq!(
        through_direct_map,
        0xfeed_f00d_dead_beef,
        "value seen through the direct map"
    );
    ensure_eq!(
        A::map(
            Space::Kernel,
            virt,
            frame,
            PAGE_SIZE,
            MapFlags::KERNEL_RW,
            frames
        ),
        Err(MapError::AlreadyMapped),
        "mapping twice"
    );

    if let Err(e) = A::protect(Space::Kernel, virt, MapFlags::KERNEL_RO) {
        fail!("protect: {e}");
    }
    ensure_eq!(
        A::translate(Space::Kernel, virt).map(|t| t.flags),
        Some(MapFlags::KERNEL_RO),
        "flags after protect"
    );
    expect_fault::<A>(
        write_byte,
        virt,
        FaultKind::Permission,
        Access::Write,
        "writing a read-only page",
    )?;

    match A::unmap(Space::Kernel, virt) {
        Ok(t) => ensure_eq!(t.paddr, frame, "unmapped frame"),
        Err(e) => fail!("unmap: {e}"),
    }
    ensure_eq!(
        A::translate(Space::Kernel, virt),
        None,
        "translation after unmap"
    );
    expect_fault::<A>(
        read_byte,
        virt,
        FaultKind::NotMapped,
        Access::Read,
        "reading an unmapped page",
    )?;
    ensure_eq!(
        A::unmap(Space::Kernel, virt).map(|_| ()),
        Err(MapError::NotMapped),
        "unmapping twice"
    );

    // What the API refuses.
    ensure_eq!(
        A::map(
            Space::Kernel,
            virt + 1,
            frame,
            PAGE_SIZE,
            MapFlags::KERNEL_RW,
            frames
        ),
        Err(MapError::Misaligned),
        "misaligned address"
    );
    ensure_eq!(
        A::map(
            Space::Kernel,
            virt,
            frame,
            PAGE_SIZE,
            MapFlags::KERNEL_RW | MapFlags::EXECUTE,
            frames
        ),
        Err(MapError::BadFlags),
        "writable and executable"
    );
    ensure_eq!(
        A::map(
            Space::Kernel,
            virt,
            frame,
            PAGE_SIZE,
            MapFlags::USER_RW,
            frames
        ),
        Err(MapError::BadFlags),
        "user page in the kernel half"
    );
    ensure_eq!(
        A::map(
            Space::Kernel,
            0x40_0000,
            frame,
            PAGE_SIZE,
            MapFlags::KERNEL_RW,
            frames
        ),
        Err(MapError::OutsideSpace),
        "user address in the kernel space"
    );
    ensure_eq!(
        A::map(
            Space::Kernel,
            virt,
            frame,
            3 * PAGE_SIZE,
            MapFlags::KERNEL_RW,
            frames
        ),
        Err(MapError::UnsupportedPageSize(3 * PAGE_SIZE)),
        "odd page size"
    );
    frames::free(frame, 1);
    Ok(())
}

fn large_pages<A: Arch>() -> Outcome {
    let Some(&size) = A::PAGE_SIZES.get(1) else {
        fail!("no large page size")
    };
    let virt = mm::reserve_dynamic(size, size)
        .map_err(|e| fail_with(format_args!("no virtual space: {e}")))?;
    let count = size / PAGE_SIZE;
    let block = frames::allocate(count, size)
        .map_err(|e| fail_with(format_args!("no {count} frames: {e}")))?;
    if let Err(e) = A::map(
        Space::Kernel,
        virt,
        block,
        size,
        MapFlags::KERNEL_RW,
        &KernelFrames,
    ) {
        fail!("map {size}-byte page: {e}");
    }
    let last = virt + size - 8;
    let Some(t) = A::translate(Space::Kernel, last) else {
        fail!("large page does not translate")
    };
    ensure_eq!(
        (t.paddr, t.page_size),
        (block + (size - 8) as u64, size),
        "translation of its last word"
    );
    // SAFETY: mapped just above to frames this test owns.
    unsafe { (last as *mut u64).write_volatile(77) };
    // SAFETY: the same frame through the direct map.
    let seen = unsafe { ((frames::to_virt(block) + size - 8) as *const u64).read_volatile() };
    ensure_eq!(seen, 77, "value through the direct map");
    ensure_eq!(
        A::unmap(Space::Kernel, virt + PAGE_SIZE).map(|_| ()),
        Err(MapError::Misaligned),
        "unmapping inside a large page"
    );
    if let Err(e) = A::unmap(Space::Kernel, virt) {
        fail!("unmap large page: {e}");
    }
    ensure_eq!(A::translate(Space::Kernel, virt), None, "after unmap");
    frames::free(block, count);
    Ok(())
}

/// Read-only data for the write test.
static RODATA_PROBE: [u8; 16] = [0x42; 16];

fn kernel_text_and_rodata_not_writable<A: Arch>() -> Outcome {
    let text = kernel_text_and_rodata_not_writable::<A> as *const () as usize;
    expect_fault::<A>(
        write_byte,
        text,
        FaultKind::Permission,
        Access::Write,
        "writing kernel text",
    )?;
    let rodata = RODATA_PROBE.as_ptr() as usize;
    expect_fault::<A>(
        write_byte,
        rodata,
        FaultKind::Permission,
        Access::Write,
        "writing read-only data",
    )?;
    ensure_eq!(
        core::hint::black_box(&RODATA_PROBE)[0],
        0x42,
        "read-only data unchanged"
    );
    Ok(())
}

/// Writable data holding a return instruction, for the fetch test.
static mut DATA_PROBE: [u8; 16] = [0; 16];

fn no_execute_pages_fault_on_fetch<A: Arch>() -> Outcome {
    // A mapped, writable, non-executable page holding a return instruction:
    // if fetching from it worked, the call would simply return.
    let (virt, frame) = scratch_page()?;
    if let Err(e) = A::map(
        Space::Kernel,
        virt,
        frame,
        PAGE_SIZE,
        MapFlags::KERNEL_RW,
        &KernelFrames,
    ) {
        fail!("map: {e}");
    }
    // SAFETY: the page is mapped writable and owned by this test.
    unsafe {
        core::ptr::copy_nonoverlapping(
            A::RETURN_INSTRUCTION.as_ptr(),
            virt as *mut u8,
            A::RETURN_INSTRUCTION.len(),
        )
    };
    let result = expect_fault::<A>(
        call,
        virt,
        FaultKind::Permission,
        Access::Execute,
        "fetching from a no-execute page",
    );
    let _ = A::unmap(Space::Kernel, virt);
    frames::free(frame, 1);
    result?;

    // The kernel's own data is no-execute too.
    let data = &raw mut DATA_PROBE as usize;
    // SAFETY: DATA_PROBE is only used here.
    unsafe {
        core::ptr::copy_nonoverlapping(
            A::RETURN_INSTRUCTION.as_ptr(),
            data as *mut u8,
            A::RETURN_INSTRUCTION.len(),
        )
    };
    expect_fault::<A>(
        call,
        data,
        FaultKind::Permission,
        Access::Execute,
        "fetching from kernel data",
    )
}

fn kernel_stack_guard_page_faults<A: Arch>() -> Outcome {
    // The first stack may allocate page tables that stay; measure around a
    // second one.
    let first = KernelStack::new().map_err(|e| fail_with(format_args!("first stack: {e}")))?;
    let (_, free_before) = frames::counts();
    let heap_before = heap::usage().0;
    let stack = KernelStack::new().map_err(|e| fail_with(format_args!("stack: {e}")))?;
    let top_word = stack.top() - 8;
    ensure!(
        A::translate(Space::Kernel, top_word).is_some(),
        "stack top not mapped"
    );
    ensure!(
        A::translate(Space::Kernel, stack.bottom()).is_some(),
        "stack bottom not mapped"
    );
    ensure_eq!(
        A::translate(Space::Kernel, stack.guard_page()),
        None,
        "guard page mapping"
    );
    // SAFETY: the stack's top word is mapped and owned by this test.
    unsafe { (top_word as *mut u64).write_volatile(1) };
    expect_fault::<A>(
        write_byte,
        stack.guard_page() + PAGE_SIZE - 1,
        FaultKind::NotMapped,
        Access::Write,
        "writing below the stack",
    )?;
    drop(stack);
    drop(first);
    let stack_frames = crate::mm::stack::STACK_SIZE / PAGE_SIZE;
    ensure_eq!(
        frames::counts().1 + heap_frames_since(heap_before),
        free_before + stack_frames,
        "frames after dropping the stacks"
    );
    Ok(())
}

fn user_space_round_trip_frees_everything<A: Arch>() -> Outcome {
    let frames = &KernelFrames;
    let (_, free_before) = frames::counts();
    let heap_before = heap::usage().0;
    let root = A::create_space(frames).map_err(|e| fail_with(format_args!("create: {e}")))?;
    let space = Space::User(root);
    let page = 0x40_0000;
    let frame =
        frames::allocate_zeroed(1, PAGE_SIZE).map_err(|e| fail_with(format_args!("frame: {e}")))?;
    if let Err(e) = A::map(space, page, frame, PAGE_SIZE, MapFlags::USER_RW, frames) {
        fail!("map user page: {e}");
    }
    ensure_eq!(
        A::translate(space, page).map(|t| (t.paddr, t.flags)),
        Some((frame, MapFlags::USER_RW)),
        "user translation"
    );
    ensure_eq!(
        A::translate(Space::Kernel, page),
        None,
        "user page seen from the kernel space"
    );
    ensure_eq!(
        A::map(
            space,
            page + PAGE_SIZE,
            frame,
            PAGE_SIZE,
            MapFlags::KERNEL_RW,
            frames
        ),
        Err(MapError::BadFlags),
        "kernel page in a user space"
    );
    let kernel_virt = frames::to_virt(frame);
    ensure_eq!(
        A::map(
            space,
            kernel_virt,
            frame,
            PAGE_SIZE,
            MapFlags::USER_RW,
            frames
        ),
        Err(MapError::OutsideSpace),
        "kernel address in a user space"
    );

    // The kernel never touches user addresses (SMAP would stop it on
    // x86_64); user programs prove the mapping, this the bookkeeping.
    A::activate(Some(root));
    A::activate(None);
    expect_fault::<A>(
        read_byte,
        page,
        FaultKind::NotMapped,
        Access::Read,
        "the user page with no user space active",
    )?;

    if let Err(e) = A::unmap(space, page) {
        fail!("unmap user page: {e}");
    }
    frames::free(frame, 1);
    A::destroy_space(root, frames);
    ensure_eq!(
        frames::counts().1 + heap_frames_since(heap_before),
        free_before,
        "free frames after destroying the space"
    );
    Ok(())
}

fn live_tables_match_layout_and_violations_are_caught<A: Arch>() -> Outcome {
    let mut first = None;
    match A::check_layout(&mut |v| {
        first.get_or_insert(v);
    }) {
        Ok(0) => {}
        Ok(n) => fail!(
            "{n} violations, the first: {}",
            first.map_or(String::new(), |v| alloc::format!("{v}"))
        ),
        Err(e) => fail!("{e}"),
    }
    // Device memory where only RAM mappings may be: the check must see it.
    let (virt, frame) = scratch_page()?;
    if let Err(e) = A::map(
        Space::Kernel,
        virt,
        frame,
        PAGE_SIZE,
        MapFlags::KERNEL_DEVICE,
        &KernelFrames,
    ) {
        fail!("map: {e}");
    }
    let mut seen = None;
    let count = A::check_layout(&mut |v| {
        seen.get_or_insert(v);
    });
    let _ = A::unmap(Space::Kernel, virt);
    frames::free(frame, 1);
    ensure_eq!(
        count,
        Ok(1),
        "violations with a device page in the dynamic window"
    );
    ensure!(
        matches!(seen, Some(Violation::WrongFlags(m, _)) if m.virt == virt as u64),
        "reported as {seen:?}"
    );
    ensure_eq!(
        A::check_layout(&mut |_| {}),
        Ok(0),
        "violations after unmapping it"
    );
    Ok(())
}

fn device_mappings_are_uncached<A: Arch>() -> Outcome {
    // Any physical page will do; a RAM frame keeps the test free of
    // machine specifics.
    let frame =
        frames::allocate(1, PAGE_SIZE).map_err(|e| fail_with(format_args!("frame: {e}")))?;
    let virt = match A::map_device(frame + 0x10, 8, &KernelFrames) {
        Ok(virt) => virt,
        Err(e) => fail!("map_device: {e}"),
    };
    ensure_eq!(virt % PAGE_SIZE, 0x10, "offset within the page kept");
    let translation = A::translate(Space::Kernel, virt).map(|t| (t.paddr, t.flags));
    ensure_eq!(
        translation,
        Some((frame + 0x10, MapFlags::KERNEL_DEVICE)),
        "device translation"
    );
    ensure_eq!(
        A::check_layout(&mut |_| {}),
        Ok(0),
        "layout violations with a device mapped"
    );
    let unmapped = A::unmap(Space::Kernel, virt - 0x10).map(|t| t.paddr);
    frames::free(frame, 1);
    ensure_eq!(unmapped, Ok(frame), "unmapping the device page");
    Ok(())
}
