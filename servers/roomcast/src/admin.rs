//! The admin dashboard: `/admin`, one page with no build step and nothing from a CDN (its
//! charts are drawn on canvas by hand), and `/api/admin/stream`, the SSE stream of this node's
//! figures it draws from, one event a second. The page is open; everything it shows comes
//! through the stream and the API, behind the metrics key (else the API key) and the API key,
//! which the page sends as `Authorization: Bearer` (it reads the stream with `fetch`, as an
//! `EventSource` cannot send a header).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use roomcast_hyper::Body;
use roomcast_io::Runtime;

use crate::app::App;

/// The page.
pub(crate) const ADMIN_HTML: &str = include_str!("../assets/admin.html");

/// How often the stream sends the figures.
const EVERY: Duration = Duration::from_secs(1);

impl<R: Runtime> App<R> {
    /// `/api/admin/stream`: `event: figures` with `/api/status`'s figures and the traffic
    /// counters since the start, at once and then every second, until the client goes or the
    /// server drains.
    pub(crate) fn admin_stream(self: &Arc<Self>) -> Response<Body> {
        let app = Arc::clone(self);
        let events = futures_lite::stream::unfold((app, true), |(app, first)| async move {
            if !first {
                let runtime = app.roomcast.runtime();
                runtime.sleep_until(runtime.now() + EVERY).await;
            }
            if app.roomcast.shutdown().reconnect_ms().is_some() {
                return None; // draining: the page reconnects to another node, or later
            }
            let mut figures = app.status_value().await.ok()?;
            let (frames_in, frames_out, deliveries) = app.metrics.traffic();
            figures["frames_in"] = frames_in.into();
            figures["frames_out"] = frames_out.into();
            figures["deliveries"] = deliveries.into();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            figures["at_ms"] = u64::try_from(now.as_millis()).unwrap_or(u64::MAX).into();
            let event = format!("event: figures\ndata: {figures}\n\n");
            Some((Bytes::from(event), (app, false)))
        });
        let mut response = Response::new(Body::chunks(events));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
