//! Hub configuration (`hub.toml`): defaults, then the file, then `RXEDGE_HUB__*` env.

use rxedge_shared::config::{self, ConfigError};
use rxedge_shared::StoreId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment prefix for overrides.
pub const ENV_PREFIX: &str = "RXEDGE_HUB";

/// Whole hub configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct Config {
    /// The store this hub serves.
    pub store: Store,
    /// Where state lives.
    pub paths: Paths,
    /// Web server.
    pub http: Http,
    /// MQTT broker.
    pub broker: Broker,
    /// Database.
    pub database: Database,
    /// Ingest tuning.
    pub ingest: Ingest,
    /// Defaults for each kiosk's operating config.
    pub kiosk_defaults: KioskDefaults,
    /// Cold-chain alarm handling.
    pub coldchain: Coldchain,
    /// Stock rules.
    pub inventory: Inventory,
    /// Order rules.
    pub orders: Orders,
    /// Prices, fees and VAT.
    pub billing: Billing,
    /// Patient notifications.
    pub notify: Notify,
    /// OCR of paper prescriptions.
    pub ocr: Ocr,
    /// Staff sign-in.
    pub auth: Auth,
    /// How long prescription images are kept.
    pub blobs: Blobs,
    /// TLS for the web screens and the embedded broker.
    pub tls: Tls,
    /// Logging.
    pub log: Log,
}

/// Store identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// Store id, a topic level (`a-z 0-9 - _`).
    pub id: String,
    /// Name shown to patients.
    pub name: String,
}

/// Filesystem locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Paths {
    /// State directory: database, keys. systemd's `StateDirectory` sets it.
    pub state_dir: PathBuf,
}

/// Web server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Listen address. Loopback by default; to serve the store network,
    /// listen on it with `tls.mode` on (docs/security.md).
    pub listen: SocketAddr,
    /// The URL kiosks use to reach this hub for enrollment (printed by `kiosk add`).
    pub public_url: String,
}

/// MQTT broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Broker {
    /// Empty: run the embedded broker. Otherwise an external broker, `mqtt://host:port`.
    pub url: String,
    /// Where the embedded broker listens.
    pub listen: SocketAddr,
    /// The broker address kiosks are told at enrollment (`mqtt://host:port`).
    pub public_url: String,
    /// MQTT keep-alive in seconds.
    pub keep_alive_secs: u64,
    /// The hub's login at an external broker (the embedded one makes its own).
    pub username: String,
    /// Its password (better set by environment: RXEDGE_HUB__BROKER__PASSWORD).
    pub password: String,
}

/// Database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// Empty: a SQLite file `hub.db` in the state directory. Or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

/// Ingest tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ingest {
    /// Most messages committed in one transaction.
    pub batch_max: usize,
    /// Largest accepted MQTT payload in bytes.
    pub max_payload_bytes: usize,
    /// Largest accepted paper image upload in bytes.
    pub max_image_bytes: usize,
    /// Events dated further ahead of the hub's clock are refused (dead letters).
    pub max_clock_ahead_secs: u32,
}

/// Defaults for new kiosks' operating config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KioskDefaults {
    /// Languages offered, first is the default.
    pub languages: Vec<String>,
    /// Seconds between kiosk heartbeats.
    pub heartbeat_secs: u32,
    /// A kiosk is shown as lagging when its heartbeat is older than this many seconds.
    pub stale_after_secs: u32,
    /// Fridges a new kiosk watches; each starts with the standard 2–8 °C rules.
    pub fridges: Vec<String>,
}

/// Cold-chain alarm handling on the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Coldchain {
    /// An alarm nobody acknowledges within this many seconds is escalated.
    pub escalate_after_secs: u32,
    /// A sensor that stays offline is reminded about this often, seconds.
    pub remind_every_secs: u32,
    /// Escalations and reminders are POSTed here as JSON (empty: screen and log only).
    pub webhook_url: String,
    /// SMTP relay for escalation e-mail, `smtp://host:port` (empty: no e-mail).
    /// Plain SMTP to a relay on the store's network; TLS to the relay comes with issue 8.
    pub smtp_url: String,
    /// Sender address of escalation e-mail.
    pub email_from: String,
    /// Recipients of escalation e-mail.
    pub email_to: Vec<String>,
    /// At start, readings this far back are replayed to rebuild alarm state, hours.
    pub replay_hours: u32,
    /// How late a reading may arrive and still be evaluated in its place, seconds.
    pub reorder_secs: u32,
}

