//! The contract between Ferrite and its user programs.
//!
//! Everything a system call passes across the user/kernel boundary is
//! defined here once: call numbers, error codes, the records the kernel
//! writes into user memory, and the fixed addresses of a program's image
//! and stack. The kernel and the user runtime both build this crate, so
//! they cannot disagree; `docs/syscalls.md` describes it for people.
//!
//! Registers: see [`CALLING_CONVENTIONS`]. Calls that deliver a message
//! also return its four words in the message registers.

#![no_std]

pub mod layout;

use core::fmt;

/// System call numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Syscall {
    /// `exit(code)`: ends the calling process with `code`. Never returns.
    Exit = 0,
    /// `write(buffer, length) -> written`: writes bytes to the console.
    Write = 1,
    /// `read(buffer, capacity) -> count`: reads console input, waiting
    /// until at least one byte has arrived (while the kernel owns it).
    Read = 2,
    /// `yield()`: lets other ready threads of the same or higher priority
    /// run.
    Yield = 3,
    /// `sleep(ns_low, ns_high)`: waits for at least that many nanoseconds.
    Sleep = 4,
    /// `time() -> (ns_low, ns_high)`: nanoseconds on the monotonic clock.
    Time = 5,
    /// `thread_spawn(entry, stack_top, argument) -> (thread id, handle)`:
    /// starts a thread in the calling process at `entry(argument)`.
    ThreadSpawn = 6,
    /// `thread_exit()`: ends the calling thread; the process ends with
    /// status 0 when its last thread does. Never returns.
    ThreadExit = 7,
    /// `map(address, length, protection) -> address`: maps zeroed
    /// anonymous memory; address 0 lets the kernel choose.
    Map = 8,
    /// `unmap(address, length)`: removes anonymous memory mapped by `map`.
    Unmap = 9,
    /// `spawn(name, name_length, arguments, arguments_length, flags) -> pid`:
    /// starts a program from the boot archive in a new process.
    Spawn = 10,
    /// `wait(status) -> pid`: waits until any child has ended and writes
    /// its [`WaitStatus`] (a child in particular: `process_wait`).
    Wait = 11,
    /// `process_id() -> pid`: the calling process's id.
    ProcessId = 12,
    /// `info(kind, buffer, capacity) -> length`: writes system information
    /// records ([`InfoKind`]) into the buffer.
    Info = 13,
    /// `power_off(control, status)`: ends the machine; needs a control
    /// capability with [`RIGHT_POWER_OFF`].
    PowerOff = 14,
    /// `thread_id() -> tid`: the calling thread's id.
    ThreadId = 15,
    /// `set_priority(priority, control)`: sets the calling thread's
    /// priority, 0 (lowest) to 7; above 4, the default, needs a control
    /// capability with [`RIGHT_RAISE_PRIORITY`].
    SetPriority = 16,
    /// `endpoint_create() -> handle`: a new endpoint, with every right.
    EndpointCreate = 17,
    /// `notification_create() -> handle`: a new notification, with every
    /// right.
    NotificationCreate = 18,
    /// `cap_copy(handle, rights, badge) -> handle`: a second capability to
    /// the same object with at most the same rights.
    CapCopy = 19,
    /// `cap_delete(handle)`: removes a capability from the caller's table.
    CapDelete = 20,
    /// `cap_info(handle) -> (kind | rights << 8 | CAP_INFO_PEER_GONE,
    /// badge)`.
    CapInfo = 21,
    /// `send(endpoint, info, w0, w1, w2, w3)`: sends a message.
    Send = 22,
    /// `recv(endpoint, flags) -> message`: receives one.
    Recv = 23,
    /// `call(endpoint, info, w0, w1, w2, w3) -> message`: sends and waits
    /// for the reply.
    Call = 24,
    /// `reply(info, w0, w1, w2, w3)`: answers the last call received.
    Reply = 25,
    /// `reply_recv(endpoint, info, w0, w1, w2, w3) -> message`: replies
    /// (if a call is pending), then receives.
    ReplyRecv = 26,
    /// `signal(notification, bits)`: sets bits in a notification.
    Signal = 27,
    /// `notification_wait(notification) -> bits`: waits for bits.
    NotificationWait = 28,
    /// `notification_poll(notification) -> bits`: takes bits, if any.
    NotificationPoll = 29,
    /// `memory_create(size, flags) -> handle`: a memory object.
    MemoryCreate = 30,
    /// `memory_map(memory, address, protection) -> (address, bytes)`: maps
    /// one.
    MemoryMap = 31,
    /// `memory_unmap(address)`: removes a memory object's mapping.
    MemoryUnmap = 32,
    /// `memory_physical(memory) -> (low, high)`: where a contiguous one is.
    MemoryPhysical = 33,
    /// `notification_bind(notification)`: binds one to the calling thread.
    NotificationBind = 34,
    /// `process_kill(process)`: ends a process.
    ProcessKill = 35,
    /// `ipc_buffer(address)`: registers the calling thread's IPC buffer.
    IpcBuffer = 36,
    /// `irq_claim(irq_control, irq, notification, bits) -> handle`: binds a
    /// device interrupt line to a notification.
    IrqClaim = 37,
    /// `irq_ack(irq)`: unmasks a claimed line after its interrupt.
    IrqAck = 38,
    /// `memory_device(device_memory, offset, size) -> handle`: a memory
    /// object over device registers.
    MemoryDevice = 39,
    /// `port_in(io_ports, port, width) -> value`: reads an I/O port.
    PortIn = 40,
    /// `port_out(io_ports, port, width, value)`: writes an I/O port.
    PortOut = 41,
    /// `ipc_timeout(ns_low, ns_high)`: bounds the calling thread's IPC
    /// waits.
    IpcTimeout = 42,
    /// `thread_set_priority(thread, priority, control)`: sets a thread's
    /// priority through its handle.
    ThreadSetPriority = 43,
    /// `process_wait(process, status) -> pid`: waits for a child through
    /// its handle.
    ProcessWait = 44,
    /// `quota_split(quota, pages) -> handle`: a quota taken from another.
    QuotaSplit = 45,
    /// `quota_info(quota) -> (limit, used)`: a quota's budget and use.
    QuotaInfo = 46,
    /// `process_watch(process, notification, bits)`: signals the
    /// notification when the process ends.
    ProcessWatch = 47,
}

impl Syscall {
    /// Every call, in number order.
    pub const ALL: [Syscall; 48] = [
        Syscall::Exit,
        Syscall::Write,
        Syscall::Read,
        Syscall::Yield,
        Syscall::Sleep,
        Syscall::Time,
        Syscall::ThreadSpawn,
        Syscall::ThreadExit,
        Syscall::Map,
        Syscall::Unmap,
        Syscall::Spawn,
        Syscall::Wait,
        Syscall::ProcessId,
        Syscall::Info,
        Syscall::PowerOff,
        Syscall::ThreadId,
        Syscall::SetPriority,
        Syscall::EndpointCreate,
        Syscall::NotificationCreate,
        Syscall::CapCopy,
        Syscall::CapDelete,
        Syscall::CapInfo,
        Syscall::Send,
        Syscall::Recv,
        Syscall::Call,
        Syscall::Reply,
        Syscall::ReplyRecv,
        Syscall::Signal,
        Syscall::NotificationWait,
        Syscall::NotificationPoll,
        Syscall::MemoryCreate,
        Syscall::MemoryMap,
        Syscall::MemoryUnmap,
        Syscall::MemoryPhysical,
        Syscall::NotificationBind,
        Syscall::ProcessKill,
        Syscall::IpcBuffer,
        Syscall::IrqClaim,
        Syscall::IrqAck,
        Syscall::MemoryDevice,
        Syscall::PortIn,
        Syscall::PortOut,
        Syscall::IpcTimeout,
        Syscall::ThreadSetPriority,
        Syscall::ProcessWait,
        Syscall::QuotaSplit,
        Syscall::QuotaInfo,
        Syscall::ProcessWatch,
    ];

