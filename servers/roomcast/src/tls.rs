//! TLS for `roomcast serve`: the certificate chain and its key from PEM files, rustls with ring,
//! ALPN `h2` then `http/1.1` (a browser then carries every tab's streams on one connection).
//! The pair is read again on SIGHUP and when either file changes (checked every 2 s), and a new
//! handshake gets the new one: a renewal costs no connection. A pair that does not read, or
//! whose key does not match its certificate, is refused at start with the reason, and on a
//! reload is logged and the one in use kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate in use, and where it is read from.
#[derive(Debug)]
pub(crate) struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last read.
    read_at: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl Certificates {
    /// Reads the pair, or says why it cannot serve.
    pub(crate) fn open(cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let stamps = (modified(cert), modified(key));
        let current = load(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(current),
            read_at: Mutex::new(stamps),
        }))
    }

    /// The server's TLS configuration: this resolver, ALPN `h2` and `http/1.1`.
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS: {error}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reads the pair again if `forced` (SIGHUP) or if a file changed since: `Ok(true)` when a
    /// new pair is in use, `Err` (the old one stays) when the new one does not serve.
    pub(crate) fn reload(&self, forced: bool) -> Result<bool, String> {
        let stamps = (modified(&self.cert), modified(&self.key));
        {
            let read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
            if !forced && *read_at == stamps {
                return Ok(false);
            }
        }
        let fresh = load(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        *self.read_at.lock().unwrap_or_else(|p| p.into_inner()) = stamps;
        Ok(true)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// rustls's ring provider: the crypto the workspace already builds (the Redis client's TLS).
/// rustls 0.23.48 deprecates it for want of post-quantum key exchange, which aws-lc-rs has;
/// moving to it is a change of the whole workspace's crypto (and of its C build), left for one.
#[allow(deprecated)]
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The chain of `cert` with the key of `key`, checked to belong together.
fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|error| format!("tls_cert {}: {error}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("tls_cert {}: {error}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls_cert {}: no PEM certificate in it",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|error| {
        format!(
            "tls_key {}: no PEM private key in it ({error})",
            key.display()
        )
    })?;
    let signing = any_supported_type(&private)
        .map_err(|error| format!("tls_key {}: {error}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        format!(
            "tls_key {} is not the key of the certificate in {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert, certified.cert.pem()).expect("write");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
        (cert, key)
    }

    #[test]
    fn a_pair_loads_and_reloads_and_a_bad_one_says_why() {
        let dir = std::env::temp_dir().join(format!("roomcast-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert, key) = pair(&dir, "a");
        let (other_cert, other_key) = pair(&dir, "b");
        let certificates = Certificates::open(&cert, &key).expect("a pair");
        assert!(certificates.server_config().is_ok());
        assert_eq!(certificates.reload(false), Ok(false), "nothing changed");

        let mismatched = Certificates::open(&cert, &other_key).expect_err("refused");
        assert!(
            mismatched.contains("is not the key of the certificate"),
            "{mismatched}"
        );
        let missing = Certificates::open(&dir.join("none.pem"), &key).expect_err("refused");
        assert!(missing.contains("none.pem"), "{missing}");
        std::fs::write(dir.join("empty.pem"), "").expect("write");
        let empty = Certificates::open(&dir.join("empty.pem"), &key).expect_err("refused");
        assert!(empty.contains("no PEM certificate"), "{empty}");

        // A renewal: the new pair is served; a broken one keeps the old.
        let before = certificates.current.read().expect("lock").cert.clone();
        std::fs::copy(&other_cert, &cert).expect("copy");
        std::fs::copy(&other_key, &key).expect("copy");
        assert_eq!(certificates.reload(true), Ok(true));
        let after = certificates.current.read().expect("lock").cert.clone();
        assert_ne!(before, after);
        std::fs::write(&key, "garbage").expect("write");
        assert!(certificates.reload(true).is_err());
        assert_eq!(
            certificates.current.read().expect("lock").cert,
            after,
            "kept"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
