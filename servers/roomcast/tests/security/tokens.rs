//! Tokens that end: a session outliving its token, a refresh that extends it, and tokens the
//! server must refuse (not valid yet, no `exp`, another issuer or audience).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_tungstenite::tungstenite::Error as WsError;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use roomcast_tests::http::get;
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

use super::{SECRET, client, server, token};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn signed(claims: Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    encode(&Header::new(Algorithm::HS256), &claims, &key).expect("signs")
}

fn refused(result: Result<Client, WsError>) -> (u16, String) {
    match result {
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            (response.status().as_u16(), body.unwrap_or_default())
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

#[test]
fn a_session_ends_with_its_token_unless_refreshed() {
    let server = server("", &[]);
    smol::block_on(async {
        // Expires in 2 s: told at about 1 s, closed with 4003 at 2 s.
        let short = token("alice", &["--ttl", "2s"]);
        let mut a = client(&server, &short).await;
        let started = std::time::Instant::now();
        let told = within("expiring", a.next_of("expiring")).await;
        assert!(told["in_ms"].as_u64().expect("in_ms") <= 2000, "{told}");
        assert_eq!(within("the close", a.close_code()).await, Some(4003));
        assert!(started.elapsed() < Duration::from_secs(4));

        // The same, refreshed with a token for an hour: still open after the first one ended.
        let short = token("alice", &["--ttl", "2s"]);
        let mut b = client(&server, &short).await;
        within("expiring", b.next_of("expiring")).await;
        let other = token("bob", &["--ttl", "1h"]);
        b.send_json(json!({"type":"refresh","ref":1,"token":other}))
            .await;
        let (no, _) = b.answer(&json!(1)).await;
        assert_eq!(no["code"], "unauthorized", "another user's token: {no}");
        let long = token("alice", &["--ttl", "1h"]);
        b.send_json(json!({"type":"refresh","ref":2,"token":long}))
            .await;
        let (yes, _) = b.answer(&json!(2)).await;
        assert_eq!(yes["type"], "reply", "{yes}");
        smol::Timer::after(Duration::from_millis(2500)).await;
        b.send_json(json!({"type":"join","ref":3,"room":"lobby"}))
            .await;
        let (joined, _) = b.answer(&json!(3)).await;
        assert_eq!(
            joined["type"], "reply",
            "open past the first expiry: {joined}"
        );

        // An SSE stream ends when its token does.
        let short = token("carol", &["--ttl", "2s"]);
        let response = get(server.addr, &format!("/events?token={short}"), &[]).await;
        assert_eq!(response.status, 200);
        let body = within("the stream's end", response.text()).await;
        assert!(body.contains("expiring"), "{body}");
    });
}

#[test]
fn tokens_not_valid_now_or_not_for_this_server_are_refused() {
    let server = server(
        "",
        &[
            "--jwt-issuer",
            "https://auth.example",
            "--jwt-audience",
            "chat",
        ],
    );
    smol::block_on(async {
        let good = json!({"sub":"alice","exp":now()+60,"iss":"https://auth.example","aud":"chat"});
        let ok = Client::connect(&server.ws(&format!("token={}", signed(good.clone())))).await;
        assert!(ok.is_ok(), "{:?}", ok.err());
        let cases = [
            (json!({"nbf": now() + 3600}), "not valid yet"),
            (json!({"exp": null}), "no exp"),
            (json!({"iss": "https://evil.example"}), "another issuer"),
            (json!({"aud": "billing"}), "another audience"),
            (json!({"room": "lobby"}), "subscription token"),
        ];
        for (change, why) in cases {
            let mut claims = good.clone();
            for (key, value) in change.as_object().expect("object") {
                if value.is_null() {
                    claims.as_object_mut().expect("object").remove(key);
                } else {
                    claims[key] = value.clone();
                }
            }
            let url = server.ws(&format!("token={}", signed(claims)));
            let (status, body) = refused(Client::connect(&url).await);
            assert_eq!(status, 401, "{why}");
            assert!(body.contains(why), "{why}: {body}");
        }
    });
}
