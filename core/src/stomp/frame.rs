//! The frame: a command, ordered headers and a body.

use bytes::Bytes;

/// The commands of STOMP 1.2, client and server ("Augmented BNF": `client-command` and
/// `server-command`). Commands are case sensitive: `send` is no command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// Client: opens a session (`accept-version`, `host`, `login`, `passcode`, `heart-beat`).
    Connect,
    /// Client: the same as `CONNECT` (STOMP 1.1 and later), told apart from HTTP by a sniffer.
    Stomp,
    /// Client: a message to a destination.
    Send,
    /// Client: listen to a destination (`id`, `destination`, `ack`).
    Subscribe,
    /// Client: stop a subscription (`id`).
    Unsubscribe,
    /// Client: a message was consumed (`id`, `transaction`).
    Ack,
    /// Client: a message was not consumed (`id`, `transaction`).
    Nack,
    /// Client: start a transaction (`transaction`).
    Begin,
    /// Client: commit a transaction (`transaction`).
    Commit,
    /// Client: roll a transaction back (`transaction`).
    Abort,
    /// Client: a graceful end (`receipt`).
    Disconnect,
    /// Server: the session is open (`version`, `heart-beat`, `session`, `server`).
    Connected,
    /// Server: a message of a subscription (`destination`, `message-id`, `subscription`, `ack`).
    Message,
    /// Server: a client frame that asked for a receipt was processed (`receipt-id`).
    Receipt,
    /// Server: something went wrong; the server closes the connection after it (`message`).
    Error,
}

impl Command {
    /// Every command, client commands first.
    pub const ALL: [Command; 15] = [
        Self::Connect,
        Self::Stomp,
        Self::Send,
        Self::Subscribe,
        Self::Unsubscribe,
        Self::Ack,
        Self::Nack,
        Self::Begin,
        Self::Commit,
        Self::Abort,
        Self::Disconnect,
        Self::Connected,
        Self::Message,
        Self::Receipt,
        Self::Error,
    ];

    /// The command as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Stomp => "STOMP",
            Self::Send => "SEND",
            Self::Subscribe => "SUBSCRIBE",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::Ack => "ACK",
            Self::Nack => "NACK",
            Self::Begin => "BEGIN",
            Self::Commit => "COMMIT",
            Self::Abort => "ABORT",
            Self::Disconnect => "DISCONNECT",
            Self::Connected => "CONNECTED",
            Self::Message => "MESSAGE",
            Self::Receipt => "RECEIPT",
            Self::Error => "ERROR",
        }
    }

    /// The command these bytes name exactly (case sensitive), if any.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|command| command.as_str().as_bytes() == bytes)
    }

    /// Whether a frame of this command may have a body: only `SEND`, `MESSAGE` and `ERROR`
    /// ("Body": all other frames MUST NOT).
    pub fn allows_body(self) -> bool {
        matches!(self, Self::Send | Self::Message | Self::Error)
    }

    /// Whether this frame's headers are written literally, unescaped: `CONNECT` and `CONNECTED`
    /// ("Value Encoding": for compatibility with STOMP 1.0). The spec names these two only, so
    /// a `STOMP` frame's headers are escaped.
    pub fn is_literal(self) -> bool {
        matches!(self, Self::Connect | Self::Connected)
    }

    /// Whether a client sends this command.
    pub fn is_client(self) -> bool {
        !self.is_server()
    }

    /// Whether a server sends this command.
    pub fn is_server(self) -> bool {
        matches!(
            self,
            Self::Connected | Self::Message | Self::Receipt | Self::Error
        )
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame's headers, in the order they came (or will go) on the wire. A name may repeat: the
/// first entry is the header's value, later ones its history ("Repeated Header Entries").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends a header, after any of the same name.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The value of the header `name`: its first entry, as the spec says.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(entry, _)| entry == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every entry of the header `name`, first (the value in force) to last.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(entry, _)| *entry == name)
            .map(|(_, value)| value)
    }

    /// The headers as (name, value) pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// How many entries, repeated ones included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The (name, value) pairs.
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    /// Takes the (name, value) pairs.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

impl From<Vec<(String, String)>> for Headers {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        )
    }
}

/// One STOMP frame.
///
/// `content-length` is framing, not content: the [`Decoder`](super::Decoder) reads it and drops
/// it (the body's length is `body.len()`), and the [encoder](super::encode) ignores any in
/// `headers` and writes its own. So a decoded frame never holds one, and the frame that
/// decodes from `encode(frame)` equals `frame` when `frame` held none.
///
/// ```
/// use roomcast_core::stomp::{Command, Frame};
///
/// let frame = Frame::new(Command::Send)
///     .header("destination", "/topic/chat")
///     .header("content-type", "text/plain")
///     .body("hello");
/// assert_eq!(frame.headers.get("destination"), Some("/topic/chat"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The command.
    pub command: Command,
    /// The headers, unescaped, in wire order.
    pub headers: Headers,
    /// The body: any octets, NUL included. Empty for commands that may not have one.
    pub body: Bytes,
}

impl Frame {
    /// A frame of this command, with no headers and no body.
    pub fn new(command: Command) -> Self {
        Self {
            command,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Appends a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}
