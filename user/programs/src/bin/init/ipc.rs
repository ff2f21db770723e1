//! User-level tests of capabilities and IPC: messages between processes
//! and threads, every way a handle can be wrong, notifications, what a
//! server's death does to its clients, and that objects are freed.

use crate::fail;
use crate::{Outcome, Test};
use abi::{Error, Handle, ObjectKind};
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use rt::ipc::{self, Endpoint, Memory, Message, Notification};
use rt::process::{self, Exit};
use rt::sys;

/// The label that ends the probe's `ipc-echo` server (see probe.rs).
const QUIT: usize = 0xdead;

pub const TESTS: &[Test] = &[
    Test {
        name: "ipc::calls_between_processes_carry_label_words_and_badge",
        run: calls_between_processes_carry_label_words_and_badge,
    },
    Test {
        name: "ipc::send_and_receive_between_threads",
        run: send_and_receive_between_threads,
    },
    Test {
        name: "ipc::every_bad_handle_gets_its_error",
        run: every_bad_handle_gets_its_error,
    },
    Test {
        name: "ipc::payloads_are_copied_between_ipc_buffers",
        run: payloads_are_copied_between_ipc_buffers,
    },
    Test {
        name: "ipc::capabilities_travel_in_messages",
        run: capabilities_travel_in_messages,
    },
    Test {
        name: "ipc::notifications_wake_and_accumulate",
        run: notifications_wake_and_accumulate,
    },
    Test {
        name: "ipc::a_bound_notification_arrives_through_recv",
        run: a_bound_notification_arrives_through_recv,
    },
    Test {
        name: "ipc::a_dead_server_fails_its_clients",
        run: a_dead_server_fails_its_clients,
    },
    Test {
        name: "ipc::objects_go_with_their_last_capability",
        run: objects_go_with_their_last_capability,
    },
    Test {
        name: "ipc::waits_time_out_and_late_replies_are_dropped",
        run: waits_time_out_and_late_replies_are_dropped,
    },
    Test {
        name: "ipc::thread_and_process_handles_set_priorities_and_wait",
        run: thread_and_process_handles_set_priorities_and_wait,
    },
    Test {
        name: "memory::a_memory_object_is_shared_between_processes",
        run: a_memory_object_is_shared_between_processes,
    },
];

/// Starts probe `arguments` with `handles`.
fn serve(arguments: &str, handles: &[Handle]) -> Result<process::Child, alloc::string::String> {
    process::start("probe", arguments, handles).map_err(fail("spawn"))
}

fn exit_of(child: process::Child) -> Result<Exit, alloc::string::String> {
    child.wait().map_err(fail("wait"))
}

fn calls_between_processes_carry_label_words_and_badge() -> Outcome {
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let server = serve("ipc-echo", &[endpoint.handle()])?;
    let client = endpoint
        .copy(abi::RIGHT_SEND, 0x5eed)
        .map_err(fail("badged copy"))?;
    for i in 0..500usize {
        let reply = client
            .call(Message::new(i, [i, 2 * i, 3 * i, !i]))
            .map_err(fail("call"))?;
        ensure_eq!(
            reply,
            Message {
                label: i + 1,
                badge: 0,
                words: [!i, 3 * i, 2 * i, 0x5eed],
            },
            "reply"
        );
    }
    // Through the unbadged capability the server sees badge 0.
    let reply = endpoint
        .call(Message::new(7, [0; 4]))
        .map_err(fail("unbadged call"))?;
    ensure_eq!(reply.words[3], 0, "no badge");
    ensure_eq!(
        client.call(Message::new(1 << abi::LABEL_BITS, [0; 4])),
        Err(Error::InvalidArgument),
        "a label too wide"
    );
    client
        .call(Message::new(QUIT, [0; 4]))
        .map_err(fail("quit"))?;
    ensure_eq!(exit_of(server)?, Exit::Code(0), "server");
    Ok(())
}

