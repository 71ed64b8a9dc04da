//! The plan without a server: the calls each operation becomes, and what each reply means,
//! malformed ones included.

use std::time::Duration;

use roomcast_core::engine::{Message, Record, Retention, View};
use roomcast_core::envelope::Payload;
use roomcast_core::names::{RoomName, UserId};

use super::*;

fn lobby() -> StreamId {
    StreamId::Room(RoomName::new("lobby").expect("valid"))
}

fn alice() -> UserId {
    UserId::new("alice").expect("valid")
}

fn record() -> Record {
    Record::new(
        0,
        None,
        Message::Room {
            event: None,
            from: Some(alice()),
            data: Payload::from_json(r#"{"text":"hi"}"#).expect("JSON"),
        },
    )
}

fn data(text: &str) -> Reply {
    Reply::Data(text.as_bytes().to_vec())
}

const RETENTION: Retention = Retention {
    max_messages: 100,
    max_bytes: 1 << 20,
    max_age: Duration::from_secs(600),
};

#[test]
fn an_append_is_one_script_call_on_its_streams_keys_publishing_on_its_channel() {
    for sharded in [false, true] {
        let config = PlanConfig {
            sharded,
            ..PlanConfig::default()
        };
        let mut plan = Plan::new(config, 7);
        let operation = Operation::Append {
            op: OpId(3),
            stream: lobby(),
            record: record(),
            retention: RETENTION,
        };
        let Step::Run { calls, answer } = plan.plan(1_000, operation) else {
            panic!("an append runs a call");
        };
        assert_eq!(
            answer,
            Answer::Append {
                op: OpId(3),
                online: false
            }
        );
        let [Call::Script { script, keys, args }] = calls.as_slice() else {
            panic!("one script call: {calls:?}");
        };
        assert_eq!(*script, Script::Append);
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[..2], ["rc:{r:lobby}:m", "rc:{r:lobby}:l"]);
        assert_eq!(
            keys[2],
            format!("rc:{{r:lobby}}:r:{}", String::from_utf8_lossy(&args[2]))
        );
        assert_eq!(args.len(), 12);
        assert_eq!(args[11], b"0");
        assert_eq!(args[0], record().encode());
        assert_eq!(args[1], record().size().to_string().into_bytes());
        assert_eq!(args[3], b"1000");
        assert_eq!(args[4], b"100");
        assert_eq!(args[6], b"600000");
        assert_eq!(args[8], b"rc:{r:lobby}");
        let publish: &[u8] = if sharded { b"SPUBLISH" } else { b"PUBLISH" };
        assert_eq!(args[9], publish);
        // Twice the age, at least a day.
        assert_eq!(args[10], b"86400000");
    }
}

