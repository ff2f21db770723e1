//! How init starts a driver: the capabilities it passes, in order, and the
//! argument string that says what they are.
//!
//! A driver's initial handles are its quota ([`QUOTA`]), a registrar's
//! capability to the name service ([`NAMES`]), an interrupt control bound
//! to its device's line if it has one ([`IRQ_CONTROL`]; the driver claims
//! the line itself, so the line is listed as its and freed when it
//! dies), then one capability per device resource (registers or ports).
//! The arguments name the service to register, whether a control was
//! passed, and the resources' indices in the kernel's device list, so the
//! driver reads their addresses, sizes and line from the same list init
//! did: `blk irq 3 4 5` or `rng - 7`. The line is the first resource's.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The driver's quota (`initial_handle(0)`; spawned with `SPAWN_QUOTA`).
pub const QUOTA: usize = 0;
/// A capability to the name service that may register.
pub const NAMES: usize = 1;
/// The interrupt control bound to the line, if [`DriverArgs::irq`].
pub const IRQ_CONTROL: usize = 2;
/// The most resources a driver gets (with the three handles before them,
/// what `spawn` passes).
pub const MAX_RESOURCES: usize = abi::MAX_SPAWN_HANDLES - 3;

/// What a driver's arguments say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverArgs {
    /// The name to register the service under.
    pub service: String,
    /// Whether an interrupt control was passed (at [`IRQ_CONTROL`]).
    pub irq: bool,
    /// The device-list index of each resource passed.
    pub resources: Vec<usize>,
}

impl DriverArgs {
    /// The initial-handle index of resource `n`.
    pub fn resource_handle(&self, n: usize) -> usize {
        IRQ_CONTROL + usize::from(self.irq) + n
    }

    /// Reads the arguments; `None` if malformed.
    pub fn parse(text: &str) -> Option<DriverArgs> {
        let mut words = text.split_ascii_whitespace();
        let service = words.next()?;
        if service.len() > abi::MAX_NAME_LENGTH {
            return None;
        }
        let irq = match words.next()? {
            "irq" => true,
            "-" => false,
            _ => return None,
        };
        let resources: Vec<usize> = words.map(|w| w.parse().ok()).collect::<Option<_>>()?;
        if resources.is_empty() || resources.len() > MAX_RESOURCES {
            return None;
        }
        Some(DriverArgs {
            service: service.into(),
            irq,
            resources,
        })
    }
}

impl fmt::Display for DriverArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service, if self.irq { "irq" } else { "-" })?;
        for index in &self.resources {
            write!(f, " {index}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let args = DriverArgs {
            service: "blk".into(),
            irq: true,
            resources: alloc::vec![3, 4, 5],
        };
        assert_eq!(args.to_string(), "blk irq 3 4 5");
        assert_eq!(DriverArgs::parse(&args.to_string()), Some(args.clone()));
        assert_eq!(args.resource_handle(0), 3);
        let polled = DriverArgs::parse("rng - 7").unwrap();
        assert!(!polled.irq);
        assert_eq!(polled.resource_handle(0), 2);
    }

    #[test]
    fn malformed_arguments_are_refused() {
        for text in [
            "",
            "blk",
            "blk irq",
            "blk maybe 1",
            "blk irq x",
            "blk - 1 2 3 4 5 6",
            "a-service-name-longer-than-any-name-may-be - 1",
        ] {
            assert_eq!(DriverArgs::parse(text), None, "{text:?}");
        }
    }
}
