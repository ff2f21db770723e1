//! The runtime every Ferrite user program links: the entry point, typed
//! system calls, console printing, a heap, threads, processes, time, and
//! capabilities and IPC, memory quotas.
//!
//! A program names its main function with [`entry!`]; it gets its
//! argument string and returns its exit status:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! rt::entry!(main);
//! fn main(args: &str) -> i32 {
//!     rt::println!("hello, {args}");
//!     0
//! }
//! ```

#![no_std]

extern crate alloc;

/// Gives a capability type (a tuple struct around its handle) its
/// ownership methods: it deletes the capability when dropped.
macro_rules! owned_handle {
    ($name:ident) => {
        impl $name {
            /// Takes ownership of `handle` (one passed at spawn, say).
            pub fn from_handle(handle: abi::Handle) -> $name {
                $name(handle)
            }

            /// The handle, still owned.
            pub fn handle(&self) -> abi::Handle {
                self.0
            }

            /// Gives up ownership: the capability stays.
            pub fn into_handle(self) -> abi::Handle {
                let handle = self.0;
                core::mem::forget(self);
                handle
            }

            /// Another capability to the object with `rights` (and for an
            /// endpoint, `badge`).
            pub fn copy(&self, rights: abi::Rights, badge: usize) -> Result<$name, abi::Error> {
                $crate::ipc::cap_copy(self.0, rights, badge).map($name)
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                let _ = $crate::ipc::cap_delete(self.0);
            }
        }
    };
}

pub mod arch;
pub mod block;
pub mod device;
pub mod heap;
pub mod io;
pub mod ipc;
pub mod names;
pub mod net;
pub mod process;
pub mod quota;
pub mod rng;
pub mod supervisor;
pub mod sys;
pub mod thread;
pub mod time;

pub use abi::Error;

/// Declares the program's main function: `fn(&str) -> i32`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __ferrite_main(arguments: &str) -> i32 {
            $main(arguments)
        }
    };
}

unsafe extern "Rust" {
    /// Defined by [`entry!`] in the program.
    fn __ferrite_main(arguments: &str) -> i32;
}

/// Called by the entry code in `arch` with the argument bytes the kernel
/// copied to the top of the stack.
extern "C" fn start(arguments: *const u8, len: usize) -> ! {
    let bytes = if len == 0 {
        &[][..]
    } else {
        // SAFETY: the kernel copied `len` bytes to `arguments`, in the
        // stack region, above the initial stack pointer, so nothing
        // overwrites them.
        unsafe { core::slice::from_raw_parts(arguments, len) }
    };
    let arguments = core::str::from_utf8(bytes).unwrap_or("");
    // SAFETY: `entry!` defines the symbol with this signature.
    let status = unsafe { __ferrite_main(arguments) };
    sys::exit(status)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    io::print_panic(info);
    sys::exit(abi::EXIT_PANIC)
}
