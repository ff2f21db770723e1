//! Console output and input: through the console service once a program
//! has connected to it ([`connect`]), otherwise output goes to the
//! kernel's polled console path and there is no input.
//!
//! A connected program's output travels in its threads' IPC buffers, so a
//! server that prints must not hold a received payload across a print.

use crate::ipc::{Endpoint, IpcBuffer, Message};
use crate::sys;
use core::fmt::{self, Write};
use protocols::console;

/// The console service's two endpoints, once connected.
static CONSOLE: spin::Once<(abi::Handle, abi::Handle)> = spin::Once::new();

/// Connects this program's console output and input to the console
/// service, found through `names`.
pub fn connect(names: &mut crate::names::Names) -> Result<(), abi::Error> {
    let output = names.lookup(console::OUTPUT)?;
    let input = names.lookup(console::INPUT)?;
    CONSOLE.call_once(|| (output.into_handle(), input.into_handle()));
    Ok(())
}

/// Writes `bytes` to the console: through the service if connected.
pub fn write(bytes: &[u8]) {
    let Some(&(output, _)) = CONSOLE.get() else {
        let _ = sys::write(bytes);
        return;
    };
    let Ok(mut buffer) = IpcBuffer::register() else {
        let _ = sys::write(bytes);
        return;
    };
    let output = core::mem::ManuallyDrop::new(Endpoint::from_handle(output));
    for chunk in bytes.chunks(abi::MAX_PAYLOAD) {
        buffer.bytes()[..chunk.len()].copy_from_slice(chunk);
        let message = Message::new(console::WRITE, [0; 4]).with_payload(chunk.len());
        if output.call(message).is_err() {
            // The console driver is gone: the kernel's path still works.
            let _ = sys::write(chunk);
        }
    }
}

/// Reads console input into `into`, waiting for at least one byte;
/// returns how many arrived.
pub fn read(into: &mut [u8]) -> Result<usize, abi::Error> {
    let Some(&(_, input)) = CONSOLE.get() else {
        return sys::read(into);
    };
    if into.is_empty() {
        return Ok(0);
    }
    let mut buffer = IpcBuffer::register()?;
    let input = core::mem::ManuallyDrop::new(Endpoint::from_handle(input));
    let wanted = into.len().min(abi::MAX_PAYLOAD);
    let reply = input.call(Message::new(console::READ, [wanted, 0, 0, 0]))?;
    protocols::result::<console::Error>(reply.label).map_err(|_| abi::Error::InvalidArgument)?;
    let got = reply.payload().unwrap_or(0).min(wanted);
    into[..got].copy_from_slice(&buffer.bytes()[..got]);
    Ok(got)
}

/// Formats into a buffer and writes it with one system call per line or
/// buffer-full, so concurrent programs interleave by lines, not bytes.
struct LineWriter {
    buffer: [u8; 256],
    len: usize,
}

impl LineWriter {
    fn flush(&mut self) {
        if self.len > 0 {
            write(&self.buffer[..self.len]);
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
pub fn read_byte() -> Result<u8, abi::Error> {
    let mut byte = [0u8];
    loop {
        if read(&mut byte)? == 1 {
            return Ok(byte[0]);
        }
    }
}
