//! The fan-out's peers: the receivers (WebSocket or SSE, in the room) and the one publisher
//! (a WebSocket for `fanout-ws`, HTTP POSTs for `fanout-sse`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketSender;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use tokio::net::TcpStream;

use super::client::{AbortOnDrop, OP_TIMEOUT, WsClient, payload, roomcast_join, ws_connect};
use super::dial::Dial;
use super::fanout::{Cursor, Shared, Transport};
use super::http::{HttpClient, SseClient};
use super::stats::now_ns;
use super::{Ctx, Kind, ROOM, rabbitmq, socketio};

pub(crate) enum Receiver {
    Ws(WsClient),
    Sse(SseClient),
}

pub(crate) async fn receiver_open(
    addr: SocketAddr,
    kind: Kind,
    transport: Transport,
    i: usize,
    dial: &Dial,
) -> Result<Receiver, String> {
    match (transport, kind) {
        (Transport::Ws, Kind::Roomcast) => {
            let mut ws = ws_connect(addr, &format!("/ws?user=u{i}")).await?;
            roomcast_join(&mut ws, ROOM).await?;
            Ok(Receiver::Ws(ws))
        }
        (Transport::Ws, Kind::Baseline) => Ok(Receiver::Ws(ws_connect(addr, "/").await?)),
        (Transport::Stomp, kind) => Ok(Receiver::Ws(stomp_subscribe(addr, kind, i, ROOM).await?)),
        (Transport::Nchan, _) => Ok(Receiver::Ws(
            ws_connect(addr, &format!("/sub/{ROOM}")).await?,
        )),
        (Transport::SocketIo, _) => Ok(Receiver::Ws(socketio::subscribe(addr).await?)),
        (Transport::Sse, Kind::Roomcast) => {
            let path = format!("/events?rooms={ROOM}&user=u{i}&broadcast=0");
            let mut sse = dial.sse(addr, &path, i).await?;
            // `streams` comes once the session is registered with the hub, in the room.
            sse.wait_for("streams").await?;
            Ok(Receiver::Sse(sse))
        }
        (Transport::Sse, Kind::Baseline) => {
            let mut sse = SseClient::connect(addr, "/events").await?;
            sse.wait_for("").await?;
            Ok(Receiver::Sse(sse))
        }
    }
}

/// A STOMP 1.2 client connected (its `CONNECTED` come): of roomcast's `/stomp` as user `u{i}`,
/// or of the peer's (RabbitMQ's Web-STOMP, `Kind::Baseline`) as its default user.
pub(crate) async fn stomp_connect(
    addr: SocketAddr,
    kind: Kind,
    i: usize,
) -> Result<WsClient, String> {
    let (path, headers) = match kind {
        Kind::Roomcast => (format!("/stomp?user=u{i}"), "host:bench\n"),
        Kind::Baseline => (rabbitmq::PATH.to_owned(), rabbitmq::CONNECT_HEADERS),
    };
    let mut ws = ws_connect(addr, &path).await?;
    let connect = format!("CONNECT\naccept-version:1.2\n{headers}heart-beat:0,0\n\n\0");
    ws.send(Message::text(connect))
        .await
        .map_err(|e| format!("CONNECT: {e}"))?;
    super::client::ws_wait(&mut ws, "CONNECTED", |t| t.starts_with("CONNECTED\n")).await?;
    Ok(ws)
}

/// A STOMP client ([`stomp_connect`]) subscribed to `/topic/{room}` (its receipt come). Its
/// `MESSAGE` frames carry the stamped payload as their body, which the stamp reader finds in
/// the frame's text as it does in a roomcast.v1 frame.
pub(crate) async fn stomp_subscribe(
    addr: SocketAddr,
    kind: Kind,
    i: usize,
    room: &str,
) -> Result<WsClient, String> {
    let mut ws = stomp_connect(addr, kind, i).await?;
    let subscribe = format!("SUBSCRIBE\nid:0\ndestination:/topic/{room}\nreceipt:s\n\n\0");
    ws.send(Message::text(subscribe))
        .await
        .map_err(|e| format!("SUBSCRIBE: {e}"))?;
    super::client::ws_wait(&mut ws, "the SUBSCRIBE receipt", |t| {
        t.starts_with("RECEIPT\n")
    })
    .await?;
    Ok(ws)
}

pub(crate) async fn receive(receiver: Receiver, shared: &Shared) {
    let mut cursor = Cursor::default();
    match receiver {
        Receiver::Ws(mut ws) => {
            while let Some(message) = ws.next().await {
                match message {
                    // A STOMP server may write several frames in one message, each ended by
                    // a NUL; a roomcast.v1 message holds none.
                    Ok(Message::Text(text)) if text.contains('\0') => {
                        for frame in text.split_terminator('\0') {
                            shared.on_text(&mut cursor, frame);
                        }
                    }
                    Ok(Message::Text(text)) => shared.on_text(&mut cursor, &text),
                    Ok(Message::Close(frame)) => {
                        let code = frame.map_or("none".into(), |f| u16::from(f.code).to_string());
                        return shared.closed(format!("WebSocket close {code}"));
                    }
                    Ok(_) => {}
                    Err(error) => return shared.closed(format!("WebSocket error: {error}")),
                }
            }
            shared.closed("WebSocket ended".into());
        }
        Receiver::Sse(mut sse) => loop {
            match sse.read(|_, data| shared.on_text(&mut cursor, data)).await {
                Ok(true) => {}
                Ok(false) => return shared.closed("SSE stream ended".into()),
                Err(error) => return shared.closed(format!("SSE error: {error}")),
            }
        },
    }
}

