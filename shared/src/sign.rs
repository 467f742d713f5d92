//! Ed25519 signatures over exact transmitted bytes.
//!
//! A [`Signed`] message carries its body as raw JSON and a signature over
//! `context || body`. The verifier checks the bytes it received, never a
//! re-serialisation, so there is no canonicalisation step to get wrong. The
//! context string separates domains: an ack signature can never pass as a
//! config signature.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, Verifier as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What a signature is for; part of the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A kiosk event envelope.
    Event,
    /// A kiosk heartbeat.
    Heartbeat,
    /// A hub application ack.
    Ack,
    /// A hub → kiosk operating config document.
    Config,
    /// A kiosk's upload of a content-addressed blob (the signed body is the hex sha256).
    Blob,
    /// A kiosk's availability question.
    Query,
    /// The hub's availability answer.
    Answer,
    /// A kiosk's MQTT password: its signature over `store/kiosk`.
    MqttLogin,
}

impl Context {
    fn prefix(self) -> &'static [u8] {
        match self {
            Context::Event => b"rxedge/v1/event\0",
            Context::Heartbeat => b"rxedge/v1/heartbeat\0",
            Context::Ack => b"rxedge/v1/ack\0",
            Context::Config => b"rxedge/v1/config\0",
            Context::Blob => b"rxedge/v1/blob\0",
            Context::Query => b"rxedge/v1/query\0",
            Context::Answer => b"rxedge/v1/answer\0",
            Context::MqttLogin => b"rxedge/v1/mqtt-login\0",
        }
    }
}

/// Why signing, parsing or verifying failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The message is not a signed JSON document.
    #[error("not a signed message: {0}")]
    Malformed(String),
    /// The signature does not match the body and key.
    #[error("signature does not verify")]
    BadSignature,
    /// A key is not valid base64 Ed25519.
    #[error("bad key: {0}")]
    BadKey(String),
    /// The body does not have the expected shape.
    #[error("body does not match the schema: {0}")]
    Body(String),
    /// Serialising the body failed (a bug, not bad input).
    #[error("cannot serialise body: {0}")]
    Serialize(String),
}

/// A signed JSON document as it travels over MQTT: `{"body":{...},"sig":"base64"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signed {
    /// The exact bytes that were signed.
    pub body: Box<RawValue>,
    /// Base64 Ed25519 signature over `context || body`.
    pub sig: String,
}

impl Signed {
    /// Serialise `value` and sign it.
    pub fn sign<T: Serialize>(
        key: &SigningKey,
        ctx: Context,
        value: &T,
    ) -> Result<Self, SignError> {
        let json = serde_json::to_string(value).map_err(|e| SignError::Serialize(e.to_string()))?;
        let sig = key.sign(&signed_bytes(ctx, json.as_bytes()));
        let body = RawValue::from_string(json).map_err(|e| SignError::Serialize(e.to_string()))?;
        Ok(Self {
            body,
            sig: B64.encode(sig.to_bytes()),
        })
    }

    /// Parse wire bytes (no verification yet).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SignError> {
        serde_json::from_slice(bytes).map_err(|e| SignError::Malformed(e.to_string()))
    }

    /// Wire bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        // Serialising a struct of a RawValue and a String cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Check the signature against `key` in context `ctx`.
    pub fn verify(&self, ctx: Context, key: &VerifyingKey) -> Result<(), SignError> {
        let raw = B64
            .decode(self.sig.as_bytes())
            .map_err(|_| SignError::BadSignature)?;
        let arr: [u8; 64] = raw.try_into().map_err(|_| SignError::BadSignature)?;
        let sig = Signature::from_bytes(&arr);
        key.verify(&signed_bytes(ctx, self.body.get().as_bytes()), &sig)
            .map_err(|_| SignError::BadSignature)
    }

    /// Decode the body into `T` (call after [`Signed::verify`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, SignError> {
        serde_json::from_str(self.body.get()).map_err(|e| SignError::Body(e.to_string()))
    }

    /// Verify, then decode.
    pub fn open<T: DeserializeOwned>(
        &self,
        ctx: Context,
        key: &VerifyingKey,
    ) -> Result<T, SignError> {
        self.verify(ctx, key)?;
        self.decode()
    }
}

/// Sign `body` in `ctx` and return the base64 signature (for uploads over HTTP).
pub fn sign_detached(key: &SigningKey, ctx: Context, body: &[u8]) -> String {
    use ed25519_dalek::Signer as _;
    B64.encode(key.sign(&signed_bytes(ctx, body)).to_bytes())
}

/// Check a base64 signature made by [`sign_detached`].
pub fn verify_detached(
    key: &VerifyingKey,
    ctx: Context,
    body: &[u8],
    sig: &str,
) -> Result<(), SignError> {
    let raw = B64
        .decode(sig.as_bytes())
        .map_err(|_| SignError::BadSignature)?;
    let arr: [u8; 64] = raw.try_into().map_err(|_| SignError::BadSignature)?;
    key.verify_strict(&signed_bytes(ctx, body), &Signature::from_bytes(&arr))
        .map_err(|_| SignError::BadSignature)
}

