//! Replaying a logger export through our own alarm engine, with the device's
//! own alarm configuration, so the two can be compared.

use super::berlinger::{Day, DeviceAlarm, DeviceAlarmKind, Export};
use rxedge_shared::coldchain::{
    mean_kinetic_temperature, Direction, Engine, FridgeRules, Input, Mode, TempRule, Transition,
    DEFAULT_DELTA_H_J_PER_MOL,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// One excursion episode of one alarm, as our engine saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Episode {
    /// First reading beyond the limit.
    pub start: String,
    /// When the alarm became active.
    pub alarm_at: String,
    /// When it cleared (`None`: still on at the end of the data).
    pub end: Option<String>,
}

/// One configured alarm and what our engine made of the readings.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmReport {
    /// Device alarm number.
    pub id: String,
    /// `high_single`, `high_cumulative`, `low_single`, `low_cumulative`.
    pub kind: DeviceAlarmKind,
    /// Limit, °C.
    pub limit_c: f64,
    /// Minutes allowed.
    pub minutes: u32,
    /// Episodes in time order.
    pub episodes: Vec<Episode>,
}

/// What `coldchain import` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Device model.
    pub device: String,
    /// Serial.
    pub serial: String,
    /// Logging interval, minutes.
    pub interval_min: Option<u32>,
    /// Interval readings in the file.
    pub readings: usize,
    /// Of which the logger had no value.
    pub missing: usize,
    /// Lowest reading, °C.
    pub min: Option<f64>,
    /// Highest reading, °C.
    pub max: Option<f64>,
    /// Our MKT over the readings, °C.
    pub mkt: Option<f64>,
    /// The device's MKT, °C.
    pub device_mkt: Option<f64>,
    /// Our alarms.
    pub alarms: Vec<AlarmReport>,
    /// The device's alarms, as the file states them.
    pub device_alarms: Vec<DeviceAlarm>,
    /// Daily history (Fridge-tag).
    pub days: Vec<Day>,
}

const TIME: &str = "%Y-%m-%d %H:%M";

fn ms(t: &chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp_millis()
}

fn fmt(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format(TIME).to_string())
        .unwrap_or_default()
}

/// The device's alarm configuration as our rules.
pub fn rules_of(e: &Export) -> FridgeRules {
    let interval = e.interval_min.unwrap_or(1).max(1);
    FridgeRules {
        fridge: e.serial.clone(),
        sample_secs: interval * 60,
        temp: e
            .alarms
            .iter()
            .map(|a| {
                let (direction, mode) = match a.kind {
                    DeviceAlarmKind::HighSingle => (Direction::High, Mode::Single),
                    DeviceAlarmKind::HighCumulative => (Direction::High, Mode::Cumulative),
                    DeviceAlarmKind::LowSingle => (Direction::Low, Mode::Single),
                    DeviceAlarmKind::LowCumulative => (Direction::Low, Mode::Cumulative),
                };
                TempRule {
                    id: a.id.clone(),
                    direction,
                    limit_c: a.limit_c,
                    mode,
                    delay_secs: a.minutes * 60,
                }
            })
            .collect(),
        hysteresis_c: 0.0,
        // A missing sample or two is tolerated; a longer silence is not evidence.
        max_gap_secs: 2 * interval * 60,
        offline_after_secs: 0,
        door_open_max_secs: 0,
        bad_read_streak: 0,
        // Berlinger loggers mark rows without a value as out of limits.
        missing_is_excursion: true,
    }
}

/// Replay the export's readings through our engine and summarise.
pub fn replay(e: &Export) -> ImportReport {
    let rules = rules_of(e);
    let max_hold = i64::from(rules.max_gap_secs) * 1000;
    let mut engine = Engine::new(rules, 0);
    let mut episodes: BTreeMap<String, Vec<Episode>> = BTreeMap::new();
    let mut changes = Vec::new();
    for (t, c) in &e.readings {
        changes.extend(engine.push(Input::Reading {
            at_ms: ms(t),
            celsius: *c,
        }));
    }
    changes.extend(engine.flush());
    for ch in changes {
        let list = episodes.entry(ch.key.rule.clone()).or_default();
        match ch.transition {
            Transition::Raised { start_ms, onset_ms } => list.push(Episode {
                start: fmt(start_ms),
                alarm_at: fmt(onset_ms),
                end: None,
            }),
            Transition::Cleared {
                onset_ms, end_ms, ..
            } => {
                let at = fmt(onset_ms);
                if let Some(ep) = list.iter_mut().rev().find(|ep| ep.alarm_at == at) {
                    ep.end = Some(fmt(end_ms));
                }
            }
        }
    }
    let samples: Vec<(i64, f64)> = e
        .readings
        .iter()
        .filter_map(|(t, c)| Some((ms(t), (*c)?)))
        .collect();
    let delta_h = e
        .mkt_energy_kj
        .map_or(DEFAULT_DELTA_H_J_PER_MOL, |kj| kj * 1000.0);
    ImportReport {
        device: e.device.clone(),
        serial: e.serial.clone(),
        interval_min: e.interval_min,
        readings: e.readings.len(),
        missing: e.readings.iter().filter(|r| r.1.is_none()).count(),
        min: samples.iter().map(|s| s.1).reduce(f64::min),
        max: samples.iter().map(|s| s.1).reduce(f64::max),
        mkt: mean_kinetic_temperature(&samples, delta_h, max_hold),
        device_mkt: e.device_mkt,
        alarms: e
            .alarms
            .iter()
            .map(|a| AlarmReport {
                id: a.id.clone(),
                kind: a.kind,
                limit_c: a.limit_c,
                minutes: a.minutes,
                episodes: episodes.remove(&a.id).unwrap_or_default(),
            })
            .collect(),
        device_alarms: e.device_alarms.clone(),
        days: e.days.clone(),
    }
}

/// Keep an export's daily records (and the logger's alarms of each day) as the
/// history of `fridge`. Re-importing the same file changes nothing.
pub async fn store_history(
    db: &crate::store::Db,
    fridge: &str,
    report: &ImportReport,
    now_ms: i64,
) -> Result<usize, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let mut stored = 0;
    for d in &report.days {
        let alarms: Vec<&DeviceAlarm> = report
            .device_alarms
            .iter()
            .filter(|a| a.date.as_deref() == Some(&d.date))
            .collect();
        stored += sqlx::query(
            "INSERT INTO logger_days (fridge, serial, day, min_c, max_c, avg_c, minutes_out, alarms, imported_ms) \
             VALUES ($1, $2, $3, CAST($4 AS DOUBLE PRECISION), CAST($5 AS DOUBLE PRECISION), CAST($6 AS DOUBLE PRECISION), $7, $8, $9) \
             ON CONFLICT (serial, day) DO NOTHING",
        )
        .bind(fridge)
        .bind(&report.serial)
        .bind(&d.date)
        .bind(crate::store::nullable_f64(d.min_c))
        .bind(crate::store::nullable_f64(d.max_c))
        .bind(crate::store::nullable_f64(d.avg_c))
        .bind(serde_json::to_string(&d.minutes_out).unwrap_or_default())
        .bind(serde_json::to_string(&alarms).unwrap_or_default())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
    }
    tx.commit().await?;
    Ok(stored)
}
