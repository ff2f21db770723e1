//! Renders the linker script from the layout constants, so the addresses
//! the image is linked at have one source: `src/layout.rs`.

#[allow(dead_code)]
#[path = "src/layout.rs"]
mod layout;

fn main() {
    hal::build::link_script(&[
        ("KERNEL_PHYS_BASE", layout::KERNEL_PHYS_BASE),
        ("KERNEL_VIRT_OFFSET", layout::KERNEL_VIRT_OFFSET),
    ]);
}
