//! STOMP on a roomcast session: the frames of a STOMP client turned into roomcast.v1 requests
//! for the [`Session`](crate::session::Session), and the session's frames turned into STOMP
//! frames for the client (docs/stomp.md).
//!
//! The [`Bridge`] sits between a transport and a session and owns what is STOMP's alone: the
//! version and heart-beats agreed by `CONNECT`, the subscriptions, and the receipts owed. The
//! session goes on owning what every protocol shares (limits, the queue, heartbeat deadlines,
//! credentials that end), so a STOMP client obeys the same rules as any other.
//!
//! **Method taxonomy.** Inputs: [`handle_bytes`](Bridge::handle_bytes) (what the client sent),
//! [`handle_delivery`](Bridge::handle_delivery) (a frame of the session, written out as STOMP
//! into the caller's buffer). Outputs: [`poll_event`](Bridge::poll_event). Getters:
//! [`state`](Bridge::state), [`credentials`](Bridge::credentials),
//! [`heart_beats`](Bridge::heart_beats), [`version`](Bridge::version).

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

use super::{Decoder, DecoderLimits, Frame, HeartBeat, HeartBeats, Version, encode};
use crate::delivery::Delivery;
use crate::envelope::{ClientEnvelope, ClientMessage, Payload, Ref};
use crate::names::RoomName;

mod destination;
mod inbound;
mod outbound;
#[cfg(test)]
mod tests;

/// The bridge's limits and wishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The decoder's limits (frame size, header count, line length).
    pub limits: DecoderLimits,
    /// How often the server can send heart-beats and wants them, in ms (its `heart-beat`
    /// header says `n,n`): the session's ping interval, whose pings the transport turns into
    /// heart-beats. 0: none either way.
    pub heart_beat_ms: u64,
    /// Subscriptions one connection may hold. Default 256.
    pub max_subscriptions: usize,
    /// Requests awaiting their answer (a receipt, say) at once. Default 256.
    pub max_pending: usize,
    /// The largest request the session takes, in bytes of roomcast.v1 JSON: the session's
    /// `max_frame`. A `SEND` whose request would be larger is an `ERROR`, not a close without
    /// one. Default 64 KiB.
    pub max_request: usize,
    /// Outbox messages (direct messages, notifications) kept for the connection's first
    /// `/user/queue/...` subscription when they come before it (the unread outbox comes right
    /// after `CONNECT`). Past it the oldest are dropped, and the first one written says so
    /// (`x-roomcast-recovered:false`). Default 256.
    pub max_held: usize,
    /// The `server` header of `CONNECTED` (`roomcast/VERSION`: no allocation per connection).
    pub server: std::borrow::Cow<'static, str>,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            limits: DecoderLimits::default(),
            heart_beat_ms: 25_000,
            max_subscriptions: 256,
            max_pending: 256,
            max_request: 64 * 1024,
            max_held: 256,
            server: std::borrow::Cow::Borrowed(concat!("roomcast/", env!("CARGO_PKG_VERSION"))),
        }
    }
}

/// Where a bridge is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BridgeState {
    /// Waiting for the client's `CONNECT` (or `STOMP`) frame.
    AwaitingConnect,
    /// `CONNECT` read: the session's `welcome` becomes `CONNECTED` (a caller that admits the
    /// session only now reads the token `CONNECT` carried in [`Bridge::credentials`]).
    Connecting,
    /// `CONNECTED` sent: frames flow.
    Open,
    /// `DISCONNECT` read: the receipt goes once every earlier request is answered.
    Disconnecting,
    /// Over: an `ERROR` was sent or the `DISCONNECT` answered. Later input is ignored.
    Closed,
}

/// What the caller acts on, from [`Bridge::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeEvent {
    /// A roomcast.v1 client message for the session, as the JSON text a client sends.
    Request(String),
    /// Bytes for the client, as they are: whole STOMP frames.
    Send(Bytes),
    /// The client showed it is alive (a heart-beat, or any frame).
    Alive,
    /// End the connection once everything before is written: an `ERROR` was sent, or the
    /// `DISCONNECT` answered.
    Close,
}

/// What one subscription receives.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Feed {
    Room(RoomName),
    Presence(RoomName),
    Outbox,
    Broadcast,
}

/// STOMP's acknowledgement modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ack {
    Auto,
    Client,
    ClientIndividual,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Subscription {
    destination: String,
    feed: Feed,
    ack: Ack,
}

/// An outbox message kept for the first `/user/queue/...` subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    id: crate::cursor::Position,
    /// `x-roomcast-from` or `x-roomcast-event`, and its value.
    extra: Option<(&'static str, String)>,
    body: Bytes,
}

