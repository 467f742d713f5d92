//! Pickup tickets: the QR code a patient shows to collect an approved order.
//!
//! `RXEDGE-PICKUP:` + base64url(JSON body) + `.` + base64url(Ed25519 signature
//! over context `rxedge/v1/ticket\0` + the body bytes). The hub signs; a kiosk
//! verifies offline with the hub key it got at enrollment, so a forged or
//! expired ticket is refused even while the hub is unreachable.

use crate::sign::{SigningKey, VerifyingKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What a ticket text starts with.
pub const PREFIX: &str = "RXEDGE-PICKUP:";
const CONTEXT: &[u8] = b"rxedge/v1/ticket\0";

/// The signed content of a ticket. Short keys keep the QR code small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Store.
    #[serde(rename = "s")]
    pub store: String,
    /// Order id.
    #[serde(rename = "o")]
    pub order: String,
    /// The reference the patient was given.
    #[serde(rename = "r")]
    pub reference: String,
    /// Issued (ms).
    #[serde(rename = "i")]
    pub issued_ms: i64,
    /// Valid until (ms).
    #[serde(rename = "e")]
    pub expires_ms: i64,
}

/// Why a ticket is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a ticket's shape.
    #[error("not a pickup ticket")]
    Malformed,
    /// Signature does not verify with the hub key.
    #[error("the ticket's signature is not the pharmacy's")]
    BadSignature,
    /// For another store.
    #[error("the ticket is for another pharmacy")]
    WrongStore,
    /// Past its date.
    #[error("the ticket expired")]
    Expired,
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(CONTEXT.len() + body.len());
    v.extend_from_slice(CONTEXT);
    v.extend_from_slice(body);
    v
}

/// The ticket text to put in a QR code.
pub fn issue(key: &SigningKey, t: &Ticket) -> String {
    use ed25519_dalek::Signer as _;
    // Serialising a struct of strings and integers cannot fail.
    let body = serde_json::to_vec(t).unwrap_or_default();
    let sig = key.sign(&signed_bytes(&body));
    format!(
        "{PREFIX}{}.{}",
        B64URL.encode(&body),
        B64URL.encode(sig.to_bytes())
    )
}

/// Check a scanned ticket: shape, signature, store, expiry (in that order).
pub fn verify(
    text: &str,
    hub: &VerifyingKey,
    store: &str,
    now_ms: i64,
) -> Result<Ticket, TicketError> {
    let rest = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(TicketError::Malformed)?;
    let (b, s) = rest.split_once('.').ok_or(TicketError::Malformed)?;
    let body = B64URL.decode(b).map_err(|_| TicketError::Malformed)?;
    let sig: [u8; 64] = B64URL
        .decode(s)
        .map_err(|_| TicketError::Malformed)?
        .try_into()
        .map_err(|_| TicketError::Malformed)?;
    hub.verify_strict(
        &signed_bytes(&body),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .map_err(|_| TicketError::BadSignature)?;
    let t: Ticket = serde_json::from_slice(&body).map_err(|_| TicketError::Malformed)?;
    if t.store != store {
        return Err(TicketError::WrongStore);
    }
    if now_ms > t.expires_ms {
        return Err(TicketError::Expired);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn issued_tickets_verify_offline_and_forgeries_do_not() {
        let hub = key(7);
        let t = Ticket {
            store: "zh-1".into(),
            order: "0193b9e1c0007a3c9f4394859f6423d3".into(),
            reference: "6423D3".into(),
            issued_ms: 1_000,
            expires_ms: 10_000,
        };
        let text = issue(&hub, &t);
        assert!(
            text.len() < 250,
            "small enough for a robust QR code: {}",
            text.len()
        );
        let vk = hub.verifying_key();
        assert_eq!(verify(&text, &vk, "zh-1", 5_000), Ok(t.clone()));
        assert_eq!(
            verify(&text, &vk, "zh-1", 10_001),
            Err(TicketError::Expired)
        );
        assert_eq!(
            verify(&text, &vk, "be-2", 5_000),
            Err(TicketError::WrongStore)
        );
        assert_eq!(
            verify(&text, &key(8).verifying_key(), "zh-1", 5_000),
            Err(TicketError::BadSignature)
        );
        // A patient editing the order id breaks the signature.
        let forged = issue(
            &key(9),
            &Ticket {
                order: "someone-else".into(),
                ..t.clone()
            },
        );
        assert_eq!(
            verify(&forged, &vk, "zh-1", 5_000),
            Err(TicketError::BadSignature)
        );
        let (head, sig) = text.rsplit_once('.').unwrap();
        let other_body = B64URL.encode(
            serde_json::to_vec(&Ticket {
                expires_ms: i64::MAX,
                ..t
            })
            .unwrap(),
        );
        let swapped = format!("{PREFIX}{other_body}.{sig}");
        assert_ne!(head, swapped);
        assert_eq!(
            verify(&swapped, &vk, "zh-1", 5_000),
            Err(TicketError::BadSignature)
        );
        for junk in [
            "",
            "RXEDGE-PICKUP:",
            "RXEDGE-PICKUP:abc",
            "RXEDGE-PICKUP:a.b",
            "hello",
        ] {
            assert_eq!(
                verify(junk, &vk, "zh-1", 0),
                Err(TicketError::Malformed),
                "{junk}"
            );
        }
    }
}
