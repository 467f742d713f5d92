//! Fridge watch on the kiosk: probes, door switches and the buzzer behind
//! traits; readings kept in a sled buffer and published as telemetry batches;
//! the shared alarm engine run locally so the buzzer works with the hub away.
//!
//! Readings taken while the hub is unreachable stay in the buffer and are sent
//! after reconnection flagged `historical`, so the hub's live values are not
//! overwritten; the hub replays them in event time and names the same alarms.

pub mod debounce;
pub mod ds18b20;
#[cfg(feature = "pi")]
pub mod gpio;
pub mod sht3x;
pub mod sim;

use crate::driver::Handle;
use rxedge_shared::coldchain::{Engine, FridgeRules, Input, Transition};
use rxedge_shared::protocol::{Body, DoorChange, Reading, Telemetry};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a probe gave no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// Not there (unplugged, no device file, bus silent).
    #[error("probe missing: {0}")]
    Missing(String),
    /// There, but the value cannot be trusted (CRC, power-on value, range).
    #[error("bad read: {0}")]
    Bad(String),
}

/// A temperature probe.
pub trait TempProbe: Send {
    /// One reading in °C. May block briefly (1-Wire conversion).
    fn read(&mut self) -> Result<f64, ProbeError>;
}

/// A door contact.
pub trait DoorSwitch: Send {
    /// Raw (undebounced) state.
    fn is_open(&mut self) -> Result<bool, ProbeError>;
}

/// The alarm buzzer/LED.
pub trait Buzzer: Send {
    /// Sound or silence it.
    fn set(&mut self, on: bool);
}

/// A buzzer that only records its state (simulator, or no buzzer fitted).
#[derive(Clone, Default)]
pub struct SimBuzzer(pub Arc<AtomicBool>);

impl Buzzer for SimBuzzer {
    fn set(&mut self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

/// One fridge's hardware.
pub struct FridgeHw {
    /// Fridge id (matches the hub's rules and stock location).
    pub id: String,
    /// Its probe.
    pub probe: Box<dyn TempProbe>,
    /// Calibration offset added to every reading, °C.
    pub offset_c: f64,
    /// Its door contact, if fitted.
    pub door: Option<Box<dyn DoorSwitch>>,
}

/// What the local screen and `/api/status` show.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchStatus {
    /// Per fridge.
    pub fridges: Vec<FridgeNow>,
    /// Alarms active on this kiosk's own engine (same ids as the hub's).
    pub active_alarms: Vec<String>,
    /// The buzzer is sounding.
    pub buzzer: bool,
    /// Readings waiting in the buffer for the hub.
    pub buffered: usize,
    /// Readings sent as historical after an outage, since start.
    pub replayed: u64,
}

/// One fridge right now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FridgeNow {
    /// Id.
    pub id: String,
    /// Last value, °C.
    pub celsius: Option<f64>,
    /// When.
    pub at_ms: Option<i64>,
    /// Door open.
    pub door_open: Option<bool>,
    /// Last probe problem.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Buffered {
    Reading { r: Reading, online: bool },
    Door { d: DoorChange, online: bool },
}

/// The watch task's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sample period when the hub's rules name none, seconds.
    pub default_sample_secs: u32,
    /// Door contact settle time, ms.
    pub door_debounce_ms: i64,
    /// Most readings kept while the hub is away (oldest dropped beyond).
    pub buffer_max: usize,
}

use rxedge_shared::clock::system_now_ms as now_ms;

/// The fridge watch.
pub struct Watch {
    fridges: Vec<FridgeHw>,
    buzzer: Box<dyn Buzzer>,
    handle: Handle,
    buffer: sled::Tree,
    settings: Settings,
    engines: HashMap<String, Engine>,
    rules_version: Option<u64>,
    synced: bool,
    debouncers: HashMap<String, debounce::Debouncer>,
    active: BTreeSet<String>,
    status: watch::Sender<WatchStatus>,
    now: HashMap<String, FridgeNow>,
    replayed: u64,
}

impl Watch {
    /// A watch over `fridges`, buffering in `buffer`.
    pub fn new(
        fridges: Vec<FridgeHw>,
        buzzer: Box<dyn Buzzer>,
        handle: Handle,
        buffer: sled::Tree,
        settings: Settings,
    ) -> (Self, watch::Receiver<WatchStatus>) {
        let (status, rx) = watch::channel(WatchStatus::default());
        let debouncers = fridges
            .iter()
            .map(|f| {
                (
                    f.id.clone(),
                    debounce::Debouncer::new(settings.door_debounce_ms),
                )
            })
            .collect();
        (
            Self {
                fridges,
                buzzer,
                handle,
                buffer,
                settings,
                engines: HashMap::new(),
                rules_version: None,
                synced: false,
                debouncers,
                active: BTreeSet::new(),
                status,
                now: HashMap::new(),
                replayed: 0,
            },
            rx,
        )
    }

