//! The protocol's JSON Schema (`docs/schema/protocol-v1.json`) against the reference codec, both
//! ways round: every kind of server message as the codec encodes it
//! (`roomcast_core::envelope::samples`, which fails to compile when a message has no sample)
//! must validate, and the schema refuses fields it does not name, so a field added in code and
//! not in the schema fails; and client frames, good and bad, must validate exactly when the codec
//! accepts them. The validator is Python's `jsonschema` (tests/python/schema_check.py) in the
//! venv tests/python/.venv; without it the test is ignored, `ROOMCAST_REQUIRE_PYTHON=1` runs it
//! anyway.
//!
//! What a schema cannot say is left out of the client frames: a field given twice, `data` nested
//! deeper than 64 levels, a name's length in bytes rather than characters, and whether the
//! application registered a type.

use std::path::Path;
use std::process::Command;

use roomcast_core::envelope::{Codec, samples};
use serde_json::json;

/// Client frames; the codec says which it accepts.
const CLIENT_FRAMES: &[&str] = &[
    r#"{"type":"join","ref":1,"room":"lobby","since":"1f.42"}"#,
    r#"{"type":"join","room":"team-1/general","token":"a.b.c"}"#,
    r#"{"type":"join","room":"lobby","since":null,"ref":null}"#,
    r#"{"type":"leave","ref":"a7","room":"org:acme.chat_2"}"#,
    r#"{"type":"publish","ref":3,"room":"lobby","data":{"text":"hi"}}"#,
    r#"{"type":"publish","room":"lobby","data":null}"#,
    r#"{"type":"typing","room":"lobby","typing":true}"#,
    r#"{"type":"direct","ref":4,"to":"bob","data":[1,2]}"#,
    r#"{"type":"direct","to":"Zoë Müller","data":"hey"}"#,
    r#"{"type":"ping","ref":5}"#,
    r#"{"type":"ping","ref":18446744073709551615}"#,
    r#"{"type":"ping","extra":{"anything":[1]}}"#,
    r#"{"type":"read","ref":7,"upto":"2.14"}"#,
    r#"{"type":"refresh","token":"a.b.c"}"#,
    r#"{"type":"reaction","ref":6,"room":5,"emoji":"+1"}"#,
    // Refused:
    r#"{"type":"join"}"#,
    r#"{"type":"join","room":"a b"}"#,
    r#"{"type":"join","room":""}"#,
    r#"{"type":"join","room":"lobby","since":"12"}"#,
    r#"{"type":"join","room":"lobby","token":7}"#,
    r#"{"type":"leave","room":"lobby","since":5}"#,
    r#"{"type":"publish","room":"lobby"}"#,
    r#"{"type":"publish","room":"lobby","data":1,"typing":"x"}"#,
    r#"{"type":"typing","room":"lobby","typing":"yes"}"#,
    r#"{"type":"typing","room":"lobby"}"#,
    r#"{"type":"direct","to":"","data":1}"#,
    r#"{"type":"direct","to":"a\u0001b","data":1}"#,
    r#"{"type":"direct","data":1}"#,
    r#"{"type":"ping","room":5}"#,
    r#"{"type":"ping","ref":-1}"#,
    r#"{"type":"ping","ref":1.5}"#,
    r#"{"type":"ping","ref":{"a":1}}"#,
    r#"{"type":"ping","ref":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
    r#"{"type":"read"}"#,
    r#"{"type":"read","upto":"x"}"#,
    r#"{"type":"refresh"}"#,
    r#"{"type":"message","room":"lobby","id":"1.1","data":1}"#,
    r#"{"type":5}"#,
    r#"{"room":"lobby"}"#,
    r#"[1,2]"#,
];

#[test]
#[cfg_attr(
    not(roomcast_python),
    ignore = "needs the venv tests/python/.venv: python3 -m venv tests/python/.venv && tests/python/.venv/bin/pip install -r tests/python/requirements.txt; .ci/run does it"
)]
fn the_schema_says_what_the_codec_does() {
    let codec = Codec::new().with_app_type("reaction").expect("a type name");
    let server: Vec<String> = samples::server_messages()
        .iter()
        .map(|message| {
            let frame = message.encode();
            let text = frame.as_str().to_owned();
            // The samples are what the codec reads back, too.
            assert_eq!(codec.decode_server(&text).as_ref(), Ok(message), "{text}");
            text
        })
        .collect();
    let client: Vec<(&str, bool)> = CLIENT_FRAMES
        .iter()
        .map(|text| (*text, codec.decode_client(text).is_ok()))
        .collect();
    let dir = std::env::temp_dir().join(format!("roomcast-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("samples.json");
    let samples = json!({ "server": server, "client": client });
    std::fs::write(&file, samples.to_string()).expect("write the samples");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("ROOMCAST_TEST_PYTHON"))
        .arg(root.join("tests/python/schema_check.py"))
        .arg(root.join("docs/schema/protocol-v1.json"))
        .arg(&file)
        .output()
        .expect("run the Python interpreter of tests/python/.venv");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("schema: ok"),
        "schema_check.py:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
