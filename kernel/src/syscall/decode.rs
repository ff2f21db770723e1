//! Decoding: from a call number and six registers to a typed [`Call`],
//! with every check that needs nothing but the arguments. What remains
//! (the caller's memory, its rights, the state of the system) is checked
//! where the call is performed. Pure, so it is tested on the host.

use super::UserBuffer;
use crate::task::Message;
use abi::{Error, Handle, InfoKind, Rights, Syscall};
use hal::mm::{MapFlags, PAGE_SIZE};

/// A decoded system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Call {
    ProcessId,
    ThreadId,
    Exit(i32),
    ThreadExit,
    /// A buffer of at most [`abi::MAX_WRITE_LENGTH`] bytes.
    Write(UserBuffer),
    Read(UserBuffer),
    Yield,
    Sleep {
        ns: u64,
    },
    Time,
    ThreadSpawn {
        entry: usize,
        stack_top: usize,
        argument: usize,
    },
    Map(MapRequest),
    /// A page-aligned range in the anonymous-memory window.
    Unmap {
        start: usize,
        end: usize,
    },
    /// A name of 1 to [`abi::MAX_NAME_LENGTH`] bytes and at most
    /// [`abi::MAX_ARGUMENTS_LENGTH`] bytes of arguments.
    /// `handles`: at most [`abi::MAX_SPAWN_HANDLES`] of them.
    /// `quota`: the first handle names the child's quota (there is one).
    Spawn {
        name: UserBuffer,
        arguments: UserBuffer,
        handles: UserBuffer,
        quota: bool,
    },
    /// Any child; `status` `None` discards it.
    Wait {
        status: Option<UserBuffer>,
    },
    Info {
        kind: InfoKind,
        buffer: UserBuffer,
    },
    PowerOff {
        control: Handle,
        status: u8,
    },
    SetPriority {
        priority: usize,
        control: Option<Handle>,
    },
    EndpointCreate,
    NotificationCreate,
    CapCopy {
        handle: Handle,
        rights: Rights,
        badge: usize,
    },
    CapDelete {
        handle: Handle,
    },
    CapInfo {
        handle: Handle,
    },
    /// A label of at most [`abi::LABEL_BITS`] bits (so for every message),
    /// with [`abi::MESSAGE_CAP`] when `transfer` is given.
    Send {
        handle: Handle,
        message: Message,
        transfer: Option<CapSend>,
        nonblocking: bool,
    },
    Recv {
        handle: Handle,
        nonblocking: bool,
    },
    /// `call`: a send that waits for the reply.
    Invoke {
        handle: Handle,
        message: Message,
        transfer: Option<CapSend>,
    },
    Reply {
        message: Message,
        transfer: Option<CapSend>,
    },
    ReplyRecv {
        handle: Handle,
        message: Message,
        transfer: Option<CapSend>,
    },
    Signal {
        handle: Handle,
        bits: usize,
    },
    NotificationWait {
        handle: Handle,
    },
    NotificationPoll {
        handle: Handle,
    },
    /// A size of 1 to [`abi::MAX_MEMORY_OBJECT_BYTES`] bytes.
    MemoryCreate {
        size: usize,
        contiguous: bool,
    },
    /// `start`, if given, page-aligned and in the anonymous window.
    MemoryMap {
        handle: Handle,
        start: Option<usize>,
        writable: bool,
    },
    MemoryUnmap {
        start: usize,
    },
    MemoryPhysical {
        handle: Handle,
    },
    /// `None` unbinds.
    NotificationBind {
        handle: Option<Handle>,
    },
    /// `as_fault`: `KILL_AS_FAULT` was given.
    ProcessKill {
        handle: Handle,
        as_fault: bool,
    },
    /// A page-aligned address, or 0.
    IpcBuffer {
        address: usize,
    },
    /// `bits` not 0.
    IrqClaim {
        control: Handle,
        irq: usize,
        notification: Handle,
        bits: usize,
    },
    IrqAck {
        handle: Handle,
    },
    /// `offset` page-aligned, `size` not 0 (the range is checked against
    /// the capability's).
    MemoryDevice {
        handle: Handle,
        offset: usize,
        size: usize,
    },
    /// `width` 1, 2 or 4.
    PortIn {
        handle: Handle,
        port: usize,
        width: usize,
    },
    PortOut {
        handle: Handle,
        port: usize,
        width: usize,
        value: u32,
    },
    IpcTimeout {
        ns: u64,
    },
    ThreadSetPriority {
        handle: Handle,
        priority: usize,
        control: Option<Handle>,
    },
    /// `status` `None` discards it.
    ProcessWait {
        handle: Handle,
        status: Option<UserBuffer>,
    },
    QuotaSplit {
        handle: Handle,
        pages: usize,
    },
    QuotaInfo {
        handle: Handle,
    },
    /// `bits` is not 0.
    ProcessWatch {
        process: Handle,
        notification: Handle,
        bits: usize,
    },
}