    /// The call with number `number`.
    pub fn from_number(number: usize) -> Option<Syscall> {
        Syscall::ALL.get(number).copied()
    }
}

/// How one system call is used, for documentation (rendered into
/// `docs/syscalls.md` by `cargo xtask docs`).
#[derive(Clone, Copy, Debug)]
pub struct CallSpec {
    /// The call's arguments, in register order.
    pub arguments: &'static [&'static str],
    /// What it returns in the first (and second) result register.
    pub returns: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The errors it can return.
    pub errors: &'static [Error],
}

impl Syscall {
    /// The call's name in documentation and the runtime.
    pub const fn name(self) -> &'static str {
        match self {
            Syscall::Exit => "exit",
            Syscall::Write => "write",
            Syscall::Read => "read",
            Syscall::Yield => "yield",
            Syscall::Sleep => "sleep",
            Syscall::Time => "time",
            Syscall::ThreadSpawn => "thread_spawn",
            Syscall::ThreadExit => "thread_exit",
            Syscall::Map => "map",
            Syscall::Unmap => "unmap",
            Syscall::Spawn => "spawn",
            Syscall::Wait => "wait",
            Syscall::ProcessId => "process_id",
            Syscall::Info => "info",
            Syscall::PowerOff => "power_off",
            Syscall::ThreadId => "thread_id",
            Syscall::SetPriority => "set_priority",
            Syscall::EndpointCreate => "endpoint_create",
            Syscall::NotificationCreate => "notification_create",
            Syscall::CapCopy => "cap_copy",
            Syscall::CapDelete => "cap_delete",
            Syscall::CapInfo => "cap_info",
            Syscall::Send => "send",
            Syscall::Recv => "recv",
            Syscall::Call => "call",
            Syscall::Reply => "reply",
            Syscall::ReplyRecv => "reply_recv",
            Syscall::Signal => "signal",
            Syscall::NotificationWait => "notification_wait",
            Syscall::NotificationPoll => "notification_poll",
            Syscall::MemoryCreate => "memory_create",
            Syscall::MemoryMap => "memory_map",
            Syscall::MemoryUnmap => "memory_unmap",
            Syscall::MemoryPhysical => "memory_physical",
            Syscall::NotificationBind => "notification_bind",
            Syscall::ProcessKill => "process_kill",
            Syscall::IpcBuffer => "ipc_buffer",
            Syscall::IrqClaim => "irq_claim",
            Syscall::IrqAck => "irq_ack",
            Syscall::MemoryDevice => "memory_device",
            Syscall::PortIn => "port_in",
            Syscall::PortOut => "port_out",
            Syscall::IpcTimeout => "ipc_timeout",
            Syscall::ThreadSetPriority => "thread_set_priority",
            Syscall::ProcessWait => "process_wait",
            Syscall::QuotaSplit => "quota_split",
            Syscall::QuotaInfo => "quota_info",
            Syscall::ProcessWatch => "process_watch",
        }
    }

    /// How the call is used.
    pub const fn spec(self) -> CallSpec {
        use Error::*;
        let (arguments, returns, description, errors): (&[&str], &str, &str, &[Error]) = match self
        {
            Syscall::Exit => (
                &["status: i32"],
                "does not return",
                "Ends the calling process with `status`; its other threads end too.",
                &[],
            ),
            Syscall::Write => (
                &["buffer", "length"],
                "bytes written (all of them)",
                "Writes the buffer to the console; `\\n` is sent as CR LF. The whole buffer is checked before any of it is written.",
                &[BadAddress, TooLong],
            ),
            Syscall::Read => (
                &["buffer", "capacity"],
                "bytes read (at least 1 unless capacity is 0)",
                "Reads console input, waiting until at least one byte has arrived. Only while the kernel owns console input (its own tests); once init runs, the console driver owns it (`uart16550` or `pl011` in the device list) and this is `NotFound`: input comes from the console service.",
                &[BadAddress, NotFound],
            ),
            Syscall::Yield => (
                &[],
                "0",
                "Lets other ready threads of the same or higher priority run.",
                &[],
            ),
            Syscall::Sleep => (
                &["ns_low: u32", "ns_high: u32"],
                "0",
                "Waits at least `ns_high << 32 | ns_low` nanoseconds (0 yields).",
                &[],
            ),
            Syscall::Time => (
                &[],
                "ns_low: u32, ns_high: u32",
                "Nanoseconds since boot on the monotonic clock, split in two halves.",
                &[],
            ),
            Syscall::ThreadSpawn => (
                &["entry", "stack_top", "argument"],
                "thread id, and a handle to the thread (`THREAD_RIGHTS`)",
                "Starts a thread of the calling process at `entry(argument)` with the stack pointer at `stack_top` (the caller provides the stack).",
                &[
                    BadAddress,
                    InvalidArgument,
                    LimitReached,
                    OutOfMemory,
                    TableFull,
                ],
            ),
            Syscall::ThreadSetPriority => (
                &["thread", "priority: 0-7", "control (0: none)"],
                "0",
                "Sets the priority of the thread the handle names (which needs `RIGHT_SCHEDULE`), in any process; above the default it needs a control capability with `RIGHT_RAISE_PRIORITY`, as `set_priority` does. A thread that has ended is `NotFound`.",
                &[
                    InvalidArgument,
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    PermissionDenied,
                    NotFound,
                ],
            ),
            Syscall::ProcessWait => (
                &["process", "status: *mut WaitStatus (0: none)"],
                "process id of the child",
                "Waits until the child the handle names (which needs `RIGHT_WAIT`) has ended, writes how and forgets it, as `wait` does for any child. Only the parent may wait: another process's handle is `NotFound`.",
                &[InvalidHandle, WrongType, MissingRight, BadAddress, NotFound],
            ),
            Syscall::QuotaSplit => (
                &["quota", "pages"],
                "handle to the new quota (`QUOTA_RIGHTS`)",
                "Makes a quota of `pages` pages, taken from the budget of the one the handle names (which needs `RIGHT_SPLIT`) until the new quota goes. A quota is what the memory of the processes charged to it may hold: anonymous memory when mapped, memory objects when made. Init gets a quota of all memory at `INIT_QUOTA`; `spawn` with `SPAWN_QUOTA` charges a child to a quota given to it.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    LimitReached,
                    OutOfMemory,
                    TableFull,
                ],
            ),
            Syscall::QuotaInfo => (
                &["quota"],
                "the budget and the pages used, both in pages",
                "Tells how large the quota the handle names is and how much of it is held (by memory charged to it and by quotas split off it).",
                &[InvalidHandle, WrongType],
            ),
            Syscall::ThreadExit => (
                &[],
                "does not return",
                "Ends the calling thread; the process ends with status 0 when its last thread does.",
                &[],
            ),
            Syscall::Map => (
                &["address", "length", "protection"],
                "address mapped",
                "Maps `length` bytes (rounded up to pages) of zeroed anonymous memory, readable and, with `PROT_WRITE`, writable; never executable. Address 0 lets the kernel choose (with unmapped guard pages around); otherwise it must be page-aligned, free and in the anonymous window. Pages are allocated on first touch, and charged to the process's quota when mapped (`LimitReached` when it has too few left, as past the per-process limit).",
                &[InvalidArgument, LimitReached, OutOfMemory],
            ),
            Syscall::Unmap => (
                &["address", "length"],
                "0",
                "Removes anonymous memory; the range must lie wholly in memory `map` gave, and may cut a mapping in two.",
                &[InvalidArgument, OutOfMemory],
            ),
            Syscall::Spawn => (
                &[
                    "name",
                    "name_length",
                    "arguments",
                    "arguments_length",
                    "flags",
                    "handles: *const Handle",
                ],
                "process id, and a handle to the process (with every process right)",
                "Starts the named program of the boot archive in a new process, the caller's child. The argument bytes are copied to the top of its stack; its entry point gets their address and length. A child has only the capabilities it is given: the handles counted in flags bits 8-11 pass their capabilities on (each needs the grant right); the child finds them at `initial_handle(0)` onward. Its memory is charged to the caller's quota, or, with `SPAWN_QUOTA` (flag bit 12), to the quota the first handle names; a quota too small for its stack is `LimitReached`.",
                &[
                    BadAddress,
                    InvalidArgument,
                    InvalidHandle,
                    MissingRight,
                    TableFull,
                    TooLong,
                    NotFound,
                    BadImage,
                    LimitReached,
                    OutOfMemory,
                ],
            ),
            Syscall::Wait => (
                &["status: *mut WaitStatus (0: none)"],
                "process id of the child",
                "Waits until any child has ended, writes how (`WaitStatus`) and forgets it. A status that cannot be written leaves the child to wait for again. A child in particular is waited for through its handle (`process_wait`): processes are named by handles, their ids are for display.",
                &[BadAddress, NoChildren],
            ),
            Syscall::ProcessId => (&[], "process id", "The calling process's id.", &[]),
            Syscall::Info => (
                &["kind: InfoKind", "buffer", "capacity"],
                "bytes all the records need",
                "Writes as many whole records of the kind as fit; the result says how much room all of them need.",
                &[BadAddress, InvalidArgument, OutOfMemory],
            ),
            Syscall::PowerOff => (
                &["control", "status: u8"],
                "does not return on success",
                "Ends the machine with `status` (QEMU exits with it). Needs a control capability with `RIGHT_POWER_OFF`: init gets one at boot (`INIT_CONTROL`) and passes it to the shell.",
                &[InvalidHandle, WrongType, MissingRight],
            ),
            Syscall::ThreadId => (&[], "thread id", "The calling thread's id.", &[]),
            Syscall::SetPriority => (
                &["priority: 0-7", "control (0: none)"],
                "0",
                "Sets the calling thread's priority (4 by default, 7 most urgent). Going above 4 needs a control capability with `RIGHT_RAISE_PRIORITY`; without a handle it is `PermissionDenied`.",
                &[
                    InvalidArgument,
                    PermissionDenied,
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                ],
            ),
            Syscall::EndpointCreate => (
                &[],
                "handle",
                "Creates an endpoint: a rendezvous where senders and receivers meet; it holds blocked threads, never messages. The handle has every endpoint right.",
                &[TableFull, OutOfMemory],
            ),
            Syscall::NotificationCreate => (
                &[],
                "handle",
                "Creates a notification: a word of signal bits, empty. The handle has every notification right.",
                &[TableFull, OutOfMemory],
            ),
            Syscall::CapCopy => (
                &["handle", "rights: Rights", "badge (0: keep)"],
                "the new handle",
                "Adds a capability to the same object with the given rights, which must be a subset of the handle's. A non-zero badge marks an unbadged endpoint capability (the receiver of a message sent through it learns the badge) or binds an unbadged interrupt control to one line (`irq_control_badge`), so a driver can be given the right to claim its own line and no other.",
                &[InvalidHandle, MissingRight, InvalidArgument, TableFull],
            ),
            Syscall::CapDelete => (
                &["handle"],
                "0",
                "Removes the capability. The object goes when its last capability does; an endpoint whose last receive right goes fails its blocked and future senders with `PeerDied`.",
                &[InvalidHandle],
            ),
            Syscall::CapInfo => (
                &["handle"],
                "kind | rights << 8 (| `CAP_INFO_PEER_GONE`), badge",
                "What the handle refers to: its `ObjectKind`, its `Rights` and its badge; for an endpoint nothing can receive on any more (its server is gone), `CAP_INFO_PEER_GONE` is set too.",
                &[InvalidHandle],
            ),
            Syscall::Send => (
                &["endpoint", "info: label | flags", "w0", "w1", "w2", "w3"],
                "0",
                "Sends a message of a label and four words, waiting until a receiver takes it (`SEND_NONBLOCK`: only if one waits).",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    PeerDied,
                    WouldBlock,
                    TimedOut,
                ],
            ),
            Syscall::Recv => (
                &["endpoint", "flags"],
                "label, badge; w0-w3 in the message registers",
                "Waits for a message (`RECV_NONBLOCK`: only takes one that waits). A message from `call` leaves the caller waiting for `reply`.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    WouldBlock,
                    TimedOut,
                ],
            ),
            Syscall::Call => (
                &["endpoint", "info: label", "w0", "w1", "w2", "w3"],
                "label, badge (0); w0-w3 of the reply in the message registers",
                "Sends a message and waits for the receiver's reply.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    PeerDied,
                    TimedOut,
                ],
            ),
            Syscall::Reply => (
                &["info: label", "w0", "w1", "w2", "w3"],
                "0",
                "Replies to the last call this thread received, once. A reply to a caller that has gone is dropped.",
                &[InvalidArgument, NoCaller],
            ),
            Syscall::ReplyRecv => (
                &["endpoint", "info: label", "w0", "w1", "w2", "w3"],
                "label, badge; w0-w3 in the message registers",
                "Replies to the pending call, if there is one, then waits for the next message: a server's loop in one call.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    TimedOut,
                ],
            ),
            Syscall::Signal => (
                &["notification", "bits"],
                "0",
                "Sets `bits` in the notification, waking a waiter.",
                &[InvalidHandle, WrongType, MissingRight],
            ),
            Syscall::NotificationWait => (
                &["notification"],
                "bits",
                "Waits until some bits are set, then returns and clears them all.",
                &[InvalidHandle, WrongType, MissingRight, TimedOut],
            ),
            Syscall::NotificationPoll => (
                &["notification"],
                "bits (0: none)",
                "Returns and clears the bits set, without waiting.",
                &[InvalidHandle, WrongType, MissingRight],
            ),
            Syscall::MemoryCreate => (
                &["size", "flags"],
                "handle",
                "Creates a memory object of `size` bytes (rounded up to pages, at most `MAX_MEMORY_OBJECT_BYTES`), zeroed, which any process holding a capability to it can map: shared memory. `MEMORY_CONTIGUOUS` makes its frames physically contiguous, for devices that read and write memory themselves (`memory_physical` tells where). The handle has every memory right. Its pages are charged to the caller's quota for as long as the object lives; a quota with fewer left is `LimitReached`.",
                &[
                    InvalidArgument,
                    TooLong,
                    LimitReached,
                    OutOfMemory,
                    TableFull,
                ],
            ),
            Syscall::MemoryMap => (
                &["memory", "address (0: anywhere)", "protection"],
                "address mapped, and the bytes mapped (the object's size) as the second result",
                "Maps the whole object, readable (`RIGHT_MAP_READ`) and with `PROT_WRITE` writable (`RIGHT_MAP_WRITE`), never executable, at a page-aligned address in the anonymous window, every page present.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    OutOfMemory,
                    LimitReached,
                ],
            ),
            Syscall::MemoryUnmap => (
                &["address"],
                "0",
                "Removes the memory object mapped at `address` (its start) from the caller's space; the object stays while capabilities or other mappings hold it.",
                &[InvalidArgument],
            ),
            Syscall::IpcBuffer => (
                &["address (page-aligned; 0: none)"],
                "0",
                "Registers the page at `address` as the calling thread's IPC buffer: where the payload of a message it sends is read from (`MESSAGE_PAYLOAD`), and where one it receives is written. The page must be readable and writable user memory.",
                &[InvalidArgument, BadAddress],
            ),
            Syscall::ProcessKill => (
                &["process", "how: 0, or `KILL_AS_FAULT`"],
                "0",
                "Ends the process: its threads end at their next return to user mode (a blocked one first unwinds its call), and its parent learns it was killed (`ExitReason::Killed`). With `KILL_AS_FAULT` it ends as if it had faulted, for fault injection: the parent learns `ExitReason::Faulted` with `FaultKind::Injected` (the fault address is the injecting process's id), and the console reports it as it does a fault. Needs `RIGHT_KILL`; a process that has ended already is `NotFound`.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    NotFound,
                ],
            ),
            Syscall::ProcessWatch => (
                &["process", "notification", "bits"],
                "0",
                "Signals `bits` on the notification (which needs `RIGHT_SIGNAL`) when the process (which needs `RIGHT_WAIT`) ends, before its parent can collect it with `wait` or `process_wait`: a supervisor waits for many processes, and for messages, in one place. One watch per process; a new one replaces it. A process that has ended already is `NotFound`; no bits is `InvalidArgument`.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    NotFound,
                ],
            ),
            Syscall::NotificationBind => (
                &["notification (0: unbind)"],
                "0",
                "Binds the notification to the calling thread (it needs `RIGHT_WAIT`; one notification per thread, one thread per notification): while the thread waits in `recv` or `reply_recv`, a signal ends the wait, and the call returns the label `NOTIFIED` with the bits as the badge. Bits set before the receive are returned at once. A driver waits for its clients and its interrupts in one call.",
                &[InvalidHandle, WrongType, MissingRight, InvalidArgument],
            ),
            Syscall::IrqClaim => (
                &["irq_control", "irq", "notification", "bits"],
                "handle to the interrupt handler (`IRQ_RIGHTS`)",
                "Claims device interrupt line `irq` (a number from the `Devices` listing) for the caller: when it fires, the kernel masks the line at the interrupt controller and sets `bits` in the notification (which needs `RIGHT_SIGNAL`). The line stays masked until `irq_ack`. Needs an interrupt-control capability with `RIGHT_CLAIM` (init gets one at `INIT_IRQ_CONTROL`); one badged with `irq_control_badge(line)` claims only that line (`PermissionDenied` for others). A line is claimed once; it is masked and free again when the handler's last capability goes. Lines the kernel uses are not in the listing and cannot be claimed.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    NotFound,
                    PermissionDenied,
                    Busy,
                    OutOfMemory,
                    TableFull,
                ],
            ),
            Syscall::IrqAck => (
                &["irq"],
                "0",
                "Unmasks the handler's line: the driver has dealt with the interrupt and cleared it at the device. Needs `RIGHT_ACKNOWLEDGE`.",
                &[InvalidHandle, WrongType, MissingRight],
            ),
            Syscall::MemoryDevice => (
                &["device_memory", "offset", "size"],
                "handle to a memory object (`RIGHT_MAP_READ | RIGHT_MAP_WRITE | RIGHT_GRANT`)",
                "Makes a memory object of the device registers at `offset` (page-aligned) into the device-memory range, `size` bytes rounded up to pages, all within the range rounded out to pages. It is mapped like any memory object, but uncached, and `memory_physical` tells where it is. Needs `RIGHT_CLAIM`. Init gets a device-memory capability for each `Devices` record of kind memory.",
                &[
                    InvalidHandle,
                    WrongType,
                    MissingRight,
                    InvalidArgument,
                    OutOfMemory,
                    TableFull,
                ],
            ),
            Syscall::PortIn => (
                &["io_ports", "port", "width: 1, 2 or 4"],
                "the value read",
                "Reads `width` bytes from I/O port `port`, which with its width must lie in the capability's range. Needs `RIGHT_PORT_IO`. Only machines with I/O ports (x86_64) have such capabilities.",
                &[InvalidHandle, WrongType, MissingRight, InvalidArgument],
            ),
            Syscall::PortOut => (
                &["io_ports", "port", "width: 1, 2 or 4", "value"],
                "0",
                "Writes the low `width` bytes of `value` to I/O port `port`, as `port_in` checks it.",
                &[InvalidHandle, WrongType, MissingRight, InvalidArgument],
            ),
            Syscall::IpcTimeout => (
                &["ns_low: u32", "ns_high: u32"],
                "0",
                "Sets how long the calling thread's IPC waits may last: a `send`, `recv`, `call` or `reply_recv` that would wait, or a `notification_wait`, fails with `TimedOut` once it has waited `ns_high << 32 | ns_low` nanoseconds (at the next tick after). A `call` counts both its wait to be received and its wait for the reply; a reply that comes after the caller timed out is dropped. 0 (the default) waits for ever. The setting stays until changed.",
                &[],
            ),
            Syscall::MemoryPhysical => (
                &["memory"],
                "low, high: the physical address",
                "Where a contiguous memory object lies in physical memory, for programming a device.",
                &[InvalidHandle, WrongType, MissingRight, InvalidArgument],
            ),
        };
        CallSpec {
            arguments,
            returns,
            description,
            errors,
        }
    }
}

