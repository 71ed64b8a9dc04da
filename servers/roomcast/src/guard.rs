//! What an API request must show before its body is read, so that a browser page on another
//! site cannot forge one: a JSON `Content-Type` (anything else is a "simple" request a page may
//! send without a CORS preflight: 415), no `Origin` unless it is listed (403), and the key
//! (401). And a body that must arrive within the handshake timeout (408), as headers must.

use std::time::Duration;

use http::{Request, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use roomcast_hyper::Refusal;
use roomcast_io::Runtime;

use crate::trust::same_key;

/// The checks of an API call, in order: origin (403), key (401), content type (415).
pub(crate) fn check_call<B>(
    request: &Request<B>,
    allowed_origins: &[String],
    key: Option<&str>,
) -> Result<(), Refusal> {
    check_origin(request, allowed_origins, key)?;
    check_key(request, key)?;
    check_json(request)
}

/// The checks of an API call that only reads: origin (403) and key (401).
pub(crate) fn check_read<B>(
    request: &Request<B>,
    allowed_origins: &[String],
    key: Option<&str>,
) -> Result<(), Refusal> {
    check_origin(request, allowed_origins, key)?;
    check_key(request, key)
}

/// A browser's `Origin` is refused unless listed (`--allowed-origins`, by name or `*`): the API
/// is for servers, which send none. With a key, a page of the server's own origin passes too
/// (the admin page): the key is what lets it in. Without one, it does not: a page on another
/// site whose name was rebound to this address would look same-origin.
fn check_origin<B>(
    request: &Request<B>,
    allowed: &[String],
    key: Option<&str>,
) -> Result<(), Refusal> {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let text = origin.to_str().unwrap_or("");
    if allowed
        .iter()
        .any(|a| a == text || (a == "*" && text != "null"))
    {
        return Ok(());
    }
    if key.is_some() && same_origin(request, text) {
        return Ok(());
    }
    Err(Refusal::new(
        403,
        format!("origin {text:?} may not call the API (--allowed-origins)"),
    ))
}

/// Whether `origin` (`http://host:port`) names the authority the request was sent to (its
/// `Host`, or an HTTP/2 request's `:authority`).
fn same_origin<B>(request: &Request<B>, origin: &str) -> bool {
    let authority = request.uri().authority().map(|a| a.as_str()).or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
    });
    let Some(authority) = authority else {
        return false;
    };
    ["http://", "https://"]
        .iter()
        .any(|scheme| origin.strip_prefix(scheme) == Some(authority))
}

/// `Content-Type: application/json` (parameters allowed), else 415.
fn check_json<B>(request: &Request<B>) -> Result<(), Refusal> {
    let media = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match media {
        Some(media) if media.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(Refusal::new(
            415,
            "the API takes Content-Type: application/json only",
        )),
    }
}

/// With a key, `Authorization: Bearer KEY` is required (401).
pub(crate) fn check_key<B>(request: &Request<B>, key: Option<&str>) -> Result<(), Refusal> {
    let Some(key) = key else {
        return Ok(());
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(token) if same_key(token, key) => Ok(()),
        Some(_) => Err(Refusal::unauthorized("wrong key")),
        None => Err(Refusal::unauthorized(
            "this needs its key: Authorization: Bearer KEY",
        )),
    }
}

/// The whole body, at most `limit` bytes (413 beyond), within `timeout` (408 after).
pub(crate) async fn read_body<R: Runtime>(
    runtime: &R,
    request: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, Refusal> {
    let read = async {
        match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes().to_vec()),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                Err(Refusal::new(413, format!("the body is over {limit} bytes")))
            }
            Err(_) => Err(Refusal::new(400, "the body could not be read")),
        }
    };
    let late = async {
        runtime.sleep_until(runtime.now() + timeout).await;
        Err(Refusal::new(
            408,
            format!("the body did not arrive within {timeout:?}"),
        ))
    };
    futures_lite::future::or(read, late).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::post("/api/broadcast");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    fn status(result: Result<(), Refusal>) -> u16 {
        result.map_or_else(|refusal| refusal.status, |()| 200)
    }

    #[test]
    fn only_json_passes() {
        let json = [("content-type", "application/json; charset=utf-8")];
        assert_eq!(status(check_call(&request(&json), &[], None)), 200);
        for simple in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let forged = request(&[("content-type", simple)]);
            assert_eq!(status(check_call(&forged, &[], None)), 415, "{simple}");
        }
        assert_eq!(status(check_call(&request(&[]), &[], None)), 415);
    }

    #[test]
    fn a_browser_origin_needs_to_be_listed() {
        let json = ("content-type", "application/json");
        let from = |origin| request(&[json, ("origin", origin)]);
        let listed = ["https://admin.example".to_owned()];
        assert_eq!(
            status(check_call(&from("https://evil.example"), &[], None)),
            403
        );
        assert_eq!(
            status(check_call(&from("https://evil.example"), &listed, None)),
            403
        );
        assert_eq!(
            status(check_call(&from("https://admin.example"), &listed, None)),
            200
        );
        assert_eq!(
            status(check_call(&from("null"), &["*".to_owned()], None)),
            403
        );
    }

    #[test]
    fn a_page_of_the_server_itself_passes_with_the_key_only() {
        let page = |origin| {
            request(&[
                ("content-type", "application/json"),
                ("host", "127.0.0.1:8080"),
                ("origin", origin),
                ("authorization", "Bearer k"),
            ])
        };
        assert_eq!(
            status(check_call(&page("http://127.0.0.1:8080"), &[], Some("k"))),
            200
        );
        assert_eq!(
            status(check_call(&page("https://127.0.0.1:8080"), &[], Some("k"))),
            200
        );
        for other in ["http://127.0.0.1:8081", "http://evil.example", "null"] {
            assert_eq!(
                status(check_call(&page(other), &[], Some("k"))),
                403,
                "{other}"
            );
        }
        // Over HTTP/2 the host is the request's `:authority`.
        let h2 = Request::post("https://roomcast.example/api/broadcast")
            .header("content-type", "application/json")
            .header("origin", "https://roomcast.example")
            .header("authorization", "Bearer k")
            .body(())
            .expect("request");
        assert_eq!(status(check_call(&h2, &[], Some("k"))), 200);
        // Without a key, its own origin is not enough: a rebound name looks the same.
        assert_eq!(
            status(check_call(&page("http://127.0.0.1:8080"), &[], None)),
            403
        );
    }

    #[test]
    fn the_key_is_checked_before_the_body() {
        let json = ("content-type", "application/json");
        assert_eq!(status(check_call(&request(&[json]), &[], Some("k"))), 401);
        let wrong = request(&[json, ("authorization", "Bearer x")]);
        assert_eq!(status(check_call(&wrong, &[], Some("k"))), 401);
        let right = request(&[json, ("authorization", "Bearer k")]);
        assert_eq!(status(check_call(&right, &[], Some("k"))), 200);
    }
}
