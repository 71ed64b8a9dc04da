//! What the example tests share: an example binary started on a free loopback port and killed
//! when dropped, one-shot HTTP requests, and an SSE stream read over a real socket. Every read
//! is bounded by a timeout, so a hung example fails its test instead of hanging it.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use roomcast_core::sse::Decoder;

/// The longest any one step may take: a start, a response, an event.
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// An example binary, serving on 127.0.0.1; killed when dropped.
pub(crate) struct Example {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl Example {
    /// Starts `exe` (a `CARGO_BIN_EXE_*` path) with `--listen 127.0.0.1:0` and `args`, and reads
    /// the port from its first line, `listening on http://ADDR ...`.
    pub(crate) fn start(exe: &str, args: &[&str]) -> Example {
        let mut child = Command::new(exe)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {exe}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (first, line) = mpsc::channel();
        // The reader keeps draining stdout, so the example never blocks on a full pipe.
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = first.send(line);
            }
            lines.for_each(drop);
        });
        let mut example = Example {
            child,
            addr: "127.0.0.1:0".parse().expect("an address"),
        };
        let line = line
            .recv_timeout(STEP)
            .unwrap_or_else(|_| panic!("{exe} printed no `listening on` line within {STEP:?}"));
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{exe}'s first line: {line:?}"));
        example.addr = addr.parse().expect("a socket address");
        example
    }

    /// A connection to it, with read and write timeouts of [`STEP`].
    pub(crate) fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to the example");
        stream.set_read_timeout(Some(STEP)).expect("read timeout");
        stream.set_write_timeout(Some(STEP)).expect("write timeout");
        stream
    }

    /// One request (`method`, `target`, a body) on a connection of its own: the status code
    /// and the body, read to the connection's end.
    pub(crate) fn request(&self, method: &str, target: &str, body: &str) -> (u16, String) {
        let mut stream = self.connect();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .expect("send a request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read a response");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("a response head: {response:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {head:?}"));
        (status, body.to_owned())
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One event of a stream, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// The event type (`message` when the stream names none).
    pub(crate) kind: String,
    /// Its data.
    pub(crate) data: String,
    /// The last event id after it.
    pub(crate) id: String,
}

/// An SSE response read over a socket.
pub(crate) struct EventStream {
    stream: TcpStream,
    decoder: Decoder,
    /// Bytes read and not yet decoded.
    pending: Vec<u8>,
    /// Under `transfer-encoding: chunked`: bytes read and not yet unframed.
    chunked: Option<Vec<u8>>,
}

impl EventStream {
    /// `GET target` with `headers` (lines without their CRLF); panics unless the answer is 200
    /// with `content-type: text/event-stream`. A chunked body is unframed.
    pub(crate) fn open(example: &Example, target: &str, headers: &[&str]) -> EventStream {
        let mut stream = example.connect();
        let mut request = format!("GET {target} HTTP/1.1\r\nhost: {}\r\n", example.addr);
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .expect("send the request");
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            stream
                .read_exact(&mut byte)
                .expect("read the response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        EventStream {
            stream,
            decoder: Decoder::new(),
            pending: Vec::new(),
            chunked: head.contains("transfer-encoding: chunked").then(Vec::new),
        }
    }

    /// The next event, within [`STEP`].
    pub(crate) fn next(&mut self) -> Event {
        let deadline = Instant::now() + STEP;
        loop {
            let mut input = &self.pending[..];
            let event = self
                .decoder
                .decode(&mut input)
                .expect("a well-formed stream");
            let event = event.map(|event| Event {
                kind: event.event.to_owned(),
                data: event.data.to_owned(),
                id: event.id.to_owned(),
            });
            let used = self.pending.len() - input.len();
            self.pending.drain(..used);
            if let Some(event) = event {
                return event;
            }
            assert!(Instant::now() < deadline, "no event within {STEP:?}");
            let mut chunk = [0; 4096];
            let read = self.stream.read(&mut chunk).expect("read the stream");
            assert!(read > 0, "the stream ended");
            match &mut self.chunked {
                None => self.pending.extend_from_slice(&chunk[..read]),
                Some(raw) => {
                    raw.extend_from_slice(&chunk[..read]);
                    unchunk(raw, &mut self.pending);
                }
            }
        }
    }

    /// The next event of type `kind`, skipping others, within [`STEP`].
    pub(crate) fn next_of(&mut self, kind: &str) -> Event {
        let deadline = Instant::now() + STEP;
        loop {
            let event = self.next();
            if event.kind == kind {
                return event;
            }
            assert!(Instant::now() < deadline, "no {kind} event within {STEP:?}");
        }
    }
}

/// Moves the data of every whole chunk at the front of `raw` to `out` (`SIZE\r\nDATA\r\n`).
fn unchunk(raw: &mut Vec<u8>, out: &mut Vec<u8>) {
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return;
        };
        let size = std::str::from_utf8(&raw[..end]).expect("a chunk size line");
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).expect("a hex chunk size");
        assert!(size > 0, "the stream ended");
        let whole = end + 2 + size + 2;
        if raw.len() < whole {
            return;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw.drain(..whole);
    }
}
