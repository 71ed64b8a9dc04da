//! The roomcast protocol driven from another language: Python's `websockets` library runs one
//! scenario (tests/python/scenario.py) against a server on 127.0.0.1.
//!
//! The interpreter is `$ROOMCAST_PYTHON`, else `target/py-venv/bin/python` (made by `.ci/run`
//! from tests/python/requirements.txt). Without it the test is skipped loudly, unless
//! `ROOMCAST_REQUIRE_PYTHON=1`, which turns a missing interpreter into a failure (for CI).

use std::path::PathBuf;
use std::process::Command;

use roomcast_tests::Server;

fn python() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ROOMCAST_PYTHON") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-venv/bin/python");
    venv.exists().then_some(venv)
}

#[test]
fn a_python_websockets_client_runs_the_scenario() {
    let Some(python) = python() else {
        let required = std::env::var("ROOMCAST_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "ROOMCAST_REQUIRE_PYTHON=1 but no interpreter: run .ci/run or set ROOMCAST_PYTHON"
        );
        eprintln!(
            "!!!! SKIPPING the Python client test: no target/py-venv (see .ci/run) and no $ROOMCAST_PYTHON"
        );
        return;
    };
    let server = smol::block_on(Server::default(roomcast_tests::Flavor::Smol));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/scenario.py");
    let url = format!("ws://{}", server.addr);
    // The server runs on smol's global executor threads while Python drives it.
    let output = Command::new(&python)
        .arg(&script)
        .arg(&url)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python scenario failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("scenario: ok"), "{stdout}");
}