fn signed_bytes(ctx: Context, body: &[u8]) -> Vec<u8> {
    let p = ctx.prefix();
    let mut v = Vec::with_capacity(p.len() + body.len());
    v.extend_from_slice(p);
    v.extend_from_slice(body);
    v
}

/// A kiosk's MQTT password: its Ed25519 signature (deterministic) over
/// `store/kiosk`. Each kiosk has its own, it never needs distributing (the
/// key it enrolled with makes it), and the hub checks it against the
/// enrolled public key, so a revoked kiosk's password stops working at once.
pub fn mqtt_password(key: &SigningKey, store: &str, kiosk: &str) -> String {
    sign_detached(
        key,
        Context::MqttLogin,
        format!("{store}/{kiosk}").as_bytes(),
    )
}

/// Is `password` the MQTT password of the kiosk holding `key`?
pub fn check_mqtt_password(key: &VerifyingKey, store: &str, kiosk: &str, password: &str) -> bool {
    verify_detached(
        key,
        Context::MqttLogin,
        format!("{store}/{kiosk}").as_bytes(),
        password,
    )
    .is_ok()
}

/// Base64 text of a public key, as printed for enrollment.
pub fn encode_public(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// Parse a base64 public key.
pub fn decode_public(s: &str) -> Result<VerifyingKey, SignError> {
    let raw = B64
        .decode(s.trim().as_bytes())
        .map_err(|e| SignError::BadKey(e.to_string()))?;
    let arr: [u8; 32] = raw
        .try_into()
        .map_err(|_| SignError::BadKey("expected 32 bytes".into()))?;
    VerifyingKey::from_bytes(&arr).map_err(|e| SignError::BadKey(e.to_string()))
}

/// Base64 text of a secret key, for the 0600 key file.
pub fn encode_secret(key: &SigningKey) -> String {
    B64.encode(key.to_bytes())
}

/// Parse a base64 secret key.
pub fn decode_secret(s: &str) -> Result<SigningKey, SignError> {
    let raw = B64
        .decode(s.trim().as_bytes())
        .map_err(|e| SignError::BadKey(e.to_string()))?;
    let arr: [u8; 32] = raw
        .try_into()
        .map_err(|_| SignError::BadKey("expected 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn detached_signatures_are_bound_to_their_context() {
        let k = SigningKey::from_bytes(&[7; 32]);
        let sig = sign_detached(&k, Context::Blob, b"abc");
        assert!(verify_detached(&k.verifying_key(), Context::Blob, b"abc", &sig).is_ok());
        assert!(verify_detached(&k.verifying_key(), Context::Event, b"abc", &sig).is_err());
        assert!(verify_detached(&k.verifying_key(), Context::Blob, b"abd", &sig).is_err());
    }

    #[test]
    fn sign_verify_round_trip() -> Result<(), SignError> {
        let k = key(7);
        let s = Signed::sign(&k, Context::Event, &serde_json::json!({"a": 1, "b": "x"}))?;
        let wire = s.to_vec();
        let back = Signed::from_slice(&wire)?;
        back.verify(Context::Event, &k.verifying_key())?;
        let v: serde_json::Value = back.decode()?;
        assert_eq!(v["b"], "x");
        Ok(())
    }

    #[test]
    fn wrong_key_context_or_tamper_fails() -> Result<(), SignError> {
        let k = key(7);
        let s = Signed::sign(&k, Context::Event, &serde_json::json!({"a": 1}))?;
        assert!(s.verify(Context::Event, &key(8).verifying_key()).is_err());
        assert!(s.verify(Context::Ack, &k.verifying_key()).is_err());
        let tampered = String::from_utf8_lossy(&s.to_vec()).replace("\"a\":1", "\"a\":2");
        let t = Signed::from_slice(tampered.as_bytes())?;
        assert!(matches!(
            t.verify(Context::Event, &k.verifying_key()),
            Err(SignError::BadSignature)
        ));
        Ok(())
    }

    #[test]
    fn garbage_is_malformed_not_panic() {
        for g in [
            &b""[..],
            b"{",
            b"null",
            b"{\"body\":1}",
            b"\xff\xfe",
            b"{\"body\":{},\"sig\":\"!!\"}",
        ] {
            if let Ok(s) = Signed::from_slice(g) {
                assert!(s.verify(Context::Event, &key(1).verifying_key()).is_err());
            }
        }
    }

    #[test]
    fn key_text_round_trip() -> Result<(), SignError> {
        let k = key(3);
        assert_eq!(
            decode_public(&encode_public(&k.verifying_key()))?,
            k.verifying_key()
        );
        assert_eq!(decode_secret(&encode_secret(&k))?.to_bytes(), k.to_bytes());
        assert!(decode_public("AAAA").is_err());
        Ok(())
    }
}
