//! The IPC protocols of Ferrite's servers, defined once for clients and
//! servers: each module gives a protocol's labels, how a request and its
//! reply sit in a message's label and four words, and its errors. Pure
//! data and logic, tested on the host; the client calls are in the
//! runtime (`rt`), the servers under `user/programs`.
//!
//! Every reply's label is a status: 0 for success, otherwise the number
//! of the protocol's error (see [`status`] and [`result`]).

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod block;
pub mod console;
pub mod driver;
pub mod net;
pub mod rng;
pub mod supervisor;
pub mod virtio;

/// A protocol's error: a number (never 0) in a reply's label.
pub trait ProtocolError: Copy + PartialEq + 'static {
    /// Every error, in number order from 1.
    const ALL: &'static [Self];
    /// The error a reply label with an unknown number stands for.
    const UNKNOWN: Self;
}

impl ProtocolError for abi::Error {
    const ALL: &'static [Self] = &abi::Error::ALL;
    const UNKNOWN: Self = abi::Error::InvalidArgument;
}

/// The reply label for `result`: 0, or the error's number.
pub fn status<E: ProtocolError>(result: Result<(), E>) -> usize {
    match result {
        Ok(()) => 0,
        Err(error) => {
            // Every error is in `ALL`; were one missing, the unknown
            // number still says "failed".
            let index = E::ALL.iter().position(|&e| e == error);
            index.map_or(abi::LABEL_MASK, |i| i + 1)
        }
    }
}

/// What a reply's label says (flags above the label bits ignored).
pub fn result<E: ProtocolError>(label: usize) -> Result<(), E> {
    match label & abi::LABEL_MASK {
        0 => Ok(()),
        n => Err(E::ALL.get(n - 1).copied().unwrap_or(E::UNKNOWN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_every_kernel_error() {
        assert_eq!(status::<abi::Error>(Ok(())), 0);
        assert_eq!(result::<abi::Error>(0), Ok(()));
        for &error in abi::Error::ALL.iter() {
            assert_eq!(status(Err(error)), error as usize);
            assert_eq!(result::<abi::Error>(status(Err(error))), Err(error));
        }
    }

    #[test]
    fn an_unknown_number_is_the_protocols_unknown_error() {
        assert_eq!(
            result::<abi::Error>(abi::LABEL_MASK),
            Err(abi::Error::InvalidArgument)
        );
        assert_eq!(
            result::<abi::Error>(abi::NOTIFIED | 5),
            Err(abi::Error::NotFound)
        );
    }
}

/// Fuzzing every request decoder with arbitrary labels, words and text:
/// decoded or refused, never a panic, and what is decoded encodes back to
/// itself.
#[cfg(test)]
mod fuzz {
    /// Arbitrary labels and words through `decode`: what decodes encodes
    /// back to itself.
    fn requests_round_trip<R, E>(
        decode: fn(usize, [usize; 4]) -> Result<R, E>,
        encode: fn(R) -> (usize, [usize; 4]),
    ) where
        R: Copy + PartialEq + core::fmt::Debug,
        E: PartialEq + core::fmt::Debug,
    {
        bolero::check!()
            .with_type::<(usize, [usize; 4])>()
            .for_each(|&(label, words)| {
                if let Ok(request) = decode(label, words) {
                    let (label, words) = encode(request);
                    assert_eq!(decode(label, words), Ok(request));
                }
            });
    }

    #[test]
    fn fuzz_block_requests() {
        requests_round_trip(crate::block::Request::decode, crate::block::Request::encode);
    }

    #[test]
    fn fuzz_rng_requests() {
        requests_round_trip(crate::rng::Request::decode, crate::rng::Request::encode);
    }

    #[test]
    fn fuzz_console_reads() {
        bolero::check!()
            .with_type::<(usize, [usize; 4])>()
            .for_each(|&(label, words)| {
                if let Ok(len) = crate::console::read_length(label, words) {
                    assert!(len <= abi::MAX_PAYLOAD);
                }
            });
    }

    #[test]
    fn fuzz_driver_arguments() {
        bolero::check!().with_type::<String>().for_each(|text| {
            if let Some(args) = crate::driver::DriverArgs::parse(text) {
                let again = crate::driver::DriverArgs::parse(&args.to_string());
                assert_eq!(again.as_ref(), Some(&args), "{text:?}");
            }
        });
    }

    #[test]
    fn fuzz_service_records() {
        bolero::check!().for_each(|bytes: &[u8]| {
            if let Some(record) = crate::supervisor::ServiceRecord::decode(bytes) {
                let again = crate::supervisor::ServiceRecord::decode(&record.encode());
                assert_eq!(again, Some(record));
            }
        });
    }
}
