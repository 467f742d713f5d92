//! Simulated fridges for the demo and the tests: each follows a scenario that
//! can be switched at run time (`POST /api/sim/fridge`). Time runs faster than
//! in a real fridge so that every alarm shows up within a minute of demo time.

use super::{DoorSwitch, ProbeError, TempProbe};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a simulated fridge is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Compressor cycling between about 3.5 and 6.5 °C.
    Normal,
    /// The door stays open and the fridge warms slowly.
    DoorLeftOpen,
    /// The compressor fails: a steady rise towards room temperature.
    CompressorFailure,
    /// The fridge loses power: a faster rise.
    PowerCut,
    /// The probe is unplugged: every read fails.
    ProbeUnplugged,
    /// The thermostat sticks on: the fridge freezes.
    Freezing,
}

impl Scenario {
    /// Every scenario, for the UI.
    pub const ALL: [Scenario; 6] = [
        Scenario::Normal,
        Scenario::DoorLeftOpen,
        Scenario::CompressorFailure,
        Scenario::PowerCut,
        Scenario::ProbeUnplugged,
        Scenario::Freezing,
    ];
}

#[derive(Debug, Clone, Copy)]
struct State {
    scenario: Scenario,
    since_ms: i64,
    from_c: f64,
}

/// The scenario of every simulated fridge, shared by the probes and the UI.
#[derive(Debug, Clone, Default)]
pub struct SimControl {
    inner: Arc<Mutex<HashMap<String, State>>>,
    index: Arc<Mutex<HashMap<String, usize>>>,
}

fn normal(index: usize, t_ms: i64) -> f64 {
    let phase = (t_ms as f64 / 120_000.0 + index as f64 * 0.37) * std::f64::consts::TAU;
    ((5.0 + 1.5 * phase.sin()) * 10.0).round() / 10.0
}

/// Temperature of a fridge in `s`, `t_ms` into it (pure, for tests).
pub fn temperature(
    index: usize,
    s: Scenario,
    since_ms: i64,
    from_c: f64,
    t_ms: i64,
) -> Option<f64> {
    let secs = (t_ms - since_ms).max(0) as f64 / 1000.0;
    let c = match s {
        Scenario::Normal => normal(index, t_ms),
        Scenario::DoorLeftOpen => (from_c + 0.15 * secs).min(14.0),
        Scenario::CompressorFailure => (from_c + 0.3 * secs).min(22.0),
        Scenario::PowerCut => (from_c + 0.6 * secs).min(24.0),
        Scenario::Freezing => (from_c - 0.3 * secs).max(-4.0),
        Scenario::ProbeUnplugged => return None,
    };
    Some((c * 10.0).round() / 10.0)
}

impl SimControl {
    /// Register a fridge (normal).
    pub fn add(&self, fridge: &str, now_ms: i64) {
        let mut idx = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let i = idx.len();
        idx.entry(fridge.to_owned()).or_insert(i);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(fridge.to_owned())
            .or_insert(State {
                scenario: Scenario::Normal,
                since_ms: now_ms,
                from_c: 5.0,
            });
    }

    /// Switch a fridge's scenario; `false` if there is no such fridge.
    pub fn set(&self, fridge: &str, scenario: Scenario, now_ms: i64) -> bool {
        let current = self.read(fridge, now_ms).ok().flatten().unwrap_or(5.0);
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(fridge) {
            Some(st) => {
                *st = State {
                    scenario,
                    since_ms: now_ms,
                    from_c: current,
                };
                true
            }
            None => false,
        }
    }

    /// Current scenarios.
    pub fn scenarios(&self) -> Vec<(String, Scenario)> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, Scenario)> =
            m.iter().map(|(k, s)| (k.clone(), s.scenario)).collect();
        v.sort();
        v
    }

    fn read(&self, fridge: &str, now_ms: i64) -> Result<Option<f64>, ProbeError> {
        let st = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(fridge)
            .copied()
            .ok_or_else(|| ProbeError::Missing(format!("no simulated fridge {fridge}")))?;
        let i = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(fridge)
            .copied()
            .unwrap_or(0);
        Ok(temperature(i, st.scenario, st.since_ms, st.from_c, now_ms))
    }

    fn door(&self, fridge: &str) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(fridge)
            .is_some_and(|s| s.scenario == Scenario::DoorLeftOpen)
    }

    /// A probe for `fridge`.
    pub fn probe(&self, fridge: &str) -> SimProbe {
        SimProbe {
            ctl: self.clone(),
            fridge: fridge.to_owned(),
        }
    }

    /// A door switch for `fridge`.
    pub fn door_switch(&self, fridge: &str) -> SimDoor {
        SimDoor {
            ctl: self.clone(),
            fridge: fridge.to_owned(),
        }
    }
}

use rxedge_shared::clock::system_now_ms as now_ms;

/// A simulated probe.
pub struct SimProbe {
    ctl: SimControl,
    fridge: String,
}

impl TempProbe for SimProbe {
    fn read(&mut self) -> Result<f64, ProbeError> {
        self.ctl
            .read(&self.fridge, now_ms())?
            .ok_or_else(|| ProbeError::Missing("probe unplugged (simulated)".into()))
    }
}

/// A simulated door switch.
pub struct SimDoor {
    ctl: SimControl,
    fridge: String,
}

impl DoorSwitch for SimDoor {
    fn is_open(&mut self) -> Result<bool, ProbeError> {
        Ok(self.ctl.door(&self.fridge))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_move_the_way_they_say() {
        for t in (0..600_000).step_by(1000) {
            let c = temperature(0, Scenario::Normal, 0, 5.0, t).unwrap_or(0.0);
            assert!((3.4..=6.6).contains(&c), "{c}");
        }
        assert_eq!(
            temperature(0, Scenario::CompressorFailure, 0, 5.0, 10_000),
            Some(8.0)
        );
        assert_eq!(
            temperature(0, Scenario::Freezing, 0, 5.0, 100_000),
            Some(-4.0)
        );
        assert_eq!(temperature(0, Scenario::ProbeUnplugged, 0, 5.0, 1), None);
    }

    #[test]
    fn switching_starts_from_the_current_temperature() {
        let c = SimControl::default();
        c.add("f1", 0);
        assert!(c.set("f1", Scenario::CompressorFailure, 30_000));
        let start = c.read("f1", 30_000).ok().flatten().unwrap_or(0.0);
        let later = c.read("f1", 40_000).ok().flatten().unwrap_or(0.0);
        assert!((later - start - 3.0).abs() < 0.2, "{start} → {later}");
        assert!(!c.set("nope", Scenario::Normal, 0));
        assert!(c.door_switch("f1").is_open().is_ok_and(|o| !o));
    }
}
