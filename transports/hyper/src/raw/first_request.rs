//! The first request of a connection, read before hyper sees it: an SSE stream, a WebSocket
//! or a STOMP session that the router's table gives to the raw path is served on the connection
//! directly (`sse.rs`, `websocket.rs`, `stomp.rs`), anything else goes to hyper with the bytes read put back in front
//! (`rewind.rs`).

use std::future::Future;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, future};
use http::{HeaderName, HeaderValue, Request, Uri, Version};

use crate::endpoints::Endpoint;
use crate::io::HyperIo;
use crate::raw::rewind::Rewind;
use crate::service::{FirstRequest, route};

/// Longest head read here: a longer one goes to hyper, which applies its own limit.
const MAX_HEAD: usize = 16 * 1024;

/// Most headers parsed here: more go to hyper, which applies its own limit.
const MAX_HEADERS: usize = 64;

/// Bytes asked of the socket per read.
const READ: usize = 1024;

/// What the first request is.
pub(crate) enum First<I> {
    /// A request for the SSE endpoint, HTTP/1.1, without a body or an upgrade.
    Sse(Request<()>, HyperIo<I>),
    /// A request for the WebSocket endpoint, HTTP/1.1, without a body, and nothing after its head
    /// (a client sends no frame before the server's handshake, RFC 6455 section 4.1).
    WebSocket(Request<()>, HyperIo<I>),
    /// A request for the STOMP endpoint, as for the WebSocket one.
    Stomp(Request<()>, HyperIo<I>),
    /// Anything else: for hyper, with what was read in front.
    Other(Rewind<I>),
    /// Nothing complete came before `deadline`, or the client went away.
    Gone,
}

