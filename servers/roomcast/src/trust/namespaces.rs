//! The namespaces' policies, from the config file:
//!
//! ```toml
//! [default_namespace]          # rooms without a ':' (open unless said otherwise)
//! publish = "members"
//!
//! [namespaces.private]         # private:alice-bob
//! join = ["claim", "token"]    # "anyone", or any of "claim", "token" and "hook"
//! publish = "members"          # "members", "claim", "hook" or "api"
//! presence = true
//! typing = true
//! history = 100                # messages; history_age and history_bytes too
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use roomcast_core::access::{JoinRule, Namespace, Namespaces, PublishRule};
use roomcast_core::hub::HistoryLimit;
use serde::Deserialize;

/// One namespace's table in the config file; what it leaves out is the open default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NamespaceConfig {
    join: Option<Ways>,
    publish: Option<String>,
    presence: Option<bool>,
    typing: Option<bool>,
    history: Option<usize>,
    #[serde(with = "humantime_serde")]
    history_age: Option<Duration>,
    history_bytes: Option<usize>,
}

/// `join = "anyone"` or `join = ["claim", "token"]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Ways {
    One(String),
    Many(Vec<String>),
}

/// Every namespace's policy, `rooms` being the hub's own history bounds for rooms.
pub(crate) fn resolve(
    default: Option<&NamespaceConfig>,
    named: &BTreeMap<String, NamespaceConfig>,
    rooms: HistoryLimit,
) -> Result<Namespaces, String> {
    let default = match default {
        Some(config) => {
            namespace(config, rooms).map_err(|why| format!("default_namespace: {why}"))?
        }
        None => Namespace::default(),
    };
    let mut namespaces = Namespaces::new(default);
    for (name, config) in named {
        let policy = namespace(config, rooms).map_err(|why| format!("namespaces.{name}: {why}"))?;
        namespaces = namespaces.with(name, policy)?;
    }
    Ok(namespaces)
}

fn namespace(config: &NamespaceConfig, rooms: HistoryLimit) -> Result<Namespace, String> {
    let open = Namespace::default();
    let join = match &config.join {
        None => open.join,
        Some(Ways::One(way)) => join_rule(std::slice::from_ref(way))?,
        Some(Ways::Many(ways)) => join_rule(ways)?,
    };
    let publish = match config.publish.as_deref() {
        None | Some("members") => PublishRule::Members,
        Some("claim") => PublishRule::Claim,
        Some("hook") => PublishRule::Hook,
        Some("api") => PublishRule::Api,
        Some(other) => {
            return Err(format!(
                "publish = {other:?}: must be \"members\", \"claim\", \"hook\" or \"api\""
            ));
        }
    };
    let bounded =
        config.history.is_some() || config.history_age.is_some() || config.history_bytes.is_some();
    let history = bounded.then(|| HistoryLimit {
        max_messages: config.history.unwrap_or(rooms.max_messages),
        max_age: config.history_age.unwrap_or(rooms.max_age),
        max_bytes: config.history_bytes.unwrap_or(rooms.max_bytes),
    });
    if history.is_some_and(|h| h.max_bytes == 0) {
        return Err("history_bytes must be at least 1".into());
    }
    Ok(Namespace {
        join,
        publish,
        presence: config.presence.unwrap_or(open.presence),
        typing: config.typing.unwrap_or(open.typing),
        history,
    })
}

fn join_rule(ways: &[String]) -> Result<JoinRule, String> {
    let mut rule = JoinRule::default();
    for way in ways {
        match way.as_str() {
            "anyone" => rule.anyone = true,
            "claim" => rule.claim = true,
            "token" => rule.token = true,
            "hook" => rule.hook = true,
            other => {
                return Err(format!(
                    "join = {other:?}: must be \"anyone\", \"claim\", \"token\" or \"hook\""
                ));
            }
        }
    }
    if rule == JoinRule::default() {
        return Err("join names no way in".into());
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::access::Grants;
    use roomcast_core::names::RoomName;

    #[derive(Deserialize)]
    struct File {
        default_namespace: Option<NamespaceConfig>,
        #[serde(default)]
        namespaces: BTreeMap<String, NamespaceConfig>,
    }

    fn read(text: &str) -> Result<Namespaces, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let rooms = roomcast_core::hub::HubConfig::default().room_history;
        resolve(file.default_namespace.as_ref(), &file.namespaces, rooms)
    }

    #[test]
    fn the_file_sets_each_namespace() {
        let namespaces = read(
            "[default_namespace]\npublish = \"api\"\n\
             [namespaces.private]\njoin = [\"claim\", \"token\"]\npresence = false\n\
             history = 5\nhistory_age = \"1m\"\n\
             [namespaces.open]\njoin = \"anyone\"\n",
        )
        .expect("valid");
        let room = |name| RoomName::new(name).expect("valid");
        let private = namespaces.get(&room("private:a")).expect("configured");
        assert!(private.join.claim && private.join.token && !private.join.anyone);
        assert!(!private.presence && private.typing);
        let history = private.history.expect("bounded");
        assert_eq!(history.max_messages, 5);
        assert_eq!(history.max_age, Duration::from_secs(60));
        assert_eq!(history.max_bytes, 1 << 20, "the hub's, where unsaid");
        let none = Grants::default();
        assert!(
            namespaces
                .may_publish(&none, &room("lobby"), false)
                .is_err(),
            "api only"
        );
        assert!(namespaces.may_join(&none, &room("open:x"), false).is_ok());
        assert!(namespaces.get(&room("other:x")).is_err());
    }

    #[test]
    fn nonsense_is_refused_with_its_place() {
        let error = read("[namespaces.a]\njoin = \"everyone\"\n").expect_err("refused");
        assert!(
            error.contains("namespaces.a: join = \"everyone\""),
            "{error}"
        );
        let error = read("[namespaces.a]\npublish = \"all\"\n").expect_err("refused");
        assert!(error.contains("publish = \"all\""), "{error}");
        let error = read("[namespaces.a]\njoin = []\n").expect_err("refused");
        assert!(error.contains("no way in"), "{error}");
        let error = read("[namespaces.a]\nread = true\n").expect_err("refused");
        assert!(error.contains("read"), "{error}");
        let error = read("[namespaces.\"a:b\"]\n").expect_err("refused");
        assert!(error.contains("without ':'"), "{error}");
    }
}
