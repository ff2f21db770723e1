//! A pretend machine for host unit tests: every HAL trait implemented on
//! plain memory, so the portable core's logic (the scheduler and its
//! switches, wait queues, exit accounting, system-call decoding) runs and
//! is checked under `cargo test`. It records what the core asked of it:
//! the switches, the address spaces made current and the kernel stacks.
//!
//! Page tables are a map from (space, page) to translation, checked the
//! way the real ones are (alignment, W^X, the user/kernel split), so the
//! tests see the same errors the architectures give.

extern crate std;

use hal::boot::{MemoryMap, MemoryMapRepairs, ReservedList};
use hal::mm::{MapError, MapFlags, PAGE_SIZE, RootTable, Space, Translation};
use hal::{BootInfo, Capabilities, FirmwareTables, FrameSource, IrqError, PhysRange, TimerError};
use hal::{UserEntry, layout};
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::vec::Vec;

/// The pretend machine.
pub struct FakeArch;

/// Kernel stacks and dynamic mappings live here (values as on a 64-bit
/// machine; nothing is behind them).
const STACKS: (usize, usize) = (0xffff_a000_0000_0000, 0xffff_a000_4000_0000);
const DYNAMIC: (usize, usize) = (0xffff_b000_0000_0000, 0xffff_b000_4000_0000);
const USER_END: usize = 0x0000_8000_0000_0000;

/// What the core did to the machine, for tests to read.
#[derive(Debug, Default)]
pub struct Record {
    /// `(save, load)` of every switch, in order.
    pub switches: Vec<(usize, usize)>,
    /// Every address space made current.
    pub activated: Vec<Option<RootTable>>,
    /// The kernel stack traps would use now.
    pub kernel_stack: usize,
    /// Results written into blocked threads' frames: (stack top, results,
    /// words).
    pub frame_results: Vec<(usize, [usize; 2], [usize; 4])>,
    /// Whether interrupts are enabled.
    pub interrupts_enabled: bool,
    /// The monotonic clock, which tests move.
    pub now_ns: u64,
    /// Page tables: (root, page) to translation; root 0 is the kernel's.
    pub pages: BTreeMap<(u64, usize), Translation>,
    /// Roots handed out, and the next one.
    pub spaces: Vec<u64>,
    /// Masked interrupt lines.
    pub masked: Vec<usize>,
    /// Bytes written to the console.
    pub console: Vec<u8>,
}

static RECORD: LazyLock<Mutex<Record>> = LazyLock::new(Mutex::default);

/// The record of what the core asked of the machine. Tests that read it
/// also serialise on it.
pub fn record() -> MutexGuard<'static, Record> {
    RECORD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

static BOOT_INFO: LazyLock<BootInfo> = LazyLock::new(|| BootInfo {
    machine: "fake",
    cmdline: "",
    cmdline_error: None,
    memory: MemoryMap::empty(),
    memory_repairs: MemoryMapRepairs::default(),
    firmware: FirmwareTables::None,
    kernel_image: PhysRange::default(),
    reserved: ReservedList::new(),
});

fn root_of(space: Space) -> u64 {
    match space {
        Space::Kernel => 0,
        Space::User(RootTable(root)) => root,
    }
}

fn check_place(space: Space, virt: usize) -> Result<(), MapError> {
    if !virt.is_multiple_of(PAGE_SIZE) {
        return Err(MapError::Misaligned);
    }
    let user = virt < USER_END;
    match space {
        Space::User(_) if !user => Err(MapError::OutsideSpace),
        Space::Kernel if user => Err(MapError::OutsideSpace),
        _ => Ok(()),
    }
}

impl hal::Console for FakeArch {
    fn write_bytes(bytes: &[u8]) {
        record().console.extend_from_slice(bytes);
    }

    fn read_byte() -> Option<u8> {
        None
    }

    fn enable_receive_interrupt() -> Result<usize, IrqError> {
        Err(IrqError::NoDevice)
    }

    fn user_device() -> Option<hal::UserDevice> {
        None
    }
}

impl hal::Memory for FakeArch {
    const PAGE_SIZES: &'static [usize] = &[PAGE_SIZE];
    const KERNEL_STACKS: (usize, usize) = STACKS;
    const KERNEL_DYNAMIC: (usize, usize) = DYNAMIC;
    const USER_END: usize = USER_END;

    fn phys_to_virt(_: u64) -> Option<usize> {
        None // no RAM behind the pretend machine
    }

    fn virt_to_phys(_: usize) -> Option<u64> {
        None
    }

    fn map_raw(
        space: Space,
        virt: usize,
        phys: u64,
        page_size: usize,
        flags: MapFlags,
        _: &dyn FrameSource,
    ) -> Result<(), MapError> {
        if page_size != PAGE_SIZE {
            return Err(MapError::UnsupportedPageSize(page_size));
        }
        check_place(space, virt)?;
        flags.check_encodable()?;
        let mut record = record();
        let key = (root_of(space), virt);
        if record.pages.contains_key(&key) {
            return Err(MapError::AlreadyMapped);
        }
        record.pages.insert(
            key,
            Translation {
                paddr: phys,
                flags,
                page_size,
            },
        );
        Ok(())
    }

