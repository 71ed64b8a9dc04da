//! Two `roomcast serve` nodes on a master, a replica and a Sentinel (real `redis-server` and
//! `redis-sentinel`, started here on loopback ports with fresh directories): `SENTINEL
//! FAILOVER` while both nodes publish. The nodes follow the master to its new place, and a
//! checker over everything two receivers got finds no duplicate, no message out of order, and
//! every acknowledged message delivered, or the stream reported `recovered: false`.
//!
//! Without `redis-server` these tests are ignored (`apt-get install redis-server
//! redis-sentinel`); `ROOMCAST_REQUIRE_REDIS=1` runs them anyway (CI).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::Running;
use roomcast_tests::redis::{RedisSentinel, RedisServer, command};
use roomcast_tests::{Client, within};

use serde_json::{Value, json};

const REDIS: &str = env!("ROOMCAST_TEST_REDIS_SERVER");

/// Waits (15 s at most) until `server` answers `line` with something that holds `part`.
fn until_reply(server: std::net::SocketAddr, line: &str, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = command(server, line);
        if reply.contains(part) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{line}: {reply:?} never held {part:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What one receiver got: each message's data and id, in order, and whether the room was
/// reported `recovered: false`.
#[derive(Default)]
struct Received {
    messages: Vec<(String, String)>,
    reset: bool,
}

impl Received {
    fn take(&mut self, frame: &Value) {
        match frame["type"].as_str() {
            Some("message") => self.messages.push((
                frame["data"].as_str().unwrap_or_default().to_owned(),
                frame["id"].as_str().unwrap_or_default().to_owned(),
            )),
            Some("streams") => {
                let reset = frame["streams"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|stream| stream["recovered"] == false);
                self.reset |= reset;
            }
            _ => {}
        }
    }

    fn has(&self, data: &str) -> bool {
        self.messages.iter().any(|(d, _)| d == data)
    }
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server redis-sentinel (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_sentinel_failover_while_publishing_leaves_no_silent_gap() {
    let master = RedisServer::start(REDIS, &[]);
    let master_port = master.addr.port().to_string();
    let replica = RedisServer::start(REDIS, &["--replicaof", "127.0.0.1", &master_port]);
    until_reply(replica.addr, "INFO replication", "master_link_status:up");
    let sentinel = RedisSentinel::start(REDIS, master.addr, "main");
    let replica_at = format!("{}", replica.addr.port());
    until_reply(sentinel.addr, "SENTINEL REPLICAS main", &replica_at);
    let url = format!("redis+sentinel://{}/main", sentinel.addr);
    let a = Running::start(&["--redis", &url]);
    let b = Running::start(&["--redis", &url, "--runtime", "smol"]);
    smol::block_on(async {
        let mut receivers = [a.member("r1", "lobby").await, b.member("r2", "lobby").await];
        let mut publishers = [a.member("pa", "lobby").await, b.member("pb", "lobby").await];
        // data -> the id it was acknowledged with.
        let mut acked = BTreeMap::new();
        let mut refused = 0;
        let mut moved = false;
        let mut acked_after_move = 0;
        let started = Instant::now();
        for n in 0..3000 {
            if n == 40 {
                let reply = command(sentinel.addr, "SENTINEL FAILOVER main");
                assert!(reply.starts_with("+OK"), "{reply}");
            }
            for (p, publisher) in publishers.iter_mut().enumerate() {
                let data = format!("{p}-{n}");
                let reference = json!(data.clone());
                publisher
                    .send_json(
                        json!({"type": "publish", "ref": reference, "room": "lobby", "data": data}),
                    )
                    .await;
                let (reply, _) = publisher.answer(&reference).await;
                if reply["type"] == "reply" {
                    acked.insert(data, reply["id"].as_str().unwrap_or_default().to_owned());
                    acked_after_move += usize::from(moved);
                } else {
                    assert_eq!(reply["code"], "unavailable", "{reply}");
                    refused += 1;
                }
            }
            if n > 40 && !moved && n % 5 == 0 {
                let named = command(sentinel.addr, "SENTINEL GET-MASTER-ADDR-BY-NAME main");
                moved = named.contains(&replica_at);
            }
            if moved && acked_after_move >= 60 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "the nodes did not publish on the new master within 40 s \
                 (moved: {moved}, acknowledged after: {acked_after_move}, refused: {refused})"
            );
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        assert!(moved, "the failover did not happen");
        // Everything each receiver got, until it has every acknowledged message or was told
        // the room's history cannot be followed on from (and then has the last of each
        // publisher, published after the failover).
        let newest: BTreeSet<String> = (0..2)
            .filter_map(|p| {
                acked
                    .keys()
                    .filter(|d| d.starts_with(&format!("{p}-")))
                    .max_by_key(|d| d[2..].parse::<u64>().unwrap_or(0))
                    .cloned()
            })
            .collect();
        for (r, receiver) in receivers.iter_mut().enumerate() {
            let mut got = Received::default();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let all = acked.keys().all(|data| got.has(data));
                let newest_in = newest.iter().all(|data| got.has(data));
                if all || (got.reset && newest_in) {
                    break;
                }
                let wait = deadline.saturating_duration_since(Instant::now());
                let frame =
                    futures_lite::future::or(async { Some(receiver.next_json().await) }, async {
                        smol::Timer::after(wait).await;
                        None
                    })
                    .await;
                let Some(frame) = frame else {
                    let tail: Vec<_> = got.messages.iter().rev().take(6).collect();
                    panic!(
                        "receiver {r}: after 10 s, {} messages (the last {tail:?}), reset: {}, \
                         newest acknowledged {newest:?} ({:?}); node logs:\n{}\n{}",
                        got.messages.len(),
                        got.reset,
                        newest.iter().map(|d| &acked[d]).collect::<Vec<_>>(),
                        a.log().join("\n"),
                        b.log().join("\n")
                    );
                };
                got.take(&frame);
            }
            // No duplicate.
            let mut seen = BTreeSet::new();
            for (data, _) in &got.messages {
                assert!(seen.insert(data), "receiver {r} got {data} twice");
            }
            // In order: within an epoch, offsets rise.
            let mut last: Option<(String, u64)> = None;
            for (data, id) in &got.messages {
                let (epoch, offset) = id.split_once('.').expect("an id");
                let offset: u64 = offset.parse().expect("an offset");
                if let Some((last_epoch, last_offset)) = &last
                    && last_epoch == epoch
                {
                    assert!(
                        offset > *last_offset,
                        "receiver {r}: {data} at {id} came late"
                    );
                }
                last = Some((epoch.to_owned(), offset));
            }
            // Every acknowledged message delivered, or the room reported not recovered.
            let missing: Vec<&String> = acked.keys().filter(|d| !got.has(d)).collect();
            assert!(
                missing.is_empty() || got.reset,
                "receiver {r} silently missed {} acknowledged messages: {missing:?}",
                missing.len()
            );
            eprintln!(
                "receiver {r}: {} messages, {} acknowledged, {} missing, reset: {}, refused: {refused}",
                got.messages.len(),
                acked.len(),
                missing.len(),
                got.reset
            );
        }
    });
}

/// Publishes until a reply comes (Redis may be on its way back), 10 s at most; the reply's id.
async fn publish_until_stored(client: &mut Client, name: &str, data: &str) -> String {
    let mut n = 0;
    within("a publish that is stored", async {
        loop {
            n += 1;
            let reference = json!(format!("{name}{n}"));
            client
                .send_json(
                    json!({"type": "publish", "ref": reference, "room": "lobby", "data": data}),
                )
                .await;
            let (answer, _) = client.answer(&reference).await;
            if answer["type"] == "reply" {
                return answer["id"].as_str().unwrap_or_default().to_owned();
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// Redis killed (SIGKILL) and restarted on the same directory, with AOF `appendfsync always`
/// and without persistence: with AOF every acknowledged message survives, a reader on the other
/// node goes on without a reset and a resume is exact; without, the room starts a new epoch and
/// both are told `recovered: false`.
#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_redis_restart_keeps_every_acknowledged_message_with_aof_always_and_says_so_without() {
    for aof in [true, false] {
        let args: &[&str] = if aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &[]
        };
        let mut redis = RedisServer::start(REDIS, args);
        let url = redis.url();
        let a = Running::start(&["--redis", &url]);
        let b = Running::start(&["--redis", &url, "--runtime", "smol"]);
        smol::block_on(async {
            let mut writer = a.member("writer", "lobby").await;
            let mut reader = b.member("reader", "lobby").await;
            let mut ids = Vec::new();
            for n in 0..10 {
                ids.push(publish_until_stored(&mut writer, "p", &format!("m{n}")).await);
            }
            for id in &ids {
                assert_eq!(reader.next_of("message").await["id"], id.as_str());
            }
            redis.restart(REDIS, args);
            let after = publish_until_stored(&mut writer, "q", "after").await;
            // The reader: the next message; without persistence a reset before it, which may
            // name it already (the room resumes at its head then, and the client refetches).
            let mut reset = false;
            let next = futures_lite::future::or(
                async {
                    loop {
                        let frame = reader.next_json().await;
                        if frame["type"] == "streams" {
                            reset |= frame["streams"][0]["recovered"] == false;
                            if frame["streams"][0]["id"] == after.as_str() {
                                return Some(frame["streams"][0].clone());
                            }
                        }
                        if frame["type"] == "message" {
                            return Some(frame);
                        }
                    }
                },
                async {
                    smol::Timer::after(Duration::from_secs(10)).await;
                    None
                },
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "aof {aof}: the reader did not get {after} within 10 s; logs:\n{}\n{}",
                    a.log().join("\n"),
                    b.log().join("\n")
                )
            });
            assert_eq!(next["id"], after.as_str(), "aof: {aof}");
            assert_eq!(reset, !aof, "a reset told, aof: {aof}");
            // A client resuming from the tenth message, on the other node.
            let mut again = b.member("again", "lobby").await;
            again
                .send_json(json!({"type": "leave", "ref": "l", "room": "lobby"}))
                .await;
            again.answer(&json!("l")).await;
            again
                .send_json(json!({"type": "join", "ref": "r", "room": "lobby", "since": ids[9]}))
                .await;
            let (reply, _) = again.answer(&json!("r")).await;
            assert_eq!(reply["recovered"], aof, "aof: {aof}: {reply}");
            if aof {
                assert_eq!(reply["replayed"], 1, "{reply}");
                assert_eq!(again.next_of("message").await["id"], after.as_str());
            }
        });
    }
}

/// A Redis, a proxy in front of it, node a behind the proxy and node b straight on Redis.
fn behind_a_proxy() -> (RedisServer, roomcast_tests::proxy::Proxy, Running, Running) {
    let redis = RedisServer::start(REDIS, &[]);
    let proxy = smol::block_on(roomcast_tests::proxy::Proxy::start(redis.addr));
    let a = Running::start(&["--redis", &format!("redis://{}/", proxy.addr())]);
    let b = Running::start(&["--redis", &redis.url(), "--runtime", "smol"]);
    (redis, proxy, a, b)
}

/// A half-open partition between one node and Redis (a proxy that stops forwarding without
/// closing anything): the node finds it (its health says so while it lasts), and once the
/// partition heals its reader gets every message published meanwhile on the other node, in
/// order, once, without a reset.
#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_half_open_partition_from_redis_is_found_and_nothing_is_missed() {
    let (_redis, proxy, a, b) = behind_a_proxy();
    smol::block_on(async {
        let mut reader = a.member("reader", "lobby").await;
        let mut writer = b.member("writer", "lobby").await;
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(publish_until_stored(&mut writer, "p", &format!("m{n}")).await);
        }
        proxy.freeze();
        // A message every 100 ms on the other node, until node a finds the partition (its
        // health says so), and two seconds more.
        let frozen = Instant::now();
        let mut found = None;
        let mut n = 5;
        while found.is_none_or(|at: Duration| frozen.elapsed() < at + Duration::from_secs(2)) {
            ids.push(publish_until_stored(&mut writer, "p", &format!("m{n}")).await);
            n += 1;
            smol::Timer::after(Duration::from_millis(100)).await;
            if found.is_none() {
                let health = roomcast_tests::http::get(a.addr, "/healthz", &[]).await;
                if health.status == 503 {
                    found = Some(frozen.elapsed());
                }
            }
            assert!(
                frozen.elapsed() < Duration::from_secs(20),
                "the partition not found in 20 s"
            );
        }
        eprintln!(
            "the partition was found after {:?}",
            found.unwrap_or_default()
        );
        proxy.thaw();
        let last = publish_until_stored(&mut writer, "p", "last").await;
        ids.push(last);
        let mut got = Vec::new();
        let mut reset = false;
        let complete = futures_lite::future::or(
            async {
                while got.len() < ids.len() {
                    let frame = reader.next_json().await;
                    match frame["type"].as_str() {
                        Some("message") => {
                            got.push(frame["id"].as_str().unwrap_or_default().to_owned());
                        }
                        Some("streams") => reset |= frame["streams"][0]["recovered"] == false,
                        _ => {}
                    }
                }
                true
            },
            async {
                smol::Timer::after(Duration::from_secs(15)).await;
                false
            },
        )
        .await;
        assert!(
            complete,
            "after the partition the reader has {} of {} messages; logs:\n{}",
            got.len(),
            ids.len(),
            a.log().join("\n")
        );
        assert_eq!(got, ids, "every message, in order, once");
        assert!(!reset, "nothing was lost: no reset");
    });
}

/// A publish that Redis stored but whose answer a partition lost (a proxy that holds back
/// Redis's replies): once the link is back, the node's retry finds the first attempt, and the
/// publisher is answered with the id every reader got, not `unavailable`; the message is
/// stored once.
#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_publish_whose_answer_was_lost_is_answered_once_the_link_is_back() {
    let (_redis, proxy, a, b) = behind_a_proxy();
    smol::block_on(async {
        let mut writer = a.member("writer", "lobby").await;
        let mut reader = b.member("reader", "lobby").await;
        let before = publish_until_stored(&mut writer, "p", "before").await;
        assert_eq!(reader.next_of("message").await["id"], before.as_str());
        proxy.freeze_replies();
        writer
            .send_json(json!({"type": "publish", "ref": "lost", "room": "lobby", "data": "lost"}))
            .await;
        // Stored and relayed: the reader on b has it at once.
        let relayed = reader.next_of("message").await;
        assert_eq!(relayed["data"], "lost", "{relayed}");
        // The answer waits for the link: 7 s of partition (past the 5 s response timeout).
        smol::Timer::after(Duration::from_secs(7)).await;
        proxy.thaw();
        let (reply, _) = within("the answer", writer.answer(&json!("lost"))).await;
        assert_eq!(reply["type"], "reply", "{reply}");
        assert_eq!(reply["id"], relayed["id"], "the id every reader got");
        // Stored once: a resume from before it replays it alone.
        let mut again = b.member("again", "lobby").await;
        again
            .send_json(json!({"type": "leave", "ref": "l", "room": "lobby"}))
            .await;
        again.answer(&json!("l")).await;
        again
            .send_json(json!({"type": "join", "ref": "r", "room": "lobby", "since": before}))
            .await;
        let (reply, _) = again.answer(&json!("r")).await;
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["replayed"], 1, "once: {reply}");
    });
}

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1: (CA, certificate, key), PEM.
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a CA key")).expect("the CA");
    let key = KeyPair::generate().expect("a key");
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server parameters")
        .signed_by(&key, &ca)
        .expect("the server certificate");
    (ca.pem(), server.pem(), key.serialize_pem())
}

