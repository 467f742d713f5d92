//! Alarm rules for one fridge, as technicians set them on the hub.

use serde::{Deserialize, Serialize};

/// Which side of the limit is an excursion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Above the limit.
    High,
    /// Below the limit.
    Low,
}

/// How time out of range is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One continuous excursion must last `delay_secs`.
    Single,
    /// All time out of range adds up until `delay_secs` is spent. Once raised, the
    /// alarm stays active until a person resets it: the budget is gone.
    Cumulative,
}

/// One temperature alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TempRule {
    /// Stable id within the fridge (`high`, `low-freeze`, …).
    pub id: String,
    /// Above or below.
    pub direction: Direction,
    /// Limit, °C. An excursion is strictly beyond it.
    pub limit_c: f64,
    /// Single continuous or cumulative.
    pub mode: Mode,
    /// Time allowed out of range before the alarm becomes active (alarm delay), seconds.
    pub delay_secs: u32,
}

/// Every rule for one fridge. A copy is stored with each alarm it raises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FridgeRules {
    /// Fridge id; matches the kiosk's hardware mapping and the hub's stock location.
    pub fridge: String,
    /// Seconds between samples the kiosk takes.
    pub sample_secs: u32,
    /// Temperature alarms.
    pub temp: Vec<TempRule>,
    /// A single-event alarm clears only this far back inside the limit, °C.
    pub hysteresis_c: f64,
    /// A reading is trusted to hold for at most this long; a longer gap breaks a
    /// continuous excursion (it is unknown what happened in between), seconds.
    pub max_gap_secs: u32,
    /// No good reading for this long raises "sensor offline", seconds. 0 turns it off.
    pub offline_after_secs: u32,
    /// The door open this long raises "door open", seconds. 0 turns it off.
    pub door_open_max_secs: u32,
    /// This many bad reads in a row raise "bad reads". 0 turns it off.
    pub bad_read_streak: u32,
    /// Fail-safe: a missing value counts as beyond every limit, so time that
    /// cannot be shown in range counts against the product, as data loggers do.
    /// Off by default on kiosks, where the offline and bad-read alarms cover it.
    #[serde(default)]
    pub missing_is_excursion: bool,
}

/// Why a rule set was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// A field is out of range.
    #[error("fridge {fridge}: {problem}")]
    Invalid {
        /// Fridge id.
        fridge: String,
        /// What is wrong.
        problem: String,
    },
}

impl FridgeRules {
    /// The usual 2–8 °C medicine fridge: high above 8 °C for 30 min, low below
    /// 2 °C for 30 min, freezing below 0 °C for 5 min, 2 h cumulative above 8 °C.
    pub fn standard_2_8(fridge: impl Into<String>) -> Self {
        let t = |id: &str, direction, limit_c, mode, delay_secs| TempRule {
            id: id.into(),
            direction,
            limit_c,
            mode,
            delay_secs,
        };
        Self {
            fridge: fridge.into(),
            sample_secs: 60,
            temp: vec![
                t("high", Direction::High, 8.0, Mode::Single, 30 * 60),
                t(
                    "high-cumulative",
                    Direction::High,
                    8.0,
                    Mode::Cumulative,
                    120 * 60,
                ),
                t("low", Direction::Low, 2.0, Mode::Single, 30 * 60),
                t("freezing", Direction::Low, 0.0, Mode::Single, 5 * 60),
            ],
            hysteresis_c: 0.5,
            max_gap_secs: 300,
            offline_after_secs: 600,
            door_open_max_secs: 120,
            bad_read_streak: 5,
            missing_is_excursion: false,
        }
    }

    /// Check the rules make sense before they are stored or applied.
    pub fn validate(&self) -> Result<(), RuleError> {
        let bad = |problem: String| {
            Err(RuleError::Invalid {
                fridge: self.fridge.clone(),
                problem,
            })
        };
        // Ids become parts of alarm ids and URLs.
        let safe = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !safe(&self.fridge) {
            return bad("fridge id must be 1–64 letters, digits, '-' or '_'".into());
        }
        if self.sample_secs == 0 {
            return bad("sample_secs must be at least 1".into());
        }
        if self.max_gap_secs < self.sample_secs {
            return bad("max_gap_secs must be at least sample_secs".into());
        }
        if !(0.0..=10.0).contains(&self.hysteresis_c) {
            return bad("hysteresis_c must be between 0 and 10 °C".into());
        }
        let mut ids = std::collections::HashSet::new();
        for r in &self.temp {
            if !safe(&r.id) || !ids.insert(r.id.as_str()) {
                return bad(format!(
                    "rule id {:?} is repeated or not letters, digits, '-', '_'",
                    r.id
                ));
            }
            if !r.limit_c.is_finite() || !(-100.0..=100.0).contains(&r.limit_c) {
                return bad(format!(
                    "rule {}: limit {} °C is not plausible",
                    r.id, r.limit_c
                ));
            }
        }
        Ok(())
    }
}