/// How one architecture makes a system call.
#[derive(Clone, Copy, Debug)]
pub struct CallingConvention {
    /// The architecture.
    pub arch: &'static str,
    /// The instruction that enters the kernel.
    pub instruction: &'static str,
    /// The register holding the call number.
    pub number: &'static str,
    /// The argument registers, in order.
    pub arguments: [&'static str; 6],
    /// The result registers.
    pub results: [&'static str; 2],
    /// Where calls that deliver a message put its four words, after the
    /// label and badge in the result registers.
    pub message: [&'static str; 4],
    /// Registers the call does not preserve besides the results.
    pub clobbered: &'static [&'static str],
}

/// The calling conventions; every register not listed is preserved.
pub const CALLING_CONVENTIONS: [CallingConvention; 2] = [
    CallingConvention {
        arch: "x86_64",
        instruction: "syscall",
        number: "rax",
        arguments: ["rdi", "rsi", "rdx", "r10", "r8", "r9"],
        results: ["rax", "rdx"],
        message: ["rdi", "rsi", "r10", "r8"],
        clobbered: &["rcx", "r11"],
    },
    CallingConvention {
        arch: "armv7",
        instruction: "svc #0",
        number: "r7",
        arguments: ["r0", "r1", "r2", "r3", "r4", "r5"],
        results: ["r0", "r1"],
        message: ["r2", "r3", "r4", "r5"],
        clobbered: &[],
    },
];

/// Why a system call failed. A call returns `-(error as isize)` in its
/// first result register; see [`decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Error {
    /// No system call has this number.
    UnknownSyscall = 1,
    /// A pointer and length do not lie in mapped user memory with the
    /// access the call needs (or they overflow).
    BadAddress = 2,
    /// An argument is out of range or malformed.
    InvalidArgument = 3,
    /// The kernel has no memory for the request.
    OutOfMemory = 4,
    /// No such program or process.
    NotFound = 5,
    /// `wait` has no child process to wait for.
    NoChildren = 6,
    /// The program is not a valid executable for this machine.
    BadImage = 7,
    /// The caller lacks the privilege the call needs.
    PermissionDenied = 8,
    /// A string or buffer exceeds the call's limit.
    TooLong = 9,
    /// A limit on threads or processes is reached.
    LimitReached = 10,
    /// The call was cut short because the calling thread is being ended
    /// (its process was killed); the thread never sees this value.
    Interrupted = 11,
    /// The handle names no capability of the caller: never given, deleted,
    /// stale (its slot holds a newer capability) or forged.
    InvalidHandle = 12,
    /// The capability is to an object of another kind than the call needs.
    WrongType = 13,
    /// The capability lacks a right the call needs.
    MissingRight = 14,
    /// The caller's capability table is full.
    TableFull = 15,
    /// The other side is gone: nothing can receive on the endpoint any
    /// more, or the server ended before replying.
    PeerDied = 16,
    /// A non-blocking call found nobody to meet.
    WouldBlock = 17,
    /// `reply` with no call pending.
    NoCaller = 18,
    /// The resource is taken: an interrupt line another handler holds.
    Busy = 19,
    /// The wait lasted longer than the thread's IPC timeout.
    TimedOut = 20,
}

impl Error {
    /// Every error, in number order.
    pub const ALL: [Error; 20] = [
        Error::UnknownSyscall,
        Error::BadAddress,
        Error::InvalidArgument,
        Error::OutOfMemory,
        Error::NotFound,
        Error::NoChildren,
        Error::BadImage,
        Error::PermissionDenied,
        Error::TooLong,
        Error::LimitReached,
        Error::Interrupted,
        Error::InvalidHandle,
        Error::WrongType,
        Error::MissingRight,
        Error::TableFull,
        Error::PeerDied,
        Error::WouldBlock,
        Error::NoCaller,
        Error::Busy,
        Error::TimedOut,
    ];

