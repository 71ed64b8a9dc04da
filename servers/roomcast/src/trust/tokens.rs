//! Tokens: the claims roomcast reads, and their check. A **connection token** names the user
//! (`sub`) and may grant room patterns (`rooms` to join and read, `publish`); a **subscription
//! token** carries a `room` claim and admits its user to that one room, for one join. Both
//! need `exp`, honoured to the second; `nbf` is honoured; `iss` and `aud` are checked when the
//! server is told them. A subscription token is never taken as a connection token.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use roomcast_core::access::{Grants, Identity};
use roomcast_core::names::{RoomName, UserId};
use roomcast_io::Credentials;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::keys::Keys;

/// Most patterns a token may grant, per claim.
pub(crate) const MAX_PATTERNS: usize = 100;

/// The claims roomcast reads (and `roomcast token` writes).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    /// One audience or several (the library checks it against `--jwt-audience`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<Audience>,
    /// Connection tokens: room patterns the user may join (and read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) rooms: Vec<String>,
    /// Connection tokens: room patterns the user may publish to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) publish: Vec<String>,
    /// Subscription tokens: the one room it admits to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<String>,
}

/// `aud`: a string or an array of strings (RFC 7519, 4.1.3).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Checks tokens against the server's keys and expectations.
pub(crate) struct Verifier {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Verifier {
    pub(crate) fn new(keys: Keys, issuer: Option<String>, audience: Option<String>) -> Self {
        Self {
            keys,
            issuer,
            audience,
        }
    }

    /// The claims of a token whose signature, times, issuer and audience check out; `Err`
    /// completes "the token ...".
    fn claims(&self, token: &str) -> Result<Claims, String> {
        let header = decode_header(token).map_err(|error| why(error.kind()))?;
        let (key, algorithm) = self.keys.for_header(&header)?;
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| why(error.kind()))
    }

    /// Who a connection token names, what it grants, until when; `Err` completes "the token".
    pub(crate) fn connection(&self, token: &str) -> Result<Identity, String> {
        let claims = self.claims(token)?;
        if claims.room.is_some() {
            return Err(
                "is a subscription token (it has a room claim), not a connection token".into(),
            );
        }
        let user = UserId::new(&claims.sub).map_err(|error| format!("has a sub that {error}"))?;
        let grants = Grants {
            rooms: patterns(&claims.rooms, "rooms")?,
            publish: patterns(&claims.publish, "publish")?,
        };
        Ok(Identity {
            user,
            grants: Arc::new(grants),
            expires: claims.exp.map(|exp| UNIX_EPOCH + Duration::from_secs(exp)),
        })
    }
}

impl Credentials for Verifier {
    fn subscription(&self, user: &UserId, room: &RoomName, token: &str) -> Result<(), String> {
        let claims = self.claims(token)?;
        match claims.room.as_deref() {
            None => Err("has no room claim".into()),
            Some(_) if claims.sub != user.as_str() => Err(format!("is for user {:?}", claims.sub)),
            Some(other) if other != room.as_str() => Err(format!("is for room {other:?}")),
            Some(_) => Ok(()),
        }
    }

    fn refresh(&self, token: &str) -> Result<Identity, String> {
        self.connection(token)
            .map_err(|why| format!("the token {why}"))
    }
}

/// A claim's patterns, checked: at most [`MAX_PATTERNS`], each a room name that may hold `*`.
fn patterns(list: &[String], claim: &str) -> Result<Vec<SmolStr>, String> {
    if list.len() > MAX_PATTERNS {
        return Err(format!("grants more than {MAX_PATTERNS} {claim} patterns"));
    }
    list.iter()
        .map(|pattern| {
            let plain = pattern.replace('*', "x");
            RoomName::new(&plain)
                .map(|_| SmolStr::new(pattern))
                .map_err(|error| format!("has a {claim} pattern {pattern:?} that {error}"))
        })
        .collect()
}

/// Why a token is refused, completing "the token ...".
fn why(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "has expired".into(),
        ErrorKind::InvalidSignature => "has a wrong signature".into(),
        ErrorKind::InvalidAlgorithm => "is signed with another algorithm".into(),
        ErrorKind::ImmatureSignature => "is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "is from another issuer (iss)".into(),
        ErrorKind::InvalidAudience => "is for another audience (aud)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("has no {claim} claim"),
        ErrorKind::Json(_) => "has claims of the wrong types".into(),
        _ => "is not a well-formed JWT".into(),
    }
}

/// Seconds since the epoch, now.
pub(crate) fn unix_now() -> Result<u64, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|now| now.as_secs())
        .map_err(|_| "the system clock is before 1970".to_owned())
}

#[cfg(test)]
mod tests;