/// Reads the first request head from `io`, at most until `deadline` completes.
pub(crate) async fn read_first<I: hyper::rt::Read + Unpin>(
    io: I,
    deadline: impl Future<Output = ()>,
) -> First<I> {
    let mut io = HyperIo(io);
    let mut head: Vec<u8> = Vec::new();
    let read = async {
        loop {
            let start = head.len();
            head.resize(start + READ, 0);
            let n = match io.read(&mut head[start..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            head.truncate(start + n);
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&head) {
                Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => {}
                // Complete, too long, or not HTTP as httparse reads it: hyper decides.
                _ => return true,
            }
        }
    };
    let complete = future::or(read, async {
        deadline.await;
        false
    })
    .await;
    if !complete {
        // Nothing, or half a head, by the deadline or before the client left: nothing to serve.
        return First::Gone;
    }
    match direct_request(&head) {
        Some((Direct::Sse, request)) => First::Sse(request, io),
        Some((Direct::WebSocket, request)) => First::WebSocket(request, io),
        Some((Direct::Stomp, request)) => First::Stomp(request, io),
        None => First::Other(Rewind::new(Bytes::from(head), io.0)),
    }
}

/// What a first request served directly is.
#[derive(Debug, PartialEq, Eq)]
enum Direct {
    Sse,
    WebSocket,
    Stomp,
}

/// The request in `head` if it is one this connection serves directly: its route's, in the
/// router's table, with its method, and given to the raw path.
fn direct_request(head: &[u8]) -> Option<(Direct, Request<()>)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(length)) = parsed.parse(head) else {
        return None;
    };
    let target = parsed.path?;
    let route = route(target.split('?').next()?)?;
    if parsed.method != Some(route.method.as_str())
        || parsed.version != Some(1)
        || route.first_request != FirstRequest::Raw
    {
        return None;
    }
    let direct = match route.endpoint {
        Endpoint::Sse => Direct::Sse,
        // Bytes after the head would be frames sent before the handshake: hyper's upgrade
        // hands them on.
        Endpoint::WebSocket if length == head.len() => Direct::WebSocket,
        Endpoint::Stomp if length == head.len() => Direct::Stomp,
        _ => return None,
    };
    let mut request = Request::new(());
    *request.method_mut() = route.method.clone();
    *request.version_mut() = Version::HTTP_11;
    *request.uri_mut() = target.parse::<Uri>().ok()?;
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        request.headers_mut().append(name, value);
    }
    // A body is for hyper to answer, and so is an upgrade of the stream path.
    let headers = request.headers();
    let body = headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|length| length != "0")
        || headers.contains_key(http::header::TRANSFER_ENCODING);
    if body || (direct == Direct::Sse && headers.contains_key(http::header::UPGRADE)) {
        return None;
    }
    Some((direct, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_get_of_the_stream_path_is_served_directly() {
        let sse_request = |head: &[u8]| {
            direct_request(head).map(|(direct, request)| {
                assert_eq!(direct, Direct::Sse);
                request
            })
        };
        let get = |rest: &str| format!("GET {rest}\r\nHost: x\r\n\r\n");
        let request = sse_request(get("/events?user=a&rooms=r HTTP/1.1").as_bytes())
            .expect("a stream request");
        assert_eq!(request.uri().query(), Some("user=a&rooms=r"));
        assert_eq!(request.headers()["host"], "x");
        for other in [
            get("/events HTTP/1.0"),
            get("/events/more HTTP/1.1"),
            "POST /events HTTP/1.1\r\n\r\n".to_owned(),
            "GET /events HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_owned(),
            "GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
            "GET /events HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_owned(),
            "GET /events HTTP/1.1\r\n".to_owned(),
            "not http\r\n\r\n".to_owned(),
        ] {
            assert!(sse_request(other.as_bytes()).is_none(), "{other:?}");
        }
        let empty_body = "GET /events HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        assert!(sse_request(empty_body.as_bytes()).is_some());
    }

    #[test]
    fn a_get_of_the_websocket_path_alone_is_served_directly() {
        let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
        let head = format!("GET /ws?user=a HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n");
        let (direct, request) = direct_request(head.as_bytes()).expect("a WebSocket request");
        assert_eq!(direct, Direct::WebSocket);
        assert_eq!(request.uri().query(), Some("user=a"));
        assert_eq!(request.headers()["upgrade"], "websocket");
        // Without the upgrade headers too: its handshake check answers 400, as under hyper.
        let plain = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            direct_request(plain.as_bytes()),
            Some((Direct::WebSocket, _))
        ));
        for other in [
            format!("GET /ws HTTP/1.0\r\n{upgrade}\r\n"),
            format!("GET /ws/echo HTTP/1.1\r\n{upgrade}\r\n"),
            format!("POST /ws HTTP/1.1\r\n{upgrade}\r\n"),
            format!("GET /ws HTTP/1.1\r\n{upgrade}Content-Length: 3\r\n\r\nabc"),
            // A frame sent before the handshake's answer: hyper's upgrade hands it on.
            format!("GET /ws HTTP/1.1\r\n{upgrade}\r\nframe"),
        ] {
            assert!(direct_request(other.as_bytes()).is_none(), "{other:?}");
        }
    }

    #[test]
    fn the_routes_given_to_the_raw_path_are_the_ones_it_serves() {
        use crate::service::ROUTES;
        for route in &ROUTES {
            let head = format!(
                "{} {}?user=a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\n\r\n",
                route.method, route.path
            );
            let head = match route.endpoint {
                // A stream with an upgrade is hyper's: ask for it plainly.
                Endpoint::Sse => head.replace("Upgrade: websocket\r\nConnection: Upgrade\r\n", ""),
                _ => head,
            };
            let served = direct_request(head.as_bytes()).map(|(direct, _)| direct);
            let expected = match (route.first_request, route.endpoint) {
                (FirstRequest::Hyper, _) => None,
                (FirstRequest::Raw, Endpoint::Sse) => Some(Direct::Sse),
                (FirstRequest::Raw, Endpoint::WebSocket) => Some(Direct::WebSocket),
                (FirstRequest::Raw, Endpoint::Stomp) => Some(Direct::Stomp),
                (FirstRequest::Raw, endpoint) => panic!("the raw path cannot serve {endpoint:?}"),
            };
            assert_eq!(served, expected, "{}", route.path);
        }
    }
}
