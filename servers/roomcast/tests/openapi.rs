//! The server API against its OpenAPI document (`assets/openapi.json`, served at
//! `/api/openapi.json`), both ways round: `tests/python/openapi_check.py` checks the document
//! is valid OpenAPI 3.1, makes every documented call against `roomcast serve` on 127.0.0.1
//! with good input and bad, and validates each answer's status and body against the document;
//! the schemas refuse properties they do not name, so a field added in code and not in the
//! document fails, and so does a documented answer the server never gives.
//!
//! A third test holds `docs/api.md`'s table of calls to the document: the same calls, no more.
//!
//! The interpreter is the venv `tests/python/.venv` (`jsonschema`, `openapi-spec-validator`,
//! `websockets`, from tests/python/requirements.txt), as the build script found it. Without it
//! the test is ignored, with how to make the venv; `ROOMCAST_REQUIRE_PYTHON=1` runs it anyway.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Running;

const KEY: &str = "test-api-key";

#[test]
#[cfg_attr(
    not(roomcast_python),
    ignore = "needs the venv tests/python/.venv: python3 -m venv tests/python/.venv && tests/python/.venv/bin/pip install -r tests/python/requirements.txt; .ci/run does it"
)]
fn every_call_answers_as_the_openapi_document_says() {
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/openapi_check.py"
    );
    let mut child = Command::new(env!("ROOMCAST_TEST_PYTHON"))
        .arg(script)
        .arg(format!("http://{}", server.addr))
        .arg(KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the Python interpreter of tests/python/.venv");
    // The script bounds each of its calls (10 s); this bounds the whole.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the script ran over 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("its output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().any(|line| line == "openapi: ok"),
        "openapi_check.py failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn the_document_is_served_without_a_key_and_is_the_committed_one() {
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let served = smol::block_on(async {
        let response = roomcast_tests::http::get(server.addr, "/api/openapi.json", &[]).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), "application/json");
        response.text().await
    });
    let committed = include_str!("../assets/openapi.json");
    assert_eq!(served, committed);
    let document: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");
}

#[test]
fn docs_api_md_lists_every_call_of_the_document_and_no_other() {
    let document: serde_json::Value =
        serde_json::from_str(include_str!("../assets/openapi.json")).expect("JSON");
    let mut documented: Vec<String> = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let guide = include_str!("../../../docs/api.md");
    // The table of calls: rows that open with a `METHOD /api/...` cell.
    let mut listed: Vec<String> = guide
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(call, _)| call.to_owned()))
        .filter(|call| call.contains(" /api/"))
        .collect();
    listed.sort();
    assert_eq!(
        listed, documented,
        "docs/api.md's table and the OpenAPI document differ"
    );
}
