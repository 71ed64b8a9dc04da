//! The two baselines, each as small as it can be and tuned as their authors would for many
//! connections: a WebSocket broadcast server (async-tungstenite on tokio) and an SSE broadcast
//! server (hyper 1.x on tokio). No rooms, no history, no auth: the floor roomcast is measured
//! against. Both run as `roomcast-bench baseline ws|sse --listen ADDR`, a hidden subcommand,
//! in a process of their own.

use std::convert::Infallible;
use std::net::SocketAddr;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::{TokioAdapter, accept_hdr_async_with_config};
use async_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Message, Utf8Bytes};
use bytes::{BufMut, Bytes, BytesMut};
use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt, stream};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// `roomcast-bench baseline`: a baseline server for `roomcast-bench`, run by it.
#[derive(Args, Debug)]
pub(crate) struct BaselineArgs {
    /// Which baseline: a WebSocket broadcast (and echo at /echo) or an SSE broadcast.
    kind: Kind,
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Runtime worker threads (tokio).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Messages the shared broadcast channel holds; a connection further behind is closed as
    /// a slow consumer, as roomcast closes one past its 4,096-frame queue.
    #[arg(long, default_value_t = 4096)]
    capacity: usize,
    /// WebSocket: write each message with its own `send` (a flush per message), as most
    /// broadcast examples do, instead of feeding every waiting message before one flush.
    #[arg(long)]
    plain: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Ws,
    Sse,
}

pub(crate) fn run(args: BaselineArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("bind {}: {e}", args.listen))?;
        match args.kind {
            Kind::Ws => ws_server(listener, args.capacity, args.plain).await,
            Kind::Sse => sse_server(listener, args.capacity).await,
        }
        Ok(())
    })
}

type Ws = WebSocketStream<TokioAdapter<TcpStream>>;

/// Every text frame any client sends goes to every connection, through one bounded channel.
async fn ws_server(listener: TcpListener, capacity: usize, plain: bool) {
    let (tx, _) = broadcast::channel::<Utf8Bytes>(capacity);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(ws_connection(tcp, tx.clone(), plain));
    }
}

async fn ws_connection(tcp: TcpStream, tx: broadcast::Sender<Utf8Bytes>, plain: bool) {
    let mut path = String::new();
    // The error type is tungstenite's `Callback` contract, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &WsRequest, response: WsResponse| {
        path = request.uri().path().to_owned();
        Ok(response)
    };
    // A 4 KiB read buffer, not tungstenite's 128 KiB, which it zero-fills on every read.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(ws) = accept_hdr_async_with_config(tcp, callback, Some(config)).await else {
        return;
    };
    if path == "/echo" {
        echo(ws).await;
    } else {
        broadcast_connection(ws, tx, plain).await;
    }
}

async fn echo(mut ws: Ws) {
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}

