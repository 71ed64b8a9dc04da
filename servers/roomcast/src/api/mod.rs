//! The HTTP API, for the application's servers (and the admin page): publishing (`publish`),
//! a room's history (`history`) and presence (`presence`). Every call shows the API key; a
//! call that writes shows a JSON body too (see `guard`).
//!
//! | call | what |
//! |---|---|
//! | `GET /api/rooms` | the rooms with members on this node, a page at a time |
//! | `POST /api/rooms/{room}/publish` | a message to a room |
//! | `POST /api/notify` | a notification to a user's outbox |
//! | `POST /api/broadcast` | a message to the broadcast feed |
//! | `POST /api/batch` | many of those, each answered |
//! | `GET /api/rooms/{room}/history` | a page of the room's messages, or all as NDJSON |
//! | `GET /api/rooms/{room}/presence` | who is present, with their sessions |
//! | `GET /api/rooms/{room}/presence/stats` | how many |
//! | `GET /api/users/{user}` | the user's sessions on this node, with their rooms |
//! | `POST /api/users/{user}/disconnect` | ends them, saying whether to come back |

mod history;
mod presence;
mod publish;
mod rooms;
mod users;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use roomcast_core::hub::HubError;
use roomcast_core::names::{RoomName, UserId};
use roomcast_hyper::{Body, Refusal};
use roomcast_io::Runtime;
use serde::Deserialize;

use self::publish::Target;
use crate::app::App;
use crate::guard::{check_call, check_read, read_body};
use crate::reply::not_allowed;

/// Routes an `/api/...` request (but `/api/status`, which the app serves).
pub(crate) async fn handle<R: Runtime>(
    app: &App<R>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Refusal> {
    let path = request.uri().path().to_owned();
    let call = match path.as_str() {
        "/api/notify" => Call::Publish(Target::Notify),
        "/api/broadcast" => Call::Publish(Target::Broadcast),
        "/api/batch" => Call::Publish(Target::Batch),
        "/api/rooms" => Call::Rooms,
        _ if path.starts_with("/api/users/") => {
            let rest = &path["/api/users/".len()..];
            match rest.strip_suffix("/disconnect") {
                Some(user) => Call::Disconnect(users::user_of_path(user)?),
                None => Call::User(users::user_of_path(rest)?),
            }
        }
        _ => {
            let (room, action) = path
                .strip_prefix("/api/rooms/")
                .and_then(|rest| {
                    ["/publish", "/history", "/presence/stats", "/presence"]
                        .into_iter()
                        .find_map(|action| Some((rest.strip_suffix(action)?, action)))
                })
                .ok_or_else(|| Refusal::new(404, "no such API endpoint"))?;
            let room = room_of_path(room)?;
            match action {
                "/publish" => Call::Publish(Target::Room(room)),
                "/history" => Call::History(room),
                "/presence" => Call::Presence(room, false),
                _ => Call::Presence(room, true),
            }
        }
    };
    match call {
        Call::Publish(target) => {
            let body = body_of(app, request).await?;
            publish::publish(app, target, &body).await
        }
        Call::History(room) => {
            read_only(app, &request)?;
            let query = history::Query::of(&request)?;
            history::history(app, room, query).await
        }
        Call::Presence(room, counts) => {
            read_only(app, &request)?;
            presence::presence(app, &room, counts).await
        }
        Call::Rooms => {
            read_only(app, &request)?;
            let query = rooms::Query::of(&request)?;
            rooms::rooms(app, query).await
        }
        Call::User(user) => {
            read_only(app, &request)?;
            users::status(app, &user).await
        }
        Call::Disconnect(user) => {
            let body = body_of(app, request).await?;
            users::disconnect(app, &user, &body).await
        }
    }
}

/// What a request asks for.
enum Call {
    Publish(Target),
    History(RoomName),
    /// With `true`, the counts only.
    Presence(RoomName, bool),
    Rooms,
    User(UserId),
    Disconnect(UserId),
}

/// The body of a call that writes: `POST`, from a server or a listed origin, with the key and a
/// JSON body of at most the frame limit.
async fn body_of<R: Runtime>(app: &App<R>, request: Request<Incoming>) -> Result<Vec<u8>, Refusal> {
    if request.method() != Method::POST {
        return Err(not_allowed("POST"));
    }
    check_call(&request, &app.allowed_origins, app.api_key.as_deref())?;
    let runtime = app.roomcast.runtime();
    read_body(runtime, request, app.max_body, app.body_timeout).await
}

/// A call that reads: `GET` (or `HEAD`), from a server or a listed origin, with the key.
fn read_only<R: Runtime, B>(app: &App<R>, request: &Request<B>) -> Result<(), Refusal> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(not_allowed("GET"));
    }
    check_read(request, &app.allowed_origins, app.api_key.as_deref())
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::new(400, format!("body: {e}")))
}

/// The parameters of a query string, `name=value` split at `&`, refused (400) when a name is
/// not one of `known` or comes twice: a misspelt parameter is an error, not a silent default.
fn query<'a, B>(
    request: &'a Request<B>,
    known: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, Refusal> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for pair in request.uri().query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !known.contains(&name) {
            let known = known.join(", ");
            return Err(Refusal::new(
                400,
                format!("unknown parameter {name:?}: this call takes {known}"),
            ));
        }
        if seen.iter().any(|(seen, _)| *seen == name) {
            return Err(Refusal::new(400, format!("parameter {name:?} given twice")));
        }
        seen.push((name, value));
    }
    Ok(seen)
}

/// The room of an API path, percent-decoded as `?rooms=` is; an empty path segment
/// (`//lobby`, `lobby/`) is refused rather than read as part of a name.
fn room_of_path(raw: &str) -> Result<RoomName, Refusal> {
    let room = roomcast_hyper::percent_decode_path(raw);
    if room.is_empty() || room.starts_with('/') || room.ends_with('/') || room.contains("//") {
        return Err(Refusal::new(
            400,
            format!("room {room:?} has an empty segment"),
        ));
    }
    RoomName::new(&room).map_err(|e| Refusal::new(400, format!("room {room:?} {e}")))
}

/// What a command the hub could not carry out means for HTTP: a storage budget is 507
/// (Insufficient Storage), an engine that cannot take it now is 503, to retry.
fn refused(error: HubError) -> Refusal {
    match error {
        HubError::LimitReached(what) => Refusal::new(507, what).with_code("limit_reached"),
        HubError::Unavailable(why) => Refusal::new(503, why).retry_after(1000),
        HubError::Unauthorized(why) => Refusal::new(403, why).with_code("unauthorized"),
        other => Refusal::new(503, other.to_string()).retry_after(1000),
    }
}
