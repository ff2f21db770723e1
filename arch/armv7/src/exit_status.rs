//! How a kernel exit status reaches the host on ARMv7.
//!
//! With `-semihosting`, QEMU ends the emulator on a `SYS_EXIT_EXTENDED`
//! call with the status the kernel passes. QEMU itself exits with 1 on
//! errors, so the kernel adds [`BIAS`] to its code: any status the host
//! decodes was certainly passed by the kernel.

/// Semihosting operation: exit with a reason and a subcode.
pub const SYS_EXIT_EXTENDED: u32 = 0x20;

/// Semihosting exit reason: the application exited.
pub const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x2_0026;

/// Added to every kernel exit code.
pub const BIAS: u32 = 0x10;

/// The largest code that survives the trip: the host status is 8 bits.
pub const MAX_CODE: u8 = 0xff - BIAS as u8;

/// The subcode the kernel passes to exit with `code`.
pub const fn subcode(code: u8) -> u32 {
    let code = if code > MAX_CODE { MAX_CODE } else { code };
    code as u32 + BIAS
}

/// The kernel's exit code from QEMU's process exit status, or `None` if the
/// kernel did not end the emulator through semihosting.
pub const fn decode(host_status: i32) -> Option<u8> {
    if host_status < BIAS as i32 || host_status > 0xff {
        None
    } else {
        Some((host_status as u32 - BIAS) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 0..=MAX_CODE {
            assert_eq!(decode(subcode(code) as i32), Some(code));
        }
    }

    #[test]
    fn qemu_own_statuses_are_not_kernel_codes() {
        assert_eq!(decode(0), None);
        assert_eq!(decode(1), None);
    }
}
