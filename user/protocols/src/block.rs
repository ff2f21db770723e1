//! The block service (`blk`): a disk of 512-byte sectors.
//!
//! Bulk data never travels in messages. A client makes a physically
//! contiguous memory object (its buffer) and attaches it with
//! [`ATTACH`], carrying the capability; the reply carries a capability to
//! the server badged for that client's session, through which it sends
//! every further request. Reads and writes name sectors and an offset
//! into the buffer, and the device moves the data to or from the buffer
//! itself. A request is answered only once the device has completed it.
//!
//! Requests (label, then the four words):
//! - [`INFO`]: replies with the capacity in sectors (words 0 and 1, low
//!   and high halves), the most sectors one request may move (word 2)
//!   and [`READ_ONLY`] in word 3 for a read-only disk;
//! - [`ATTACH`] carrying the buffer: replies carrying the session's
//!   capability, with the buffer's size in word 0;
//! - [`READ`] and [`WRITE`]: the first sector (words 0 and 1), the count
//!   (word 2) and the byte offset into the buffer (word 3);
//! - [`FLUSH`]: replies once every completed write is durable;
//! - [`CLOSE`]: ends the session; the server lets go of the buffer.
//!
//! The reply's label is a status ([`crate::status`]) over [`Error`].

use crate::ProtocolError;

/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;

/// What the durability check (a guest writing sectors, the host reading
/// the image after killing the machine) writes in sector `number` of run
/// `run`: a tag, the run, the number, then a fill that differs from
/// sector to sector, so that no sector of another run or another number
/// can pass for it.
/// Where the durability check's sectors start (2 MiB into the disk,
/// clear of the sectors the other checks use).
pub const CHECK_FIRST_SECTOR: u64 = 4096;

pub fn check_sector(run: u64, number: u32) -> [u8; SECTOR_SIZE] {
    let mut sector = [0u8; SECTOR_SIZE];
    sector[..8].copy_from_slice(b"FERRITE!");
    sector[8..16].copy_from_slice(&run.to_le_bytes());
    sector[16..20].copy_from_slice(&number.to_le_bytes());
    for (i, byte) in sector[20..].iter_mut().enumerate() {
        *byte = (run as u8) ^ (number as u8).wrapping_mul(7) ^ i as u8;
    }
    sector
}
/// The most sectors one read or write moves (128 KiB).
pub const MAX_SECTORS: usize = 256;

pub const INFO: usize = 1;
pub const ATTACH: usize = 2;
pub const READ: usize = 3;
pub const WRITE: usize = 4;
pub const FLUSH: usize = 5;
pub const CLOSE: usize = 6;

/// [`INFO`]'s word 3: the disk refuses writes.
pub const READ_ONLY: usize = 1;

/// Why the server refused or failed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The label is no request, or its words are malformed.
    BadRequest = 1,
    /// The sectors lie (partly) beyond the disk's end.
    OutOfRange = 2,
    /// The buffer offset is not a multiple of the sector size.
    Misaligned = 3,
    /// More than [`MAX_SECTORS`], or none.
    BadLength = 4,
    /// The sectors do not fit in the attached buffer.
    OutsideBuffer = 5,
    /// The request came without a session: attach a buffer first.
    NotAttached = 6,
    /// The buffer is not a contiguous memory object the server can map.
    BadBuffer = 7,
    /// The server has no room for another session.
    TooManySessions = 8,
    /// The disk is read-only.
    ReadOnly = 9,
    /// The device reported an error.
    DeviceFailed = 10,
}

impl ProtocolError for Error {
    const ALL: &'static [Error] = &[
        Error::BadRequest,
        Error::OutOfRange,
        Error::Misaligned,
        Error::BadLength,
        Error::OutsideBuffer,
        Error::NotAttached,
        Error::BadBuffer,
        Error::TooManySessions,
        Error::ReadOnly,
        Error::DeviceFailed,
    ];
    const UNKNOWN: Error = Error::DeviceFailed;
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::BadRequest => "not a block request",
            Error::OutOfRange => "sectors beyond the end of the disk",
            Error::Misaligned => "buffer offset not a multiple of the sector size",
            Error::BadLength => "no sectors, or more than one request may move",
            Error::OutsideBuffer => "the sectors do not fit in the buffer",
            Error::NotAttached => "no buffer attached",
            Error::BadBuffer => "the buffer is not contiguous memory the server can map",
            Error::TooManySessions => "no room for another session",
            Error::ReadOnly => "the disk is read-only",
            Error::DeviceFailed => "the device reported an error",
        })
    }
}

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// A request, decoded (an attach's capability travels beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Info,
    Attach,
    Transfer {
        direction: Direction,
        sector: u64,
        count: usize,
        offset: usize,
    },
    Flush,
    Close,
}

impl Request {
    /// The label and words that carry the request.
    pub fn encode(self) -> (usize, [usize; 4]) {
        match self {
            Request::Info => (INFO, [0; 4]),
            Request::Attach => (ATTACH, [0; 4]),
            Request::Flush => (FLUSH, [0; 4]),
            Request::Close => (CLOSE, [0; 4]),
            Request::Transfer {
                direction,
                sector,
                count,
                offset,
            } => {
                let label = match direction {
                    Direction::Read => READ,
                    Direction::Write => WRITE,
                };
                (
                    label,
                    [
                        sector as u32 as usize,
                        (sector >> 32) as usize,
                        count,
                        offset,
                    ],
                )
            }
        }
    }

