//! Two `roomcast serve` nodes on a local three-master Redis Cluster (real `redis-server`s
//! with `--cluster-enabled yes`, made one cluster by `redis-cli --cluster create`, on loopback
//! ports with fresh directories): rooms whose streams live on different shards reach clients
//! on both nodes in order, once; presence and `delivered` work across nodes; a client resumes
//! on the other node exactly.
//!
//! Without `redis-server` these tests are ignored (`apt-get install redis-server`);
//! `ROOMCAST_REQUIRE_REDIS=1` runs them anyway (CI).

mod common;

use common::Running;
use roomcast_tests::redis::{RedisCluster, command};
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

const REDIS: &str = env!("ROOMCAST_TEST_REDIS_SERVER");

const ROOMS: [&str; 6] = ["room0", "room1", "room2", "room3", "room4", "room5"];

/// A client of `node` in every room.
async fn everywhere(node: &Running, user: &str) -> Client {
    let mut client = within(
        "connect",
        Client::connect(&node.ws(&format!("user={user}"))),
    )
    .await
    .expect("connects");
    client.next_of("welcome").await;
    for room in ROOMS {
        client
            .send_json(json!({"type": "join", "ref": room, "room": room}))
            .await;
        let (reply, _) = client.answer(&json!(room)).await;
        assert_eq!(reply["type"], "reply", "{reply}");
    }
    client
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn nodes_on_a_redis_cluster_share_rooms_on_every_shard() {
    let cluster = RedisCluster::start(REDIS, 3);
    let url = cluster.url();
    let a = Running::start(&["--redis", &url]);
    let b = Running::start(&["--redis", &url, "--runtime", "smol"]);
    smol::block_on(async {
        let mut reader_a = everywhere(&a, "ann").await;
        let mut reader_b = everywhere(&b, "bea").await;
        let mut writer = everywhere(&b, "wes").await;
        // The messages, with the ids the writer was answered, in the order published.
        let mut sent: Vec<(String, Value)> = Vec::new();
        for n in 0..5 {
            for room in ROOMS {
                let reference = json!(format!("{room}-{n}"));
                writer
                    .send_json(
                        json!({"type": "publish", "ref": reference, "room": room, "data": n}),
                    )
                    .await;
                let (reply, _) = writer.answer(&reference).await;
                assert_eq!(reply["type"], "reply", "{reply}");
                sent.push((room.to_owned(), reply["id"].clone()));
            }
        }
        for reader in [&mut reader_a, &mut reader_b] {
            let mut got = Vec::new();
            within("every message", async {
                while got.len() < sent.len() {
                    let message = reader.next_of("message").await;
                    got.push((
                        message["room"].as_str().unwrap_or_default().to_owned(),
                        message["id"].clone(),
                    ));
                }
            })
            .await;
            // In order per room (rooms on different shards come over different connections:
            // nothing orders one room's messages against another's).
            for room in ROOMS {
                let of = |list: &[(String, Value)]| -> Vec<Value> {
                    list.iter()
                        .filter(|(r, _)| r == room)
                        .map(|(_, id)| id.clone())
                        .collect()
                };
                assert_eq!(of(&got), of(&sent), "{room}: each message once, in order");
            }
        }
        // The streams are spread over the shards.
        let holding = cluster
            .nodes
            .iter()
            .filter(|node| !command(node.addr, "DBSIZE").starts_with(":0"))
            .count();
        assert!(holding >= 2, "the rooms' keys are on {holding} shard(s)");
        // A direct from a to bea, who is on b: delivered.
        reader_a
            .send_json(json!({"type": "direct", "ref": "d", "to": "bea", "data": "hi"}))
            .await;
        let (reply, _) = reader_a.answer(&json!("d")).await;
        assert_eq!(reply["delivered"], true, "{reply}");
        assert_eq!(reader_b.next_of("direct").await["data"], "hi");
        // A client resumes room3 on a from its second message: exactly the three after it.
        let ids: Vec<&Value> = sent
            .iter()
            .filter(|(room, _)| room == "room3")
            .map(|(_, id)| id)
            .collect();
        let mut again = within("connect", Client::connect(&a.ws("user=cy")))
            .await
            .expect("cy");
        again.next_of("welcome").await;
        again
            .send_json(json!({"type": "join", "ref": "r", "room": "room3", "since": ids[1]}))
            .await;
        let (reply, _) = again.answer(&json!("r")).await;
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["replayed"], 3, "{reply}");
        // The newcomer sees who is in the room.
        let members: Vec<&str> = reply["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(members.contains(&"ann"), "{reply}");
        for id in &ids[2..] {
            assert_eq!(&&again.next_of("message").await["id"], id);
        }
    });
}
