//! The network-interface service (`net`): Ethernet frames in and out of a
//! NIC. Both NIC drivers (VirtIO and the E1000) serve it, so the network
//! stack runs over either.
//!
//! Requests (label, then the four words; frames travel as payloads):
//! - [`INFO`]: replies with the MAC address (words 0 and 1: its first four
//!   bytes and its last two, little-endian) and the largest frame (word 2);
//! - [`SUBSCRIBE`] carrying a notification: the driver sets [`RX_BIT`] in
//!   it whenever frames are waiting (one subscriber; a later one replaces
//!   it);
//! - [`SEND`] with a frame (14 to [`MAX_FRAME`] bytes, no checksum):
//!   replies once the device has taken it;
//! - [`RECEIVE`]: replies with the oldest waiting frame as the payload
//!   and how many more wait in word 0, or [`Error::NoFrame`];
//! - [`STATS`]: frames received, frames sent, frames dropped for want of
//!   room (words 0 to 2).
//!
//! The reply's label is a status ([`crate::status`]) over [`Error`].

use crate::ProtocolError;

pub const INFO: usize = 1;
pub const SUBSCRIBE: usize = 2;
pub const SEND: usize = 3;
pub const RECEIVE: usize = 4;
pub const STATS: usize = 5;

/// The notification bit that says frames are waiting.
pub const RX_BIT: usize = 1;
/// The largest frame: an Ethernet header and 1500 bytes.
pub const MAX_FRAME: usize = 1514;
/// The smallest: an Ethernet header.
pub const MIN_FRAME: usize = 14;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The label is no request, or a frame's size is out of range.
    BadRequest = 1,
    /// No frame is waiting.
    NoFrame = 2,
    /// The device failed or has no room to send.
    DeviceFailed = 3,
}

impl ProtocolError for Error {
    const ALL: &'static [Error] = &[Error::BadRequest, Error::NoFrame, Error::DeviceFailed];
    const UNKNOWN: Error = Error::DeviceFailed;
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::BadRequest => "not a network request",
            Error::NoFrame => "no frame waiting",
            Error::DeviceFailed => "the device failed",
        })
    }
}

/// The words that carry a MAC address.
pub fn mac_words(mac: [u8; 6]) -> [usize; 2] {
    [
        u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]) as usize,
        u16::from_le_bytes([mac[4], mac[5]]) as usize,
    ]
}

/// The MAC address two words carry.
pub fn mac_from_words(words: [usize; 2]) -> [u8; 6] {
    let low = (words[0] as u32).to_le_bytes();
    let high = (words[1] as u16).to_le_bytes();
    [low[0], low[1], low[2], low[3], high[0], high[1]]
}

/// Whether a frame of `len` bytes may be sent.
pub fn frame_size_ok(len: usize) -> bool {
    (MIN_FRAME..=MAX_FRAME).contains(&len)
}

/// The counters [`STATS`] replies with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: usize,
    pub sent: usize,
    pub dropped: usize,
}

impl Stats {
    pub fn words(&self) -> [usize; 4] {
        [self.received, self.sent, self.dropped, 0]
    }

    pub fn from_words(words: [usize; 4]) -> Stats {
        Stats {
            received: words[0],
            sent: words[1],
            dropped: words[2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_round_trip() {
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        assert_eq!(mac_from_words(mac_words(mac)), mac);
    }

    #[test]
    fn frame_sizes_are_bounded() {
        assert!(!frame_size_ok(13));
        assert!(frame_size_ok(14));
        assert!(frame_size_ok(MAX_FRAME));
        assert!(!frame_size_ok(MAX_FRAME + 1));
    }

    #[test]
    fn stats_round_trip() {
        let stats = Stats {
            received: 3,
            sent: 5,
            dropped: 1,
        };
        assert_eq!(Stats::from_words(stats.words()), stats);
    }
}
