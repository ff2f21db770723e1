//! The random-number service (`rng`): random bytes from a device's
//! entropy source.
//!
//! A request is a `call` with the label [`READ`] and the number of bytes
//! wanted (1 to [`MAX_READ`]) in the first word. The reply's label is a
//! status ([`crate::status`]) over [`Error`] and its payload the bytes,
//! read from the device for this request: never cached, never repeated.

use crate::ProtocolError;

/// Reads random bytes.
pub const READ: usize = 1;
/// The most bytes one request returns (a message's whole payload).
pub const MAX_READ: usize = abi::MAX_PAYLOAD;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The label is no request, or the length is out of range.
    BadRequest = 1,
    /// The device reported an error or returned nothing.
    DeviceFailed = 2,
}

impl ProtocolError for Error {
    const ALL: &'static [Error] = &[Error::BadRequest, Error::DeviceFailed];
    const UNKNOWN: Error = Error::DeviceFailed;
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::BadRequest => "not an rng request",
            Error::DeviceFailed => "the device failed",
        })
    }
}

/// A request, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Read { len: usize },
}

impl Request {
    /// The label and words that carry the request.
    pub fn encode(self) -> (usize, [usize; 4]) {
        match self {
            Request::Read { len } => (READ, [len, 0, 0, 0]),
        }
    }

    /// The request a message carries.
    pub fn decode(label: usize, words: [usize; 4]) -> Result<Request, Error> {
        match label & abi::LABEL_MASK {
            READ if (1..=MAX_READ).contains(&words[0]) => Ok(Request::Read { len: words[0] }),
            _ => Err(Error::BadRequest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_round_trip_and_bad_lengths_are_refused() {
        let (label, words) = Request::Read { len: 32 }.encode();
        assert_eq!(Request::decode(label, words), Ok(Request::Read { len: 32 }));
        for len in [0, MAX_READ + 1, usize::MAX] {
            assert_eq!(
                Request::decode(READ, [len, 0, 0, 0]),
                Err(Error::BadRequest)
            );
        }
        assert_eq!(Request::decode(99, [1, 0, 0, 0]), Err(Error::BadRequest));
    }
}
