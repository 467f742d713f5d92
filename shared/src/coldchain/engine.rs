//! The alarm engine for one fridge: a pure state machine in event time.
//!
//! Inputs are readings (a temperature or a bad read), door changes and
//! watermarks ("nothing earlier than this is still coming"). Outputs are alarm
//! transitions. Each alarm is identified by its fridge, rule and onset time, so
//! two engines fed the same readings (the kiosk's and the hub's) name the same
//! alarm, and a replay cannot double it.
//!
//! Conventions, chosen to match what data loggers report:
//! - A reading holds until the next one (sample and hold), but never for longer
//!   than `max_gap_secs`: a longer silence breaks a continuous excursion.
//! - An excursion starts at the first reading beyond the limit. A single-event
//!   alarm's onset is that start plus the delay, if the excursion lasts that long;
//!   a cumulative alarm's onset is the moment the budget is spent.
//! - Inputs may arrive out of order within `reorder_ms` of the newest one seen
//!   (or before the last watermark); later ones are counted and not evaluated.
//!   Exact duplicates are ignored.

use super::rules::{Direction, FridgeRules, Mode, TempRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the engine is told.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A sample: °C, or `None` for a bad read (CRC failure, power-on value, bus error).
    Reading {
        /// Event time, ms since epoch.
        at_ms: i64,
        /// The value.
        celsius: Option<f64>,
    },
    /// The door opened or closed (already debounced).
    Door {
        /// Event time.
        at_ms: i64,
        /// Open now.
        open: bool,
    },
    /// No input earlier than this will come: lets time-based alarms fire
    /// (sensor offline, door open) without a new reading.
    Watermark {
        /// Event time.
        at_ms: i64,
    },
}

impl Input {
    fn at(&self) -> i64 {
        match *self {
            Input::Reading { at_ms, .. }
            | Input::Door { at_ms, .. }
            | Input::Watermark { at_ms } => at_ms,
        }
    }
    // Order of inputs with the same timestamp: door, reading, watermark.
    fn rank(&self) -> u8 {
        match self {
            Input::Door { .. } => 0,
            Input::Reading { .. } => 1,
            Input::Watermark { .. } => 2,
        }
    }
}

/// The kind of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Above the limit for one continuous period.
    HighSingle,
    /// Above the limit for too long in total.
    HighCumulative,
    /// Below the limit for one continuous period.
    LowSingle,
    /// Below the limit for too long in total.
    LowCumulative,
    /// No good reading for too long.
    SensorOffline,
    /// Door open for too long.
    DoorOpen,
    /// Too many bad reads in a row.
    BadReads,
}

impl AlarmKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::HighSingle => "high_single",
            AlarmKind::HighCumulative => "high_cumulative",
            AlarmKind::LowSingle => "low_single",
            AlarmKind::LowCumulative => "low_cumulative",
            AlarmKind::SensorOffline => "sensor_offline",
            AlarmKind::DoorOpen => "door_open",
            AlarmKind::BadReads => "bad_reads",
        }
    }

    /// An excursion of the stored product's temperature (puts stock on hold),
    /// as opposed to a fault of the equipment.
    pub fn is_excursion(self) -> bool {
        matches!(
            self,
            AlarmKind::HighSingle
                | AlarmKind::HighCumulative
                | AlarmKind::LowSingle
                | AlarmKind::LowCumulative
        )
    }

    fn of(rule: &TempRule) -> Self {
        match (rule.direction, rule.mode) {
            (Direction::High, Mode::Single) => AlarmKind::HighSingle,
            (Direction::High, Mode::Cumulative) => AlarmKind::HighCumulative,
            (Direction::Low, Mode::Single) => AlarmKind::LowSingle,
            (Direction::Low, Mode::Cumulative) => AlarmKind::LowCumulative,
        }
    }
}

