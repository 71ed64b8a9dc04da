//! `GET /api/rooms/{room}/history`: a page of a room's messages, oldest or newest first, from a
//! position; or, with `Accept: application/x-ndjson` (or `format=ndjson`), every message from
//! a position as NDJSON, read from the engine a page at a time as the client takes it, so an
//! export holds one page in memory whatever the history's size.
//!
//! Positions are message ids (`<epoch hex>.<offset>`, as clients see them). A page's `next` is
//! the `since` of the page after it. A `since` the history no longer covers (its epoch ended:
//! the history was lost or deleted; or, oldest first, messages after it are gone) is answered
//! 410 `history_lost`, never a page with a silent gap.

use std::fmt::Write as _;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use roomcast_core::cursor::Position;
use roomcast_core::engine::{Message, Record, StreamId, View};
use roomcast_core::hub::StreamPage;
use roomcast_core::names::RoomName;
use roomcast_hyper::{Body, Refusal};
use roomcast_io::{HubHandle, Runtime};

use super::{query, refused};
use crate::app::App;
use crate::reply::gone;

/// Messages in a page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// Most messages in a page.
pub(crate) const MAX_LIMIT: usize = 1000;
/// Messages an export reads from the engine at a time.
const EXPORT_PAGE: usize = 1000;
/// How often a page is read again when the history moved between its two reads (its oldest
/// messages went meanwhile).
const ATTEMPTS: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    OldestFirst,
    NewestFirst,
}

/// What a history call asks for.
pub(super) struct Query {
    since: Option<Position>,
    limit: usize,
    order: Order,
    ndjson: bool,
}

impl Query {
    /// The query of `request`: its parameters, and its `Accept` for an export.
    pub(super) fn of<B>(request: &Request<B>) -> Result<Self, Refusal> {
        let mut since = None;
        let mut limit = DEFAULT_LIMIT;
        let mut order = Order::OldestFirst;
        let mut ndjson = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("application/x-ndjson"));
        for (name, value) in query(request, &["since", "limit", "order", "format"])? {
            match name {
                "since" => {
                    let position = value.parse::<Position>();
                    since = Some(position.map_err(|e| Refusal::new(400, format!("since: {e}")))?);
                }
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            Refusal::new(400, format!("limit must be 1 to {MAX_LIMIT}"))
                        })?;
                }
                "order" => {
                    order = match value {
                        "asc" => Order::OldestFirst,
                        "desc" => Order::NewestFirst,
                        _ => return Err(Refusal::new(400, "order is asc or desc")),
                    };
                }
                _ => match value {
                    "ndjson" => ndjson = true,
                    "json" => ndjson = false,
                    _ => return Err(Refusal::new(400, "format is json or ndjson")),
                },
            }
        }
        if ndjson && order == Order::NewestFirst {
            return Err(Refusal::new(400, "an export runs oldest first (order=asc)"));
        }
        Ok(Self {
            since,
            limit,
            order,
            ndjson,
        })
    }
}

/// Answers a history call.
pub(super) async fn history<R: Runtime>(
    app: &App<R>,
    room: RoomName,
    query: Query,
) -> Result<Response<Body>, Refusal> {
    let Query {
        since,
        limit,
        order,
        ndjson,
    } = query;
    let hub = app.roomcast.hub();
    let stream = StreamId::Room(room.clone());
    if ndjson {
        return export(hub, stream, since).await;
    }
    let (messages, next) = match order {
        Order::OldestFirst => oldest_first(hub, &stream, since, limit).await?,
        Order::NewestFirst => newest_first(hub, &stream, since, limit).await?,
    };
    let mut body = String::with_capacity(64 + messages.len() * 64);
    body.push_str("{\"room\":");
    push_str_json(&mut body, room.as_str());
    body.push_str(",\"messages\":[");
    for (i, (epoch, record)) in messages.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        push_message(&mut body, *epoch, record);
    }
    body.push_str("],\"next\":");
    match next {
        Some(next) => {
            let _ = write!(body, "\"{next}\"");
        }
        None => body.push_str("null"),
    }
    body.push('}');
    Ok(roomcast_hyper::json(StatusCode::OK, body))
}