    /// The value a failing call returns.
    pub const fn encode(self) -> usize {
        (self as usize).wrapping_neg()
    }

    /// A short description.
    pub const fn message(self) -> &'static str {
        match self {
            Error::UnknownSyscall => "unknown system call",
            Error::BadAddress => "bad address",
            Error::InvalidArgument => "invalid argument",
            Error::OutOfMemory => "out of memory",
            Error::NotFound => "not found",
            Error::NoChildren => "no child processes",
            Error::BadImage => "not a valid executable",
            Error::PermissionDenied => "permission denied",
            Error::TooLong => "too long",
            Error::LimitReached => "limit reached",
            Error::Interrupted => "interrupted: the thread is ending",
            Error::InvalidHandle => "invalid handle",
            Error::WrongType => "wrong kind of object",
            Error::MissingRight => "the capability lacks the right",
            Error::TableFull => "capability table full",
            Error::PeerDied => "the other side is gone",
            Error::WouldBlock => "nobody to meet",
            Error::NoCaller => "no call to reply to",
            Error::Busy => "in use",
            Error::TimedOut => "timed out",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Results at or above this value (as unsigned) are errors.
pub const FIRST_ERROR_VALUE: usize = 4096usize.wrapping_neg();

/// Splits a call's first result into a value or an error.
pub fn decode(value: usize) -> Result<usize, Error> {
    if value < FIRST_ERROR_VALUE {
        return Ok(value);
    }
    let number = value.wrapping_neg();
    Err(Error::ALL
        .get(number.wrapping_sub(1))
        .copied()
        .unwrap_or(Error::InvalidArgument))
}

/// `map` protection: readable (always implied).
pub const PROT_READ: usize = 1;
/// `map` protection: writable. Anonymous memory is never executable.
pub const PROT_WRITE: usize = 2;

/// `spawn` flags: bits 8-11 count the handles, listed at the address in the
/// sixth argument (`u32` each), whose capabilities the child gets, with
/// the same rights and badges, as its handles `initial_handle(0)` onward.
pub const SPAWN_HANDLES_SHIFT: u32 = 8;
/// `spawn` flag: the first handle passed names a quota (`RIGHT_GRANT`, as
/// every handle passed), to which the child's memory is charged instead
/// of the caller's quota.
pub const SPAWN_QUOTA: usize = 1 << 12;
/// The most handles `spawn` passes.
pub const MAX_SPAWN_HANDLES: usize = 8;

/// A capability handle: a slot of the caller's table (the low
/// [`HANDLE_INDEX_BITS`] bits) and the slot's generation when the
/// capability was put there (the rest), so a handle to a deleted
/// capability never reaches the one that takes its slot. 0 is never a
/// handle.
pub type Handle = u32;
/// Bits of a handle that name the slot.
pub const HANDLE_INDEX_BITS: u32 = 8;
/// Slots in a process's capability table.
pub const MAX_CAPABILITIES: usize = 1 << HANDLE_INDEX_BITS;

/// `cap_info` flag: the endpoint has no receiver left (every capability
/// with `RIGHT_RECEIVE` is gone), so messages to it fail with `PeerDied`.
pub const CAP_INFO_PEER_GONE: usize = 1 << 30;

/// The badge that binds an interrupt-control capability to line `irq`
/// (see `cap_copy`, `irq_claim`).
pub const fn irq_control_badge(irq: usize) -> usize {
    irq + 1
}

/// The handle a new process finds its `n`th passed capability at.
pub const fn initial_handle(n: usize) -> Handle {
    (1 << HANDLE_INDEX_BITS) | n as Handle
}

/// What a capability refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ObjectKind {
    /// A rendezvous for messages.
    Endpoint = 1,
    /// A word of signal bits.
    Notification = 2,
    /// Frames that can be mapped, and so shared.
    Memory = 3,
    /// The machine's controls: powering it off, priorities above the
    /// default.
    Control = 4,
    /// A process (the global pid stays for display).
    Process = 5,
    /// The right to claim device interrupt lines.
    IrqControl = 6,
    /// An interrupt handler: a claimed line bound to a notification.
    Irq = 7,
    /// A range of device registers, from which device memory objects are
    /// made.
    DeviceMemory = 8,
    /// A range of I/O ports (x86_64).
    IoPorts = 9,
    /// A thread (the global thread id stays for display).
    Thread = 10,
    /// A budget of pages of memory.
    Quota = 11,
}

impl ObjectKind {
    /// The kind with number `number`.
    pub fn from_number(number: u32) -> Option<ObjectKind> {
        match number {
            1 => Some(ObjectKind::Endpoint),
            2 => Some(ObjectKind::Notification),
            3 => Some(ObjectKind::Memory),
            4 => Some(ObjectKind::Control),
            5 => Some(ObjectKind::Process),
            6 => Some(ObjectKind::IrqControl),
            7 => Some(ObjectKind::Irq),
            8 => Some(ObjectKind::DeviceMemory),
            9 => Some(ObjectKind::IoPorts),
            10 => Some(ObjectKind::Thread),
            11 => Some(ObjectKind::Quota),
            _ => None,
        }
    }
}

/// What a capability allows, one bit each.
pub type Rights = u32;
/// Send messages (`send`, `call`) on an endpoint.
pub const RIGHT_SEND: Rights = 1 << 0;
/// Receive messages (`recv`, `reply_recv`) on an endpoint.
pub const RIGHT_RECEIVE: Rights = 1 << 1;
/// Pass the capability on (in `spawn`).
pub const RIGHT_GRANT: Rights = 1 << 2;
/// Set bits in a notification.
pub const RIGHT_SIGNAL: Rights = 1 << 3;
/// Wait for and take a notification's bits; wait for a process to end.
pub const RIGHT_WAIT: Rights = 1 << 4;
/// Map a memory object readable.
pub const RIGHT_MAP_READ: Rights = 1 << 5;
/// Map a memory object writable.
pub const RIGHT_MAP_WRITE: Rights = 1 << 6;
/// Power the machine off.
pub const RIGHT_POWER_OFF: Rights = 1 << 7;
/// Set a priority above the default.
pub const RIGHT_RAISE_PRIORITY: Rights = 1 << 8;
/// End a process.
pub const RIGHT_KILL: Rights = 1 << 9;
/// Make objects from a device resource: claim interrupt lines, make
/// device memory objects.
pub const RIGHT_CLAIM: Rights = 1 << 10;
/// Unmask a claimed interrupt line.
pub const RIGHT_ACKNOWLEDGE: Rights = 1 << 11;
/// Read and write I/O ports.
pub const RIGHT_PORT_IO: Rights = 1 << 12;
/// Set a thread's priority.
pub const RIGHT_SCHEDULE: Rights = 1 << 13;
/// Split a quota.
pub const RIGHT_SPLIT: Rights = 1 << 14;
/// Every right a quota capability can have.
pub const QUOTA_RIGHTS: Rights = RIGHT_SPLIT | RIGHT_GRANT;
/// Every right a thread capability can have.
pub const THREAD_RIGHTS: Rights = RIGHT_SCHEDULE | RIGHT_GRANT;
/// Every right an interrupt-control capability can have.
pub const IRQ_CONTROL_RIGHTS: Rights = RIGHT_CLAIM | RIGHT_GRANT;
/// Every right an interrupt-handler capability can have.
pub const IRQ_RIGHTS: Rights = RIGHT_ACKNOWLEDGE | RIGHT_GRANT;
/// Every right a device-memory capability can have.
pub const DEVICE_MEMORY_RIGHTS: Rights = RIGHT_CLAIM | RIGHT_GRANT;
/// Every right an I/O-port capability can have.
pub const IO_PORT_RIGHTS: Rights = RIGHT_PORT_IO | RIGHT_GRANT;
/// Every right a process capability can have.
pub const PROCESS_RIGHTS: Rights = RIGHT_KILL | RIGHT_WAIT | RIGHT_GRANT;
/// `process_kill`'s `how`: end the process as if it had faulted.
pub const KILL_AS_FAULT: usize = 1;
/// Every right a control capability can have.
pub const CONTROL_RIGHTS: Rights = RIGHT_POWER_OFF | RIGHT_RAISE_PRIORITY | RIGHT_GRANT;
/// Where init finds the control capability the kernel gives it at boot.
pub const INIT_CONTROL: Handle = initial_handle(0);
/// Where init finds the interrupt-control capability.
pub const INIT_IRQ_CONTROL: Handle = initial_handle(1);
/// Where init finds the quota of all the memory it and what it starts
/// may take (every frame free at boot: a limit, not a reservation).
pub const INIT_QUOTA: Handle = initial_handle(2);
/// Where init finds the capability to the device of `Devices` record `n`
/// (device memory or I/O ports, by the record's kind).
pub const fn init_device_handle(n: usize) -> Handle {
    initial_handle(3 + n)
}
/// Every right a memory capability can have.
pub const MEMORY_RIGHTS: Rights = RIGHT_MAP_READ | RIGHT_MAP_WRITE | RIGHT_GRANT;
/// `memory_create` flag: physically contiguous frames.
pub const MEMORY_CONTIGUOUS: usize = 1;
/// The largest memory object.
pub const MAX_MEMORY_OBJECT_BYTES: usize = 16 << 20;
/// Every right an endpoint capability can have.
pub const ENDPOINT_RIGHTS: Rights = RIGHT_SEND | RIGHT_RECEIVE | RIGHT_GRANT;
/// Every right a notification capability can have.
pub const NOTIFICATION_RIGHTS: Rights = RIGHT_SIGNAL | RIGHT_WAIT | RIGHT_GRANT;

/// A message's label: its low [`LABEL_BITS`] bits of the info word.
pub const LABEL_BITS: u32 = 24;
/// The label's bits of an info word.
pub const LABEL_MASK: usize = (1 << LABEL_BITS) - 1;
/// `send` info flag: fail with `WouldBlock` rather than wait.
pub const SEND_NONBLOCK: usize = 1 << 24;
/// The label `recv` and `reply_recv` return when the thread's bound
/// notification ended the wait; the badge holds its bits. No sender can
/// use it: it is beyond the label's bits.
pub const NOTIFIED: usize = 1 << LABEL_BITS;
/// Info flag: the message carries a capability. The sender names it in
/// `w3`; it is copied (the sender keeps it) unless `MESSAGE_CAP_MOVE` is
/// set too. Both the endpoint capability and the one sent need
/// `RIGHT_GRANT`. The receiver finds the flag in the label it gets and the
/// capability's handle in its own table in `w3` (0, and the flag clear,
/// if its table had no room).
pub const MESSAGE_CAP: usize = 1 << 25;
/// Info flag, with `MESSAGE_CAP`: the capability moves to the receiver.
pub const MESSAGE_CAP_MOVE: usize = 1 << 26;
/// Info flag: the message has a payload of `w2` bytes (at most
/// [`MAX_PAYLOAD`]), read from the start of the sender's IPC buffer and
/// copied by the kernel to the start of the receiver's. The receiver finds
/// the flag in its label and in `w2` the bytes stored: 0 if it has no IPC
/// buffer or the copy failed.
pub const MESSAGE_PAYLOAD: usize = 1 << 27;
/// The longest payload: one page.
pub const MAX_PAYLOAD: usize = 4096;
/// `recv` flag: fail with `WouldBlock` rather than wait.
pub const RECV_NONBLOCK: usize = 1;

/// Longest program name `spawn` accepts.
pub const MAX_NAME_LENGTH: usize = 32;
/// Longest argument string `spawn` passes on.
pub const MAX_ARGUMENTS_LENGTH: usize = 1024;
/// Largest buffer one `write` call takes.
pub const MAX_WRITE_LENGTH: usize = 64 * 1024;
/// Anonymous memory one process may have mapped (reserved, not resident);
/// `map` beyond it fails with `LimitReached`.
pub const MAX_ANONYMOUS_BYTES: usize = 128 << 20;

/// The status code of a program whose runtime caught a panic.
pub const EXIT_PANIC: i32 = 101;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitReason {
    /// It called `exit` (or its last thread ended): `code` holds its status.
    Exited = 0,
    /// The kernel killed it for a fault: `fault_*` say which.
    Faulted = 1,
    /// Another process ended it (`process_kill`).
    Killed = 2,
}

/// What went wrong, for a process killed by a fault. The numbers are part
/// of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FaultKind {
    /// Nothing is mapped at the address.
    NotMapped = 1,
    /// Mapped, but the access is not allowed (includes kernel memory).
    Permission = 2,
    /// Misaligned access.
    Alignment = 3,
    /// Undefined or privileged instruction.
    IllegalInstruction = 4,
    /// Integer division by zero (x86_64; ARMv7 division does not trap).
    DivideByZero = 5,
    /// A breakpoint instruction.
    Breakpoint = 6,
    /// Any other exception.
    Other = 7,
    /// x86_64's general-protection fault: a privileged instruction, an I/O
    /// port access or a non-canonical address.
    GeneralProtection = 8,
    /// The access was allowed, but no memory was left for the page.
    OutOfMemory = 9,
    /// Another process ended it as if it had faulted (`process_kill` with
    /// `KILL_AS_FAULT`).
    Injected = 10,
}

impl FaultKind {
    /// The kind with number `number`.
    pub fn from_number(number: u32) -> Option<FaultKind> {
        Some(match number {
            1 => FaultKind::NotMapped,
            2 => FaultKind::Permission,
            3 => FaultKind::Alignment,
            4 => FaultKind::IllegalInstruction,
            5 => FaultKind::DivideByZero,
            6 => FaultKind::Breakpoint,
            7 => FaultKind::Other,
            8 => FaultKind::GeneralProtection,
            9 => FaultKind::OutOfMemory,
            10 => FaultKind::Injected,
            _ => return None,
        })
    }

