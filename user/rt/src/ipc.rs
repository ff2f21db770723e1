//! Capabilities and IPC, typed: endpoints, notifications and memory
//! objects as values
//! that own their capability (dropping one deletes it), messages as
//! structs. The raw calls are in [`crate::sys`] for tests of the kernel's
//! checks.

use crate::sys;
use abi::{Error, Handle, ObjectKind, Rights, Syscall};

/// A message: a label (at most `abi::LABEL_BITS` bits) and four words;
/// a received one also carries the badge of the capability it came
/// through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub label: usize,
    pub badge: usize,
    pub words: [usize; 4],
}

impl Message {
    /// A message to send.
    pub fn new(label: usize, words: [usize; 4]) -> Message {
        Message {
            label,
            badge: 0,
            words,
        }
    }

    /// This message, carrying the capability `handle` names (in place of
    /// the last word): moved to the receiver if `moved`, else copied.
    pub fn carrying(mut self, handle: Handle, moved: bool) -> Message {
        self.label |= abi::MESSAGE_CAP | if moved { abi::MESSAGE_CAP_MOVE } else { 0 };
        self.words[3] = handle as usize;
        self
    }

    /// This message, with a payload of `len` bytes from the start of the
    /// calling thread's [`IpcBuffer`].
    pub fn with_payload(mut self, len: usize) -> Message {
        self.label |= abi::MESSAGE_PAYLOAD;
        self.words[2] = len;
        self
    }

    /// The bytes of payload a received message left in this thread's
    /// [`IpcBuffer`] (`Some(0)`: it had one that could not be stored).
    pub fn payload(&self) -> Option<usize> {
        (self.label & abi::MESSAGE_PAYLOAD != 0).then_some(self.words[2])
    }

    /// The label, without the flags.
    pub fn plain_label(&self) -> usize {
        self.label & abi::LABEL_MASK
    }

    /// The capability a received message brought, now in this process's
    /// table.
    pub fn capability(&self) -> Option<Handle> {
        (self.label & abi::MESSAGE_CAP != 0).then_some(self.words[3] as Handle)
    }
}

fn received(result: Result<(usize, usize, [usize; 4]), Error>) -> Result<Message, Error> {
    result.map(|(label, badge, words)| Message {
        label,
        badge,
        words,
    })
}

/// What a capability is: its object's kind, its rights and its badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    pub kind: Option<ObjectKind>,
    pub rights: Rights,
    pub badge: usize,
    /// An endpoint nothing can receive on any more.
    pub peer_gone: bool,
}

/// Describes the capability `handle` names.
pub fn cap_info(handle: Handle) -> Result<CapInfo, Error> {
    let (word, badge) = sys::pair_call(Syscall::CapInfo, [handle as usize, 0, 0, 0, 0, 0])?;
    Ok(CapInfo {
        kind: ObjectKind::from_number(word as u32 & 0xff),
        rights: ((word & !abi::CAP_INFO_PEER_GONE) >> 8) as Rights,
        badge,
        peer_gone: word & abi::CAP_INFO_PEER_GONE != 0,
    })
}