/// A page's messages (with their epoch) and its `next`.
type Page = (Vec<(u64, std::sync::Arc<Record>)>, Option<Position>);

/// Up to `limit` messages after `since` (the oldest kept when `None`).
async fn oldest_first(
    hub: &HubHandle,
    stream: &StreamId,
    since: Option<Position>,
    limit: usize,
) -> Result<Page, Refusal> {
    for _ in 0..ATTEMPTS {
        let after = match since {
            Some(since) => since,
            None => before_oldest(&read(hub, stream, None, 0).await?.view),
        };
        let page = read(hub, stream, Some(after), limit).await?;
        if !page.view.covers(after) {
            if since.is_some() {
                return Err(lost(after, &page.view));
            }
            continue;
        }
        let next = page
            .records
            .last()
            .filter(|last| last.offset < page.view.head.offset)
            .map(|last| position(after.epoch, last));
        let messages = page.records.into_iter().map(|r| (after.epoch, r)).collect();
        return Ok((messages, next));
    }
    Err(moving())
}

/// Up to `limit` messages before `since` (the newest when `None`), newest first.
async fn newest_first(
    hub: &HubHandle,
    stream: &StreamId,
    since: Option<Position>,
    limit: usize,
) -> Result<Page, Refusal> {
    for _ in 0..ATTEMPTS {
        let view = read(hub, stream, None, 0).await?.view;
        let epoch = view.head.epoch;
        let before = match since {
            Some(since) if since.epoch != epoch || since.offset > view.head.offset + 1 => {
                return Err(lost(since, &view));
            }
            Some(since) => since.offset,
            None => view.head.offset + 1,
        };
        // Offsets [from, before) are this page's; older ones than the oldest kept are gone,
        // which going backwards is the end, not a gap.
        let from = before.saturating_sub(limit as u64).max(view.first);
        if from >= before {
            return Ok((Vec::new(), None));
        }
        let after = Position {
            epoch,
            offset: from - 1,
        };
        let count = (before - from) as usize;
        let page = read(hub, stream, Some(after), count).await?;
        if !page.view.covers(after) {
            continue;
        }
        let next = page
            .records
            .first()
            .filter(|oldest| oldest.offset > page.view.first)
            .map(|oldest| position(epoch, oldest));
        let messages = page.records.into_iter().rev().map(|r| (epoch, r)).collect();
        return Ok((messages, next));
    }
    Err(moving())
}

