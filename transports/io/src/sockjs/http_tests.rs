use std::future::Future;
use std::task::Waker;

use futures_lite::StreamExt;
use futures_lite::future::block_on;
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::delivery::Delivery;
use roomcast_core::envelope::{Payload, ServerMessage};

use super::*;
use crate::runtime::AsyncTimer;

/// The wall clock, timers that never fire, no tasks: enough for a link driven by hand.
#[derive(Clone)]
struct Wall;

struct Never;

impl AsyncTimer for Never {
    fn reset(&mut self, _: Instant) {}
    fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Runtime for Wall {
    type Timer = Never;
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn new_timer(&self, _: Instant) -> Never {
        Never
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, _: F) {}
}

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

fn recv(transport: &mut SockJsHttp) -> Poll<Option<Inbound>> {
    transport.poll_recv(&mut cx())
}

fn next(receiver: &mut SockJsReceiver<Wall>) -> Poll<Option<String>> {
    Pin::new(receiver)
        .poll_next(&mut cx())
        .map(|bytes| bytes.map(|b| String::from_utf8(b.to_vec()).expect("UTF-8")))
}

fn frame(json: &str) -> Transmit {
    let message = ServerMessage::Broadcast {
        id: roomcast_core::cursor::Position {
            epoch: 1,
            offset: 1,
        },
        event: None,
        data: Payload::from_json(json).expect("JSON"),
    };
    Transmit::Frame(Delivery::unstreamed(message.encode()))
}

#[test]
fn messages_go_both_ways_through_sends_and_receivers() {
    let link = SockJsLink::new(HttpConfig::default(), Instant::now());
    let mut transport = SockJsHttp::new(link.clone());
    let mut poll = link
        .attach(Receiving::Xhr, &Wall)
        .expect("the first receiver");
    assert_eq!(next(&mut poll), Poll::Ready(Some("o\n".into())));
    assert_eq!(
        next(&mut poll),
        Poll::Ready(None),
        "a poll answers one frame"
    );
    drop(poll);

    assert_eq!(block_on(link.send(br#"["a","b"]"#)), Received::Queued);
    assert_eq!(
        recv(&mut transport),
        Poll::Ready(Some(Inbound::Text("a".into())))
    );
    assert_eq!(
        recv(&mut transport),
        Poll::Ready(Some(Inbound::Text("b".into())))
    );
    assert_eq!(recv(&mut transport), Poll::Pending);

    let mut stream = link
        .attach(Receiving::EventSource, &Wall)
        .expect("the next receiver");
    assert_eq!(next(&mut stream), Poll::Ready(Some("\r\n".into())));
    assert_eq!(next(&mut stream), Poll::Pending);
    assert!(transport.poll_ready(&mut cx()).is_ready());
    transport.start_send(frame("1")).expect("sent");
    transport.queue_text(Bytes::from("two")).expect("queued");
    assert!(transport.poll_flush(&mut cx()).is_ready());
    let Poll::Ready(Some(data)) = next(&mut stream) else {
        panic!("the frames reach the receiver");
    };
    assert!(
        data.starts_with("data: a[\"{\\\"type\\\":\\\"broadcast\\\""),
        "{data}"
    );
    assert!(data.ends_with(",\"two\"]\r\n\r\n"), "{data}");
    assert_eq!(
        block_on(link.send(b"not json")),
        Received::Invalid(roomcast_core::sockjs::frame::ClientFrameError::Broken)
    );
}

#[test]
fn a_receiver_broken_off_ends_the_session_task() {
    let link = SockJsLink::new(HttpConfig::default(), Instant::now());
    let mut transport = SockJsHttp::new(link.clone());
    let mut stream = link
        .attach(Receiving::XhrStreaming, &Wall)
        .expect("attached");
    assert!(matches!(next(&mut stream), Poll::Ready(Some(prelude)) if prelude.len() == 2049));
    assert_eq!(next(&mut stream), Poll::Ready(Some("o\n".into())));
    assert_eq!(recv(&mut transport), Poll::Pending);
    drop(stream);
    assert_eq!(
        recv(&mut transport),
        Poll::Ready(None),
        "the client is gone"
    );
    assert!(transport.start_send(frame("1")).is_err());
    let mut poll = link.attach(Receiving::Xhr, &Wall).expect("told why");
    assert_eq!(
        next(&mut poll),
        Poll::Ready(Some("c[1002,\"Connection interrupted\"]\n".into()))
    );
}

#[test]
fn the_server_s_close_reaches_the_receiver_and_needs_no_handshake() {
    let link = SockJsLink::new(HttpConfig::default(), Instant::now());
    let mut transport = SockJsHttp::new(link.clone());
    let mut stream = link
        .attach(Receiving::XhrStreaming, &Wall)
        .expect("attached");
    let _prelude = next(&mut stream);
    let close = Close::new(CloseCode::Other(4000), "slow consumer");
    transport.start_send(Transmit::Close(close)).expect("sent");
    assert_eq!(
        next(&mut stream),
        Poll::Ready(Some("o\nc[4000,\"slow consumer\"]\n".into()))
    );
    assert_eq!(next(&mut stream), Poll::Ready(None), "the response ends");
    assert_eq!(
        recv(&mut transport),
        Poll::Ready(Some(Inbound::Close(None)))
    );
    // A heartbeat is a sign of life the session is told of.
    let link = SockJsLink::new(HttpConfig::default(), Instant::now());
    let mut transport = SockJsHttp::new(link.clone());
    transport.start_send(Transmit::Ping).expect("sent");
    assert_eq!(recv(&mut transport), Poll::Ready(Some(Inbound::Pong)));
    let mut poll = link.attach(Receiving::Xhr, &Wall).expect("attached");
    assert_eq!(next(&mut poll), Poll::Ready(Some("o\n".into())));
    let mut poll = link.attach(Receiving::Xhr, &Wall).expect("attached");
    assert_eq!(next(&mut poll), Poll::Ready(Some("h\n".into())));
    let _ = block_on(stream_end(poll));
}

async fn stream_end(mut receiver: SockJsReceiver<Wall>) -> Option<Bytes> {
    receiver.next().await
}
