//! The trust boundaries, tried as an attacker would, against `roomcast serve` as a process:
//! one file per attack class under `security/`. Each finding of issue 22 is a test here that
//! fails on the code before it (checked).

mod common;

#[path = "security/api.rs"]
mod api;
#[path = "security/browser.rs"]
mod browser;
#[path = "security/hooks.rs"]
mod hooks;
#[path = "security/payloads.rs"]
mod payloads;
#[path = "security/rooms.rs"]
mod rooms;
#[path = "security/tokens.rs"]
mod tokens;

use std::process::Command;

use common::{BIN, Running, fresh_dir};

pub(crate) const SECRET: &str = "security-secret";
pub(crate) const KEY: &str = "security-api-key";

/// A server with the JWT secret, the API key and these namespaces (TOML) in its config file.
pub(crate) fn server(namespaces: &str, extra: &[&str]) -> Running {
    let dir = fresh_dir("security-config");
    std::fs::create_dir_all(&dir).expect("a config dir");
    let config = dir.join("roomcast.toml");
    std::fs::write(&config, namespaces).expect("write the config");
    let config = config.display().to_string();
    let mut args = vec!["--memory", "--jwt-secret", SECRET, "--api-key", KEY];
    args.extend(["--config", &config]);
    args.extend(extra);
    Running::start(&args)
}

/// A WebSocket client of `server` with `token`.
pub(crate) async fn client(server: &Running, token: &str) -> roomcast_tests::Client {
    let url = server.ws(&format!("token={token}"));
    roomcast_tests::within("connect", roomcast_tests::Client::connect(&url))
        .await
        .expect("connects")
}

/// `roomcast token` with these extra arguments, for `user`.
pub(crate) fn token(user: &str, extra: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(["token", "--user", user, "--secret", SECRET])
        .args(extra)
        .output()
        .expect("run roomcast token");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}
