//! Formatted output on the kernel console.
//!
//! The architecture's console is installed once as a plain function pointer,
//! so printing and logging work from any code without carrying the
//! architecture type around. Printing is never on a hot path.

use crate::sync::IrqLock;
use core::fmt::{self, Write};
use spin::Once;

static WRITE_BYTES: Once<fn(&[u8])> = Once::new();

/// Serialises whole messages so that lines from different contexts
/// (interrupt handlers included) do not interleave.
static LOCK: IrqLock<()> = IrqLock::new(());

/// Routes kernel output to `A`'s console.
pub fn install<A: hal::Console>() {
    WRITE_BYTES.call_once(|| A::write_bytes);
}

struct Writer(fn(&[u8]));

impl Write for Writer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Serial terminals need CR LF; emit the text in runs between newlines.
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                (self.0)(b"\r\n");
            }
            (self.0)(line.as_bytes());
        }
        Ok(())
    }
}

/// Prints formatted text; does nothing before a console is installed.
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(&write_bytes) = WRITE_BYTES.get() {
        let _guard = LOCK.lock();
        let _ = Writer(write_bytes).write_fmt(args);
    }
}

/// Prints without taking the lock: for the panic path, where the lock may be
/// held by the code that panicked.
pub fn print_unlocked(args: fmt::Arguments<'_>) {
    if let Some(&write_bytes) = WRITE_BYTES.get() {
        let _ = Writer(write_bytes).write_fmt(args);
    }
}

/// Prints to the kernel console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the kernel console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes text from a user program: newlines become CR LF, and a message
/// is not interleaved with kernel output.
pub fn write_text(bytes: &[u8]) {
    let Some(&write_bytes) = WRITE_BYTES.get() else {
        return;
    };
    let _guard = LOCK.lock();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            write_bytes(b"\r\n");
        }
        write_bytes(line);
    }
}
