//! Renders the linker script from the layout constants, so the addresses
//! the image is linked at have one source: `src/layout.rs`.

#[allow(dead_code)]
#[path = "src/layout.rs"]
mod layout;

use std::{env, fs, path::PathBuf};

fn main() {
    let template = fs::read_to_string("link.ld.in").expect("read link.ld.in");
    let script = template
        .replace(
            "@KERNEL_LOAD_PHYS@",
            &format!("{:#x}", layout::KERNEL_LOAD_PHYS),
        )
        .replace(
            "@KERNEL_VIRT_OFFSET@",
            &format!("{:#x}", layout::KERNEL_VIRT_OFFSET),
        );
    assert!(
        !script.contains('@'),
        "unrendered placeholder in link.ld.in"
    );
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("link.ld");
    fs::write(&out, script).expect("write link.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", out.display());
    println!("cargo:rerun-if-changed=link.ld.in");
    println!("cargo:rerun-if-changed=src/layout.rs");
}
