//! One test per session rule. The property test is in `props.rs`.

use serde_json::Value;

use super::*;
use crate::testing::start;

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

pub(super) fn alice() -> UserId {
    UserId::new("alice").expect("valid user")
}

pub(super) fn codec() -> Codec {
    Codec::new().with_app_type("reaction").expect("valid type")
}

/// A session with the default config, created at `t0`.
fn fresh(kind: SessionKind, t0: Instant) -> Session {
    Session::new(kind, SessionConfig::default(), codec(), t0)
}

/// A session accepted at `t0`, its welcome already taken.
fn open_with(kind: SessionKind, config: SessionConfig, t0: Instant) -> Session {
    let mut session = Session::new(kind, config, codec(), t0);
    session.accept(t0, SessionId(7), alice());
    assert!(matches!(
        session.poll_transmit(t0),
        Some(Transmit::Frame(_))
    ));
    session
}

fn open(t0: Instant) -> Session {
    open_with(SessionKind::WebSocket, SessionConfig::default(), t0)
}

fn drain(session: &mut Session, now: Instant) -> Vec<Transmit> {
    std::iter::from_fn(|| session.poll_transmit(now)).collect()
}

/// The session's events but `Pinged` (the answered pings, which only count): requests and
/// closes.
fn events(session: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| session.poll_event())
        .filter(|event| *event != SessionEvent::Pinged)
        .collect()
}

fn json(transmit: &Transmit) -> Value {
    match transmit {
        Transmit::Frame(delivery) => serde_json::from_str(delivery.frame.as_str()).expect("JSON"),
        other => panic!("not a frame: {other:?}"),
    }
}

/// The `(type, ref, code)` of every reply and error among `transmits`.
pub(super) fn answers(transmits: &[Transmit]) -> Vec<(String, Value, Value)> {
    transmits
        .iter()
        .filter(|t| matches!(t, Transmit::Frame(_)))
        .map(json)
        .filter(|v| v["type"] == "reply" || v["type"] == "error")
        .map(|v| {
            (
                v["type"].as_str().unwrap_or("").to_owned(),
                v["ref"].clone(),
                v["code"].clone(),
            )
        })
        .collect()
}

fn closes(transmits: &[Transmit]) -> Vec<u16> {
    let codes = transmits.iter().filter_map(|t| match t {
        Transmit::Close(close) => Some(close.code.as_u16()),
        _ => None,
    });
    codes.collect()
}

fn closed_events(events: &[SessionEvent]) -> Vec<u16> {
    let codes = events.iter().filter_map(|e| match e {
        SessionEvent::Closed(close) => Some(close.code.as_u16()),
        _ => None,
    });
    codes.collect()
}

/// A frame of exactly `len` bytes (at least 2).
pub(super) fn sized(len: usize) -> Shared {
    Delivery::unstreamed(Frame::from_json(format!("\"{}\"", "x".repeat(len - 2))))
}

/// Feeds a text frame to a WebSocket session.
fn text(session: &mut Session, now: Instant, frame: &str) {
    session
        .handle_text(now, frame)
        .expect("a WebSocket session");
}

