//! The keys tokens are checked with: an HS256 secret, an RS256 or ES256 public key in a PEM
//! file, or a JWKS file of such keys chosen by the token's `kid`. One source at a time.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Header};

/// Where a token's signature is checked.
pub(crate) enum Keys {
    /// A shared secret: HS256.
    Secret(DecodingKey),
    /// One public key and its algorithm.
    Public(DecodingKey, Algorithm),
    /// Public keys by their `kid`.
    Set(Vec<(Option<String>, DecodingKey, Algorithm)>),
}

impl Keys {
    /// An HS256 secret.
    pub(crate) fn secret(secret: &str) -> Self {
        Self::Secret(DecodingKey::from_secret(secret.as_bytes()))
    }

    /// A PEM file holding an RSA (RS256) or an EC P-256 (ES256) public key.
    pub(crate) fn pem(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|error| format!("jwt_public_key {}: {error}", path.display()))?;
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Self::Public(key, Algorithm::ES256));
        }
        DecodingKey::from_rsa_pem(&pem)
            .map(|key| Self::Public(key, Algorithm::RS256))
            .map_err(|_| {
                format!(
                    "jwt_public_key {}: not a PEM RSA or EC P-256 public key",
                    path.display()
                )
            })
    }

    /// A JWKS file (`{"keys":[...]}`) of RSA (RS256) and EC P-256 (ES256) keys.
    pub(crate) fn jwks(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("jwt_jwks {}: {error}", path.display()))?;
        let set: JwkSet = serde_json::from_str(&text)
            .map_err(|error| format!("jwt_jwks {}: {error}", path.display()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => {
                    return Err(format!(
                        "jwt_jwks {}: only RSA and EC P-256 keys are supported",
                        path.display()
                    ));
                }
            };
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|error| format!("jwt_jwks {}: {error}", path.display()))?;
            keys.push((jwk.common.key_id.clone(), key, algorithm));
        }
        if keys.is_empty() {
            return Err(format!("jwt_jwks {}: holds no key", path.display()));
        }
        Ok(Self::Set(keys))
    }

    /// The key and algorithm that check a token with this header, or why none does.
    pub(crate) fn for_header(&self, header: &Header) -> Result<(&DecodingKey, Algorithm), String> {
        let (key, algorithm) = match self {
            Self::Secret(key) => (key, Algorithm::HS256),
            Self::Public(key, algorithm) => (key, *algorithm),
            Self::Set(keys) => {
                let found = match &header.kid {
                    Some(kid) => keys.iter().find(|(id, _, _)| id.as_deref() == Some(kid)),
                    None if keys.len() == 1 => keys.first(),
                    None => None,
                };
                let (_, key, algorithm) =
                    found.ok_or("names no key of the server's key set (kid)")?;
                (key, *algorithm)
            }
        };
        if header.alg != algorithm {
            return Err(format!("must be signed with {algorithm:?}"));
        }
        Ok((key, algorithm))
    }
}