fn send_and_receive_between_threads() -> Outcome {
    static RECEIVED: AtomicUsize = AtomicUsize::new(0);
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    ensure_eq!(
        endpoint.try_recv(),
        Err(Error::WouldBlock),
        "receive with nobody sending"
    );
    ensure_eq!(
        endpoint.try_send(Message::default()),
        Err(Error::WouldBlock),
        "send with nobody receiving"
    );
    let receiver = endpoint.handle();
    rt::thread::spawn(move || {
        let endpoint = core::mem::ManuallyDrop::new(Endpoint::from_handle(receiver));
        for expected in 1..=100 {
            match endpoint.recv() {
                Ok(m) if m.label == expected && m.words == [expected; 4] => {
                    RECEIVED.fetch_add(1, Ordering::Relaxed);
                }
                _ => return,
            }
        }
    })
    .map_err(fail("thread"))?;
    for label in 1..=100 {
        endpoint
            .send(Message::new(label, [label; 4]))
            .map_err(fail("send"))?;
    }
    // The last send returned when the message was taken; let the
    // receiver count it.
    while RECEIVED.load(Ordering::Relaxed) < 100 {
        sys::yield_now();
        ensure!(
            RECEIVED.load(Ordering::Relaxed) <= 100,
            "more messages than sent"
        );
    }
    ensure_eq!(RECEIVED.load(Ordering::Relaxed), 100, "messages received");
    ensure_eq!(
        ipc::reply(Message::default()),
        Err(Error::NoCaller),
        "reply without a call"
    );
    Ok(())
}

fn every_bad_handle_gets_its_error() -> Outcome {
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let notification = Notification::create().map_err(fail("notification"))?;
    let info = ipc::cap_info(endpoint.handle()).map_err(fail("info"))?;
    ensure_eq!(
        (info.kind, info.rights, info.badge),
        (Some(ObjectKind::Endpoint), abi::ENDPOINT_RIGHTS, 0),
        "a new endpoint's capability"
    );
    // Never granted: a slot this process never filled.
    let never = abi::initial_handle(abi::MAX_CAPABILITIES - 1);
    ensure_eq!(
        ipc::cap_info(never),
        Err(Error::InvalidHandle),
        "never granted"
    );
    // Forged: a generation never given out, and a value wider than a handle.
    ensure_eq!(
        ipc::cap_info(endpoint.handle() + (77 << abi::HANDLE_INDEX_BITS)),
        Err(Error::InvalidHandle),
        "forged generation"
    );
    ensure_eq!(
        sys::raw(abi::Syscall::CapInfo as usize, [usize::MAX, 0, 0, 0, 0, 0]),
        Err(Error::InvalidHandle),
        "wider than a handle"
    );
    // Deleted, then stale once the slot is reused.
    let copy = endpoint.copy(abi::RIGHT_SEND, 0).map_err(fail("copy"))?;
    let deleted = copy.into_handle();
    ipc::cap_delete(deleted).map_err(fail("delete"))?;
    ensure_eq!(ipc::cap_info(deleted), Err(Error::InvalidHandle), "deleted");
    ensure_eq!(
        ipc::cap_delete(deleted),
        Err(Error::InvalidHandle),
        "deleted twice"
    );
    let reuse = endpoint.copy(abi::RIGHT_SEND, 0).map_err(fail("copy"))?;
    ensure_eq!(
        reuse.handle() & ((1 << abi::HANDLE_INDEX_BITS) - 1),
        deleted & ((1 << abi::HANDLE_INDEX_BITS) - 1),
        "the slot is reused"
    );
    ensure_eq!(
        Endpoint::from_handle(deleted).try_send(Message::default()),
        Err(Error::InvalidHandle),
        "stale generation"
    );
    // Wrong type, missing right, rights that cannot grow.
    ensure_eq!(
        notification
            .copy(abi::RIGHT_SIGNAL, 0)
            .map(|n| n.into_handle())
            .map(|h| { Endpoint::from_handle(h).try_send(Message::default()) }),
        Ok(Err(Error::WrongType)),
        "a notification used as an endpoint"
    );
    let send_only = endpoint.copy(abi::RIGHT_SEND, 0).map_err(fail("copy"))?;
    ensure_eq!(
        send_only.try_recv(),
        Err(Error::MissingRight),
        "receive without the right"
    );
    ensure_eq!(
        send_only
            .copy(abi::ENDPOINT_RIGHTS, 0)
            .map(|e| e.into_handle()),
        Err(Error::MissingRight),
        "more rights than held"
    );
    ensure_eq!(
        process::start("probe", "exit 0", &[send_only.handle()]).map(|_| ()),
        Err(Error::MissingRight),
        "passing a capability without the grant right"
    );
    // A full table: fill every free slot, then one more.
    let mut filler = Vec::new();
    let full = loop {
        match endpoint.copy(abi::RIGHT_SEND, 0) {
            Ok(copy) => filler.push(copy),
            Err(error) => break error,
        }
        ensure!(
            filler.len() <= abi::MAX_CAPABILITIES,
            "the table never fills"
        );
    };
    ensure_eq!(full, Error::TableFull, "a full table");
    drop(filler);
    ensure!(
        Endpoint::create().is_ok(),
        "room again once the copies are deleted"
    );
    Ok(())
}

