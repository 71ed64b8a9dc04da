//! One HTTP connection: hyper's HTTP/1.1 server with upgrades, a deadline on request headers,
//! and graceful shutdown.

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use roomcast_io::Shutdown;

use crate::service::Options;

/// Serves one connection until it ends. Request headers must arrive within
/// `options.session.config.handshake_timeout` (a client that trickles them, slowloris, is cut
/// off). Once `shutdown` is triggered, an idle keep-alive connection closes at once and a busy
/// one after its response (an SSE stream ends with its session's shutdown).
pub async fn serve_connection<I, S, B, T>(
    io: I,
    service: S,
    timer: T,
    options: &Options,
    shutdown: &Shutdown,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: hyper::rt::Timer + Send + Sync + 'static,
{
    let connection = http1::Builder::new()
        .timer(timer)
        .header_read_timeout(options.session.config.handshake_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let served = futures_lite::future::or(async { Some((&mut connection).await) }, async {
        shutdown.triggered().await;
        None
    })
    .await;
    if served.is_none() {
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}
