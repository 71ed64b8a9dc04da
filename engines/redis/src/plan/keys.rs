//! Key and channel names: every one of a stream under its hash tag.

use roomcast_core::engine::StreamId;

/// The names of a deployment's keys and channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The stream's hash tag and everything before it: `rc:{r:lobby}`. Redis hashes what is
    /// between the first `{` and the first `}` after it, so a name that holds a `}` still
    /// puts all of its stream's keys in one slot (on a shorter tag).
    fn base(&self, stream: &StreamId) -> String {
        format!("{}:{{{}}}", self.prefix, stream.key())
    }

    /// The stream's meta (a HASH).
    pub fn meta(&self, stream: &StreamId) -> String {
        self.base(stream) + ":m"
    }

    /// The stream's log (a STREAM).
    pub fn log(&self, stream: &StreamId) -> String {
        self.base(stream) + ":l"
    }

    /// The marker a retried append leaves, named by its record's nonce (a STRING, the
    /// position it was stored at, for 15 min): an earlier attempt arriving late finds it.
    pub fn marker(&self, stream: &StreamId, nonce: &str) -> String {
        format!("{}:r:{nonce}", self.base(stream))
    }

    /// A room's presence (a ZSET of `node:user`, scored by expiry).
    pub fn presence(&self, room: &roomcast_core::names::RoomName) -> String {
        self.base(&StreamId::Room(room.clone())) + ":p"
    }

    /// The node registry's figures (a HASH: node -> JSON), in a slot of its own.
    pub fn nodes(&self) -> String {
        format!("{}:{{nodes}}:f", self.prefix)
    }

    /// The node registry's expiries (a ZSET: node, scored by expiry), in the same slot.
    pub fn nodes_seen(&self) -> String {
        format!("{}:{{nodes}}:e", self.prefix)
    }

    /// The channel its appends are published on.
    pub fn channel(&self, stream: &StreamId) -> String {
        self.base(stream)
    }

    /// The stream a channel of these names is for.
    pub fn stream_of_channel(&self, channel: &str) -> Option<StreamId> {
        let key = channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":{")?
            .strip_suffix('}')?;
        StreamId::from_key(key)
    }
}

#[cfg(test)]
mod tests {
    use roomcast_core::names::{RoomName, UserId};

    use super::*;

    #[test]
    fn a_streams_keys_share_its_hash_tag_and_its_channel_names_it() {
        let keys = Keys::new("rc");
        let lobby = StreamId::Room(RoomName::new("lobby").expect("valid"));
        assert_eq!(keys.meta(&lobby), "rc:{r:lobby}:m");
        assert_eq!(keys.log(&lobby), "rc:{r:lobby}:l");
        assert_eq!(keys.channel(&lobby), "rc:{r:lobby}");
        let alice = UserId::new("alice").expect("valid");
        assert_eq!(keys.meta(&StreamId::Outbox(alice)), "rc:{u:alice}:m");
        for stream in [
            lobby,
            StreamId::Outbox(UserId::new("alice").expect("valid")),
            StreamId::Broadcast,
        ] {
            assert_eq!(keys.stream_of_channel(&keys.channel(&stream)), Some(stream));
        }
        assert_eq!(keys.stream_of_channel("rc:{x:y}"), None);
        assert_eq!(keys.stream_of_channel("other:{b}"), None);
        assert_eq!(keys.stream_of_channel("rc:{b}:m"), None);
    }
}