fn notifications_wake_and_accumulate() -> Outcome {
    static WOKEN_WITH: AtomicUsize = AtomicUsize::new(0);
    let notification = Notification::create().map_err(fail("notification"))?;
    ensure_eq!(notification.poll(), Ok(0), "nothing yet");
    notification.signal(0b0101).map_err(fail("signal"))?;
    notification.signal(0b0011).map_err(fail("signal"))?;
    ensure_eq!(notification.poll(), Ok(0b0111), "bits accumulate");
    ensure_eq!(notification.poll(), Ok(0), "and are taken");
    let waiter = notification.handle();
    WOKEN_WITH.store(0, Ordering::Relaxed);
    rt::thread::spawn(move || {
        let notification = core::mem::ManuallyDrop::new(Notification::from_handle(waiter));
        if let Ok(bits) = notification.wait() {
            WOKEN_WITH.store(bits, Ordering::Relaxed);
        }
    })
    .map_err(fail("thread"))?;
    // Let the waiter block first.
    for _ in 0..10 {
        sys::yield_now();
    }
    notification
        .signal(1 << (40 % usize::BITS))
        .map_err(fail("signal"))?;
    let started = sys::time_ns();
    while WOKEN_WITH.load(Ordering::Relaxed) == 0 {
        ensure!(
            sys::time_ns() - started < 2_000_000_000,
            "the waiter never woke"
        );
        sys::yield_now();
    }
    ensure_eq!(
        WOKEN_WITH.load(Ordering::Relaxed),
        1 << (40 % usize::BITS),
        "the waiter got the bit"
    );
    let signal_only = notification
        .copy(abi::RIGHT_SIGNAL, 0)
        .map_err(fail("copy"))?;
    ensure_eq!(
        signal_only.poll(),
        Err(Error::MissingRight),
        "poll without wait right"
    );
    Ok(())
}

fn a_dead_server_fails_its_clients() -> Outcome {
    // The server holds the only receive right, and never receives: the
    // client's call waits until the server ends, then fails.
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let client = endpoint.copy(abi::RIGHT_SEND, 0).map_err(fail("copy"))?;
    let server = serve("ipc-idle 30", &[endpoint.handle()])?;
    drop(endpoint);
    ensure_eq!(
        client.call(Message::new(1, [0; 4])),
        Err(Error::PeerDied),
        "a call queued at a server that ends"
    );
    ensure_eq!(exit_of(server)?, Exit::Code(0), "idle server");
    ensure_eq!(
        client.send(Message::default()),
        Err(Error::PeerDied),
        "a send after it ended"
    );
    // A server that takes the call and ends without replying.
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let client = endpoint.copy(abi::RIGHT_SEND, 0).map_err(fail("copy"))?;
    let server = serve("ipc-vanish", &[endpoint.handle()])?;
    drop(endpoint);
    ensure_eq!(
        client.call(Message::new(2, [0; 4])),
        Err(Error::PeerDied),
        "a call taken by a server that ends"
    );
    ensure_eq!(exit_of(server)?, Exit::Code(0), "vanishing server");
    Ok(())
}

fn objects_go_with_their_last_capability() -> Outcome {
    let memory = || process::memory().map_err(fail("memory"));
    // Every kind of object: endpoints, notifications, memory objects and
    // mappings, and an interrupt handler, device memory, a thread.
    let (irq, registers) = crate::device::hoard_resources()?;
    let arguments = format!("ipc-hoard 40 {irq}");
    let hoard = || {
        process::run_with("probe", &arguments, &[abi::INIT_IRQ_CONTROL, registers])
            .map_err(fail("hoard"))
    };
    // Warm-up: the first run may grow the kernel's heap, which keeps it.
    ensure_eq!(hoard()?, Exit::Code(0), "warm-up");
    let before = memory()?;
    for _ in 0..3 {
        ensure_eq!(hoard()?, Exit::Code(0), "hoarder");
    }
    let after = memory()?;
    ensure_eq!(after.free_frames, before.free_frames, "free frames");
    ensure_eq!(after.heap_used, before.heap_used, "kernel heap in use");
    Ok(())
}

