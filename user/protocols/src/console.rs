//! The console service: the serial console, owned by its driver in user
//! space. Output and input are two services, each served by a thread of
//! the driver, so a reader waiting for a key never holds up a writer:
//! - [`OUTPUT`] (`console`): [`WRITE`] with the bytes as the payload;
//!   replies once they are on their way out;
//! - [`INPUT`] (`console-input`): [`READ`] with the most bytes wanted
//!   (1 to `abi::MAX_PAYLOAD`) in word 0; replies, once at least one byte
//!   has arrived, with what has (in order, none lost) as the payload.
//!
//! The reply's label is a status ([`crate::status`]) over [`Error`].

use crate::ProtocolError;

pub const OUTPUT: &str = "console";
pub const INPUT: &str = "console-input";

pub const WRITE: usize = 1;
pub const READ: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The label is no request, or the length is out of range.
    BadRequest = 1,
}

impl ProtocolError for Error {
    const ALL: &'static [Error] = &[Error::BadRequest];
    const UNKNOWN: Error = Error::BadRequest;
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("not a console request")
    }
}

/// How many bytes a read asks for, if the request is a well-formed one.
pub fn read_length(label: usize, words: [usize; 4]) -> Result<usize, Error> {
    match (label & abi::LABEL_MASK, words[0]) {
        (READ, len @ 1..=abi::MAX_PAYLOAD) => Ok(len),
        _ => Err(Error::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ask_for_one_byte_to_a_payload() {
        assert_eq!(read_length(READ, [1, 0, 0, 0]), Ok(1));
        assert_eq!(
            read_length(READ, [abi::MAX_PAYLOAD, 0, 0, 0]),
            Ok(abi::MAX_PAYLOAD)
        );
        assert_eq!(read_length(READ, [0, 0, 0, 0]), Err(Error::BadRequest));
        assert_eq!(
            read_length(READ, [abi::MAX_PAYLOAD + 1, 0, 0, 0]),
            Err(Error::BadRequest)
        );
        assert_eq!(read_length(WRITE, [1, 0, 0, 0]), Err(Error::BadRequest));
    }
}