/// Deletes the capability `handle` names.
pub fn cap_delete(handle: Handle) -> Result<(), Error> {
    sys::raw(
        Syscall::CapDelete as usize,
        [handle as usize, 0, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Copies the capability `handle` names with `rights` and `badge`.
pub fn cap_copy(handle: Handle, rights: Rights, badge: usize) -> Result<Handle, Error> {
    sys::raw(
        Syscall::CapCopy as usize,
        [handle as usize, rights as usize, badge, 0, 0, 0],
    )
    .map(|h| h as Handle)
}

/// Answers the last call this thread received.
pub fn reply(message: Message) -> Result<(), Error> {
    let [w0, w1, w2, w3] = message.words;
    sys::raw(Syscall::Reply as usize, [message.label, w0, w1, w2, w3, 0]).map(|_| ())
}

/// An endpoint capability.
#[derive(Debug)]
pub struct Endpoint(Handle);
owned_handle!(Endpoint);

impl Endpoint {
    /// A new endpoint, with every right.
    pub fn create() -> Result<Endpoint, Error> {
        sys::raw(Syscall::EndpointCreate as usize, [0; 6]).map(|h| Endpoint(h as Handle))
    }

    fn send_with(&self, message: Message, flags: usize) -> Result<(), Error> {
        let [w0, w1, w2, w3] = message.words;
        let info = message.label | flags;
        sys::raw(
            Syscall::Send as usize,
            [self.0 as usize, info, w0, w1, w2, w3],
        )
        .map(|_| ())
    }

    /// Sends, waiting for a receiver.
    pub fn send(&self, message: Message) -> Result<(), Error> {
        self.send_with(message, 0)
    }

    /// Sends only if a receiver waits (else `WouldBlock`).
    pub fn try_send(&self, message: Message) -> Result<(), Error> {
        self.send_with(message, abi::SEND_NONBLOCK)
    }

    /// Receives, waiting for a sender.
    pub fn recv(&self) -> Result<Message, Error> {
        received(sys::message_call(
            Syscall::Recv,
            [self.0 as usize, 0, 0, 0, 0, 0],
        ))
    }

    /// Receives only if a sender waits (else `WouldBlock`).
    pub fn try_recv(&self) -> Result<Message, Error> {
        received(sys::message_call(
            Syscall::Recv,
            [self.0 as usize, abi::RECV_NONBLOCK, 0, 0, 0, 0],
        ))
    }

    /// Sends and waits for the reply.
    pub fn call(&self, message: Message) -> Result<Message, Error> {
        let [w0, w1, w2, w3] = message.words;
        received(sys::message_call(
            Syscall::Call,
            [self.0 as usize, message.label, w0, w1, w2, w3],
        ))
    }

    /// Replies to the pending call (if any), then receives.
    pub fn reply_recv(&self, reply: Message) -> Result<Message, Error> {
        let [w0, w1, w2, w3] = reply.words;
        received(sys::message_call(
            Syscall::ReplyRecv,
            [self.0 as usize, reply.label, w0, w1, w2, w3],
        ))
    }

    /// A server's loop: answers each message received with `answer` until
    /// receiving fails, and returns why. A reply that cannot go (its
    /// caller died meanwhile) is dropped, and the next message served.
    pub fn serve(&self, mut answer: impl FnMut(&Message) -> Message) -> Error {
        let mut request = match self.recv() {
            Ok(request) => request,
            Err(error) => return error,
        };
        loop {
            let reply = answer(&request);
            request = match self.reply_recv(reply).or_else(|_| self.recv()) {
                Ok(next) => next,
                Err(error) => return error,
            };
        }
    }
}

/// A notification capability.
#[derive(Debug)]
pub struct Notification(Handle);
owned_handle!(Notification);

impl Notification {
    /// A new notification, with every right and no bits set.
    pub fn create() -> Result<Notification, Error> {
        sys::raw(Syscall::NotificationCreate as usize, [0; 6]).map(|h| Notification(h as Handle))
    }

    /// Sets `bits`.
    pub fn signal(&self, bits: usize) -> Result<(), Error> {
        sys::raw(
            Syscall::Signal as usize,
            [self.0 as usize, bits, 0, 0, 0, 0],
        )
        .map(|_| ())
    }

    /// Waits for bits, and takes them.
    pub fn wait(&self) -> Result<usize, Error> {
        sys::pair_call(Syscall::NotificationWait, [self.0 as usize, 0, 0, 0, 0, 0]).map(|(_, b)| b)
    }

    /// Binds this notification to the calling thread: its signals end the
    /// thread's waits to receive on endpoints, which return a message
    /// labelled `abi::NOTIFIED` with the bits as its badge.
    pub fn bind(&self) -> Result<(), Error> {
        sys::raw(
            Syscall::NotificationBind as usize,
            [self.0 as usize, 0, 0, 0, 0, 0],
        )
        .map(|_| ())
    }

    /// Takes the bits set (0 if none) without waiting.
    pub fn poll(&self) -> Result<usize, Error> {
        sys::pair_call(Syscall::NotificationPoll, [self.0 as usize, 0, 0, 0, 0, 0]).map(|(_, b)| b)
    }
}

/// A memory object capability: frames other processes can map too.
#[derive(Debug)]
pub struct Memory(Handle);
owned_handle!(Memory);

/// Where a memory object is mapped in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub address: usize,
    pub len: usize,
}

impl Memory {
    /// A zeroed memory object of `size` bytes (rounded up to pages);
    /// physically contiguous if `contiguous`.
    pub fn create(size: usize, contiguous: bool) -> Result<Memory, Error> {
        let flags = if contiguous {
            abi::MEMORY_CONTIGUOUS
        } else {
            0
        };
        sys::raw(Syscall::MemoryCreate as usize, [size, flags, 0, 0, 0, 0])
            .map(|h| Memory(h as Handle))
    }

    /// Maps the whole object anywhere in the anonymous window, writable if
    /// asked; the mapping's length is the object's size, as the kernel
    /// tells it.
    pub fn map(&self, writable: bool) -> Result<Mapping, Error> {
        let protection = abi::PROT_READ | if writable { abi::PROT_WRITE } else { 0 };
        sys::pair_call(
            Syscall::MemoryMap,
            [self.0 as usize, 0, protection, 0, 0, 0],
        )
        .map(|(address, len)| Mapping { address, len })
    }

    /// Where a contiguous object lies in physical memory.
    pub fn physical(&self) -> Result<u64, Error> {
        sys::pair_call(Syscall::MemoryPhysical, [self.0 as usize, 0, 0, 0, 0, 0])
            .map(|(low, high)| (low as u64 & 0xffff_ffff) | (high as u64) << 32)
    }
}

/// Removes the mapping of a memory object starting at `address`.
pub fn memory_unmap(address: usize) -> Result<(), Error> {
    sys::raw(Syscall::MemoryUnmap as usize, [address, 0, 0, 0, 0, 0]).map(|_| ())
}

/// Unbinds the calling thread's notification.
pub fn unbind() -> Result<(), Error> {
    sys::raw(Syscall::NotificationBind as usize, [0; 6]).map(|_| ())
}

/// A thread's IPC buffer: a page the kernel reads payloads to send from
/// and writes received ones to. Registered for the calling thread; every
/// `IpcBuffer` a thread holds is the same page (a thread has one), so a
/// name-service client and a block client on one thread do not unregister
/// each other's. Each reads a reply's payload before its next call.
#[derive(Debug)]
pub struct IpcBuffer {
    address: usize,
    /// Not `Send`: dropping it unregisters the calling thread's buffer.
    _thread: core::marker::PhantomData<*const ()>,
}

/// The registered buffers: thread id, page, holders.
static BUFFERS: spin::Mutex<alloc::vec::Vec<(u32, usize, usize)>> =
    spin::Mutex::new(alloc::vec::Vec::new());

impl IpcBuffer {
    /// The calling thread's IPC buffer: a page mapped and registered the
    /// first time, shared by later holders on the same thread.
    pub fn register() -> Result<IpcBuffer, Error> {
        let thread = sys::thread_id();
        let mut buffers = BUFFERS.lock();
        if let Some(entry) = buffers.iter_mut().find(|(t, _, _)| *t == thread) {
            entry.2 += 1;
            return Ok(IpcBuffer {
                address: entry.1,
                _thread: core::marker::PhantomData,
            });
        }
        let address = sys::map(0, abi::MAX_PAYLOAD, abi::PROT_READ | abi::PROT_WRITE)?;
        if let Err(e) = sys::raw(Syscall::IpcBuffer as usize, [address, 0, 0, 0, 0, 0]) {
            let _ = sys::unmap(address, abi::MAX_PAYLOAD);
            return Err(e);
        }
        buffers.push((thread, address, 1));
        Ok(IpcBuffer {
            address,
            _thread: core::marker::PhantomData,
        })
    }

    /// The page.
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the page was mapped for this buffer, readable and
        // writable, and only the kernel (between system calls) writes it
        // otherwise.
        unsafe { core::slice::from_raw_parts_mut(self.address as *mut u8, abi::MAX_PAYLOAD) }
    }
}

impl Drop for IpcBuffer {
    fn drop(&mut self) {
        let mut buffers = BUFFERS.lock();
        let Some(index) = buffers.iter().position(|e| e.1 == self.address) else {
            return;
        };
        buffers[index].2 -= 1;
        if buffers[index].2 == 0 {
            buffers.swap_remove(index);
            let _ = sys::raw(Syscall::IpcBuffer as usize, [0; 6]);
            let _ = sys::unmap(self.address, abi::MAX_PAYLOAD);
        }
    }
}

/// Bounds the calling thread's IPC waits (`send`, `recv`, `call`,
/// `reply_recv`, notification waits): one that lasts longer fails with
/// [`Error::TimedOut`]. `None` waits for ever (the default).
pub fn set_timeout(timeout: Option<core::time::Duration>) -> Result<(), Error> {
    let ns = timeout.map_or(0, |t| (t.as_nanos() as u64).max(1));
    sys::raw(
        Syscall::IpcTimeout as usize,
        [ns as u32 as usize, (ns >> 32) as usize, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Why a request to a server failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure<E> {
    /// The message could not be exchanged (say, `PeerDied`: the server is
    /// gone).
    Ipc(Error),
    /// The server refused or failed the request.
    Refused(E),
}

impl<E> From<Error> for Failure<E> {
    fn from(error: Error) -> Failure<E> {
        Failure::Ipc(error)
    }
}

impl<E: core::fmt::Display> core::fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Failure::Ipc(error) => write!(f, "{error}"),
            Failure::Refused(error) => write!(f, "{error}"),
        }
    }
}
