//! The client's frames: `CONNECT` and the frames of an open connection, each turned into a
//! roomcast.v1 request, an answer of the bridge's own, or an `ERROR`.

use std::sync::Arc;

use bytes::BytesMut;

use super::destination::{Sendable, Subscribable, sendable, subscribable};
use super::{Ack, Bridge, BridgeState, Feed, Pending, Subscription, body_to_data};
use crate::cursor::Position;
use crate::envelope::ClientMessage;
use crate::stomp::{Command, Frame, HeartBeat, Version};

/// Headers roomcast reads on `SUBSCRIBE`: a position to resume after, and a subscription token.
pub(super) const SINCE: &str = "x-roomcast-since";
const TOKEN: &str = "x-roomcast-token";

impl Bridge {
    pub(super) fn handle_frame(&mut self, frame: Frame) {
        match self.state {
            BridgeState::AwaitingConnect => self.handle_connect(frame),
            BridgeState::Connecting | BridgeState::Open => self.handle_open(frame),
            // After DISCONNECT the client sends nothing more; what it does is ignored.
            BridgeState::Disconnecting | BridgeState::Closed => {}
        }
    }

    fn handle_connect(&mut self, frame: Frame) {
        if !matches!(frame.command, Command::Connect | Command::Stomp) {
            let what = frame.command.as_str();
            return self.fail(None, "expected CONNECT", &format!("{what} before CONNECT"));
        }
        let offered = frame.headers.get("accept-version");
        let Some(version) = Version::negotiate(offered, &Version::ALL) else {
            return self.fail(
                None,
                "unsupported version",
                &format!(
                    "accept-version {:?}: roomcast speaks 1.0, 1.1 and 1.2",
                    offered.unwrap_or("")
                ),
            );
        };
        let Ok(theirs) = HeartBeat::parse(frame.headers.get("heart-beat")) else {
            return self.fail(
                None,
                "bad heart-beat",
                "heart-beat must be two numbers: cx,cy",
            );
        };
        self.version = version;
        self.decoder.set_version(version);
        self.theirs = theirs;
        let bearer = frame
            .headers
            .get("Authorization")
            .or_else(|| frame.headers.get("authorization"))
            .and_then(|value| value.strip_prefix("Bearer "));
        self.credentials = frame
            .headers
            .get("passcode")
            .or(bearer)
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        self.state = BridgeState::Connecting;
        if let Some((session, user)) = self.welcome.take() {
            let mut out = BytesMut::new();
            super::outbound::connected(self, &session, &user, &mut out);
            self.events
                .push_back(super::BridgeEvent::Send(out.freeze()));
        }
    }

    fn handle_open(&mut self, frame: Frame) {
        let receipt = frame.headers.get("receipt").map(str::to_owned);
        let outcome = match frame.command {
            Command::Subscribe => self.subscribe(&frame, receipt.clone()),
            Command::Unsubscribe => self.unsubscribe(&frame, receipt.clone()),
            Command::Send => self.send(&frame, receipt.clone()),
            Command::Ack | Command::Nack => self.ack(&frame, receipt.clone()),
            Command::Disconnect => {
                self.state = BridgeState::Disconnecting;
                self.disconnect_receipt = receipt.clone();
                self.settle_disconnect();
                Ok(())
            }
            Command::Begin | Command::Commit | Command::Abort => Err((
                "transactions are not supported",
                "roomcast has no STOMP transactions: send each message on its own".to_owned(),
            )),
            Command::Connect | Command::Stomp => {
                Err(("already connected", "one CONNECT per connection".to_owned()))
            }
            server => Err((
                "not a client frame",
                format!("{} is a frame the server sends", server.as_str()),
            )),
        };
        if let Err((message, details)) = outcome {
            self.fail(receipt.as_deref(), message, &details);
        }
    }