    fn unmap(space: Space, virt: usize) -> Result<Translation, MapError> {
        check_place(space, virt)?;
        record()
            .pages
            .remove(&(root_of(space), virt))
            .ok_or(MapError::NotMapped)
    }

    fn translate(space: Space, virt: usize) -> Option<Translation> {
        let page = virt & !(PAGE_SIZE - 1);
        let found = *record().pages.get(&(root_of(space), page))?;
        Some(Translation {
            paddr: found.paddr + (virt - page) as u64,
            ..found
        })
    }

    fn protect_raw(space: Space, virt: usize, flags: MapFlags) -> Result<(), MapError> {
        check_place(space, virt)?;
        flags.check_encodable()?;
        let mut record = record();
        let page = record
            .pages
            .get_mut(&(root_of(space), virt))
            .ok_or(MapError::NotMapped)?;
        page.flags = flags;
        Ok(())
    }

    fn create_space(_: &dyn FrameSource) -> Result<RootTable, MapError> {
        let mut record = record();
        let root = (record.spaces.len() as u64 + 1) * PAGE_SIZE as u64;
        record.spaces.push(root);
        Ok(RootTable(root))
    }

    fn destroy_space(root: RootTable, _: &dyn FrameSource) {
        record().pages.retain(|&(r, _), _| r != root.0);
    }

    fn activate(space: Option<RootTable>) {
        record().activated.push(space);
    }

    fn kernel_root() -> u64 {
        0
    }

    fn map_device(_: u64, _: usize, _: &dyn FrameSource) -> Result<usize, MapError> {
        Err(MapError::OutsideSpace) // the pretend machine has no devices
    }

    fn check_layout(_: &mut dyn FnMut(layout::Violation)) -> Result<usize, &'static str> {
        Ok(0)
    }
}

impl hal::Interrupts for FakeArch {
    const IRQ_COUNT: usize = 64;
    const SOFTWARE_IRQ: usize = 63;

    fn raise(irq: usize) -> Result<(), IrqError> {
        Err(IrqError::NotRaisable(irq))
    }

    fn set_masked(irq: usize, masked: bool) -> Result<(), IrqError> {
        if irq >= Self::IRQ_COUNT {
            return Err(IrqError::NoSuchIrq(irq));
        }
        let mut record = record();
        record.masked.retain(|&m| m != irq);
        if masked {
            record.masked.push(irq);
        }
        Ok(())
    }

    fn enable() {
        record().interrupts_enabled = true;
    }

    fn disable() {
        record().interrupts_enabled = false;
    }

    fn enabled() -> bool {
        record().interrupts_enabled
    }
}

impl hal::Time for FakeArch {
    fn monotonic_ns() -> u64 {
        record().now_ns
    }

    fn since_reset_ns() -> u64 {
        record().now_ns
    }

    fn wall_clock_seconds() -> Option<u64> {
        None
    }

    fn start_ticks(_: u32) -> Result<usize, TimerError> {
        Err(TimerError::NoDevice)
    }

    fn stop_ticks() {}

    fn acknowledge_tick() {}
}

impl hal::Cpu for FakeArch {
    const CYCLE_COUNTER_BITS: u32 = 64;
    const RETURN_INSTRUCTION: &'static [u8] = &[];

    fn idle() {}

    fn sync_instructions(_: usize, _: usize) {}

    fn cycle_counter() -> u64 {
        record().now_ns
    }

    fn breakpoint() {}

    unsafe fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Result<(), hal::Fault> {
        f(arg);
        Ok(())
    }
}

impl hal::Threads for FakeArch {
    unsafe fn prepare_user_thread(kernel_stack_top: usize, _: UserEntry) -> usize {
        kernel_stack_top
    }

    unsafe fn prepare_kernel_thread(
        kernel_stack_top: usize,
        _: extern "C" fn(usize) -> !,
        _: usize,
    ) -> usize {
        kernel_stack_top
    }

    /// Records the switch and returns at once, as if the thread switched
    /// to had switched straight back.
    unsafe fn switch(save: *mut usize, load: usize) {
        record().switches.push((save as usize, load));
    }

    fn set_kernel_stack(top: usize) {
        record().kernel_stack = top;
    }

    unsafe fn write_frame_results(kernel_stack_top: usize, results: [usize; 2], words: [usize; 4]) {
        record()
            .frame_results
            .push((kernel_stack_top, results, words));
    }
}

impl hal::Platform for FakeArch {
    const ARCH: &'static str = "fake";
    const ELF_MACHINE: u16 = 0;

    fn boot_info() -> &'static BootInfo {
        &BOOT_INFO
    }

    fn init_devices() -> Result<(), &'static str> {
        Ok(())
    }

    fn capabilities() -> Capabilities {
        Capabilities {
            cpus_found: 1,
            cpus_used: 1,
            ..Capabilities::default()
        }
    }

    fn user_devices() -> &'static [hal::UserDevice] {
        &[]
    }

    fn port_read(_port: u16, _width: u8) -> Option<u32> {
        None
    }

    fn port_write(_port: u16, _width: u8, _value: u32) -> Option<()> {
        None
    }

    fn exit(code: u8) -> ! {
        panic!("the pretend machine was ended with status {code}")
    }
}