fn a_memory_object_is_shared_between_processes() -> Outcome {
    const PAGES: usize = 3;
    let free_before = process::memory().map_err(fail("memory"))?.free_frames;
    let memory = Memory::create(PAGES * 4096 - 100, false).map_err(fail("create"))?;
    let mapping = memory.map(true).map_err(fail("map"))?;
    ensure_eq!(
        mapping.len,
        PAGES * 4096,
        "the bytes mapped: the whole object"
    );
    for page in 0..PAGES {
        // SAFETY: the kernel mapped the object here, writable, zeroed.
        unsafe {
            let at = (mapping.address + page * 4096) as *mut usize;
            ensure_eq!(at.add(1).read_volatile(), 0, "a fresh object is zeroed");
            at.write_volatile(page + 1);
        }
    }
    let exit = process::run_with(
        "probe",
        &format!("shared-memory {PAGES}"),
        &[memory.handle()],
    )
    .map_err(fail("probe"))?;
    ensure_eq!(exit, Exit::Code(0), "the probe saw what this process wrote");
    for page in 0..PAGES {
        // SAFETY: still mapped here.
        let seen = unsafe {
            ((mapping.address + page * 4096) as *const usize)
                .add(1)
                .read_volatile()
        };
        ensure_eq!(seen, page + 100, "this process sees what the probe wrote");
    }
    // Rights: a read-only copy maps read-only and refuses writable maps.
    let read_only = memory.copy(abi::RIGHT_MAP_READ, 0).map_err(fail("copy"))?;
    ensure_eq!(
        read_only.map(true),
        Err(Error::MissingRight),
        "a writable map without the right"
    );
    let second = read_only.map(false).map_err(fail("read-only map"))?;
    // SAFETY: mapped readable just above.
    let first_word = unsafe { (second.address as *const usize).read_volatile() };
    ensure_eq!(first_word, 1, "the second mapping shows the same frames");
    ensure_eq!(
        memory.physical(),
        Err(Error::InvalidArgument),
        "a scattered object has no one physical address"
    );
    let contiguous = Memory::create(4 * 4096, true).map_err(fail("contiguous"))?;
    let physical = contiguous.physical().map_err(fail("physical"))?;
    ensure!(
        physical != 0 && physical % 4096 == 0,
        "physical address {physical:#x}"
    );
    ensure_eq!(
        ipc::memory_unmap(mapping.address + 4096),
        Err(Error::InvalidArgument),
        "unmapping from the middle"
    );
    ipc::memory_unmap(mapping.address).map_err(fail("unmap"))?;
    ipc::memory_unmap(second.address).map_err(fail("unmap"))?;
    drop((memory, read_only, contiguous));
    let free_after = process::memory().map_err(fail("memory"))?.free_frames;
    ensure_eq!(free_after, free_before, "every frame came back");
    Ok(())
}

fn capabilities_travel_in_messages() -> Outcome {
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let notification = Notification::create().map_err(fail("notification"))?;
    let server = serve("cap-receiver 2", &[endpoint.handle()])?;
    // Refused before anything moves: no grant right on the endpoint
    // capability, or on the capability sent.
    let no_grant = endpoint.copy(abi::RIGHT_SEND, 0).map_err(fail("copy"))?;
    ensure_eq!(
        no_grant.call(Message::new(1, [0; 4]).carrying(notification.handle(), false)),
        Err(Error::MissingRight),
        "an endpoint capability without the grant right"
    );
    let signal_only = notification
        .copy(abi::RIGHT_SIGNAL, 0)
        .map_err(fail("copy"))?;
    ensure_eq!(
        endpoint.call(Message::new(1, [0; 4]).carrying(signal_only.handle(), false)),
        Err(Error::MissingRight),
        "a capability without the grant right"
    );
    // Copied: the receiver signals through its copy; this process keeps its own.
    let reply = endpoint
        .call(Message::new(1, [0x42, 0, 0, 0]).carrying(notification.handle(), false))
        .map_err(fail("call with a copy"))?;
    ensure_eq!(
        reply.words[0] as abi::Rights,
        abi::NOTIFICATION_RIGHTS,
        "the copy's rights, as the receiver sees them"
    );
    ensure_eq!(notification.poll(), Ok(0x42), "signalled through the copy");
    ensure!(
        ipc::cap_info(notification.handle()).is_ok(),
        "the sender keeps a copied capability"
    );
    // Moved: the sender's handle is gone afterwards.
    let moving = notification
        .copy(abi::RIGHT_SIGNAL | abi::RIGHT_GRANT, 0)
        .map_err(fail("copy"))?
        .into_handle();
    let reply = endpoint
        .call(Message::new(1, [0x7, 0, 0, 0]).carrying(moving, true))
        .map_err(fail("call with a move"))?;
    ensure_eq!(
        reply.words[0] as abi::Rights,
        abi::RIGHT_SIGNAL | abi::RIGHT_GRANT,
        "the moved capability's rights"
    );
    ensure_eq!(
        notification.poll(),
        Ok(0x7),
        "signalled through the moved capability"
    );
    ensure_eq!(
        ipc::cap_info(moving),
        Err(Error::InvalidHandle),
        "a moved capability leaves the sender"
    );
    ensure_eq!(exit_of(server)?, Exit::Code(0), "receiver");
    Ok(())
}

