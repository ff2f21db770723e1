//! The legacy 8259 interrupt controllers, which the kernel only silences:
//! remapped away from the exception vectors (so a stray interrupt cannot
//! look like an exception) and fully masked.

use crate::ports::Ports;

const MASTER_COMMAND: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_COMMAND: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;
/// ICW1: initialise, ICW4 follows.
const ICW1_INIT: u8 = 0x11;
/// ICW4: 8086 mode.
const ICW4_8086: u8 = 0x01;

/// Remaps the pair to vectors `base..base + 16` and masks every line.
pub fn remap_and_mask(ports: &impl Ports, base: u8) {
    ports.write8(MASTER_COMMAND, ICW1_INIT);
    ports.write8(SLAVE_COMMAND, ICW1_INIT);
    ports.write8(MASTER_DATA, base);
    ports.write8(SLAVE_DATA, base + 8);
    ports.write8(MASTER_DATA, 1 << 2); // the slave hangs off line 2
    ports.write8(SLAVE_DATA, 2); // its cascade identity
    ports.write8(MASTER_DATA, ICW4_8086);
    ports.write8(SLAVE_DATA, ICW4_8086);
    ports.write8(MASTER_DATA, 0xff);
    ports.write8(SLAVE_DATA, 0xff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Log(RefCell<Vec<(u16, u8)>>);
    impl Ports for Log {
        fn read8(&self, _port: u16) -> u8 {
            0
        }
        fn write8(&self, port: u16, value: u8) {
            self.0.borrow_mut().push((port, value));
        }
    }

    #[test]
    fn remaps_then_masks_all_lines() {
        let log = Log(RefCell::new(Vec::new()));
        remap_and_mask(&log, 0xe0);
        let writes = log.0.into_inner();
        assert_eq!(writes[2], (MASTER_DATA, 0xe0));
        assert_eq!(writes[3], (SLAVE_DATA, 0xe8));
        assert_eq!(&writes[8..], &[(MASTER_DATA, 0xff), (SLAVE_DATA, 0xff)]);
    }
}
