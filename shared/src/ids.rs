//! Store and kiosk identifiers. They become MQTT topic levels, so they are
//! restricted to a safe alphabet: no `/`, `+`, `#` or whitespace.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty identifier.
    #[error("identifier is empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("identifier is longer than {MAX_ID_LEN} characters")]
    TooLong,
    /// A name the system keeps for itself.
    #[error("identifier {0:?} is reserved")]
    Reserved(String),
    /// Contains a character outside `a-z 0-9 - _`.
    #[error("identifier {0:?} may only contain lowercase letters, digits, '-' and '_'")]
    BadChar(String),
}

/// Longest allowed identifier.
pub const MAX_ID_LEN: usize = 64;

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(IdError::BadChar(s.to_owned()));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, reserved = [$($r:literal),*]) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validate and wrap.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate(&s)?;
                if [$($r),*].contains(&s.as_str()) {
                    return Err(IdError::Reserved(s));
                }
                Ok(Self(s))
            }
            /// The identifier text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
    };
}

id_type!(
    /// A store (one pharmacy, one hub).
    StoreId,
    reserved = []
);
id_type!(
    /// A kiosk within a store. `hub` is reserved for the hub's own topics.
    KioskId,
    reserved = ["hub"]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_topic_metacharacters() {
        for bad in ["", "a/b", "a+", "#", "A", "a b", &"x".repeat(65)] {
            assert!(KioskId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            KioskId::new("front-desk_1").map(|k| k.to_string()).ok(),
            Some("front-desk_1".into())
        );
    }

    #[test]
    fn hub_is_not_a_kiosk() {
        assert_eq!(KioskId::new("hub"), Err(IdError::Reserved("hub".into())));
        assert!(KioskId::new("hub-2").is_ok());
        assert!(StoreId::new("hub").is_ok());
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<StoreId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<StoreId>("\"no/slash\"").is_err());
    }
}
