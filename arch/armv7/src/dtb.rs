//! Reading the flattened device tree the board is booted with.
//!
//! The blob is untrusted input. The `fdt` crate walks it well but panics on
//! many malformations (and a panic here would stop the kernel before it can
//! say why), so [`validate`] first checks the whole structure: header and
//! block bounds, every token, name and property, string offsets, nesting,
//! and the cell-count properties `fdt` decodes itself. Only a blob that
//! passes is handed to `fdt`. Property values (`reg`, `interrupts`) are
//! decoded here with the cell sizes carried down from each parent, because
//! `fdt`'s own decoders truncate 64-bit values on 32-bit targets.

use core::fmt;
use fdt::Fdt;
use fdt::node::FdtNode;
use hal::list::FixedList;

/// `0xd00dfeed`, big-endian, at the start of every blob.
pub const MAGIC: u32 = 0xd00d_feed;
const HEADER_SIZE: usize = 40;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Deeper trees are refused: real ones are a handful of levels deep, and
/// the walk below recurses.
pub const MAX_DEPTH: usize = 16;
const MAX_RESERVATIONS: usize = 64;

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbError {
    /// Shorter than its header or than the size the header claims.
    Truncated,
    /// Not a device tree.
    BadMagic(u32),
    /// A version this reader does not understand (it needs 17).
    UnsupportedVersion(u32),
    /// A block the header points to lies outside the blob or is misaligned.
    BadBlock(&'static str),
    /// An unknown token at this offset in the structure block.
    BadToken { offset: usize, token: u32 },
    /// A node name or property name is unterminated or not UTF-8.
    BadName { offset: usize },
    /// A property's value runs past the structure block.
    PropertyOutOfBounds { offset: usize },
    /// A property appears after a child node within the same node.
    PropertyAfterChild { offset: usize },
    /// A cell-count or phandle property is not one 32-bit cell, or a cell
    /// count is beyond what any binding uses.
    BadCellProperty { offset: usize },
    /// `FDT_NOP` tokens are valid, but `fdt` does not skip them everywhere,
    /// so they must be removed with [`strip_nops`] before parsing.
    NopToken { offset: usize },
    /// Nodes nest deeper than [`MAX_DEPTH`].
    TooDeep { offset: usize },
    /// Nodes are not properly closed, or there is not exactly one root.
    Unbalanced { offset: usize },
    /// The structure block ends without `FDT_END`.
    MissingEnd,
    /// The memory reservation block has no terminator within bounds.
    BadReservations,
}

impl core::fmt::Display for DtbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtbError::Truncated => write!(f, "blob is truncated"),
            DtbError::BadMagic(m) => write!(f, "bad magic {m:#010x} (expected {MAGIC:#010x})"),
            DtbError::UnsupportedVersion(v) => write!(f, "version {v} (17 needed)"),
            DtbError::BadBlock(which) => write!(f, "{which} block out of bounds or misaligned"),
            DtbError::BadToken { offset, token } => {
                write!(
                    f,
                    "unknown token {token:#x} at structure offset {offset:#x}"
                )
            }
            DtbError::BadName { offset } => write!(f, "bad name at structure offset {offset:#x}"),
            DtbError::PropertyOutOfBounds { offset } => {
                write!(
                    f,
                    "property at structure offset {offset:#x} runs past the block"
                )
            }
            DtbError::PropertyAfterChild { offset } => {
                write!(
                    f,
                    "property after a child node at structure offset {offset:#x}"
                )
            }
            DtbError::BadCellProperty { offset } => {
                write!(
                    f,
                    "malformed cell-count or phandle property at offset {offset:#x}"
                )
            }
            DtbError::NopToken { offset } => {
                write!(
                    f,
                    "NOP token at structure offset {offset:#x} (strip NOPs first)"
                )
            }
            DtbError::TooDeep { offset } => {
                write!(
                    f,
                    "nodes nested deeper than {MAX_DEPTH} at offset {offset:#x}"
                )
            }
            DtbError::Unbalanced { offset } => {
                write!(f, "unbalanced nodes at structure offset {offset:#x}")
            }
            DtbError::MissingEnd => write!(f, "structure block has no end token"),
            DtbError::BadReservations => write!(f, "memory reservation block unterminated"),
        }
    }
}

fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    Some(u32::from_be_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

fn be64(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    Some(u64::from_be_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

/// The bytes of a NUL-terminated UTF-8 string starting at `offset` within
/// `block`, without the NUL.
fn c_str(block: &[u8], offset: usize) -> Option<&str> {
    let rest = block.get(offset..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The size the blob's header claims, if `blob` starts with a header.
pub fn total_size(blob: &[u8]) -> Result<usize, DtbError> {
    let magic = be32(blob, 0).ok_or(DtbError::Truncated)?;
    if magic != MAGIC {
        return Err(DtbError::BadMagic(magic));
    }
    let total = be32(blob, 4).ok_or(DtbError::Truncated)? as usize;
    if total < HEADER_SIZE {
        return Err(DtbError::Truncated);
    }
    Ok(total)
}

/// Checks that `blob` is a well-formed device tree that `fdt` can walk
/// without panicking. Returns the blob cut to the size its header gives.
pub fn validate(blob: &[u8]) -> Result<&[u8], DtbError> {
    validate_with(blob, Nops::Refused)
}

fn validate_with(blob: &[u8], nops: Nops) -> Result<&[u8], DtbError> {
    let total = total_size(blob)?;
    let blob = blob.get(..total).ok_or(DtbError::Truncated)?;
    let header = |i: usize| be32(blob, i * 4).ok_or(DtbError::Truncated);
    let (off_struct, off_strings, off_reserve) = (header(2)?, header(3)?, header(4)?);
    let (version, size_strings, size_struct) = (header(5)?, header(8)?, header(9)?);
    if version < 17 {
        return Err(DtbError::UnsupportedVersion(version));
    }
    let block = |offset: u32, size: u32, align: u32, name| {
        let start = offset as usize;
        let end = start
            .checked_add(size as usize)
            .ok_or(DtbError::BadBlock(name))?;
        if start < HEADER_SIZE || end > total || !offset.is_multiple_of(align) {
            return Err(DtbError::BadBlock(name));
        }
        Ok(&blob[start..end])
    };
    let structure = block(off_struct, size_struct, 4, "structure")?;
    let strings = block(off_strings, size_strings, 1, "strings")?;
    block(off_reserve, 16, 8, "reservation")?;
    if reservations(blob).count() == MAX_RESERVATIONS {
        return Err(DtbError::BadReservations);
    }
    let terminator = off_reserve as usize + reservations(blob).count() * 16;
    if be64(blob, terminator) != Some(0) || be64(blob, terminator + 8) != Some(0) {
        return Err(DtbError::BadReservations);
    }
    if ranges_overlap(structure, strings) {
        return Err(DtbError::BadBlock("strings"));
    }
    validate_structure(structure, strings, nops)?;
    Ok(blob)
}

fn ranges_overlap(a: &[u8], b: &[u8]) -> bool {
    let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
    a0 < b0 + b.len() && b0 < a0 + a.len()
}

/// The entries of the memory reservation block, up to its terminator, at
/// most [`MAX_RESERVATIONS`]. Read here rather than by `fdt`, whose
/// accessors return pointer-sized values.
fn reservations(blob: &[u8]) -> impl Iterator<Item = Reg> + '_ {
    let start = be32(blob, 16).unwrap_or(0) as usize;
    (0..MAX_RESERVATIONS)
        .map(move |i| {
            let at = start + i * 16;
            (be64(blob, at), be64(blob, at + 8))
        })
        .map_while(|entry| match entry {
            (Some(address), Some(size)) if (address, size) != (0, 0) => Some(Reg { address, size }),
            _ => None,
        })
}

/// One token of the structure block, checked against the block's bounds.
#[derive(Clone, Copy)]
enum Token<'a> {
    BeginNode(&'a str),
    EndNode,
    Property { name: &'a str, value: &'a [u8] },
    Nop,
    End,
}

/// Reads the token at `at`; returns it and the offset of the next one.
fn next_token<'a>(
    structure: &'a [u8],
    strings: &'a [u8],
    at: usize,
) -> Result<(Token<'a>, usize), DtbError> {
    let offset = at;
    let token = be32(structure, at).ok_or(DtbError::MissingEnd)?;
    let body = at + 4;
    Ok(match token {
        FDT_BEGIN_NODE => {
            let name = c_str(structure, body).ok_or(DtbError::BadName { offset })?;
            (Token::BeginNode(name), align4(body + name.len() + 1))
        }
        FDT_END_NODE => (Token::EndNode, body),
        FDT_PROP => {
            let len = be32(structure, body).ok_or(DtbError::PropertyOutOfBounds { offset })?;
            let name_offset =
                be32(structure, body + 4).ok_or(DtbError::PropertyOutOfBounds { offset })?;
            let value_start = body + 8;
            let value_end = value_start
                .checked_add(len as usize)
                .filter(|&end| end <= structure.len())
                .ok_or(DtbError::PropertyOutOfBounds { offset })?;
            let name = c_str(strings, name_offset as usize).ok_or(DtbError::BadName { offset })?;
            (
                Token::Property {
                    name,
                    value: &structure[value_start..value_end],
                },
                align4(value_end),
            )
        }
        FDT_NOP => (Token::Nop, body),
        FDT_END => (Token::End, body),
        _ => return Err(DtbError::BadToken { offset, token }),
    })
}

/// Whether NOP tokens are acceptable: they are for [`strip_nops`], which
/// removes them, but not for the `fdt` walk (see [`DtbError::NopToken`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nops {
    Allowed,
    Refused,
}

fn validate_structure(structure: &[u8], strings: &[u8], nops: Nops) -> Result<(), DtbError> {
    // For each open node: whether a child node has been seen yet.
    let mut child_seen = [false; MAX_DEPTH];
    let mut depth = 0usize;
    let mut roots = 0;
    let mut at = 0usize;
    loop {
        let offset = at;
        let (token, next) = next_token(structure, strings, at)?;
        at = next;
        match token {
            Token::BeginNode(name) => {
                if depth == 0 {
                    roots += 1;
                    if roots > 1 || !name.is_empty() {
                        return Err(DtbError::Unbalanced { offset });
                    }
                } else {
                    child_seen[depth - 1] = true;
                }
                if depth == MAX_DEPTH {
                    return Err(DtbError::TooDeep { offset });
                }
                child_seen[depth] = false;
                depth += 1;
            }
            Token::EndNode => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(DtbError::Unbalanced { offset })?;
            }
            Token::Property { name, value } => {
                if depth == 0 {
                    return Err(DtbError::Unbalanced { offset });
                }
                if child_seen[depth - 1] {
                    return Err(DtbError::PropertyAfterChild { offset });
                }
                if !cell_property_ok(name, value) {
                    return Err(DtbError::BadCellProperty { offset });
                }
            }
            Token::Nop => {
                if nops == Nops::Refused {
                    return Err(DtbError::NopToken { offset });
                }
            }
            Token::End => {
                return if depth == 0 && roots == 1 {
                    Ok(())
                } else {
                    Err(DtbError::Unbalanced { offset })
                };
            }
        }
    }
}

/// Removes NOP tokens from a valid blob, in place: the structure block is
/// compacted and its size in the header reduced. QEMU leaves NOPs behind
/// when it edits the tree; `fdt` skips them only in some positions.
pub fn strip_nops(blob: &mut [u8]) -> Result<(), DtbError> {
    validate_with(blob, Nops::Allowed)?;
    let off_struct = be32(blob, 8).ok_or(DtbError::Truncated)? as usize;
    let size_struct = be32(blob, 36).ok_or(DtbError::Truncated)? as usize;
    let off_strings = be32(blob, 12).ok_or(DtbError::Truncated)? as usize;
    let size_strings = be32(blob, 32).ok_or(DtbError::Truncated)? as usize;
    let (mut read, mut write) = (0usize, 0usize);
    loop {
        // Validation proved the structure and strings blocks in bounds and
        // disjoint, so compacting one never touches the other.
        let (is_nop, is_end, next) = {
            let structure = &blob[off_struct..off_struct + size_struct];
            let strings = &blob[off_strings..off_strings + size_strings];
            let (token, next) = next_token(structure, strings, read)?;
            (
                matches!(token, Token::Nop),
                matches!(token, Token::End),
                next,
            )
        };
        if !is_nop {
            blob.copy_within(off_struct + read..off_struct + next, off_struct + write);
            write += next - read;
        }
        read = next;
        if is_end {
            break;
        }
    }
    blob[36..40].copy_from_slice(&(write as u32).to_be_bytes());
    Ok(())
}

/// The bytes a valid blob actually uses: its header size may include free
/// space left for edits.
pub fn used_size(blob: &[u8]) -> Option<usize> {
    let end = |offset: usize, size: usize| {
        Some(be32(blob, offset)? as usize + be32(blob, size)? as usize)
    };
    Some(end(8, 36)?.max(end(12, 32)?).max(HEADER_SIZE))
}

/// Properties `fdt` decodes as one cell: they must be exactly one, and
/// cell counts must be small enough that `count * 4` is a sane length.
fn cell_property_ok(name: &str, value: &[u8]) -> bool {
    match name {
        "#address-cells" | "#size-cells" | "#interrupt-cells" => {
            value.len() == 4 && be32(value, 0).is_some_and(|n| n <= 4)
        }
        "phandle" | "linux,phandle" | "interrupt-parent" => value.len() == 4,
        _ => true,
    }
}

/// A physical range from a `reg` entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reg {
    /// Physical address.
    pub address: u64,
    /// Length in bytes.
    pub size: u64,
}