    /// A short description.
    pub const fn message(self) -> &'static str {
        match self {
            FaultKind::NotMapped => "page not mapped",
            FaultKind::Permission => "permission denied",
            FaultKind::Alignment => "misaligned access",
            FaultKind::IllegalInstruction => "illegal instruction",
            FaultKind::DivideByZero => "division by zero",
            FaultKind::Breakpoint => "breakpoint",
            FaultKind::Other => "fault",
            FaultKind::GeneralProtection => "general protection fault",
            FaultKind::OutOfMemory => "out of memory for a page",
            FaultKind::Injected => "fault injected",
        }
    }
}

/// The access that faulted, for memory faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FaultAccess {
    /// Not a memory access.
    None = 0,
    /// A data read.
    Read = 1,
    /// A data write.
    Write = 2,
    /// An instruction fetch.
    Execute = 3,
}

/// What `wait` writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct WaitStatus {
    /// The child that ended.
    pub pid: u32,
    /// An [`ExitReason`].
    pub reason: u32,
    /// The exit status, for [`ExitReason::Exited`].
    pub code: i32,
    /// A [`FaultKind`], for [`ExitReason::Faulted`].
    pub fault_kind: u32,
    /// A [`FaultAccess`].
    pub fault_access: u32,
    /// Explicit padding, always zero.
    pub reserved: u32,
    /// The address the fault concerned.
    pub fault_address: u64,
    /// Where the faulting instruction is.
    pub fault_pc: u64,
}

