//! Who a client is and what it may do, as the server decides it:
//!
//! - `keys.rs`: the keys tokens are checked with (HS256 secret, RS256/ES256 PEM, JWKS);
//! - `tokens.rs`: the claims, the checks of connection and subscription tokens;
//! - `mint.rs`: `roomcast token`, which mints both;
//! - `namespaces.rs`: the namespaces' policies from the config file;
//! - here: the authentication hook and the API key's comparison.
//!
//! The policies themselves are the core's (`roomcast_core::access`); see docs/security.md.

mod keys;
pub(crate) mod mint;
pub(crate) mod namespaces;
mod tokens;

use std::sync::Arc;

use roomcast_hyper::{Authenticate, Handshake, Refusal};

use crate::config::Settings;

pub(crate) use keys::Keys;
pub(crate) use tokens::Verifier;

/// The verifier of the settings' keys, or `None` in development mode (no key).
pub(crate) fn verifier(settings: &Settings) -> Result<Option<Arc<Verifier>>, String> {
    let keys = match (
        &settings.jwt_secret,
        &settings.jwt_public_key,
        &settings.jwt_jwks,
    ) {
        (Some(secret), _, _) => Keys::secret(secret),
        (_, Some(path), _) => Keys::pem(path)?,
        (_, _, Some(path)) => Keys::jwks(path)?,
        _ => return Ok(None),
    };
    let (issuer, audience) = (settings.jwt_issuer.clone(), settings.jwt_audience.clone());
    Ok(Some(Arc::new(Verifier::new(keys, issuer, audience))))
}

/// The authentication hook for a verifier: the token from `?token=` or
/// `Authorization: Bearer`, checked.
pub(crate) fn authenticate(verifier: Arc<Verifier>) -> Authenticate {
    Arc::new(move |handshake: &Handshake<'_>| {
        let token = handshake.token().ok_or_else(|| {
            Refusal::unauthorized("no token: connect with ?token=JWT or Authorization: Bearer JWT")
        })?;
        verifier
            .connection(&token)
            .map_err(|why| Refusal::unauthorized(format!("the token {why}")))
    })
}

/// Compares a presented key with the configured one in time independent of where they differ.
pub(crate) fn same_key(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    let differ = a
        .iter()
        .zip(b.iter())
        .fold(a.len() ^ b.len(), |acc, (x, y)| acc | usize::from(x ^ y));
    differ == 0
}