/// A device node the kernel understands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceNode {
    /// Its first register window.
    pub reg: Reg,
    /// Its interrupts, as GIC interrupt IDs.
    pub interrupts: FixedList<u32, 4>,
    /// Its reference clock, for devices with a `clocks` property pointing
    /// at a fixed clock.
    pub clock_hz: Option<u32>,
}

/// The GICv2's register windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gic {
    /// Distributor.
    pub distributor: Reg,
    /// CPU interface.
    pub cpu_interface: Reg,
}

/// What the kernel takes from the device tree.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceTreeInfo<'a> {
    /// The root's first `compatible` string.
    pub compatible: &'a str,
    /// The root's `model`.
    pub model: &'a str,
    /// `/chosen/bootargs`: the kernel command line, as bytes up to its NUL
    /// (checked by the kernel, which refuses a line that is not UTF-8).
    pub bootargs: &'a [u8],
    /// CPU nodes under `/cpus`.
    pub cpus: u32,
    /// RAM ranges from `device_type = "memory"` nodes.
    pub memory: FixedList<Reg, 8>,
    /// Reserved ranges: the reservation block and `/reserved-memory`.
    pub reserved: FixedList<Reg, 16>,
    /// The console UART: `stdout-path` if it names a PL011, else the first.
    pub console_uart: Option<DeviceNode>,
    /// The interrupt controller.
    pub gic: Option<Gic>,
    /// The first SP804 dual timer: the kernel's tick.
    pub sp804: Option<DeviceNode>,
    /// The other SP804s, left to user space.
    pub spare_sp804s: FixedList<DeviceNode, 4>,
    /// The PL031 real-time clock.
    pub pl031: Option<DeviceNode>,
    /// VirtIO-MMIO transports.
    pub virtio_mmio: FixedList<DeviceNode, 8>,
    /// Device nodes skipped because their addresses go through a bus with
    /// address translation, or their properties could not be decoded.
    pub skipped_nodes: usize,
}

/// Why the memory a tree describes cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// No `device_type = "memory"` node with a `reg`.
    NoMemoryNode,
    /// A memory range of size zero.
    EmptyRange { address: u64 },
    /// Two memory ranges share addresses: the tree counts RAM twice.
    Overlap { first: Reg, second: Reg },
    /// More memory ranges than the kernel keeps.
    TooManyRanges { dropped: usize },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::NoMemoryNode => write!(f, "no /memory node describes RAM"),
            MemoryError::EmptyRange { address } => {
                write!(f, "the memory range at {address:#x} has size 0")
            }
            MemoryError::Overlap { first, second } => write!(
                f,
                "memory ranges {:#x}+{:#x} and {:#x}+{:#x} overlap",
                first.address, first.size, second.address, second.size
            ),
            MemoryError::TooManyRanges { dropped } => {
                write!(f, "{dropped} memory ranges beyond the first 8")
            }
        }
    }
}