#[test]
fn epochs_and_nonces_differ_from_call_to_call_and_repeat_with_the_seed() {
    let args = |seed| {
        let mut plan = Plan::new(PlanConfig::default(), seed);
        (0..3)
            .map(|n| {
                let operation = Operation::Append {
                    op: OpId(n),
                    stream: lobby(),
                    record: record(),
                    retention: RETENTION,
                };
                match plan.plan(0, operation) {
                    Step::Run { calls, .. } => match &calls[0] {
                        Call::Script { args, .. } => (args[2].clone(), args[7].clone()),
                        other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                }
            })
            .collect::<Vec<_>>()
    };
    let first = args(1);
    assert_eq!(first, args(1));
    assert_ne!(first, args(2));
    assert_ne!(first[0], first[1]);
    assert_eq!(first[0].0.len(), 16, "a nonce is 16 hex digits");
}

#[test]
fn follows_subscribe_and_the_heads_are_one_read_per_stream() {
    let mut plan = Plan::new(PlanConfig::default(), 1);
    let follow = Operation::Follow {
        stream: lobby(),
        retention: RETENTION,
    };
    assert_eq!(plan.plan(0, follow), Step::Subscribe("rc:{r:lobby}".into()));
    assert_eq!(
        plan.plan(0, Operation::Unfollow(StreamId::Broadcast)),
        Step::Unsubscribe("rc:{b}".into())
    );
    assert_eq!(plan.plan(0, Operation::Expire), Step::Nothing);
    let tops = Operation::Tops {
        op: OpId(9),
        streams: vec![lobby(), StreamId::Broadcast],
    };
    let Step::Run { calls, answer } = plan.plan(0, tops) else {
        panic!("tops run calls");
    };
    assert_eq!(
        calls,
        [
            Call::Head {
                key: "rc:{r:lobby}:m".into()
            },
            Call::Head {
                key: "rc:{b}:m".into()
            }
        ]
    );
    // The second stream is unknown to Redis: left out.
    let events = plan.answer(
        answer,
        vec![
            Reply::Array(vec![data("42"), data("7")]),
            Reply::Array(vec![Reply::Nil, Reply::Nil]),
        ],
    );
    assert_eq!(
        events,
        [EngineEvent::Tops {
            op: OpId(9),
            heads: vec![(
                lobby(),
                Position {
                    epoch: 42,
                    offset: 7
                }
            )]
        }]
    );
}

#[test]
fn an_appends_reply_is_its_position_and_an_error_is_a_fault_of_its_kind() {
    let plan = Plan::new(PlanConfig::default(), 1);
    let answer = || Answer::Append {
        op: OpId(1),
        online: false,
    };
    assert_eq!(
        plan.answer(
            answer(),
            vec![Reply::Array(vec![
                data("18446744073709551615"),
                Reply::Int(5),
                Reply::Int(0)
            ])]
        ),
        [EngineEvent::Appended {
            op: OpId(1),
            at: Position {
                epoch: u64::MAX,
                offset: 5
            },
            online: false,
        }]
    );
    let fault = |reply: Reply| match plan.answer(answer(), vec![reply]).pop() {
        Some(EngineEvent::Failed { fault, .. }) => fault,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        fault(Reply::Error("LIMIT a record of 9 bytes is larger".into())),
        Fault::LimitReached(why) if why == "a record of 9 bytes is larger"
    ));
    assert!(matches!(
        fault(Reply::Error("OOM command not allowed".into())),
        Fault::LimitReached(_)
    ));
    assert!(matches!(
        fault(Reply::Error("NOSCRIPT".into())),
        Fault::Unavailable(_)
    ));
    for bad in [
        Reply::Nil,
        Reply::Int(1),
        Reply::Array(vec![data("1")]),
        Reply::Array(vec![Reply::Int(1), Reply::Int(2)]),
        Reply::Array(vec![data("x"), Reply::Int(2)]),
        Reply::Array(vec![data("1"), Reply::Int(-2)]),
    ] {
        assert!(matches!(fault(bad), Fault::Unavailable(_)));
    }
    assert!(matches!(
        plan.answer(answer(), Vec::new()).pop(),
        Some(EngineEvent::Failed { .. })
    ));
}

fn entry(offset: u64, record: &Record) -> Reply {
    Reply::Array(vec![
        data(&format!("{offset}-0")),
        Reply::Array(vec![
            data("r"),
            Reply::Data(record.encode()),
            data("n"),
            data("00000000000000ff"),
            data("t"),
            data("1"),
            data("s"),
            data("40"),
        ]),
    ])
}

