//! The application's hooks: HTTP calls on connect, join and publish, where the configuration
//! asks for them (docs/security.md, "Application hooks").
//!
//! Each call is a `POST` of JSON to the hook's URL: `{"hook":"connect","user","transport","ip"}`,
//! `{"hook":"join","user","room"}`, `{"hook":"publish","user","room","data"}`. The application
//! answers 200 with `{"allow":true}` (a connect may add `"rooms"` and `"publish"` patterns to the
//! user's grants; a publish may give `"data"` to publish instead) or
//! `{"allow":false,"reason":"..."}`. Anything else (another status, no JSON, no answer within
//! the timeout, more calls in flight than the workers) refuses the request as `unavailable`
//! (503 for a connection): the application is asked, never skipped.

mod pool;

use std::sync::Arc;
use std::time::Duration;

use roomcast_core::access::{Grants, Identity, Namespaces, PublishRule};
use roomcast_core::envelope::Payload;
use roomcast_core::names::{RoomName, UserId};
use roomcast_hyper::{ConnectHook, ConnectInfo, Refusal};
use roomcast_io::{Hooks, Pending, Verdict};
use serde_json::{Value, json};
use smol_str::SmolStr;

use self::pool::Pool;

/// Where each hook is, and how calls to them are bounded.
#[derive(Clone, Debug, Default)]
pub(crate) struct HookSettings {
    pub(crate) connect: Option<String>,
    pub(crate) join: Option<String>,
    pub(crate) publish: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
}

impl HookSettings {
    pub(crate) fn any(&self) -> bool {
        self.connect.is_some() || self.join.is_some() || self.publish.is_some()
    }
}

/// The hooks of one server.
pub(crate) struct AppHooks {
    settings: HookSettings,
    namespaces: Arc<Namespaces>,
    pool: Pool,
}

impl AppHooks {
    /// The hooks of `settings`, for rooms under `namespaces`; `None` when none is configured.
    pub(crate) fn start(
        settings: &HookSettings,
        namespaces: Arc<Namespaces>,
    ) -> Result<Option<Arc<Self>>, String> {
        if !settings.any() {
            return Ok(None);
        }
        let pool = Pool::new(settings.max_in_flight, settings.timeout)?;
        Ok(Some(Arc::new(Self {
            settings: settings.clone(),
            namespaces,
            pool,
        })))
    }

    /// The connect hook, for `roomcast_hyper::Options::on_connect`, if configured.
    pub(crate) fn on_connect(self: &Arc<Self>) -> Option<ConnectHook> {
        self.settings.connect.as_ref()?;
        let hooks = Arc::clone(self);
        Some(Arc::new(move |identity: Identity, info: ConnectInfo| {
            let hooks = Arc::clone(&hooks);
            Box::pin(async move { hooks.connect(identity, info).await })
        }))
    }

    async fn connect(&self, identity: Identity, info: ConnectInfo) -> Result<Identity, Refusal> {
        let url = self.settings.connect.clone().unwrap_or_default();
        let body = json!({
            "hook": "connect",
            "user": identity.user.as_str(),
            "transport": info.transport,
            "ip": info.peer.to_string(),
        });
        match verdict(self.pool.clone().post(url, body.to_string()).await) {
            Verdict::Allow(answer) => widen(identity, &answer),
            Verdict::Deny(why) => Err(Refusal::new(403, why).with_code("unauthorized")),
            Verdict::Unavailable(why) => Err(Refusal::new(503, why).retry_after(1000)),
        }
    }
}

impl Hooks for AppHooks {
    fn join(&self, user: &UserId, grants: &Grants, room: &RoomName) -> Option<Pending<()>> {
        let url = self.settings.join.clone()?;
        let rule = self.namespaces.get(room).ok()?.join;
        // Asked only where nothing else admits: any allowed way suffices.
        if !rule.hook || rule.anyone || (rule.claim && grants.may_join(room)) {
            return None;
        }
        let body = json!({"hook": "join", "user": user.as_str(), "room": room.as_str()});
        let call = self.pool.clone().post(url, body.to_string());
        Some(Box::pin(async move {
            match verdict(call.await) {
                Verdict::Allow(_) => Verdict::Allow(()),
                Verdict::Deny(why) => Verdict::Deny(why),
                Verdict::Unavailable(why) => Verdict::Unavailable(why),
            }
        }))
    }