impl DeviceTreeInfo<'_> {
    /// Whether the memory ranges describe RAM consistently: at least one,
    /// none empty, none overlapping another.
    pub fn check_memory(&self) -> Result<(), MemoryError> {
        let ranges = self.memory.as_slice();
        if self.memory.dropped > 0 {
            return Err(MemoryError::TooManyRanges {
                dropped: self.memory.dropped,
            });
        }
        if ranges.is_empty() {
            return Err(MemoryError::NoMemoryNode);
        }
        if let Some(empty) = ranges.iter().find(|r| r.size == 0) {
            return Err(MemoryError::EmptyRange {
                address: empty.address,
            });
        }
        let end = |r: &Reg| r.address.saturating_add(r.size);
        for (i, first) in ranges.iter().enumerate() {
            for second in &ranges[i + 1..] {
                if first.address < end(second) && second.address < end(first) {
                    return Err(MemoryError::Overlap {
                        first: *first,
                        second: *second,
                    });
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct CellSizes {
    address: usize,
    size: usize,
}

/// The spec's defaults when a node does not say.
const DEFAULT_CELLS: CellSizes = CellSizes {
    address: 2,
    size: 1,
};

fn read_cells(value: &[u8], offset: usize, cells: usize) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => be32(value, offset).map(u64::from),
        2 => be64(value, offset),
        _ => None, // wider than a physical address on this machine
    }
}

fn decode_regs(value: &[u8], cells: CellSizes, mut each: impl FnMut(Reg)) -> Option<()> {
    let entry = (cells.address + cells.size) * 4;
    if entry == 0 || !value.len().is_multiple_of(entry) {
        return None;
    }
    for chunk in value.chunks(entry) {
        let address = read_cells(chunk, 0, cells.address)?;
        let size = read_cells(chunk, cells.address * 4, cells.size)?;
        each(Reg { address, size });
    }
    Some(())
}

fn first_reg(value: &[u8], cells: CellSizes) -> Option<Reg> {
    let mut first = None;
    decode_regs(value, cells, |reg| {
        first.get_or_insert(reg);
    })?;
    first
}

fn cell_sizes(node: &FdtNode<'_, '_>) -> CellSizes {
    let mut cells = DEFAULT_CELLS;
    for prop in node.properties() {
        match prop.name {
            "#address-cells" => cells.address = be32(prop.value, 0).unwrap_or(2) as usize,
            "#size-cells" => cells.size = be32(prop.value, 0).unwrap_or(1) as usize,
            _ => {}
        }
    }
    cells
}

fn string_list(value: &[u8]) -> impl Iterator<Item = &str> {
    value
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| core::str::from_utf8(s).ok())
}

fn prop<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    node.properties().find(|p| p.name == name).map(|p| p.value)
}

fn is_compatible(node: &FdtNode<'_, '_>, with: &[&str]) -> bool {
    prop(node, "compatible").is_some_and(|v| string_list(v).any(|c| with.contains(&c)))
}

fn first_string(value: Option<&[u8]>) -> &str {
    value.and_then(|v| string_list(v).next()).unwrap_or("")
}

struct Walker<'f, 'a> {
    fdt: &'f Fdt<'a>,
    info: DeviceTreeInfo<'a>,
    stdout_path: &'a str,
    /// Whether the children being visited are those of `/cpus`.
    in_cpus: bool,
}

/// Where a node sits, as the walk sees it.
#[derive(Clone, Copy)]
struct Context {
    /// 0 for the root.
    depth: usize,
    /// Cell sizes of the parent, which the node's `reg` uses.
    cells: CellSizes,
    /// Phandle of the interrupt parent in effect.
    interrupt_parent: Option<u32>,
    /// A bus between the root and this node remaps addresses.
    translated: bool,
    /// The parent is `/reserved-memory`.
    in_reserved_memory: bool,
}

