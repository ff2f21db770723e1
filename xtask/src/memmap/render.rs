//! The inspection as text, JSON and SVG.

use super::Inspection;
use super::check::{AddressSpace, Problem};
use hal::boot::ByteSize;
use hal::layout::Region;
use hal::mm::{MapFlags, MappedRange};
use serde_json::{Value, json};
use std::fmt::Write;

fn permissions(flags: MapFlags) -> String {
    let bit = |flag, c| if flags.contains(flag) { c } else { '-' };
    format!(
        "{}{}{}",
        bit(MapFlags::READ, 'r'),
        bit(MapFlags::WRITE, 'w'),
        bit(MapFlags::EXECUTE, 'x')
    )
}

fn memory_type(flags: MapFlags) -> &'static str {
    if flags.contains(MapFlags::DEVICE) {
        "device"
    } else if flags.contains(MapFlags::WRITE_THROUGH) {
        "write-through"
    } else {
        "cached"
    }
}

fn mode(flags: MapFlags) -> &'static str {
    if flags.contains(MapFlags::USER) {
        "user"
    } else {
        "kernel"
    }
}

fn global(flags: MapFlags) -> &'static str {
    if flags.contains(MapFlags::GLOBAL) {
        "global"
    } else {
        "local"
    }
}

/// `ranges` cut at region boundaries, each piece with its region's name.
fn labelled(inspection: &Inspection, ranges: &[MappedRange]) -> Vec<(MappedRange, &'static str)> {
    ranges
        .iter()
        .flat_map(|r| inspection.layout.label_pieces(r, inspection.image_end))
        .collect()
}

fn range_lines(out: &mut String, inspection: &Inspection, ranges: &[MappedRange]) {
    let d = inspection.layout.digits + 2;
    let _ = writeln!(
        out,
        "  {:<w$}  {:<19}  {:>10}  perm  mode    type           global  region",
        "virtual",
        "physical",
        "size",
        w = 2 * d + 1
    );
    for (r, region) in labelled(inspection, ranges) {
        let _ = writeln!(
            out,
            "  {:#0d$x}-{:#0d$x}  {:#010x}-{:#010x}  {:>10}  {}   {:<6}  {:<13}  {:<6}  {}",
            r.virt,
            r.virt_end(),
            r.phys,
            r.phys + r.size,
            ByteSize(r.size).to_string(),
            permissions(r.flags),
            mode(r.flags),
            memory_type(r.flags),
            global(r.flags),
            region,
        );
    }
}

/// The map as text: the physical map, the kernel's space, the processes.
pub fn text(inspection: &Inspection, processes: &[&AddressSpace]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} MiB of RAM\n\nphysical map (QEMU):",
        inspection.machine.name(),
        inspection.ram_mib
    );
    for p in &inspection.physical {
        let _ = writeln!(
            out,
            "  {:#014x}-{:#014x}  {:>10}  {:<5}  {}",
            p.start,
            p.last + 1,
            ByteSize(p.last + 1 - p.start).to_string(),
            p.kind,
            p.name
        );
    }
    let _ = writeln!(out, "physical regions (layout):");
    for r in inspection.layout.physical_regions {
        let _ = writeln!(
            out,
            "  {:#014x}-{:#014x}  {:>10}  {:<11}  {}",
            r.start,
            r.end,
            ByteSize(r.end - r.start).to_string(),
            format!("{:?}", r.kind).to_lowercase(),
            r.name
        );
    }
    let _ = writeln!(
        out,
        "\nkernel address space (root {:#x}):",
        inspection.kernel.root
    );
    range_lines(&mut out, inspection, &inspection.kernel.kernel);
    for process in processes {
        let _ = writeln!(
            out,
            "\n{} (root {:#x}), user half:",
            process.name, process.root
        );
        range_lines(&mut out, inspection, &process.user);
        if process.kernel == inspection.kernel.kernel {
            let _ = writeln!(
                out,
                "  kernel half: the kernel's ({} ranges)",
                process.kernel.len()
            );
        } else {
            let _ = writeln!(out, "  kernel half, differing from the kernel's:");
            range_lines(&mut out, inspection, &process.kernel);
        }
    }
    out
}

/// Prints the mismatches, or that there are none.
pub fn print_problems(problems: &[Problem]) {
    if problems.is_empty() {
        println!("\nmemmap: the live map matches the layout");
        return;
    }
    println!("\nmemmap: {} mismatch(es) with the layout:", problems.len());
    for problem in problems {
        println!("  - {problem}");
    }
}

fn range_json((r, region): &(MappedRange, &str)) -> Value {
    json!({
        "virt": format!("{:#x}", r.virt),
        "virt_end": format!("{:#x}", r.virt_end()),
        "phys": format!("{:#x}", r.phys),
        "size": r.size,
        "permissions": permissions(r.flags),
        "user": r.flags.contains(MapFlags::USER),
        "memory": memory_type(r.flags),
        "global": r.flags.contains(MapFlags::GLOBAL),
        "page_size": r.page_size,
        "region": region,
    })
}

