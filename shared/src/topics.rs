//! Versioned MQTT topic layout: `rxedge/v1/{store}/{kiosk}/...`.
//!
//! | topic | direction | QoS | retained |
//! |---|---|---|---|
//! | `rxedge/v1/{store}/{kiosk}/events` | kiosk → hub | 1 | no |
//! | `rxedge/v1/{store}/{kiosk}/telemetry` | kiosk → hub | 1 (batches) / 0 (heartbeat) | no |
//! | `rxedge/v1/{store}/{kiosk}/state` | kiosk → all (Last Will) | 1 | yes |
//! | `rxedge/v1/{store}/{kiosk}/ack` | hub → kiosk | 1 | no |
//! | `rxedge/v1/{store}/{kiosk}/cmd/config` | hub → kiosk | 1 | yes |
//! | `rxedge/v1/{store}/{kiosk}/query` | kiosk → hub (availability) | 0 | no |
//! | `rxedge/v1/{store}/{kiosk}/answer` | hub → kiosk | 0 | no |
//! | `rxedge/v1/{store}/hub/state` | hub → all (Last Will) | 1 | yes |

use crate::{KioskId, StoreId};

/// Protocol version segment of every topic.
pub const VERSION: &str = "v1";
/// Root of every topic.
pub const ROOT: &str = "rxedge";
/// The reserved kiosk-level name used by the hub. `hub` is therefore not a valid kiosk id.
pub const HUB: &str = "hub";

/// What a topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Durable events (prescriptions, scans).
    Events,
    /// Telemetry (fridge readings, heartbeats).
    Telemetry,
    /// Retained online/offline state of a kiosk.
    State,
    /// Application acks from the hub.
    Ack,
    /// Retained, signed operating config from the hub.
    Config,
    /// Availability questions from a kiosk.
    Query,
    /// Availability answers from the hub.
    Answer,
}

impl Leaf {
    fn suffix(self) -> &'static str {
        match self {
            Leaf::Events => "events",
            Leaf::Telemetry => "telemetry",
            Leaf::State => "state",
            Leaf::Ack => "ack",
            Leaf::Config => "cmd/config",
            Leaf::Query => "query",
            Leaf::Answer => "answer",
        }
    }
}

/// Topic of `leaf` for one kiosk.
pub fn kiosk(store: &StoreId, kiosk: &KioskId, leaf: Leaf) -> String {
    format!("{ROOT}/{VERSION}/{store}/{kiosk}/{}", leaf.suffix())
}

/// The hub's retained state topic for a store.
pub fn hub_state(store: &StoreId) -> String {
    format!("{ROOT}/{VERSION}/{store}/{HUB}/state")
}

/// Wildcard filter over every kiosk's `leaf` in a store (what the hub subscribes to).
pub fn all_kiosks(store: &StoreId, leaf: Leaf) -> String {
    format!("{ROOT}/{VERSION}/{store}/+/{}", leaf.suffix())
}

/// A parsed kiosk-side topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Store segment.
    pub store: StoreId,
    /// Kiosk segment (never `hub`).
    pub kiosk: KioskId,
    /// Which leaf.
    pub leaf: Leaf,
}

/// Parse a topic published by or to a kiosk. Returns `None` for anything else,
/// including the hub's own state topic.
pub fn parse(topic: &str) -> Option<Parsed> {
    let mut it = topic.splitn(5, '/');
    if it.next()? != ROOT || it.next()? != VERSION {
        return None;
    }
    let store = StoreId::new(it.next()?).ok()?;
    let kiosk_s = it.next()?;
    if kiosk_s == HUB {
        return None;
    }
    let kiosk = KioskId::new(kiosk_s).ok()?;
    let leaf = match it.next()? {
        "events" => Leaf::Events,
        "telemetry" => Leaf::Telemetry,
        "state" => Leaf::State,
        "ack" => Leaf::Ack,
        "cmd/config" => Leaf::Config,
        "query" => Leaf::Query,
        "answer" => Leaf::Answer,
        _ => return None,
    };
    Some(Parsed { store, kiosk, leaf })
}

/// The MQTT client id a kiosk connects with (the embedded broker allows its
/// credentials with this id only).
pub fn kiosk_client_id(store: &str, kiosk: &str) -> String {
    format!("rxedge-kiosk-{store}-{kiosk}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() -> Result<(), crate::IdError> {
        let s = StoreId::new("zurich-1")?;
        let k = KioskId::new("k1")?;
        for leaf in [
            Leaf::Events,
            Leaf::Telemetry,
            Leaf::State,
            Leaf::Ack,
            Leaf::Config,
            Leaf::Query,
            Leaf::Answer,
        ] {
            let t = kiosk(&s, &k, leaf);
            assert_eq!(
                parse(&t),
                Some(Parsed {
                    store: s.clone(),
                    kiosk: k.clone(),
                    leaf
                })
            );
        }
        assert_eq!(parse(&hub_state(&s)), None);
        assert_eq!(parse("rxedge/v2/zurich-1/k1/events"), None);
        assert_eq!(parse("rxedge/v1/zurich-1/k1/other"), None);
        Ok(())
    }
}