fn ping(reference: u64) -> String {
    format!(r#"{{"type":"ping","ref":{reference}}}"#)
}

#[test]
fn welcome_is_the_first_transmit() {
    let t0 = start();
    let mut session = fresh(SessionKind::WebSocket, t0);
    assert_eq!(
        (session.state(), session.id(), session.user()),
        (SessionState::Handshake, None, None)
    );
    session.accept(t0, SessionId(7), alice());
    session.deliver(t0, sized(10));
    let sent = drain(&mut session, t0);
    assert_eq!(sent.len(), 2);
    let Transmit::Frame(welcome) = &sent[0] else {
        panic!("a frame")
    };
    assert_eq!(
        welcome.frame.as_str(),
        r#"{"type":"welcome","protocol":1,"session":"s7","user":"alice","ping_interval_ms":25000,"ping_timeout_ms":10000,"max_frame":65536}"#
    );
    assert_eq!(welcome.stream, None);
    assert_eq!(
        (session.state(), session.id()),
        (SessionState::Open, Some(SessionId(7)))
    );
    assert_eq!(session.user(), Some(&alice()));
    // An SSE client is told the keep-alive rhythm it will see.
    let mut sse = fresh(SessionKind::Sse, t0);
    sse.accept(t0, SessionId(8), alice());
    assert!(json(&sse.poll_transmit(t0).expect("welcome"))["ping_interval_ms"] == 15000);
}

#[test]
fn handshake_timeout_closes_4008() {
    let t0 = start();
    let mut session = fresh(SessionKind::WebSocket, t0);
    assert_eq!(session.poll_timeout(), Some(ms(t0, 10_000)));
    session.handle_timeout(ms(t0, 9_999));
    assert_eq!(session.state(), SessionState::Handshake);
    session.handle_timeout(ms(t0, 10_000));
    assert_eq!(closes(&drain(&mut session, ms(t0, 10_000))), [4008]);
    assert_eq!(closed_events(&events(&mut session)), [4008]);
    session.accept(ms(t0, 10_001), SessionId(1), alice());
    assert_eq!(
        (session.state(), session.id()),
        (SessionState::Closing, None)
    );
    // An accept at the deadline, before the timer ran, is too late as well.
    let mut late = fresh(SessionKind::WebSocket, t0);
    late.accept(ms(t0, 10_000), SessionId(1), alice());
    assert_eq!(
        late.close_reason().map(|c| c.code),
        Some(CloseCode::HandshakeTimeout)
    );
}

/// Found by the `session_ops` fuzz target: a close at a timer armed a close deadline at that
/// same instant, so a run loop had to come back at once for it.
#[test]
fn after_handle_timeout_the_next_timer_is_later_even_with_a_zero_close_timeout() {
    let t0 = start();
    let config = SessionConfig {
        close_timeout: Duration::ZERO,
        ..SessionConfig::default()
    };
    let mut session = Session::new(SessionKind::WebSocket, config, codec(), t0);
    session.handle_timeout(ms(t0, 10_000));
    assert_eq!(
        session.state(),
        SessionState::Closed,
        "no wait for the peer"
    );
    assert_eq!(session.poll_timeout(), None);
    assert_eq!(closes(&drain(&mut session, ms(t0, 10_000))), [4008]);
}

#[test]
fn inputs_before_accept_are_ignored() {
    let t0 = start();
    let mut session = fresh(SessionKind::WebSocket, t0);
    text(&mut session, t0, &ping(1));
    session.deliver(t0, sized(10));
    assert_eq!(
        (drain(&mut session, t0), events(&mut session)),
        (vec![], vec![])
    );
}

#[test]
fn rate_limit_answers_rate_limited_with_the_ref_then_refills() {
    let t0 = start();
    let mut session = open(t0);
    for n in 0..200 {
        text(&mut session, t0, &ping(n));
    }
    let sent = answers(&drain(&mut session, t0));
    assert_eq!(sent.len(), 200);
    assert!(
        sent.iter()
            .enumerate()
            .all(|(n, a)| a.0 == "reply" && a.1 == n)
    );
    text(
        &mut session,
        t0,
        r#"{"type":"join","ref":"x","room":"lobby"}"#,
    );
    let refused = answers(&drain(&mut session, t0));
    assert_eq!(
        refused,
        [(
            "error".into(),
            Value::from("x"),
            Value::from("rate_limited")
        )]
    );
    assert_eq!(events(&mut session), [], "the message was dropped");
    // 100 per second: one token every 10 ms, exactly.
    text(&mut session, ms(t0, 9), &ping(500));
    text(&mut session, ms(t0, 10), &ping(501));
    text(&mut session, ms(t0, 10), &ping(502));
    let later = answers(&drain(&mut session, ms(t0, 10)));
    let codes: Vec<_> = later.iter().map(|a| (a.1.clone(), a.0.as_str())).collect();
    assert_eq!(
        codes,
        [
            (500.into(), "error"),
            (501.into(), "reply"),
            (502.into(), "error")
        ]
    );
    assert!(session.is_open());
}

#[test]
fn sustained_abuse_closes_1008_when_the_abuse_bucket_runs_out() {
    let t0 = start();
    let mut session = open(t0);
    for n in 0..200 {
        text(&mut session, t0, &ping(n));
    }
    drain(&mut session, t0);
    for n in 0..100 {
        text(&mut session, t0, &ping(1000 + n));
        let sent = answers(&drain(&mut session, t0));
        assert_eq!(
            sent,
            [("error".into(), (1000 + n).into(), "rate_limited".into())]
        );
        assert!(session.is_open(), "rejection {n} is tolerated");
    }
    text(&mut session, t0, &ping(2000));
    let sent = drain(&mut session, t0);
    assert_eq!((answers(&sent), closes(&sent)), (vec![], vec![1008]));
    assert_eq!(closed_events(&events(&mut session)), [1008]);
}

#[test]
fn an_oversized_frame_closes_1009_and_nothing_after_it_is_accepted() {
    let t0 = start();
    let mut session = open(t0);
    let frame = |len: usize| {
        let head = r#"{"type":"ping","ref":1,"pad":""}"#;
        format!(
            r#"{{"type":"ping","ref":1,"pad":"{}"}}"#,
            "x".repeat(len - head.len())
        )
    };
    text(&mut session, t0, &frame(65_536));
    assert_eq!(
        answers(&drain(&mut session, t0)).len(),
        1,
        "at the limit: read"
    );
    text(&mut session, t0, &frame(65_537));
    text(&mut session, t0, &ping(2));
    text(&mut session, t0, r#"{"type":"join","room":"lobby"}"#);
    let sent = drain(&mut session, t0);
    assert_eq!(closes(&sent), [1009]);
    assert_eq!(sent.len(), 1);
    assert_eq!(closed_events(&events(&mut session)), [1009]);
}

#[test]
fn malformed_frames_get_exactly_one_error_and_the_session_goes_on() {
    let t0 = start();
    let mut session = open(t0);
    let cases = [
        (r#"{"type":"join","ref":"a""#, Value::Null, "bad_frame"), // not JSON: no ref to read
        (
            r#"{"type":"dance","ref":"a7"}"#,
            "a7".into(),
            "unknown_type",
        ),
        (r#"{"type":"join","ref":"j"}"#, "j".into(), "bad_frame"),
        (
            r#"{"type":"publish","ref":4,"room":"lobby"}"#,
            4.into(),
            "bad_frame",
        ),
        (r#"{"type":"ping","ref":5,"room":5}"#, 5.into(), "bad_frame"),
        (r#"{"ref":6}"#, 6.into(), "bad_frame"),
    ];
    for (frame, reference, code) in cases {
        text(&mut session, t0, frame);
        let sent = answers(&drain(&mut session, t0));
        assert_eq!(sent, [("error".into(), reference, code.into())], "{frame}");
        assert!(session.is_open());
        assert_eq!(events(&mut session), []);
    }
}

#[test]
fn ping_with_a_ref_gets_one_bare_reply_without_a_ref_nothing() {
    let t0 = start();
    let mut session = open(t0);
    text(&mut session, t0, r#"{"type":"ping","ref":"p"}"#);
    assert_eq!(
        session.poll_event(),
        Some(SessionEvent::Pinged),
        "counted, as every other message is"
    );
    let sent = drain(&mut session, t0);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        json(&sent[0]),
        serde_json::json!({"type":"reply","ref":"p"})
    );
    text(&mut session, t0, r#"{"type":"ping"}"#);
    assert_eq!(
        (drain(&mut session, t0), events(&mut session)),
        (vec![], vec![])
    );
}

#[test]
fn requests_and_app_messages_go_to_the_caller_unanswered() {
    let t0 = start();
    let mut session = open(t0);
    text(
        &mut session,
        t0,
        r#"{"type":"join","ref":1,"room":"lobby"}"#,
    );
    text(
        &mut session,
        t0,
        r#"{"type":"reaction","ref":2,"emoji":"+1"}"#,
    );
    assert_eq!(drain(&mut session, t0), []);
    let got = events(&mut session);
    assert!(matches!(&got[0], SessionEvent::Request(e) if e.reference == Some(Ref::Number(1))));
    assert!(matches!(&got[1], SessionEvent::App(e) if e.message.kind() == "reaction"));
    assert_eq!(got.len(), 2);
}

#[test]
fn every_ref_the_session_answers_gets_exactly_one_answer() {
    let t0 = start();
    let config = SessionConfig {
        burst: 6,
        ..SessionConfig::default()
    };
    let mut session = open_with(SessionKind::WebSocket, config, t0);
    let frames = [
        r#"{"type":"ping","ref":1}"#,
        r#"{"type":"dance","ref":2}"#,
        r#"{"type":"join","ref":3}"#,
        r#"{"type":"join","ref":4,"room":"lobby"}"#, // for the hub: not answered here
        r#"{"type":"reaction","ref":5}"#,            // for the application
        r#"{"type":"ping","ref":6,"to":1}"#,
        r#"{"type":"ping","ref":7}"#, // over the burst: rate_limited
        r#"{"type":"leave","ref":8,"room":"lobby"}"#, // over the burst: rate_limited
    ];
    for frame in frames {
        text(&mut session, t0, frame);
    }
    let refs: Vec<_> = answers(&drain(&mut session, t0))
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(refs, [1, 2, 3, 6, 7, 8].map(Value::from));
    assert_eq!(events(&mut session).len(), 2);
}

#[test]
fn binary_frames_are_answered_bad_frame() {
    let t0 = start();
    let mut session = open(t0);
    session.handle_binary(t0, &[1, 2, 3]).expect("websocket");
    let sent = drain(&mut session, t0);
    assert_eq!(
        json(&sent[0]),
        serde_json::json!({"type":"error","code":"bad_frame","message":"binary frames are not part of protocol v1"})
    );
    assert!(session.is_open());
}

#[test]
fn slow_consumer_at_the_byte_budget() {
    let t0 = start();
    let mut session = open(t0);
    session.deliver(t0, sized(1024 * 1024 - 10));
    session.deliver(t0, sized(10));
    assert_eq!(session.queued_bytes(), 1024 * 1024, "at the budget: fine");
    assert!(session.is_open());
    session.deliver(t0, sized(2));
    let sent = drain(&mut session, t0);
    assert_eq!(sent.len(), 1, "the queue is dropped");
    let close = Close::new(
        CloseCode::SlowConsumer,
        "slow consumer: reconnect and resume",
    );
    assert_eq!(sent[0], Transmit::Close(close.clone()));
    assert_eq!(events(&mut session), [SessionEvent::Closed(close)]);
    assert_eq!((session.queued_bytes(), session.queued_frames()), (0, 0));
    session.deliver(t0, sized(2));
    assert_eq!(session.queued_frames(), 0, "no deliveries once closed");
}

#[test]
fn slow_consumer_at_the_frame_budget() {
    let t0 = start();
    let mut session = open(t0);
    for _ in 0..4096 {
        session.deliver(t0, sized(2));
    }
    assert_eq!(
        (session.queued_frames(), session.state()),
        (4096, SessionState::Open)
    );
    session.deliver(t0, sized(2));
    assert_eq!(closes(&drain(&mut session, t0)), [4000]);
}

#[test]
fn the_sessions_own_answers_count_against_the_budget() {
    let t0 = start();
    let config = SessionConfig {
        queue_frames: 3,
        ..SessionConfig::default()
    };
    let mut session = open_with(SessionKind::WebSocket, config, t0);
    for n in 0..3 {
        text(&mut session, t0, &ping(n));
    }
    assert!(session.is_open());
    text(&mut session, t0, &ping(3));
    assert_eq!(
        session.close_reason().map(|c| c.code),
        Some(CloseCode::SlowConsumer)
    );
}

#[test]
fn heartbeat_expiry_closes_4001_and_any_sign_of_life_keeps_the_session() {
    let t0 = start();
    let mut session = open(t0);
    session.handle_timeout(ms(t0, 25_000));
    assert_eq!(drain(&mut session, ms(t0, 25_000)), [Transmit::Ping]);
    session.handle_pong(ms(t0, 25_100)).expect("websocket");
    session.handle_timeout(ms(t0, 50_000));
    text(&mut session, ms(t0, 59_999), r#"{"type":"ping"}"#);
    session.handle_timeout(ms(t0, 60_000));
    assert!(session.is_open());
    session.handle_timeout(ms(t0, 75_000));
    assert_eq!(session.poll_timeout(), Some(ms(t0, 85_000)));
    session.handle_timeout(ms(t0, 84_999));
    assert!(session.is_open());
    session.handle_timeout(ms(t0, 85_000));
    let sent = drain(&mut session, ms(t0, 85_000));
    assert_eq!(closes(&sent), [4001]);
    assert_eq!(closed_events(&events(&mut session)), [4001]);
}

#[test]
fn a_ping_passes_queued_frames() {
    let t0 = start();
    let mut session = open(t0);
    session.deliver(t0, sized(5));
    session.handle_timeout(ms(t0, 25_000));
    let sent = drain(&mut session, ms(t0, 25_000));
    assert_eq!(sent, [Transmit::Ping, Transmit::Frame(sized(5))]);
}

#[test]
fn a_ping_due_soon_goes_with_the_deliveries() {
    let t0 = start();
    let mut session = open(t0);
    drain(&mut session, t0); // the welcome
    // More than 1/8 of the interval (3,125 ms) before the ping: the frame goes alone.
    session.deliver(ms(t0, 21_000), sized(5));
    assert_eq!(
        drain(&mut session, ms(t0, 21_000)),
        [Transmit::Frame(sized(5))]
    );
    // Within it: the ping goes first, in the same drain, and its timer finds nothing due.
    session.deliver_batch(ms(t0, 22_000), [sized(6), sized(7)]);
    assert_eq!(
        drain(&mut session, ms(t0, 22_000)),
        [
            Transmit::Ping,
            Transmit::Frame(sized(6)),
            Transmit::Frame(sized(7))
        ]
    );
    assert_eq!(
        session.poll_timeout(),
        Some(ms(t0, 32_000)),
        "its pong deadline"
    );
    session.handle_timeout(ms(t0, 25_000));
    assert_eq!(drain(&mut session, ms(t0, 25_000)), []);
    // An empty batch is no traffic.
    session.handle_pong(ms(t0, 22_100)).expect("open");
    session.deliver_batch(ms(t0, 46_000), []);
    assert_eq!(drain(&mut session, ms(t0, 46_000)), []);
    session.deliver(ms(t0, 46_000), sized(8));
    assert_eq!(
        drain(&mut session, ms(t0, 46_000)),
        [Transmit::Ping, Transmit::Frame(sized(8))]
    );
    // No ping on SSE: a frame there puts the keep-alive off.
    let mut sse = open_with(SessionKind::Sse, SessionConfig::default(), t0);
    drain(&mut sse, t0);
    sse.deliver(ms(t0, 14_000), sized(5));
    assert_eq!(drain(&mut sse, ms(t0, 14_000)), [Transmit::Frame(sized(5))]);
}

#[test]
fn sse_keep_alive_only_when_idle() {
    let t0 = start();
    let mut session = open_with(SessionKind::Sse, SessionConfig::default(), t0);
    assert_eq!(session.poll_timeout(), Some(ms(t0, 15_000)));
    session.deliver(ms(t0, 10_000), sized(5));
    assert_eq!(drain(&mut session, ms(t0, 10_000)).len(), 1);
    session.handle_timeout(ms(t0, 15_000));
    assert_eq!(
        drain(&mut session, ms(t0, 15_000)),
        [],
        "sent something 5 s ago"
    );
    assert_eq!(session.poll_timeout(), Some(ms(t0, 25_000)));
    session.handle_timeout(ms(t0, 25_000));
    assert_eq!(drain(&mut session, ms(t0, 25_000)), [Transmit::KeepAlive]);
    // A frame queued when the keep-alive falls due goes instead of it.
    session.handle_timeout(ms(t0, 40_000));
    session.deliver(ms(t0, 40_000), sized(5));
    assert_eq!(
        drain(&mut session, ms(t0, 40_000)),
        [Transmit::Frame(sized(5))]
    );
}

#[test]
fn sse_sessions_take_no_inbound_frames_and_never_expire() {
    let t0 = start();
    let mut session = open_with(SessionKind::Sse, SessionConfig::default(), t0);
    assert_eq!(session.handle_text(t0, &ping(1)), Err(SessionError::OneWay));
    assert_eq!(session.handle_binary(t0, b"x"), Err(SessionError::OneWay));
    assert_eq!(session.handle_pong(t0), Err(SessionError::OneWay));
    assert_eq!(
        (drain(&mut session, t0), events(&mut session)),
        (vec![], vec![])
    );
    session.handle_timeout(ms(t0, 3_600_000));
    assert!(session.is_open());
    session.close(
        ms(t0, 3_600_000),
        Close::new(CloseCode::Unauthorized, "token expired"),
    );
    assert_eq!(
        session.state(),
        SessionState::Closed,
        "no close handshake on SSE"
    );
    assert_eq!(closes(&drain(&mut session, ms(t0, 3_600_000))), [4003]);
}

#[test]
fn closed_is_emitted_exactly_once_whatever_the_sequence_of_closes() {
    let t0 = start();
    let normal = || Close::new(CloseCode::Normal, "bye");
    type Step = fn(&mut Session, Instant);
    let steps: [(&str, Step); 7] = [
        ("close", |s, now| {
            s.close(now, Close::new(CloseCode::Unauthorized, "revoked"))
        }),
        ("peer close", |s, now| {
            s.handle_close(now, Some(Close::new(CloseCode::Normal, "bye")))
        }),
        ("peer gone", |s, now| s.handle_close(now, None)),
        ("shutdown", |s, now| s.shutdown(now, 1000)),
        ("timer", |s, now| s.handle_timeout(now)),
        ("overflow", |s, now| s.deliver(now, sized(2 * 1024 * 1024))),
        ("too big", |s, now| {
            _ = s.handle_text(now, &"x".repeat(70_000))
        }),
    ];
    for (a, first) in &steps {
        for (b, second) in &steps {
            for (c, third) in &steps {
                let mut session = open(t0);
                first(&mut session, ms(t0, 1));
                second(&mut session, ms(t0, 10_000));
                third(&mut session, ms(t0, 60_000));
                session.close(ms(t0, 70_000), normal());
                let got = closed_events(&events(&mut session));
                assert_eq!(got.len(), 1, "{a}, {b}, {c}: {got:?}");
                assert_eq!(closes(&drain(&mut session, ms(t0, 70_000))).len(), 1);
            }
        }
    }
}

#[test]
fn shutdown_sends_shutdown_then_closes_1001_after_the_grace() {
    let t0 = start();
    let mut session = open(t0);
    session.deliver(t0, sized(5));
    session.shutdown(ms(t0, 1_000), 1_500);
    assert_eq!(session.poll_timeout(), Some(ms(t0, 6_000)));
    session.shutdown(ms(t0, 2_000), 9_999);
    session.deliver(ms(t0, 3_000), sized(6));
    session.handle_timeout(ms(t0, 5_999));
    assert!(session.is_open(), "frames keep flowing during the grace");
    session.handle_timeout(ms(t0, 6_000));
    session.deliver(ms(t0, 6_000), sized(7));
    let sent = drain(&mut session, ms(t0, 6_000));
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[0], Transmit::Frame(sized(5)));
    assert_eq!(
        json(&sent[1]),
        serde_json::json!({"type":"shutdown","reason":"server shutting down","reconnect_ms":1500})
    );
    assert_eq!(
        sent[2],
        Transmit::Frame(sized(6)),
        "queued frames are kept for a shutdown"
    );
    assert_eq!(
        sent[3],
        Transmit::Close(Close::new(CloseCode::GoingAway, SHUTDOWN_REASON))
    );
    assert_eq!(closed_events(&events(&mut session)), [1001]);
}

#[test]
fn a_server_close_drops_the_queue_and_waits_for_the_peer() {
    let t0 = start();
    let mut session = open(t0);
    session.deliver(t0, sized(5));
    session.close(t0, Close::new(CloseCode::Unauthorized, "revoked"));
    assert_eq!(closes(&drain(&mut session, t0)), [4003]);
    assert_eq!(session.state(), SessionState::Closing);
    assert_eq!(session.poll_timeout(), Some(ms(t0, 5_000)));
    session.handle_close(ms(t0, 100), Some(Close::new(CloseCode::Unauthorized, "")));
    assert_eq!(session.state(), SessionState::Closed);
    assert_eq!(drain(&mut session, ms(t0, 100)), [], "no echo of the echo");
    // Without the peer's close, the wait ends after close_timeout.
    let mut silent = open(t0);
    silent.close(t0, Close::new(CloseCode::Internal, "oops"));
    silent.handle_timeout(ms(t0, 4_999));
    assert_eq!(silent.state(), SessionState::Closing);
    silent.handle_timeout(ms(t0, 5_000));
    assert_eq!(
        (silent.state(), silent.poll_timeout()),
        (SessionState::Closed, None)
    );
}

#[test]
fn a_peer_close_is_echoed() {
    let t0 = start();
    let mut session = open(t0);
    session.deliver(t0, sized(5));
    let close = Close::new(CloseCode::GoingAway, "tab closed");
    session.handle_close(t0, Some(close.clone()));
    assert_eq!(session.state(), SessionState::Closed);
    assert_eq!(drain(&mut session, t0), [Transmit::Close(close.clone())]);
    assert_eq!(events(&mut session), [SessionEvent::Closed(close.clone())]);
    assert_eq!(session.close_reason(), Some(&close));
    let mut bare = open(t0);
    bare.handle_close(t0, None);
    assert_eq!(closes(&drain(&mut bare, t0)), [1000]);
}

#[test]
fn inputs_after_closed_are_ignored() {
    let t0 = start();
    let mut session = open(t0);
    session.handle_close(t0, None);
    drain(&mut session, t0);
    events(&mut session);
    let later = ms(t0, 1_000_000);
    session.accept(later, SessionId(9), alice());
    text(&mut session, later, &ping(1));
    text(&mut session, later, &"x".repeat(1 << 20));
    session.handle_binary(later, b"x").expect("websocket");
    session.handle_pong(later).expect("websocket");
    session.handle_close(later, Some(Close::new(CloseCode::Normal, "")));
    session.handle_timeout(later);
    session.handle_timeout(t0);
    session.deliver(later, sized(5));
    session.close(later, Close::new(CloseCode::Normal, ""));
    session.shutdown(later, 0);
    assert_eq!(
        (drain(&mut session, later), events(&mut session)),
        (vec![], vec![])
    );
    assert_eq!(
        (session.state(), session.poll_timeout()),
        (SessionState::Closed, None)
    );
}

#[test]
fn a_batch_larger_than_the_budget_is_taken_whole_once() {
    let t = crate::testing::start();
    let config = SessionConfig {
        queue_frames: 4,
        ..SessionConfig::default()
    };
    let mut session = Session::new(SessionKind::WebSocket, config, Codec::new(), t);
    session.accept(t, SessionId(1), UserId::new("alice").expect("valid"));
    while session.poll_transmit(t).is_some() {}
    let frame = |n: u64| {
        let data = crate::envelope::Payload::from_json(&n.to_string()).expect("JSON");
        crate::delivery::Delivery::unstreamed(
            ServerMessage::Reply(crate::envelope::Reply {
                data: Some(data),
                ..crate::envelope::Reply::to(crate::envelope::Ref::Number(n))
            })
            .encode(),
        )
    };
    // A replay of 10 frames, over the 4-frame budget: taken, since the queue was empty.
    session.deliver_batch(t, (0..10).map(frame));
    assert!(session.is_open());
    assert_eq!(session.queued_frames(), 10);
    // Not read since: the next batch finds the queue over budget.
    session.deliver_batch(t, [frame(10)]);
    assert_eq!(
        session.close_reason().map(|c| c.code),
        Some(CloseCode::SlowConsumer)
    );
}

#[test]
fn an_oversized_binary_frame_closes_with_1009_too() {
    let t = crate::testing::start();
    let mut session = Session::new(
        SessionKind::WebSocket,
        SessionConfig::default(),
        Codec::new(),
        t,
    );
    session.accept(t, SessionId(1), UserId::new("alice").expect("valid"));
    session
        .handle_binary(t, &vec![0; SessionConfig::default().max_frame])
        .expect("WebSocket");
    assert!(session.is_open(), "at the limit: answered, not closed");
    session
        .handle_binary(t, &vec![0; SessionConfig::default().max_frame + 1])
        .expect("WebSocket");
    assert_eq!(
        session.close_reason().map(|c| c.code),
        Some(CloseCode::TooBig)
    );
}

#[test]
fn what_every_delivery_touches_lies_in_the_first_four_cache_lines() {
    use std::mem::{offset_of, size_of};
    let end = |offset: usize, size: usize| offset + size;
    let hot = [
        end(offset_of!(Session, state), 1),
        end(offset_of!(Session, kind), 1),
        end(offset_of!(Session, ping_due), 1),
        end(offset_of!(Session, keep_alive_due), 1),
        end(offset_of!(Session, queued_bytes), 8),
        end(offset_of!(Session, queue), size_of::<super::Queue>()),
        end(
            offset_of!(Session, events),
            size_of::<VecDeque<SessionEvent>>(),
        ),
        end(
            offset_of!(Session, heartbeat),
            size_of::<Option<Heartbeat>>(),
        ),
        end(
            offset_of!(Session, shutdown_at),
            size_of::<Option<Option<Instant>>>(),
        ),
        end(offset_of!(Session, close_due), size_of::<Option<Close>>()),
        end(
            offset_of!(Session, config) + offset_of!(SessionConfig, queue_bytes),
            8,
        ),
        end(
            offset_of!(Session, config) + offset_of!(SessionConfig, queue_frames),
            8,
        ),
    ];
    let last = hot.into_iter().max().expect("fields");
    assert!(last <= 4 * 64, "the hot fields end at byte {last}");
}

#[test]
fn credentials_end_with_a_notice_then_4003_unless_refreshed() {
    let t0 = start();
    let quiet = SessionConfig {
        ping_interval: Duration::from_secs(100_000),
        ..SessionConfig::default()
    };
    let mut session = open_with(SessionKind::WebSocket, quiet, t0);
    session.set_expiry(t0, Some(ms(t0, 600_000)));
    assert_eq!(
        session.poll_timeout(),
        Some(ms(t0, 540_000)),
        "told 60 s ahead"
    );
    session.handle_timeout(ms(t0, 540_000));
    let told = drain(&mut session, ms(t0, 540_000));
    assert_eq!(json(&told[0])["type"], "expiring");
    assert_eq!(json(&told[0])["in_ms"], 60_000);
    // A refresh moves the deadline: nothing happens at the old one.
    session.set_expiry(ms(t0, 550_000), Some(ms(t0, 1_200_000)));
    session.handle_timeout(ms(t0, 600_000));
    assert!(session.is_open());
    assert!(
        drain(&mut session, ms(t0, 600_000))
            .iter()
            .all(|t| !matches!(t, Transmit::Close(_)))
    );
    session.handle_timeout(ms(t0, 1_200_000));
    let closed = drain(&mut session, ms(t0, 1_200_000));
    assert_eq!(closes(&closed), [4003]);
    assert!(matches!(
        events(&mut session).last(),
        Some(SessionEvent::Closed(close)) if close.reason == "the token has expired"
    ));
}

#[test]
fn short_credentials_are_told_halfway_and_past_ones_close_at_once() {
    let t0 = start();
    let mut session = open_with(SessionKind::Sse, SessionConfig::default(), t0);
    session.set_expiry(t0, Some(ms(t0, 2_000)));
    assert_eq!(session.poll_timeout(), Some(ms(t0, 1_000)));
    session.handle_timeout(ms(t0, 2_500));
    let transmits = drain(&mut session, ms(t0, 2_500));
    assert_eq!(closes(&transmits), [4003], "an SSE stream ends");
    assert_eq!(session.state(), SessionState::Closed);

    let mut late = open(t0);
    late.set_expiry(ms(t0, 10), Some(t0));
    assert_eq!(closes(&drain(&mut late, ms(t0, 10))), [4003]);
    let mut never = open(t0);
    never.set_expiry(t0, None);
    never.handle_timeout(ms(t0, 3_600_000_000));
    assert!(
        !drain(&mut never, ms(t0, 1))
            .iter()
            .any(|t| matches!(t, Transmit::Frame(_)))
    );
}

#[test]
fn a_ping_whose_answer_closes_the_session_is_counted_before_the_close() {
    // Found by the session_ops fuzz target: the answer goes over the queue budget.
    let t0 = start();
    let mut session = open(t0);
    let budget = SessionConfig::default().queue_bytes;
    session.deliver(t0, sized(budget - 10));
    text(&mut session, t0, r#"{"type":"ping","ref":1}"#);
    let got: Vec<SessionEvent> = std::iter::from_fn(|| session.poll_event()).collect();
    assert!(
        matches!(got.as_slice(), [SessionEvent::Pinged, SessionEvent::Closed(close)] if close.code == CloseCode::SlowConsumer),
        "{got:?}"
    );
}
