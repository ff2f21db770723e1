//! A string in a fixed-size buffer, for formatting where no heap exists.

use core::fmt;

/// Up to `N` bytes of UTF-8 text; further writes are cut at a character
/// boundary and marked with `…`.
#[derive(Clone)]
pub struct FixedString<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> FixedString<N> {
    /// An empty string.
    pub const fn new() -> Self {
        FixedString {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// Formats `args` into a new string.
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Self {
        let mut s = Self::new();
        let _ = fmt::write(&mut s, args);
        s
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so this cannot fail.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Whether some text did not fit.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl<const N: usize> Default for FixedString<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedString<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        let room = N - self.len;
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        if take < text.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Display for FixedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for FixedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_truncates_at_char_boundaries() {
        let s = FixedString::<8>::from_fmt(format_args!("{}-{}", 12, "ab"));
        assert_eq!(s.as_str(), "12-ab");
        assert!(!s.is_truncated());
        let s = FixedString::<4>::from_fmt(format_args!("aé€b"));
        assert_eq!(s.as_str(), "aé");
        assert!(s.is_truncated());
        assert_eq!(s.to_string(), "aé…");
    }
}