impl<'a> Walker<'_, 'a> {
    /// GIC interrupt IDs from an `interrupts` value. Only the GIC's
    /// three-cell form is understood.
    fn interrupts(&self, value: &[u8], parent: Option<u32>) -> Option<FixedList<u32, 4>> {
        let controller = self.fdt.find_phandle(parent?)?;
        if !is_compatible(&controller, &GIC_COMPATIBLE) {
            return None;
        }
        if prop(&controller, "#interrupt-cells").and_then(|v| be32(v, 0)) != Some(3) {
            return None;
        }
        if !value.len().is_multiple_of(12) {
            return None;
        }
        let mut list = FixedList::default();
        for spec in value.chunks(12) {
            let (kind, number) = (be32(spec, 0)?, be32(spec, 4)?);
            let id = match kind {
                0 => number.checked_add(32)?, // shared peripheral interrupt
                1 => number.checked_add(16)?, // private peripheral interrupt
                _ => return None,
            };
            list.push(id);
        }
        Some(list)
    }

    fn clock_hz(&self, node: &FdtNode<'_, 'a>) -> Option<u32> {
        let phandle = be32(prop(node, "clocks")?, 0)?;
        let clock = self.fdt.find_phandle(phandle)?;
        if !is_compatible(&clock, &["fixed-clock"]) {
            return None;
        }
        be32(prop(&clock, "clock-frequency")?, 0)
    }

    fn device(&self, node: &FdtNode<'_, 'a>, at: Context) -> Option<DeviceNode> {
        let reg = first_reg(prop(node, "reg")?, at.cells)?;
        let interrupts = match prop(node, "interrupts") {
            Some(value) => self.interrupts(value, at.interrupt_parent)?,
            None => FixedList::default(),
        };
        Some(DeviceNode {
            reg,
            interrupts,
            clock_hz: self.clock_hz(node),
        })
    }

    fn record_regs(&mut self, node: &FdtNode<'_, 'a>, at: Context, memory: bool) {
        let Some(value) = prop(node, "reg") else {
            return;
        };
        let info = &mut self.info;
        let decoded = decode_regs(value, at.cells, |reg| {
            if memory {
                info.memory.push(reg)
            } else {
                info.reserved.push(reg)
            }
        });
        if decoded.is_none() {
            info.skipped_nodes += 1;
        }
    }

    fn record_device(&mut self, node: &FdtNode<'_, 'a>, at: Context) {
        let kind = if is_compatible(node, &["arm,pl011"]) {
            Kind::Uart
        } else if is_compatible(node, &GIC_COMPATIBLE) {
            Kind::Gic
        } else if is_compatible(node, &["arm,sp804"]) {
            Kind::Sp804
        } else if is_compatible(node, &["arm,pl031"]) {
            Kind::Pl031
        } else if is_compatible(node, &["virtio,mmio"]) {
            Kind::VirtioMmio
        } else {
            return;
        };
        if at.translated {
            self.info.skipped_nodes += 1;
            return;
        }
        if kind == Kind::Gic {
            let mut regs = FixedList::<Reg, 2>::default();
            let gic = prop(node, "reg")
                .and_then(|v| decode_regs(v, at.cells, |r| regs.push(r)))
                .and_then(|()| match regs.as_slice() {
                    [distributor, cpu_interface, ..] => Some(Gic {
                        distributor: *distributor,
                        cpu_interface: *cpu_interface,
                    }),
                    _ => None,
                });
            match gic {
                Some(gic) => self.info.gic = self.info.gic.or(Some(gic)),
                None => self.info.skipped_nodes += 1,
            }
            return;
        }
        let Some(device) = self.device(node, at) else {
            self.info.skipped_nodes += 1;
            return;
        };
        let info = &mut self.info;
        match kind {
            Kind::Uart => {
                // The UART stdout-path names wins; otherwise the first one.
                let named = !self.stdout_path.is_empty()
                    && self.stdout_path.rsplit('/').next() == Some(node.name);
                if named || info.console_uart.is_none() {
                    info.console_uart = Some(device);
                }
            }
            Kind::Sp804 if info.sp804.is_none() => info.sp804 = Some(device),
            Kind::Sp804 => info.spare_sp804s.push(device),
            Kind::Pl031 => info.pl031 = info.pl031.or(Some(device)),
            Kind::VirtioMmio => info.virtio_mmio.push(device),
            Kind::Gic => {}
        }
    }

    fn visit(&mut self, node: FdtNode<'_, 'a>, at: Context) {
        let at = Context {
            interrupt_parent: prop(&node, "interrupt-parent")
                .and_then(|v| be32(v, 0))
                .or(at.interrupt_parent),
            ..at
        };
        let base_name = node.name.split('@').next().unwrap_or("");
        if at.depth == 0 {
            self.info.compatible = first_string(prop(&node, "compatible"));
            self.info.model = first_string(prop(&node, "model"));
        }
        if at.depth == 1 && base_name == "chosen" {
            let value = prop(&node, "bootargs").unwrap_or(b"");
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            self.info.bootargs = &value[..end];
        }
        if at.depth == 2
            && self.in_cpus
            && prop(&node, "device_type").is_some_and(|v| v == b"cpu\0")
        {
            self.info.cpus += 1;
        }
        let is_memory = prop(&node, "device_type").is_some_and(|v| v == b"memory\0");
        if !at.translated && (is_memory || at.in_reserved_memory) {
            self.record_regs(&node, at, is_memory);
        }
        self.record_device(&node, at);

        // Below the root, a missing or non-empty `ranges` means the node is
        // a bus that remaps its children's addresses; they are not decoded.
        let remaps = at.depth > 0 && prop(&node, "ranges").is_none_or(|r| !r.is_empty());
        let child = Context {
            depth: at.depth + 1,
            cells: cell_sizes(&node),
            interrupt_parent: at.interrupt_parent,
            translated: at.translated || remaps,
            in_reserved_memory: at.depth == 1 && base_name == "reserved-memory",
        };
        if child.depth < MAX_DEPTH {
            let in_cpus = self.in_cpus;
            self.in_cpus = at.depth == 1 && base_name == "cpus";
            for node in node.children() {
                self.visit(node, child);
            }
            self.in_cpus = in_cpus;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uart,
    Gic,
    Sp804,
    Pl031,
    VirtioMmio,
}

const GIC_COMPATIBLE: [&str; 3] = ["arm,cortex-a15-gic", "arm,cortex-a9-gic", "arm,gic-400"];

/// Validates `blob` and reads what the kernel needs from it.
pub fn parse(blob: &[u8]) -> Result<DeviceTreeInfo<'_>, DtbError> {
    let blob = validate(blob)?;
    let fdt = Fdt::new(blob).map_err(|_| DtbError::Truncated)?;
    let root = fdt
        .find_node("/")
        .ok_or(DtbError::Unbalanced { offset: 0 })?;
    let mut walker = Walker {
        fdt: &fdt,
        info: DeviceTreeInfo::default(),
        stdout_path: "",
        in_cpus: false,
    };
    // stdout-path must be known before the UARTs are visited.
    if let Some(chosen) = fdt.find_node("/chosen") {
        walker.stdout_path = first_string(prop(&chosen, "stdout-path"));
    }
    let top = Context {
        depth: 0,
        cells: DEFAULT_CELLS,
        interrupt_parent: None,
        translated: false,
        in_reserved_memory: false,
    };
    walker.visit(root, top);
    for reservation in reservations(blob) {
        walker.info.reserved.push(reservation);
    }
    Ok(walker.info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board;
    use vm_fdt::{FdtReserveEntry, FdtWriter};

    fn board_tree() -> Vec<u8> {
        board::device_tree(&board::TreeOptions::board(128 << 20, 1)).unwrap()
    }

    #[test]
    fn the_board_tree_reads_back_as_the_board() {
        let blob = board_tree();
        let info = parse(&blob).unwrap();
        assert_eq!(info.compatible, board::COMPATIBLE[0]);
        assert_eq!(info.model, "V2P-CA15");
        assert_eq!(
            info.memory.as_slice(),
            &[Reg {
                address: 0x8000_0000,
                size: 128 << 20
            }]
        );
        assert!(info.reserved.as_slice().is_empty());
        let uart = info.console_uart.unwrap();
        assert_eq!(
            uart.reg,
            Reg {
                address: board::UART0.base as u64,
                size: 0x1000
            }
        );
        assert_eq!(
            uart.interrupts.as_slice(),
            &[board::gic_id(board::UART0.spis[0])]
        );
        assert_eq!(uart.interrupts.as_slice(), &[37]);
        assert_eq!(uart.clock_hz, Some(board::UART_CLOCK_HZ));
        let gic = info.gic.unwrap();
        assert_eq!(gic.distributor.address, board::GIC_DISTRIBUTOR as u64);
        assert_eq!(gic.cpu_interface.address, board::GIC_CPU_INTERFACE as u64);
        assert_eq!(info.sp804.unwrap().interrupts.as_slice(), &[34]);
        let spare = info.spare_sp804s.as_slice();
        assert_eq!(spare.len(), 1);
        assert_eq!(spare[0].reg.address, board::SP804_TIMER23.base as u64);
        assert_eq!(spare[0].interrupts.as_slice(), &[35]);
        assert_eq!(info.sp804.unwrap().clock_hz, Some(board::TIMER_CLOCK_HZ));
        assert_eq!(info.pl031.unwrap().interrupts.as_slice(), &[36]);
        assert_eq!(info.bootargs, b"");
        assert_eq!(info.cpus, 1);
        assert_eq!(info.skipped_nodes, 0);
    }

    #[test]
    fn memory_must_be_described_once_and_not_empty() {
        let check = |memory: Vec<(u64, u64)>| {
            let options = board::TreeOptions {
                memory,
                reservations: Vec::new(),
                cpus: 1,
                bootargs: "",
            };
            let blob = board::device_tree(&options).unwrap();
            parse(&blob).unwrap().check_memory()
        };
        assert_eq!(check(vec![(0x8000_0000, 128 << 20)]), Ok(()));
        assert_eq!(
            check(vec![(0x8000_0000, 64 << 20), (0x9000_0000, 64 << 20)]),
            Ok(())
        );
        assert_eq!(check(vec![]), Err(MemoryError::NoMemoryNode));
        assert_eq!(
            check(vec![(0x8000_0000, 0)]),
            Err(MemoryError::EmptyRange {
                address: 0x8000_0000
            })
        );
        assert!(matches!(
            check(vec![(0x8000_0000, 128 << 20), (0x8400_0000, 128 << 20)]),
            Err(MemoryError::Overlap { .. })
        ));
    }

    #[test]
    fn board_trees_express_any_ram_size_and_cpu_count() {
        for ram in [128u64 << 20, 2 << 30, 4 << 30, 30 << 30] {
            let blob = board::device_tree(&board::TreeOptions::board(ram, 4)).unwrap();
            let info = parse(&blob).unwrap();
            assert_eq!(info.cpus, 4);
            assert_eq!(
                info.memory.as_slice(),
                &[Reg {
                    address: 0x8000_0000,
                    size: ram
                }],
                "{ram:#x} bytes"
            );
        }
        let hostile = board::TreeOptions {
            memory: Vec::new(),
            reservations: vec![(0x8001_0000, 0x1000)],
            cpus: 1,
            bootargs: "",
        };
        let blob = board::device_tree(&hostile).unwrap();
        let info = parse(&blob).unwrap();
        assert!(info.memory.as_slice().is_empty());
        assert_eq!(info.reserved.as_slice().len(), 1);
    }

    /// A tree shaped like the board's after QEMU's edits, plus extra parts.
    fn tree_with(extra: impl FnOnce(&mut FdtWriter), reservations: &[FdtReserveEntry]) -> Vec<u8> {
        let mut fdt = FdtWriter::new_with_mem_reserv(reservations).unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("#address-cells", 1).unwrap();
        fdt.property_u32("#size-cells", 1).unwrap();
        fdt.property_u32("interrupt-parent", 1).unwrap();
        let chosen = fdt.begin_node("chosen").unwrap();
        fdt.property_string("bootargs", "mode=test").unwrap();
        fdt.property_string("stdout-path", "/uart@1c0a0000")
            .unwrap();
        fdt.end_node(chosen).unwrap();
        let gic = fdt.begin_node("interrupt-controller@2c001000").unwrap();
        fdt.property_string("compatible", "arm,cortex-a9-gic")
            .unwrap();
        fdt.property_u32("#interrupt-cells", 3).unwrap();
        fdt.property_array_u32("reg", &[0x2c00_1000, 0x1000, 0x2c00_2000, 0x2000])
            .unwrap();
        fdt.property_phandle(1).unwrap();
        fdt.end_node(gic).unwrap();
        for (base, spi) in [(0x1c09_0000u32, 5u32), (0x1c0a_0000, 6)] {
            let uart = fdt.begin_node(&format!("uart@{base:x}")).unwrap();
            fdt.property_string("compatible", "arm,pl011").unwrap();
            fdt.property_array_u32("reg", &[base, 0x1000]).unwrap();
            fdt.property_array_u32("interrupts", &[0, spi, 4]).unwrap();
            fdt.end_node(uart).unwrap();
        }
        extra(&mut fdt);
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    }

    #[test]
    fn qemu_virtio_nodes_and_stdout_path_are_honoured() {
        let blob = tree_with(
            |fdt| {
                for i in 0..4u32 {
                    let base = board::VIRTIO_MMIO_BASE + i * board::VIRTIO_MMIO_STRIDE;
                    let node = fdt.begin_node(&format!("virtio_mmio@{base:x}")).unwrap();
                    fdt.property_string("compatible", "virtio,mmio").unwrap();
                    fdt.property_array_u32("reg", &[base, 0x200]).unwrap();
                    fdt.property_array_u32("interrupts", &[0, board::VIRTIO_MMIO_FIRST_SPI + i, 1])
                        .unwrap();
                    fdt.end_node(node).unwrap();
                }
            },
            &[],
        );
        let info = parse(&blob).unwrap();
        assert_eq!(info.bootargs, b"mode=test");
        assert_eq!(
            info.console_uart.unwrap().reg.address,
            0x1c0a_0000,
            "stdout-path wins"
        );
        let ids: Vec<u32> = info
            .virtio_mmio
            .as_slice()
            .iter()
            .map(|d| d.interrupts.as_slice()[0])
            .collect();
        assert_eq!(ids, [72, 73, 74, 75]);
    }

    #[test]
    fn reservations_come_from_the_block_and_reserved_memory() {
        let blob = tree_with(
            |fdt| {
                let reserved = fdt.begin_node("reserved-memory").unwrap();
                fdt.property_u32("#address-cells", 1).unwrap();
                fdt.property_u32("#size-cells", 1).unwrap();
                fdt.property_null("ranges").unwrap();
                let region = fdt.begin_node("firmware@8f000000").unwrap();
                fdt.property_array_u32("reg", &[0x8f00_0000, 0x10_0000])
                    .unwrap();
                fdt.end_node(region).unwrap();
                fdt.end_node(reserved).unwrap();
            },
            &[FdtReserveEntry::new(0x8800_0000, 0x1000).unwrap()],
        );
        let info = parse(&blob).unwrap();
        assert_eq!(
            info.reserved.as_slice(),
            &[
                Reg {
                    address: 0x8f00_0000,
                    size: 0x10_0000
                },
                Reg {
                    address: 0x8800_0000,
                    size: 0x1000
                }
            ]
        );
    }

    #[test]
    fn devices_behind_translating_buses_are_skipped_not_misread() {
        let blob = tree_with(
            |fdt| {
                let bus = fdt.begin_node("bus@8000000").unwrap();
                fdt.property_u32("#address-cells", 2).unwrap();
                fdt.property_u32("#size-cells", 1).unwrap();
                fdt.property_array_u32("ranges", &[0, 0, 0x0800_0000, 0x0400_0000])
                    .unwrap();
                let rtc = fdt.begin_node("rtc@0,170000").unwrap();
                fdt.property_string("compatible", "arm,pl031").unwrap();
                fdt.property_array_u32("reg", &[0, 0x17_0000, 0x1000])
                    .unwrap();
                fdt.end_node(rtc).unwrap();
                fdt.end_node(bus).unwrap();
                let simple = fdt.begin_node("simple-bus").unwrap();
                fdt.property_u32("#address-cells", 1).unwrap();
                fdt.property_u32("#size-cells", 1).unwrap();
                fdt.property_null("ranges").unwrap();
                let timer = fdt.begin_node("timer@1c110000").unwrap();
                fdt.property_string("compatible", "arm,sp804").unwrap();
                fdt.property_array_u32("reg", &[0x1c11_0000, 0x1000])
                    .unwrap();
                fdt.end_node(timer).unwrap();
                fdt.end_node(simple).unwrap();
            },
            &[],
        );
        let info = parse(&blob).unwrap();
        assert_eq!(info.pl031, None);
        assert_eq!(info.skipped_nodes, 1);
        assert_eq!(
            info.sp804.unwrap().reg.address,
            0x1c11_0000,
            "identity bus is decoded"
        );
    }

    #[test]
    fn sixty_four_bit_cells_are_not_truncated() {
        let mut fdt = FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 2).unwrap();
        let memory = fdt.begin_node("memory@880000000").unwrap();
        fdt.property_string("device_type", "memory").unwrap();
        fdt.property_array_u64("reg", &[0x8_8000_0000, 0x1_0000_0000])
            .unwrap();
        fdt.end_node(memory).unwrap();
        fdt.end_node(root).unwrap();
        let blob = fdt.finish().unwrap();
        let info = parse(&blob).unwrap();
        assert_eq!(
            info.memory.as_slice(),
            &[Reg {
                address: 0x8_8000_0000,
                size: 0x1_0000_0000
            }]
        );
    }

    /// Inserts NOP tokens before the structure token at `token_offset`
    /// (relative to the structure block), as QEMU's edits leave them.
    fn insert_nops(blob: &[u8], token_offset: usize, count: usize) -> Vec<u8> {
        let off_struct = be32(blob, 8).unwrap() as usize;
        let mut out = blob.to_vec();
        let at = off_struct + token_offset;
        let nops: Vec<u8> = (0..count).flat_map(|_| FDT_NOP.to_be_bytes()).collect();
        out.splice(at..at, nops);
        let grow = |out: &mut Vec<u8>, field: usize, by: usize| {
            let value = be32(out, field).unwrap() as usize + by;
            out[field..field + 4].copy_from_slice(&(value as u32).to_be_bytes());
        };
        grow(&mut out, 4, count * 4); // totalsize
        grow(&mut out, 36, count * 4); // size_dt_struct
        if be32(&out, 12).unwrap() as usize > off_struct {
            grow(&mut out, 12, count * 4); // strings after the structure
        }
        out
    }

    #[test]
    fn nops_are_refused_by_parse_and_removed_by_strip() {
        let good = board_tree();
        let expected = parse(&good).unwrap();
        // NOPs before the root's first property, and between its children
        // (find the /chosen node's BEGIN token to place them before it).
        let off_struct = be32(&good, 8).unwrap() as usize;
        let chosen = good[off_struct..]
            .windows(8)
            .position(|w| w == b"\0\0\0\x01chos")
            .unwrap();
        let with_nops = insert_nops(&insert_nops(&good, chosen, 16), 8, 3);
        assert!(matches!(parse(&with_nops), Err(DtbError::NopToken { .. })));

        let mut stripped = with_nops.clone();
        strip_nops(&mut stripped).unwrap();
        let info = parse(&stripped).unwrap();
        assert_eq!(info.memory, expected.memory);
        assert_eq!(info.console_uart, expected.console_uart);
        assert_eq!(info.gic, expected.gic);
        assert_eq!(
            used_size(&stripped),
            used_size(&good).map(|n| n + 19 * 4),
            "totalsize keeps the slack"
        );
        assert_eq!(
            be32(&stripped, 36),
            be32(&good, 36),
            "structure back to its size"
        );
    }

    fn put32(blob: &mut [u8], at: usize, value: u32) {
        blob[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    fn structure_offset(blob: &[u8]) -> usize {
        be32(blob, 8).unwrap() as usize
    }

    #[test]
    fn malformations_are_named() {
        let good = board_tree();
        let check = |mutate: &dyn Fn(&mut Vec<u8>), expected: fn(&DtbError) -> bool| {
            let mut blob = good.clone();
            mutate(&mut blob);
            let result = parse(&blob);
            assert!(
                matches!(&result, Err(e) if expected(e)),
                "{:?}",
                result.map(|_| ())
            );
        };
        check(&|b| b.truncate(20), |e| *e == DtbError::Truncated);
        check(&|b| put32(b, 0, 0x1234_5678), |e| {
            *e == DtbError::BadMagic(0x1234_5678)
        });
        check(
            &|b| {
                let n = b.len();
                b.truncate(n - 8)
            },
            |e| *e == DtbError::Truncated,
        );
        check(&|b| put32(b, 20, 16), |e| {
            *e == DtbError::UnsupportedVersion(16)
        });
        check(&|b| put32(b, 8, 0xffff_fff0), |e| {
            *e == DtbError::BadBlock("structure")
        });
        check(&|b| put32(b, 12, 0xffff_fff0), |e| {
            *e == DtbError::BadBlock("strings")
        });
        check(
            &|b| {
                let at = structure_offset(b);
                put32(b, at, 7)
            },
            |e| matches!(e, DtbError::BadToken { token: 7, .. }),
        );
        check(
            &|b| {
                let at = structure_offset(b);
                put32(b, at, FDT_END_NODE)
            },
            |e| matches!(e, DtbError::Unbalanced { .. }),
        );
        check(
            &|b| {
                let at = structure_offset(b);
                put32(b, at, FDT_NOP)
            },
            |e| matches!(e, DtbError::NopToken { .. }),
        );
        // The root's first property: make its length absurd, then its name offset.
        check(
            &|b| {
                let at = structure_offset(b) + 8;
                put32(b, at + 4, 0x7fff_ffff)
            },
            |e| matches!(e, DtbError::PropertyOutOfBounds { .. }),
        );
        check(
            &|b| {
                let at = structure_offset(b) + 8;
                put32(b, at + 8, 0x7fff_ffff)
            },
            |e| matches!(e, DtbError::BadName { .. }),
        );
    }

    #[test]
    fn excessive_nesting_and_bad_cell_counts_are_refused() {
        let mut fdt = FdtWriter::new().unwrap();
        let mut nodes = vec![fdt.begin_node("").unwrap()];
        for i in 0..MAX_DEPTH {
            nodes.push(fdt.begin_node(&format!("n{i}")).unwrap());
        }
        while let Some(node) = nodes.pop() {
            fdt.end_node(node).unwrap();
        }
        assert!(matches!(
            parse(&fdt.finish().unwrap()),
            Err(DtbError::TooDeep { .. })
        ));

        let mut fdt = FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("#address-cells", 0x4000_0000).unwrap();
        fdt.end_node(root).unwrap();
        assert!(matches!(
            parse(&fdt.finish().unwrap()),
            Err(DtbError::BadCellProperty { .. })
        ));
    }

    /// A board-like tree with words overwritten, tokens put in and its
    /// end cut where the input says: read or refused, never a panic.
    #[test]
    fn fuzz_device_tree() {
        let good = tree_with(
            |_| {},
            &[FdtReserveEntry::new(0x8800_0000, 0x1000).unwrap()],
        );
        bolero::check!()
            .with_type::<(Vec<(u16, u8)>, Vec<(u16, u8)>, Option<u16>)>()
            .for_each(|(bytes, tokens, cut)| {
                let mut blob = good.clone();
                let len = blob.len();
                for &(at, value) in bytes {
                    blob[at as usize % len] = value;
                }
                let tokens_list = [FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_END, FDT_NOP, 0];
                for &(at, token) in tokens {
                    let at = (at as usize % (len / 4)) * 4;
                    put32(
                        &mut blob,
                        at,
                        tokens_list[token as usize % tokens_list.len()],
                    );
                }
                if let Some(cut) = cut {
                    blob.truncate(*cut as usize % (len + 1));
                }
                let _ = strip_nops(&mut blob);
                let _ = validate(&blob);
                let _ = used_size(&blob);
                let _ = parse(&blob);
            });
    }

    #[test]
    fn random_corruption_is_reported_never_a_panic() {
        let good = tree_with(
            |_| {},
            &[FdtReserveEntry::new(0x8800_0000, 0x1000).unwrap()],
        );
        let mut rng = hal::rand::XorShift::new(0xdead_beef_cafe_f00d);
        let mut next = move || rng.next();
        let (mut accepted, mut refused) = (0, 0);
        // DTB_FUZZ_ROUNDS raises the count for a longer hunt.
        let rounds = std::env::var("DTB_FUZZ_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        for round in 0..rounds {
            let mut blob = good.clone();
            match round % 4 {
                0 => {
                    let at = (next() as usize) % blob.len();
                    blob[at] ^= 1 << (next() % 8);
                }
                1 => {
                    let at = (next() as usize) % blob.len();
                    blob[at] = next() as u8;
                }
                2 => {
                    let at = ((next() as usize) % (blob.len() / 4)) * 4;
                    let token = [FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_END, FDT_NOP, 0]
                        [(next() % 6) as usize];
                    put32(&mut blob, at, token);
                }
                _ => {
                    let len = (next() as usize) % blob.len();
                    blob.truncate(len);
                }
            }
            let result = std::panic::catch_unwind(move || {
                let mut blob = blob;
                let _ = strip_nops(&mut blob);
                parse(&blob).map(|i| i.memory.as_slice().len())
            });
            match result {
                Ok(Ok(_)) => accepted += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => panic!("parser panicked on round {round}"),
            }
        }
        // Both outcomes must actually occur, or the test is not testing much.
        assert!(
            accepted > 100 && refused > 100,
            "{accepted} accepted, {refused} refused"
        );
    }
}
