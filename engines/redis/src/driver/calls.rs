//! Plan calls as redis-rs commands: one pipeline per round trip (on a cluster, one per slot),
//! each call's reply, or error reply, in its place.

use super::connections::{Connections, Routed};
use super::convert::{error_reply, reply};
use crate::plan::{Call, Reply};

/// Every call of the batch, pipelined (on a cluster, one pipeline per slot): scripts by
/// `EVALSHA`, heads by `HMGET`; each call's reply in its place (an error reply in its place
/// too).
pub(super) async fn query<'a>(
    connections: &mut Connections,
    calls: impl Iterator<Item = &'a Call>,
) -> redis::RedisResult<Vec<Reply>> {
    let commands = calls.map(|call| routed(connections, call)).collect();
    let results = connections.calls.run(commands).await?;
    Ok(results
        .into_iter()
        .map(|result| match result {
            Ok(value) => reply(value),
            Err(error) => error_reply(&error),
        })
        .collect())
}

/// A call as a command, with the key that routes it (every call's first key, or channel, is
/// of its stream's slot).
pub(super) fn routed(connections: &Connections, call: &Call) -> Routed {
    match call {
        Call::Script { script, keys, args } => {
            let mut command = redis::cmd("EVALSHA");
            command
                .arg(connections.sha(*script))
                .arg(keys.len())
                .arg(keys);
            for arg in args {
                command.arg(arg.as_slice());
            }
            let key = keys
                .first()
                .map(|k| k.as_bytes().to_vec())
                .unwrap_or_default();
            Routed { key, command }
        }
        Call::Head { key } => {
            let mut command = redis::cmd("HMGET");
            command.arg(key).arg("e").arg("o");
            Routed {
                key: key.as_bytes().to_vec(),
                command,
            }
        }
        Call::Command(words) => {
            let mut command = redis::cmd(&String::from_utf8_lossy(
                words.first().map_or(&b""[..], Vec::as_slice),
            ));
            for arg in words.iter().skip(1) {
                command.arg(arg.as_slice());
            }
            let key = words.get(1).cloned().unwrap_or_default();
            Routed { key, command }
        }
    }
}