    fn publish(
        &self,
        user: &UserId,
        room: &RoomName,
        data: &Payload,
    ) -> Option<Pending<Option<Payload>>> {
        let url = self.settings.publish.clone()?;
        if self.namespaces.get(room).ok()?.publish != PublishRule::Hook {
            return None;
        }
        let data: Value = serde_json::from_str(data.as_json()).ok()?;
        let body =
            json!({"hook": "publish", "user": user.as_str(), "room": room.as_str(), "data": data});
        let call = self.pool.clone().post(url, body.to_string());
        Some(Box::pin(async move {
            match verdict(call.await) {
                Verdict::Allow(answer) => match answer.get("data") {
                    None => Verdict::Allow(None),
                    Some(data) => match Payload::from_json(&data.to_string()) {
                        Ok(data) => Verdict::Allow(Some(data)),
                        Err(_) => Verdict::Unavailable("the hook's data is not a payload".into()),
                    },
                },
                Verdict::Deny(why) => Verdict::Deny(why),
                Verdict::Unavailable(why) => Verdict::Unavailable(why),
            }
        }))
    }
}

/// A 200's JSON as a verdict: `allow` must be a boolean.
fn verdict(answer: Verdict<Value>) -> Verdict<Value> {
    let Verdict::Allow(answer) = answer else {
        return answer;
    };
    match answer.get("allow").and_then(Value::as_bool) {
        Some(true) => Verdict::Allow(answer),
        Some(false) => {
            let reason = answer.get("reason").and_then(Value::as_str);
            Verdict::Deny(reason.unwrap_or("the application refused").to_owned())
        }
        None => Verdict::Unavailable("the application's answer has no boolean allow".into()),
    }
}

/// The identity with the rooms and publish patterns a connect hook granted added.
fn widen(mut identity: Identity, answer: &Value) -> Result<Identity, Refusal> {
    let patterns = |key: &str| -> Result<Vec<SmolStr>, Refusal> {
        let Some(list) = answer.get(key) else {
            return Ok(Vec::new());
        };
        let list = list.as_array().ok_or_else(|| bad(key))?;
        list.iter()
            .map(|p| {
                let p = p.as_str().ok_or_else(|| bad(key))?;
                RoomName::new(&p.replace('*', "x")).map_err(|_| bad(key))?;
                Ok(SmolStr::new(p))
            })
            .collect()
    };
    let (rooms, publish) = (patterns("rooms")?, patterns("publish")?);
    if !rooms.is_empty() || !publish.is_empty() {
        let grants = Arc::make_mut(&mut identity.grants);
        grants.rooms.extend(rooms);
        grants.publish.extend(publish);
        if grants.rooms.len() > 100 || grants.publish.len() > 100 {
            return Err(bad("rooms"));
        }
    }
    Ok(identity)
}

fn bad(key: &str) -> Refusal {
    Refusal::new(
        503,
        format!("the connect hook's {key} are not room patterns"),
    )
    .retry_after(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_verdicts() {
        assert_eq!(
            verdict(Verdict::Allow(json!({"allow": true}))),
            Verdict::Allow(json!({"allow": true}))
        );
        assert_eq!(
            verdict(Verdict::Allow(json!({"allow": false, "reason": "banned"}))),
            Verdict::Deny("banned".into())
        );
        assert!(matches!(
            verdict(Verdict::Allow(json!({"ok": 1}))),
            Verdict::Unavailable(_)
        ));
        assert!(matches!(
            verdict(Verdict::Allow(json!({"allow": "yes"}))),
            Verdict::Unavailable(_)
        ));
    }

    #[test]
    fn a_connect_hook_widens_the_grants() {
        let identity = Identity::user(UserId::new("alice").expect("valid"));
        let widened = widen(
            identity.clone(),
            &json!({"allow": true, "rooms": ["team:*"]}),
        )
        .expect("valid");
        assert!(widened.grants.may_join("team:a"));
        assert!(widen(identity.clone(), &json!({"rooms": ["bad room"]})).is_err());
        assert!(widen(identity, &json!({"rooms": "team:*"})).is_err());
    }
}