    /// Rules from the hub's config (the last good one persists across restarts),
    /// or the standard 2–8 °C rules for a fridge it does not name.
    fn sync_rules(&mut self) {
        let cfg = self.handle.status.borrow().config.clone();
        let version = cfg.as_ref().map(|c| c.version);
        if self.synced && version == self.rules_version {
            return;
        }
        self.synced = true;
        self.rules_version = version;
        let named: HashMap<String, FridgeRules> = cfg
            .map(|c| {
                c.fridges
                    .into_iter()
                    .map(|f| (f.fridge.clone(), f))
                    .collect()
            })
            .unwrap_or_default();
        self.engines = self
            .fridges
            .iter()
            .map(|f| {
                let rules = named
                    .get(&f.id)
                    .cloned()
                    .unwrap_or_else(|| FridgeRules::standard_2_8(&f.id));
                (f.id.clone(), Engine::new(rules, 0))
            })
            .collect();
        // A new rule set starts from a clean slate; the hub's record is authoritative.
        self.active.clear();
        tracing::info!(version = ?self.rules_version, "fridge rules in force");
    }

    fn sample_period(&self) -> Duration {
        let secs = self
            .engines
            .values()
            .map(|e| e.rules().sample_secs)
            .min()
            .unwrap_or(self.settings.default_sample_secs)
            .max(1);
        Duration::from_secs(u64::from(secs))
    }

    fn hub_reachable(&self) -> bool {
        let s = self.handle.status.borrow();
        s.connected && s.hub_online
    }