fn a_bound_notification_arrives_through_recv() -> Outcome {
    static SIGNALLED: AtomicUsize = AtomicUsize::new(0);
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let notification = Notification::create().map_err(fail("notification"))?;
    notification.bind().map_err(fail("bind"))?;
    // Bits set before the receive come back at once.
    notification.signal(0b100).map_err(fail("signal"))?;
    let message = endpoint.recv().map_err(fail("recv"))?;
    ensure_eq!(
        (message.label, message.badge),
        (abi::NOTIFIED, 0b100),
        "pending bits"
    );
    // A signal from another thread ends a receive that waits.
    let signaller = notification.handle();
    SIGNALLED.store(0, Ordering::Relaxed);
    rt::thread::spawn(move || {
        let notification = core::mem::ManuallyDrop::new(Notification::from_handle(signaller));
        for _ in 0..5 {
            sys::yield_now();
        }
        if notification.signal(0b11).is_ok() {
            SIGNALLED.store(1, Ordering::Relaxed);
        }
    })
    .map_err(fail("thread"))?;
    let message = endpoint.recv().map_err(fail("recv"))?;
    ensure_eq!(
        (message.label, message.badge),
        (abi::NOTIFIED, 0b11),
        "a signal while waiting"
    );
    ensure_eq!(SIGNALLED.load(Ordering::Relaxed), 1, "the signaller ran");
    ensure_eq!(notification.poll(), Ok(0), "the receive took the bits");
    // Messages still come as messages.
    let server = serve("ipc-echo", &[endpoint.handle()])?;
    let reply = endpoint
        .call(Message::new(5, [0; 4]))
        .map_err(fail("call"))?;
    ensure_eq!(reply.label, 6, "a call's reply");
    endpoint
        .call(Message::new(QUIT, [0; 4]))
        .map_err(fail("quit"))?;
    ensure_eq!(exit_of(server)?, Exit::Code(0), "server");
    // One thread per notification.
    let other = notification.handle();
    static REFUSED: AtomicUsize = AtomicUsize::new(0);
    rt::thread::spawn(move || {
        let notification = core::mem::ManuallyDrop::new(Notification::from_handle(other));
        if notification.bind() == Err(Error::InvalidArgument) {
            REFUSED.store(1, Ordering::Relaxed);
        } else {
            REFUSED.store(2, Ordering::Relaxed);
        }
    })
    .map_err(fail("thread"))?;
    while REFUSED.load(Ordering::Relaxed) == 0 {
        sys::yield_now();
    }
    ensure_eq!(
        REFUSED.load(Ordering::Relaxed),
        1,
        "binding a notification bound elsewhere"
    );
    ipc::unbind().map_err(fail("unbind"))?;
    Ok(())
}

