//! Patient notifications: what the message says (in the patient's
//! language) and when a failed send is tried again. Pure; the hub's
//! notification worker sends and records.

use serde::{Deserialize, Serialize};

/// Why the patient is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The order is ready to collect.
    Ready,
    /// The pharmacist would like a word before the order goes on.
    NeedsWord,
}

impl Kind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::NeedsWord => "needs_word",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ready" => Some(Self::Ready),
            "needs_word" => Some(Self::NeedsWord),
            _ => None,
        }
    }
}

/// How the patient asked to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail over SMTP.
    Email,
    /// SMS through the pharmacy's gateway (webhook).
    Sms,
    /// WhatsApp through the pharmacy's gateway (webhook).
    Whatsapp,
}

impl Channel {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            "whatsapp" => Some(Self::Whatsapp),
            _ => None,
        }
    }
}

/// Subject and text of a message, in the patient's language (`de`, `fr`,
/// `it`, else English). Only the order's short reference and the store's
/// name go in: a message can be read by anyone holding the phone, so it
/// names no medicine.
pub fn message(kind: Kind, language: &str, store: &str, reference: &str) -> (String, String) {
    let lang = language.trim().to_ascii_lowercase();
    match (kind, lang.get(..2).unwrap_or("")) {
        (Kind::Ready, "de") => (
            format!("{store}: Ihre Bestellung {reference} ist bereit"),
            format!("Ihre Bestellung {reference} liegt bei {store} zur Abholung bereit. Bitte bringen Sie Ihren Abholcode mit."),
        ),
        (Kind::Ready, "fr") => (
            format!("{store} : votre commande {reference} est prête"),
            format!("Votre commande {reference} est prête à être retirée chez {store}. Veuillez apporter votre code de retrait."),
        ),
        (Kind::Ready, "it") => (
            format!("{store}: il suo ordine {reference} è pronto"),
            format!("Il suo ordine {reference} è pronto per il ritiro presso {store}. Porti con sé il codice di ritiro."),
        ),
        (Kind::Ready, _) => (
            format!("{store}: your order {reference} is ready"),
            format!("Your order {reference} is ready for pickup at {store}. Please bring your pickup code."),
        ),
        (Kind::NeedsWord, "de") => (
            format!("{store}: bitte melden Sie sich"),
            format!("Bitte melden Sie sich bei {store} wegen Ihrer Bestellung {reference}: unser Apothekenteam möchte kurz mit Ihnen sprechen."),
        ),
        (Kind::NeedsWord, "fr") => (
            format!("{store} : merci de nous contacter"),
            format!("Veuillez contacter {store} au sujet de votre commande {reference} : notre pharmacien souhaite vous parler."),
        ),
        (Kind::NeedsWord, "it") => (
            format!("{store}: la preghiamo di contattarci"),
            format!("La preghiamo di contattare {store} per il suo ordine {reference}: il farmacista desidera parlarle."),
        ),
        (Kind::NeedsWord, _) => (
            format!("{store}: please get in touch"),
            format!("Please contact {store} about your order {reference}: the pharmacist would like a word with you."),
        ),
    }
}

/// When to try again after `attempts` failed sends, in ms: `base` × 4^(n-1)
/// (with a 60 s base: 1, 4, 16, 64 minutes…), or `None` once `max_attempts`
/// are spent and the notification stays failed for a person to see.
pub fn retry_after_ms(attempts: u32, base_secs: u32, max_attempts: u32) -> Option<i64> {
    if attempts == 0 || attempts >= max_attempts {
        return None;
    }
    let factor = 4_i64.checked_pow(attempts - 1)?;
    i64::from(base_secs).checked_mul(1000)?.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_follow_the_language_and_name_no_medicine() {
        let (s, t) = message(Kind::Ready, "DE", "Apotheke am See", "5708E3");
        assert!(
            s.contains("5708E3") && t.starts_with("Ihre Bestellung 5708E3"),
            "{t}"
        );
        let (_, t) = message(Kind::Ready, "fr", "Pharmacie du Lac", "A1");
        assert!(t.starts_with("Votre commande A1"), "{t}");
        let (_, t) = message(Kind::NeedsWord, "it", "Farmacia", "A1");
        assert!(t.starts_with("La preghiamo"), "{t}");
        let (_, t) = message(Kind::Ready, "", "Lake Pharmacy", "A1");
        assert!(t.starts_with("Your order A1"), "{t}");
        let (_, t) = message(Kind::NeedsWord, "xx", "Lake Pharmacy", "A1");
        assert!(t.starts_with("Please contact"), "{t}");
    }

    #[test]
    fn retries_back_off_and_stop() {
        assert_eq!(retry_after_ms(1, 60, 5), Some(60_000));
        assert_eq!(retry_after_ms(2, 60, 5), Some(240_000));
        assert_eq!(retry_after_ms(4, 60, 5), Some(3_840_000));
        assert_eq!(retry_after_ms(5, 60, 5), None);
        assert_eq!(retry_after_ms(0, 60, 5), None);
        assert_eq!(Kind::parse(Kind::NeedsWord.as_str()), Some(Kind::NeedsWord));
        assert_eq!(Channel::parse("whatsapp"), Some(Channel::Whatsapp));
        assert_eq!(Channel::parse("fax"), None);
    }

    proptest! {
        /// Each wait is longer than the one before, until they stop.
        #[test]
        fn waits_grow(base in 1u32..3600, max in 1u32..12) {
            let mut last = 0;
            for n in 1..max {
                let w = retry_after_ms(n, base, max);
                prop_assert!(w.is_some());
                let w = w.unwrap_or(0);
                prop_assert!(w > last);
                last = w;
            }
            prop_assert_eq!(retry_after_ms(max, base, max), None);
        }
    }
}
