//! Who may do what in a room: namespaces with their policies, and what a session's credentials
//! grant it.
//!
//! A room's namespace is its name up to the first `:` (`private:alice-bob` is in `private`); a
//! name without one is in the default namespace. A room in a namespace that is not configured
//! does not exist: joining it or publishing to it is refused. Per namespace:
//!
//! - **who may join** (and so read the room's history and presence): anyone, holders of a
//!   connection token whose `rooms` claim matches the room, holders of a subscription token
//!   for that one room, or whom the application's hook admits ([`JoinRule`]; any allowed way
//!   suffices);
//! - **who may publish**: every member, members whose `publish` claim matches, members whose
//!   publish the application's hook allows, or only the server API ([`PublishRule`]);
//! - whether presence and typing are relayed, and how much history is kept.
//!
//! The hub asks these questions for every transport alike (a WebSocket `join`, an SSE stream's
//! rooms, a long-poll); a driver proves a subscription token or the application's say by
//! [admitting](crate::hub::Hub::admit) a session to a room once (a publish likewise:
//! [`admit_publish`](crate::hub::Hub::admit_publish)).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use smol_str::SmolStr;

use crate::engine::Retention as HistoryLimit;
use crate::names::{RoomName, UserId};

/// The ways a session may join a room of a namespace: any one of those allowed suffices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinRule {
    /// Any authenticated session.
    pub anyone: bool,
    /// A session whose connection token's `rooms` claim matches the room.
    pub claim: bool,
    /// A session that presents a subscription token for the room with its join.
    pub token: bool,
    /// A session the application's join hook admits.
    pub hook: bool,
}

impl JoinRule {
    /// Anyone may join: the default namespace's rule unless configured.
    pub const ANYONE: Self = Self {
        anyone: true,
        claim: false,
        token: false,
        hook: false,
    };
}

/// Who may publish to a room of a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PublishRule {
    /// Every member of the room.
    #[default]
    Members,
    /// Members whose connection token's `publish` claim matches the room.
    Claim,
    /// Members whose publish the application's hook allows, each one.
    Hook,
    /// Nobody but the server API.
    Api,
}

/// The policy of one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// Who may join (and read).
    pub join: JoinRule,
    /// Who may publish.
    pub publish: PublishRule,
    /// Whether members see each other (the join's `members`, `presence` diffs).
    pub presence: bool,
    /// Whether `typing` is relayed.
    pub typing: bool,
    /// History kept per room; `None`: the hub's [`room_history`](crate::hub::HubConfig::room_history).
    pub history: Option<HistoryLimit>,
}

impl Default for Namespace {
    /// Open: anyone joins, members publish, presence and typing on, the hub's history.
    fn default() -> Self {
        Self {
            join: JoinRule::ANYONE,
            publish: PublishRule::Members,
            presence: true,
            typing: true,
            history: None,
        }
    }
}

/// Every namespace's policy. The default has only the default namespace, open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespaces {
    default: Namespace,
    named: BTreeMap<SmolStr, Namespace>,
}

/// The namespace of a room name: up to its first `:`, or `None` for the default one.
pub fn namespace_of(room: &str) -> Option<&str> {
    room.split_once(':').map(|(namespace, _)| namespace)
}