fn payloads_are_copied_between_ipc_buffers() -> Outcome {
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    ensure_eq!(
        endpoint.try_send(Message::new(1, [0; 4]).with_payload(8)),
        Err(Error::InvalidArgument),
        "a payload without an IPC buffer"
    );
    let server = serve("payload-echo", &[endpoint.handle()])?;
    let mut buffer = ipc::IpcBuffer::register().map_err(fail("buffer"))?;
    for len in [1usize, 7, 1000, 4095, 4096] {
        for (n, byte) in buffer.bytes()[..len].iter_mut().enumerate() {
            *byte = (n * 7 + len) as u8;
        }
        let reply = endpoint
            .call(Message::new(2, [0; 4]).with_payload(len))
            .map_err(fail("call"))?;
        ensure_eq!(reply.payload(), Some(len), "payload length");
        let bytes = buffer.bytes();
        ensure!(
            (0..len).all(|n| bytes[n] == ((len - 1 - n) * 7 + len) as u8),
            "the {len}-byte payload came back reversed"
        );
    }
    ensure_eq!(
        endpoint.call(Message::new(2, [0; 4]).with_payload(abi::MAX_PAYLOAD + 1)),
        Err(Error::TooLong),
        "a payload longer than a page"
    );
    payloads_follow_a_buffer_remapped(&endpoint, &mut buffer)?;
    ensure_eq!(
        sys::raw(abi::Syscall::IpcBuffer as usize, [0x1001, 0, 0, 0, 0, 0]),
        Err(Error::InvalidArgument),
        "a misaligned buffer"
    );
    ensure_eq!(
        sys::raw(
            abi::Syscall::IpcBuffer as usize,
            [abi::layout::ENTRY & !0xfff, 0, 0, 0, 0, 0]
        ),
        Err(Error::BadAddress),
        "a buffer in read-only program text"
    );
    endpoint
        .call(Message::new(QUIT, [0; 4]))
        .map_err(fail("quit"))?;
    ensure_eq!(exit_of(server)?, Exit::Code(0), "server");
    Ok(())
}

/// The kernel keeps the frame behind an IPC buffer between messages: a
/// buffer unmapped must not be read any more, and one mapped again at the
/// same address is the new page. (`payload-echo` reverses the payload.)
fn payloads_follow_a_buffer_remapped(endpoint: &Endpoint, own: &mut ipc::IpcBuffer) -> Outcome {
    let register =
        |address: usize| sys::raw(abi::Syscall::IpcBuffer as usize, [address, 0, 0, 0, 0, 0]);
    let page = abi::MAX_PAYLOAD;
    let rw = abi::PROT_READ | abi::PROT_WRITE;
    let address = sys::map(0, page, rw).map_err(fail("map"))?;
    let echo = |fill: u8| -> Result<u8, Error> {
        // SAFETY: the page is mapped, readable and writable, for this test.
        let bytes = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, 2) };
        bytes[0] = fill;
        bytes[1] = !fill;
        endpoint.call(Message::new(2, [0; 4]).with_payload(2))?;
        Ok(bytes[0])
    };
    let outcome = (|| {
        register(address).map_err(fail("register"))?;
        ensure_eq!(echo(0x11), Ok(!0x11), "the payload through the first page");
        sys::unmap(address, page).map_err(fail("unmap"))?;
        ensure_eq!(
            endpoint.call(Message::new(2, [0; 4]).with_payload(2)).err(),
            Some(Error::BadAddress),
            "a payload from an IPC buffer unmapped"
        );
        ensure_eq!(sys::map(address, page, rw), Ok(address), "map again");
        ensure_eq!(echo(0x22), Ok(!0x22), "the payload through the new page");
        Ok(())
    })();
    let _ = sys::unmap(address, page);
    // The test thread's own buffer again, for what follows.
    let own_address = own.bytes().as_ptr() as usize;
    register(own_address).map_err(fail("register again"))?;
    outcome
}

fn waits_time_out_and_late_replies_are_dropped() -> Outcome {
    use core::time::Duration;
    let endpoint = Endpoint::create().map_err(fail("endpoint"))?;
    let notification = Notification::create().map_err(fail("notification"))?;
    /// Leaves the test thread waiting for ever, however the test ends.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = ipc::set_timeout(None);
        }
    }
    ipc::set_timeout(Some(Duration::from_millis(20))).map_err(fail("set timeout"))?;
    let _reset = Reset;
    let started = sys::time_ns();
    let nobody = endpoint.recv();
    let waited = sys::time_ns() - started;
    ensure_eq!(
        nobody.err(),
        Some(Error::TimedOut),
        "a receive nobody sends to"
    );
    ensure!(
        waited >= 20_000_000,
        "it waited {waited} ns, less than the timeout"
    );
    ensure_eq!(
        endpoint.send(Message::new(1, [0; 4])).err(),
        Some(Error::TimedOut),
        "a send nobody receives"
    );
    ensure_eq!(
        notification.wait().err(),
        Some(Error::TimedOut),
        "a notification nobody signals"
    );
    // A server that takes the call and answers after 100 ms: too late.
    let server = serve("ipc-sit 100", &[endpoint.handle()])?;
    let client = endpoint.copy(abi::RIGHT_SEND, 0).map_err(fail("copy"))?;
    ensure_eq!(
        client.call(Message::new(7, [0; 4])).err(),
        Some(Error::TimedOut),
        "a call answered too late"
    );
    // Waiting for ever again, the next call gets its own answer, never
    // the late one.
    ipc::set_timeout(None).map_err(fail("clear timeout"))?;
    let answer = client
        .call(Message::new(8, [1, 2, 3, 4]))
        .map_err(fail("second call"))?;
    ensure_eq!(
        (answer.plain_label(), answer.words),
        (8, [1, 2, 3, 4]),
        "the second call's answer"
    );
    ensure_eq!(exit_of(server)?, Exit::Code(0), "slow server");
    Ok(())
}