/// Anonymous memory to map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MapRequest {
    /// Where, page-aligned and in the anonymous window; `None` lets the
    /// kernel choose.
    pub start: Option<usize>,
    /// Bytes, a non-zero multiple of the page size.
    pub len: usize,
    pub flags: MapFlags,
}

/// Decodes call `number` with arguments `a`, for a caller whose user space
/// ends at `user_end`.
#[inline(always)]
pub(super) fn decode(number: usize, a: [usize; 6], user_end: usize) -> Result<Call, Error> {
    let call = Syscall::from_number(number).ok_or(Error::UnknownSyscall)?;
    Ok(match call {
        Syscall::ProcessId => Call::ProcessId,
        Syscall::ThreadId => Call::ThreadId,
        Syscall::Exit => Call::Exit(a[0] as i32),
        Syscall::ThreadExit => Call::ThreadExit,
        Syscall::Write => {
            if a[1] > abi::MAX_WRITE_LENGTH {
                return Err(Error::TooLong);
            }
            Call::Write(UserBuffer::new(a[0], a[1]))
        }
        Syscall::Read => Call::Read(UserBuffer::new(a[0], a[1])),
        Syscall::Yield => Call::Yield,
        Syscall::Sleep => Call::Sleep {
            ns: nanoseconds(a[0], a[1]),
        },
        Syscall::IpcTimeout => Call::IpcTimeout {
            ns: nanoseconds(a[0], a[1]),
        },
        Syscall::Time => Call::Time,
        Syscall::ThreadSpawn => Call::ThreadSpawn {
            entry: a[0],
            stack_top: a[1],
            argument: a[2],
        },
        Syscall::Map => {
            let (len, flags) = anonymous_request(a[1], a[2])?;
            let start = match a[0] {
                0 => None,
                start => Some(anonymous_range(start, len, user_end)?.0),
            };
            Call::Map(MapRequest { start, len, flags })
        }
        Syscall::Unmap => {
            let (len, _) = anonymous_request(a[1], abi::PROT_READ)?;
            let (start, end) = anonymous_range(a[0], len, user_end)?;
            Call::Unmap { start, end }
        }
        Syscall::Spawn => {
            let (name, arguments, flags) = (
                UserBuffer::new(a[0], a[1]),
                UserBuffer::new(a[2], a[3]),
                a[4],
            );
            let count = (flags >> abi::SPAWN_HANDLES_SHIFT) & 0xf;
            let known = 0xf << abi::SPAWN_HANDLES_SHIFT | abi::SPAWN_QUOTA;
            let quota = flags & abi::SPAWN_QUOTA != 0;
            if name.len == 0
                || flags & !known != 0
                || count > abi::MAX_SPAWN_HANDLES
                || (quota && count == 0)
            {
                return Err(Error::InvalidArgument);
            }
            if name.len > abi::MAX_NAME_LENGTH || arguments.len > abi::MAX_ARGUMENTS_LENGTH {
                return Err(Error::TooLong);
            }
            Call::Spawn {
                name,
                arguments,
                handles: UserBuffer::new(a[5], count * size_of::<Handle>()),
                quota,
            }
        }
        Syscall::Wait => Call::Wait {
            status: wait_status(a[0]),
        },
        Syscall::Info => Call::Info {
            kind: InfoKind::from_number(a[0]).ok_or(Error::InvalidArgument)?,
            buffer: UserBuffer::new(a[1], a[2]),
        },
        Syscall::PowerOff => Call::PowerOff {
            control: handle(a[0])?,
            status: a[1] as u8,
        },
        Syscall::SetPriority => Call::SetPriority {
            priority: a[0],
            control: optional_handle(a[1])?,
        },
        Syscall::ThreadSetPriority => Call::ThreadSetPriority {
            handle: handle(a[0])?,
            priority: a[1],
            control: optional_handle(a[2])?,
        },
        Syscall::ProcessWait => Call::ProcessWait {
            handle: handle(a[0])?,
            status: wait_status(a[1]),
        },
        Syscall::QuotaSplit => Call::QuotaSplit {
            handle: handle(a[0])?,
            pages: a[1],
        },
        Syscall::QuotaInfo => Call::QuotaInfo {
            handle: handle(a[0])?,
        },
        Syscall::ProcessWatch => Call::ProcessWatch {
            process: handle(a[0])?,
            notification: handle(a[1])?,
            bits: match a[2] {
                0 => return Err(Error::InvalidArgument),
                bits => bits,
            },
        },
        Syscall::EndpointCreate => Call::EndpointCreate,
        Syscall::NotificationCreate => Call::NotificationCreate,
        Syscall::CapCopy => Call::CapCopy {
            handle: handle(a[0])?,
            rights: Rights::try_from(a[1]).map_err(|_| Error::InvalidArgument)?,
            badge: a[2],
        },
        Syscall::CapDelete => Call::CapDelete {
            handle: handle(a[0])?,
        },
        Syscall::CapInfo => Call::CapInfo {
            handle: handle(a[0])?,
        },
        Syscall::Send => {
            let (message, transfer) =
                outgoing(a[1] & !abi::SEND_NONBLOCK, [a[2], a[3], a[4], a[5]])?;
            Call::Send {
                handle: handle(a[0])?,
                message,
                transfer,
                nonblocking: a[1] & abi::SEND_NONBLOCK != 0,
            }
        }
        Syscall::Recv => {
            if a[1] & !abi::RECV_NONBLOCK != 0 {
                return Err(Error::InvalidArgument);
            }
            Call::Recv {
                handle: handle(a[0])?,
                nonblocking: a[1] & abi::RECV_NONBLOCK != 0,
            }
        }
        Syscall::Call => {
            let (message, transfer) = outgoing(a[1], [a[2], a[3], a[4], a[5]])?;
            Call::Invoke {
                handle: handle(a[0])?,
                message,
                transfer,
            }
        }
        Syscall::Reply => {
            let (message, transfer) = outgoing(a[0], [a[1], a[2], a[3], a[4]])?;
            Call::Reply { message, transfer }
        }
        Syscall::ReplyRecv => {
            let (message, transfer) = outgoing(a[1], [a[2], a[3], a[4], a[5]])?;
            Call::ReplyRecv {
                handle: handle(a[0])?,
                message,
                transfer,
            }
        }
        Syscall::Signal => Call::Signal {
            handle: handle(a[0])?,
            bits: a[1],
        },
        Syscall::NotificationWait => Call::NotificationWait {
            handle: handle(a[0])?,
        },
        Syscall::NotificationPoll => Call::NotificationPoll {
            handle: handle(a[0])?,
        },
        Syscall::MemoryCreate => {
            if a[1] & !abi::MEMORY_CONTIGUOUS != 0 || a[0] == 0 {
                return Err(Error::InvalidArgument);
            }
            if a[0] > abi::MAX_MEMORY_OBJECT_BYTES {
                return Err(Error::TooLong);
            }
            Call::MemoryCreate {
                size: a[0],
                contiguous: a[1] & abi::MEMORY_CONTIGUOUS != 0,
            }
        }
        Syscall::MemoryMap => {
            if a[2] & !(abi::PROT_READ | abi::PROT_WRITE) != 0 {
                return Err(Error::InvalidArgument);
            }
            Call::MemoryMap {
                handle: handle(a[0])?,
                start: match a[1] {
                    0 => None,
                    start => Some(anonymous_range(start, PAGE_SIZE, user_end)?.0),
                },
                writable: a[2] & abi::PROT_WRITE != 0,
            }
        }
        Syscall::MemoryUnmap => Call::MemoryUnmap {
            start: anonymous_range(a[0], PAGE_SIZE, user_end)?.0,
        },
        Syscall::MemoryPhysical => Call::MemoryPhysical {
            handle: handle(a[0])?,
        },
        Syscall::IpcBuffer => {
            if !a[0].is_multiple_of(PAGE_SIZE) {
                return Err(Error::InvalidArgument);
            }
            Call::IpcBuffer { address: a[0] }
        }
        Syscall::ProcessKill => Call::ProcessKill {
            handle: handle(a[0])?,
            as_fault: match a[1] {
                0 => false,
                abi::KILL_AS_FAULT => true,
                _ => return Err(Error::InvalidArgument),
            },
        },
        Syscall::NotificationBind => Call::NotificationBind {
            handle: match a[0] {
                0 => None,
                value => Some(handle(value)?),
            },
        },
        Syscall::IrqClaim => {
            let (control, notification) = (handle(a[0])?, handle(a[2])?);
            if a[3] == 0 {
                return Err(Error::InvalidArgument);
            }
            Call::IrqClaim {
                control,
                irq: a[1],
                notification,
                bits: a[3],
            }
        }
        Syscall::IrqAck => Call::IrqAck {
            handle: handle(a[0])?,
        },
        Syscall::MemoryDevice => {
            let handle = handle(a[0])?;
            if !a[1].is_multiple_of(PAGE_SIZE) || a[2] == 0 {
                return Err(Error::InvalidArgument);
            }
            Call::MemoryDevice {
                handle,
                offset: a[1],
                size: a[2],
            }
        }
        Syscall::PortIn | Syscall::PortOut => {
            let handle = handle(a[0])?;
            if !matches!(a[2], 1 | 2 | 4) {
                return Err(Error::InvalidArgument);
            }
            match call {
                Syscall::PortIn => Call::PortIn {
                    handle,
                    port: a[1],
                    width: a[2],
                },
                _ => Call::PortOut {
                    handle,
                    port: a[1],
                    width: a[2],
                    value: a[3] as u32,
                },
            }
        }
    })
}

