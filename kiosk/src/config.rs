//! Kiosk configuration (`kiosk.toml`): only what is local to the device.
//! Everything operational (store name, languages, alarm rules) comes from the hub.

use rxedge_shared::config::{self, ConfigError};
use rxedge_shared::outbox::Limits;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment prefix for overrides.
pub const ENV_PREFIX: &str = "RXEDGE_KIOSK";

/// Whole kiosk configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct Config {
    /// Where state lives.
    pub paths: Paths,
    /// The hub.
    pub hub: Hub,
    /// Local screen and API.
    pub ui: Ui,
    /// Outbox bounds and timing.
    pub outbox: Outbox,
    /// Fridge hardware mapping.
    pub hardware: Hardware,
    /// The scanning camera.
    pub camera: Camera,
    /// Simulated hardware.
    pub simulator: Simulator,
    /// Logging.
    pub log: Log,
}

/// Filesystem locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Paths {
    /// State directory: identity, key, sled store.
    pub state_dir: PathBuf,
}

/// How to reach the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hub {
    /// Broker URL; empty means the one given at enrollment.
    pub broker_url: String,
    /// MQTT keep-alive in seconds.
    pub keep_alive_secs: u64,
    /// Longest wait between reconnect attempts, in ms.
    pub reconnect_max_ms: u64,
    /// While the hub is away, "is it in stock" is answered from answers
    /// at most this old (hours), marked as such.
    pub availability_cache_hours: u32,
}

/// The local screen and API (loopback only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ui {
    /// Listen address.
    pub listen: SocketAddr,
}

/// Outbox settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outbox {
    /// Most events held.
    pub max_events: usize,
    /// Most bytes held (MiB).
    pub max_mib: u64,
    /// Most unacked events in flight.
    pub window: usize,
    /// Ack timeout before going back (ms).
    pub ack_timeout_ms: i64,
    /// First retry delay after a timeout (ms), doubling.
    pub retry_base_ms: i64,
    /// Retry delay cap (ms).
    pub retry_max_ms: i64,
    /// sled page cache (MiB). Its 1 GiB default is far too big for a Pi.
    pub cache_mib: u64,
}

/// Which probe and pins belong to which fridge. Alarm rules and sampling
/// intervals come from the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hardware {
    /// Fridges watched by this kiosk (ignored with the simulator, which has its own).
    pub fridges: Vec<FridgeMap>,
    /// BCM pin of the buzzer/LED (0: none fitted). Needs the `pi` build feature.
    pub buzzer_gpio: u8,
    /// 1-Wire device directory.
    pub w1_root: PathBuf,
    /// Door contact settle time, ms.
    pub door_debounce_ms: u32,
    /// Sampling period before the hub's rules arrive, seconds.
    pub default_sample_secs: u32,
    /// Most readings kept while the hub is unreachable (a week of two fridges at 1/min is 20,160).
    pub buffer_max: usize,
}

/// One fridge's probe and door.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FridgeMap {
    /// Fridge id, as the hub knows it.
    pub id: String,
    /// `ds18b20:28-0316a2794fff` or `sht3x:1:0x44` (I2C bus, address).
    pub probe: String,
    /// Calibration offset, °C.
    #[serde(default)]
    pub offset_c: f64,
    /// BCM pin of the door contact (0: none).
    #[serde(default)]
    pub door_gpio: u8,
}

/// The scanning camera (ignored when the simulator is on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Camera {
    /// V4L2 device, `/dev/video0` or `0`; empty: no camera.
    pub device: String,
    /// Requested width (the closest the camera offers is used).
    pub width: u32,
    /// Requested height.
    pub height: u32,
    /// Requested frames per second.
    pub fps: u32,
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            device: String::new(),
            width: 1280,
            height: 720,
            fps: 15,
        }
    }
}

/// Simulated hardware for demos and tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Simulator {
    /// Use simulated camera and probes (also `--simulate`).
    pub enabled: bool,
    /// Seconds between simulated patient scans (0: none).
    pub scan_every_secs: u64,
    /// Simulated fridges.
    pub fridges: Vec<String>,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `tracing` filter.
    pub filter: String,
    /// JSON lines.
    pub json: bool,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/rxedge-kiosk"),
        }
    }
}
impl Default for Hub {
    fn default() -> Self {
        Self {
            broker_url: String::new(),
            keep_alive_secs: 10,
            reconnect_max_ms: 2000,
            availability_cache_hours: 24,
        }
    }
}
impl Default for Ui {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
        }
    }
}
impl Default for Outbox {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            max_events: l.max_events,
            max_mib: l.max_bytes / (1024 * 1024),
            window: l.window,
            ack_timeout_ms: l.ack_timeout_ms,
            retry_base_ms: l.retry_base_ms,
            retry_max_ms: l.retry_max_ms,
            cache_mib: 8,
        }
    }
}
impl Default for Hardware {
    fn default() -> Self {
        Self {
            fridges: Vec::new(),
            buzzer_gpio: 0,
            w1_root: PathBuf::from("/sys/bus/w1/devices"),
            door_debounce_ms: 200,
            default_sample_secs: 60,
            buffer_max: 100_000,
        }
    }
}
impl Default for Simulator {
    fn default() -> Self {
        Self {
            enabled: false,
            scan_every_secs: 20,
            fridges: vec!["fridge-1".into(), "fridge-2".into()],
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

impl Outbox {
    /// The core's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_events: self.max_events,
            max_bytes: self.max_mib.saturating_mul(1024 * 1024),
            window: self.window,
            ack_timeout_ms: self.ack_timeout_ms,
            retry_base_ms: self.retry_base_ms,
            retry_max_ms: self.retry_max_ms,
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
        if self.outbox.window == 0 || self.outbox.max_events == 0 {
            return Err(ConfigError::Invalid(
                "outbox.window and outbox.max_events must be at least 1".into(),
            ));
        }
        if self.outbox.ack_timeout_ms < 100 {
            return Err(ConfigError::Invalid(
                "outbox.ack_timeout_ms must be at least 100".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_equals_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/kiosk.toml");
        let text = std::fs::read_to_string(path)?;
        let cfg: Config = config::load(Some((path, &text)), &[], ENV_PREFIX)?;
        assert_eq!(cfg, Config::default());
        Ok(())
    }
}
