//! What the answers of several endpoints share: a JSON reply (long-poll, every refusal) and the
//! CORS headers for an allowed origin (SSE, long-poll).

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::Body;

/// An allowed `Origin`, and whether it may read with credentials (it is listed by name).
pub(crate) struct Cors {
    pub(crate) origin: HeaderValue,
    pub(crate) credentials: bool,
}

/// Never cached, by any cache: SockJS's answers, which are per session.
pub(crate) const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";

/// A JSON reply, not to be cached.
pub fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Lets the allowed origin read a cross-origin response (SSE, long-poll); with the browser's
/// credentials only when it is listed by name.
pub(crate) fn allow_origin<B>(response: &mut Response<B>, cors: Option<Cors>) {
    if let Some(cors) = cors {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, cors.origin);
        if cors.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}
