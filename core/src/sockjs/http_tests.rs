use super::*;
use crate::testing::start;

fn t(ms: u64, t0: Instant) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn accepted(attach: Attach) -> (ReceiverId, Bytes) {
    match attach {
        Attach::Accepted { id, prelude } => (id, prelude),
        Attach::Refused(bytes) => panic!("refused: {bytes:?}"),
    }
}

fn taken(session: &mut HttpSession, id: ReceiverId, now: Instant) -> (String, bool) {
    let taken = session.take(id, now).expect("bytes to take");
    (
        String::from_utf8(taken.bytes.to_vec()).expect("utf-8"),
        taken.last,
    )
}

#[test]
fn an_xhr_poll_answers_one_frame_and_the_session_opens_with_o() {
    let t0 = start();
    let mut session = HttpSession::new(HttpConfig::default(), t0);
    let (id, prelude) = accepted(session.attach(Receiving::Xhr, t0));
    assert!(prelude.is_empty());
    session.push(Bytes::from("hello")).expect("room");
    assert_eq!(taken(&mut session, id, t0), ("o\n".into(), true));
    assert!(!session.has_receiver(), "a poll ends after its frame");
    assert_eq!(
        session.take(id, t0),
        None,
        "a finished receiver takes nothing"
    );
    let (id, _) = accepted(session.attach(Receiving::Xhr, t0));
    assert_eq!(taken(&mut session, id, t0), ("a[\"hello\"]\n".into(), true));
    let (id, _) = accepted(session.attach(Receiving::Xhr, t0));
    assert_eq!(
        session.take(id, t0),
        None,
        "a poll waits for something to send"
    );
    session.heartbeat();
    assert_eq!(taken(&mut session, id, t0), ("h\n".into(), true));
}

#[test]
fn every_message_waiting_goes_in_one_array() {
    let t0 = start();
    let mut session = HttpSession::new(HttpConfig::default(), t0);
    let (id, _) = accepted(session.attach(Receiving::XhrStreaming, t0));
    for message in ["a", "b\"", "c\n"] {
        session.push(Bytes::from(message)).expect("room");
    }
    session.heartbeat();
    assert_eq!(
        taken(&mut session, id, t0),
        ("o\na[\"a\",\"b\\\"\",\"c\\n\"]\n".into(), false),
        "a heartbeat is not sent when messages go"
    );
    assert_eq!(session.take(id, t0), None);
}

#[test]
fn streaming_transports_write_their_prelude_and_their_lines() {
    let t0 = start();
    let mut session = HttpSession::new(HttpConfig::default(), t0);
    let (id, prelude) = accepted(session.attach(Receiving::XhrStreaming, t0));
    assert_eq!(prelude.len(), 2049);
    assert!(prelude[..2048].iter().all(|&b| b == b'h'));
    assert_eq!(prelude[2048], b'\n');
    assert_eq!(taken(&mut session, id, t0), ("o\n".into(), false));
    session.detach(id, true, t0);

    let mut session = HttpSession::new(HttpConfig::default(), t0);
    let (id, prelude) = accepted(session.attach(Receiving::EventSource, t0));
    assert_eq!(&prelude[..], b"\r\n");
    session.push(Bytes::from("x")).expect("room");
    assert_eq!(
        taken(&mut session, id, t0),
        ("data: o\r\n\r\ndata: a[\"x\"]\r\n\r\n".into(), false)
    );
}

#[test]
fn a_streaming_response_ends_at_its_limit_and_the_next_goes_on() {
    let t0 = start();
    let config = HttpConfig {
        response_limit: 100,
        ..HttpConfig::default()
    };
    let mut session = HttpSession::new(config, t0);
    let (id, _) = accepted(session.attach(Receiving::XhrStreaming, t0));
    assert_eq!(taken(&mut session, id, t0), ("o\n".into(), false));
    session.push(Bytes::from("x".repeat(60))).expect("room");
    assert!(!taken(&mut session, id, t0).1, "66 bytes of 100");
    session.push(Bytes::from("y".repeat(60))).expect("room");
    let (text, last) = taken(&mut session, id, t0);
    assert!(last, "the limit is reached: the response ends");
    assert!(
        text.contains(&"y".repeat(60)),
        "with the message it carried"
    );
    session.push(Bytes::from("z")).expect("room");
    let (id, _) = accepted(session.attach(Receiving::XhrStreaming, t0));
    assert_eq!(taken(&mut session, id, t0), ("a[\"z\"]\n".into(), false));
}

