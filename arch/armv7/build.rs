//! Renders the linker script from the layout constants, so the addresses
//! the image is linked at have one source: `src/layout.rs`.

#[allow(dead_code)]
#[path = "src/layout.rs"]
mod layout;

fn main() {
    hal::build::link_script(&[
        ("KERNEL_LOAD_PHYS", layout::KERNEL_LOAD_PHYS as u64),
        ("KERNEL_VIRT_OFFSET", layout::KERNEL_VIRT_OFFSET as u64),
    ]);
}
