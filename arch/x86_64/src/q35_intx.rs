//! Which global interrupt a q35 PCI function's INTx pin drives.
//!
//! The ACPI way is the `_PRT` method in the DSDT, which is AML; the kernel
//! has no AML interpreter (the `acpi` crate's is a large dependency for
//! one table). QEMU's q35 builds `_PRT` from a fixed rule, the ICH9's
//! default `D<N>IR` routing, and routes PIRQ A-H to global interrupts 16
//! to 23 in I/O APIC mode, level-triggered and active high. This is that
//! rule, for functions on bus 0 (the kernel's scan puts every q35 device
//! there; behind a bridge the pins are swizzled, which is not done here).

/// The first global interrupt of PIRQ A.
const PIRQ_A_GSI: u32 = 16;

/// The global interrupt `pin` (INTA# to INTD# as 1 to 4) of a function in
/// `slot` on bus 0 drives, or `None` for no pin or a slot that does not
/// exist.
pub fn gsi(slot: u8, pin: u8) -> Option<u32> {
    if !(1..=4).contains(&pin) || slot >= 32 {
        return None;
    }
    let pin_index = pin - 1;
    // The PIRQ group (A-D or E-H) and the first PIRQ of INTA in it.
    let (group, first) = match slot {
        0x00..=0x17 => (4, slot & 3),
        0x18 | 0x1e => (4, 0),
        _ => (0, 0),
    };
    let pirq = group + (first + pin_index) % 4;
    Some(PIRQ_A_GSI + u32::from(pirq))
}

#[cfg(test)]
mod tests {
    use super::gsi;

    #[test]
    fn slots_rotate_over_pirq_e_to_h() {
        assert_eq!(gsi(0, 1), Some(20));
        assert_eq!(gsi(1, 1), Some(21));
        assert_eq!(gsi(2, 1), Some(22));
        assert_eq!(gsi(3, 1), Some(23));
        assert_eq!(gsi(4, 1), Some(20));
        assert_eq!(gsi(2, 2), Some(23));
        assert_eq!(gsi(2, 3), Some(20));
        assert_eq!(gsi(0x17, 4), Some(22));
    }

    #[test]
    fn chipset_slots_use_their_fixed_groups() {
        assert_eq!(gsi(0x18, 1), Some(20));
        assert_eq!(gsi(0x19, 1), Some(16));
        assert_eq!(gsi(0x1d, 4), Some(19));
        assert_eq!(gsi(0x1e, 2), Some(21));
        assert_eq!(gsi(0x1f, 1), Some(16));
        assert_eq!(gsi(0x1f, 2), Some(17));
    }

    #[test]
    fn no_pin_or_no_slot_has_no_line() {
        assert_eq!(gsi(2, 0), None);
        assert_eq!(gsi(2, 5), None);
        assert_eq!(gsi(32, 1), None);
    }
}