/// What the answer to a request owes the client.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    /// The `receipt` header of the frame, if it asked for one.
    receipt: Option<String>,
    /// A `SUBSCRIBE` with `x-roomcast-since`: the subscription told whether it resumed whole.
    resume: Option<String>,
}

/// One STOMP connection's protocol state (see the [module docs](self)).
#[derive(Debug)]
pub struct Bridge {
    config: BridgeConfig,
    decoder: Decoder,
    state: BridgeState,
    version: Version,
    /// The client's `heart-beat` header.
    theirs: HeartBeat,
    /// A token from `CONNECT` (`passcode`, or `Authorization: Bearer`).
    credentials: Option<String>,
    heartbeats_seen: u64,
    subscriptions: BTreeMap<String, Subscription>,
    /// Requests sent to the session, by the serial in their `ref`.
    pending: BTreeMap<u64, Pending>,
    next_ref: u64,
    /// The `DISCONNECT`'s receipt, sent once `pending` is empty.
    disconnect_receipt: Option<String>,
    /// `MESSAGE`s without a stream position sent (presence): their `message-id`s.
    unstreamed: u64,
    /// The session's `welcome` (its id and user), when it came before `CONNECT`.
    welcome: Option<(String, String)>,
    /// Outbox messages that came before any `/user/queue/...` subscription, oldest first.
    held: VecDeque<Held>,
    /// `held` dropped some: the first one written says the outbox was not kept whole.
    held_dropped: bool,
    /// `MESSAGE`s the bridge writes of its own (a resume's first frame): their `message-id`s.
    notices: u64,
    events: VecDeque<BridgeEvent>,
}

/// The prefix of the `ref`s the bridge gives its requests.
const REF_PREFIX: &str = "stomp-";

impl Bridge {
    /// A bridge for a new connection.
    pub fn new(config: BridgeConfig) -> Self {
        Self {
            decoder: Decoder::new(config.limits),
            config,
            state: BridgeState::AwaitingConnect,
            version: Version::V1_2,
            theirs: HeartBeat::NONE,
            credentials: None,
            heartbeats_seen: 0,
            subscriptions: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_ref: 0,
            disconnect_receipt: None,
            unstreamed: 0,
            welcome: None,
            held: VecDeque::new(),
            held_dropped: false,
            notices: 0,
            events: VecDeque::new(),
        }
    }

    // Getters.

    /// Where the bridge is.
    pub fn state(&self) -> BridgeState {
        self.state
    }

    /// The version agreed by `CONNECT` (1.2 before it).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The token the `CONNECT` frame carried, in `passcode` or as `Authorization: Bearer`.
    pub fn credentials(&self) -> Option<&str> {
        self.credentials.as_deref()
    }

    /// The heart-beats agreed: how often the server must send one when idle, and how often the
    /// client said it would.
    pub fn heart_beats(&self) -> HeartBeats {
        self.ours().negotiate(self.theirs)
    }

