//! Capabilities and the table of them each process keeps.
//!
//! The table is flat (seL4's CNodes nest, which a kernel of this size does
//! not need): a slot index and the slot's generation make a handle, and
//! the generation moves on whenever the slot is emptied, so a handle kept
//! after its capability was deleted is refused, never taken for the
//! capability that fills the slot next (Hubris numbers its task ids the
//! same way).

use super::Object;
use abi::{Error, HANDLE_INDEX_BITS, Handle, MAX_CAPABILITIES, ObjectKind, Rights};
use alloc::vec::Vec;

/// A capability: an object, what the holder may do with it, and for
/// endpoints the badge its messages carry.
pub struct Capability {
    object: Object,
    rights: Rights,
    badge: usize,
}

impl Capability {
    /// A capability to `object` with `rights` and `badge`.
    pub fn new(object: Object, rights: Rights, badge: usize) -> Capability {
        if let (Object::Endpoint(endpoint), true) = (&object, rights & abi::RIGHT_RECEIVE != 0) {
            endpoint.receiver_added();
        }
        Capability {
            object,
            rights,
            badge,
        }
    }

    pub fn object(&self) -> &Object {
        &self.object
    }

    pub fn rights(&self) -> Rights {
        self.rights
    }

    pub fn badge(&self) -> usize {
        self.badge
    }

    /// A copy with `rights` (a subset of this one's) and, for an
    /// unbadged endpoint capability, `badge` if not 0.
    pub fn derive(&self, rights: Rights, badge: usize) -> Result<Capability, Error> {
        if rights & !self.rights != 0 {
            return Err(Error::MissingRight);
        }
        let badge = match (badge, &self.object) {
            (0, _) => self.badge,
            (_, Object::Endpoint(_) | Object::IrqControl) if self.badge == 0 => badge,
            // Badges mark endpoint capabilities (for the receiver) and
            // interrupt control (bound to one line), once.
            _ => return Err(Error::InvalidArgument),
        };
        Ok(Capability::new(self.object.clone(), rights, badge))
    }

    /// This capability's object if it is of `kind` and has `right`.
    pub fn check(&self, kind: ObjectKind, right: Rights) -> Result<&Object, Error> {
        if self.object.kind() != kind {
            return Err(Error::WrongType);
        }
        if self.rights & right != right {
            return Err(Error::MissingRight);
        }
        Ok(&self.object)
    }
}

impl Drop for Capability {
    fn drop(&mut self) {
        if let (Object::Endpoint(endpoint), true) =
            (&self.object, self.rights & abi::RIGHT_RECEIVE != 0)
        {
            endpoint.receiver_removed();
        }
    }
}

struct Slot {
    /// Moves on each time the slot is emptied; never 0.
    generation: u32,
    capability: Option<Capability>,
}

/// Generations fit above the index bits of a handle.
const GENERATION_LIMIT: u32 = 1 << (32 - HANDLE_INDEX_BITS);

/// One process's capabilities.
#[derive(Default)]
pub struct CapTable {
    slots: Vec<Slot>,
}

/// The tag that marks a process's resources as a [`CapTable`].
static CAP_TABLE: u8 = 0;

// SAFETY: `CAP_TABLE` is this type's alone.
unsafe impl crate::task::ipc::ResourcesType for CapTable {
    const TAG: &'static u8 = &CAP_TABLE;
}

fn handle(index: usize, generation: u32) -> Handle {
    (generation << HANDLE_INDEX_BITS) | index as Handle
}

impl CapTable {
    pub const fn new() -> CapTable {
        CapTable { slots: Vec::new() }
    }

    /// What the kernel gives init: the machine's controls at
    /// [`abi::INIT_CONTROL`], the interrupt control at
    /// [`abi::INIT_IRQ_CONTROL`], its `quota` of memory at
    /// [`abi::INIT_QUOTA`], and a capability to each of `devices` at
    /// [`abi::init_device_handle`] of its index.
    pub fn for_init(
        devices: &[hal::UserDevice],
        quota: alloc::sync::Arc<crate::mm::quota::Quota>,
    ) -> CapTable {
        let mut table = CapTable::new();
        let control = Capability::new(Object::Control, abi::CONTROL_RIGHTS, 0);
        let handle = table.insert(control).ok();
        debug_assert_eq!(handle, Some(abi::INIT_CONTROL));
        let irq_control = Capability::new(Object::IrqControl, abi::IRQ_CONTROL_RIGHTS, 0);
        let handle = table.insert(irq_control).ok();
        debug_assert_eq!(handle, Some(abi::INIT_IRQ_CONTROL));
        let quota = Capability::new(Object::Quota(quota), abi::QUOTA_RIGHTS, 0);
        let handle = table.insert(quota).ok();
        debug_assert_eq!(handle, Some(abi::INIT_QUOTA));
        for (n, device) in devices.iter().enumerate() {
            let capability = match device.registers {
                hal::DeviceRegisters::Memory { base, size } => Capability::new(
                    Object::DeviceMemory { base, size },
                    abi::DEVICE_MEMORY_RIGHTS,
                    0,
                ),
                hal::DeviceRegisters::Ports { base, count } => {
                    Capability::new(Object::IoPorts { base, count }, abi::IO_PORT_RIGHTS, 0)
                }
            };
            let handle = table.insert(capability).ok();
            debug_assert_eq!(handle, Some(abi::init_device_handle(n)));
        }
        table
    }

