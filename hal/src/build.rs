//! Shared by the architecture crates' build scripts: rendering the linker
//! script from layout constants, so the addresses an image is linked at
//! have one source (the architecture's `src/layout.rs`).

use std::{env, fs, path::PathBuf};

/// `template` with each `@NAME@` replaced by its value in hex; an unknown
/// or unreplaced placeholder is an error naming it.
pub fn render(template: &str, values: &[(&str, u64)]) -> Result<String, String> {
    let mut out = template.to_string();
    for (name, value) in values {
        let token = format!("@{name}@");
        if !out.contains(&token) {
            return Err(format!("the template has no {token}"));
        }
        out = out.replace(&token, &format!("{value:#x}"));
    }
    match out.find('@') {
        Some(at) => Err(format!(
            "unrendered placeholder near {:?}",
            &out[at..(at + 24).min(out.len())]
        )),
        None => Ok(out),
    }
}

/// Renders `link.ld.in` of the crate being built into `OUT_DIR/link.ld`,
/// links the crate's binaries with it, and reruns when the template or the
/// layout changes.
pub fn link_script(values: &[(&str, u64)]) {
    let template = fs::read_to_string("link.ld.in").expect("read link.ld.in");
    let script = render(&template, values).unwrap_or_else(|e| panic!("link.ld.in: {e}"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set")).join("link.ld");
    fs::write(&out, script).expect("write link.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", out.display());
    println!("cargo:rerun-if-changed=link.ld.in");
    println!("cargo:rerun-if-changed=src/layout.rs");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rendered_or_reported() {
        assert_eq!(
            render("at @BASE@ + @OFF@;", &[("BASE", 0x20_0000), ("OFF", 16)]).unwrap(),
            "at 0x200000 + 0x10;"
        );
        assert!(render("at @BASE@ @OTHER@", &[("BASE", 1)]).is_err());
        assert!(render("at 0", &[("BASE", 1)]).is_err());
    }
}