/// Stock rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Inventory {
    /// FEFO only reserves lots still good this many days from today, so a
    /// course of therapy ends before the pack expires.
    pub min_shelf_life_days: u32,
    /// The dashboard lists lots expiring within this many days.
    pub expiring_within_days: u32,
    /// Days of stock left are computed from the dispensing of this many past days.
    pub rate_window_days: u32,
}

/// Order rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Orders {
    /// A ready order not collected within this many days may go back to stock.
    pub return_after_days: u32,
    /// Pickup tickets are valid this many days from approval.
    pub ticket_days: u32,
    /// The drug–drug interaction table (tab-separated, see
    /// `docs/clinical.md`). Empty: the table shipped with the hub.
    pub interactions_file: PathBuf,
    /// Every reserved pack must be scanned (GS1) at the desk before an
    /// order is handed over, so the exact lot reserved is the one given.
    pub verify_packs_at_pickup: bool,
}

/// Patient notifications (opt-in per patient).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    /// SMTP relay for patient e-mail, `smtp://host:port` (empty: no e-mail).
    pub smtp_url: String,
    /// Sender address.
    pub email_from: String,
    /// The pharmacy's SMS/WhatsApp gateway: messages are POSTed to it as
    /// JSON `{channel, to, text, order_reference, kind, notification}`.
    pub webhook_url: String,
    /// First wait after a failed send; each next wait is 4 times longer.
    pub retry_base_secs: u32,
    /// Sends tried before a notification is marked failed.
    pub max_attempts: u32,
}

impl Default for Notify {
    fn default() -> Self {
        Self {
            smtp_url: String::new(),
            email_from: "rxedge-hub@localhost".into(),
            webhook_url: String::new(),
            retry_base_secs: 60,
            max_attempts: 6,
        }
    }
}

/// Retention of prescription images on the hub (docs/security.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Blobs {
    /// Days an image is kept after its order is closed (picked up, rejected,
    /// cancelled, returned); OCR uploads count from their upload.
    pub keep_days: u32,
    /// Days an image no order refers to is kept (its kiosk event never came).
    pub orphan_days: u32,
}

impl Default for Blobs {
    fn default() -> Self {
        Self {
            keep_days: 3650,
            orphan_days: 30,
        }
    }
}

/// How the hub serves TLS (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain HTTP and MQTT: a hub on loopback, or behind a TLS proxy.
    #[default]
    Off,
    /// The hub's own CA (made on first start) issues its server certificate.
    Auto,
    /// Certificate and key files the pharmacy provides.
    Files,
}

/// TLS for HTTPS and MQTTS. On (`auto` or `files`), the web listener speaks
/// only HTTPS, the embedded broker only MQTTS, and kiosks pin the CA they
/// were given at enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// `off`, `auto` or `files`.
    pub mode: TlsMode,
    /// Extra DNS names or IP addresses for the `auto` server certificate,
    /// beyond localhost, this machine's name and the hosts of
    /// `http.public_url` and `broker.public_url`.
    pub names: Vec<String>,
    /// `files`: the server certificate chain (PEM, server certificate first).
    pub cert_file: String,
    /// `files`: its private key (PEM).
    pub key_file: String,
    /// `files`: the CA certificate kiosks pin (PEM); empty: the last
    /// certificate of `cert_file`.
    pub ca_file: String,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            mode: TlsMode::Off,
            names: Vec::new(),
            cert_file: String::new(),
            key_file: String::new(),
            ca_file: String::new(),
        }
    }
}