    /// The request a message's label and words carry.
    pub fn decode(label: usize, words: [usize; 4]) -> Result<Request, Error> {
        let direction = match label & abi::LABEL_MASK {
            INFO => return Ok(Request::Info),
            ATTACH => return Ok(Request::Attach),
            FLUSH => return Ok(Request::Flush),
            CLOSE => return Ok(Request::Close),
            READ => Direction::Read,
            WRITE => Direction::Write,
            _ => return Err(Error::BadRequest),
        };
        let (low, high) = (words[0] as u64, words[1] as u64);
        if low > u64::from(u32::MAX) || high > u64::from(u32::MAX) {
            return Err(Error::BadRequest);
        }
        Ok(Request::Transfer {
            direction,
            sector: high << 32 | low,
            count: words[2],
            offset: words[3],
        })
    }
}

/// What a disk and a session's buffer allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sectors on the disk.
    pub capacity: u64,
    /// Bytes of the session's buffer.
    pub buffer: usize,
    pub read_only: bool,
}

/// Checks a transfer against the disk and the buffer; returns the byte
/// range of the buffer it moves.
pub fn check_transfer(
    limits: &Limits,
    direction: Direction,
    sector: u64,
    count: usize,
    offset: usize,
) -> Result<core::ops::Range<usize>, Error> {
    if count == 0 || count > MAX_SECTORS {
        return Err(Error::BadLength);
    }
    let end = sector.checked_add(count as u64).ok_or(Error::OutOfRange)?;
    if end > limits.capacity {
        return Err(Error::OutOfRange);
    }
    if !offset.is_multiple_of(SECTOR_SIZE) {
        return Err(Error::Misaligned);
    }
    let bytes = count * SECTOR_SIZE;
    let buffer_end = offset.checked_add(bytes).ok_or(Error::OutsideBuffer)?;
    if buffer_end > limits.buffer {
        return Err(Error::OutsideBuffer);
    }
    if direction == Direction::Write && limits.read_only {
        return Err(Error::ReadOnly);
    }
    Ok(offset..buffer_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISK: Limits = Limits {
        capacity: 8192,
        buffer: 64 * 1024,
        read_only: false,
    };

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Info,
            Request::Attach,
            Request::Flush,
            Request::Close,
            Request::Transfer {
                direction: Direction::Read,
                sector: 0x1_2345_6789,
                count: 8,
                offset: 4096,
            },
            Request::Transfer {
                direction: Direction::Write,
                sector: 7,
                count: 1,
                offset: 0,
            },
        ];
        for request in requests {
            let (label, words) = request.encode();
            assert_eq!(Request::decode(label, words), Ok(request));
        }
        assert_eq!(Request::decode(0, [0; 4]), Err(Error::BadRequest));
        assert_eq!(Request::decode(77, [0; 4]), Err(Error::BadRequest));
    }

    #[test]
    fn a_sector_half_wider_than_32_bits_is_malformed() {
        if usize::BITS > 32 {
            assert_eq!(
                Request::decode(READ, [1 << 32, 0, 1, 0]),
                Err(Error::BadRequest)
            );
        }
    }

    #[test]
    fn transfers_within_the_disk_and_buffer_pass() {
        assert_eq!(
            check_transfer(&DISK, Direction::Read, 0, 128, 0),
            Ok(0..64 * 1024)
        );
        assert_eq!(
            check_transfer(&DISK, Direction::Write, 8191, 1, 512),
            Ok(512..1024)
        );
    }

    #[test]
    fn each_bad_transfer_gets_its_error() {
        let check = |direction, sector, count, offset| {
            check_transfer(&DISK, direction, sector, count, offset).err()
        };
        let read = Direction::Read;
        assert_eq!(check(read, 0, 0, 0), Some(Error::BadLength));
        assert_eq!(check(read, 0, MAX_SECTORS + 1, 0), Some(Error::BadLength));
        assert_eq!(check(read, 8190, 4, 0), Some(Error::OutOfRange));
        assert_eq!(check(read, u64::MAX, 1, 0), Some(Error::OutOfRange));
        assert_eq!(check(read, 0, 1, 100), Some(Error::Misaligned));
        assert_eq!(
            check(read, 0, 2, 63 * 1024 + 512),
            Some(Error::OutsideBuffer)
        );
        assert_eq!(
            check(read, 0, 1, usize::MAX - 511),
            Some(Error::OutsideBuffer)
        );
        let read_only = Limits {
            read_only: true,
            ..DISK
        };
        assert_eq!(
            check_transfer(&read_only, Direction::Write, 0, 1, 0),
            Err(Error::ReadOnly)
        );
        assert!(check_transfer(&read_only, read, 0, 1, 0).is_ok());
    }

    #[test]
    fn errors_round_trip_through_statuses() {
        for &error in Error::ALL {
            assert_eq!(
                crate::result::<Error>(crate::status(Err(error))),
                Err(error)
            );
            assert_eq!(crate::status(Err(error)), error as usize);
        }
    }

    #[test]
    fn check_sectors_name_their_run_and_number() {
        let sector = check_sector(77, 5);
        assert_eq!(&sector[..8], b"FERRITE!");
        assert_eq!(sector, check_sector(77, 5), "the same every time");
        for other in [check_sector(78, 5), check_sector(77, 6), [0; SECTOR_SIZE]] {
            assert_ne!(sector, other);
        }
    }
}
