//! The server's routes: the demo page and its client library, the admin page, the OpenAPI
//! document, health, metrics and status (`app`), the HTTP API (`api`), and everything else to
//! the roomcast service (`/ws`, `/ws/echo`, `/events`, `/poll`, STOMP, SockJS).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use roomcast_hyper::Body;
use roomcast_io::Runtime;

use crate::admin::ADMIN_HTML;
use crate::app::App;
use crate::guard::check_key;
use crate::reply::{asset, error, not_allowed};

const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The client library, from its package (`clients/js`), as `npm` installs it.
const ROOMCAST_JS: &str = include_str!("../../../clients/js/roomcast.js");
/// The API's OpenAPI document, served without a key: it tells nothing a caller can misuse.
const OPENAPI_JSON: &str = include_str!("../assets/openapi.json");

/// [`App`] for one connection, as hyper wants a service.
pub(crate) struct AppService<R: Runtime> {
    app: Arc<App<R>>,
    peer: IpAddr,
}

// Not derived: that would ask for `R: Clone` on the struct's own terms.
impl<R: Runtime> Clone for AppService<R> {
    fn clone(&self) -> Self {
        Self {
            app: Arc::clone(&self.app),
            peer: self.peer,
        }
    }
}

impl<R: Runtime> App<R> {
    pub(crate) fn service(self: &Arc<Self>, peer: SocketAddr) -> AppService<R> {
        AppService {
            app: self.clone(),
            peer: peer.ip(),
        }
    }

    async fn handle(self: Arc<Self>, peer: IpAddr, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let get = method == Method::GET || method == Method::HEAD;
        let response = match path.as_str() {
            "/" | "/index.html" if get => Ok(asset(INDEX_HTML, "text/html; charset=utf-8")),
            "/roomcast.js" if get => Ok(asset(ROOMCAST_JS, "text/javascript; charset=utf-8")),
            "/healthz" if get => Ok(self.health()),
            "/api/openapi.json" if get => Ok(asset(OPENAPI_JSON, "application/json")),
            "/admin" if get => Ok(asset(ADMIN_HTML, "text/html; charset=utf-8")),
            // The metrics key, or the API key the admin page holds for its other calls.
            "/api/admin/stream" if get => check_key(&request, self.metrics_key.as_deref())
                .or_else(|refusal| match self.api_key.as_deref() {
                    Some(key) => check_key(&request, Some(key)),
                    None => Err(refusal),
                })
                .map(|()| self.admin_stream()),
            "/metrics" if get => match check_key(&request, self.metrics_key.as_deref()) {
                Ok(()) => self.metrics().await,
                Err(refusal) => Err(refusal),
            },
            "/api/status" if get => match check_key(&request, self.metrics_key.as_deref()) {
                Ok(()) => self.status().await,
                Err(refusal) => Err(refusal),
            },
            "/" | "/index.html" | "/roomcast.js" | "/healthz" | "/metrics" | "/api/status"
            | "/api/openapi.json" | "/admin" | "/api/admin/stream" => Err(not_allowed("GET")),
            _ if path.starts_with("/api/") => crate::api::handle(&self, request).await,
            _ => return self.roomcast.handle(peer, request).await,
        };
        response.unwrap_or_else(|refusal| error(&refusal))
    }
}

impl<R: Runtime> hyper::service::Service<Request<Incoming>> for AppService<R> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(Arc::clone(&this.app).handle(this.peer, request).await) })
    }
}
