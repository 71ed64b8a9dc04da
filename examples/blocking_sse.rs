//! A blocking SSE server on `std::net` and roomcast's core alone: no async runtime, no hyper, no
//! `roomcast-io`. This is the proof that the core is sans-IO: the same `Hub`, `Session` and
//! `EventStream` that roomcast's async transports drive are driven here by plain threads, with
//! every timer taken from their `poll_timeout`.
//!
//! ```sh
//! cargo run -p roomcast-examples --bin blocking-sse -- --listen 127.0.0.1:8090  # --keep-alive-ms 15000
//! curl -N 'http://127.0.0.1:8090/events?user=alice&rooms=lobby'          # one terminal
//! curl -X POST 'http://127.0.0.1:8090/publish?room=lobby' -d '{"text":"hi"}'  # another
//! ```
//!
//! The stream shows `retry`, the `open` event (the session's welcome), `streams` (where each
//! stream starts), then a `message` event per publish. Each event's `id:` is the connection's
//! cursor: reconnect with `-H 'Last-Event-ID: <id>'` and the messages after it are replayed.
//!
//! The threads:
//!
//! - **the hub thread** owns the [`Hub`]. It takes one [`Command`] at a time from a channel, or
//!   wakes at the hub's `poll_timeout` (presence grace, history expiry), then drains
//!   `poll_transmit` into each session's mailbox: a bounded channel, pushed without waiting. A
//!   full mailbox is a slow consumer: the hub forgets the session and drops its mailbox, and the
//!   session closes (its client reconnects and resumes from its cursor, losing nothing).
//! - **one thread per connection** reads one request. A stream (`GET /events`) owns its
//!   [`Session`] and [`EventStream`]: it drains the session's outputs, writes every pending event
//!   in one `write`, then waits for exactly one input: deliveries from its mailbox, or its
//!   timer (`recv_timeout` until the session's `poll_timeout`: the keep-alive).
//!
//! Everything is bounded: request heads and bodies, the number of connections, each mailbox
//! (the session's frame budget), each session's queue (its byte budget), and every socket read
//! and write (a timeout). A client that went away is noticed at the next write, at the latest
//! the next keep-alive.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roomcast_core::close::{Close, CloseCode};
use roomcast_core::cursor::Cursor;
use roomcast_core::delivery::{SessionId, Shared};
use roomcast_core::engine::{Engine, MemoryEngine, MemoryLimits};
use roomcast_core::envelope::{Codec, Payload};
use roomcast_core::event_stream::EventStream;
use roomcast_core::hub::{Connect, Hub, HubConfig, HubError, HubEvent, Published, Ticket};
use roomcast_core::names::{RoomName, UserId};
use roomcast_core::session::{
    SLOW_CONSUMER_REASON, Session, SessionConfig, SessionEvent, SessionKind, SessionState,
};

/// Longest request line and headers, together.
const MAX_HEAD: u64 = 8 * 1024;
/// Longest `POST /publish` body.
const MAX_BODY: usize = 64 * 1024;
/// Most connections served at once; more are answered 503.
const MAX_CONNECTIONS: usize = 512;
/// How long a read of a request or a write to a client may block.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The reconnection delay a stream asks browsers for.
const RETRY_MS: u64 = 3000;

/// What a connection thread asks of the hub thread.
enum Command {
    /// A stream opens: register it, and push its deliveries into `mailbox`.
    Connect {
        connect: Connect,
        mailbox: SyncSender<Shared>,
        reply: Sender<Result<SessionId, String>>,
    },
    /// A stream's session closed.
    Disconnect(SessionId),
    /// A message for every member of `room`.
    Publish {
        room: RoomName,
        data: Payload,
        reply: Sender<Result<Published, HubError>>,
    },
}

