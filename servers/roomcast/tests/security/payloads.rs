//! Payloads one client could store to break every reader of a room, and names that pass for
//! others.

use roomcast_tests::http::{get, post};
use roomcast_tests::{Client, within};
use serde_json::json;

use super::common::Running;
use super::{KEY, client, server, token};

#[test]
fn deep_and_broken_payloads_are_refused_everywhere() {
    let server = server("", &[]);
    smol::block_on(async {
        let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
        let alice = token("alice", &[]);
        let mut a = client(&server, &alice).await;
        a.send_json(json!({"type":"join","ref":1,"room":"lobby"}))
            .await;
        a.answer(&json!(1)).await;
        for (n, data) in [deep.as_str(), r#""\ud800""#, r#"{"a":"x\udc00"}"#]
            .iter()
            .enumerate()
        {
            let reference = n + 2;
            let frame =
                format!(r#"{{"type":"publish","ref":{reference},"room":"lobby","data":{data}}}"#);
            a.send_text(frame).await;
            let (answer, _) = a.answer(&json!(reference)).await;
            assert_eq!(answer["code"], "bad_frame", "{answer}");
            let body = format!(r#"{{"data":{data}}}"#);
            let bearer = format!("Bearer {KEY}");
            let api = post(
                server.addr,
                "/api/rooms/lobby/publish",
                &[("authorization", &bearer)],
                &body,
            )
            .await;
            assert_eq!(api.status, 400);
        }
        // API room paths are decoded as ?rooms= is; empty segments are refused.
        let bearer = format!("Bearer {KEY}");
        let body = r#"{"data":1}"#;
        let decoded = post(
            server.addr,
            "/api/rooms/team-1%2Fgeneral/publish",
            &[("authorization", &bearer)],
            body,
        )
        .await;
        assert_eq!(decoded.status, 200);
        let empty = post(
            server.addr,
            "/api/rooms//lobby/publish",
            &[("authorization", &bearer)],
            body,
        )
        .await;
        assert_eq!(empty.status, 400);
        let event = r#"{"user":"bob","event":"a\nb","data":1}"#;
        let newline = post(
            server.addr,
            "/api/notify",
            &[("authorization", &bearer)],
            event,
        )
        .await;
        assert_eq!(newline.status, 400);
    });
}

#[test]
fn names_cannot_pass_for_others() {
    let server = Running::start(&["--memory"]);
    smol::block_on(async {
        for user in ["%FF", "%FE", "%20", "admin%E2%80%AEnimda"] {
            let response = get(server.addr, &format!("/poll?user={user}&timeout=0"), &[]).await;
            assert_eq!(response.status, 401, "{user}");
        }
    });
}

#[test]
fn a_room_publish_may_name_its_event_as_the_others_do() {
    let server = Running::start(&["--memory"]);
    smol::block_on(async {
        let mut a = within("connect", Client::connect(&server.ws("user=a")))
            .await
            .expect("connects");
        a.send_json(json!({"type":"join","ref":1,"room":"lobby"}))
            .await;
        a.answer(&json!(1)).await;
        let body = r#"{"event":"alert","data":{"level":3}}"#;
        let published = post(server.addr, "/api/rooms/lobby/publish", &[], body).await;
        assert_eq!(published.status, 200);
        let got = within("the message", a.next_of("message")).await;
        assert_eq!(
            (got["event"].as_str(), got["data"]["level"].as_u64()),
            (Some("alert"), Some(3)),
            "{got}"
        );
    });
}