/// `rediss://`: two nodes on a Redis that serves TLS only, trusting its CA (`SSL_CERT_FILE`):
/// a message crosses them. A node that does not trust it refuses to start, saying why.
#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn nodes_reach_redis_over_tls() {
    let (ca, cert, key) = certificates();
    let redis = RedisServer::start_tls(REDIS, &cert, &key, &ca);
    let bundle = std::env::temp_dir().join(format!("roomcast-ca-{}.pem", std::process::id()));
    std::fs::write(&bundle, &ca).expect("the CA file");
    let bundle_path = bundle.display().to_string();
    let url = format!("rediss://localhost:{}/", redis.addr.port());
    let trusting = [("SSL_CERT_FILE", bundle_path.as_str())];
    let a = Running::start_with_env(&["--redis", &url], &trusting);
    let b = Running::start_with_env(&["--redis", &url, "--runtime", "smol"], &trusting);
    smol::block_on(async {
        let mut reader = a.member("reader", "lobby").await;
        let mut writer = b.member("writer", "lobby").await;
        let id = publish_until_stored(&mut writer, "p", "over tls").await;
        let message = reader.next_of("message").await;
        assert_eq!(message["id"], id.as_str(), "{message}");
    });
    // Trusting another CA only: refused at start, saying why.
    let (other, _, _) = certificates();
    std::fs::write(&bundle, &other).expect("the other CA file");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--redis", &url])
        .env("SSL_CERT_FILE", &bundle)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    let _ = std::fs::remove_file(bundle);
}
