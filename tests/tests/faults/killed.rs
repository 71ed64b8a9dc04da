//! Clients killed mid-stream.

use std::collections::BTreeSet;

use roomcast_core::hub::HubConfig;
use roomcast_hyper::Options;
use roomcast_tests::{Client, Flavor, Server, on_every_runtime, within};
use serde_json::{Value, json};

use crate::common::{join, ms, position, publish, seqs};

/// Reads `count` room messages (skipping presence and the like); asserts they are seq 1.. in
/// order.
async fn read_messages(client: &mut Client, count: u64) {
    for seq in 1..=count {
        let message = client.next_of("message").await;
        assert_eq!(message["data"]["seq"], seq, "{message}");
    }
}

/// A surviving receiver: reads until it has `count` room messages and the members it holds
/// (its join reply's, then the presence diffs) include none of `killed`; returns itself and
/// the messages. (A user who came and went within one presence window is in no diff, and was
/// in no reply either.)
async fn survive(
    mut client: Client,
    reply: Value,
    count: usize,
    killed: Vec<String>,
) -> (Client, Vec<Value>) {
    let names = |list: &Value| -> Vec<String> {
        let list = list.as_array().expect("a list of users");
        list.iter()
            .map(|u| u.as_str().expect("a user").to_owned())
            .collect()
    };
    let mut members: BTreeSet<String> = names(&reply["members"]).into_iter().collect();
    let mut messages = Vec::new();
    for _ in 0..10_000 {
        if messages.len() == count && killed.iter().all(|user| !members.contains(user)) {
            return (client, messages);
        }
        let value = client.next_json().await;
        match value["type"].as_str() {
            Some("message") => messages.push(value),
            Some("presence") => {
                for user in names(&value["leaves"]) {
                    members.remove(&user);
                }
                members.extend(names(&value["joins"]));
            }
            _ => {}
        }
    }
    panic!("10,000 frames and still not everything");
}

/// While a publisher fans messages out to a room, half of its receivers drop their TCP
/// connections mid-stream, with no close frame. The server frees their sessions (the hub's count
/// drops, the others see them leave once the presence grace ends); the other receivers get every
/// message exactly once, in order, with the ids the publisher was given; a new client connects,
/// joins and receives.
fn killed_receivers_are_freed_and_the_others_get_everything(flavor: Flavor) {
    smol::block_on(async {
        const RECEIVERS: usize = 8;
        const KILLED: usize = 4;
        // With the join, within the default burst of 200: the rate limit plays no part.
        const MESSAGES: u64 = 160;
        const KILL_AFTER: u64 = 60;
        let config = HubConfig {
            presence_grace: ms(100),
            ..HubConfig::default()
        };
        let server = Server::start(flavor, config, Options::default(), 64).await;
        let mut publisher = server.client("publisher").await;
        join(&mut publisher, "feed").await;
        let mut receivers = Vec::new();
        for i in 0..RECEIVERS {
            let mut client = server.client(&format!("r{i}")).await;
            let reply = join(&mut client, "feed").await;
            receivers.push((client, reply));
        }
        server
            .wait_for_stats("all connected", |s| s.sessions == RECEIVERS + 1)
            .await;
        let killed_users: Vec<String> = (0..KILLED).map(|i| format!("r{i}")).collect();

        // Each receiver reads in a task of its own, as fast as it can.
        let (killed, kills) = async_channel::bounded(KILLED);
        let mut killers = Vec::new();
        let mut survivors = Vec::new();
        for (i, (mut client, reply)) in receivers.into_iter().enumerate() {
            if i < KILLED {
                let killed = killed.clone();
                killers.push(smol::spawn(async move {
                    read_messages(&mut client, KILL_AFTER).await;
                    // Abrupt: the socket is closed with no close frame (and, with bytes still
                    // unread in it, the kernel answers with a reset).
                    drop(client);
                    killed.send(()).await.expect("the test waits");
                }));
            } else {
                let count = usize::try_from(MESSAGES).expect("small");
                let survivor = survive(client, reply, count, killed_users.clone());
                survivors.push(smol::spawn(survivor));
            }
        }

        // Half the messages, then (once the kills happened, so the rest is fanned out to dead
        // sockets the server may not have noticed yet) the other half.
        let mut ids = Vec::new();
        for seq in 1..=MESSAGES {
            if seq == MESSAGES / 2 + 1 {
                for _ in 0..KILLED {
                    within("the kills", kills.recv()).await.expect("killed");
                }
            }
            ids.push(publish(&mut publisher, "feed", seq, json!({"seq": seq})).await);
        }
        for killer in killers {
            within("a killer", killer).await;
        }
        let offsets: Vec<u64> = ids.iter().map(|id| position(id).1).collect();
        assert_eq!(
            offsets,
            (1..=MESSAGES).collect::<Vec<_>>(),
            "the publisher's ids"
        );

        // The survivors: everything, once, in order, with the publisher's ids.
        let mut alive = Vec::new();
        for survivor in survivors {
            let (client, messages) = within("a survivor", survivor).await;
            assert_eq!(seqs(&messages), (1..=MESSAGES).collect::<Vec<_>>());
            let got: Vec<&Value> = messages.iter().map(|m| &m["id"]).collect();
            assert_eq!(got, ids.iter().collect::<Vec<_>>(), "ids as published");
            alive.push(client);
        }
        let stats = server
            .wait_for_stats("the killed sessions are freed", |s| {
                s.sessions == 1 + RECEIVERS - KILLED
            })
            .await;
        assert_eq!(stats.rooms, 1, "{stats:?}");
        assert_eq!(stats.slow_consumers, 0, "{stats:?}");

        // Newcomers are served: the room lists exactly the live members, and messages flow.
        let mut late = server.client("late").await;
        let reply = join(&mut late, "feed").await;
        let members: BTreeSet<String> =
            serde_json::from_value(reply["members"].clone()).expect("a list of users");
        let expected = ["late", "publisher", "r4", "r5", "r6", "r7"].map(String::from);
        assert_eq!(members, expected.into(), "{reply}");
        let id = publish(&mut publisher, "feed", 0, json!({"seq": MESSAGES + 1})).await;
        assert_eq!(position(&id).1, MESSAGES + 1);
        assert_eq!(late.next_of("message").await["id"], id);
        for client in &mut alive {
            assert_eq!(client.next_of("message").await["id"], id);
        }
    });
}

on_every_runtime!(killed_receivers_are_freed_and_the_others_get_everything);