async fn broadcast_connection(ws: Ws, tx: broadcast::Sender<Utf8Bytes>, plain: bool) {
    let mut rx = tx.subscribe();
    let (mut sink, mut source) = ws.split();
    let reader = async move {
        while let Some(Ok(message)) = source.next().await {
            if let Message::Text(text) = message {
                let _ = tx.send(text);
            }
        }
    };
    let writer = async move {
        loop {
            let first = match rx.recv().await {
                Ok(text) => text,
                Err(RecvError::Lagged(_)) => return lagged(&mut sink).await,
                Err(RecvError::Closed) => return,
            };
            if plain {
                if sink.send(Message::Text(first)).await.is_err() {
                    return;
                }
                continue;
            }
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            // Everything already queued goes out with one flush: one write for the batch.
            loop {
                match rx.try_recv() {
                    Ok(text) => {
                        if sink.feed(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Lagged(_)) => return lagged(&mut sink).await,
                    Err(TryRecvError::Closed) => return,
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    };
    futures_util::future::select(Box::pin(reader), Box::pin(writer)).await;
}

/// A connection that fell more than the channel's capacity behind: closed, as a slow consumer.
async fn lagged(sink: &mut async_tungstenite::WebSocketSender<TokioAdapter<TcpStream>>) {
    let frame = CloseFrame {
        code: CloseCode::Library(4000),
        reason: "lagged".into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// `GET /events` streams `data: ...` events; `POST /publish` sends its body to every stream.
async fn sse_server(listener: TcpListener, capacity: usize) {
    let (tx, _) = broadcast::channel::<Bytes>(capacity);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tx = tx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| sse_handle(request, tx.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn sse_handle(
    request: Request<Incoming>,
    tx: broadcast::Sender<Bytes>,
) -> Result<Response<Body>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/events") => {
            let rx = tx.subscribe();
            // A comment first, so the headers go out at once and the client knows it is live.
            let hello = stream::once(async {
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b":\n\n")))
            });
            let events = stream::unfold(rx, |mut rx| async move {
                // Lagged: a slow consumer's stream ends, as a closed WebSocket would.
                let event = rx.recv().await.ok()?;
                Some((Ok(Frame::data(event)), rx))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .body(UnsyncBoxBody::new(StreamBody::new(hello.chain(events))))
        }
        (&Method::POST, "/publish") => {
            let body = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => return Ok(status(StatusCode::BAD_REQUEST, "")),
            };
            // Encoded once; every stream gets the same bytes.
            let mut event = BytesMut::with_capacity(body.len() + 8);
            event.put_slice(b"data: ");
            event.put_slice(&body);
            event.put_slice(b"\n\n");
            let receivers = tx.send(event.freeze()).unwrap_or(0);
            Ok(status(StatusCode::OK, &receivers.to_string()))
        }
        _ => Ok(status(StatusCode::NOT_FOUND, "")),
    };
    Ok(response.unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "")))
}

fn status(code: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(UnsyncBoxBody::new(Full::new(Bytes::from(text.to_owned()))));
    *response.status_mut() = code;
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_tungstenite::tungstenite::Message;
    use futures_util::StreamExt;

    use super::*;
    use crate::client::ws_connect;
    use crate::http::{HttpClient, SseClient};

    async fn text(ws: &mut crate::client::WsClient) -> String {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next());
        match next.await.expect("in time").expect("open").expect("frame") {
            Message::Text(text) => text.as_str().to_owned(),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn the_baselines_broadcast_and_echo() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            for plain in [false, true] {
                let ws = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let ws_addr = ws.local_addr().expect("addr");
                tokio::spawn(ws_server(ws, 16, plain));
                let mut a = ws_connect(ws_addr, "/").await.expect("a");
                let mut b = ws_connect(ws_addr, "/").await.expect("b");
                tokio::time::sleep(Duration::from_millis(50)).await;
                for message in ["hi", "there"] {
                    a.send(Message::text(message)).await.expect("send");
                }
                for message in ["hi", "there"] {
                    assert_eq!(text(&mut b).await, message, "plain: {plain}");
                    assert_eq!(text(&mut a).await, message, "the sender gets it too");
                }
                let mut echo = ws_connect(ws_addr, "/echo").await.expect("echo");
                echo.send(Message::text("back")).await.expect("send");
                assert_eq!(text(&mut echo).await, "back");
            }

            let sse = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let sse_addr = sse.local_addr().expect("addr");
            tokio::spawn(sse_server(sse, 16));
            let mut stream = SseClient::connect(sse_addr, "/events").await.expect("sse");
            stream.wait_for("").await.expect("live");
            let mut http = HttpClient::connect_via(sse_addr, &crate::dial::Dial::Plain)
                .await
                .expect("http");
            http.post("/publish", r#"{"n":1}"#.into())
                .await
                .expect("publish");
            let mut got = Vec::new();
            while got.is_empty() {
                let read = stream.read(|kind, data| got.push((kind.to_owned(), data.to_owned())));
                assert!(read.await.expect("read"), "the stream goes on");
            }
            assert_eq!(got, [("message".to_owned(), r#"{"n":1}"#.to_owned())]);
        });
    }
}
