//! The Redis settings roomcast relies on, read at start from every master: `maxmemory-policy`
//! must be `noeviction` (an evicted stream would lose acknowledged messages without a new epoch:
//! the node refuses to start), and the persistence says what a Redis crash may cost (a warning
//! when it is less than AOF with `appendfsync always`). A server that hides `CONFIG` is let
//! through with a warning.

use redis::Value;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use tracing::warn;

use super::ConnectError;
use super::target::{Opened, Target};

/// What the settings allow: refused with the reason, or let through (with warnings).
pub(super) async fn check(target: &mut Target) -> Result<(), ConnectError> {
    let names = ["maxmemory-policy", "appendonly", "appendfsync"];
    let read = read(target, &names).await?;
    let settings = match read {
        Ok(settings) => settings,
        Err(error) => {
            warn!(
                %error,
                "redis: cannot read its settings; maxmemory-policy must be noeviction, or Redis may drop stored messages"
            );
            return Ok(());
        }
    };
    let values = |name: &'static str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    if let Some(policy) = values("maxmemory-policy")
        .into_iter()
        .find(|p| *p != "noeviction")
    {
        return Err(ConnectError::Eviction(policy.to_owned()));
    }
    if values("appendonly").iter().any(|v| *v != "yes") {
        warn!(
            "redis: appendonly is no: a Redis restart loses every stream (clients are told \
             recovered: false); for nothing acknowledged to be lost, appendonly yes with \
             appendfsync always"
        );
    } else if values("appendfsync").iter().any(|v| *v != "always") {
        warn!(
            "redis: appendfsync is not always: a Redis crash may lose the last second of \
             acknowledged messages"
        );
    }
    Ok(())
}

/// `CONFIG GET` of each name on every master, as (name, value) pairs; the outer error is an
/// unreachable Redis, the inner one a refused `CONFIG`.
async fn read(
    target: &mut Target,
    names: &[&str],
) -> Result<redis::RedisResult<Vec<(String, String)>>, ConnectError> {
    let opened = target.open().await.map_err(ConnectError::Unreachable)?;
    let mut pairs = Vec::new();
    match opened {
        Opened::One(client) => {
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(ConnectError::Unreachable)?;
            for name in names {
                let command = redis::cmd("CONFIG").arg("GET").arg(*name).clone();
                match command.query_async::<Value>(&mut connection).await {
                    Ok(value) => pairs.extend(named(&value, name)),
                    Err(error) => return Ok(Err(error)),
                }
            }
        }
        Opened::Cluster(builder) => {
            let client = (*builder).build().map_err(ConnectError::Unreachable)?;
            let mut connection = client
                .get_async_connection()
                .await
                .map_err(ConnectError::Unreachable)?;
            for name in names {
                let command = redis::cmd("CONFIG").arg("GET").arg(*name).clone();
                let every = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                match connection.route_command(command, every).await {
                    Ok(value) => pairs.extend(named(&value, name)),
                    Err(error) => return Ok(Err(error)),
                }
            }
        }
    }
    Ok(Ok(pairs))
}

/// Every value `name` has in a `CONFIG GET` reply, one node's or a cluster's (node addresses
/// between the pairs): each name is followed by its value.
fn named(value: &Value, name: &str) -> Vec<(String, String)> {
    let mut strings = Vec::new();
    collect(value, &mut strings);
    strings
        .windows(2)
        .filter(|pair| pair[0] == name)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

fn collect(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::BulkString(bytes) => into.push(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => into.push(text.clone()),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                collect(item, into);
            }
        }
        Value::Map(pairs) => {
            for (key, value) in pairs {
                collect(key, into);
                collect(value, into);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::named;

    #[test]
    fn every_cluster_nodes_setting_is_read_from_config_get() {
        let data = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let node = |policy: &str| Value::Map(vec![(data("maxmemory-policy"), data(policy))]);
        let reply = Value::Map(vec![
            (data("127.0.0.1:7000"), node("noeviction")),
            (
                data("127.0.0.1:7001"),
                Value::Array(vec![data("maxmemory-policy"), data("allkeys-lru")]),
            ),
        ]);
        let values: Vec<String> = named(&reply, "maxmemory-policy")
            .into_iter()
            .map(|(_, value)| value)
            .collect();
        assert_eq!(values, ["noeviction", "allkeys-lru"]);
    }
}
