//! The `info` system call: records about the system, memory, processes,
//! interrupts and programs.

use super::{Outcome, UserBuffer, in_space, one};
use crate::{irq, mm, task, timer};
use abi::{Error, InfoKind};
use alloc::vec::Vec;
use hal::Arch;
use hal::mm::PAGE_SIZE;
use hal::trap::Access;

/// Writes as many whole records as fit in `buffer`;
/// returns the bytes all of them take, so the caller can retry with room.
fn put_records<A: Arch, T: abi::Record>(buffer: UserBuffer, records: &[T]) -> Outcome {
    let capacity = buffer.len;
    let size = size_of::<T>();
    let fit = (capacity / size).min(records.len());
    in_space(|space| {
        // The whole buffer must be writable user memory, even where
        // nothing is written; pages come in only where records go.
        buffer.covers::<A>(space, Access::Write)?;
        UserBuffer::new(buffer.address, fit * size).check::<A>(space, Access::Write)?;
        for (n, record) in records[..fit].iter().enumerate() {
            buffer.write::<A>(space, n * size, abi::record_bytes(record))?;
        }
        Ok(())
    })?;
    one(size_of_val(records))
}

pub(super) fn info<A: Arch>(kind: InfoKind, buffer: UserBuffer) -> Outcome {
    match kind {
        InfoKind::System => {
            let (processes, threads) = task::counts();
            let record = abi::SystemInfo {
                version: abi::name_from(crate::VERSION),
                arch: abi::name_from(A::ARCH),
                machine: abi::name_from(A::boot_info().machine),
                uptime_ns: A::monotonic_ns(),
                tick_hz: timer::rate_hz(),
                processes: processes as u32,
                threads: threads as u32,
                reserved: 0,
                first_user_ns: task::first_user_ns(),
                // The kernel's own read-only data: certainly mapped.
                kernel_address: crate::VERSION.as_ptr() as u64,
                idle_cycles: task::idle_cycles(),
            };
            put_records::<A, _>(buffer, &[record])
        }
        InfoKind::Memory => {
            let stats = mm::stats();
            let record = abi::MemoryInfo {
                page_size: PAGE_SIZE as u64,
                total_frames: stats.total_frames as u64,
                free_frames: stats.free_frames as u64,
                heap_total: stats.heap_total as u64,
                heap_used: stats.heap_used as u64,
                table_frames: stats.table_frames as u64,
            };
            put_records::<A, _>(buffer, &[record])
        }
        InfoKind::Processes => put_records::<A, _>(buffer, &task::process_info()?),
        InfoKind::Interrupts => {
            let mut records = Vec::new();
            let mut failed = false;
            irq::for_each_count(|irq, count| {
                if records.try_reserve(1).is_err() {
                    failed = true;
                    return;
                }
                records.push(abi::IrqInfo {
                    irq: irq as u32,
                    reserved: 0,
                    count,
                    name: abi::name_from(irq::name(irq)),
                });
            });
            if failed {
                return Err(Error::OutOfMemory);
            }
            put_records::<A, _>(buffer, &records)
        }
        InfoKind::Programs => {
            let names = task::program_names()?;
            put_records::<A, _>(buffer, &names)
        }
        InfoKind::Devices => {
            let devices = crate::object::device::user_devices::<A>();
            let mut records = Vec::new();
            records
                .try_reserve_exact(devices.len())
                .map_err(|_| Error::OutOfMemory)?;
            records.extend(devices.iter().map(device_record));
            put_records::<A, _>(buffer, &records)
        }
    }
}

fn device_record(device: &hal::UserDevice) -> abi::DeviceInfo {
    let (kind, base, size) = match device.registers {
        hal::DeviceRegisters::Memory { base, size } => (abi::DeviceKind::Memory, base, size),
        hal::DeviceRegisters::Ports { base, count } => {
            (abi::DeviceKind::Ports, base as u64, count as u64)
        }
    };
    let claimed = device.irq.and_then(crate::object::interrupt::state);
    abi::DeviceInfo {
        name: abi::name_from(device.name),
        kind: kind as u32,
        irq: device.irq.map_or(abi::NO_IRQ, |irq| irq as u32),
        irq_owner: claimed.map_or(0, |(owner, _)| owner),
        flags: match claimed {
            Some((_, false)) => 0,
            // An unclaimed line is masked too.
            _ => abi::DEVICE_IRQ_MASKED,
        },
        base,
        size,
        pci_function: device
            .pci
            .map_or(abi::NOT_PCI, |pci| u32::from(pci.function)),
        pci_ids: device
            .pci
            .map_or(0, |pci| u32::from(pci.vendor) | u32::from(pci.device) << 16),
        pci_class: device.pci.map_or(0, |pci| pci.class),
        pci_bar: device.pci.map_or(0, |pci| u32::from(pci.bar)),
    }
}