impl WaitStatus {
    /// The reason, if the kernel wrote a known one.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        match self.reason {
            0 => Some(ExitReason::Exited),
            1 => Some(ExitReason::Faulted),
            2 => Some(ExitReason::Killed),
            _ => None,
        }
    }

    /// The fault kind, for a process killed by a fault.
    pub fn fault(&self) -> Option<FaultKind> {
        (self.exit_reason() == Some(ExitReason::Faulted))
            .then(|| FaultKind::from_number(self.fault_kind))
            .flatten()
    }
}

/// What `info` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum InfoKind {
    /// One [`SystemInfo`].
    System = 0,
    /// One [`MemoryInfo`].
    Memory = 1,
    /// A [`ProcessInfo`] per process.
    Processes = 2,
    /// An [`IrqInfo`] per interrupt that has arrived.
    Interrupts = 3,
    /// A [`Name`] per program in the boot archive.
    Programs = 4,
    /// A [`DeviceInfo`] per device the kernel leaves to drivers.
    Devices = 5,
}

impl InfoKind {
    /// Every kind, in number order.
    pub const ALL: [InfoKind; 6] = [
        InfoKind::System,
        InfoKind::Memory,
        InfoKind::Processes,
        InfoKind::Interrupts,
        InfoKind::Programs,
        InfoKind::Devices,
    ];

