//! How a kernel exit status reaches the host on x86_64.
//!
//! QEMU's `isa-debug-exit` device ends the emulator with status
//! `(value << 1) | 1` for a value written to its port. Statuses 0 and 1 are
//! what QEMU itself uses, so the kernel adds [`BIAS`] to its code: any status
//! the host decodes was certainly written by the kernel.

/// The I/O port the `isa-debug-exit` device is configured at.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Added to every kernel exit code before it is written.
pub const BIAS: u32 = 0x10;

/// The largest code that survives the trip: the host status is 8 bits.
pub const MAX_CODE: u8 = 0x7f - BIAS as u8;

/// The value the kernel writes to the port to exit with `code`.
pub const fn port_value(code: u8) -> u32 {
    let code = if code > MAX_CODE { MAX_CODE } else { code };
    code as u32 + BIAS
}

/// The kernel's exit code from QEMU's process exit status, or `None` if the
/// kernel did not end the emulator through the exit device.
pub const fn decode(host_status: i32) -> Option<u8> {
    if host_status & 1 == 0 || host_status < 0 || host_status > 0xff {
        return None;
    }
    let value = (host_status >> 1) as u32;
    if value < BIAS {
        None
    } else {
        Some((value - BIAS) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 0..=MAX_CODE {
            let status = ((port_value(code) << 1) | 1) as i32;
            assert_eq!(decode(status), Some(code));
        }
    }

    #[test]
    fn qemu_own_statuses_are_not_kernel_codes() {
        assert_eq!(
            decode(0),
            None,
            "clean shutdown, e.g. a triple fault with -no-reboot"
        );
        assert_eq!(decode(1), None, "QEMU error");
        assert_eq!(decode(2), None);
    }
}