/// Every message after `since` (the oldest kept when `None`) up to the newest when the export
/// began, one JSON object a line. A history that loses the export's position midway (its
/// oldest messages went faster than the client read) ends the export with an error line.
async fn export(
    hub: &HubHandle,
    stream: StreamId,
    since: Option<Position>,
) -> Result<Response<Body>, Refusal> {
    let view = read(hub, &stream, None, 0).await?.view;
    let after = since.unwrap_or_else(|| before_oldest(&view));
    if !view.covers(after) {
        return Err(lost(after, &view));
    }
    let export = Export {
        hub: hub.clone(),
        stream,
        after,
        end: view.head.offset,
    };
    let chunks = futures_lite::stream::unfold(Some(export), |export| async move {
        let mut export = export?;
        if export.after.offset >= export.end {
            return None;
        }
        let (chunk, more) = export.next_chunk().await;
        Some((chunk, more.then_some(export)))
    });
    let mut response = Response::new(Body::chunks(chunks));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Where an export has got to.
struct Export {
    hub: HubHandle,
    stream: StreamId,
    /// The last message written.
    after: Position,
    /// The newest message when the export began: it ends there.
    end: u64,
}

impl Export {
    /// The next page's lines, and whether more may follow.
    async fn next_chunk(&mut self) -> (Bytes, bool) {
        let max = EXPORT_PAGE.min((self.end - self.after.offset) as usize);
        let page = match read(&self.hub, &self.stream, Some(self.after), max).await {
            Ok(page) if page.view.covers(self.after) && !page.records.is_empty() => page,
            // Covered but nothing came: the export cannot go on, and says so rather than end
            // short of where it said it would.
            Ok(page) if page.view.covers(self.after) => {
                let refusal =
                    Refusal::new(503, "the engine answered no messages").retry_after(1000);
                return (error_line(&refusal), false);
            }
            Ok(page) => return (error_line(&lost(self.after, &page.view)), false),
            Err(refusal) => return (error_line(&refusal), false),
        };
        let mut lines = String::with_capacity(page.records.len() * 64);
        for record in &page.records {
            push_message(&mut lines, self.after.epoch, record);
            lines.push('\n');
        }
        if let Some(last) = page.records.last() {
            self.after.offset = last.offset;
        }
        let more = self.after.offset < self.end;
        (Bytes::from(lines), more)
    }
}

async fn read(
    hub: &HubHandle,
    stream: &StreamId,
    after: Option<Position>,
    max: usize,
) -> Result<StreamPage, Refusal> {
    hub.read(stream.clone(), after, max)
        .await
        .map_err(gone)?
        .map_err(refused)
}

/// The position just before the oldest message kept: where reading everything starts.
fn before_oldest(view: &View) -> Position {
    Position {
        epoch: view.head.epoch,
        offset: view.first - 1,
    }
}

fn position(epoch: u64, record: &Record) -> Position {
    Position {
        epoch,
        offset: record.offset,
    }
}

/// 410: `since` is not covered by the history as it stands.
fn lost(since: Position, view: &View) -> Refusal {
    let now = if view.first > view.head.offset {
        format!("it holds nothing now (epoch {:x})", view.head.epoch)
    } else {
        let oldest = Position {
            epoch: view.head.epoch,
            offset: view.first,
        };
        format!("it holds {oldest} to {}", view.head)
    };
    Refusal::new(410, format!("the history no longer covers {since}: {now}"))
        .with_code("history_lost")
}

fn moving() -> Refusal {
    Refusal::new(
        503,
        "the history moved under three reads in a row: try again",
    )
    .retry_after(1000)
}

/// The error as the export's last line: its status is already sent.
fn error_line(refusal: &Refusal) -> Bytes {
    let mut line = String::from("{\"type\":\"error\",\"code\":");
    push_str_json(&mut line, refusal.code());
    line.push_str(",\"message\":");
    push_str_json(&mut line, &refusal.message);
    line.push_str("}\n");
    Bytes::from(line)
}

/// A stored message as the API shows it: `{"id", "from"?, "event"?, "data"}`.
fn push_message(out: &mut String, epoch: u64, record: &Record) {
    let _ = write!(out, "{{\"id\":\"{}\"", position(epoch, record));
    if let Message::Room { from, event, .. } = &record.message {
        if let Some(from) = from {
            out.push_str(",\"from\":");
            push_str_json(out, from.as_str());
        }
        if let Some(event) = event {
            out.push_str(",\"event\":");
            push_str_json(out, event);
        }
    }
    out.push_str(",\"data\":");
    out.push_str(data(&record.message));
    out.push('}');
}

/// A message's data as JSON text (a receipt, never in a room, has none).
fn data(message: &Message) -> &str {
    match message {
        Message::Room { data, .. }
        | Message::Direct { data, .. }
        | Message::Notify { data, .. }
        | Message::Broadcast { data, .. } => data.as_json(),
        _ => "null",
    }
}

fn push_str_json(out: &mut String, text: &str) {
    out.push_str(&serde_json::Value::from(text).to_string());
}