fn thread_and_process_handles_set_priorities_and_wait() -> Outcome {
    static WOKEN: AtomicUsize = AtomicUsize::new(0);
    WOKEN.store(0, Ordering::Relaxed);
    let wake = Notification::create().map_err(fail("notification"))?;
    let theirs = wake
        .copy(abi::RIGHT_WAIT, 0)
        .map_err(fail("copy"))?
        .into_handle();
    let worker = rt::thread::start(move || {
        let wake = Notification::from_handle(theirs);
        for _ in 0..2 {
            if wake.wait().is_err() {
                return;
            }
            WOKEN.fetch_add(1, Ordering::Relaxed);
        }
    })
    .map_err(fail("start a thread"))?;
    ensure_eq!(
        ipc::cap_info(worker.handle())
            .map_err(fail("cap_info"))?
            .kind,
        Some(ObjectKind::Thread),
        "what thread_spawn gives"
    );
    sys::yield_now(); // the worker runs and waits
    // Of equal priority, the woken worker waits for its turn.
    wake.signal(1).map_err(fail("signal"))?;
    ensure_eq!(WOKEN.load(Ordering::Relaxed), 0, "woken at equal priority");
    sys::yield_now();
    ensure_eq!(WOKEN.load(Ordering::Relaxed), 1, "after a yield");
    // Raised above this thread, it runs the moment it is woken.
    ensure_eq!(
        worker.set_priority(6, None).err(),
        Some(Error::PermissionDenied),
        "raising without the control capability"
    );
    worker
        .set_priority(6, Some(abi::INIT_CONTROL))
        .map_err(fail("raise"))?;
    wake.signal(1).map_err(fail("signal"))?;
    ensure_eq!(
        WOKEN.load(Ordering::Relaxed),
        2,
        "woken at a higher priority"
    );
    ensure_eq!(
        worker.set_priority(8, None).err(),
        Some(Error::InvalidArgument),
        "priority 8"
    );
    let weak = ipc::cap_copy(worker.handle(), abi::RIGHT_GRANT, 0).map_err(fail("copy"))?;
    ensure_eq!(
        rt::thread::set_priority_of(weak, 2, None).err(),
        Some(Error::MissingRight),
        "a thread handle without the schedule right"
    );
    ipc::cap_delete(weak).map_err(fail("delete"))?;
    ensure_eq!(
        rt::thread::set_priority_of(wake.handle(), 2, None).err(),
        Some(Error::WrongType),
        "a notification as a thread"
    );
    // The worker ended after its second wake-up.
    ensure_eq!(
        worker.set_priority(2, None).err(),
        Some(Error::NotFound),
        "a thread that has ended"
    );
    // A child is waited for through its handle.
    let child = process::start("probe", "exit 7", &[]).map_err(fail("start"))?;
    let weak = ipc::cap_copy(child.handle(), abi::RIGHT_KILL, 0).map_err(fail("copy"))?;
    ensure_eq!(
        sys::raw(
            abi::Syscall::ProcessWait as usize,
            [weak as usize, 0, 0, 0, 0, 0]
        )
        .err(),
        Some(Error::MissingRight),
        "a process handle without the wait right"
    );
    ipc::cap_delete(weak).map_err(fail("delete"))?;
    ensure_eq!(
        child.wait().map_err(fail("wait"))?,
        Exit::Code(7),
        "the child's end"
    );
    ensure_eq!(
        child.wait().err(),
        Some(Error::NotFound),
        "waited for twice"
    );
    Ok(())
}
