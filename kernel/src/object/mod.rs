//! Kernel objects, reached only through capabilities: one module per
//! kind, and the capability table each process keeps.
//!
//! - `endpoint`: synchronous rendezvous; the kernel queues blocked
//!   threads, never message data.
//! - `notification`: a word of signal bits.
//! - `memory`: frames that can be mapped into any address space holding a
//!   capability, and so shared; or a device's registers.
//! - `interrupt`: a device's interrupt line bound to a notification.
//! - `device`: the device resources (register ranges, I/O ports) that
//!   capabilities to them name, and the check that none is RAM.
//! - quotas, budgets of memory (kept in `mm::quota`), which capabilities
//!   hand out and split;
//! - the machine's controls, which hold nothing: a capability to them
//!   allows powering off and raising priorities;
//! - `cap`: capabilities (an object, rights, a badge) and the per-process
//!   table of them, whose handles carry a generation.
//!
//! Objects are reference-counted: each capability and each thread blocked
//! on an object holds a reference, and the object goes with the last.

pub mod cap;
pub mod device;
pub mod endpoint;
pub mod interrupt;
pub mod memory;
pub mod notification;

use abi::ObjectKind;
use alloc::sync::Arc;
use endpoint::Endpoint;
use interrupt::IrqHandler;
use memory::MemoryObject;
use notification::Notification;

/// A reference to a kernel object.
#[derive(Clone)]
pub enum Object {
    Endpoint(Arc<Endpoint>),
    Notification(Arc<Notification>),
    Memory(Arc<MemoryObject>),
    /// The machine's controls (powering off, raising priorities): one
    /// object, with nothing in it, that only capabilities name.
    Control,
    /// A process, by its pid (never reused, so a capability to a process
    /// that has gone names nothing).
    Process(crate::task::Pid),
    /// The right to claim the device interrupt lines: one object, like the
    /// controls.
    IrqControl,
    Irq(Arc<IrqHandler>),
    /// Device registers at physical `base`, `size` bytes.
    DeviceMemory {
        base: u64,
        size: u64,
    },
    /// I/O ports `base` to `base + count - 1`.
    IoPorts {
        base: u16,
        count: u16,
    },
    /// A thread (its id is never reused, so a capability to a thread that
    /// has ended names nothing).
    Thread(crate::task::ThreadRef),
    /// A budget of memory (see `mm::quota`).
    Quota(Arc<crate::mm::quota::Quota>),
}

impl Object {
    /// Its kind, as the ABI numbers it.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Endpoint(_) => ObjectKind::Endpoint,
            Object::Notification(_) => ObjectKind::Notification,
            Object::Memory(_) => ObjectKind::Memory,
            Object::Control => ObjectKind::Control,
            Object::Process(_) => ObjectKind::Process,
            Object::IrqControl => ObjectKind::IrqControl,
            Object::Irq(_) => ObjectKind::Irq,
            Object::DeviceMemory { .. } => ObjectKind::DeviceMemory,
            Object::IoPorts { .. } => ObjectKind::IoPorts,
            Object::Thread(_) => ObjectKind::Thread,
            Object::Quota(_) => ObjectKind::Quota,
        }
    }
}
