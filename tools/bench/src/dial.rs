//! How the load clients reach a server: plain TCP, or TLS to a `roomcast serve --tls-cert`
//! whose certificate this run made (and only these clients trust), with HTTP/1.1 or HTTP/2
//! chosen by ALPN. HTTP/2 SSE receivers share connections: receiver `i` rides connection
//! `i / streams_per_connection`, opened by the first of them to need it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::client::{AbortOnDrop, OP_TIMEOUT, tcp};
use super::http::SseClient;

/// The name the certificate is for, and the clients ask for.
const NAME: &str = "localhost";

/// A self-signed certificate for `localhost` and its key, written into a directory of the run.
pub(crate) struct Certificate {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    roots: RootCertStore,
}

impl Certificate {
    /// Makes one in `dir` (created).
    pub(crate) fn make(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let made = rcgen::generate_simple_self_signed(vec![NAME.to_owned()])
            .map_err(|e| format!("certificate: {e}"))?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
        std::fs::write(&key, made.signing_key.serialize_pem())
            .map_err(|e| format!("{}: {e}", key.display()))?;
        let mut roots = RootCertStore::empty();
        roots
            .add(made.cert.der().clone())
            .map_err(|e| format!("trust the certificate: {e}"))?;
        Ok(Self { cert, key, roots })
    }

    /// `roomcast serve`'s flags to serve it.
    pub(crate) fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// How to reach the server under test.
#[derive(Clone, Default)]
pub(crate) enum Dial {
    #[default]
    Plain,
    Tls(Arc<Tls>),
}

/// TLS clients trusting one [`Certificate`], and the shared HTTP/2 connections.
pub(crate) struct Tls {
    http1: TlsConnector,
    h2: TlsConnector,
    /// SSE streams per HTTP/2 connection; 0: each SSE receiver has an HTTP/1.1 connection.
    streams_per_connection: usize,
    lanes: Vec<OnceCell<Lane>>,
}

/// One HTTP/2 connection, its streams opened by cloning the sender.
struct Lane {
    sender: http2::SendRequest<Empty<Bytes>>,
    _conn: AbortOnDrop,
}

impl Dial {
    /// TLS to a server serving `certificate`, every handshake a full one (no resumption: the
    /// cost of a client the server has not seen); SSE receivers `streams_per_connection` to an
    /// HTTP/2 connection (0: HTTP/1.1, one each), `receivers` of them at most.
    pub(crate) fn tls(
        certificate: &Certificate,
        streams_per_connection: usize,
        receivers: usize,
    ) -> Result<Self, String> {
        let connector = |alpn: &[u8]| -> Result<TlsConnector, String> {
            let mut config = ClientConfig::builder_with_provider(Arc::new(provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS client: {e}"))?
                .with_root_certificates(certificate.roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            config.resumption = rustls::client::Resumption::disabled();
            Ok(TlsConnector::from(Arc::new(config)))
        };
        let lanes = receivers.div_ceil(streams_per_connection.max(1));
        Ok(Self::Tls(Arc::new(Tls {
            http1: connector(b"http/1.1")?,
            h2: connector(b"h2")?,
            streams_per_connection,
            lanes: (0..lanes).map(|_| OnceCell::new()).collect(),
        })))
    }

    /// An HTTP/1.1 client connection, its connection task running until the handle drops.
    pub(crate) async fn http1<B>(
        &self,
        addr: SocketAddr,
    ) -> Result<(http1::SendRequest<B>, AbortOnDrop), String>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tcp = tcp(addr).await?;
        match self {
            Self::Plain => handshake1(TokioIo::new(tcp)).await,
            Self::Tls(tls) => handshake1(TokioIo::new(tls_stream(&tls.http1, tcp).await?)).await,
        }
    }

    /// A TLS connection negotiating `http/1.1` (for a WebSocket over TLS).
    pub(crate) async fn tls_http1(&self, addr: SocketAddr) -> Result<TlsStream<TcpStream>, String> {
        match self {
            Self::Plain => Err("not a TLS dial".into()),
            Self::Tls(tls) => tls_stream(&tls.http1, tcp(addr).await?).await,
        }
    }

    /// The SSE stream at `path` for receiver `i`: over HTTP/2 on its shared connection, or an
    /// HTTP/1.1 connection of its own.
    pub(crate) async fn sse(
        &self,
        addr: SocketAddr,
        path: &str,
        i: usize,
    ) -> Result<SseClient, String> {
        let Self::Tls(tls) = self else {
            return SseClient::connect(addr, path).await;
        };
        if tls.streams_per_connection == 0 {
            let (mut sender, conn) = self.http1(addr).await?;
            let request = sse_request(path, &addr.to_string())?;
            let response = sender.send_request(request).await;
            return SseClient::from_response(path, response, Some(conn));
        }
        let lane = tls
            .lanes
            .get(i / tls.streams_per_connection)
            .ok_or_else(|| format!("receiver {i}: more receivers than HTTP/2 connections"))?;
        let lane = lane
            .get_or_try_init(|| async {
                let stream = tls_stream(&tls.h2, tcp(addr).await?).await?;
                let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
                let conn = AbortOnDrop(tokio::spawn(async move {
                    let _ = conn.await;
                }));
                Ok::<_, String>(Lane {
                    sender,
                    _conn: conn,
                })
            })
            .await?;
        let mut sender = lane.sender.clone();
        // HTTP/2 takes the authority and scheme from the URI.
        let uri = format!("https://{NAME}:{}{path}", addr.port());
        let request = sse_request(&uri, &format!("{NAME}:{}", addr.port()))?;
        let response = sender.send_request(request).await;
        SseClient::from_response(path, response, None)
    }
}

/// The request for an SSE stream.
fn sse_request(uri: &str, host: &str) -> Result<Request<Empty<Bytes>>, String> {
    Request::get(uri)
        .header(header::HOST, host)
        .header(header::ACCEPT, "text/event-stream")
        .body(Empty::new())
        .map_err(|e| e.to_string())
}

async fn handshake1<I, B>(io: I) -> Result<(http1::SendRequest<B>, AbortOnDrop), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    }));
    Ok((sender, conn))
}

async fn tls_stream(
    connector: &TlsConnector,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(NAME).map_err(|e| e.to_string())?;
    tokio::time::timeout(OP_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake: timed out".to_owned())?
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// rustls's ring provider, as the server's (`servers/roomcast/src/tls.rs` says why ring),
/// offering X25519 first as browsers do. ring's own order puts P-384 first, and a server takes
/// the client's first group it supports: ring's P-384 is generic code, about 0.8 ms of server
/// CPU per handshake more than X25519 (measured with this tool), so a client on ring's order
/// would measure ring's P-384, not what browsers cost.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    provider
}
