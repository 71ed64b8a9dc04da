//! `roomcast token`: mints a connection token (with room grants) or a subscription token for
//! one room, signed with the server's HS256 secret or an RS256/ES256 private key.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roomcast_core::names::{RoomName, UserId};

use super::tokens::{Audience, Claims, unix_now};

/// `roomcast token`'s arguments.
#[derive(Args)]
pub(crate) struct TokenArgs {
    /// The user id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// The server's JWT secret (HS256).
    #[arg(
        long,
        env = "ROOMCAST_JWT_SECRET",
        hide_env_values = true,
        required_unless_present = "key"
    )]
    secret: Option<String>,
    /// Sign with this PEM private key instead (RSA: RS256, EC P-256: ES256); the server checks
    /// with its public key (`--jwt-public-key` or `--jwt-jwks`).
    #[arg(long, conflicts_with = "secret")]
    key: Option<PathBuf>,
    /// The key's id (`kid`), for a server with a JWKS file.
    #[arg(long)]
    kid: Option<String>,
    /// How long the token is valid (`30m`, `1h`, `7days`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Room patterns the user may join and read, comma-separated (`private:alice-*,team-1/*`).
    #[arg(long, value_delimiter = ',')]
    rooms: Vec<String>,
    /// Room patterns the user may publish to, comma-separated.
    #[arg(long, value_delimiter = ',')]
    publish: Vec<String>,
    /// Mint a subscription token for this one room instead: it admits the user to one join.
    #[arg(long, conflicts_with_all = ["rooms", "publish"])]
    room: Option<String>,
    /// The `iss` claim, for a server started with `--jwt-issuer`.
    #[arg(long)]
    issuer: Option<String>,
    /// The `aud` claim, for a server started with `--jwt-audience`.
    #[arg(long)]
    audience: Option<String>,
}

pub(crate) fn token(args: TokenArgs) -> Result<(), String> {
    println!("{}", mint(&args)?);
    Ok(())
}

fn mint(args: &TokenArgs) -> Result<String, String> {
    let user = UserId::new(&args.user).map_err(|error| format!("user {:?} {error}", args.user))?;
    if let Some(room) = &args.room {
        RoomName::new(room).map_err(|error| format!("room {room:?} {error}"))?;
    }
    let now = unix_now()?;
    let claims = Claims {
        sub: user.as_str().to_owned(),
        exp: Some(now.saturating_add(args.ttl.as_secs())),
        iat: Some(now),
        iss: args.issuer.clone(),
        aud: args.audience.clone().map(Audience::One),
        rooms: args.rooms.clone(),
        publish: args.publish.clone(),
        room: args.room.clone(),
        ..Claims::default()
    };
    let (key, algorithm) = match (&args.secret, &args.key) {
        (_, Some(path)) => {
            let pem = std::fs::read(path).map_err(|e| format!("key {}: {e}", path.display()))?;
            if let Ok(key) = EncodingKey::from_ec_pem(&pem) {
                (key, Algorithm::ES256)
            } else {
                let key = EncodingKey::from_rsa_pem(&pem).map_err(|_| {
                    format!(
                        "key {}: not a PEM RSA or EC P-256 private key",
                        path.display()
                    )
                })?;
                (key, Algorithm::RS256)
            }
        }
        (Some(secret), None) if !secret.is_empty() => (
            EncodingKey::from_secret(secret.as_bytes()),
            Algorithm::HS256,
        ),
        _ => return Err("give --secret (not empty) or --key".into()),
    };
    let mut header = Header::new(algorithm);
    header.kid = args.kid.clone();
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|error| format!("could not sign the token: {error}"))
}

/// A token for `user`, valid for `ttl`, signed with `secret`: for the server's own tests.
#[cfg(test)]
pub(crate) fn for_user(user: &str, secret: &str, ttl: Duration) -> String {
    let args = TokenArgs {
        user: user.to_owned(),
        secret: Some(secret.to_owned()),
        key: None,
        kid: None,
        ttl,
        rooms: Vec::new(),
        publish: Vec::new(),
        room: None,
        issuer: None,
        audience: None,
    };
    mint(&args).expect("mints")
}
