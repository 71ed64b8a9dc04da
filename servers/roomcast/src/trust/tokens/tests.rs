//! One test per rule of the token checks, against tokens signed here.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use roomcast_core::names::{RoomName, UserId};
use roomcast_io::Credentials;

use super::*;

fn hs256(claims: &Claims) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(b"s3cret"),
    )
    .expect("signs")
}

fn now() -> u64 {
    unix_now().expect("clock")
}

fn claims(sub: &str) -> Claims {
    Claims {
        sub: sub.into(),
        exp: Some(now() + 60),
        ..Claims::default()
    }
}

fn verifier() -> Verifier {
    Verifier::new(Keys::secret("s3cret"), None, None)
}

fn refused(verifier: &Verifier, claims: &Claims) -> String {
    verifier.connection(&hs256(claims)).expect_err("refused")
}

#[test]
fn a_connection_token_names_its_user_and_grants() {
    let token = crate::trust::mint::for_user("alice", "s3cret", Duration::from_secs(60));
    let identity = verifier().connection(&token).expect("valid");
    assert_eq!(identity.user.as_str(), "alice");
    assert!(identity.expires.is_some());
    let granted = Claims {
        rooms: vec!["private:alice-*".into()],
        publish: vec!["team-1/*".into()],
        ..claims("alice")
    };
    let identity = verifier().connection(&hs256(&granted)).expect("valid");
    assert!(identity.grants.may_join("private:alice-bob"));
    assert!(!identity.grants.may_join("private:bob-carol"));
    assert!(identity.grants.may_publish("team-1/general"));
}

#[test]
fn times_are_honoured_and_exp_is_required() {
    let v = verifier();
    let expired = Claims {
        exp: Some(now() - 1),
        ..claims("alice")
    };
    assert_eq!(refused(&v, &expired), "has expired");
    let early = Claims {
        nbf: Some(now() + 3600),
        ..claims("alice")
    };
    assert_eq!(refused(&v, &early), "is not valid yet (nbf)");
    let forever = Claims {
        exp: None,
        ..claims("alice")
    };
    assert_eq!(refused(&v, &forever), "has no exp claim");
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let v = Verifier::new(
        Keys::secret("s3cret"),
        Some("https://auth.example".into()),
        Some("roomcast".into()),
    );
    let good = Claims {
        iss: Some("https://auth.example".into()),
        aud: Some(Audience::Many(vec!["other".into(), "roomcast".into()])),
        ..claims("alice")
    };
    assert!(v.connection(&hs256(&good)).is_ok());
    let other_iss = Claims {
        iss: Some("https://evil.example".into()),
        ..good_clone(&good)
    };
    assert_eq!(refused(&v, &other_iss), "is from another issuer (iss)");
    let no_iss = Claims {
        iss: None,
        ..good_clone(&good)
    };
    assert_eq!(refused(&v, &no_iss), "has no iss claim");
    let other_aud = Claims {
        aud: Some(Audience::One("billing".into())),
        ..good_clone(&good)
    };
    assert_eq!(refused(&v, &other_aud), "is for another audience (aud)");
    // Unconfigured, they are not looked at.
    assert!(verifier().connection(&hs256(&good)).is_ok());
}

fn good_clone(c: &Claims) -> Claims {
    Claims {
        sub: c.sub.clone(),
        exp: c.exp,
        iss: c.iss.clone(),
        aud: match &c.aud {
            Some(Audience::One(a)) => Some(Audience::One(a.clone())),
            Some(Audience::Many(a)) => Some(Audience::Many(a.clone())),
            None => None,
        },
        ..Claims::default()
    }
}

