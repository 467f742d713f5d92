//! The versioned event envelope and the hub ↔ kiosk documents.

use crate::{KioskId, StoreId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Envelope version this build writes and accepts.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest MQTT payload either side accepts. Images travel by HTTP upload, not MQTT.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// One kiosk event, as signed by the kiosk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope version ([`PROTOCOL_VERSION`]).
    pub v: u16,
    /// Event id, UUIDv7 (time-ordered).
    pub id: Uuid,
    /// Store the kiosk belongs to.
    pub store: StoreId,
    /// Sending kiosk.
    pub kiosk: KioskId,
    /// Per-kiosk monotonic sequence number, starting at 1, never reused.
    pub seq: u64,
    /// When the kiosk created the event (ms since epoch, kiosk clock).
    pub created_ms: i64,
    /// True for data replayed after an outage (e.g. buffered fridge readings),
    /// so it never overwrites live values.
    #[serde(default)]
    pub historical: bool,
    /// Kind and typed body.
    #[serde(flatten)]
    pub body: Body,
}

/// The typed body of an event, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum Body {
    /// A QR or barcode was read at the kiosk.
    QrScanned(QrScanned),
    /// A paper prescription page was captured and uploaded.
    PaperCaptured(PaperCaptured),
    /// A batch of sensor readings.
    Telemetry(Telemetry),
    /// A device component changed health (camera lost, probe unplugged, …).
    DeviceStatus(DeviceStatus),
}

/// Event kinds, for storage and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// See [`Body::QrScanned`].
    QrScanned,
    /// See [`Body::PaperCaptured`].
    PaperCaptured,
    /// See [`Body::Telemetry`].
    Telemetry,
    /// See [`Body::DeviceStatus`].
    DeviceStatus,
}

impl EventKind {
    /// Stable name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::QrScanned => "qr_scanned",
            EventKind::PaperCaptured => "paper_captured",
            EventKind::Telemetry => "telemetry",
            EventKind::DeviceStatus => "device_status",
        }
    }
}

/// How precious an event is when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Patient-facing (prescriptions, captures, device health). Never dropped.
    Critical,
    /// Sensor telemetry. The oldest is dropped first when the outbox is full.
    Telemetry,
}

impl Body {
    /// The event kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Body::QrScanned(_) => EventKind::QrScanned,
            Body::PaperCaptured(_) => EventKind::PaperCaptured,
            Body::Telemetry(_) => EventKind::Telemetry,
            Body::DeviceStatus(_) => EventKind::DeviceStatus,
        }
    }
    /// The outbox class.
    pub fn class(&self) -> Class {
        match self {
            Body::Telemetry(_) => Class::Telemetry,
            _ => Class::Critical,
        }
    }
}

/// A code read by the kiosk camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QrScanned {
    /// Decoded text, exactly as read.
    pub text: String,
    /// What the kiosk's parser made of it (`chmed16a`, `gs1`, `pickup`, `unknown`, …).
    #[serde(default)]
    pub payload_kind: String,
}

/// A captured paper page, uploaded to the hub's blob store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperCaptured {
    /// Hex sha256 of the image: the blob's address.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// MIME type (`image/jpeg`).
    pub mime: String,
}

/// A batch of sensor readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Readings, oldest first.
    pub readings: Vec<Reading>,
    /// Door changes (debounced), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doors: Vec<DoorChange>,
    /// Every sensor in this batch was sampled up to this time: lets the hub's
    /// engine run time-based alarms (offline, door open) without a new reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<i64>,
}

/// A fridge door opened or closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoorChange {
    /// Fridge id.
    pub fridge: String,
    /// When (ms since epoch).
    pub at_ms: i64,
    /// Open now.
    pub open: bool,
}

/// One sensor reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The fridge this probe watches (the kiosk's hardware mapping names it).
    pub sensor: String,
    /// When it was read (ms since epoch).
    pub at_ms: i64,
    /// Temperature in °C, or `None` for a bad read.
    pub celsius: Option<f64>,
}

/// Health of one device component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Component (`camera`, `probe:fridge-1`, …).
    pub component: String,
    /// Working or not.
    pub ok: bool,
    /// Human-readable detail.
    #[serde(default)]
    pub detail: String,
}

/// Outbox figures a kiosk reports in its heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxReport {
    /// Events stored and not yet sent in this connection.
    pub queued: u64,
    /// Events sent and awaiting the hub's ack.
    pub inflight: u64,
    /// Events acked since the outbox was created.
    pub acked: u64,
    /// Telemetry events dropped because the outbox was full.
    pub dropped: u64,
    /// Age of the oldest unacked event in ms, if any.
    pub oldest_age_ms: Option<i64>,
}

/// Signed periodic liveness report from a kiosk (QoS 0, not durable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Store.
    pub store: StoreId,
    /// Kiosk.
    pub kiosk: KioskId,
    /// Kiosk clock at send time.
    pub sent_ms: i64,
    /// Outbox state.
    pub outbox: OutboxReport,
    /// Config version the kiosk runs, if any.
    pub config_version: Option<u64>,
    /// Kiosk software version.
    pub software: String,
}

/// What an uplink frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// A durable event from the outbox (signed in [`crate::sign::Context::Event`]).
    Event,
    /// A heartbeat (signed in [`crate::sign::Context::Heartbeat`]), not durable.
    Heartbeat,
}

