//! Cold chain: fridge alarm rules, the alarm engine and temperature statistics.
//!
//! One implementation runs on both programs: on the kiosk, so the buzzer works
//! with the hub unreachable, and on the hub, which is authoritative and keeps the
//! record. The engine works in *event time* (the readings' own timestamps and the
//! kiosk's watermarks), never the wall clock of whoever evaluates it, so the kiosk
//! and the hub raise the same alarms at the same onsets from the same readings,
//! whether they arrive live or replayed after an outage.

pub mod engine;
pub mod rules;
pub mod stats;

pub use engine::{AlarmKey, AlarmKind, Change, Engine, Input, Transition};
pub use rules::{Direction, FridgeRules, Mode, RuleError, TempRule};
pub use stats::{mean_kinetic_temperature, DailyStats, DEFAULT_DELTA_H_J_PER_MOL, GAS_CONSTANT};
