//! Who a client is: HS256 JSON Web Tokens (jsonwebtoken, RustCrypto backend), `roomcast token`,
//! and the API key.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use roomcast_core::names::UserId;
use roomcast_hyper::{Authenticate, Handshake, Refusal};
use serde::{Deserialize, Serialize};

/// The claims roomcast reads: `sub` is the user id, `exp` (seconds since the epoch) is honoured
/// to the second when present.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// The authentication hook for a JWT secret: the token from `?token=` or
/// `Authorization: Bearer`, HS256 only, `exp` honoured with no leeway.
pub(crate) fn jwt(secret: &str) -> Authenticate {
    let key = DecodingKey::from_secret(secret.as_bytes());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    // Tokens without `exp` are accepted (they never expire); with one, it is checked.
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    Arc::new(move |handshake: &Handshake<'_>| {
        let token = handshake.token().ok_or_else(|| {
            Refusal::unauthorized("no token: connect with ?token=JWT or Authorization: Bearer JWT")
        })?;
        let claims = jsonwebtoken::decode::<Claims>(&token, &key, &validation)
            .map_err(|error| Refusal::unauthorized(why(error.kind())))?
            .claims;
        UserId::new(&claims.sub)
            .map_err(|error| Refusal::unauthorized(format!("the token's sub {error}")))
    })
}

/// Why a token is refused, for the client.
fn why(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::InvalidSignature => "the token's signature is wrong".into(),
        ErrorKind::InvalidAlgorithm => "the token must be signed with HS256".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
        ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => {
            "the token's claims must hold a string sub".into()
        }
        _ => "the token is not a well-formed JWT".into(),
    }
}

/// A token for `user`, valid for `ttl`.
pub(crate) fn mint(user: &UserId, secret: &str, ttl: Duration) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_owned())?
        .as_secs();
    let claims = Claims {
        sub: user.as_str().to_owned(),
        exp: Some(now.saturating_add(ttl.as_secs())),
        iat: Some(now),
    };
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|error| format!("could not sign the token: {error}"))
}

/// `roomcast token`: mints a JWT for trying the server.
#[derive(Args)]
pub(crate) struct TokenArgs {
    /// The user id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// The server's JWT secret.
    #[arg(long, env = "ROOMCAST_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// How long the token is valid (`30m`, `1h`, `7days`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

pub(crate) fn token(args: TokenArgs) -> Result<(), String> {
    let user = UserId::new(&args.user).map_err(|error| format!("user {:?} {error}", args.user))?;
    if args.secret.is_empty() {
        return Err("the secret must not be empty".into());
    }
    println!("{}", mint(&user, &args.secret, args.ttl)?);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Uri};

    fn check(hook: &Authenticate, query: &str) -> Result<String, Refusal> {
        let uri: Uri = format!("/ws?{query}").parse().expect("uri");
        let headers = HeaderMap::new();
        let handshake = Handshake {
            uri: &uri,
            headers: &headers,
            peer: [127, 0, 0, 1].into(),
        };
        hook(&handshake).map(|user| user.as_str().to_owned())
    }

    fn user(name: &str) -> UserId {
        UserId::new(name).expect("valid")
    }

    #[test]
    fn a_minted_token_names_its_user() {
        let hook = jwt("s3cret");
        let token = mint(&user("alice"), "s3cret", Duration::from_secs(60)).expect("token");
        assert_eq!(check(&hook, &format!("token={token}")), Ok("alice".into()));
    }

    #[test]
    fn bad_tokens_are_refused_with_a_reason() {
        let hook = jwt("s3cret");
        let refused = |query: &str| check(&hook, query).expect_err("refused");
        assert!(refused("").message.contains("no token"));
        assert_eq!(refused("").status, 401);
        let other = mint(&user("alice"), "other", Duration::from_secs(60)).expect("token");
        assert!(
            refused(&format!("token={other}"))
                .message
                .contains("signature")
        );
        assert!(refused("token=not.a.jwt").message.contains("well-formed"));

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let expired = Claims {
            sub: "alice".into(),
            exp: Some(now - 1),
            iat: None,
        };
        let key = EncodingKey::from_secret(b"s3cret");
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &key).expect("token");
        assert!(
            refused(&format!("token={token}"))
                .message
                .contains("expired")
        );

        let hs512 =
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &expired, &key).expect("token");
        assert!(refused(&format!("token={hs512}")).message.contains("HS256"));

        let bad_user = Claims {
            sub: "a b\u{1}".into(),
            exp: None,
            iat: None,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &bad_user, &key).expect("token");
        assert!(refused(&format!("token={token}")).message.contains("sub"));
    }

    #[test]
    fn keys_compare_exactly() {
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abd", "abc"));
        assert!(!same_key("ab", "abc"));
        assert!(!same_key("", "abc"));
    }
}
