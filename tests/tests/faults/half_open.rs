//! A half-open connection.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use roomcast_core::close::CloseCode;
use roomcast_core::hub::HubConfig;
use roomcast_core::session::SessionConfig;
use roomcast_hyper::Options;
use roomcast_io::{Ended, Observe, Observer, SessionOptions};
use roomcast_tests::proxy::Proxy;
use roomcast_tests::{Client, Flavor, Read, Server, WAIT, on_every_runtime, within};
use serde_json::{Value, json};

use crate::common::{Tx, join, ms, sleep};

/// Records how every session of a server ended (`Observer::closed`).
#[derive(Default)]
struct Ends(Mutex<Vec<Ended>>);

impl Observer for Ends {
    fn closed(&self, _transport: &'static str, ended: &Ended) {
        self.0.lock().expect("not poisoned").push(ended.clone());
    }
}

impl Ends {
    /// Waits (within `WAIT`) until `n` sessions have ended; returns how.
    async fn wait_for(&self, n: usize) -> Vec<Ended> {
        for _ in 0..WAIT.as_millis() / 10 {
            let ends = self.0.lock().expect("not poisoned").clone();
            if ends.len() >= n {
                return ends;
            }
            sleep(ms(10)).await;
        }
        panic!("{n} sessions did not end within {WAIT:?}");
    }
}

/// A client that reads in a task of its own, as a live client does: it answers every ping
/// (reading is what sends tungstenite's pongs) while the test does other things, and the test
/// takes its JSON messages from an inbox.
struct Reading {
    tx: Tx,
    inbox: async_channel::Receiver<Value>,
    _reader: smol::Task<()>,
}

impl Reading {
    fn new(client: Client) -> Self {
        let (tx, mut rx) = client.ws.split();
        let (sender, inbox) = async_channel::unbounded();
        let reader = smol::spawn(async move {
            // Until the connection ends or the test drops the inbox.
            while let Some(Ok(message)) = rx.next().await {
                if let Message::Text(text) = message {
                    let value = serde_json::from_str(text.as_str()).expect("JSON");
                    if sender.send(value).await.is_err() {
                        return;
                    }
                }
            }
        });
        Self {
            tx,
            inbox,
            _reader: reader,
        }
    }

    /// The next JSON message of type `kind`, skipping others; each within `WAIT`.
    async fn next_of(&mut self, kind: &str) -> Value {
        for _ in 0..10_000 {
            let value = within("the next message", self.inbox.recv())
                .await
                .expect("the connection is open");
            if value["type"] == kind {
                return value;
            }
        }
        panic!("no {kind} in 10,000 messages");
    }

    /// Sends `request` (with a `ref`); returns its answer, skipping anything before it.
    async fn request(&mut self, request: Value) -> Value {
        let reference = request["ref"].clone();
        within("send", self.tx.send(Message::text(request.to_string())))
            .await
            .expect("send");
        for _ in 0..10_000 {
            let value = within("the answer", self.inbox.recv())
                .await
                .expect("the connection is open");
            let answer = value["type"] == "reply" || value["type"] == "error";
            if answer && value["ref"] == reference {
                return value;
            }
        }
        panic!("no answer to {reference} in 10,000 messages");
    }
}

/// A client behind a proxy that freezes: no byte passes either way, and no socket closes (no FIN,
/// no RST). The server's heartbeat finds out: within ping_interval + ping_timeout (+ slack) the
/// session is gone from the hub, the room's other member sees it leave, and it ended with 4001.
/// Thawed, the proxy delivers what the server sent into the silence: the close frame, 4001.
fn half_open_connection_is_closed_with_4001(flavor: Flavor) {
    smol::block_on(async {
        let (interval, timeout) = (ms(400), ms(400));
        let ends = Arc::new(Ends::default());
        let options = Options {
            session: SessionOptions {
                config: SessionConfig {
                    ping_interval: interval,
                    ping_timeout: timeout,
                    close_timeout: ms(300),
                    ..SessionConfig::default()
                },
                observe: Observe(ends.clone()),
                ..SessionOptions::default()
            },
            ..Options::default()
        };
        let config = HubConfig {
            presence_grace: ms(50),
            ..HubConfig::default()
        };
        let server = Server::start(flavor, config, options, 64).await;
        let proxy = Proxy::start(server.addr).await;
        let url = format!("ws://{}/ws?user=frozen", proxy.addr());
        let mut frozen = within("handshake", Client::connect(&url))
            .await
            .expect("handshake through the proxy");
        assert_eq!(frozen.next_json().await["type"], "welcome");
        assert_eq!(frozen.next_json().await["type"], "streams");
        join(&mut frozen, "lobby").await;
        // The room's other member keeps reading (the heartbeat is short for it too).
        let mut other = Reading::new(server.client("other").await);
        let joined = other
            .request(json!({"type": "join", "ref": "join", "room": "lobby"}))
            .await;
        assert_eq!(joined["members"], json!(["frozen", "other"]), "{joined}");

        // Through the proxy, a reading client answers every ping: alive for three intervals.
        let until = Instant::now() + 3 * interval;
        let mut pings = 0;
        for _ in 0..1000 {
            if Instant::now() >= until {
                break;
            }
            let read = futures_lite::future::or(async { Some(frozen.read().await) }, async {
                smol::Timer::at(until).await;
                None
            });
            match read.await {
                Some(Read::Other(Message::Ping(_))) => pings += 1,
                Some(Read::Json(_)) | None => {}
                Some(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(pings >= 1, "no ping in three intervals");
        assert_eq!(server.hub.stats().await.expect("hub").sessions, 2);

        proxy.freeze();
        let frozen_at = Instant::now();
        // Traffic for the frozen client while nobody can tell it is gone.
        for seq in 1..=3 {
            let publish =
                json!({"type": "publish", "ref": seq, "room": "lobby", "data": {"seq": seq}});
            assert_eq!(other.request(publish).await["type"], "reply");
        }
        server
            .wait_for_stats("the half-open session is dropped", |s| s.sessions == 1)
            .await;
        let took = frozen_at.elapsed();
        let bound = interval + timeout + ms(1500);
        assert!(took <= bound, "dropped after {took:?}, over {bound:?}");
        let presence = other.next_of("presence").await;
        assert_eq!(presence["leaves"], json!(["frozen"]), "{presence}");

        let ended = ends.wait_for(1).await;
        match &ended[..] {
            [Ended::Closed(close)] => assert_eq!(close.code, CloseCode::HeartbeatTimeout),
            other => panic!("expected one close with 4001, got {other:?}"),
        }

        // Thawed: what the server wrote meanwhile comes through, in order, and ends with 4001.
        proxy.thaw();
        let (mut seen, mut code) = (Vec::new(), None);
        for _ in 0..1000 {
            match frozen.read().await {
                Read::Json(value) => seen.push(value["data"]["seq"].clone()),
                Read::Other(_) => {}
                Read::Close(frame) => {
                    code = Some(frame.map(|frame| u16::from(frame.code)));
                    break;
                }
                Read::Gone(why) => panic!("no close frame: {why}"),
            }
        }
        assert_eq!(code, Some(Some(4001)), "after {seen:?}");
        let expected: Vec<Value> = (1..=seen.len() as u64).map(Value::from).collect();
        assert_eq!(seen, expected, "a gapless prefix of what was published");
        assert_eq!(server.hub.stats().await.expect("hub").rooms, 1);
    });
}

on_every_runtime!(half_open_connection_is_closed_with_4001);
