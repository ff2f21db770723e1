//! Device system calls: claiming and acknowledging interrupt lines, device
//! memory objects, and I/O ports.

use super::cap::{insert, object, with_table};
use super::{Outcome, one};
use crate::object::Object;
use crate::object::cap::Capability;
use crate::object::{device, interrupt, memory::MemoryObject};
use abi::{Error, Handle, ObjectKind};
use alloc::sync::Arc;
use hal::Arch;

pub(super) fn claim<A: Arch>(
    control: Handle,
    irq: usize,
    notification: Handle,
    bits: usize,
) -> Outcome {
    let notification = with_table(|table| {
        let control = table.get(control)?;
        control.check(ObjectKind::IrqControl, abi::RIGHT_CLAIM)?;
        // A badged control claims only the line its badge names.
        if control.badge() != 0 && control.badge() != abi::irq_control_badge(irq) {
            return Err(Error::PermissionDenied);
        }
        match table
            .get(notification)?
            .check(ObjectKind::Notification, abi::RIGHT_SIGNAL)?
        {
            Object::Notification(notification) => Ok(notification.clone()),
            _ => Err(Error::WrongType),
        }
    })?;
    let handler = interrupt::claim::<A>(irq, notification, bits, crate::task::current_pid())?;
    let capability = Capability::new(Object::Irq(handler), abi::IRQ_RIGHTS, 0);
    one(insert(capability)? as usize)
}

pub(super) fn acknowledge(handle: Handle) -> Outcome {
    let Object::Irq(handler) = object(handle, ObjectKind::Irq, abi::RIGHT_ACKNOWLEDGE)? else {
        return Err(Error::WrongType);
    };
    // Outside the table's lock: unmasking takes the controller's, which
    // the interrupt path takes before it signals.
    handler.acknowledge();
    // The capability still holds the handler: this is never the last
    // reference.
    drop(handler);
    one(0)
}

pub(super) fn memory(handle: Handle, offset: usize, size: usize) -> Outcome {
    let Object::DeviceMemory { base, size: range } =
        object(handle, ObjectKind::DeviceMemory, abi::RIGHT_CLAIM)?
    else {
        return Err(Error::WrongType);
    };
    let (start, pages) = device::window(base, range, offset, size)?;
    let object = MemoryObject::device(start, pages)?;
    let object = crate::mm::heap::try_box(object).map_err(|_| Error::OutOfMemory)?;
    let rights = abi::RIGHT_MAP_READ | abi::RIGHT_MAP_WRITE | abi::RIGHT_GRANT;
    let capability = Capability::new(Object::Memory(Arc::from(object)), rights, 0);
    one(insert(capability)? as usize)
}

/// The port `width` bytes at `port` are, if the capability covers them.
fn port(handle: Handle, port: usize, width: usize) -> Result<u16, Error> {
    let Object::IoPorts { base, count } = object(handle, ObjectKind::IoPorts, abi::RIGHT_PORT_IO)?
    else {
        return Err(Error::WrongType);
    };
    device::check_port(base, count, port, width)
}

pub(super) fn port_in<A: Arch>(handle: Handle, at: usize, width: usize) -> Outcome {
    let port = port(handle, at, width)?;
    one(A::port_read(port, width as u8).ok_or(Error::InvalidArgument)? as usize)
}

pub(super) fn port_out<A: Arch>(handle: Handle, at: usize, width: usize, value: u32) -> Outcome {
    let port = port(handle, at, width)?;
    A::port_write(port, width as u8, value).ok_or(Error::InvalidArgument)?;
    one(0)
}