    /// Subscriptions held.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.len()
    }

    /// Whether the client asked for heart-beats: then each of the session's pings also goes
    /// out as a STOMP heart-beat, an EOL (the pings come at the interval `CONNECTED` named).
    pub fn sends_heart_beats(&self) -> bool {
        self.state == BridgeState::Open && self.heart_beats().send.is_some()
    }

    // Inputs.

    /// Bytes the client sent (a WebSocket message's payload, split anywhere).
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if self.state == BridgeState::Closed {
            return;
        }
        self.decoder.handle_bytes(bytes);
        loop {
            match self.decoder.poll_frame() {
                Ok(Some(frame)) => {
                    self.events.push_back(BridgeEvent::Alive);
                    self.handle_frame(frame);
                    if self.state == BridgeState::Closed {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => return self.fail(None, "malformed frame", &error.to_string()),
            }
        }
        let seen = self.decoder.heartbeats();
        if seen != self.heartbeats_seen {
            self.heartbeats_seen = seen;
            self.events.push_back(BridgeEvent::Alive);
        }
    }

    /// Writes `delivery`, a frame of the session, as STOMP frames into `out` (none, when it has
    /// no STOMP form or no subscription wants it).
    pub fn handle_delivery(&mut self, delivery: &Delivery, out: &mut BytesMut) {
        if self.state == BridgeState::Closed {
            return;
        }
        outbound::write(self, delivery, out);
    }

    /// The caller refuses the connection (its `CONNECT`'s credential did not pass): `ERROR`
    /// with `message` and `details`, then the end.
    pub fn refuse(&mut self, message: &str, details: &str) {
        self.fail(None, message, details);
    }

    // Outputs.

    /// The next event, if any. Drain after every input.
    pub fn poll_event(&mut self) -> Option<BridgeEvent> {
        let event = self.events.pop_front();
        // Drained: an idle connection keeps no buffer for the events of its last frame.
        if event.is_none() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        event
    }

    // Internals shared by inbound.rs and outbound.rs.

    fn ours(&self) -> HeartBeat {
        HeartBeat::new(self.config.heart_beat_ms, self.config.heart_beat_ms)
    }

    /// Queues `message` for the session with a fresh `ref`, owing `pending` on its answer; or
    /// the `ERROR`'s `message` and body when it cannot be.
    fn request(
        &mut self,
        message: ClientMessage,
        pending: Pending,
    ) -> Result<(), (&'static str, String)> {
        if self.pending.len() >= self.config.max_pending {
            return Err((
                "too many requests",
                format!(
                    "more than {} requests awaiting their answer",
                    self.config.max_pending
                ),
            ));
        }
        let reference = Ref::from(format!("{REF_PREFIX}{}", self.next_ref + 1).as_str());
        let envelope = ClientEnvelope {
            reference: Some(reference),
            message,
        };
        let text = envelope.encode();
        if text.len() > self.config.max_request {
            return Err((
                "frame too large",
                format!(
                    "the message is {} bytes as JSON, over the limit of {}",
                    text.len(),
                    self.config.max_request
                ),
            ));
        }
        self.next_ref += 1;
        self.pending.insert(self.next_ref, pending);
        self.events.push_back(BridgeEvent::Request(text));
        Ok(())
    }

    /// [`request`](Self::request) owing only `receipt`.
    fn ask(
        &mut self,
        message: ClientMessage,
        receipt: Option<String>,
    ) -> Result<(), (&'static str, String)> {
        let pending = Pending {
            receipt,
            resume: None,
        };
        self.request(message, pending)
    }

    /// The pending request a `ref` of ours names, taken.
    fn answered(&mut self, reference: Option<&Ref>) -> Option<Pending> {
        let Some(Ref::Text(text)) = reference else {
            return None;
        };
        let serial = text.strip_prefix(REF_PREFIX)?.parse().ok()?;
        self.pending.remove(&serial)
    }

    /// Writes `frame` into `out`; a frame that cannot be written (an octet its version cannot
    /// carry) fails the connection instead.
    fn write(&mut self, frame: &Frame, out: &mut BytesMut) {
        if self.state == BridgeState::Closed {
            return;
        }
        if let Err(error) = encode(frame, self.version, out) {
            self.fail(None, "cannot encode a frame", &error.to_string());
        }
    }

    /// `ERROR` (with the receipt of the frame at fault, if it asked for one), then the end.
    fn fail(&mut self, receipt: Option<&str>, message: &str, details: &str) {
        if self.state == BridgeState::Closed {
            return; // one ERROR, then the end
        }
        let mut frame = Frame::new(super::Command::Error)
            .header("message", message)
            .header("content-type", "text/plain");
        if let Some(receipt) = receipt {
            frame = frame.header("receipt-id", receipt);
        }
        let frame = frame.body(Bytes::copy_from_slice(details.as_bytes()));
        let mut out = BytesMut::new();
        // An error's text may hold what its version cannot carry in a header: CONNECT-era 1.0
        // frames escape nothing, so fall back to a plain message rather than fail twice.
        if encode(&frame, self.version, &mut out).is_err() {
            let plain = Frame::new(super::Command::Error)
                .header("message", "protocol error")
                .body(Bytes::copy_from_slice(details.as_bytes()));
            let _ = encode(&plain, self.version, &mut out);
        }
        self.events.push_back(BridgeEvent::Send(out.freeze()));
        self.events.push_back(BridgeEvent::Close);
        self.state = BridgeState::Closed;
    }

    /// Once `DISCONNECT` came and every earlier request is answered: its receipt, the end.
    fn settle_disconnect(&mut self) {
        if self.state != BridgeState::Disconnecting || !self.pending.is_empty() {
            return;
        }
        let receipt = self.disconnect_receipt.take();
        self.receipt_now(receipt);
        self.events.push_back(BridgeEvent::Close);
        self.state = BridgeState::Closed;
    }
}

/// A STOMP body as the JSON `data` of a message: JSON as it is, other UTF-8 text as a JSON
/// string (docs/stomp.md, "SEND").
fn body_to_data(body: &[u8], content_type: Option<&str>) -> Result<Payload, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_owned())?;
    let json_declared = content_type.is_some_and(|t| t.starts_with("application/json"));
    let text_declared = content_type.is_some_and(|t| t.starts_with("text/"));
    if !text_declared && let Ok(payload) = Payload::from_json(text) {
        return Ok(payload);
    }
    if json_declared {
        return Err("content-type says application/json, and the body is not JSON".to_owned());
    }
    Payload::from_value(text).map_err(|e| e.to_string())
}