/// Staff sign-in: sessions and login throttling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// A session unused this long ends (a shared counter PC left signed in).
    pub idle_minutes: u32,
    /// A session ends this long after sign-in, however busy.
    pub session_hours: u32,
    /// Failed sign-ins of one account within `lockout_minutes` before it is locked.
    pub max_failures_per_account: u32,
    /// Failed sign-ins from one address within `lockout_minutes` before it is locked.
    pub max_failures_per_ip: u32,
    /// The window over which failures count, and how long a lock lasts.
    pub lockout_minutes: u32,
    /// A checked session is trusted this long without reading the store
    /// again (0: read every time). Only matters with several hubs on one
    /// database: a sign-out on one reaches the others within this time.
    pub session_cache_secs: u32,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            idle_minutes: 15,
            session_hours: 12,
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            lockout_minutes: 15,
            session_cache_secs: 5,
        }
    }
}

/// OCR of paper prescriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ocr {
    /// Run OCR jobs at all.
    pub enabled: bool,
    /// Parallel workers, each with its own engine (one model in memory
    /// each, about 100 MB for four languages).
    pub workers: u32,
    /// `tesseract` (in-process) or `vision` (an OpenAI-compatible
    /// endpoint, below).
    pub engine: String,
    /// Tesseract language models, `+`-joined.
    pub languages: String,
    /// Tesseract's data folder (empty: its built-in default).
    pub tessdata: String,
    /// `sparse` (the extractor rebuilds the layout) or `auto`.
    pub segmentation: crate::ocr::engine::Segmentation,
    /// Preprocessing steps.
    pub preprocess: crate::ocr::preprocess::Steps,
    /// A brand → generic name list in the `drug_names.tsv` format,
    /// matched besides the catalog (empty: the catalog only).
    pub drug_names_file: String,
    /// Attempts before a job is marked failed.
    pub max_attempts: u32,
    /// Largest side of an image, in pixels.
    pub max_side: u32,
    /// Pages read from a PDF at most.
    pub max_pdf_pages: u32,
    /// Seconds a PDF may take to render before it is refused.
    pub pdf_timeout_secs: u32,
    /// The vision endpoint's base URL (`…/v1`), for `engine = "vision"`.
    pub vision_url: String,
    /// Its API key (sent as a bearer token).
    pub vision_key: String,
    /// Its model name.
    pub vision_model: String,
}

impl Default for Ocr {
    fn default() -> Self {
        Self {
            enabled: true,
            workers: 1,
            engine: "tesseract".into(),
            languages: "deu+fra+ita+eng".into(),
            tessdata: String::new(),
            segmentation: crate::ocr::engine::Segmentation::Sparse,
            preprocess: crate::ocr::preprocess::Steps::default(),
            drug_names_file: String::new(),
            max_attempts: 3,
            max_side: 10_000,
            max_pdf_pages: 5,
            pdf_timeout_secs: 30,
            vision_url: String::new(),
            vision_key: String::new(),
            vision_model: String::new(),
        }
    }
}

/// Prices, fees and VAT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Billing {
    /// Dispensing fee per pack, VAT included, like `4.30`.
    pub dispensing_fee: String,
    /// Standard VAT rate in basis points (8.1 % = 810).
    pub vat_standard_bp: u32,
    /// Reduced VAT rate (medicines) in basis points (2.6 % = 260).
    pub vat_reduced_bp: u32,
}

impl Billing {
    /// The fee in minor units (checked by [`Config::validate`]).
    pub fn dispensing_fee_minor(&self) -> i64 {
        crate::catalog::parse_price(&self.dispensing_fee).unwrap_or(0)
    }
}