    fn subscribe(&mut self, frame: &Frame, receipt: Option<String>) -> Outcome {
        let destination = required(frame, "destination")?;
        // 1.0 makes `id` optional: the destination then names the subscription.
        let id = match frame.headers.get("id") {
            Some(id) => id.to_owned(),
            None if self.version == Version::V1_0 => destination.to_owned(),
            None => return Err(("missing header", "SUBSCRIBE needs `id`".to_owned())),
        };
        let ack = match frame.headers.get("ack").unwrap_or("auto") {
            "auto" => Ack::Auto,
            "client" => Ack::Client,
            "client-individual" => Ack::ClientIndividual,
            other => return Err(("bad ack mode", format!("ack:{other}"))),
        };
        if self.subscriptions.contains_key(&id) {
            return Err(("duplicate subscription", format!("id {id} is in use")));
        }
        if self.subscriptions.len() >= self.config.max_subscriptions {
            return Err((
                "too many subscriptions",
                format!("at most {} per connection", self.config.max_subscriptions),
            ));
        }
        let feed = match subscribable(destination) {
            Ok(Subscribable::Room(room)) => Feed::Room(room),
            Ok(Subscribable::Presence(room)) => Feed::Presence(room),
            Ok(Subscribable::Outbox) => Feed::Outbox,
            Ok(Subscribable::Broadcast) => Feed::Broadcast,
            Err(refused) => return Err(("bad destination", refused.message(destination))),
        };
        let since = match frame.headers.get(SINCE) {
            None => None,
            Some(text) => Some(text.parse::<Position>().map_err(|_| {
                (
                    "bad x-roomcast-since",
                    format!("{SINCE}:{text} is not a message id"),
                )
            })?),
        };
        // A room is joined once, by its first subscription (messages or presence): a resume
        // asked of a later one could not be kept, so it is refused rather than ignored.
        let room = match &feed {
            Feed::Room(room) | Feed::Presence(room) if !self.in_room(room) => Some(room.clone()),
            Feed::Room(_) | Feed::Presence(_) if since.is_some() => {
                return Err((
                    "cannot resume",
                    format!(
                        "{destination}: the room is followed already; give {SINCE} on its first \
                         subscription"
                    ),
                ));
            }
            _ => None,
        };
        let first_outbox =
            feed == Feed::Outbox && !self.subscriptions.values().any(|s| s.feed == Feed::Outbox);
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                destination: destination.to_owned(),
                feed,
                ack,
            },
        );
        match room {
            Some(room) => {
                let token = frame.headers.get(TOKEN).map(Arc::from);
                let resume = since.is_some().then(|| id.clone());
                let message = ClientMessage::Join { room, since, token };
                self.request(message, Pending { receipt, resume })
            }
            None => {
                self.receipt_now(receipt);
                if first_outbox {
                    self.release_held(&id);
                }
                Ok(())
            }
        }
    }

    fn unsubscribe(&mut self, frame: &Frame, receipt: Option<String>) -> Outcome {
        let id = match (frame.headers.get("id"), self.version) {
            (Some(id), _) => id.to_owned(),
            // 1.0 may name the subscription by its destination.
            (None, Version::V1_0) => {
                let destination = required(frame, "destination")?;
                self.subscriptions
                    .iter()
                    .find(|(_, s)| s.destination == destination)
                    .map(|(id, _)| id.clone())
                    .unwrap_or_else(|| destination.to_owned())
            }
            (None, _) => return Err(("missing header", "UNSUBSCRIBE needs `id`".to_owned())),
        };
        let Some(subscription) = self.subscriptions.remove(&id) else {
            return Err(("no such subscription", format!("id {id}")));
        };
        match subscription.feed {
            Feed::Room(room) | Feed::Presence(room) if !self.in_room(&room) => {
                self.ask(ClientMessage::Leave { room }, receipt)
            }
            _ => {
                self.receipt_now(receipt);
                Ok(())
            }
        }
    }

    fn send(&mut self, frame: &Frame, receipt: Option<String>) -> Outcome {
        if frame.headers.get("transaction").is_some() {
            return Err((
                "transactions are not supported",
                "roomcast has no STOMP transactions: send without `transaction`".to_owned(),
            ));
        }
        let destination = required(frame, "destination")?;
        let data = body_to_data(&frame.body, frame.headers.get("content-type"))
            .map_err(|e| ("bad body", e))?;
        let message = match sendable(destination) {
            Ok(Sendable::Room(room)) => ClientMessage::Publish { room, data },
            Ok(Sendable::User(to)) => ClientMessage::Direct { to, data },
            Err(refused) => return Err(("bad destination", refused.message(destination))),
        };
        self.ask(message, receipt)
    }

    /// `ACK` of an outbox message in a client mode marks the user's outbox read up to it (the
    /// read mark is one position per user: acknowledging one acknowledges those before it).
    /// Any other `ACK`, and every `NACK`, changes nothing.
    fn ack(&mut self, frame: &Frame, receipt: Option<String>) -> Outcome {
        let upto = match self.version {
            Version::V1_2 => frame
                .headers
                .get("id")
                .and_then(|id| id.strip_prefix(OUTBOX_ACK)?.parse::<Position>().ok()),
            // 1.0 and 1.1 acknowledge by `message-id` (the bare position), with the
            // `subscription` that names the stream (1.1 requires it; 1.0 without it is ignored).
            _ => frame
                .headers
                .get("subscription")
                .and_then(|id| self.subscriptions.get(id))
                .filter(|s| s.feed == Feed::Outbox)
                .and_then(|_| frame.headers.get("message-id")?.parse::<Position>().ok()),
        };
        match upto {
            Some(upto) if frame.command == Command::Ack => {
                self.ask(ClientMessage::Read { upto }, receipt)
            }
            _ => {
                self.receipt_now(receipt);
                Ok(())
            }
        }
    }

    /// Whether a subscription follows `room` (its messages or its presence).
    fn in_room(&self, room: &crate::names::RoomName) -> bool {
        self.subscriptions
            .values()
            .any(|s| matches!(&s.feed, Feed::Room(r) | Feed::Presence(r) if r == room))
    }

    /// A receipt for a frame the bridge answered alone.
    pub(super) fn receipt_now(&mut self, receipt: Option<String>) {
        if let Some(receipt) = receipt {
            let mut out = BytesMut::new();
            self.write(
                &Frame::new(Command::Receipt).header("receipt-id", receipt),
                &mut out,
            );
            if !out.is_empty() {
                self.events
                    .push_back(super::BridgeEvent::Send(out.freeze()));
            }
        }
    }
}

/// The `ack` header of an outbox message: `ACK` with it marks the outbox read.
pub(super) const OUTBOX_ACK: &str = "outbox:";

/// An `ERROR`'s `message` header and body.
type Outcome = Result<(), (&'static str, String)>;

fn required<'a>(frame: &'a Frame, name: &str) -> Result<&'a str, (&'static str, String)> {
    frame.headers.get(name).ok_or_else(|| {
        (
            "missing header",
            format!("{} needs `{name}`", frame.command.as_str()),
        )
    })
}
