//! The ARMv7 architecture type: what the portable core is generic over.
//! Each HAL trait is implemented in the module that owns its concern
//! (`console`, `cpu`, `interrupts`, `memory`, `platform`, `threads`,
//! `timer`).

/// The ARMv7 architecture, as the portable core sees it.
pub struct Armv7;