#[test]
fn a_reads_reply_is_the_view_and_the_records_when_it_covers_the_position() {
    let plan = Plan::new(PlanConfig::default(), 1);
    let outbox = StreamId::Outbox(alice());
    let after = Position {
        epoch: 42,
        offset: 3,
    };
    let reply = |records| {
        vec![Reply::Array(vec![
            data("42"),
            Reply::Int(5),
            Reply::Int(2),
            Reply::Int(4),
            Reply::Array(records),
            Reply::Nil,
        ])]
    };
    let answer = Answer::Read {
        op: OpId(2),
        stream: outbox.clone(),
        after: Some(after),
    };
    let events = plan.answer(
        answer,
        reply(vec![entry(4, &record()), entry(5, &record())]),
    );
    let [
        EngineEvent::Read {
            view,
            records,
            stream,
            ..
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(stream, &outbox);
    assert_eq!(
        *view,
        View {
            head: Position {
                epoch: 42,
                offset: 5
            },
            first: 2,
            read: 4
        }
    );
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [4, 5]);
    assert_eq!(records[0].message, record().message);
    // A room has no read mark; an entry that is not a record fails the read.
    let answer = Answer::Read {
        op: OpId(3),
        stream: lobby(),
        after: None,
    };
    match plan.answer(answer, reply(Vec::new())).as_slice() {
        [EngineEvent::Read { view, records, .. }] => {
            assert_eq!(view.read, 0);
            assert!(records.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let broken = Reply::Array(vec![data("4-0"), Reply::Array(vec![data("r"), data("{")])]);
    let answer = Answer::Read {
        op: OpId(4),
        stream: lobby(),
        after: Some(after),
    };
    assert!(matches!(
        plan.answer(answer, reply(vec![broken])).as_slice(),
        [EngineEvent::Failed { op: OpId(4), .. }]
    ));
}

#[test]
fn a_published_message_is_a_live_record_and_anything_else_is_dropped() {
    let plan = Plan::new(PlanConfig::default(), 1);
    let mut payload = b"42 7 00000000000000ff\n".to_vec();
    payload.extend(record().encode());
    match plan.live("rc:{r:lobby}", &payload) {
        Some(EngineEvent::Live { stream, at, record }) => {
            assert_eq!(stream, lobby());
            assert_eq!(
                at,
                Position {
                    epoch: 42,
                    offset: 7
                }
            );
            assert_eq!(record.offset, 7);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.live("other", &payload), None);
    for bad in [
        &b"42 7 n"[..],
        b"42 7\n{}",
        b"x 7 n\n{}",
        b"42 7 n extra\n{}",
        b"42 7 n\nnot a record",
    ] {
        assert_eq!(plan.live("rc:{r:lobby}", bad), None, "{bad:?}");
    }
}

#[test]
fn a_marks_reply_is_the_mark_before_and_now() {
    let mut plan = Plan::new(PlanConfig::default(), 1);
    let upto = Position {
        epoch: 42,
        offset: 9,
    };
    let Step::Run { calls, answer } = plan.plan(
        0,
        Operation::MarkRead {
            op: OpId(5),
            user: alice(),
            upto,
        },
    ) else {
        panic!("a mark runs a call");
    };
    assert!(matches!(
        calls.as_slice(),
        [Call::Script { script: Script::Mark, keys, .. }] if keys == &["rc:{u:alice}:m"]
    ));
    let events = plan.answer(
        answer,
        vec![Reply::Array(vec![data("42"), Reply::Int(2), Reply::Int(9)])],
    );
    assert_eq!(
        events,
        [EngineEvent::Marked {
            op: OpId(5),
            user: alice(),
            before: 2,
            read: upto
        }]
    );
}

#[test]
fn a_failed_link_fails_the_operation_unavailable() {
    let answer = Answer::Tops {
        op: OpId(8),
        streams: vec![lobby()],
    };
    assert!(matches!(
        answer.failed("connection reset"),
        Some(EngineEvent::Failed { op: OpId(8), fault: Fault::Unavailable(why) }) if why == "connection reset"
    ));
    // Nobody waits on a presence entry or a presence read.
    assert_eq!(Answer::Nothing.failed("gone"), None);
}

#[test]
fn presence_is_a_script_on_the_rooms_key_and_comes_back_from_other_nodes() {
    let mut plan = Plan::new(PlanConfig::default(), 1);
    let room = RoomName::new("lobby").expect("valid");
    let operation = Operation::Presence {
        node: 7,
        room: room.clone(),
        user: UserId::new("a b").expect("valid"),
        present: true,
    };
    let Step::Run { calls, answer } = plan.plan(1_000, operation) else {
        panic!("presence runs a call");
    };
    assert_eq!(answer, Answer::Nothing);
    let [Call::Script { script, keys, args }] = calls.as_slice() else {
        panic!("{calls:?}");
    };
    assert_eq!(*script, Script::Presence);
    assert_eq!(keys, &["rc:{r:lobby}:p"]);
    assert_eq!(args[0], b"7:a b");
    assert_eq!(args[2], b"31000", "expires after presence_ttl");
    assert_eq!(args[5], b"P 7 1 a b");
    // What the other nodes hear.
    assert_eq!(
        plan.live("rc:{r:lobby}", b"P 7 1 a b"),
        Some(EngineEvent::Presence {
            room: room.clone(),
            node: 7,
            user: UserId::new("a b").expect("valid"),
            present: true
        })
    );
    for bad in [&b"P 7 2 a"[..], b"P x 1 a", b"P 7 1", b"P 7 1 "] {
        assert_eq!(plan.live("rc:{r:lobby}", bad), None, "{bad:?}");
    }
    assert_eq!(
        plan.live("rc:{b}", b"P 7 1 a"),
        None,
        "presence is of rooms"
    );
    // A read of everyone present.
    let Step::Run { answer, .. } = plan.presence_read(5, &room) else {
        panic!("a read");
    };
    let events = plan.answer(
        answer,
        vec![Reply::Array(vec![data("7:a b"), data("9:carol")])],
    );
    assert_eq!(
        events,
        [EngineEvent::PresenceSnapshot {
            room,
            members: vec![
                (UserId::new("a b").expect("valid"), 7),
                (UserId::new("carol").expect("valid"), 9)
            ]
        }]
    );
}

#[test]
fn a_read_whose_records_do_not_follow_on_in_order_within_the_head_is_refused() {
    let plan = Plan::new(PlanConfig::default(), 1);
    let after = Position {
        epoch: 42,
        offset: 1,
    };
    for offsets in [vec![3, 2], vec![2, 2], vec![1], vec![2, 6]] {
        let entries = offsets.iter().map(|&o| entry(o, &record())).collect();
        let reply = vec![Reply::Array(vec![
            data("42"),
            Reply::Int(5),
            Reply::Int(1),
            Reply::Int(0),
            Reply::Array(entries),
            Reply::Nil,
        ])];
        let answer = Answer::Read {
            op: OpId(6),
            stream: lobby(),
            after: Some(after),
        };
        assert!(
            matches!(
                plan.answer(answer, reply).as_slice(),
                [EngineEvent::Failed { op: OpId(6), .. }]
            ),
            "{offsets:?}"
        );
    }
}

#[test]
fn typing_is_published_on_the_rooms_channel_and_kept_nowhere() {
    let mut plan = Plan::new(PlanConfig::default(), 1);
    let operation = Operation::Typing {
        node: 7,
        room: RoomName::new("lobby").expect("valid"),
        user: alice(),
        typing: false,
    };
    let Step::Run { calls, answer } = plan.plan(0, operation) else {
        panic!("typing runs a call");
    };
    assert_eq!(answer, Answer::Nothing);
    assert_eq!(
        calls,
        [Call::Command(vec![
            b"PUBLISH".to_vec(),
            b"rc:{r:lobby}".to_vec(),
            b"T 7 0 alice".to_vec()
        ])]
    );
    assert_eq!(
        plan.live("rc:{r:lobby}", b"T 7 0 alice"),
        Some(EngineEvent::Typing {
            room: RoomName::new("lobby").expect("valid"),
            node: 7,
            user: alice(),
            typing: false
        })
    );
    assert_eq!(plan.live("rc:{r:lobby}", b"X 7 0 alice"), None);
}

#[test]
fn an_outbox_appends_publish_says_whether_a_node_follows_it() {
    let mut plan = Plan::new(PlanConfig::default(), 1);
    let bob = UserId::new("bob").expect("valid");
    let operation = |stream| Operation::Append {
        op: OpId(4),
        stream,
        record: record(),
        retention: RETENTION,
    };
    let Step::Run { calls, answer } = plan.plan(5_000, operation(StreamId::Outbox(bob))) else {
        panic!("an append runs a call");
    };
    let Step::Run { answer: room, .. } = plan.plan(5_000, operation(lobby())) else {
        panic!("an append runs a call");
    };
    assert_eq!(calls.len(), 1, "the script alone");
    assert_eq!(
        answer,
        Answer::Append {
            op: OpId(4),
            online: true
        }
    );
    let online = |answer: Answer, receivers: Reply| match plan
        .answer(
            answer,
            vec![Reply::Array(vec![data("9"), Reply::Int(2), receivers])],
        )
        .pop()
    {
        Some(EngineEvent::Appended { online, at, .. }) => {
            assert_eq!(
                at,
                Position {
                    epoch: 9,
                    offset: 2
                }
            );
            online
        }
        other => panic!("{other:?}"),
    };
    assert!(online(answer.clone(), Reply::Int(1)));
    assert!(!online(answer.clone(), Reply::Int(0)));
    // A retry that found the record stored cannot tell: not delivered, as far as it knows.
    assert!(!online(answer.clone(), Reply::Int(-1)));
    // A room's publish reaches nodes too, but that says nothing of a recipient.
    assert!(!online(room, Reply::Int(3)));
}

#[test]
fn a_nodes_presence_entries_are_refreshed_one_command_per_room() {
    let plan = Plan::new(PlanConfig::default(), 1);
    let user = |name: &str| UserId::new(name).expect("valid");
    let other = RoomName::new("other").expect("valid");
    let lobby = RoomName::new("lobby").expect("valid");
    let entries = [
        (lobby.clone(), user("ann")),
        (other.clone(), user("bob")),
        (lobby, user("cy")),
    ];
    let Step::Run { calls, answer } = plan.presence_refresh(2_000, 3, &entries) else {
        panic!("calls");
    };
    assert_eq!(answer, Answer::Nothing);
    let words: Vec<String> = calls
        .iter()
        .map(|call| match call {
            Call::Command(words) => words
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        words,
        [
            "ZADD rc:{r:lobby}:p 32000 3:ann 32000 3:cy",
            "PEXPIRE rc:{r:lobby}:p 60000",
            "ZADD rc:{r:other}:p 32000 3:bob",
            "PEXPIRE rc:{r:other}:p 60000",
        ]
    );
}

#[test]
fn the_nonce_of_a_live_and_of_a_reads_last_record_are_read_for_the_failover_check() {
    let plan = Plan::new(PlanConfig::default(), 1);
    let mut payload = b"7 3 00000000000000aa\n".to_vec();
    payload.extend(record().encode());
    assert_eq!(
        plan.live_nonce("rc:{r:lobby}", &payload),
        Some((
            lobby(),
            Position {
                epoch: 7,
                offset: 3
            },
            "00000000000000aa".to_owned()
        ))
    );
    assert_eq!(plan.live_nonce("rc:{r:lobby}", b"P 1 1 bob"), None);
    let entry = |offset: u64, nonce: &str| {
        Reply::Array(vec![
            data(&format!("{offset}-0")),
            Reply::Array(vec![
                data("r"),
                Reply::Data(record().encode()),
                data("n"),
                data(nonce),
                data("t"),
                data("1"),
                data("s"),
                data("9"),
            ]),
        ])
    };
    let answer = Answer::Read {
        op: OpId(1),
        stream: lobby(),
        after: Some(Position {
            epoch: 7,
            offset: 1,
        }),
    };
    let replies = [Reply::Array(vec![
        data("7"),
        Reply::Int(3),
        Reply::Int(1),
        Reply::Int(0),
        Reply::Array(vec![entry(2, "b"), entry(3, "c")]),
        Reply::Nil,
    ])];
    assert_eq!(
        Plan::read_nonce(&answer, &replies),
        Some((
            lobby(),
            Position {
                epoch: 7,
                offset: 3
            },
            "c".to_owned()
        ))
    );
    let empty = [Reply::Array(vec![
        data("7"),
        Reply::Int(3),
        Reply::Int(1),
        Reply::Int(0),
        Reply::Array(vec![]),
        Reply::Nil,
    ])];
    assert_eq!(Plan::read_nonce(&answer, &empty), None);
}