/// A count of nanoseconds passed in two halves.
fn nanoseconds(low: usize, high: usize) -> u64 {
    (low as u64 & 0xffff_ffff) | ((high as u64) << 32)
}

/// Where a wait's status goes; a null address means the caller does not
/// want it.
fn wait_status(address: usize) -> Option<UserBuffer> {
    (address != 0).then(|| UserBuffer::new(address, size_of::<abi::WaitStatus>()))
}

/// A handle, or 0 for none.
fn optional_handle(value: usize) -> Result<Option<Handle>, Error> {
    match value {
        0 => Ok(None),
        value => handle(value).map(Some),
    }
}

/// A handle fits 32 bits; a wider value names no capability.
fn handle(value: usize) -> Result<Handle, Error> {
    Handle::try_from(value).map_err(|_| Error::InvalidHandle)
}

/// A message to send from its info word (a label that fits its bits, and
/// the capability flags) and words; the capability it carries, named in
/// `w3`, travels apart.
fn outgoing(info: usize, words: [usize; 4]) -> Result<(Message, Option<CapSend>), Error> {
    let flags = abi::MESSAGE_CAP | abi::MESSAGE_CAP_MOVE | abi::MESSAGE_PAYLOAD;
    if info & !(abi::LABEL_MASK | flags) != 0
        || (info & abi::MESSAGE_CAP_MOVE != 0 && info & abi::MESSAGE_CAP == 0)
    {
        return Err(Error::InvalidArgument);
    }
    if info & abi::MESSAGE_PAYLOAD != 0 && words[2] > abi::MAX_PAYLOAD {
        return Err(Error::TooLong);
    }
    let transfer = match info & abi::MESSAGE_CAP {
        0 => None,
        _ => Some(CapSend {
            handle: handle(words[3])?,
            moved: info & abi::MESSAGE_CAP_MOVE != 0,
        }),
    };
    let [w0, w1, w2, w3] = words;
    let message = Message {
        label: info & (abi::LABEL_MASK | abi::MESSAGE_CAP | abi::MESSAGE_PAYLOAD),
        badge: 0,
        words: [w0, w1, w2, if transfer.is_some() { 0 } else { w3 }],
    };
    Ok((message, transfer))
}

/// A capability a message carries: its handle in the sender's table, and
/// whether it moves (else it is copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CapSend {
    pub handle: Handle,
    pub moved: bool,
}

/// The page-rounded length and mapping flags of a `map` request.
fn anonymous_request(len: usize, protection: usize) -> Result<(usize, MapFlags), Error> {
    if protection & !(abi::PROT_READ | abi::PROT_WRITE) != 0 || len == 0 {
        return Err(Error::InvalidArgument);
    }
    let len = len
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Error::InvalidArgument)?;
    let flags = if protection & abi::PROT_WRITE != 0 {
        MapFlags::USER_RW
    } else {
        MapFlags::USER_RO
    };
    Ok((len, flags))
}

/// Checks that `[start, start + len)` is page-aligned and inside the
/// anonymous-memory window; returns the range.
fn anonymous_range(start: usize, len: usize, user_end: usize) -> Result<(usize, usize), Error> {
    let end = start.checked_add(len).ok_or(Error::InvalidArgument)?;
    if !start.is_multiple_of(PAGE_SIZE) || start < abi::layout::ANON_START || end > user_end {
        return Err(Error::InvalidArgument);
    }
    Ok((start, end))
}
