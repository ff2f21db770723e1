//! What every ACPI system description table shares: a checksum over its
//! bytes (the byte at offset 9 makes them sum to zero).

/// Whether `table`'s bytes sum to zero, as a sound table's do.
pub fn sums_to_zero(table: &[u8]) -> bool {
    table.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

/// Sets the checksum byte so that `table` sums to zero (for tests that
/// build tables).
#[cfg(test)]
pub fn fix_checksum(table: &mut [u8]) {
    table[9] = 0;
    let sum = table.iter().fold(0u8, |sum, b| sum.wrapping_add(*b));
    table[9] = 0u8.wrapping_sub(sum);
}

/// `table` with the bytes `edits` name overwritten (positions wrap), its
/// checksum fixed if `fix`: what the tables' fuzz targets parse.
#[cfg(test)]
pub fn edited(table: &[u8], edits: &[(u16, u8)], fix: bool) -> std::vec::Vec<u8> {
    let mut copy = table.to_vec();
    for &(at, value) in edits {
        let len = copy.len();
        copy[at as usize % len] = value;
    }
    if fix {
        fix_checksum(&mut copy);
    }
    copy
}
