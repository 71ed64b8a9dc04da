//! `GET /api/rooms/{room}/presence`: who is present in a room, with their sessions; and
//! `/presence/stats`: how many users and sessions.
//!
//! Presence is what this node's hub holds: users with a member session here or in their grace
//! period, and, on Redis, users other nodes announced in rooms this node has members in. A room
//! nobody on this node is in answers empty; ask a node that has the room's members.

use http::{Response, StatusCode};
use roomcast_core::names::RoomName;
use roomcast_hyper::{Body, Refusal};
use roomcast_io::Runtime;
use serde_json::json;

use crate::app::App;
use crate::reply::{gone, json};

pub(super) async fn presence<R: Runtime>(
    app: &App<R>,
    room: &RoomName,
    counts_only: bool,
) -> Result<Response<Body>, Refusal> {
    let hub = app.roomcast.hub();
    if counts_only {
        let (users, sessions) = hub.room_counts(room).await.map_err(gone)?;
        return Ok(json(
            StatusCode::OK,
            json!({"room": room.as_str(), "users": users, "sessions": sessions}),
        ));
    }
    let members: Vec<serde_json::Value> = hub
        .room_presence(room)
        .await
        .map_err(gone)?
        .into_iter()
        .map(|member| {
            json!({
                "user": member.user.as_str(),
                "sessions": member.sessions,
                "nodes": member.nodes,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"room": room.as_str(), "members": members}),
    ))
}
