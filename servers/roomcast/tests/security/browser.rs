//! The forged call from a browser: a page on another origin, in headless Chromium
//! (`tests/browser/cross_site.mjs`), tries a simple cross-site POST to the open API (the
//! development mode's, on loopback), a JSON POST and a WebSocket. A client connected to the
//! server must receive nothing, the JSON POST must be stopped by the browser, and the
//! WebSocket refused.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

use roomcast_tests::browser::{browser_dir, chromium};
use roomcast_tests::http::post;
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

use super::common::Running;

/// Serves one page (to any request) on a port of its own: another origin than the server's.
fn attacker_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let page = "<!doctype html><title>cute cats</title>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    format!("http://{addr}/")
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn a_page_on_another_site_cannot_forge_a_call_or_open_a_socket() {
    let server = Running::start(&["--memory", "--allowed-origins", "https://app.example"]);
    let base = format!("http://{}", server.addr);
    smol::block_on(async {
        let mut victim = within("connect", Client::connect(&server.ws("user=victim")))
            .await
            .expect("connects");
        within("streams", victim.next_of("streams")).await;

        let output = Command::new("node")
            .arg(browser_dir().join("cross_site.mjs"))
            .args([&base, &attacker_page()])
            .env("CHROMIUM", chromium())
            .output()
            .expect("run node");
        assert!(output.status.success(), "{output:?}");
        let seen: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
        assert_eq!(seen["json_fetch"], "blocked", "{seen}");
        assert_eq!(seen["websocket"], "refused", "{seen}");

        // Whatever the simple POST did, it published nothing: the next broadcast the victim
        // gets is the server's own marker.
        let marker = post(server.addr, "/api/broadcast", &[], r#"{"data":"marker"}"#).await;
        assert_eq!(marker.status, 200);
        let got = within("the marker", victim.next_of("broadcast")).await;
        assert_eq!(
            got["data"],
            json!("marker"),
            "a forged broadcast got through: {got}"
        );
    });
}
