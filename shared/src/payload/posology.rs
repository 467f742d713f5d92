//! CHMED23A posology in words, for the pharmacist's review: "1 at 09:00
//! every day", "on Tue, Thu: 1 at 07:30 every week", "0-0-0.5-0 for 2 days,
//! then pause 1 day". Follows the CHMED23A posology specification's object
//! kinds (Daily, FreeText, Single, Cyclic, Sequence; DosageOnly, Times,
//! DaySegments, WeekDays, DaysOfMonth, Interval; simple, from–to and range
//! dosages). Objects are told apart by their fields rather than their type
//! numbers, because earlier generators numbered them differently.

use super::chmed::{array_of as list, field};
use serde_json::Value;

/// Deepest nesting followed (a sequence of cycles of week days of times).
const MAX_DEPTH: u8 = 6;

fn num(v: &Value, names: &[&str]) -> Option<f64> {
    field(v, names).and_then(Value::as_f64)
}

fn int(v: &Value, names: &[&str]) -> Option<u64> {
    field(v, names).and_then(Value::as_u64)
}

/// A decimal as written on a label: 1, 0.5, 1.4.
pub fn amount(a: f64) -> String {
    if a.fract() == 0.0 {
        format!("{a:.0}")
    } else {
        format!("{a}")
    }
}

/// A time unit (`duU`, `cyDuU`, `miDuU`) with its count: "1 day", "2 weeks".
fn span(n: u64, unit: u64) -> String {
    let word = match unit {
        1 => "second",
        2 => "minute",
        3 => "hour",
        4 => "day",
        5 => "week",
        6 => "month",
        7 => "year",
        _ => "period",
    };
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn every(n: u64, unit: u64) -> String {
    if n == 1 {
        format!("every {}", span(1, unit).trim_start_matches("1 "))
    } else {
        format!("every {}", span(n, unit))
    }
}

/// A Dosage object: simple (`a`), from–to over a time (`aFrom`, `aTo`), or a range.
fn dosage(d: &Value) -> Option<String> {
    if let Some(a) = num(d, &["a"]) {
        return Some(amount(a));
    }
    if let (Some(lo), Some(hi)) = (num(d, &["aFrom"]), num(d, &["aTo"])) {
        let over = match (int(d, &["du"]), int(d, &["duU"])) {
            (Some(n), Some(u)) => format!(" over {}", span(n, u)),
            _ => String::new(),
        };
        return Some(format!("{} rising to {}{over}", amount(lo), amount(hi)));
    }
    match (num(d, &["aMin"]), num(d, &["aMax"])) {
        (Some(lo), Some(hi)) => Some(format!("{}–{}", amount(lo), amount(hi))),
        _ => None,
    }
}

fn dose_of(v: &Value) -> Option<String> {
    field(v, &["do", "d"]).and_then(dosage)
}

/// A TimedDosage object.
fn timed(t: &Value, depth: u8) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let inner = || field(t, &["tdo", "td"]).and_then(|i| timed(i, depth + 1));
    let times = list(t, &["ts"]);
    if !times.is_empty() {
        let parts: Vec<String> = times
            .iter()
            .map(|x| {
                let at: String = field(x, &["dt"])
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .chars()
                    .take(5)
                    .collect();
                format!("{} at {at}", dose_of(x).unwrap_or_else(|| "?".into()))
            })
            .collect();
        return Some(parts.join(", "));
    }
    let segments = list(t, &["ss"]);
    if !segments.is_empty() {
        let parts: Vec<String> = segments
            .iter()
            .map(|x| {
                let when = match int(x, &["s"]) {
                    Some(1) => "morning",
                    Some(2) => "noon",
                    Some(3) => "evening",
                    Some(4) => "night",
                    _ => "?",
                };
                format!("{} {when}", dose_of(x).unwrap_or_else(|| "?".into()))
            })
            .collect();
        return Some(parts.join(", "));
    }
    let days = list(t, &["wds"]);
    if !days.is_empty() {
        let names: Vec<&str> = days
            .iter()
            .map(|d| match d.as_u64() {
                Some(1) => "Mon",
                Some(2) => "Tue",
                Some(3) => "Wed",
                Some(4) => "Thu",
                Some(5) => "Fri",
                Some(6) => "Sat",
                Some(7) => "Sun",
                _ => "?",
            })
            .collect();
        return Some(format!("on {}: {}", names.join(", "), inner()?));
    }
    let month_days = list(t, &["doms"]);
    if !month_days.is_empty() {
        let names: Vec<String> = month_days
            .iter()
            .map(|d| d.as_u64().map_or("?".into(), |d| d.to_string()))
            .collect();
        return Some(format!(
            "on day {} of the month: {}",
            names.join(", "),
            inner()?
        ));
    }
    if let (Some(n), Some(u)) = (int(t, &["miDu"]), int(t, &["miDuU"])) {
        return Some(format!("{} at least {} apart", dose_of(t)?, span(n, u)));
    }
    dose_of(t)
}

/// One PosologyDetail object in words, or `None` if it says nothing this
/// reads (the pharmacist then reads the plan itself).
pub fn describe(po: &Value) -> Option<String> {
    detail(po, 0)
}

