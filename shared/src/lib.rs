//! RxEdge shared vocabulary: the event protocol, topics, signatures, the
//! kiosk outbox bookkeeping and layered config loading.
//!
//! Everything here is pure: no tokio, no sockets, no files. Time comes in
//! through [`clock::Clock`] or as explicit millisecond arguments, so the
//! state machines are deterministic under test.

pub mod analytics;
pub mod berlinger;
pub mod billing;
pub mod catalog;
pub mod clinical;
pub mod clock;
pub mod coldchain;
pub mod config;
pub mod handover;
pub mod ids;
pub mod image_decode;
pub mod inventory;
pub mod metrics;
pub mod notify;
pub mod orders;
pub mod outbox;
pub mod payload;
pub mod protocol;
pub mod sign;
pub mod ticket;
pub mod tls;
pub mod topics;

pub use ids::{IdError, KioskId, StoreId};

/// JSON text of an outbox report (shared so hub and kiosk store it alike).
pub fn outbox_report_json(r: &protocol::OutboxReport) -> String {
    serde_json::to_string(r).unwrap_or_default()
}
