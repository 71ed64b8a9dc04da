//! The well-behaved clients of a flood: two members of `lobby` chatting while it goes on.

use std::collections::BTreeMap;

use async_tungstenite::tungstenite::Message;
use roomcast_tests::{Client, Server, within};
use serde_json::{Value, json};

use super::{Seen, next_seen};
use crate::common::{Rx, Tx, join, ms, sleep};

/// What a chatting client got: the data of the room messages, its answers by ref, and its
/// connection, kept open.
pub(super) struct Chat {
    messages: Vec<Value>,
    replies: BTreeMap<u64, Value>,
    _connection: (Tx, Rx),
}

/// A well-behaved member of `lobby` (joined): publishes `count` messages, one every 5 ms, while
/// it reads, until it has `expect` room messages and an answer to each of its own.
async fn chatter(client: Client, name: &'static str, count: u64, expect: usize) -> Chat {
    let Client { ws } = client;
    let (mut tx, mut rx) = ws.split();
    let send = async move {
        for i in 0..count {
            let publish = json!({"type": "publish", "ref": i, "room": "lobby", "data": {"from": name, "i": i}});
            within("send", tx.send(Message::text(publish.to_string())))
                .await
                .expect("send");
            sleep(ms(5)).await;
        }
        tx
    };
    let read = async move {
        let (mut messages, mut replies) = (Vec::new(), BTreeMap::new());
        for _ in 0..10_000 {
            if messages.len() == expect && replies.len() as u64 == count {
                return (messages, replies, rx);
            }
            match next_seen(&mut rx).await {
                Seen::Json(value) => match value["type"].as_str() {
                    Some("message") => messages.push(value["data"].clone()),
                    Some("reply" | "error") => {
                        let reference = value["ref"].as_u64().expect("a numeric ref");
                        let previous = replies.insert(reference, value);
                        assert!(previous.is_none(), "{name}: ref {reference} answered twice");
                    }
                    _ => {}
                },
                other => panic!("{name}: {other:?}"),
            }
        }
        panic!("{name}: 10,000 frames and not everything");
    };
    let (tx, (messages, replies, rx)) = futures_lite::future::zip(send, read).await;
    Chat {
        messages,
        replies,
        _connection: (tx, rx),
    }
}

/// Alice and Bob each publish 50 messages; each must get the other's, in order, and a reply to
/// every one of its own, with consecutive ids.
pub(super) fn assert_chat(name: &str, other: &str, chat: &Chat) {
    let expected: Vec<Value> = (0..50).map(|i| json!({"from": other, "i": i})).collect();
    assert_eq!(chat.messages, expected, "{name} got the other's messages");
    let replies = &chat.replies;
    for (reference, reply) in replies {
        assert_eq!(reply["type"], "reply", "{name} {reference}: {reply}");
    }
    assert_eq!(replies.len(), 50, "{name}: every ref answered");
}

/// Starts Alice and Bob chatting in `lobby`, once both are in.
pub(super) async fn start_chat(server: &Server) -> [smol::Task<Chat>; 2] {
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    join(&mut alice, "lobby").await;
    join(&mut bob, "lobby").await;
    [
        smol::spawn(chatter(alice, "alice", 50, 50)),
        smol::spawn(chatter(bob, "bob", 50, 50)),
    ]
}