    fn buffer_put(&self, key_ms: i64, tag: &str, item: &Buffered) {
        let mut key = key_ms.to_be_bytes().to_vec();
        key.extend_from_slice(tag.as_bytes());
        match serde_json::to_vec(item) {
            Ok(v) => {
                if let Err(e) = self.buffer.insert(key, v) {
                    tracing::error!(error = %e, "fridge buffer write failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "fridge buffer encode failed"),
        }
    }

    fn engine_push(&mut self, fridge: &str, input: Input) {
        let Some(e) = self.engines.get_mut(fridge) else {
            return;
        };
        for c in e.push(input) {
            let id = c.alarm_id(fridge);
            match c.transition {
                Transition::Raised { .. } => {
                    tracing::warn!(alarm = %id, kind = c.key.kind.as_str(), "local fridge alarm");
                    self.active.insert(id);
                }
                Transition::Cleared { .. } => {
                    self.active.remove(&id);
                }
            }
        }
    }

    fn sample(&mut self) {
        let at = now_ms();
        let online = self.hub_reachable();
        let mut readings = Vec::new();
        // Probe reads may block (1-Wire conversions take ~750 ms each).
        let results: Vec<(String, Result<f64, ProbeError>, f64)> =
            tokio::task::block_in_place(|| {
                self.fridges
                    .iter_mut()
                    .map(|f| (f.id.clone(), f.probe.read(), f.offset_c))
                    .collect()
            });
        for (id, r, offset) in results {
            let celsius = match r {
                Ok(c) => Some(((c + offset) * 100.0).round() / 100.0),
                Err(e) => {
                    tracing::debug!(fridge = %id, error = %e, "no reading");
                    None
                }
            };
            let now = self.now.entry(id.clone()).or_default();
            now.id = id.clone();
            now.at_ms = Some(at);
            now.celsius = celsius.or(now.celsius);
            readings.push((id, celsius));
        }
        for (id, celsius) in readings {
            self.engine_push(&id, Input::Reading { at_ms: at, celsius });
            let r = Reading {
                sensor: id.clone(),
                at_ms: at,
                celsius,
            };
            self.buffer_put(at, &format!("r{id}"), &Buffered::Reading { r, online });
        }
        let ids: Vec<String> = self.fridges.iter().map(|f| f.id.clone()).collect();
        for id in ids {
            self.engine_push(&id, Input::Watermark { at_ms: at });
        }
    }

    fn poll_doors(&mut self) {
        let at = now_ms();
        let online = self.hub_reachable();
        let mut changes = Vec::new();
        for f in self.fridges.iter_mut() {
            let Some(door) = f.door.as_mut() else {
                continue;
            };
            let raw = match door.is_open() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(fridge = %f.id, error = %e, "door switch unreadable");
                    continue;
                }
            };
            if let Some(d) = self.debouncers.get_mut(&f.id) {
                // Stamped when confirmed, not when the bounce began: a reading may
                // already have been evaluated in between, and inputs must not go back in time.
                if let Some((open, _since)) = d.push(at, raw) {
                    changes.push((f.id.clone(), open, at));
                }
            }
        }
        for (id, open, since) in changes {
            self.now.entry(id.clone()).or_default().door_open = Some(open);
            self.engine_push(&id, Input::Door { at_ms: since, open });
            let d = DoorChange {
                fridge: id.clone(),
                at_ms: since,
                open,
            };
            self.buffer_put(since, &format!("d{id}"), &Buffered::Door { d, online });
        }
    }

    /// Send what the buffer holds, oldest first: runs taken while the hub was away
    /// go as historical, the rest as live, but always in time order, so the hub's
    /// engine never sees a reading after a later one. An entry leaves the buffer
    /// only once the outbox has stored it durably.
    async fn publish(&mut self) {
        if !self.hub_reachable() {
            return;
        }
        let mut run: Vec<(sled::IVec, Buffered)> = Vec::new();
        let mut run_online = None;
        let entries: Vec<(sled::IVec, sled::IVec)> = self.buffer.iter().flatten().collect();
        for (k, v) in entries {
            let b = match serde_json::from_slice::<Buffered>(&v) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "dropping undecodable buffer entry");
                    let _ = self.buffer.remove(k);
                    continue;
                }
            };
            let online = match &b {
                Buffered::Reading { online, .. } | Buffered::Door { online, .. } => *online,
            };
            let boundary = run_online.is_some_and(|o| o != online) || run.len() >= 500;
            if boundary && !self.flush_run(&mut run, run_online).await {
                return;
            }
            run_online = Some(online);
            run.push((k, b));
        }
        let _ = self.flush_run(&mut run, run_online).await;
    }

    async fn flush_run(
        &mut self,
        run: &mut Vec<(sled::IVec, Buffered)>,
        online: Option<bool>,
    ) -> bool {
        if run.is_empty() {
            return true;
        }
        let historical = online == Some(false);
        let ok = self.send(run, historical).await;
        if ok && historical {
            self.replayed += run.len() as u64;
        }
        run.clear();
        ok
    }

    async fn send(&mut self, items: &[(sled::IVec, Buffered)], historical: bool) -> bool {
        let mut readings = Vec::new();
        let mut doors = Vec::new();
        let mut as_of = None;
        for (_, b) in items {
            match b {
                Buffered::Reading { r, .. } => {
                    as_of = Some(as_of.map_or(r.at_ms, |a: i64| a.max(r.at_ms)));
                    readings.push(r.clone());
                }
                Buffered::Door { d, .. } => doors.push(d.clone()),
            }
        }
        let body = Body::Telemetry(Telemetry {
            readings,
            doors,
            as_of_ms: as_of,
        });
        match self.handle.enqueue(body, historical).await {
            Ok(_) => {
                for (k, _) in items {
                    let _ = self.buffer.remove(k);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "telemetry kept in the buffer");
                false
            }
        }
    }

    fn trim(&self) {
        let over = self.buffer.len().saturating_sub(self.settings.buffer_max);
        if over > 0 {
            tracing::warn!(
                dropped = over,
                "fridge buffer full: oldest readings dropped"
            );
            for k in self.buffer.iter().keys().take(over).flatten() {
                let _ = self.buffer.remove(k);
            }
        }
    }

    fn report(&mut self) {
        let on = !self.active.is_empty();
        self.buzzer.set(on);
        let mut fridges: Vec<FridgeNow> = self.now.values().cloned().collect();
        fridges.sort_by(|a, b| a.id.cmp(&b.id));
        let _ = self.status.send(WatchStatus {
            fridges,
            active_alarms: self.active.iter().cloned().collect(),
            buzzer: on,
            buffered: self.buffer.len(),
            replayed: self.replayed,
        });
    }

    /// Run until shutdown.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.sync_rules();
        let mut period = self.sample_period();
        let mut tick = tokio::time::interval(period);
        let mut doors = tokio::time::interval(Duration::from_millis(100));
        let mut cfg = self.handle.status.clone();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = doors.tick() => self.poll_doors(),
                _ = cfg.changed() => {
                    self.sync_rules();
                    if self.sample_period() != period {
                        period = self.sample_period();
                        tick = tokio::time::interval(period);
                    }
                    // Reconnected: send what waited.
                    self.publish().await;
                }
                _ = tick.tick() => {
                    self.sample();
                    self.trim();
                    if let Err(e) = self.buffer.flush_async().await {
                        tracing::error!(error = %e, "fridge buffer flush failed");
                    }
                    self.publish().await;
                }
            }
            self.report();
        }
        self.buzzer.set(false);
        let _ = self.buffer.flush_async().await;
    }
}