    /// The kind with number `number`.
    pub fn from_number(number: usize) -> Option<InfoKind> {
        Self::ALL.get(number).copied()
    }

    /// What `info` returns for the kind: the record type's name, how many
    /// records, and each record's size in bytes.
    pub const fn records(self) -> (&'static str, &'static str, usize) {
        match self {
            InfoKind::System => ("SystemInfo", "one", size_of::<SystemInfo>()),
            InfoKind::Memory => ("MemoryInfo", "one", size_of::<MemoryInfo>()),
            InfoKind::Processes => ("ProcessInfo", "one per process", size_of::<ProcessInfo>()),
            InfoKind::Interrupts => (
                "IrqInfo",
                "one per interrupt that arrived",
                size_of::<IrqInfo>(),
            ),
            InfoKind::Programs => ("Name", "one per program", size_of::<Name>()),
            InfoKind::Devices => (
                "DeviceInfo",
                "one per device left to drivers",
                size_of::<DeviceInfo>(),
            ),
        }
    }
}

/// A record the kernel and user space exchange as raw bytes.
///
/// # Safety
/// Implementors are `repr(C)` with no implicit padding (explicit reserved
/// fields instead), so every byte of a value is initialised, and every bit
/// pattern is a valid value (integers and byte arrays only), so any bytes
/// may be read back as one.
pub unsafe trait Record: Copy {}

// SAFETY: each is repr(C) with explicit padding and integer fields only;
// `records_have_the_same_layout_on_every_target` pins their sizes.
unsafe impl Record for WaitStatus {}
// SAFETY: as above.
unsafe impl Record for SystemInfo {}
// SAFETY: as above.
unsafe impl Record for MemoryInfo {}
// SAFETY: as above.
unsafe impl Record for ProcessInfo {}
// SAFETY: as above.
unsafe impl Record for IrqInfo {}
// SAFETY: as above.
unsafe impl Record for DeviceInfo {}
// SAFETY: a byte array.
unsafe impl Record for Name {}

/// The bytes of `record`, as the kernel writes them.
pub fn record_bytes<T: Record>(record: &T) -> &[u8] {
    // SAFETY: `Record` guarantees every byte of T is initialised; the
    // slice covers exactly the borrowed value.
    unsafe { core::slice::from_raw_parts((record as *const T).cast::<u8>(), size_of::<T>()) }
}

/// The record in the first `size_of::<T>()` bytes of `bytes`, at any
/// alignment; `None` if there are fewer.
pub fn read_record<T: Record>(bytes: &[u8]) -> Option<T> {
    let bytes = bytes.get(..size_of::<T>())?;
    // SAFETY: the bytes are in bounds; `Record` makes any bit pattern a
    // valid T; an unaligned read allows any buffer alignment.
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// A fixed-size, NUL-padded name.
pub type Name = [u8; 32];

/// The text of a [`Name`], up to its first NUL (invalid UTF-8 shows as `?`).
pub fn name_str(name: &Name) -> &str {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    core::str::from_utf8(&name[..end]).unwrap_or("?")
}

/// Copies `text` into a [`Name`], cutting it if it is too long.
pub fn name_from(text: &str) -> Name {
    let mut name = [0; 32];
    let n = text.len().min(name.len());
    name[..n].copy_from_slice(&text.as_bytes()[..n]);
    name
}

/// The system as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct SystemInfo {
    /// Kernel version.
    pub version: Name,
    /// Architecture, as the HAL names it (`x86_64`, `armv7`).
    pub arch: Name,
    /// The QEMU machine.
    pub machine: Name,
    /// Nanoseconds since boot.
    pub uptime_ns: u64,
    /// The scheduler's tick rate.
    pub tick_hz: u32,
    /// Processes alive (zombies included).
    pub processes: u32,
    /// Threads alive, the idle thread included.
    pub threads: u32,
    /// Explicit padding, always zero.
    pub reserved: u32,
    /// Nanoseconds from the CPU's reset to the first user instruction, by
    /// the counter that runs from reset (the TSC, the ARM generic timer);
    /// under QEMU's `-icount shift=0` that is guest instructions. 0 if
    /// unknown.
    pub first_user_ns: u64,
    /// An address in the kernel half that is mapped, for the kernel only
    /// (in the kernel's read-only data): touching it must fault.
    pub kernel_address: u64,
    /// Cycle-counter ticks the CPU has spent idle, waiting for an
    /// interrupt (the counter programs read: under `-icount shift=0`,
    /// time with no instruction executed). Benchmarks of devices take it
    /// from their counts.
    pub idle_cycles: u64,
}

