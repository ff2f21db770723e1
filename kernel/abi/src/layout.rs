//! Where a program lives in its address space, the same on every
//! architecture. Programs are linked for these addresses (the user linker
//! script is generated from them) and the kernel loads and checks against
//! them. Below [`NULL_GUARD_END`] nothing is ever mapped.

/// Nothing is mapped below this: null pointers and small offsets fault.
pub const NULL_GUARD_END: usize = 0x20_0000;
/// The first byte of a program image (its ELF and program headers).
pub const IMAGE_BASE: usize = 0x20_0000;
/// Programs' entry point: the start of their text.
pub const ENTRY: usize = 0x20_1000;
/// End of the window for the image and the main thread's stack.
pub const IMAGE_END: usize = 0x40_0000;
/// Size of the main thread's stack, which ends at [`IMAGE_END`].
pub const STACK_SIZE: usize = 64 * 1024;
/// The lowest address of the main thread's stack; images must end below.
pub const STACK_BASE: usize = IMAGE_END - STACK_SIZE;
/// The main thread's initial stack pointer when it gets no arguments;
/// arguments are copied just below it.
pub const STACK_TOP: usize = 0x3f_fff0;
/// Anonymous memory (`map`) starts here and runs to the end of user space.
pub const ANON_START: usize = 0x40_0000;