impl Namespaces {
    /// The default namespace's policy and no other namespace.
    pub fn new(default: Namespace) -> Self {
        Self {
            default,
            named: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) namespace `name`. A name holds what a room name may, without `:`.
    pub fn with(mut self, name: &str, namespace: Namespace) -> Result<Self, String> {
        if name.is_empty() || name.contains(':') || RoomName::new(name).is_err() {
            return Err(format!(
                "namespace {name:?} must be letters, digits and _ - . / without ':'"
            ));
        }
        self.named.insert(SmolStr::new(name), namespace);
        Ok(self)
    }

    /// Whether any namespace's join rule asks the application's hook, and any publish rule.
    pub fn hooks_asked(&self) -> (bool, bool) {
        let all = || std::iter::once(&self.default).chain(self.named.values());
        (
            all().any(|n| n.join.hook),
            all().any(|n| n.publish == PublishRule::Hook),
        )
    }

    /// The policy of `room`'s namespace, or why there is none.
    pub fn get(&self, room: &RoomName) -> Result<&Namespace, String> {
        match namespace_of(room) {
            None => Ok(&self.default),
            Some(name) => self.named.get(name).ok_or_else(|| {
                format!(
                    "room {:?}: namespace {name:?} is not configured",
                    room.as_str()
                )
            }),
        }
    }

    /// Whether a session with `grants` may join `room`; `admitted` says a subscription token
    /// for it was checked, or the application's hook admitted it.
    pub fn may_join(&self, grants: &Grants, room: &RoomName, admitted: bool) -> Result<(), String> {
        let rule = self.get(room)?.join;
        let by_admission = (rule.token || rule.hook) && admitted;
        if rule.anyone || (rule.claim && grants.may_join(room)) || by_admission {
            return Ok(());
        }
        let ways: Vec<&str> = [
            (rule.claim, "a token whose rooms claim matches it"),
            (rule.token, "a subscription token for it"),
            (rule.hook, "the application's consent"),
        ]
        .into_iter()
        .filter_map(|(allowed, way)| allowed.then_some(way))
        .collect();
        let ways = if ways.is_empty() {
            "nothing: nobody may join".to_owned()
        } else {
            ways.join(", or ")
        };
        Err(format!(
            "room {:?} may be joined with {ways}",
            room.as_str()
        ))
    }

    /// Whether a member with `grants` may publish to `room`; `admitted` says the application's
    /// hook allowed this publish.
    pub fn may_publish(
        &self,
        grants: &Grants,
        room: &RoomName,
        admitted: bool,
    ) -> Result<(), String> {
        match self.get(room)?.publish {
            PublishRule::Members => Ok(()),
            PublishRule::Hook if admitted => Ok(()),
            PublishRule::Hook => Err(format!(
                "room {:?}: the application decides each publish, and did not allow this one",
                room.as_str()
            )),
            PublishRule::Claim if grants.may_publish(room) => Ok(()),
            PublishRule::Claim => Err(format!(
                "room {:?}: publishing needs a token whose publish claim matches it",
                room.as_str()
            )),
            PublishRule::Api => Err(format!(
                "room {:?}: only the server API publishes",
                room.as_str()
            )),
        }
    }
}

/// What a session's credentials grant beyond its identity: the room patterns of its connection
/// token's `rooms` (join and read) and `publish` claims. A pattern is a room name in which `*`
/// stands for any run of characters (`team-1/*`, `private:*-alice`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Rooms the session may join, under a namespace whose rule accepts the claim.
    pub rooms: Vec<SmolStr>,
    /// Rooms the session may publish to, under a namespace whose rule asks for the claim.
    pub publish: Vec<SmolStr>,
}

static NONE: LazyLock<Arc<Grants>> = LazyLock::new(Arc::default);

impl Grants {
    /// No grants, shared: what a session without claims holds.
    pub fn none() -> Arc<Self> {
        Arc::clone(&NONE)
    }

    /// Whether a `rooms` pattern matches `room`.
    pub fn may_join(&self, room: &str) -> bool {
        self.rooms.iter().any(|pattern| matches(pattern, room))
    }

    /// Whether a `publish` pattern matches `room`.
    pub fn may_publish(&self, room: &str) -> bool {
        self.publish.iter().any(|pattern| matches(pattern, room))
    }
}

/// Who a connection is, as its credentials say: the user, what they grant, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: UserId,
    /// What the credentials grant beyond the identity.
    pub grants: Arc<Grants>,
    /// When they expire (a token's `exp`); `None`: never.
    pub expires: Option<SystemTime>,
}

impl Identity {
    /// A user with no grants and no expiry (development mode, an application's own check).
    pub fn user(user: UserId) -> Self {
        Self {
            user,
            grants: Grants::none(),
            expires: None,
        }
    }
}

/// A connection's credentials as the hub keeps them: its grants, and the rooms a checked
/// subscription token admits it to (each once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// What the connection token grants.
    pub grants: Arc<Grants>,
    /// Rooms a subscription token admitted (an SSE stream's `?rooms=`).
    pub admitted: Vec<RoomName>,
}

impl Default for Access {
    fn default() -> Self {
        Self {
            grants: Grants::none(),
            admitted: Vec::new(),
        }
    }
}