/// The MQTT payload a kiosk publishes on `events` and `telemetry`.
///
/// `msg` is stored in the outbox and resent byte for byte. `after` is added at
/// send time and is not signed: it only gates ordering (see
/// [`crate::outbox`]); a tampered `after` can delay an event, never alter it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frame {
    /// Event or heartbeat.
    pub kind: FrameKind,
    /// Predecessor in the same stream still unacked at send time, 0 if none.
    #[serde(default)]
    pub after: u64,
    /// The signed document.
    pub msg: crate::sign::Signed,
}

/// The hub's application-level ack: these events are committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Store.
    pub store: StoreId,
    /// Kiosk the events came from.
    pub kiosk: KioskId,
    /// Committed (or already-committed) event ids.
    pub ids: Vec<Uuid>,
}

/// Retained online/offline state of a kiosk or of the hub (the Last Will sets `online=false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Connected or not.
    pub online: bool,
    /// When the owner said so (0 for a Last Will, whose time is unknown).
    #[serde(default)]
    pub at_ms: i64,
}

/// The operating config the hub owns for one kiosk, signed and retained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KioskConfig {
    /// Store.
    pub store: StoreId,
    /// Kiosk this document is for.
    pub kiosk: KioskId,
    /// Monotonic version; a kiosk never applies an older one.
    pub version: u64,
    /// When the hub issued it.
    pub issued_ms: i64,
    /// Store name shown to patients.
    pub store_name: String,
    /// Languages offered on the home screen, first is the default.
    pub languages: Vec<String>,
    /// Which patient flows are offered.
    pub features: PatientFeatures,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u32,
    /// Fridge alarm rules by fridge id.
    pub fridges: Vec<crate::coldchain::FridgeRules>,
}

/// Patient flows the kiosk may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientFeatures {
    /// "Scan QR code".
    pub qr_scan: bool,
    /// "Scan paper prescription".
    pub paper_scan: bool,
    /// "Collect my order".
    pub pickup: bool,
    /// "Is X in stock".
    pub availability: bool,
}

impl Default for PatientFeatures {
    fn default() -> Self {
        Self {
            qr_scan: true,
            paper_scan: true,
            pickup: true,
            availability: true,
        }
    }
}

/// Kiosk → hub: "is this in stock, and what does it cost?" Sent signed
/// ([`crate::sign::Context::Query`]) at QoS 0; there is no point queueing a
/// question whose asker has walked away, so offline kiosks answer from cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityQuery {
    /// Correlates the answer.
    pub id: Uuid,
    /// A GTIN or a product / ingredient name.
    pub q: String,
    /// Kiosk clock when asked (ms).
    pub sent_ms: i64,
    /// Instead of stock: the status of this order (from a verified pickup ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// An order's status as a patient may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusInfo {
    /// Order id.
    pub id: String,
    /// The reference the patient was given.
    pub reference: String,
    /// `received`, `in_review`, `ready`, `picked_up` or `see_pharmacist`.
    pub status: crate::orders::PatientStatus,
}

/// One product in an availability answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityItem {
    /// GTIN-14.
    pub gtin: String,
    /// Trade name.
    pub name: String,
    /// Strength.
    pub strength: String,
    /// Dosage form.
    pub form: String,
    /// Units per pack.
    pub pack_size: i64,
    /// Pack price in minor units.
    pub price_minor: i64,
    /// Packs that can be handed out today (available, in date, not reserved).
    pub in_stock: i64,
    /// Needs a fridge (collect promptly).
    pub fridge: bool,
    /// Generic equivalents in stock: (GTIN, name, packs).
    pub generics: Vec<(String, String, i64)>,
}

/// Hub → kiosk answer, signed ([`crate::sign::Context::Answer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityAnswer {
    /// The query's id.
    pub id: Uuid,
    /// The query text, so the kiosk can cache by it.
    pub q: String,
    /// When the hub computed it (ms).
    pub as_of_ms: i64,
    /// Matches, best first.
    pub items: Vec<AvailabilityItem>,
    /// The order asked about, if the question was about an order (`None` if unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderStatusInfo>,
    /// True when the question was about an order.
    #[serde(default)]
    pub about_order: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Result<Envelope, crate::IdError> {
        Ok(Envelope {
            v: PROTOCOL_VERSION,
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            store: StoreId::new("s1")?,
            kiosk: KioskId::new("k1")?,
            seq: 42,
            created_ms: 1_700_000_000_000,
            historical: false,
            body: Body::QrScanned(QrScanned {
                text: "CHMED16A1H4sI".into(),
                payload_kind: "chmed16a".into(),
            }),
        })
    }

    #[test]
    fn envelope_wire_shape() -> Result<(), Box<dyn std::error::Error>> {
        let e = env()?;
        let v = serde_json::to_value(&e)?;
        assert_eq!(v["kind"], "qr_scanned");
        assert_eq!(v["body"]["text"], "CHMED16A1H4sI");
        assert_eq!(v["seq"], 42);
        let back: Envelope = serde_json::from_value(v)?;
        assert_eq!(back, e);
        Ok(())
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let r = serde_json::from_str::<Envelope>(
            r#"{"v":1,"id":"01900000-0000-7000-8000-000000000001","store":"s","kiosk":"k","seq":1,"created_ms":0,"kind":"nope","body":{}}"#,
        );
        assert!(r.is_err());
    }

    #[test]
    fn classes() -> Result<(), crate::IdError> {
        assert_eq!(env()?.body.class(), Class::Critical);
        assert_eq!(
            Body::Telemetry(Telemetry {
                readings: vec![],
                doors: vec![],
                as_of_ms: None
            })
            .class(),
            Class::Telemetry
        );
        Ok(())
    }
}
