//! The answers every route shares: JSON bodies, the JSON error (with `Allow` for a 405), static
//! assets, and what a stopped hub means for HTTP.

use http::{HeaderValue, Response, StatusCode, header};
use roomcast_hyper::{Body, Refusal};
use roomcast_io::HubGone;

pub(crate) fn gone(_: HubGone) -> Refusal {
    Refusal::new(503, "the hub has stopped")
}

pub(crate) fn not_allowed(allow: &'static str) -> Refusal {
    Refusal::new(405, format!("only {allow} is served here"))
}

pub(crate) fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(text));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    roomcast_hyper::json(status, value.to_string())
}

/// The same JSON error as the roomcast endpoints give, with `Allow` for a 405.
pub(crate) fn error(refusal: &Refusal) -> Response<Body> {
    let mut response = refusal.response();
    if refusal.status == 405 {
        let allow = if refusal.message.contains("POST") {
            "POST"
        } else {
            "GET"
        };
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}
