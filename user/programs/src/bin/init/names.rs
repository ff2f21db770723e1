//! Init's name service (the protocol is in `rt::names`): a thread of init
//! answers registrations and lookups on an endpoint that only init holds
//! the receive right to.

use crate::fail;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use rt::Error;
use rt::ipc::{Endpoint, IpcBuffer, Message};
use rt::names::{self, REGISTRAR};

/// Init's capability to the service, every right (0 until started).
static SERVICE: AtomicU32 = AtomicU32::new(0);

/// Starts the service on a thread of its own.
pub fn start() -> Result<(), Error> {
    let endpoint = Endpoint::create()?;
    let receiver = endpoint.copy(abi::RIGHT_RECEIVE, 0)?.into_handle();
    rt::thread::spawn(move || serve(Endpoint::from_handle(receiver)))?;
    SERVICE.store(endpoint.into_handle(), Ordering::Relaxed);
    Ok(())
}

/// A new capability to the service with `badge` ([`names::REGISTRAR`] or
/// [`names::CLIENT`]), for a program init starts.
pub fn capability(badge: usize) -> Result<abi::Handle, Error> {
    rt::ipc::cap_copy(
        SERVICE.load(Ordering::Relaxed),
        abi::RIGHT_SEND | abi::RIGHT_GRANT,
        badge,
    )
}

/// What is registered: a name and init's capability to the endpoint.
type Entries = Vec<(String, abi::Handle)>;

fn serve(endpoint: Endpoint) {
    let Ok(mut buffer) = IpcBuffer::register() else {
        return;
    };
    let mut entries = Entries::new();
    let mut request = endpoint.recv();
    loop {
        let reply = match request {
            Ok(message) => answer(&message, &mut buffer, &mut entries),
            Err(_) => return,
        };
        request = endpoint.reply_recv(reply);
    }
}

/// The name a request's payload holds.
fn name_in(message: &Message, buffer: &mut IpcBuffer) -> Result<String, Error> {
    let len = message.payload().ok_or(Error::InvalidArgument)?;
    if len == 0 || len > abi::MAX_NAME_LENGTH {
        return Err(Error::InvalidArgument);
    }
    core::str::from_utf8(&buffer.bytes()[..len])
        .map(String::from)
        .map_err(|_| Error::InvalidArgument)
}

fn answer(message: &Message, buffer: &mut IpcBuffer, entries: &mut Entries) -> Message {
    let carried = message.capability();
    let outcome = name_in(message, buffer).and_then(|name| match message.plain_label() {
        names::REGISTER => {
            let handle = carried.ok_or(Error::InvalidArgument)?;
            if message.badge != REGISTRAR {
                return Err(Error::PermissionDenied);
            }
            // A name stays taken while its server lives; a dead server's
            // name goes to the next to register it (a restarted driver).
            if let Some(index) = entries.iter().position(|(known, _)| *known == name) {
                let alive = rt::ipc::cap_info(entries[index].1).is_ok_and(|info| !info.peer_gone);
                if alive {
                    return Err(Error::Busy);
                }
                let (_, dead) = entries.swap_remove(index);
                let _ = rt::ipc::cap_delete(dead);
            }
            // Clients get to send, and nothing more.
            let send = rt::ipc::cap_copy(handle, abi::RIGHT_SEND | abi::RIGHT_GRANT, 0)?;
            entries.push((name, send));
            Ok(None)
        }
        names::LOOKUP => entries
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, handle)| Some(handle))
            .ok_or(Error::NotFound),
        _ => Err(Error::InvalidArgument),
    });
    // What a request brought is not kept: a registration keeps a
    // send-only copy.
    if let Some(handle) = carried {
        let _ = rt::ipc::cap_delete(handle);
    }
    match outcome {
        Ok(Some(handle)) => Message::new(0, [0; 4]).carrying(handle, false),
        Ok(None) => Message::new(0, [0; 4]),
        Err(error) => Message::new(names::reply_label(Err(error)), [0; 4]),
    }
}

pub const TESTS: &[crate::Test] = &[crate::Test {
    name: "names::servers_are_found_by_name",
    run: servers_are_found_by_name,
}];

/// The label that ends the probe's `ipc-echo` server (see probe.rs).
const QUIT: usize = 0xdead;

fn servers_are_found_by_name() -> crate::Outcome {
    use rt::names::Names;
    use rt::process::{self, Exit};
    let mut names = Names::from_handle(capability(REGISTRAR).map_err(fail("registrar"))?)
        .map_err(fail("names"))?;
    let echo = Endpoint::create().map_err(fail("endpoint"))?;
    let server = process::start("probe", "ipc-echo", &[echo.handle()]).map_err(fail("echo"))?;
    names.register("echo", &echo).map_err(fail("register"))?;
    ensure_eq!(
        names.register("echo", &echo).err(),
        Some(Error::Busy),
        "a name taken"
    );
    ensure_eq!(
        names.lookup("nobody").err(),
        Some(Error::NotFound),
        "an unknown name"
    );
    let long = "a-name-longer-than-thirty-two-bytes";
    ensure_eq!(
        names.lookup(long).err(),
        Some(Error::TooLong),
        "a long name"
    );
    // A client finds the server by name, calls it, and cannot register.
    let client = capability(rt::names::CLIENT).map_err(fail("client"))?;
    let exit = process::run_with("probe", "names-call echo", &[client]).map_err(fail("client"))?;
    let _ = rt::ipc::cap_delete(client);
    ensure_eq!(exit, Exit::Code(0), "the client");
    // What a lookup gives can send, and nothing more.
    let found = names.lookup("echo").map_err(fail("lookup"))?;
    let info = rt::ipc::cap_info(found.handle()).map_err(fail("cap_info"))?;
    ensure_eq!(info.rights, abi::RIGHT_SEND | abi::RIGHT_GRANT, "rights");
    let _ = found.call(Message::new(QUIT, [0; 4]));
    ensure_eq!(
        server.wait().map_err(fail("wait"))?,
        Exit::Code(0),
        "the echo server"
    );
    // A name stays taken while its server can receive (init still holds
    // the first endpoint's receive right), and goes to a new server once
    // it cannot.
    let second = Endpoint::create().map_err(fail("endpoint"))?;
    ensure_eq!(
        names.register("echo", &second).err(),
        Some(Error::Busy),
        "a live server's name"
    );
    drop(echo);
    ensure!(
        rt::ipc::cap_info(found.handle()).is_ok_and(|info| info.peer_gone),
        "the first server's endpoint is not reported gone"
    );
    names
        .register("echo", &second)
        .map_err(fail("register over a dead server"))?;
    let again = names.lookup("echo").map_err(fail("lookup"))?;
    ensure!(
        !rt::ipc::cap_info(again.handle())
            .map_err(fail("cap_info"))?
            .peer_gone,
        "the new server's endpoint is reported gone"
    );
    Ok(())
}