/// Which alarm of a fridge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlarmKey {
    /// Rule id (`high`, …) or the built-in `offline`, `door`, `bad_reads`.
    pub rule: String,
    /// Kind.
    pub kind: AlarmKind,
}

/// An alarm's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Transition {
    /// The alarm became active.
    Raised {
        /// When the condition began (first reading out of range, door opened, …).
        start_ms: i64,
        /// When the alarm became active (start + delay, or budget spent).
        onset_ms: i64,
    },
    /// The condition is over (or a person reset a cumulative alarm).
    Cleared {
        /// Onset of the alarm this clears.
        onset_ms: i64,
        /// When it ended.
        end_ms: i64,
        /// Most extreme temperature seen during it, for temperature alarms.
        peak_c: Option<f64>,
    },
}

/// One output of the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Which alarm.
    pub key: AlarmKey,
    /// What happened.
    pub transition: Transition,
}

impl Change {
    /// Stable alarm id shared by kiosk and hub: `fridge:rule:onset_ms`.
    pub fn alarm_id(&self, fridge: &str) -> String {
        let onset = match self.transition {
            Transition::Raised { onset_ms, .. } | Transition::Cleared { onset_ms, .. } => onset_ms,
        };
        format!("{fridge}:{}:{onset}", self.key.rule)
    }
}

#[derive(Debug, Clone, Default)]
struct Active {
    onset_ms: i64,
    peak_c: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct TempState {
    /// Single: first reading of the current excursion.
    run_start: Option<i64>,
    /// Cumulative: time spent out of range so far, ms.
    acc_ms: i64,
    /// Cumulative: first reading of the current out-of-range stretch.
    stretch_start: Option<i64>,
    /// Cumulative: since when the latest out-of-range value holds.
    out_since: Option<i64>,
    peak_c: Option<f64>,
    active: Option<Active>,
}

/// What a fridge looks like right now, for screens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Last good value and its time.
    pub last_good: Option<(i64, f64)>,
    /// Door open since.
    pub door_open_since: Option<i64>,
    /// Active alarms with their onset.
    pub active: Vec<(AlarmKey, i64)>,
    /// Excursions under way that are not alarms yet: rule and start.
    pub pending: Vec<(AlarmKey, i64)>,
    /// Bad reads in a row.
    pub bad_streak: u32,
}

/// The engine for one fridge.
#[derive(Debug, Clone)]
pub struct Engine {
    rules: FridgeRules,
    reorder_ms: i64,
    buffer: BTreeMap<(i64, u8), Input>,
    newest_ms: Option<i64>,
    done_ms: Option<i64>,
    temp: Vec<TempState>,
    last_good: Option<(i64, f64)>,
    /// Last sample the temperature rules counted (a good one, or a bad one when
    /// missing values count as excursions).
    last_counted: Option<i64>,
    first_seen: Option<i64>,
    offline: Option<Active>,
    bad_streak: u32,
    bad_start: Option<i64>,
    bad: Option<Active>,
    door_open_since: Option<i64>,
    door: Option<Active>,
    /// Inputs that came later than the reorder window allows.
    pub too_late: u64,
    /// Inputs seen twice.
    pub duplicates: u64,
}

const OFFLINE: &str = "offline";
const DOOR: &str = "door";
const BAD: &str = "bad_reads";