/// Memory, in frames of `page_size` bytes and heap bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MemoryInfo {
    /// Bytes per frame.
    pub page_size: u64,
    /// Frames the allocator manages.
    pub total_frames: u64,
    /// Frames free now.
    pub free_frames: u64,
    /// Bytes in the kernel heap.
    pub heap_total: u64,
    /// Heap bytes in use.
    pub heap_used: u64,
    /// Frames holding page tables, the kernel's and every process's.
    pub table_frames: u64,
}

/// A process's state, as `info` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ProcessState {
    /// At least one thread is running or ready.
    Running = 0,
    /// Every thread waits (sleeps, reads, waits for a child).
    Blocked = 1,
    /// Ended; its parent has not collected the status yet.
    Zombie = 2,
}

/// One process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct ProcessInfo {
    /// Its id.
    pub pid: u32,
    /// Its parent's id; 0 for none.
    pub parent: u32,
    /// Live threads.
    pub threads: u32,
    /// A [`ProcessState`].
    pub state: u32,
    /// Frames mapped in its address space (page tables not counted).
    pub resident_pages: u64,
    /// CPU time its threads used, in ticks.
    pub cpu_ticks: u64,
    /// Times one of its threads was switched out while still ready to run
    /// (its time slice ran out, or a more urgent thread became ready);
    /// yields are not counted.
    pub preemptions: u64,
    /// The program's name.
    pub name: Name,
}

/// One interrupt line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct IrqInfo {
    /// The architecture's interrupt number.
    pub irq: u32,
    /// Explicit padding, always zero.
    pub reserved: u32,
    /// How many times it arrived.
    pub count: u64,
    /// What it is for, if the kernel knows.
    pub name: Name,
}

/// What a device's registers are reached through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DeviceKind {
    /// Memory-mapped registers: a device-memory capability.
    Memory = 1,
    /// I/O ports: an I/O-port capability.
    Ports = 2,
}

/// [`DeviceInfo::irq`] of a device without an interrupt line.
pub const NO_IRQ: u32 = u32::MAX;
/// [`DeviceInfo::pci_function`] of a device that is not on PCI.
pub const NOT_PCI: u32 = u32::MAX;
/// [`DeviceInfo::pci_bar`] of a PCI function's page of configuration
/// space (its driver's, to enable bus mastering and read capabilities),
/// which carries the function's interrupt line.
pub const PCI_CONFIG: u32 = 0xff;

/// [`DeviceInfo::flags`]: its line is masked at the interrupt controller.
pub const DEVICE_IRQ_MASKED: u32 = 1;

/// A device the kernel does not use, which init may give to a driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct DeviceInfo {
    /// What it is (`virtio-mmio`, `sp804`, `cmos-rtc`, ...).
    pub name: Name,
    /// A [`DeviceKind`].
    pub kind: u32,
    /// Its interrupt line, for `irq_claim`; [`NO_IRQ`] if none.
    pub irq: u32,
    /// The process whose handler holds the line; 0 if unclaimed.
    pub irq_owner: u32,
    /// [`DEVICE_IRQ_MASKED`].
    pub flags: u32,
    /// The first register's physical address, or the first port.
    pub base: u64,
    /// Bytes of registers, or ports.
    pub size: u64,
    /// For a PCI function's BAR or configuration space: the function as
    /// `bus << 8 | device << 3 | function`; [`NOT_PCI`] otherwise.
    pub pci_function: u32,
    /// Its vendor (low half) and device (high half) ids.
    pub pci_ids: u32,
    /// Its class, subclass and programming interface (`class << 16 |
    /// subclass << 8 | prog_if`).
    pub pci_class: u32,
    /// The BAR's index, or [`PCI_CONFIG`].
    pub pci_bar: u32,
}

impl DeviceInfo {
    /// Its kind, if the number is one.
    pub fn device_kind(&self) -> Option<DeviceKind> {
        match self.kind {
            1 => Some(DeviceKind::Memory),
            2 => Some(DeviceKind::Ports),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_from_their_bytes() {
        let info = MemoryInfo {
            page_size: 4096,
            total_frames: 7,
            free_frames: 3,
            heap_total: 1 << 20,
            heap_used: 12,
            table_frames: 2,
        };
        let mut bytes = [0u8; 64];
        bytes[1..1 + size_of::<MemoryInfo>()].copy_from_slice(record_bytes(&info));
        assert_eq!(
            read_record::<MemoryInfo>(&bytes[1..]),
            Some(info),
            "unaligned"
        );
        assert_eq!(read_record::<MemoryInfo>(&bytes[..8]), None, "too short");
    }

    #[test]
    fn numbers_match_positions() {
        for (i, call) in Syscall::ALL.iter().enumerate() {
            assert_eq!(*call as usize, i);
            assert_eq!(Syscall::from_number(i), Some(*call));
        }
        assert_eq!(Syscall::from_number(Syscall::ALL.len()), None);
        for (i, error) in Error::ALL.iter().enumerate() {
            assert_eq!(*error as usize, i + 1);
        }
        for (i, kind) in InfoKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
            assert_eq!(InfoKind::from_number(i), Some(*kind));
        }
        assert_eq!(InfoKind::from_number(InfoKind::ALL.len()), None);
    }

    #[test]
    fn errors_round_trip_and_values_pass() {
        for error in Error::ALL {
            assert_eq!(decode(error.encode()), Err(error));
        }
        assert_eq!(decode(0), Ok(0));
        assert_eq!(decode(FIRST_ERROR_VALUE - 1), Ok(FIRST_ERROR_VALUE - 1));
        // Unassigned error numbers still read as errors.
        assert_eq!(decode(usize::MAX - 200), Err(Error::InvalidArgument));
    }

    #[test]
    fn names_are_cut_and_read_back() {
        assert_eq!(name_str(&name_from("init")), "init");
        let long = "a-very-long-program-name-beyond-thirty-two-bytes";
        assert_eq!(name_str(&name_from(long)), &long[..32]);
    }

    #[test]
    fn records_have_the_same_layout_on_every_target() {
        assert_eq!(size_of::<WaitStatus>(), 40);
        assert_eq!(size_of::<MemoryInfo>(), 48);
        assert_eq!(size_of::<ProcessInfo>(), 72);
        assert_eq!(size_of::<IrqInfo>(), 48);
        assert_eq!(size_of::<SystemInfo>(), 144);
        assert_eq!(size_of::<DeviceInfo>(), 80);
    }
}
