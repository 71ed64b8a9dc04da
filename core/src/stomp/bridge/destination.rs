//! STOMP destinations as roomcast reads them (docs/stomp.md, "Destinations").

use crate::names::{NameError, RoomName, UserId};

/// What a `SUBSCRIBE` may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Subscribable {
    /// `/topic/<room>`: the room's messages.
    Room(RoomName),
    /// `/topic/<room>.presence`: the room's presence diffs.
    Presence(RoomName),
    /// `/user/queue/<name>`: the user's outbox (direct messages and notifications).
    Outbox,
    /// `/topic/broadcast`: the broadcast feed.
    Broadcast,
}

/// What a `SEND` may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Sendable {
    /// `/topic/<room>` or `/app/<room>`: publish to the room.
    Room(RoomName),
    /// `/user/<user>/queue/<name>`: a direct message to the user.
    User(UserId),
}

/// Why a destination is refused: the text of the `ERROR` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// `/queue/<name>`: competing consumers, which roomcast does not have.
    Queue,
    /// A prefix roomcast does not serve.
    Unknown,
    /// A room or user name that is not valid.
    Name(NameError),
}

impl Refused {
    pub(super) fn message(&self, destination: &str) -> String {
        match self {
            Self::Queue => format!(
                "{destination}: /queue/ destinations (competing consumers) are not supported: \
                 subscribe to /topic/<room>, or /user/queue/<name> for your own messages"
            ),
            Self::Unknown => format!(
                "{destination}: not a destination roomcast serves: /topic/<room>, \
                 /topic/<room>.presence, /user/queue/<name>, /app/<room>, /user/<user>/queue/<name>"
            ),
            Self::Name(error) => format!("{destination}: {error}"),
        }
    }
}

/// The suffix of a presence subscription.
const PRESENCE: &str = ".presence";

pub(super) fn subscribable(destination: &str) -> Result<Subscribable, Refused> {
    if destination.starts_with("/queue/") {
        return Err(Refused::Queue);
    }
    if let Some(name) = destination.strip_prefix("/user/queue/") {
        return if name.is_empty() {
            Err(Refused::Unknown)
        } else {
            Ok(Subscribable::Outbox)
        };
    }
    let Some(rest) = destination.strip_prefix("/topic/") else {
        return Err(Refused::Unknown);
    };
    if rest == "broadcast" {
        return Ok(Subscribable::Broadcast);
    }
    match rest.strip_suffix(PRESENCE) {
        Some(room) => room_name(room).map(Subscribable::Presence),
        None => room_name(rest).map(Subscribable::Room),
    }
}

pub(super) fn sendable(destination: &str) -> Result<Sendable, Refused> {
    if destination.starts_with("/queue/") {
        return Err(Refused::Queue);
    }
    if let Some(room) = destination
        .strip_prefix("/topic/")
        .or_else(|| destination.strip_prefix("/app/"))
    {
        return room_name(room).map(Sendable::Room);
    }
    let Some(rest) = destination.strip_prefix("/user/") else {
        return Err(Refused::Unknown);
    };
    match rest.split_once("/queue/") {
        Some((user, name)) if !user.is_empty() && !name.is_empty() => {
            UserId::new(user).map(Sendable::User).map_err(Refused::Name)
        }
        _ => Err(Refused::Unknown),
    }
}

fn room_name(name: &str) -> Result<RoomName, Refused> {
    RoomName::new(name).map_err(Refused::Name)
}

/// The destination of a room's messages.
pub(super) fn room_topic(room: &RoomName) -> String {
    format!("/topic/{}", room.as_str())
}

/// The destination of a room's presence.
pub(super) fn presence_topic(room: &RoomName) -> String {
    format!("/topic/{}{PRESENCE}", room.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).expect("a room name")
    }

    #[test]
    fn subscriptions_name_a_room_its_presence_the_outbox_or_the_broadcasts() {
        assert_eq!(
            subscribable("/topic/lobby"),
            Ok(Subscribable::Room(room("lobby")))
        );
        assert_eq!(
            subscribable("/topic/chat:42"),
            Ok(Subscribable::Room(room("chat:42")))
        );
        assert_eq!(
            subscribable("/topic/lobby.presence"),
            Ok(Subscribable::Presence(room("lobby")))
        );
        assert_eq!(
            subscribable("/user/queue/notifications"),
            Ok(Subscribable::Outbox)
        );
        assert_eq!(
            subscribable("/topic/broadcast"),
            Ok(Subscribable::Broadcast)
        );
        assert_eq!(subscribable("/queue/jobs"), Err(Refused::Queue));
        assert_eq!(subscribable("/user/queue/"), Err(Refused::Unknown));
        assert_eq!(subscribable("/exchange/amq.topic/x"), Err(Refused::Unknown));
        assert_eq!(subscribable("topic/lobby"), Err(Refused::Unknown));
        assert!(matches!(subscribable("/topic/"), Err(Refused::Name(_))));
    }

    #[test]
    fn sends_name_a_room_or_a_user() {
        assert_eq!(sendable("/topic/lobby"), Ok(Sendable::Room(room("lobby"))));
        assert_eq!(sendable("/app/lobby"), Ok(Sendable::Room(room("lobby"))));
        assert_eq!(
            sendable("/user/bob/queue/messages"),
            Ok(Sendable::User(UserId::new("bob").expect("a user")))
        );
        assert_eq!(sendable("/queue/jobs"), Err(Refused::Queue));
        assert_eq!(sendable("/user/bob"), Err(Refused::Unknown));
        assert_eq!(sendable("/user//queue/x"), Err(Refused::Unknown));
        assert_eq!(sendable("/user/bob/queue/"), Err(Refused::Unknown));
        assert_eq!(sendable("/elsewhere"), Err(Refused::Unknown));
    }

    #[test]
    fn topics_are_written_back_as_read() {
        let lobby = room("lobby");
        assert_eq!(
            subscribable(&room_topic(&lobby)),
            Ok(Subscribable::Room(lobby.clone()))
        );
        assert_eq!(
            subscribable(&presence_topic(&lobby)),
            Ok(Subscribable::Presence(lobby))
        );
    }
}