impl Engine {
    /// A fresh engine. `reorder_ms` is how late an input may arrive and still be
    /// evaluated in its place (0 when inputs come in order, as on the kiosk).
    pub fn new(rules: FridgeRules, reorder_ms: i64) -> Self {
        let temp = vec![TempState::default(); rules.temp.len()];
        Self {
            rules,
            reorder_ms: reorder_ms.max(0),
            buffer: BTreeMap::new(),
            newest_ms: None,
            done_ms: None,
            temp,
            last_good: None,
            last_counted: None,
            first_seen: None,
            offline: None,
            bad_streak: 0,
            bad_start: None,
            bad: None,
            door_open_since: None,
            door: None,
            too_late: 0,
            duplicates: 0,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &FridgeRules {
        &self.rules
    }

    /// Feed one input; returns the alarm changes it caused (possibly for earlier
    /// buffered inputs).
    pub fn push(&mut self, input: Input) -> Vec<Change> {
        let at = input.at();
        if self.done_ms.is_some_and(|d| at <= d) {
            if let Input::Watermark { .. } = input {
                return Vec::new();
            }
            // Already evaluated past this point.
            self.too_late += 1;
            return Vec::new();
        }
        let key = (at, input.rank());
        if self.buffer.contains_key(&key) {
            self.duplicates += 1;
            return Vec::new();
        }
        self.buffer.insert(key, input);
        self.newest_ms = Some(self.newest_ms.map_or(at, |n| n.max(at)));
        let release = match input {
            Input::Watermark { at_ms } => at_ms,
            _ => self.newest_ms.unwrap_or(at) - self.reorder_ms,
        };
        self.release(release)
    }

    /// Evaluate everything buffered up to `upto` (inclusive).
    fn release(&mut self, upto: i64) -> Vec<Change> {
        let mut out = Vec::new();
        while let Some((&(at, rank), _)) = self.buffer.first_key_value() {
            if at > upto {
                break;
            }
            let Some(input) = self.buffer.remove(&(at, rank)) else {
                break;
            };
            self.apply(input, &mut out);
            self.done_ms = Some(at);
        }
        out
    }

    /// Everything buffered is evaluated now (end of a replay).
    pub fn flush(&mut self) -> Vec<Change> {
        let upto = self.newest_ms.unwrap_or(i64::MIN);
        self.release(upto)
    }

    /// A person reset a cumulative alarm (its budget starts again) at `at_ms`.
    pub fn reset(&mut self, rule: &str, at_ms: i64) -> Vec<Change> {
        let mut out = Vec::new();
        for (i, r) in self.rules.temp.iter().enumerate() {
            if r.id != rule || r.mode != Mode::Cumulative {
                continue;
            }
            let st = &mut self.temp[i];
            st.acc_ms = 0;
            st.stretch_start = None;
            st.out_since = st.out_since.map(|s| s.max(at_ms));
            if let Some(a) = st.active.take() {
                out.push(Change {
                    key: key_of(r),
                    transition: Transition::Cleared {
                        onset_ms: a.onset_ms,
                        end_ms: at_ms,
                        peak_c: a.peak_c,
                    },
                });
            }
            st.peak_c = None;
        }
        out
    }

    /// Current state for screens.
    pub fn snapshot(&self) -> Snapshot {
        let mut active = Vec::new();
        let mut pending = Vec::new();
        for (r, st) in self.rules.temp.iter().zip(&self.temp) {
            match (&st.active, st.run_start.or(st.stretch_start)) {
                (Some(a), _) => active.push((key_of(r), a.onset_ms)),
                (None, Some(s)) => pending.push((key_of(r), s)),
                _ => {}
            }
        }
        for (name, kind, a) in [
            (OFFLINE, AlarmKind::SensorOffline, &self.offline),
            (DOOR, AlarmKind::DoorOpen, &self.door),
            (BAD, AlarmKind::BadReads, &self.bad),
        ] {
            if let Some(a) = a {
                active.push((
                    AlarmKey {
                        rule: name.into(),
                        kind,
                    },
                    a.onset_ms,
                ));
            }
        }
        Snapshot {
            last_good: self.last_good,
            door_open_since: self.door_open_since,
            active,
            pending,
            bad_streak: self.bad_streak,
        }
    }

    fn apply(&mut self, input: Input, out: &mut Vec<Change>) {
        let at = input.at();
        self.first_seen.get_or_insert(at);
        self.advance(at, out);
        match input {
            Input::Watermark { .. } => {}
            Input::Door { open, .. } => self.door_input(at, open, out),
            Input::Reading { celsius, .. } => match celsius.filter(|c| c.is_finite()) {
                Some(c) => self.good_reading(at, c, out),
                None => {
                    if self.rules.missing_is_excursion {
                        self.temp_step(at, None, out);
                    }
                    self.bad_reading(at, out)
                }
            },
        }
    }

    /// Let time pass up to `t` on the held state: delays expire, budgets run out.
    fn advance(&mut self, t: i64, out: &mut Vec<Change>) {
        let max_gap = i64::from(self.rules.max_gap_secs) * 1000;
        // A value is trusted until the next reading, for at most max_gap.
        let held_until = self.last_counted.map(|g| t.min(g + max_gap));
        for (r, st) in self.rules.temp.iter().zip(self.temp.iter_mut()) {
            let delay = i64::from(r.delay_secs) * 1000;
            let Some(held) = held_until else { continue };
            if st.active.is_some() {
                continue;
            }
            match r.mode {
                Mode::Single => {
                    if let Some(s) = st.run_start {
                        if held >= s + delay {
                            raise(r, st, s, s + delay, out);
                        }
                    }
                }
                Mode::Cumulative => {
                    if let Some(s) = st.out_since {
                        if st.acc_ms + (held - s) >= delay {
                            let onset = s + (delay - st.acc_ms);
                            let start = st.stretch_start.unwrap_or(s);
                            raise(r, st, start, onset, out);
                        }
                    }
                }
            }
        }
        let offline_after = i64::from(self.rules.offline_after_secs) * 1000;
        if offline_after > 0 && self.offline.is_none() {
            let since = self.last_good.map(|(g, _)| g).or(self.first_seen);
            if let Some(g) = since {
                if t >= g + offline_after {
                    let onset = g + offline_after;
                    self.offline = Some(Active {
                        onset_ms: onset,
                        peak_c: None,
                    });
                    out.push(Change {
                        key: AlarmKey {
                            rule: OFFLINE.into(),
                            kind: AlarmKind::SensorOffline,
                        },
                        transition: Transition::Raised {
                            start_ms: g,
                            onset_ms: onset,
                        },
                    });
                }
            }
        }
        let door_max = i64::from(self.rules.door_open_max_secs) * 1000;
        if let (Some(o), None, true) = (self.door_open_since, &self.door, door_max > 0) {
            if t >= o + door_max {
                self.door = Some(Active {
                    onset_ms: o + door_max,
                    peak_c: None,
                });
                out.push(Change {
                    key: AlarmKey {
                        rule: DOOR.into(),
                        kind: AlarmKind::DoorOpen,
                    },
                    transition: Transition::Raised {
                        start_ms: o,
                        onset_ms: o + door_max,
                    },
                });
            }
        }
    }

    fn good_reading(&mut self, t: i64, c: f64, out: &mut Vec<Change>) {
        self.temp_step(t, Some(c), out);
        self.last_good = Some((t, c));
        self.bad_streak = 0;
        self.bad_start = None;
        if let Some(a) = self.offline.take() {
            out.push(cleared(OFFLINE, AlarmKind::SensorOffline, a, t));
        }
        if let Some(a) = self.bad.take() {
            out.push(cleared(BAD, AlarmKind::BadReads, a, t));
        }
    }

    /// One sample through the temperature rules; `None` is a missing value that
    /// counts as beyond every limit (fail-safe mode).
    fn temp_step(&mut self, t: i64, value: Option<f64>, out: &mut Vec<Change>) {
        let max_gap = i64::from(self.rules.max_gap_secs) * 1000;
        let gap_broken = self.last_counted.is_some_and(|g| t - g > max_gap);
        let hyst = self.rules.hysteresis_c;
        let prev = self.last_counted;
        for (r, st) in self.rules.temp.iter().zip(self.temp.iter_mut()) {
            let beyond = match (value, r.direction) {
                (None, _) => true,
                (Some(c), Direction::High) => c > r.limit_c,
                (Some(c), Direction::Low) => c < r.limit_c,
            };
            // Missing values have no temperature: they neither set a peak nor clear.
            let c = value.unwrap_or(f64::NAN);
            match r.mode {
                Mode::Single => {
                    if gap_broken && st.active.is_none() {
                        st.run_start = None;
                        st.peak_c = None;
                    }
                    if beyond {
                        st.run_start.get_or_insert(t);
                        if value.is_some() {
                            track_peak(r.direction, &mut st.peak_c, c);
                            if let Some(a) = st.active.as_mut() {
                                track_peak(r.direction, &mut a.peak_c, c);
                            }
                        }
                    } else {
                        let back = match r.direction {
                            Direction::High => c <= r.limit_c - hyst,
                            Direction::Low => c >= r.limit_c + hyst,
                        };
                        match st.active.take() {
                            Some(a) if back => {
                                out.push(Change {
                                    key: key_of(r),
                                    transition: Transition::Cleared {
                                        onset_ms: a.onset_ms,
                                        end_ms: t,
                                        peak_c: a.peak_c,
                                    },
                                });
                                st.run_start = None;
                                st.peak_c = None;
                            }
                            // Inside the hysteresis band: still active.
                            Some(a) => st.active = Some(a),
                            None => {
                                st.run_start = None;
                                st.peak_c = None;
                            }
                        }
                    }
                }
                Mode::Cumulative => {
                    if let (Some(s), Some(g)) = (st.out_since, prev) {
                        st.acc_ms += t.min(g + max_gap) - s;
                    }
                    if beyond {
                        st.out_since = Some(t);
                        st.stretch_start.get_or_insert(t);
                        if value.is_some() {
                            track_peak(r.direction, &mut st.peak_c, c);
                            if let Some(a) = st.active.as_mut() {
                                track_peak(r.direction, &mut a.peak_c, c);
                            }
                        }
                    } else {
                        st.out_since = None;
                        if st.active.is_none() {
                            st.stretch_start = None;
                        }
                    }
                }
            }
        }
        self.last_counted = Some(t);
    }

    fn bad_reading(&mut self, t: i64, out: &mut Vec<Change>) {
        self.bad_streak += 1;
        let start = *self.bad_start.get_or_insert(t);
        let n = self.rules.bad_read_streak;
        if n > 0 && self.bad_streak >= n && self.bad.is_none() {
            self.bad = Some(Active {
                onset_ms: t,
                peak_c: None,
            });
            out.push(Change {
                key: AlarmKey {
                    rule: BAD.into(),
                    kind: AlarmKind::BadReads,
                },
                transition: Transition::Raised {
                    start_ms: start,
                    onset_ms: t,
                },
            });
        }
    }

    fn door_input(&mut self, t: i64, open: bool, out: &mut Vec<Change>) {
        if open {
            self.door_open_since.get_or_insert(t);
        } else {
            self.door_open_since = None;
            if let Some(a) = self.door.take() {
                out.push(cleared(DOOR, AlarmKind::DoorOpen, a, t));
            }
        }
    }
}

fn key_of(r: &TempRule) -> AlarmKey {
    AlarmKey {
        rule: r.id.clone(),
        kind: AlarmKind::of(r),
    }
}

fn raise(r: &TempRule, st: &mut TempState, start: i64, onset: i64, out: &mut Vec<Change>) {
    st.active = Some(Active {
        onset_ms: onset,
        peak_c: st.peak_c,
    });
    out.push(Change {
        key: key_of(r),
        transition: Transition::Raised {
            start_ms: start,
            onset_ms: onset,
        },
    });
}

fn cleared(rule: &str, kind: AlarmKind, a: Active, end_ms: i64) -> Change {
    Change {
        key: AlarmKey {
            rule: rule.into(),
            kind,
        },
        transition: Transition::Cleared {
            onset_ms: a.onset_ms,
            end_ms,
            peak_c: a.peak_c,
        },
    }
}

fn track_peak(d: Direction, peak: &mut Option<f64>, c: f64) {
    *peak = Some(match (*peak, d) {
        (None, _) => c,
        (Some(p), Direction::High) => p.max(c),
        (Some(p), Direction::Low) => p.min(c),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn rules() -> FridgeRules {
        FridgeRules::standard_2_8("f1")
    }

    fn reading(min: i64, c: f64) -> Input {
        Input::Reading {
            at_ms: min * MIN,
            celsius: Some(c),
        }
    }

    fn run(e: &mut Engine, inputs: impl IntoIterator<Item = Input>) -> Vec<Change> {
        let mut out: Vec<Change> = inputs.into_iter().flat_map(|i| e.push(i)).collect();
        out.extend(e.flush());
        out
    }

    fn raised(c: &[Change], kind: AlarmKind) -> Vec<(i64, i64)> {
        c.iter()
            .filter(|c| c.key.kind == kind)
            .filter_map(|c| match c.transition {
                Transition::Raised { start_ms, onset_ms } => Some((start_ms / MIN, onset_ms / MIN)),
                _ => None,
            })
            .collect()
    }

    fn cleared(c: &[Change], kind: AlarmKind) -> Vec<i64> {
        c.iter()
            .filter(|c| c.key.kind == kind)
            .filter_map(|c| match c.transition {
                Transition::Cleared { end_ms, .. } => Some(end_ms / MIN),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn single_excursion_raises_after_its_delay_and_clears_with_hysteresis() {
        let mut e = Engine::new(rules(), 0);
        // 5 °C, then 9 °C from minute 10 to 59, then 7.8 (inside the 0.5 band), then 7.0.
        let mut inputs: Vec<Input> = (0..10).map(|m| reading(m, 5.0)).collect();
        inputs.extend((10..60).map(|m| reading(m, 9.0)));
        inputs.push(reading(60, 7.8));
        inputs.push(reading(61, 7.0));
        let c = run(&mut e, inputs);
        assert_eq!(raised(&c, AlarmKind::HighSingle), vec![(10, 40)]);
        assert_eq!(cleared(&c, AlarmKind::HighSingle), vec![61]);
        let peak = c.iter().find_map(|c| match c.transition {
            Transition::Cleared { peak_c, .. } if c.key.kind == AlarmKind::HighSingle => peak_c,
            _ => None,
        });
        assert_eq!(peak, Some(9.0));
    }

    #[test]
    fn a_short_excursion_is_not_an_alarm_but_counts_towards_the_budget() {
        let mut e = Engine::new(rules(), 0);
        let mut inputs = Vec::new();
        // Five 25-minute excursions, each below the 30-minute single delay; the
        // 120-minute cumulative budget is spent 20 minutes into the fifth.
        for k in 0..5 {
            let base = k * 60;
            inputs.extend((base..base + 25).map(|m| reading(m, 9.0)));
            inputs.extend((base + 25..base + 60).map(|m| reading(m, 5.0)));
        }
        let c = run(&mut e, inputs);
        assert!(raised(&c, AlarmKind::HighSingle).is_empty(), "{c:?}");
        assert_eq!(raised(&c, AlarmKind::HighCumulative), vec![(240, 260)]);
        // Cumulative alarms stay until a person resets them.
        assert!(cleared(&c, AlarmKind::HighCumulative).is_empty());
        let r = e.reset("high-cumulative", 300 * MIN);
        assert_eq!(cleared(&r, AlarmKind::HighCumulative), vec![300]);
    }

    #[test]
    fn a_gap_longer_than_max_gap_breaks_a_continuous_excursion() {
        let mut e = Engine::new(rules(), 0);
        // 9 °C at 0..20, silence until 60 (max_gap is 5 min), 9 °C at 60..80.
        let mut inputs: Vec<Input> = (0..20).map(|m| reading(m, 9.0)).collect();
        inputs.extend((60..80).map(|m| reading(m, 9.0)));
        let c = run(&mut e, inputs);
        assert!(raised(&c, AlarmKind::HighSingle).is_empty(), "{c:?}");
    }

    #[test]
    fn freezing_and_low_alarms() {
        let mut e = Engine::new(rules(), 0);
        let mut inputs: Vec<Input> = (0..10).map(|m| reading(m, 4.0)).collect();
        inputs.extend((10..50).map(|m| reading(m, -1.0)));
        inputs.push(reading(50, 4.0));
        let c = run(&mut e, inputs);
        // Freezing (0 °C, 5 min) first, then low (2 °C, 30 min).
        assert_eq!(raised(&c, AlarmKind::LowSingle), vec![(10, 15), (10, 40)]);
        assert_eq!(cleared(&c, AlarmKind::LowSingle), vec![50, 50]);
    }

    #[test]
    fn door_left_open() {
        // No probe in this test, so no offline alarm.
        let mut e = Engine::new(
            FridgeRules {
                offline_after_secs: 0,
                ..rules()
            },
            0,
        );
        let mut c = e.push(Input::Door {
            at_ms: 0,
            open: true,
        });
        c.extend(e.push(Input::Watermark { at_ms: MIN }));
        assert!(c.is_empty());
        c.extend(e.push(Input::Watermark { at_ms: 3 * MIN }));
        assert_eq!(raised(&c, AlarmKind::DoorOpen), vec![(0, 2)]);
        c.extend(e.push(Input::Door {
            at_ms: 4 * MIN,
            open: false,
        }));
        assert_eq!(cleared(&c, AlarmKind::DoorOpen), vec![4]);
        // Opened and closed within the limit: nothing.
        let mut c = e.push(Input::Door {
            at_ms: 10 * MIN,
            open: true,
        });
        c.extend(e.push(Input::Door {
            at_ms: 11 * MIN,
            open: false,
        }));
        c.extend(e.push(Input::Watermark { at_ms: 20 * MIN }));
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn probe_unplugged_is_bad_reads_then_offline() {
        let mut e = Engine::new(rules(), 0);
        let mut inputs: Vec<Input> = (0..5).map(|m| reading(m, 5.0)).collect();
        inputs.extend((5..30).map(|m| Input::Reading {
            at_ms: m * MIN,
            celsius: None,
        }));
        inputs.push(reading(30, 5.0));
        let c = run(&mut e, inputs);
        // Fifth bad read in a row at minute 9; ten minutes without a good one at 14.
        assert_eq!(raised(&c, AlarmKind::BadReads), vec![(5, 9)]);
        assert_eq!(raised(&c, AlarmKind::SensorOffline), vec![(4, 14)]);
        assert_eq!(cleared(&c, AlarmKind::SensorOffline), vec![30]);
        assert_eq!(cleared(&c, AlarmKind::BadReads), vec![30]);
    }

    #[test]
    fn silence_with_watermarks_is_offline() {
        let mut e = Engine::new(rules(), 0);
        let mut c = e.push(reading(0, 5.0));
        c.extend(e.push(Input::Watermark { at_ms: 9 * MIN }));
        assert!(raised(&c, AlarmKind::SensorOffline).is_empty());
        c.extend(e.push(Input::Watermark { at_ms: 11 * MIN }));
        assert_eq!(raised(&c, AlarmKind::SensorOffline), vec![(0, 10)]);
    }

    #[test]
    fn duplicates_and_too_late_inputs_are_counted_not_evaluated() {
        let mut e = Engine::new(rules(), 2 * MIN);
        assert!(e.push(reading(10, 5.0)).is_empty());
        assert!(e.push(reading(10, 5.0)).is_empty());
        assert_eq!(e.duplicates, 1);
        let _ = e.push(reading(20, 5.0));
        let _ = e.push(reading(1, 5.0));
        assert_eq!(e.too_late, 1);
    }

    /// A fridge's day: a random walk with excursions, bad reads, door openings.
    fn series() -> impl Strategy<Value = Vec<Input>> {
        (
            proptest::collection::vec((-30i32..30, 0u8..20, 0u8..30), 50..400),
            0i64..1_000_000,
        )
            .prop_map(|(steps, t0)| {
                let mut v = Vec::new();
                let mut temp = 5.0f64;
                let mut t = t0;
                let mut door = false;
                for (d, bad, door_roll) in steps {
                    // Mostly one minute apart; now and then a gap.
                    t += if bad == 7 { 11 * MIN } else { MIN };
                    temp = (temp + f64::from(d) / 10.0).clamp(-5.0, 15.0);
                    let celsius = (bad != 3).then_some((temp * 10.0).round() / 10.0);
                    v.push(Input::Reading { at_ms: t, celsius });
                    if door_roll == 0 {
                        door = !door;
                        v.push(Input::Door {
                            at_ms: t + 1,
                            open: door,
                        });
                    }
                }
                v
            })
    }

    fn normalize(mut c: Vec<Change>) -> Vec<String> {
        let mut v: Vec<String> = c.drain(..).map(|c| format!("{c:?}")).collect();
        v.sort();
        v
    }

    proptest! {
        /// Delivered late (within the reorder window), shuffled and duplicated,
        /// the same readings raise and clear exactly the same alarms as in order.
        #[test]
        fn no_alarm_lost_or_doubled_under_late_and_duplicated_delivery(
            inputs in series(),
            jitter in proptest::collection::vec(0i64..=5 * MIN, 500),
            dups in proptest::collection::vec((0usize..500, 0usize..500), 0..40),
        ) {
            let window = 5 * MIN;
            let mut clean = Engine::new(rules(), window);
            let expected = normalize(run(&mut clean, inputs.iter().copied()));

            let mut delivery: Vec<(i64, usize, Input)> = inputs
                .iter()
                .enumerate()
                .map(|(i, x)| (x.at() + jitter[i % jitter.len()], i, *x))
                .collect();
            delivery.sort_by_key(|(k, i, _)| (*k, *i));
            let mut stream: Vec<Input> = delivery.into_iter().map(|(_, _, x)| x).collect();
            for (from, to) in dups {
                if let Some(x) = stream.get(from % stream.len()).copied() {
                    let at = (to % stream.len()).max(from % stream.len());
                    stream.insert(at, x);
                }
            }
            let mut messy = Engine::new(rules(), window);
            let got = normalize(run(&mut messy, stream));
            prop_assert_eq!(got, expected);
        }

        /// The kiosk evaluates live, the hub replays the same readings later in
        /// one go (historical): both name the same alarms.
        #[test]
        fn kiosk_live_and_hub_replay_agree(inputs in series()) {
            let mut kiosk = Engine::new(rules(), 0);
            let mut live = Vec::new();
            for x in &inputs {
                live.extend(kiosk.push(*x));
                // The kiosk's clock ticks between samples.
                live.extend(kiosk.push(Input::Watermark { at_ms: x.at() + 30_000 }));
            }
            let mut hub = Engine::new(rules(), 60 * MIN);
            let mut replay: Vec<Change> = inputs.iter().flat_map(|x| hub.push(*x)).collect();
            replay.extend(hub.flush());
            let ids = |c: &[Change]| {
                let mut v: Vec<String> = c.iter()
                    .filter(|c| matches!(c.transition, Transition::Raised { .. }) && c.key.kind != AlarmKind::SensorOffline && c.key.kind != AlarmKind::DoorOpen)
                    .map(|c| c.alarm_id("f1"))
                    .collect();
                v.sort();
                v
            };
            prop_assert_eq!(ids(&live), ids(&replay));
        }
    }
}