#[test]
fn bad_tokens_are_refused_with_a_reason() {
    let v = verifier();
    assert_eq!(
        v.connection("not.a.jwt").expect_err("refused"),
        "is not a well-formed JWT"
    );
    let other = encode(
        &Header::new(Algorithm::HS256),
        &claims("alice"),
        &EncodingKey::from_secret(b"other"),
    )
    .expect("signs");
    assert_eq!(
        v.connection(&other).expect_err("refused"),
        "has a wrong signature"
    );
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &claims("alice"),
        &EncodingKey::from_secret(b"s3cret"),
    )
    .expect("signs");
    assert_eq!(
        v.connection(&hs512).expect_err("refused"),
        "must be signed with HS256"
    );
    assert!(refused(&v, &claims("a\u{1}b")).contains("sub"));
    let wide = Claims {
        rooms: vec!["bad room!".into()],
        ..claims("alice")
    };
    assert!(refused(&v, &wide).contains("rooms pattern"));
}

#[test]
fn a_subscription_token_admits_its_user_to_its_room_only() {
    let v = verifier();
    let alice = UserId::new("alice").expect("valid");
    let room = RoomName::new("private:alice-bob").expect("valid");
    let sub = Claims {
        room: Some(room.to_string()),
        ..claims("alice")
    };
    let token = hs256(&sub);
    assert_eq!(v.subscription(&alice, &room, &token), Ok(()));
    let other_room = RoomName::new("private:x").expect("valid");
    assert!(v.subscription(&alice, &other_room, &token).is_err());
    let bob = UserId::new("bob").expect("valid");
    assert!(v.subscription(&bob, &room, &token).is_err());
    let plain = hs256(&claims("alice"));
    assert_eq!(
        v.subscription(&alice, &room, &plain),
        Err("has no room claim".into())
    );
    assert!(
        v.connection(&token)
            .expect_err("not a connection token")
            .contains("subscription token")
    );
}

#[test]
fn es256_keys_check_from_a_pem_file_and_a_jwks_file() {
    let dir = std::env::temp_dir().join(format!("roomcast-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let public = dir.join("public.pem");
    std::fs::write(&public, pair.public_key_pem()).expect("write");
    let signing = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let token = encode(&header, &claims("alice"), &signing).expect("signs");

    let v = Verifier::new(Keys::pem(&public).expect("a key"), None, None);
    assert_eq!(v.connection(&token).expect("valid").user.as_str(), "alice");
    let hs = hs256(&claims("alice"));
    assert_eq!(
        v.connection(&hs).expect_err("refused"),
        "must be signed with ES256"
    );

    // The same key as a JWK: x and y of the uncompressed point.
    use base64::Engine as _;
    let raw = pair.public_key_raw();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    }]});
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks.to_string()).expect("write");
    let v = Verifier::new(Keys::jwks(&path).expect("a set"), None, None);
    assert_eq!(v.connection(&token).expect("valid").user.as_str(), "alice");
    header.kid = Some("k2".into());
    let unknown = encode(&header, &claims("alice"), &signing).expect("signs");
    assert!(v.connection(&unknown).expect_err("refused").contains("kid"));
    std::fs::write(&path, "{\"keys\":[]}").expect("write");
    assert!(Keys::jwks(&path).is_err());
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn rs256_keys_check_from_a_pem_file() {
    let dir = std::env::temp_dir().join(format!("roomcast-rsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed (.ci/run installs it)");
        assert!(status.success(), "openssl {args:?}");
    };
    let (private_path, public_path) = (
        private.to_str().expect("utf-8"),
        public.to_str().expect("utf-8"),
    );
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private_path,
    ]);
    run(&["pkey", "-in", private_path, "-pubout", "-out", public_path]);
    let signing = EncodingKey::from_rsa_pem(&std::fs::read(&private).expect("read")).expect("pem");
    let token = encode(&Header::new(Algorithm::RS256), &claims("alice"), &signing).expect("signs");
    let v = Verifier::new(Keys::pem(&public).expect("a key"), None, None);
    assert_eq!(v.connection(&token).expect("valid").user.as_str(), "alice");
    std::fs::write(&public, "not a key").expect("write");
    let refused = Keys::pem(&public).err().expect("refused");
    assert!(refused.contains("not a PEM"), "{refused}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