    /// Puts `capability` in the first free slot and returns its handle;
    /// gives it back if the table is full or no memory is left.
    pub fn insert(&mut self, capability: Capability) -> Result<Handle, (Error, Capability)> {
        if let Some(index) = self.slots.iter().position(|s| s.capability.is_none()) {
            let slot = &mut self.slots[index];
            slot.capability = Some(capability);
            return Ok(handle(index, slot.generation));
        }
        if self.slots.len() >= MAX_CAPABILITIES {
            return Err((Error::TableFull, capability));
        }
        if self.slots.try_reserve(1).is_err() {
            return Err((Error::OutOfMemory, capability));
        }
        self.slots.push(Slot {
            generation: 1,
            capability: Some(capability),
        });
        Ok(handle(self.slots.len() - 1, 1))
    }

    fn slot(&self, handle: Handle) -> Result<usize, Error> {
        let index = (handle & ((1 << HANDLE_INDEX_BITS) - 1)) as usize;
        let generation = handle >> HANDLE_INDEX_BITS;
        match self.slots.get(index) {
            Some(slot) if slot.generation == generation && slot.capability.is_some() => Ok(index),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// The capability `handle` names.
    pub fn get(&self, handle: Handle) -> Result<&Capability, Error> {
        let index = self.slot(handle)?;
        Ok(self.slots[index].capability.as_ref().expect("checked"))
    }

    /// The endpoint `handle` names if its capability has `right`, and the
    /// capability's badge: the IPC fast path's lookup, which needs no
    /// error (the general path finds it again).
    #[inline(always)]
    pub fn endpoint(
        &self,
        handle: usize,
        right: Rights,
    ) -> Option<(&super::endpoint::Endpoint, usize)> {
        let slot = self.slots.get(handle & ((1 << HANDLE_INDEX_BITS) - 1))?;
        // A handle wider than 32 bits matches no generation.
        if slot.generation as usize != handle >> HANDLE_INDEX_BITS {
            return None;
        }
        match slot.capability.as_ref()? {
            Capability {
                object: Object::Endpoint(endpoint),
                rights,
                badge,
            } if rights & right == right => Some((endpoint, *badge)),
            _ => None,
        }
    }

    /// Takes the capability `handle` names out of the table; the slot's
    /// generation moves on.
    pub fn remove(&mut self, handle: Handle) -> Result<Capability, Error> {
        let index = self.slot(handle)?;
        let slot = &mut self.slots[index];
        slot.generation = match slot.generation + 1 {
            GENERATION_LIMIT => 1,
            next => next,
        };
        Ok(slot.capability.take().expect("checked"))
    }

    /// Whether one more capability fits.
    pub fn has_room(&self) -> bool {
        self.slots.len() < MAX_CAPABILITIES || self.slots.iter().any(|s| s.capability.is_none())
    }

    /// Capabilities held.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.capability.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::notification::Notification;
    use super::*;
    use alloc::sync::Arc;

    fn notification() -> Capability {
        Capability::new(
            Object::Notification(Arc::new(Notification::new())),
            abi::NOTIFICATION_RIGHTS,
            0,
        )
    }

    #[test]
    fn init_finds_the_machine_controls_where_the_abi_says() {
        let devices = [
            hal::UserDevice {
                name: "rtc",
                registers: hal::DeviceRegisters::Ports {
                    base: 0x70,
                    count: 2,
                },
                irq: Some(24),
                pci: None,
            },
            hal::UserDevice {
                name: "timer",
                registers: hal::DeviceRegisters::Memory {
                    base: 0x1c12_0000,
                    size: 0x1000,
                },
                irq: Some(35),
                pci: None,
            },
        ];
        let quota = crate::mm::quota::Quota::root(100).unwrap();
        let table = CapTable::for_init(&devices, alloc::sync::Arc::clone(&quota));
        let init_quota = table.get(abi::INIT_QUOTA).ok().unwrap();
        assert!(
            matches!(init_quota.object(), Object::Quota(q) if alloc::sync::Arc::ptr_eq(q, &quota))
        );
        assert_eq!(init_quota.rights(), abi::QUOTA_RIGHTS);
        let control = table.get(abi::INIT_CONTROL).ok().unwrap();
        assert_eq!(control.object().kind(), ObjectKind::Control);
        assert_eq!(control.rights(), abi::CONTROL_RIGHTS);
        let irq_control = table.get(abi::INIT_IRQ_CONTROL).ok().unwrap();
        assert_eq!(irq_control.object().kind(), ObjectKind::IrqControl);
        assert_eq!(irq_control.rights(), abi::IRQ_CONTROL_RIGHTS);
        let ports = table.get(abi::init_device_handle(0)).ok().unwrap();
        assert!(matches!(
            ports.object(),
            Object::IoPorts {
                base: 0x70,
                count: 2
            }
        ));
        let registers = table.get(abi::init_device_handle(1)).ok().unwrap();
        assert!(matches!(
            registers.object(),
            Object::DeviceMemory {
                base: 0x1c12_0000,
                size: 0x1000
            }
        ));
        assert_eq!(registers.rights(), abi::DEVICE_MEMORY_RIGHTS);
        assert_eq!(table.len(), 5);
    }

    #[test]
    fn handles_name_their_capability_until_it_is_deleted() {
        let mut table = CapTable::new();
        let a = table.insert(notification()).ok().unwrap();
        let b = table.insert(notification()).ok().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, 0, "0 is never a handle");
        assert!(table.get(a).is_ok());
        drop(table.remove(a).ok().unwrap());
        assert_eq!(table.get(a).err(), Some(Error::InvalidHandle), "deleted");
        assert_eq!(table.remove(a).err(), Some(Error::InvalidHandle));
        // The slot is reused with a new generation: the old handle stays dead.
        let c = table.insert(notification()).ok().unwrap();
        assert_eq!(c & 0xff, a & 0xff, "same slot");
        assert_ne!(c, a);
        assert_eq!(table.get(a).err(), Some(Error::InvalidHandle), "stale");
        assert!(table.get(c).is_ok());
        // Forged: a slot never used, a generation never given.
        assert_eq!(table.get(0x1_77).err(), Some(Error::InvalidHandle));
        assert_eq!(table.get(b + (5 << 8)).err(), Some(Error::InvalidHandle));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn the_table_fills_and_generations_wrap_without_reaching_zero() {
        let mut table = CapTable::new();
        for _ in 0..MAX_CAPABILITIES {
            assert!(table.insert(notification()).is_ok());
        }
        let (error, _) = table.insert(notification()).err().unwrap();
        assert_eq!(error, Error::TableFull);
        let first = handle(0, 1);
        table.slots[0].generation = GENERATION_LIMIT - 1;
        let last = handle(0, GENERATION_LIMIT - 1);
        drop(table.remove(last).ok().unwrap());
        assert_eq!(table.slots[0].generation, 1);
        let again = table.insert(notification()).ok().unwrap();
        assert_eq!(again, first);
    }

    #[test]
    fn derived_capabilities_never_gain_rights_and_badge_once() {
        let endpoint = Capability::new(
            Object::Endpoint(Arc::new(super::super::endpoint::Endpoint::new())),
            abi::ENDPOINT_RIGHTS,
            0,
        );
        let send = endpoint.derive(abi::RIGHT_SEND, 7).ok().unwrap();
        assert_eq!((send.rights(), send.badge()), (abi::RIGHT_SEND, 7));
        assert_eq!(
            send.derive(abi::RIGHT_SEND | abi::RIGHT_RECEIVE, 0).err(),
            Some(Error::MissingRight)
        );
        assert_eq!(
            send.derive(abi::RIGHT_SEND, 8).err(),
            Some(Error::InvalidArgument)
        );
        assert_eq!(send.derive(0, 0).ok().map(|c| c.badge()), Some(7));
        assert_eq!(
            send.check(ObjectKind::Endpoint, abi::RIGHT_RECEIVE).err(),
            Some(Error::MissingRight)
        );
        assert_eq!(
            send.check(ObjectKind::Notification, 0).err(),
            Some(Error::WrongType)
        );
        assert_eq!(
            notification().derive(abi::RIGHT_SIGNAL, 3).err(),
            Some(Error::InvalidArgument)
        );
    }
}
