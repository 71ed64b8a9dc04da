//! Who a request is: the authentication hook, what it sees of a request, the development mode,
//! and the query parameters it and the endpoints read.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Uri, header};
use roomcast_core::access::Identity;
use roomcast_core::names::UserId;

use crate::refusal::Refusal;

/// What an authentication hook sees of a request (WebSocket upgrade, SSE stream or poll).
#[derive(Debug)]
pub struct Handshake<'a> {
    /// The request target, with its query.
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The peer's address.
    pub peer: IpAddr,
}

impl Handshake<'_> {
    /// The first value of query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(self.uri, name)
    }

    /// The credential: the `token` query parameter (browsers cannot set headers on a WebSocket
    /// or an `EventSource`), else an `Authorization: Bearer` header.
    pub fn token(&self) -> Option<String> {
        self.query("token").or_else(|| {
            let value = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
    }
}

/// Decides who a request is (the user, what their credentials grant, until when), or refuses
/// it. It runs before any upgrade or stream starts.
pub type Authenticate = Arc<dyn Fn(&Handshake<'_>) -> Result<Identity, Refusal> + Send + Sync>;

/// What a connect hook is told of a connection, besides who it is.
#[derive(Clone, Copy, Debug)]
pub struct ConnectInfo {
    /// `"websocket"`, `"sse"` or `"poll"`.
    pub transport: &'static str,
    /// The client's address (behind a trusted proxy, the one it names).
    pub peer: IpAddr,
}

/// The application's say on a connection that authenticated: the identity it goes on with
/// (its grants perhaps widened), or a refusal. Runs after [`Authenticate`], before the
/// connection registers; it may take its time (a network call), bounded by the caller.
pub type ConnectHook = Arc<
    dyn Fn(Identity, ConnectInfo) -> Pin<Box<dyn Future<Output = Result<Identity, Refusal>> + Send>>
        + Send
        + Sync,
>;

/// Development-mode authentication: `?user=NAME` names the user, unchecked, with no grants and
/// no expiry. A name that is not valid UTF-8 once decoded is refused, so two different byte
/// strings never become the same user.
pub fn user_from_query(handshake: &Handshake<'_>) -> Result<Identity, Refusal> {
    let raw = raw_query_param(handshake.uri, "user")
        .ok_or_else(|| Refusal::unauthorized("no user: connect with ?user=NAME"))?;
    let user = String::from_utf8(percent_decode_bytes(raw, true))
        .map_err(|_| Refusal::unauthorized("the user name is not valid UTF-8"))?;
    UserId::new(&user)
        .map(Identity::user)
        .map_err(|error| Refusal::unauthorized(format!("user {user:?} {error}")))
}

/// The first value of query parameter `name` in `uri`, percent-decoded.
pub(crate) fn query_param(uri: &Uri, name: &str) -> Option<String> {
    raw_query_param(uri, name).map(percent_decode)
}

/// The first value of query parameter `name` in `uri`, as it is written.
fn raw_query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Decodes `%XX` escapes and `+` of a query value; invalid escapes are kept as they are, and
/// bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode(value: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(value, true)).into_owned()
}

/// Decodes the `%XX` escapes of a path segment (`+` stays a `+`), as [`Handshake::query`]
/// decodes a query value: for an application reading names from its paths alike.
pub fn percent_decode_path(value: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(value, false)).into_owned()
}

/// Decodes `%XX` escapes, and `+` to a space if `plus_is_space`, to bytes.
fn percent_decode_bytes(value: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Handshake<'a> {
        Handshake {
            uri,
            headers,
            peer: IpAddr::from([127, 0, 0, 1]),
        }
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            percent_decode("room%3Alobby%3D1f.2%2Cuser%3D3.4"),
            "room:lobby=1f.2,user=3.4"
        );
        assert_eq!(percent_decode("Zo%C3%AB+M"), "Zoë M");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        let uri: Uri = "/ws?flag&user=a%20b&user=c".parse().expect("uri");
        assert_eq!(query_param(&uri, "user").as_deref(), Some("a b"));
        assert_eq!(query_param(&uri, "flag").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "none"), None);
    }

    #[test]
    fn the_token_comes_from_the_query_or_a_bearer_header() {
        let mut headers = HeaderMap::new();
        let uri: Uri = "/ws?token=q".parse().expect("uri");
        assert_eq!(handshake(&uri, &headers).token().as_deref(), Some("q"));
        let bare: Uri = "/ws".parse().expect("uri");
        assert_eq!(handshake(&bare, &headers).token(), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("value"));
        assert_eq!(handshake(&bare, &headers).token().as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, "bearer  x ".parse().expect("value"));
        assert_eq!(handshake(&bare, &headers).token().as_deref(), Some("x"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("value"));
        assert_eq!(handshake(&bare, &headers).token(), None);
        assert_eq!(
            handshake(&uri, &headers).token().as_deref(),
            Some("q"),
            "the query wins"
        );
    }

    #[test]
    fn development_mode_names_the_user_from_the_query() {
        let headers = HeaderMap::new();
        let uri: Uri = "/ws?user=alice".parse().expect("uri");
        assert_eq!(
            user_from_query(&handshake(&uri, &headers)).map(|i| i.user.as_str().to_owned()),
            Ok("alice".to_owned())
        );
        let none: Uri = "/ws".parse().expect("uri");
        assert_eq!(
            user_from_query(&handshake(&none, &headers)).map_err(|r| r.status),
            Err(401)
        );
        // %FF and %FE would both become U+FFFD: the same user. Neither is a name.
        for bytes in ["%FF", "%FE", "a%C3"] {
            let uri: Uri = format!("/ws?user={bytes}").parse().expect("uri");
            let refused = user_from_query(&handshake(&uri, &headers)).expect_err("refused");
            assert!(refused.message.contains("UTF-8"), "{}", refused.message);
        }
    }
}
