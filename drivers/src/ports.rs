//! Devices reached through x86 I/O ports, behind a trait so the drivers are
//! plain logic (and testable with a model).

/// 8-bit I/O port access.
pub trait Ports {
    /// Reads port `port`.
    fn read8(&self, port: u16) -> u8;
    /// Writes `value` to port `port`.
    fn write8(&self, port: u16, value: u8);
}
