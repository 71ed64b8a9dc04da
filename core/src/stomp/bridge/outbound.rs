//! The session's frames, written as STOMP: `welcome` as `CONNECTED`, replies as receipts,
//! errors as `ERROR`, room messages, presence, the outbox and broadcasts as `MESSAGE`s to the
//! subscriptions that want them. Frames with no STOMP form (typing, streams, read marks, the
//! token's expiry, shutdown) are not written.

use bytes::{Bytes, BytesMut};

use super::inbound::OUTBOX_ACK;
use super::{Ack, Bridge, BridgeState, Feed, Held, Pending, destination};
use crate::cursor::{Position, Stream};
use crate::delivery::Delivery;
use crate::envelope::{Codec, Ref, ServerMessage};
use crate::names::RoomName;
use crate::stomp::{Command, Frame, Headers, PreparedMessage, Version};

/// Where a delivery's position is kept as text, its `message-id` (`Delivery::encoding`).
const MESSAGE_ID: usize = 3;

/// Where a delivery's STOMP `MESSAGE` of each version is kept (`Delivery::encoding`).
fn slot(version: Version) -> usize {
    match version {
        Version::V1_0 => 0,
        Version::V1_1 => 1,
        Version::V1_2 => 2,
    }
}

pub(super) fn write(bridge: &mut Bridge, delivery: &Delivery, out: &mut BytesMut) {
    // A room's message goes to many: its MESSAGE is encoded once per version, on the delivery.
    if let Some((Stream::Room(room), id)) = &delivery.stream {
        return room_message(bridge, delivery, room, *id, out);
    }
    // Read only what may be written: a join storm sends every member a presence diff per
    // arrival, and decoding each for a connection that follows no presence costs quadratic time.
    let wanted = match delivery.frame.message_type() {
        "presence" => bridge
            .subscriptions
            .values()
            .any(|s| matches!(s.feed, Feed::Presence(_))),
        "welcome" | "reply" | "error" | "direct" | "notify" | "broadcast" => true,
        _ => false, // typing, streams, read marks, expiring, shutdown: no STOMP form
    };
    if !wanted {
        return;
    }
    if delivery.frame.message_type() == "reply" {
        // Read lightly: a join's reply lists every member, which a STOMP client never sees.
        if let Ok(reply) = serde_json::from_str::<LightReply>(delivery.frame.as_str()) {
            replied(bridge, &reply, out);
        }
        return;
    }
    let Ok(message) = Codec::new().decode_server(delivery.frame.as_str()) else {
        return; // not one of ours: an application's own frame has no STOMP form
    };
    match message {
        ServerMessage::Welcome { session, user, .. } => {
            connected(bridge, &session, user.as_str(), out)
        }
        ServerMessage::Error {
            reference,
            code,
            message,
        } => {
            let receipt = bridge.answered(reference.as_ref()).and_then(|p| p.receipt);
            bridge.fail(receipt.as_deref(), code.as_str(), &message);
        }
        ServerMessage::Presence { room, .. } => {
            let body = Bytes::copy_from_slice(delivery.frame.as_str().as_bytes());
            let feed = Feed::Presence(room.clone());
            let destination = destination::presence_topic(&room);
            to_each(bridge, &feed, &destination, None, &[], body, out);
        }
        ServerMessage::Direct { id, from, data } => {
            let held = Held {
                id,
                extra: Some(("x-roomcast-from", from.as_str().to_owned())),
                body: Bytes::copy_from_slice(data.as_json().as_bytes()),
            };
            outbox(bridge, held, out);
        }
        ServerMessage::Notify { id, event, data } => {
            let held = Held {
                id,
                extra: event.map(|e| ("x-roomcast-event", e.to_string())),
                body: Bytes::copy_from_slice(data.as_json().as_bytes()),
            };
            outbox(bridge, held, out);
        }
        ServerMessage::Broadcast { id, event, data } => {
            let event: Vec<_> = event
                .iter()
                .map(|e| ("x-roomcast-event", e.as_str()))
                .collect();
            let body = Bytes::copy_from_slice(data.as_json().as_bytes());
            let id = id.to_string();
            to_each(bridge, &Feed::Broadcast, "", Some(&id), &event, body, out);
        }
        _ => {}
    }
}