/// The one publisher: a WebSocket for `fanout-ws`, HTTP POSTs for `fanout-sse`, STOMP `SEND`s
/// for the STOMP peer, `POST /pub/<room>` for Nchan.
pub(crate) enum Publisher {
    Ws(WebSocketSender<TokioAdapter<TcpStream>>, Kind),
    Http(HttpClient, Kind),
    Stomp(WebSocketSender<TokioAdapter<TcpStream>>),
    Nchan(HttpClient),
}

impl Publisher {
    pub(crate) async fn open(
        addr: SocketAddr,
        kind: Kind,
        transport: Transport,
        shared: &Arc<Shared>,
        tasks: &mut Vec<AbortOnDrop>,
        dial: &Dial,
    ) -> Result<Self, String> {
        // Socket.IO's peer publishes as the SSE baseline does: `POST /publish`.
        if transport == Transport::Sse || transport == Transport::SocketIo {
            return Ok(Self::Http(HttpClient::connect_via(addr, dial).await?, kind));
        }
        if transport == Transport::Nchan {
            return Ok(Self::Nchan(HttpClient::connect_via(addr, dial).await?));
        }
        let peer_stomp = transport == Transport::Stomp && kind == Kind::Baseline;
        let ws = match kind {
            Kind::Baseline if peer_stomp => stomp_connect(addr, kind, usize::MAX).await?,
            Kind::Roomcast => {
                let mut ws = ws_connect(addr, "/ws?user=publisher").await?;
                roomcast_join(&mut ws, ROOM).await?;
                ws
            }
            Kind::Baseline => ws_connect(addr, "/").await?,
        };
        let (sink, mut source) = ws.split();
        let shared = shared.clone();
        // The publisher's own inbound: drained (the baseline echoes its messages back), and
        // any roomcast `error` (a rate limit, say) counted.
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            while let Some(Ok(message)) = source.next().await {
                if let Message::Text(text) = message
                    && (text.starts_with(r#"{"type":"error""#) || text.starts_with("ERROR\n"))
                {
                    shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        })));
        Ok(match peer_stomp {
            true => Self::Stomp(sink),
            false => Self::Ws(sink, kind),
        })
    }

    /// Publishes `k` stamped messages, at `rate` per second or as fast as it can; returns each
    /// message's send time.
    pub(crate) async fn publish(
        &mut self,
        ctx: &Ctx,
        run: usize,
        k: u64,
        rate: Option<f64>,
        deadline: Instant,
        bar: &indicatif::ProgressBar,
    ) -> Result<Vec<u64>, String> {
        let start = tokio::time::Instant::now();
        let mut sent = Vec::with_capacity(k as usize);
        for seq in 0..k {
            if let Some(rate) = rate {
                tokio::time::sleep_until(start + Duration::from_secs_f64(seq as f64 / rate)).await;
                bar.set_message(format!("paced: {seq} of {k} published"));
            }
            if Instant::now() > deadline {
                return Err(format!("deadline passed after {seq} of {k} messages"));
            }
            let at = now_ns();
            let data = payload(run, seq, at, ctx.size);
            let send = async {
                match self {
                    Self::Ws(sink, Kind::Roomcast) => {
                        let frame =
                            format!(r#"{{"type":"publish","room":"{ROOM}","data":{data}}}"#);
                        sink.send(Message::text(frame))
                            .await
                            .map_err(|e| e.to_string())
                    }
                    Self::Ws(sink, Kind::Baseline) => sink
                        .send(Message::text(data))
                        .await
                        .map_err(|e| e.to_string()),
                    Self::Http(http, Kind::Roomcast) => {
                        let path = format!("/api/rooms/{ROOM}/publish");
                        http.post(&path, format!(r#"{{"data":{data}}}"#)).await
                    }
                    Self::Http(http, Kind::Baseline) => http.post("/publish", data).await,
                    Self::Nchan(http) => http.post(&format!("/pub/{ROOM}"), data).await,
                    Self::Stomp(sink) => {
                        let frame = format!(
                            "SEND\ndestination:/topic/{ROOM}\ncontent-type:application/json\n\n{data}\0"
                        );
                        sink.send(Message::text(frame))
                            .await
                            .map_err(|e| e.to_string())
                    }
                }
            };
            tokio::time::timeout(OP_TIMEOUT, send)
                .await
                .map_err(|_| format!("publish {seq}: timed out"))?
                .map_err(|e| format!("publish {seq}: {e}"))?;
            sent.push(at);
        }
        Ok(sent)
    }
}