fn detail(po: &Value, depth: u8) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    if let Some(Value::String(t)) = field(po, &["text"]) {
        return Some(t.trim().to_owned()).filter(|t| !t.is_empty());
    }
    let ds: Vec<f64> = list(po, &["ds"]).iter().filter_map(Value::as_f64).collect();
    if ds.len() == 4 {
        return Some(ds.iter().map(|d| amount(*d)).collect::<Vec<_>>().join("-"));
    }
    let steps = list(po, &["sos"]);
    if !steps.is_empty() {
        let parts: Vec<String> = steps
            .iter()
            .map(|s| {
                let lasting = match (int(s, &["du"]), int(s, &["duU"])) {
                    (Some(n), Some(u)) => span(n, u),
                    _ => "a while".into(),
                };
                match field(s, &["po"]) {
                    Some(p) => format!(
                        "{} for {lasting}",
                        detail(p, depth + 1).unwrap_or_else(|| "?".into())
                    ),
                    None => format!("pause {lasting}"),
                }
            })
            .collect();
        return Some(parts.join(", then "));
    }
    let what = field(po, &["tdo", "td"]).and_then(|t| timed(t, depth + 1));
    match (int(po, &["cyDu"]), int(po, &["cyDuU"])) {
        (Some(n), Some(u)) => {
            let times = int(po, &["tdpc"]).unwrap_or(1);
            let what = what?;
            Some(if times > 1 {
                format!("{what}, {times} times {}", every(n, u))
            } else {
                format!("{what} {}", every(n, u))
            })
        }
        _ => what.map(|w| format!("{w} once")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_of_posology_reads_as_the_pharmacist_writes_it() {
        for (po, want) in [
            (json!({"t": 1, "ds": [1, 0, 0.5, 0]}), "1-0-0.5-0"),
            (
                json!({"t": 2, "text": " as the doctor said "}),
                "as the doctor said",
            ),
            (
                json!({"t": 3, "tdo": {"t": 2, "ts": [{"dt": "09:00:00", "do": {"t": 1, "a": 1.0}}]}}),
                "1 at 09:00 once",
            ),
            (
                json!({"t": 4, "cyDuU": 5, "cyDu": 1, "tdo": {"t": 1, "do": {"t": 1, "a": 1.4}}, "tdpc": 1}),
                "1.4 every week",
            ),
            (
                json!({"t": 4, "cyDuU": 4, "cyDu": 1, "tdo": {"t": 1, "do": {"t": 1, "a": 1.0}}, "tdpc": 3}),
                "1, 3 times every day",
            ),
            (
                json!({"t": 4, "cyDuU": 5, "cyDu": 2, "tdo": {"t": 4, "wds": [2, 4], "tdo": {"t": 2, "ts": [{"dt": "07:30:00", "do": {"t": 1, "a": 1.0}}]}}, "tdpc": 1}),
                "on Tue, Thu: 1 at 07:30 every 2 weeks",
            ),
            (
                json!({"t": 4, "cyDuU": 6, "cyDu": 1, "tdo": {"t": 5, "doms": [10], "tdo": {"t": 1, "do": {"t": 3, "aMin": 10.0, "aMax": 20.0}}}, "tdpc": 1}),
                "on day 10 of the month: 10–20 every month",
            ),
            (
                json!({"t": 4, "cyDuU": 4, "cyDu": 1, "tdo": {"t": 6, "do": {"t": 1, "a": 1.0}, "miDuU": 3, "miDu": 4}, "tdpc": 6}),
                "1 at least 4 hours apart, 6 times every day",
            ),
            (
                json!({"t": 4, "cyDuU": 4, "cyDu": 1, "tdo": {"t": 3, "ss": [{"s": 1, "do": {"t": 3, "aMin": 1.0, "aMax": 2.0}}, {"s": 3, "do": {"t": 1, "a": 1}}]}, "tdpc": 1}),
                "1–2 morning, 1 evening every day",
            ),
            (
                json!({"t": 5, "sos": [{"t": 1, "po": {"t": 1, "ds": [0, 0, 0.5, 0]}, "duU": 4, "du": 2}, {"t": 2, "duU": 4, "du": 1}]}),
                "0-0-0.5-0 for 2 days, then pause 1 day",
            ),
            (
                json!({"t": 3, "tdo": {"t": 1, "do": {"t": 2, "aFrom": 5, "aTo": 10, "du": 45, "duU": 2}}}),
                "5 rising to 10 over 45 minutes once",
            ),
            // An earlier generator's capitalised names.
            (
                json!({"T": 2, "CyDuU": 4, "CyDu": 1, "TD": {"T": 1, "D": {"T": 1, "A": 1}}, "TDpC": 1}),
                "1 every day",
            ),
        ] {
            assert_eq!(describe(&po).as_deref(), Some(want), "{po}");
        }
        assert_eq!(describe(&json!({"t": 9})), None);
        assert_eq!(describe(&json!({"t": 2, "text": "  "})), None);
    }

    #[test]
    fn deep_nesting_stops() {
        let mut po = json!({"t": 1, "ds": [1, 0, 0, 0]});
        for _ in 0..50 {
            po = json!({"t": 5, "sos": [{"t": 1, "po": po, "du": 1, "duU": 4}]});
        }
        // Deep plans end in "?" rather than recursing without bound.
        assert!(describe(&po).is_some_and(|d| d.contains('?')));
    }
}
