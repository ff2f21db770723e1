//! The server side of the net protocol (`protocols::net`), for every NIC
//! driver: a driver supplies the device ([`Device`]: its MAC, sending a
//! frame, taking its interrupt), and this keeps the frames waiting for the
//! client, the subscriber and the counts, and answers the requests.

#![no_std]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use protocols::net::{self, Error, MAX_FRAME, RX_BIT, Stats};
use rt::ipc::{IpcBuffer, Message, Notification};

/// Frames kept for the client at most.
const WAITING: usize = 64;

/// What a NIC driver does for the server.
pub trait Device {
    fn mac(&self) -> [u8; 6];
    /// Sends one frame; returns once the device has taken it.
    fn send(&mut self, frame: &[u8]) -> Result<(), Error>;
    /// Handles the device's interrupt: clears it at the device and passes
    /// each frame received to `received`.
    fn take_interrupt(&mut self, received: &mut dyn FnMut(&[u8]));
}

/// The frames waiting, the subscriber, the counts.
#[derive(Default)]
pub struct Server {
    waiting: VecDeque<Vec<u8>>,
    /// Buffers of frames handed over, kept for the next ones: a frame in
    /// steady traffic costs no allocation.
    spare: Vec<Vec<u8>>,
    subscriber: Option<Notification>,
    stats: Stats,
}

impl Server {
    /// Takes the device's interrupt: queues what arrived (dropping, and
    /// counting, the oldest when full) and tells the subscriber.
    fn interrupt(&mut self, device: &mut dyn Device) {
        let before = self.stats.received;
        device.take_interrupt(&mut |frame| {
            if self.waiting.len() == WAITING
                && let Some(oldest) = self.waiting.pop_front()
            {
                self.spare.push(oldest);
                self.stats.dropped += 1;
            }
            let mut copy = self.spare.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(frame);
            self.waiting.push_back(copy);
            self.stats.received += 1;
        });
        if self.stats.received != before
            && let Some(subscriber) = &self.subscriber
        {
            let _ = subscriber.signal(RX_BIT);
        }
    }

    /// What a driver's thread does with a message it received (its
    /// interrupts' notification bound to it): takes the interrupt, then
    /// calls `rearm` to unmask the line, or answers the client.
    pub fn respond(
        &mut self,
        device: &mut dyn Device,
        message: &Message,
        buffer: &mut IpcBuffer,
        rearm: impl FnOnce(),
    ) -> Message {
        if message.label & abi::NOTIFIED == 0 {
            return self.answer(device, message, buffer);
        }
        self.interrupt(device);
        rearm();
        // No caller waits for this: the reply goes nowhere.
        Message::new(0, [0; 4])
    }

    /// The reply to a client's request.
    fn answer(
        &mut self,
        device: &mut dyn Device,
        request: &Message,
        buffer: &mut IpcBuffer,
    ) -> Message {
        let refused = |error| Message::new(protocols::status(Err::<(), _>(error)), [0; 4]);
        let carried = request.capability();
        match request.plain_label() {
            net::INFO => {
                let [low, high] = net::mac_words(device.mac());
                Message::new(0, [low, high, MAX_FRAME, 0])
            }
            net::SUBSCRIBE => match carried {
                Some(handle) => {
                    let subscriber = Notification::from_handle(handle);
                    if !self.waiting.is_empty() {
                        let _ = subscriber.signal(RX_BIT);
                    }
                    self.subscriber = Some(subscriber);
                    Message::new(0, [0; 4])
                }
                None => refused(Error::BadRequest),
            },
            net::SEND => match request.payload() {
                Some(len) if net::frame_size_ok(len) => match device.send(&buffer.bytes()[..len]) {
                    Ok(()) => {
                        self.stats.sent += 1;
                        Message::new(0, [0; 4])
                    }
                    Err(error) => refused(error),
                },
                _ => refused(Error::BadRequest),
            },
            net::RECEIVE => match self.waiting.pop_front() {
                Some(frame) => {
                    buffer.bytes()[..frame.len()].copy_from_slice(&frame);
                    let reply =
                        Message::new(0, [self.waiting.len(), 0, 0, 0]).with_payload(frame.len());
                    self.spare.push(frame);
                    reply
                }
                None => refused(Error::NoFrame),
            },
            net::STATS => Message::new(0, self.stats.words()),
            _ => {
                if let Some(handle) = carried {
                    let _ = rt::ipc::cap_delete(handle);
                }
                refused(Error::BadRequest)
            }
        }
    }
}