fn main() -> io::Result<()> {
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = TcpListener::bind(&listen)?;
    // The tests read this line to learn the port.
    println!("listening on http://{}", listener.local_addr()?);
    io::stdout().flush()?;

    let mut config = SessionConfig::default();
    if let Some(ms) = arg("--keep-alive-ms").and_then(|ms| ms.parse().ok()) {
        config.keep_alive = Duration::from_millis(ms);
    }
    let (commands, inbox) = mpsc::channel();
    let hub = Hub::new(HubConfig::default());
    // The streams kept in memory; the engine answers in the same call, on the hub's thread.
    let engine = MemoryEngine::new(MemoryLimits::default(), seed());
    thread::spawn(move || run_hub(hub, engine, inbox));

    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue }; // a connection reset before accept
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            let _ = respond(&stream, "503 Service Unavailable", "too many connections\n");
            continue;
        }
        let (commands, open, config) = (commands.clone(), open.clone(), config.clone());
        thread::spawn(move || {
            // An error here is one client's: its connection ends, the server goes on.
            let _ = serve_connection(stream, &commands, config);
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

/// The hub thread: one command or one timer at a time, then every output routed.
fn run_hub(mut hub: Hub, mut engine: MemoryEngine, inbox: Receiver<Command>) {
    let mut mailboxes: HashMap<SessionId, SyncSender<Shared>> = HashMap::new();
    let mut publishing: HashMap<Ticket, Sender<Result<Published, HubError>>> = HashMap::new();
    loop {
        let command = match hub.poll_timeout() {
            Some(at) => match inbox.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match inbox.recv() {
                Ok(command) => Some(command),
                Err(_) => return,
            },
        };
        let now = Instant::now(); // the driver's clock: the core never reads one
        match command {
            Some(Command::Connect {
                connect,
                mailbox,
                reply,
            }) => match hub.connect(now, connect) {
                Ok(id) => {
                    mailboxes.insert(id, mailbox);
                    let _ = reply.send(Ok(id));
                }
                Err(error) => {
                    let _ = reply.send(Err(error.to_string()));
                }
            },
            Some(Command::Disconnect(id)) => {
                mailboxes.remove(&id);
                hub.disconnect(now, id);
            }
            Some(Command::Publish { room, data, reply }) => {
                publishing.insert(hub.publish(now, room, data), reply);
            }
            None => {}
        }
        // A busy channel must not starve the hub's timers.
        if hub.poll_timeout().is_some_and(|at| at <= now) {
            hub.handle_timeout(now);
        }
        // Every output, until nothing moves: the engine's answers can make more.
        loop {
            route(&mut hub, &mut mailboxes, now);
            let mut moved = false;
            while let Some(operation) = hub.poll_engine() {
                moved = true;
                engine.handle(now, operation);
            }
            while let Some(event) = engine.poll_event() {
                moved = true;
                hub.handle_engine(now, event);
                route(&mut hub, &mut mailboxes, now);
            }
            while let Some(event) = hub.poll_event() {
                if let HubEvent::Done { ticket, result } = event
                    && let Some(reply) = publishing.remove(&ticket)
                {
                    let _ = reply.send(result);
                }
            }
            if !moved {
                break;
            }
        }
    }
}

/// Moves every delivery the hub has into its session's mailbox, without waiting.
fn route(hub: &mut Hub, mailboxes: &mut HashMap<SessionId, SyncSender<Shared>>, now: Instant) {
    let mut slow = Vec::new();
    while let Some(transmit) = hub.poll_transmit() {
        transmit.for_each_delivery(|to, delivery| {
            // A session the hub names but this map lacks has just gone: skip it.
            let full = mailboxes
                .get(&to)
                .is_some_and(|mailbox| mailbox.try_send(delivery.clone()).is_err());
            if full {
                slow.push(to);
            }
        });
        // A slow consumer, or a thread that is gone: the hub forgets it, and dropping its
        // mailbox tells its thread to close the stream.
        for to in slow.drain(..) {
            mailboxes.remove(&to);
            hub.disconnect(now, to);
        }
    }
}

/// One request: a stream, a publish, the help text, or a 404.
fn serve_connection(
    stream: TcpStream,
    hub: &Sender<Command>,
    config: SessionConfig,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = Request::read(&mut reader)? else {
        return respond(&stream, "400 Bad Request", "a malformed request\n");
    };
    match (request.method.as_str(), request.path()) {
        ("GET", "/events") => serve_events(stream, &request, hub, config),
        ("POST", "/publish") => serve_publish(&stream, reader, &request, hub),
        ("GET", "/") => respond(
            &stream,
            "200 OK",
            "GET /events?user=NAME&rooms=a,b  an SSE stream\n\
             POST /publish?room=NAME          a JSON body, for the room's members\n",
        ),
        _ => respond(&stream, "404 Not Found", "no such endpoint\n"),
    }
}

/// `GET /events?user=NAME&rooms=a,b`: one SSE session, driven on this thread until it closes.
fn serve_events(
    mut stream: TcpStream,
    request: &Request,
    hub: &Sender<Command>,
    config: SessionConfig,
) -> io::Result<()> {
    // Who, what and from where, or a 400.
    let Some(user) = request.query("user").and_then(|u| UserId::new(&u).ok()) else {
        return respond(&stream, "400 Bad Request", "connect with ?user=NAME\n");
    };
    let rooms: Result<Vec<RoomName>, _> = request
        .query("rooms")
        .unwrap_or_default()
        .split(',')
        .filter(|room| !room.is_empty())
        .map(RoomName::new)
        .collect();
    let Ok(rooms) = rooms else {
        return respond(&stream, "400 Bad Request", "a bad room name in ?rooms=\n");
    };
    // A browser's reconnection sends the last id it saw: the cursor of every stream followed.
    let cursor = match request.header("last-event-id").filter(|id| !id.is_empty()) {
        None => None,
        Some(id) => match id.parse::<Cursor>() {
            Ok(cursor) => Some(cursor),
            Err(_) => return respond(&stream, "400 Bad Request", "a bad Last-Event-ID\n"),
        },
    };

    let (mailbox_in, mailbox) = mpsc::sync_channel(config.queue_frames);
    let (reply, registered) = mpsc::channel();
    let connect = Connect {
        access: Default::default(),
        user: user.clone(),
        broadcast: true,
        rooms,
        cursor: cursor.clone(),
    };
    let command = Command::Connect {
        connect,
        mailbox: mailbox_in,
        reply,
    };
    let id = match hub.send(command).ok().and_then(|()| registered.recv().ok()) {
        Some(Ok(id)) => id,
        Some(Err(error)) => return respond(&stream, "400 Bad Request", &format!("{error}\n")),
        None => return respond(&stream, "503 Service Unavailable", "the hub has stopped\n"),
    };
    let now = Instant::now();
    let mut session = Session::new(SessionKind::Sse, config, Codec::new(), now);
    session.accept(now, id, user);
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
          connection: close\r\n\r\n",
    )?;

    let mut events = EventStream::new(RETRY_MS, cursor);
    let mut out = Vec::new();
    let mut client_gone = false;
    loop {
        // Drain every output: the session's events to the hub, its transmits to the socket.
        while let Some(event) = session.poll_event() {
            if let SessionEvent::Closed(_) = event {
                let _ = hub.send(Command::Disconnect(id));
            }
        }
        let now = Instant::now();
        while let Some(transmit) = session.poll_transmit(now) {
            events.encode(&transmit, &mut out);
        }
        // Every pending event in one write.
        if !out.is_empty() && !client_gone && stream.write_all(&out).is_err() {
            client_gone = true;
            session.handle_close(now, None);
            out.clear();
            continue; // the close's events go to the hub, then the loop ends
        }
        out.clear();
        if session.state() == SessionState::Closed {
            return Ok(());
        }

        // Wait for exactly one input: deliveries, or the session's timer.
        let input = match session.poll_timeout() {
            Some(at) => mailbox.recv_timeout(at.saturating_duration_since(now)),
            None => mailbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = Instant::now();
        match input {
            // Everything waiting goes in as one batch.
            Ok(first) => {
                session.deliver_batch(now, std::iter::once(first).chain(mailbox.try_iter()))
            }
            Err(RecvTimeoutError::Timeout) => session.handle_timeout(now),
            // The hub dropped the mailbox: a slow consumer.
            Err(RecvTimeoutError::Disconnected) => {
                session.close(
                    now,
                    Close::new(CloseCode::SlowConsumer, SLOW_CONSUMER_REASON),
                );
            }
        }
        // A steady stream of deliveries must not starve the session's timer.
        if session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle_timeout(now);
        }
    }
}

/// `POST /publish?room=NAME` with a JSON body: the hub stores it and fans it out.
fn serve_publish(
    stream: &TcpStream,
    mut reader: BufReader<TcpStream>,
    request: &Request,
    hub: &Sender<Command>,
) -> io::Result<()> {
    let Some(room) = request.query("room").and_then(|r| RoomName::new(&r).ok()) else {
        return respond(stream, "400 Bad Request", "publish with ?room=NAME\n");
    };
    let length = request
        .header("content-length")
        .and_then(|l| l.parse().ok());
    let Some(length) = length.filter(|&length: &usize| length <= MAX_BODY) else {
        return respond(
            stream,
            "411 Length Required",
            "a JSON body of at most 64 KiB\n",
        );
    };
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let Some(data) = std::str::from_utf8(&body)
        .ok()
        .and_then(|b| Payload::from_json(b).ok())
    else {
        return respond(stream, "400 Bad Request", "the body is not JSON\n");
    };
    let (reply, published) = mpsc::channel();
    let command = Command::Publish { room, data, reply };
    match hub.send(command).ok().and_then(|()| published.recv().ok()) {
        Some(Err(error)) => respond(stream, "503 Service Unavailable", &format!("{error}\n")),
        Some(Ok(published)) => respond(
            stream,
            "200 OK",
            &format!(
                "{{\"id\":\"{}\",\"sessions\":{}}}\n",
                published.id, published.sessions
            ),
        ),
        None => respond(stream, "503 Service Unavailable", "the hub has stopped\n"),
    }
}

/// A whole response, and the connection's end.
fn respond(mut stream: &TcpStream, status: &str, body: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

/// The parts of an HTTP/1.1 request this server reads.
struct Request {
    method: String,
    target: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
}

impl Request {
    /// Reads a request line and headers, at most [`MAX_HEAD`] bytes. `None` if malformed.
    fn read(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
        let mut head = reader.by_ref().take(MAX_HEAD);
        let mut line = String::new();
        head.read_line(&mut line)?;
        let mut parts = line.split_ascii_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Ok(None);
        };
        let (method, target) = (method.to_owned(), target.to_owned());
        let mut headers = Vec::new();
        loop {
            line.clear();
            if head.read_line(&mut line)? == 0 {
                return Ok(None); // the head ended early or ran over its limit
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Ok(None);
            };
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Some(Request {
            method,
            target,
            headers,
        }))
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The first value of query parameter `name`, percent-decoded.
    fn query(&self, name: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| percent_decode(value))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `%XX` escapes and `+` for a space; `None` for a bad escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(rest.get(..2)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &rest[2..];
            }
            _ => bytes.push(byte),
        }
    }
    String::from_utf8(bytes).ok()
}

/// The value after `name` on the command line (`--listen ADDR`, `--keep-alive-ms N`).
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|arg| arg == name)?;
    args.get(at + 1).cloned()
}

/// A new seed per process: stream epochs differ across restarts, so a cursor of an earlier run
/// is answered `recovered: false`, never with another run's messages.
fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64)
}