#[test]
fn a_second_receiver_gets_2010_and_the_first_goes_on() {
    let t0 = start();
    let mut session = HttpSession::new(HttpConfig::default(), t0);
    let (first, _) = accepted(session.attach(Receiving::XhrStreaming, t0));
    let Attach::Refused(bytes) = session.attach(Receiving::XhrStreaming, t0) else {
        panic!("a second receiver is refused");
    };
    assert!(bytes.starts_with(&[b'h'; 2048]));
    assert!(bytes.ends_with(b"\nc[2010,\"Another connection still open\"]\n"));
    assert_eq!(
        session.attach(Receiving::Xhr, t0),
        Attach::Refused(Bytes::from("c[2010,\"Another connection still open\"]\n"))
    );
    assert_eq!(taken(&mut session, first, t0), ("o\n".into(), false));
    assert_eq!(session.ending(), None);
}

#[test]
fn a_receiver_broken_off_interrupts_the_session() {
    let t0 = start();
    let mut session = HttpSession::new(HttpConfig::default(), t0);
    let (id, _) = accepted(session.attach(Receiving::XhrStreaming, t0));
    assert_eq!(taken(&mut session, id, t0), ("o\n".into(), false));
    session.detach(id, false, t0);
    assert_eq!(session.ending(), Some(&Ending::Interrupted));
    assert_eq!(session.push(Bytes::from("late")), Err(Bytes::from("late")));
    assert_eq!(session.receive(b"[\"x\"]"), Received::Ended);
    let (id, prelude) = accepted(session.attach(Receiving::XhrStreaming, t0));
    assert_eq!(prelude.len(), 2049);
    assert_eq!(
        taken(&mut session, id, t0),
        ("c[1002,\"Connection interrupted\"]\n".into(), true)
    );
}

#[test]
fn a_closed_session_tells_every_receiver_after_what_waited() {
    let t0 = start();
    let mut session = HttpSession::new(HttpConfig::default(), t0);
    let (id, _) = accepted(session.attach(Receiving::Xhr, t0));
    assert_eq!(taken(&mut session, id, t0), ("o\n".into(), true));
    session.push(Bytes::from("bye")).expect("room");
    session.close(3000, "Go away!");
    let (id, _) = accepted(session.attach(Receiving::Xhr, t0));
    assert_eq!(taken(&mut session, id, t0), ("a[\"bye\"]\n".into(), true));
    for _ in 0..2 {
        let (id, _) = accepted(session.attach(Receiving::Xhr, t0));
        assert_eq!(
            taken(&mut session, id, t0),
            ("c[3000,\"Go away!\"]\n".into(), true)
        );
    }
}

#[test]
fn a_session_without_a_receiver_expires_after_the_delay() {
    let t0 = start();
    let mut session = HttpSession::new(HttpConfig::default(), t0);
    assert_eq!(session.poll_timeout(), Some(t(5_000, t0)));
    let (id, _) = accepted(session.attach(Receiving::XhrStreaming, t(1_000, t0)));
    assert_eq!(session.poll_timeout(), None, "a receiver keeps it alive");
    session.handle_timeout(t(60_000, t0));
    assert!(!session.is_expired());
    session.detach(id, true, t(60_000, t0));
    assert_eq!(session.poll_timeout(), Some(t(65_000, t0)));
    session.handle_timeout(t(64_999, t0));
    assert!(!session.is_expired());
    session.handle_timeout(t(65_000, t0));
    assert!(session.is_expired());
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn the_client_s_messages_are_read_in_order_and_bounded() {
    let t0 = start();
    let config = HttpConfig {
        max_inbound: 8,
        ..HttpConfig::default()
    };
    let mut session = HttpSession::new(config, t0);
    assert_eq!(
        session.receive(b""),
        Received::Invalid(ClientFrameError::Empty)
    );
    assert_eq!(
        session.receive(b"[1]"),
        Received::Invalid(ClientFrameError::Broken)
    );
    assert_eq!(session.receive(br#"["ab","cd"]"#), Received::Queued);
    assert_eq!(
        session.receive(br#"["ef"]"#),
        Received::Busy,
        "16 bytes > 8"
    );
    assert_eq!(session.next_inbound().as_deref(), Some("ab"));
    assert_eq!(session.next_inbound().as_deref(), Some("cd"));
    assert_eq!(session.next_inbound(), None);
    assert_eq!(session.receive(br#"["ef"]"#), Received::Queued);
    assert_eq!(session.next_inbound().as_deref(), Some("ef"));
}

#[test]
fn messages_waiting_are_bounded() {
    let t0 = start();
    let config = HttpConfig {
        max_pending: 10,
        ..HttpConfig::default()
    };
    let mut session = HttpSession::new(config, t0);
    assert!(session.has_room());
    session.push(Bytes::from("x".repeat(20))).expect("queued");
    assert!(!session.has_room(), "20 bytes wait, over 10");
    let (id, _) = accepted(session.attach(Receiving::XhrStreaming, t0));
    session.take(id, t0).expect("taken");
    assert!(session.has_room());
    session.push(Bytes::from("y")).expect("room again");
}