/// The map as JSON, for tools.
pub fn json(inspection: &Inspection, processes: &[&AddressSpace]) -> String {
    let space = |s: &AddressSpace| {
        json!({
            "name": s.name,
            "pid": s.pid,
            "root": format!("{:#x}", s.root),
            "user": labelled(inspection, &s.user).iter().map(range_json).collect::<Vec<_>>(),
            "kernel_matches_kernel": s.kernel == inspection.kernel.kernel,
            "walk_error": s.walk_error,
        })
    };
    let value = json!({
        "machine": inspection.machine.name(),
        "ram_mib": inspection.ram_mib,
        "physical": inspection.physical.iter().map(|p| json!({
            "start": format!("{:#x}", p.start),
            "end": format!("{:#x}", p.last + 1),
            "kind": p.kind,
            "name": p.name,
        })).collect::<Vec<_>>(),
        "kernel": {
            "root": format!("{:#x}", inspection.kernel.root),
            "ranges": labelled(inspection, &inspection.kernel.kernel).iter().map(range_json).collect::<Vec<_>>(),
            "walk_error": inspection.kernel.walk_error,
        },
        "processes": processes.iter().map(|p| space(p)).collect::<Vec<_>>(),
        "mismatches": inspection.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

const BAND_WIDTH: f64 = 900.0;
const BAND_HEIGHT: f64 = 22.0;
const LABEL_WIDTH: f64 = 330.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn colour(flags: MapFlags) -> &'static str {
    if flags.contains(MapFlags::DEVICE) {
        "#d9822b"
    } else if flags.contains(MapFlags::EXECUTE) {
        "#c23030"
    } else if flags.contains(MapFlags::WRITE) {
        "#2b95d6"
    } else {
        "#29a634"
    }
}

/// One band: a layout region, its mappings drawn to scale within it.
fn band(out: &mut String, y: f64, region: &Region, ranges: &[&MappedRange], digits: usize) {
    let span = (region.end - region.start).max(1) as f64;
    if !region.name.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="4" y="{:.1}" font-size="11">{} {:#0d$x}-{:#0d$x}</text>"##,
            y + 15.0,
            escape(region.name),
            region.start,
            region.end,
            d = digits + 2
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LABEL_WIDTH}" y="{y:.1}" width="{BAND_WIDTH}" height="{BAND_HEIGHT}" fill="#eeeeee" stroke="#999999"/>"##
    );
    for r in ranges {
        let start = r.virt.max(region.start);
        let end = r.virt_end().min(region.end);
        if start >= end {
            continue;
        }
        let x = LABEL_WIDTH + (start - region.start) as f64 / span * BAND_WIDTH;
        // At least a pixel, so a single page in a large region shows.
        let width = ((end - start) as f64 / span * BAND_WIDTH).max(1.0);
        let _ = writeln!(
            out,
            r##"<rect x="{x:.2}" y="{y:.1}" width="{width:.2}" height="{BAND_HEIGHT}" fill="{}"><title>{:#x}-{:#x} -> {:#x} {} {}</title></rect>"##,
            colour(r.flags),
            r.virt,
            r.virt_end(),
            r.phys,
            permissions(r.flags),
            memory_type(r.flags)
        );
    }
}

/// The address spaces as a picture: per space, a band per layout region,
/// mappings to scale within it (red executable, blue writable, green
/// read-only, orange device); the physical map likewise by QEMU's ranges.
pub fn svg(inspection: &Inspection, processes: &[&AddressSpace]) -> String {
    let mut body = String::new();
    let mut y = 10.0;
    let digits = inspection.layout.digits;
    let heading = |body: &mut String, y: &mut f64, text: &str| {
        let _ = writeln!(
            body,
            r##"<text x="4" y="{:.1}" font-size="14" font-weight="bold">{}</text>"##,
            *y + 14.0,
            escape(text)
        );
        *y += 24.0;
    };
    heading(
        &mut body,
        &mut y,
        &format!("{}: physical memory (QEMU)", inspection.machine.name()),
    );
    for p in &inspection.physical {
        let region = Region {
            name: "",
            start: p.start,
            end: p.last + 1,
            contents: hal::layout::Contents::Unmapped,
            note: "",
        };
        let fill = MappedRange {
            virt: p.start,
            phys: p.start,
            size: p.last + 1 - p.start,
            flags: if p.is_io() {
                MapFlags::DEVICE
            } else {
                MapFlags::READ | MapFlags::WRITE
            },
            page_size: 0,
        };
        let _ = writeln!(
            body,
            r##"<text x="4" y="{:.1}" font-size="11">{} {} {:#x}-{:#x}</text>"##,
            y + 15.0,
            escape(&p.kind),
            escape(&p.name),
            p.start,
            p.last + 1
        );
        band(&mut body, y, &region, &[&fill], 0);
        y += BAND_HEIGHT + 4.0;
    }
    let spaces: Vec<(String, Vec<&MappedRange>)> = std::iter::once((
        format!("kernel (root {:#x})", inspection.kernel.root),
        inspection.kernel.kernel.iter().collect(),
    ))
    .chain(processes.iter().map(|p| {
        (
            format!("{} (root {:#x}), user half", p.name, p.root),
            p.user.iter().collect(),
        )
    }))
    .collect();
    for (title, ranges) in spaces {
        y += 8.0;
        heading(&mut body, &mut y, &title);
        for region in inspection.layout.virtual_regions {
            let inside: Vec<&MappedRange> = ranges
                .iter()
                .copied()
                .filter(|r| r.virt < region.end && region.start < r.virt_end())
                .collect();
            if inside.is_empty() {
                continue;
            }
            band(&mut body, y, region, &inside, digits);
            y += BAND_HEIGHT + 4.0;
        }
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" font-family="monospace">
<rect width="100%" height="100%" fill="white"/>
{body}</svg>
"##,
        LABEL_WIDTH + BAND_WIDTH + 10.0,
        y + 10.0
    )
}
