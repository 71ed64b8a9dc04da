//! `GET /api/rooms`: the rooms with members on this node, in name order, a page at a time,
//! each with its users and sessions and the last message this node saw in it.

use http::{Request, Response, StatusCode};
use roomcast_core::names::RoomName;
use roomcast_hyper::{Body, Refusal};
use roomcast_io::Runtime;
use serde_json::json;

use super::query;
use crate::app::App;
use crate::reply::{gone, json};

/// Rooms in a page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// Most rooms in a page.
const MAX_LIMIT: usize = 1000;

/// What a room list asks for: the room the page starts after, and how many.
pub(super) struct Query {
    after: Option<RoomName>,
    limit: usize,
}

impl Query {
    pub(super) fn of<B>(request: &Request<B>) -> Result<Self, Refusal> {
        let mut page = Self {
            after: None,
            limit: DEFAULT_LIMIT,
        };
        for (name, value) in query(request, &["after", "limit"])? {
            if name == "after" {
                let room = roomcast_hyper::percent_decode_path(value);
                page.after = Some(
                    RoomName::new(&room)
                        .map_err(|e| Refusal::new(400, format!("after: room {room:?} {e}")))?,
                );
            } else {
                page.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| Refusal::new(400, format!("limit must be 1 to {MAX_LIMIT}")))?;
            }
        }
        Ok(page)
    }
}

pub(super) async fn rooms<R: Runtime>(
    app: &App<R>,
    query: Query,
) -> Result<Response<Body>, Refusal> {
    // One more than asked: whether a next page exists.
    let mut rooms = app
        .roomcast
        .hub()
        .rooms_page(query.after.as_ref(), query.limit + 1)
        .await
        .map_err(gone)?;
    let more = rooms.len() > query.limit;
    rooms.truncate(query.limit);
    let next = more
        .then(|| rooms.last().map(|r| r.room.as_str().to_owned()))
        .flatten();
    let rooms: Vec<serde_json::Value> = rooms
        .iter()
        .map(|r| {
            json!({
                "room": r.room.as_str(),
                "users": r.users,
                "sessions": r.sessions,
                "last": r.last.map(|p| p.to_string()),
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({ "rooms": rooms, "next": next }),
    ))
}
