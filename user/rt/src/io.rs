//! Console output and input.

use crate::sys;
use core::fmt::{self, Write};

/// Formats into a buffer and writes it with one system call per line or
/// buffer-full, so concurrent programs interleave by lines, not bytes.
struct LineWriter {
    buffer: [u8; 256],
    len: usize,
}

impl LineWriter {
    fn flush(&mut self) {
        if self.len > 0 {
            let _ = sys::write(&self.buffer[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            if self.len == self.buffer.len() {
                self.flush();
            }
            self.buffer[self.len] = byte;
            self.len += 1;
            if byte == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Prints formatted text.
pub fn print(args: fmt::Arguments<'_>) {
    let mut writer = LineWriter {
        buffer: [0; 256],
        len: 0,
    };
    let _ = writer.write_fmt(args);
    writer.flush();
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::io::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::print(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) fn print_panic(info: &core::panic::PanicInfo<'_>) {
    print(format_args!(
        "process {} panicked: {}\n",
        sys::process_id(),
        info
    ));
}

/// Reads one byte of console input, waiting for it.
pub fn read_byte() -> u8 {
    let mut byte = [0u8];
    loop {
        if let Ok(1) = sys::read(&mut byte) {
            return byte[0];
        }
    }
}