impl Default for Billing {
    fn default() -> Self {
        Self {
            dispensing_fee: "4.30".into(),
            vat_standard_bp: 810,
            vat_reduced_bp: 260,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `tracing` filter, e.g. `info,rxedge_hub=debug`.
    pub filter: String,
    /// One JSON object per line instead of plain text.
    pub json: bool,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            id: "store-1".into(),
            name: "RxEdge Pharmacy".into(),
        }
    }
}
impl Default for Paths {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/rxedge-hub"),
        }
    }
}
impl Default for Http {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}
impl Default for Broker {
    fn default() -> Self {
        Self {
            url: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            public_url: "mqtt://127.0.0.1:1883".into(),
            keep_alive_secs: 15,
            username: String::new(),
            password: String::new(),
        }
    }
}
impl Default for Database {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
        }
    }
}
impl Default for Ingest {
    fn default() -> Self {
        Self {
            batch_max: 512,
            max_payload_bytes: rxedge_shared::protocol::MAX_MESSAGE_BYTES,
            max_image_bytes: 8 * 1024 * 1024,
            max_clock_ahead_secs: 3600,
        }
    }
}
impl Default for KioskDefaults {
    fn default() -> Self {
        Self {
            languages: vec!["en".into(), "de".into(), "fr".into(), "it".into()],
            heartbeat_secs: 10,
            stale_after_secs: 45,
            fridges: vec!["fridge-1".into(), "fridge-2".into()],
        }
    }
}
impl Default for Coldchain {
    fn default() -> Self {
        Self {
            escalate_after_secs: 900,
            remind_every_secs: 1800,
            webhook_url: String::new(),
            smtp_url: String::new(),
            email_from: "rxedge-hub@localhost".into(),
            email_to: Vec::new(),
            replay_hours: 72,
            reorder_secs: 0,
        }
    }
}
impl Default for Inventory {
    fn default() -> Self {
        Self {
            min_shelf_life_days: 30,
            expiring_within_days: 90,
            rate_window_days: 30,
        }
    }
}
impl Default for Orders {
    fn default() -> Self {
        Self {
            return_after_days: 10,
            ticket_days: 14,
            interactions_file: PathBuf::new(),
            verify_packs_at_pickup: true,
        }
    }
}
impl Default for Log {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            json: false,
        }
    }
}

impl Config {
    /// Load from an optional file and the process environment. Reads only.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let text = match path {
            Some(p) => Some((
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|e| {
                    ConfigError::Invalid(format!("{}: cannot read: {e}", p.display()))
                })?,
            )),
            None => None,
        };
        let cfg: Self = config::load(
            text.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
            &env,
            ENV_PREFIX,
        )?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.store_id()?;
        if self.notify.max_attempts == 0 || self.notify.retry_base_secs == 0 {
            return Err(ConfigError::Invalid(
                "notify.max_attempts and notify.retry_base_secs must be at least 1".into(),
            ));
        }
        if let Err(e) = crate::catalog::parse_price(&self.billing.dispensing_fee) {
            return Err(ConfigError::Invalid(format!("billing.dispensing_fee: {e}")));
        }
        if self.billing.vat_standard_bp > 10_000 || self.billing.vat_reduced_bp > 10_000 {
            return Err(ConfigError::Invalid(
                "billing.vat_standard_bp and vat_reduced_bp are basis points (8.1 % = 810), at most 10000".into(),
            ));
        }
        if !self.database.url.is_empty()
            && !["sqlite:", "postgres:", "postgresql:"]
                .iter()
                .any(|p| self.database.url.starts_with(p))
        {
            return Err(ConfigError::Invalid(format!(
                "database.url: {:?} is neither sqlite: nor postgres:",
                self.database.url
            )));
        }
        if !self.broker.url.is_empty() {
            parse_mqtt_url(&self.broker.url)
                .map_err(|e| ConfigError::Invalid(format!("broker.url: {e}")))?;
        }
        let public_broker = rxedge_shared::tls::parse_mqtt_url(&self.broker.public_url)
            .map_err(|e| ConfigError::Invalid(format!("broker.public_url: {e}")))?;
        let https = self.http.public_url.starts_with("https://");
        // With tls.mode off, an https:// public URL means a TLS proxy in front.
        match self.tls.mode {
            TlsMode::Off => {}
            TlsMode::Auto | TlsMode::Files => {
                if !https {
                    return Err(ConfigError::Invalid(format!(
                        "http.public_url: {:?} must start with https:// when tls.mode is on",
                        self.http.public_url
                    )));
                }
                if self.broker.url.is_empty() && !public_broker.tls {
                    return Err(ConfigError::Invalid(format!(
                        "broker.public_url: {:?} must start with mqtts:// when tls.mode is on",
                        self.broker.public_url
                    )));
                }
            }
        }
        if self.tls.mode == TlsMode::Files
            && (self.tls.cert_file.is_empty() || self.tls.key_file.is_empty())
        {
            return Err(ConfigError::Invalid(
                "tls.cert_file and tls.key_file: tls.mode = \"files\" needs both".into(),
            ));
        }
        if self.inventory.rate_window_days == 0 {
            return Err(ConfigError::Invalid(
                "inventory.rate_window_days: must be at least 1".into(),
            ));
        }
        if self.ocr.workers == 0 || self.ocr.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "ocr.workers and ocr.max_attempts: must be at least 1".into(),
            ));
        }
        if !["tesseract", "vision"].contains(&self.ocr.engine.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "ocr.engine: {:?} is neither \"tesseract\" nor \"vision\"",
                self.ocr.engine
            )));
        }
        if self.ocr.engine == "vision" && self.ocr.vision_url.is_empty() {
            return Err(ConfigError::Invalid(
                "ocr.vision_url: the vision engine needs an endpoint".into(),
            ));
        }
        if self.ingest.batch_max == 0 {
            return Err(ConfigError::Invalid(
                "ingest.batch_max: must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The store id.
    pub fn store_id(&self) -> Result<StoreId, ConfigError> {
        StoreId::new(self.store.id.clone())
            .map_err(|e| ConfigError::Invalid(format!("store.id: {e}")))
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            crate::store::Db::sqlite_url(&self.paths.state_dir)
        } else {
            self.database.url.clone()
        }
    }

    /// The broker the hub's own client connects to.
    pub fn broker_addr(&self) -> Result<(String, u16), String> {
        if self.broker.url.is_empty() {
            let l = self.broker.listen;
            let host = if l.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                l.ip().to_string()
            };
            Ok((host, l.port()))
        } else {
            parse_mqtt_url(&self.broker.url)
        }
    }
}

