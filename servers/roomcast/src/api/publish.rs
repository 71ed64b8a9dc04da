//! Publishing through the API: `POST /api/notify`, `/api/broadcast`,
//! `/api/rooms/{room}/publish` and `/api/batch`, each answered once the message is stored.

use http::{Response, StatusCode};
use roomcast_core::envelope::Payload;
use roomcast_core::hub::Published;
use roomcast_core::names::{RoomName, UserId};
use roomcast_hyper::{Body, Refusal};
use roomcast_io::{Outgoing, Runtime};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use smol_str::SmolStr;

use super::{parse, refused};
use crate::app::App;
use crate::reply::{gone, json};

/// Longest notification `event` name.
const MAX_EVENT: usize = 64;

/// Most messages in one `POST /api/batch`.
pub(crate) const MAX_BATCH: usize = 1000;

/// Where a message of the API goes.
pub(super) enum Target {
    Notify,
    Broadcast,
    Room(RoomName),
    Batch,
}

/// Publishes `body` to `target`.
pub(super) async fn publish<R: Runtime>(
    app: &App<R>,
    target: Target,
    body: &[u8],
) -> Result<Response<Body>, Refusal> {
    let hub = app.roomcast.hub();
    let published = match target {
        Target::Notify => {
            let body: NotifyBody<'_> = parse(body)?;
            let user = user(&body.user)?;
            let event = event_name(body.event)?;
            hub.notify(user, event, payload(body.data)?)
                .await
                .map_err(gone)?
                .map_err(refused)?
        }
        Target::Broadcast => {
            let body: BroadcastBody<'_> = parse(body)?;
            let event = event_name(body.event)?;
            hub.broadcast(event, payload(body.data)?)
                .await
                .map_err(gone)?
                .map_err(refused)?
        }
        Target::Room(room) => {
            let body: BroadcastBody<'_> = parse(body)?;
            let event = event_name(body.event)?;
            hub.publish_event(room, event, payload(body.data)?)
                .await
                .map_err(gone)?
                .map_err(refused)?
        }
        Target::Batch => return batch(app, body).await,
    };
    Ok(json(StatusCode::OK, answer(&published)))
}

/// `POST /api/batch`: every message is checked first (one bad message refuses the call, 400,
/// and stores nothing), then all go to the hub at once, in order, and each is answered in its
/// place: `{"id", "sessions"}`, or the API's error with its HTTP status,
/// `{"type": "error", "code", "message", "status"}`.
async fn batch<R: Runtime>(app: &App<R>, body: &[u8]) -> Result<Response<Body>, Refusal> {
    let body: BatchBody<'_> = parse(body)?;
    if body.messages.is_empty() || body.messages.len() > MAX_BATCH {
        return Err(Refusal::new(
            400,
            format!("messages must hold 1 to {MAX_BATCH} messages"),
        ));
    }
    let mut outgoing = Vec::with_capacity(body.messages.len());
    for (index, message) in body.messages.into_iter().enumerate() {
        let at =
            |refusal: Refusal| Refusal::new(400, format!("messages[{index}]: {}", refusal.message));
        let to = match (message.room, message.user, message.broadcast) {
            (Some(room), None, false) => Outgoing::Room(room_name(&room).map_err(at)?),
            (None, Some(name), false) => Outgoing::User(user(&name).map_err(at)?),
            (None, None, true) => Outgoing::Broadcast,
            _ => {
                return Err(at(Refusal::new(
                    400,
                    "name exactly one of room, user or broadcast: true",
                )));
            }
        };
        let event = event_name(message.event).map_err(at)?;
        outgoing.push((to, event, payload(message.data).map_err(at)?));
    }
    let results = app
        .roomcast
        .hub()
        .publish_batch(outgoing)
        .await
        .map_err(gone)?;
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|result| match result {
            Ok(published) => answer(published),
            Err(error) => {
                let refusal = refused(error.clone());
                json!({
                    "type": "error",
                    "code": refusal.code(),
                    "message": refusal.message,
                    "status": refusal.status,
                })
            }
        })
        .collect();
    Ok(json(StatusCode::OK, json!({ "results": results })))
}

fn answer(published: &Published) -> serde_json::Value {
    json!({"id": published.id.to_string(), "sessions": published.sessions})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyBody<'a> {
    user: String,
    #[serde(default)]
    event: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The body of a broadcast and of a room's publish.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastBody<'a> {
    #[serde(default)]
    event: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow)]
    messages: Vec<BatchMessage<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchMessage<'a> {
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    broadcast: bool,
    #[serde(default)]
    event: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

fn user(name: &str) -> Result<UserId, Refusal> {
    UserId::new(name).map_err(|e| Refusal::new(400, format!("user {name:?} {e}")))
}

/// A room named in a body: as in a path, without the percent-decoding.
fn room_name(name: &str) -> Result<RoomName, Refusal> {
    RoomName::new(name).map_err(|e| Refusal::new(400, format!("room {name:?} {e}")))
}

fn payload(data: &RawValue) -> Result<Payload, Refusal> {
    Payload::from_json(data.get()).map_err(|e| Refusal::new(400, format!("data: {e}")))
}

/// An `event` name: 1 to 64 bytes without control characters (a newline would end an SSE
/// field early).
fn event_name(event: Option<String>) -> Result<Option<SmolStr>, Refusal> {
    match event {
        Some(event) if event.is_empty() || event.len() > MAX_EVENT => Err(Refusal::new(
            400,
            format!("event must be 1 to {MAX_EVENT} bytes"),
        )),
        Some(event) if event.chars().any(char::is_control) => {
            Err(Refusal::new(400, "event must not hold control characters"))
        }
        event => Ok(event.map(SmolStr::from)),
    }
}
