//! What the answers of several endpoints share: a JSON reply (long-poll, every refusal) and the
//! CORS headers for an allowed origin (SSE, long-poll).

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::Body;

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

/// Lets the allowed `origin` read a cross-origin response (SSE, long-poll).
pub(crate) fn allow_origin<B>(response: &mut Response<B>, origin: Option<HeaderValue>) {
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}