/// Parse `mqtt://host:port` or `mqtts://host:port`.
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16), String> {
    rxedge_shared::tls::parse_mqtt_url(url).map(|u| (u.host, u.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_on_needs_secure_public_urls_and_files_mode_needs_both_files() {
        let refusal = |c: &Config| {
            c.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let mut c = Config::default();
        c.tls.mode = TlsMode::Auto;
        let e = refusal(&c);
        assert!(
            e.contains("http.public_url") && e.contains("https://"),
            "{e}"
        );
        c.http.public_url = "https://hub.local:8443".into();
        let e = refusal(&c);
        assert!(
            e.contains("broker.public_url") && e.contains("mqtts://"),
            "{e}"
        );
        c.broker.public_url = "mqtts://hub.local:8883".into();
        assert_eq!(refusal(&c), "");
        c.tls.mode = TlsMode::Files;
        assert!(refusal(&c).contains("tls.cert_file"));
        c.tls.cert_file = "/etc/rxedge/hub.pem".into();
        c.tls.key_file = "/etc/rxedge/hub.key".into();
        assert_eq!(refusal(&c), "");
        // Off, with https:// public URLs: TLS ends at a proxy in front.
        c.tls.mode = TlsMode::Off;
        assert_eq!(refusal(&c), "");
    }

    #[test]
    fn example_file_equals_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/hub.toml");
        let text = std::fs::read_to_string(path)?;
        let cfg: Config = config::load(Some((path, &text)), &[], ENV_PREFIX)?;
        assert_eq!(cfg, Config::default());
        Ok(())
    }

    #[test]
    fn mqtt_urls() {
        assert_eq!(parse_mqtt_url("mqtt://h:1884"), Ok(("h".into(), 1884)));
        assert_eq!(parse_mqtt_url("mqtt://h"), Ok(("h".into(), 1883)));
        assert!(parse_mqtt_url("http://h").is_err());
        assert!(parse_mqtt_url("mqtt://h:x").is_err());
    }

    #[test]
    fn bad_store_id_is_refused() {
        let mut c = Config::default();
        c.store.id = "Bad Store".into();
        assert!(c.validate().is_err());
    }
}
