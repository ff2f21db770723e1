//! The x86_64 architecture type: what the portable core is generic over.
//! Each HAL trait is implemented in the module that owns its concern
//! (`console`, `cpu`, `interrupts`, `memory`, `platform`, `threads`,
//! `timer`).

/// The x86_64 architecture, as the portable core sees it.
pub struct X86_64;
