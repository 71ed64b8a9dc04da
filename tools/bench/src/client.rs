//! The load clients (here the WebSocket client; the SSE and HTTP clients are in `http.rs`),
//! used unchanged against roomcast and the baselines so the ratio compares servers, not
//! clients. Also the payload stamp, and bounded-concurrency connection set-up.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::{TokioAdapter, client_async_with_config};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// How long one connect, handshake or reply may take before it counts as failed.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) type WsClient = WebSocketStream<TokioAdapter<TcpStream>>;

pub(crate) async fn tcp(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A WebSocket to `ws://addr{path}`, with the same small read buffer the servers use.
pub(crate) async fn ws_connect(addr: SocketAddr, path: &str) -> Result<WsClient, String> {
    ws_connect_on(tcp(addr).await?, &format!("ws://{addr}{path}")).await
}

/// A WebSocket to `url` over `stream` (TCP, or TLS for a `wss://` URL).
pub(crate) async fn ws_connect_on<S>(
    stream: S,
    url: &str,
) -> Result<WebSocketStream<TokioAdapter<S>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let connect = client_async_with_config(url, stream, Some(config));
    let (ws, _) = tokio::time::timeout(OP_TIMEOUT, connect)
        .await
        .map_err(|_| format!("WebSocket handshake {url}: timed out"))?
        .map_err(|e| format!("WebSocket handshake {url}: {e}"))?;
    Ok(ws)
}

/// Reads text frames until one satisfies `done`; an `error` frame or the end fails.
pub(crate) async fn ws_wait<S>(
    ws: &mut WebSocketStream<TokioAdapter<S>>,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let wait = async {
        while let Some(message) = ws.next().await {
            match message.map_err(|e| format!("waiting for {what}: {e}"))? {
                Message::Text(text) if done(&text) => return Ok(()),
                Message::Text(text) if text.starts_with(r#"{"type":"error""#) => {
                    return Err(format!("waiting for {what}: {text}"));
                }
                Message::Close(frame) => {
                    return Err(format!("waiting for {what}: closed {frame:?}"));
                }
                _ => {}
            }
        }
        Err(format!("waiting for {what}: connection ended"))
    };
    tokio::time::timeout(OP_TIMEOUT, wait)
        .await
        .map_err(|_| format!("waiting for {what}: timed out"))?
}

/// roomcast's protocol: the `welcome`, then `join` with a `ref` and its `reply`.
pub(crate) async fn roomcast_join(ws: &mut WsClient, room: &str) -> Result<(), String> {
    ws_wait(ws, "welcome", |t| t.starts_with(r#"{"type":"welcome""#)).await?;
    let join = format!(r#"{{"type":"join","ref":1,"room":"{room}"}}"#);
    ws.send(Message::text(join))
        .await
        .map_err(|e| format!("join: {e}"))?;
    ws_wait(ws, "join reply", |t| {
        t.starts_with(r#"{"type":"reply","ref":1,"#)
    })
    .await
}

/// A task that is aborted when this is dropped.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The stamp in every published payload: the run, the sequence number and the send time (ns
/// on [`super::stats::now_ns`]), padded with `x` to `size` bytes of JSON.
pub(crate) fn payload(run: usize, seq: u64, sent_ns: u64, size: usize) -> String {
    let mut text = format!(r#"{{"bench":[{run},{seq},{sent_ns}],"p":""#);
    let pad = size.saturating_sub(text.len() + 2);
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str("\"}");
    text
}

/// The stamp of a payload, wherever it sits in a frame: roomcast relays `data` byte for byte.
pub(crate) fn stamp(text: &str) -> Option<(usize, u64, u64)> {
    const KEY: &str = r#""bench":["#;
    let rest = &text[text.find(KEY)? + KEY.len()..];
    let mut fields = rest[..rest.find(']')?].split(',');
    let run = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let sent = fields.next()?.parse().ok()?;
    Some((run, seq, sent))
}

/// Connections being opened: how many are ready, how many failed, and the first failure.
#[derive(Default)]
pub(crate) struct Setup {
    pub(crate) ready: AtomicUsize,
    pub(crate) failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Setup {
    pub(crate) fn fail(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_error
            .lock()
            .expect("not poisoned")
            .get_or_insert(error);
    }

    /// Waits until `n` connections are ready; fails on any failure or at `deadline`.
    pub(crate) async fn wait(
        &self,
        n: usize,
        deadline: Instant,
        bar: &ProgressBar,
    ) -> Result<(), String> {
        loop {
            let ready = self.ready.load(Ordering::Relaxed);
            bar.set_position(ready as u64);
            if self.failed.load(Ordering::Relaxed) > 0 {
                let error = self.first_error.lock().expect("not poisoned").clone();
                return Err(format!(
                    "{} of {n} connections failed (first: {}); {ready} ready",
                    self.failed.load(Ordering::Relaxed),
                    error.unwrap_or_default()
                ));
            }
            if ready >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {ready} of {n} connections ready before the deadline"
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Opens `n` connections with `open`, at most `concurrency` at a time, and returns them in
/// order; fails on the first failure or at `deadline`, closing whatever was opened.
pub(crate) async fn open_all<T, F, Fut>(
    n: usize,
    concurrency: usize,
    deadline: Instant,
    bar: &ProgressBar,
    open: F,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let gate = gate(concurrency);
    let mut tasks: std::collections::VecDeque<_> = (0..n)
        .map(|i| {
            let (gate, opening) = (gate.clone(), open(i));
            let task = tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                opening.await
            });
            AbortOnTaskDrop(Some(task))
        })
        .collect();
    let mut opened = Vec::with_capacity(n);
    while let Some(mut task) = tasks.pop_front() {
        let handle = task.0.as_mut().expect("present");
        let result = tokio::time::timeout_at(deadline.into(), handle)
            .await
            .map_err(|_| {
                format!(
                    "only {} of {n} connections open before the deadline",
                    opened.len()
                )
            })?
            .map_err(|e| format!("connection task: {e}"))?;
        task.0 = None;
        opened.push(result.map_err(|e| format!("connection {} of {n}: {e}", opened.len() + 1))?);
        bar.set_position(opened.len() as u64);
    }
    Ok(opened)
}

/// A task with a result that is aborted if dropped before it was awaited.
struct AbortOnTaskDrop<T>(Option<JoinHandle<T>>);

impl<T> Drop for AbortOnTaskDrop<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// At most this many handshakes at once, so the listen backlog is never overrun.
pub(crate) fn gate(concurrency: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(concurrency.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_size_and_read_back() {
        let text = payload(1, 42, 123_456_789, 64);
        assert_eq!(text.len(), 64);
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        let frame =
            format!(r#"{{"type":"message","room":"bench","id":"1f.3","from":"p","data":{text}}}"#);
        assert_eq!(stamp(&frame), Some((1, 42, 123_456_789)));
        assert_eq!(stamp(r#"{"type":"presence"}"#), None);
        assert_eq!(payload(0, 0, 0, 1024).len(), 1024);
    }
}
