//! A connection flood past the per-IP limit.

use std::net::SocketAddr;

use roomcast_core::hub::HubConfig;
use roomcast_hyper::Options;
use roomcast_tests::http::get;
use roomcast_tests::{Flavor, Server, on_every_runtime, within};
use serde_json::Value;

use crate::common::{RawResponse, ms, raw_request, sleep, upgrade_request};

/// A session endpoint opened for a flood: kept open if admitted.
enum Attempt {
    WebSocket(RawResponse),
    Sse(roomcast_tests::http::Response),
}

impl Attempt {
    fn status(&self) -> u16 {
        match self {
            Self::WebSocket(raw) => raw.status,
            Self::Sse(response) => response.status,
        }
    }

    /// The refusal's JSON body and content type.
    async fn refusal(self) -> (Value, String) {
        match self {
            Self::WebSocket(raw) => {
                let body = serde_json::from_slice(&raw.body).expect("a JSON body");
                let content_type = raw
                    .head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-type")
                            .then(|| value.trim().to_owned())
                    })
                    .unwrap_or_default();
                (body, content_type)
            }
            Self::Sse(response) => {
                let content_type = response.header("content-type").to_owned();
                (response.json().await, content_type)
            }
        }
    }
}

/// Opens a WebSocket (even `n`) or an SSE stream (odd `n`).
async fn attempt(addr: SocketAddr, n: usize) -> Attempt {
    if n.is_multiple_of(2) {
        let request = upgrade_request(addr, &format!("/ws?user=f{n}"));
        Attempt::WebSocket(raw_request(addr, &request).await)
    } else {
        Attempt::Sse(get(addr, &format!("/events?user=f{n}&rooms=lobby"), &[]).await)
    }
}

/// Three times the per-IP limit of connections at once, WebSocket and SSE mixed: exactly the
/// limit is admitted (101 or 200) and every other one is refused with 429 and the JSON error
/// `too_many_connections`. Once the admitted ones close, the hub is empty and the limit is whole
/// again: exactly as many are admitted anew (the refused ones took no slot, the closed ones gave
/// theirs back), and one more is refused.
fn connection_flood_admits_exactly_the_per_ip_limit(flavor: Flavor) {
    smol::block_on(async {
        const LIMIT: usize = 10;
        let options = Options {
            max_sessions_per_ip: LIMIT,
            ..Options::default()
        };
        // The SSE streams follow a room; its members' presence outlives them by the grace.
        let config = HubConfig {
            presence_grace: ms(50),
            ..HubConfig::default()
        };
        let server = Server::start(flavor, config, options, 64).await;
        let addr = server.addr;
        let flood: Vec<_> = (0..3 * LIMIT)
            .map(|n| smol::spawn(attempt(addr, n)))
            .collect();
        let (mut admitted, mut refused) = (Vec::new(), Vec::new());
        for task in flood {
            let attempt = within("an attempt", task).await;
            match attempt.status() {
                101 | 200 => admitted.push(attempt),
                429 => refused.push(attempt),
                status => panic!("status {status}"),
            }
        }
        assert_eq!(admitted.len(), LIMIT, "admitted");
        assert_eq!(refused.len(), 2 * LIMIT, "refused");
        let kinds = |attempts: &[Attempt]| {
            let ws = attempts
                .iter()
                .filter(|a| matches!(a, Attempt::WebSocket(_)))
                .count();
            (ws, attempts.len() - ws)
        };
        eprintln!(
            "flood: admitted (ws, sse) {:?}, refused {:?}",
            kinds(&admitted),
            kinds(&refused)
        );
        for attempt in refused {
            let (body, content_type) = attempt.refusal().await;
            assert_eq!(content_type, "application/json");
            assert_eq!(body["type"], "error", "{body}");
            assert_eq!(body["code"], "too_many_connections", "{body}");
        }
        assert_eq!(server.hub.stats().await.expect("hub").sessions, LIMIT);

        drop(admitted);
        server
            .wait_for_stats("the hub empties", |s| s.sessions == 0 && s.rooms == 0)
            .await;

        // The limit is whole again. (A slot is given back when the session's task ends, just
        // after the hub let go of it: a refusal in that instant is retried.)
        let mut again = Vec::new();
        for n in 0..LIMIT {
            let mut admitted = None;
            for _ in 0..100 {
                let attempt = attempt(addr, n).await;
                if attempt.status() != 429 {
                    admitted = Some(attempt);
                    break;
                }
                sleep(ms(20)).await;
            }
            let attempt = admitted.expect("admitted within 2 s");
            assert!(
                matches!(attempt.status(), 101 | 200),
                "{}",
                attempt.status()
            );
            again.push(attempt);
        }
        assert_eq!(attempt(addr, LIMIT).await.status(), 429, "one more");
        assert_eq!(server.hub.stats().await.expect("hub").sessions, LIMIT);
    });
}

on_every_runtime!(connection_flood_admits_exactly_the_per_ip_limit);