/// `CONNECTED`, for the session's `welcome`.
pub(super) fn connected(bridge: &mut Bridge, session: &str, user: &str, out: &mut BytesMut) {
    match bridge.state {
        BridgeState::Connecting => {}
        // The session opened before the client's CONNECT came: answer that when it does.
        BridgeState::AwaitingConnect => {
            bridge.welcome = Some((session.to_owned(), user.to_owned()));
            return;
        }
        _ => return,
    }
    let frame = Frame::new(Command::Connected)
        .header("version", bridge.version.as_str())
        .header("session", session)
        .header("server", bridge.config.server.as_ref())
        .header("heart-beat", bridge.ours().header_value())
        .header("user-name", user);
    bridge.state = BridgeState::Open;
    bridge.write(&frame, out);
}

/// The answer to one of the bridge's requests: its receipt, and for a resumed subscription
/// the frame that says whether it resumed whole.
/// What the bridge reads of a reply; the rest (a join's members) is skipped unread.
#[derive(serde::Deserialize)]
struct LightReply<'a> {
    #[serde(rename = "ref")]
    reference: Ref,
    /// A position's text (`1f.45`), copied through as it is.
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    recovered: Option<bool>,
    replayed: Option<u64>,
}

fn replied(bridge: &mut Bridge, reply: &LightReply, out: &mut BytesMut) {
    let Some(Pending { receipt, resume }) = bridge.answered(Some(&reply.reference)) else {
        return;
    };
    if let Some(id) = resume
        && let Some(subscription) = bridge.subscriptions.get(&id)
    {
        let recovered = reply.recovered.unwrap_or(false);
        let replayed = reply.replayed.unwrap_or(0).to_string();
        let position = reply.id.as_deref().unwrap_or_default().to_owned();
        let body = format!(r#"{{"recovered":{recovered},"replayed":{replayed}}}"#);
        // A message-id of its own: the room's position is the one the client resumed from.
        bridge.notices += 1;
        let frame = Frame::new(Command::Message)
            .header("subscription", id.clone())
            .header("message-id", format!("resume-{}", bridge.notices))
            .header("destination", subscription.destination.clone())
            .header("content-type", "application/json")
            .header("x-roomcast-id", position)
            .header("x-roomcast-recovered", recovered.to_string())
            .header("x-roomcast-replayed", replayed)
            .body(Bytes::from(body));
        bridge.write(&frame, out);
    }
    if let Some(receipt) = receipt {
        let mut frame = Frame::new(Command::Receipt).header("receipt-id", receipt);
        if let Some(id) = &reply.id {
            frame = frame.header("x-roomcast-id", id.to_string());
        }
        bridge.write(&frame, out);
    }
    bridge.settle_disconnect();
}

/// A room's message to each subscription of the room: the shared part encoded once for every
/// recipient of the delivery, the recipient's `subscription` (and `ack`) written around it.
fn room_message(
    bridge: &mut Bridge,
    delivery: &Delivery,
    room: &RoomName,
    id: Position,
    out: &mut BytesMut,
) {
    let version = bridge.version;
    let mut ids = bridge
        .subscriptions
        .iter()
        .filter(|(_, s)| matches!(&s.feed, Feed::Room(r) if r == room))
        .peekable();
    if ids.peek().is_none() {
        return; // only its presence is followed
    }
    let Some(tail) = delivery.encoding(slot(version), |d| prepare(d, version)) else {
        // A room name or sender this version cannot carry in a header (1.0 escapes nothing).
        let details = format!(
            "a message of {} cannot be written in STOMP {}",
            room.as_str(),
            version.as_str()
        );
        return bridge.fail(None, "cannot encode a message", &details);
    };
    let prepared = PreparedMessage::from_tail(version, tail.clone());
    // The position's text, made once for every recipient of the delivery too.
    let message_id = delivery.encoding(MESSAGE_ID, |_| {
        let mut text = String::with_capacity(24);
        id.write_to(&mut text);
        Some(Bytes::from(text))
    });
    let message_id = message_id.map_or("", |text| std::str::from_utf8(text).unwrap_or(""));
    let mut failed = None;
    for (subscription, s) in ids {
        let ack = (s.ack != Ack::Auto).then_some(message_id);
        if let Err(error) = prepared.write_for(subscription, message_id, ack, out) {
            failed = Some(error);
        }
    }
    if let Some(error) = failed {
        bridge.fail(None, "cannot encode a message", &error.to_string());
    }
}

/// The shared part of a room message's `MESSAGE` for `version`: `None` for any other frame.
fn prepare(delivery: &Delivery, version: Version) -> Option<Bytes> {
    let ServerMessage::Message {
        room,
        from,
        event,
        data,
        ..
    } = Codec::new().decode_server(delivery.frame.as_str()).ok()?
    else {
        return None;
    };
    let mut headers = Headers::new();
    headers.push("destination", destination::room_topic(&room));
    headers.push("content-type", "application/json");
    if let Some(from) = from {
        headers.push("x-roomcast-from", from.as_str());
    }
    if let Some(event) = event {
        headers.push("x-roomcast-event", event.as_str());
    }
    let body = Bytes::copy_from_slice(data.as_json().as_bytes());
    PreparedMessage::new(version, &headers, body)
        .ok()
        .map(|prepared| prepared.tail().clone())
}

/// An outbox message to each `/user/queue/...` subscription (in a client ack mode its `ack`
/// marks the outbox read up to it), or kept for the first one when there is none yet.
fn outbox(bridge: &mut Bridge, held: Held, out: &mut BytesMut) {
    if !bridge
        .subscriptions
        .values()
        .any(|s| s.feed == Feed::Outbox)
    {
        if bridge.held.len() >= bridge.config.max_held {
            bridge.held.pop_front();
            bridge.held_dropped = true;
        }
        bridge.held.push_back(held);
        return;
    }
    let id = held.id.to_string();
    let extra: Vec<(&str, &str)> = held.extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
    to_each(bridge, &Feed::Outbox, "", Some(&id), &extra, held.body, out);
}

impl Bridge {
    /// The outbox messages kept for the first `/user/queue/...` subscription, to it, oldest
    /// first; the first says whether any were dropped.
    pub(super) fn release_held(&mut self, subscription: &str) {
        let Some(s) = self.subscriptions.get(subscription).cloned() else {
            return;
        };
        let mut out = BytesMut::new();
        let mut dropped = std::mem::take(&mut self.held_dropped);
        for held in std::mem::take(&mut self.held) {
            let id = held.id.to_string();
            let mut frame = Frame::new(Command::Message)
                .header("subscription", subscription)
                .header("message-id", id.clone());
            if s.ack != Ack::Auto {
                frame = frame.header("ack", format!("{OUTBOX_ACK}{id}"));
            }
            frame = frame
                .header("destination", s.destination.clone())
                .header("content-type", "application/json");
            if let Some((name, value)) = held.extra {
                frame = frame.header(name, value);
            }
            if std::mem::take(&mut dropped) {
                frame = frame.header("x-roomcast-recovered", "false");
            }
            self.write(&frame.body(held.body), &mut out);
        }
        if !out.is_empty() {
            self.events
                .push_back(super::BridgeEvent::Send(out.freeze()));
        }
    }
}

/// A `MESSAGE` to each subscription of `feed`, its `destination` the subscription's own when
/// `destination` is empty; without a `message_id` (presence), one of the connection's own.
fn to_each(
    bridge: &mut Bridge,
    feed: &Feed,
    destination: &str,
    message_id: Option<&str>,
    extra: &[(&str, &str)],
    body: Bytes,
    out: &mut BytesMut,
) {
    let targets: Vec<(String, String, Ack)> = bridge
        .subscriptions
        .iter()
        .filter(|(_, s)| &s.feed == feed)
        .map(|(id, s)| (id.clone(), s.destination.clone(), s.ack))
        .collect();
    for (subscription, own, ack) in targets {
        let message_id = match message_id {
            Some(id) => id.to_owned(),
            None => {
                bridge.unstreamed += 1;
                format!("p{}", bridge.unstreamed)
            }
        };
        let mut frame = Frame::new(Command::Message)
            .header("subscription", subscription)
            .header("message-id", message_id.clone());
        if ack != Ack::Auto {
            let value = match feed {
                Feed::Outbox => format!("{OUTBOX_ACK}{message_id}"),
                _ => message_id,
            };
            frame = frame.header("ack", value);
        }
        let destination = if destination.is_empty() {
            own
        } else {
            destination.to_owned()
        };
        frame = frame
            .header("destination", destination)
            .header("content-type", "application/json");
        for (name, value) in extra {
            frame = frame.header(*name, *value);
        }
        bridge.write(&frame.body(body.clone()), out);
    }
}
