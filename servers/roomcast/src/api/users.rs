//! `GET /api/users/{user}`: a user's sessions on this node, with their rooms, and their unread
//! count; and
//! `POST /api/users/{user}/disconnect`: ends them (all, or one), with a close code that tells
//! the client whether to come back.
//!
//! Close codes 4100 to 4499 ask the client to reconnect with backoff, 4500 to 4999 not to
//! (protocol section 12); roomcast.js keeps to both. A client that ignores the advice can
//! connect again: keeping a user out is the authentication's to do (a token that is no longer
//! issued, the connect hook).

use http::{Response, StatusCode};
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::cursor::Position;
use roomcast_core::delivery::SessionId;
use roomcast_core::engine::{Message, StreamId};
use roomcast_core::names::UserId;
use roomcast_hyper::{Body, Refusal};
use roomcast_io::Runtime;
use serde::Deserialize;
use serde_json::json;

use super::{parse, refused};
use crate::app::App;
use crate::reply::{gone, json};

/// Close codes that ask the client to reconnect, and the default.
const RECONNECT: std::ops::RangeInclusive<u16> = 4100..=4499;
/// Close codes that ask the client not to, and the default.
const STAY_AWAY: std::ops::RangeInclusive<u16> = 4500..=4999;

/// The user of an API path, percent-decoded.
pub(super) fn user_of_path(raw: &str) -> Result<UserId, Refusal> {
    let user = roomcast_hyper::percent_decode_path(raw);
    UserId::new(&user).map_err(|e| Refusal::new(400, format!("user {user:?} {e}")))
}

pub(super) async fn status<R: Runtime>(
    app: &App<R>,
    user: &UserId,
) -> Result<Response<Body>, Refusal> {
    let sessions: Vec<serde_json::Value> = app
        .roomcast
        .hub()
        .user_sessions(user)
        .await
        .map_err(gone)?
        .into_iter()
        .map(|s| json!({"session": s.session.to_string(), "rooms": s.rooms}))
        .collect();
    let unread = unread(app, user).await?;
    Ok(json(
        StatusCode::OK,
        json!({
            "user": user.as_str(),
            "online": !sessions.is_empty(),
            "sessions": sessions,
            "unread": unread,
        }),
    ))
}

/// Most outbox messages read to count what is unread: an outbox keeps 1,000 by default.
const UNREAD_COUNTED: usize = 10_000;

/// The user's unread direct messages and notifications: those after the outbox's read mark
/// (receipts are not counted, as in protocol section 9), at most [`UNREAD_COUNTED`].
async fn unread<R: Runtime>(app: &App<R>, user: &UserId) -> Result<usize, Refusal> {
    let hub = app.roomcast.hub();
    let outbox = StreamId::Outbox(user.clone());
    let view = hub
        .read(outbox.clone(), None, 0)
        .await
        .map_err(gone)?
        .map_err(refused)?
        .view;
    if view.head.offset == 0 || view.read >= view.head.offset {
        return Ok(0);
    }
    let after = Position {
        epoch: view.head.epoch,
        offset: view.read.max(view.first - 1),
    };
    let page = hub
        .read(outbox, Some(after), UNREAD_COUNTED)
        .await
        .map_err(gone)?
        .map_err(refused)?;
    Ok(page
        .records
        .iter()
        .filter(|record| !matches!(record.message, Message::Receipt { .. }))
        .count())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    #[serde(default)]
    session: Option<String>,
    #[serde(default = "yes")]
    reconnect: bool,
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
}

fn yes() -> bool {
    true
}

pub(super) async fn disconnect<R: Runtime>(
    app: &App<R>,
    user: &UserId,
    body: &[u8],
) -> Result<Response<Body>, Refusal> {
    let body: DisconnectBody = if body.iter().all(u8::is_ascii_whitespace) {
        parse(b"{}")?
    } else {
        parse(body)?
    };
    let range = if body.reconnect { RECONNECT } else { STAY_AWAY };
    let code = body.code.unwrap_or(*range.start());
    if !range.contains(&code) {
        let (start, end) = (range.start(), range.end());
        return Err(Refusal::new(
            400,
            format!(
                "code must be {start} to {end} with reconnect: {}",
                body.reconnect
            ),
        ));
    }
    let reason = body
        .reason
        .unwrap_or_else(|| "disconnected by the server".to_owned());
    if reason.len() > 123 || reason.chars().any(char::is_control) {
        return Err(Refusal::new(
            400,
            "reason must be at most 123 bytes without control characters",
        ));
    }
    let session = match body.session.as_deref() {
        None => None,
        Some(text) => Some(session_id(text)?),
    };
    let close = Close::new(CloseCode::Other(code), reason);
    let count = app
        .roomcast
        .hub()
        .disconnect_user(user, session, close)
        .await
        .map_err(gone)?;
    Ok(json(StatusCode::OK, json!({ "sessions": count })))
}

/// A session as `welcome` names it: `s` and its number.
fn session_id(text: &str) -> Result<SessionId, Refusal> {
    text.strip_prefix('s')
        .and_then(|n| n.parse().ok())
        .map(SessionId)
        .ok_or_else(|| Refusal::new(400, format!("session {text:?} is not a session id (s123)")))
}