/// Whether `text` matches `pattern`, in which `*` matches any run of characters (none
/// included). Linear in the text for a pattern with one `*`; at worst O(pattern × text).
pub fn matches(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut text) = text.strip_prefix(head) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let tail = parts.pop().unwrap_or("");
    for part in parts {
        match text.find(part) {
            Some(at) => text = &text[at + part.len()..],
            None => return false,
        }
    }
    text.len() >= tail.len() && text.ends_with(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).expect("valid")
    }

    fn grants(rooms: &[&str], publish: &[&str]) -> Grants {
        Grants {
            rooms: rooms.iter().map(SmolStr::new).collect(),
            publish: publish.iter().map(SmolStr::new).collect(),
        }
    }

    #[test]
    fn patterns_match_with_stars_anywhere() {
        assert!(matches("lobby", "lobby"));
        assert!(!matches("lobby", "lobby2"));
        assert!(matches("team-1/*", "team-1/general"));
        assert!(matches("team-1/*", "team-1/"));
        assert!(!matches("team-1/*", "team-2/general"));
        assert!(matches("private:*-alice", "private:bob-alice"));
        assert!(!matches("private:*-alice", "private:alice-bob"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "a-b-c"));
        assert!(matches("a*b*c", "abc"));
        assert!(!matches("a*b*c", "acb"));
        assert!(!matches("a*a", "a"), "the head and tail may not overlap");
    }

    #[test]
    fn a_room_is_in_the_namespace_before_its_first_colon() {
        assert_eq!(namespace_of("private:alice-bob"), Some("private"));
        assert_eq!(namespace_of("a:b:c"), Some("a"));
        assert_eq!(namespace_of("lobby"), None);
        let namespaces = Namespaces::default();
        assert!(namespaces.get(&room("lobby")).is_ok());
        let error = namespaces
            .get(&room("private:alice-bob"))
            .expect_err("not configured");
        assert!(
            error.contains("namespace \"private\" is not configured"),
            "{error}"
        );
        assert!(
            Namespaces::default()
                .with("a:b", Namespace::default())
                .is_err()
        );
        assert!(
            Namespaces::default()
                .with("", Namespace::default())
                .is_err()
        );
    }

    #[test]
    fn joins_follow_the_rule_of_the_namespace() {
        let private = Namespace {
            join: JoinRule {
                claim: true,
                token: true,
                ..JoinRule::default()
            },
            ..Namespace::default()
        };
        let tokens_only = Namespace {
            join: JoinRule {
                token: true,
                ..JoinRule::default()
            },
            ..Namespace::default()
        };
        let namespaces = Namespaces::default()
            .with("private", private)
            .and_then(|n| n.with("paid", tokens_only))
            .expect("valid");
        let alice = grants(&["private:alice-*"], &[]);
        let none = Grants::default();
        let secret = room("private:alice-bob");
        assert_eq!(namespaces.may_join(&alice, &secret, false), Ok(()));
        let refused = namespaces
            .may_join(&none, &secret, false)
            .expect_err("mallory");
        assert!(refused.contains("rooms claim"), "{refused}");
        assert_eq!(namespaces.may_join(&none, &secret, true), Ok(()));
        assert!(namespaces.may_join(&alice, &room("paid:x"), false).is_err());
        assert_eq!(namespaces.may_join(&none, &room("paid:x"), true), Ok(()));
        assert_eq!(namespaces.may_join(&none, &room("lobby"), false), Ok(()));
        assert!(namespaces.may_join(&alice, &room("other:x"), true).is_err());
    }

    #[test]
    fn publishing_follows_the_rule_of_the_namespace() {
        let claim = Namespace {
            publish: PublishRule::Claim,
            ..Namespace::default()
        };
        let api = Namespace {
            publish: PublishRule::Api,
            ..Namespace::default()
        };
        let namespaces = Namespaces::default()
            .with("news", api)
            .and_then(|n| n.with("team", claim))
            .expect("valid");
        let writer = grants(&[], &["team:*"]);
        let reader = Grants::default();
        assert_eq!(
            namespaces.may_publish(&reader, &room("lobby"), false),
            Ok(())
        );
        assert_eq!(
            namespaces.may_publish(&writer, &room("team:a"), false),
            Ok(())
        );
        assert!(
            namespaces
                .may_publish(&reader, &room("team:a"), false)
                .is_err()
        );
        let refused = namespaces
            .may_publish(&writer, &room("news:today"), true)
            .expect_err("api only");
        assert!(refused.contains("only the server API"), "{refused}");
    }
}
