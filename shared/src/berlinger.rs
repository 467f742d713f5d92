//! Berlinger data-logger exports (Fridge-tag 2 / 2L / UL, Q-tag CLm doc):
//! an indented `Key: value` text with daily histories and, on interval
//! loggers, a tab-separated `Data:` table.

use chrono::NaiveDateTime;
use serde::Serialize;

/// Why an export could not be read. Each names the line it is about.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not a Berlinger export.
    #[error("not a Berlinger logger export: {0}")]
    NotBerlinger(String),
    /// A line could not be understood.
    #[error("line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// One `Key: value, Key: value` line with the lines indented under it.
#[derive(Debug, Clone, Default)]
struct Node {
    line: usize,
    fields: Vec<(String, String)>,
    children: Vec<Node>,
}

impl Node {
    fn key(&self) -> &str {
        self.fields.first().map_or("", |f| f.0.as_str())
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                self.children
                    .iter()
                    .flat_map(|c| c.fields.iter())
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            })
    }
    fn child(&self, key: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.key() == key)
    }
}

/// How a device alarm counts time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAlarmKind {
    /// Above the limit, one continuous event.
    HighSingle,
    /// Above the limit, cumulative.
    HighCumulative,
    /// Below the limit, one continuous event.
    LowSingle,
    /// Below the limit, cumulative.
    LowCumulative,
}

/// One alarm as the device is configured.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmConfig {
    /// The device's alarm number.
    pub id: String,
    /// Kind.
    pub kind: DeviceAlarmKind,
    /// Limit, °C.
    pub limit_c: f64,
    /// Minutes allowed.
    pub minutes: u32,
}

/// An alarm as the device reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAlarm {
    /// Alarm number.
    pub id: String,
    /// Start of the time counted (`TS S`), when the device states it.
    pub start: Option<String>,
    /// When the alarm went off (`TS A`).
    pub alarm_at: Option<String>,
    /// End (`TS E`), when stated.
    pub end: Option<String>,
    /// Minutes out of range the device counted (`t A` / that day's `t Acc`).
    pub minutes_out: Option<u32>,
    /// For daily histories: the day this record belongs to.
    pub date: Option<String>,
    /// For daily histories: the alarm was already on when the day began
    /// (`TS A: 00:00` after a day with the same alarm).
    pub carried_over: bool,
}

/// One day of a Fridge-tag history.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Lowest, °C.
    pub min_c: Option<f64>,
    /// When the lowest was seen (`HH:MM`).
    pub min_at: Option<String>,
    /// Highest, °C.
    pub max_c: Option<f64>,
    /// When the highest was seen.
    pub max_at: Option<String>,
    /// Average, °C.
    pub avg_c: Option<f64>,
    /// Minutes out of range per alarm id.
    pub minutes_out: Vec<(String, u32)>,
}

/// A parsed export.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// Device model (`Q-tag Fridge-tag 2 L`).
    pub device: String,
    /// Serial number.
    pub serial: String,
    /// Logging interval in minutes, for interval loggers.
    pub interval_min: Option<u32>,
    /// MKT activation energy, kJ/mol, when configured.
    pub mkt_energy_kj: Option<f64>,
    /// Alarm configuration.
    pub alarms: Vec<AlarmConfig>,
    /// Results the device states for the whole run.
    pub device_min: Option<f64>,
    /// Max the device states.
    pub device_max: Option<f64>,
    /// MKT the device states.
    pub device_mkt: Option<f64>,
    /// Alarms the device states.
    pub device_alarms: Vec<DeviceAlarm>,
    /// Daily history (Fridge-tag).
    pub days: Vec<Day>,
    /// Interval readings: (time, °C), `None` where the logger had no value (`--.-`).
    #[serde(skip)]
    pub readings: Vec<(NaiveDateTime, Option<f64>)>,
}

fn num(s: &str) -> Option<f64> {
    s.trim().trim_start_matches('+').parse().ok()
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn split_fields(content: &str) -> Vec<(String, String)> {
    content
        .split(", ")
        .map(|part| match part.split_once(':') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (part.trim().to_owned(), String::new()),
        })
        .collect()
}

/// Parse an export's text.
pub fn parse(text: &str) -> Result<Export, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut root = Node::default();
    // Path of (indent, index) from the root to the node lines attach under.
    let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut table: Option<&'static str> = None;
    let mut data_rows: Vec<(usize, &str)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('\t') {
            if table == Some("Data") {
                data_rows.push((i + 1, line));
            }
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let fields = split_fields(line.trim());
        if indent == 0 {
            table = match fields.first().map(|f| f.0.as_str()) {
                Some("Data") => Some("Data"),
                Some("Marker") => Some("Marker"),
                _ => None,
            };
        }
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        let path: Vec<usize> = stack.last().map(|(_, p)| p.clone()).unwrap_or_default();
        let mut parent = &mut root;
        for &p in &path {
            parent = &mut parent.children[p];
        }
        parent.children.push(Node {
            line: i + 1,
            fields,
            children: Vec::new(),
        });
        let mut me = path;
        me.push(parent.children.len() - 1);
        stack.push((indent, me));
    }

    let device = root
        .child("Device")
        .and_then(|n| n.get("Device"))
        .map(str::to_owned)
        .ok_or_else(|| ParseError::NotBerlinger("no 'Device:' line".into()))?;
    if !device.contains("tag") {
        return Err(ParseError::NotBerlinger(format!(
            "unknown device {device:?}"
        )));
    }
    let conf = root
        .child("Conf")
        .ok_or_else(|| ParseError::NotBerlinger("no 'Conf:' section".into()))?;
    let serial = conf.get("Serial").unwrap_or_default().to_owned();
    let fahrenheit = conf.get("Temp unit").is_some_and(|u| u.trim() == "F");
    let to_c = |v: f64| {
        if fahrenheit {
            (v - 32.0) * 5.0 / 9.0
        } else {
            v
        }
    };
    let interval_min = conf
        .get("Logging Interval")
        .and_then(|v| v.trim().parse().ok());
    let mkt_energy_kj = conf.get("MKT Energy").and_then(num);
    let is_fridge_tag = device.contains("Fridge-tag");

    let mut alarms = Vec::new();
    if let Some(a) = conf.child("Alarm") {
        for slot in &a.children {
            let id = slot.key().to_owned();
            let Some(limit) = slot.get("T AL").and_then(num) else {
                continue; // Type 0: off.
            };
            let minutes = slot
                .get("t AL")
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| ParseError::Line {
                    line: slot.line,
                    problem: format!("alarm {id}: no 't AL'"),
                })?;
            let kind = if is_fridge_tag {
                // Fridge-tags: alarm 0 is the low alarm, 1 the high one; both single events.
                match id.as_str() {
                    "0" => DeviceAlarmKind::LowSingle,
                    _ => DeviceAlarmKind::HighSingle,
                }
            } else {
                match slot.get("Type").map(str::trim) {
                    Some("1") => DeviceAlarmKind::LowSingle,
                    Some("2") => DeviceAlarmKind::HighSingle,
                    Some("3") => DeviceAlarmKind::LowCumulative,
                    Some("4") => DeviceAlarmKind::HighCumulative,
                    Some("0") | None => continue,
                    Some(t) => {
                        return Err(ParseError::Line {
                            line: slot.line,
                            problem: format!("alarm {id}: unknown type {t}"),
                        })
                    }
                }
            };
            alarms.push(AlarmConfig {
                id,
                kind,
                limit_c: to_c(limit),
                minutes,
            });
        }
    }

    let mut device_alarms = Vec::new();
    let (mut device_min, mut device_max, mut device_mkt) = (None, None, None);
    if let Some(res) = root.child("Res") {
        device_min = res.get("Min T").and_then(num).map(to_c);
        device_max = res.get("Max T").and_then(num).map(to_c);
        device_mkt = res.get("MKT").and_then(num).map(to_c);
        if let Some(a) = res.child("Alarm") {
            for slot in &a.children {
                let alarm_at = nonempty(slot.get("TS A"));
                let start = nonempty(slot.get("TS S"));
                if alarm_at.is_none() && start.is_none() {
                    continue;
                }
                device_alarms.push(DeviceAlarm {
                    id: slot.key().to_owned(),
                    start,
                    alarm_at,
                    end: nonempty(slot.get("TS E")),
                    minutes_out: slot.get("t A").and_then(|v| v.trim().parse().ok()),
                    date: None,
                    carried_over: false,
                });
            }
        }
    }

    let mut days = Vec::new();
    if let Some(hist) = root.child("Hist") {
        for d in hist
            .children
            .iter()
            .filter(|c| c.key().parse::<u32>().is_ok())
        {
            let Some(date) = d.get("Date").map(|s| s.trim().to_owned()) else {
                continue;
            };
            let mut minutes_out = Vec::new();
            if let Some(a) = d.child("Alarm") {
                for slot in &a.children {
                    let id = slot.key().to_owned();
                    let acc = slot.get("t Acc").and_then(|v| v.trim().parse().ok());
                    if let Some(acc) = acc {
                        minutes_out.push((id.clone(), acc));
                    }
                    if let Some(at) = nonempty(slot.get("TS A")) {
                        device_alarms.push(DeviceAlarm {
                            id,
                            start: None,
                            alarm_at: Some(format!("{date} {at}")),
                            end: None,
                            minutes_out: acc,
                            date: Some(date.clone()),
                            carried_over: false,
                        });
                    }
                }
            }
            let min_node = d.children.iter().find(|c| c.key() == "Min T");
            let max_node = d.children.iter().find(|c| c.key() == "Max T");
            days.push(Day {
                date: date.clone(),
                min_c: d.get("Min T").and_then(num).map(to_c),
                min_at: min_node.and_then(|n| nonempty(n.get("TS Min T"))),
                max_c: d.get("Max T").and_then(num).map(to_c),
                max_at: max_node.and_then(|n| nonempty(n.get("TS Max T"))),
                avg_c: d.get("Avrg T").and_then(num).map(to_c),
                minutes_out,
            });
        }
        days.sort_by(|a, b| a.date.cmp(&b.date));
        // A day's `TS A: 00:00` after a day with the same alarm means "still on".
        device_alarms.sort_by(|a, b| a.alarm_at.cmp(&b.alarm_at));
        let mut on_days: std::collections::HashSet<(String, String)> = Default::default();
        for a in &device_alarms {
            if let Some(d) = &a.date {
                on_days.insert((a.id.clone(), d.clone()));
            }
        }
        for a in device_alarms.iter_mut() {
            let (Some(date), Some(at)) = (a.date.clone(), a.alarm_at.as_deref()) else {
                continue;
            };
            if at.ends_with(" 00:00") {
                let prev = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.pred_opt())
                    .map(|d| d.format("%Y-%m-%d").to_string());
                a.carried_over = prev.is_some_and(|p| on_days.contains(&(a.id.clone(), p)));
            }
        }
    }

    let mut readings = Vec::with_capacity(data_rows.len());
    for (line, row) in data_rows {
        let cols: Vec<&str> = row.split('\t').map(str::trim).collect();
        let (Some(ts), Some(t)) = (cols.get(1), cols.get(2)) else {
            continue;
        };
        if ts.starts_with("yyyy") {
            continue; // Column header.
        }
        let at =
            NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M").map_err(|e| ParseError::Line {
                line,
                problem: format!("time {ts:?}: {e}"),
            })?;
        // The logger writes `--.-` when it had no value (sensor error, external probe away).
        let c = if t.starts_with("--") {
            None
        } else {
            Some(num(t).ok_or_else(|| ParseError::Line {
                line,
                problem: format!("temperature {t:?} is not a number"),
            })?)
        };
        readings.push((at, c.map(to_c)));
    }
    readings.sort_by_key(|r| r.0);

    Ok(Export {
        device,
        serial,
        interval_min,
        mkt_energy_kj,
        alarms,
        device_min,
        device_max,
        device_mkt,
        device_alarms,
        days,
        readings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QTAG: &str = "Device: Q-tag CLm doc LR\nConf:\n Serial: X1\n MKT Energy: 83.0\n Logging Interval: 10\n Alarm:\n  1:\n   Type: 2, T AL: 8.0, t AL: 30\n  3:\n   Type: 0\nRes:\n Min T: 9.7, TS Min T: 2023-04-18 03:53\n MKT: 10.4\n Alarm:\n  1:\n   TS S: 2023-04-17 15:33, t A: 4226, TS A: 2023-04-17 16:03, TS E:, T M: 11.4\n  4:\nData:\n\tyyyy-MM-dd hh:mm\tT\tOut of limits\n\t2023-04-17 15:23\t12.7\tx\n\t2023-04-17 15:33\t11.2\tx\n";

    #[test]
    fn reads_a_qtag_export() -> Result<(), ParseError> {
        let e = parse(QTAG)?;
        assert_eq!(e.serial, "X1");
        assert_eq!(e.interval_min, Some(10));
        assert_eq!(e.alarms.len(), 1, "type 0 is off");
        assert_eq!(e.alarms[0].kind, DeviceAlarmKind::HighSingle);
        assert_eq!(e.device_mkt, Some(10.4));
        assert_eq!(e.device_alarms.len(), 1);
        assert_eq!(
            e.device_alarms[0].alarm_at.as_deref(),
            Some("2023-04-17 16:03")
        );
        assert_eq!(e.device_alarms[0].end, None);
        assert_eq!(e.readings.len(), 2);
        Ok(())
    }

    #[test]
    fn bad_input_names_the_line() {
        assert!(matches!(parse("hello"), Err(ParseError::NotBerlinger(_))));
        let broken = QTAG.replace("\t2023-04-17 15:33\t11.2", "\t2023-04-17 15:33\tabc");
        match parse(&broken) {
            Err(ParseError::Line { line, .. }) => assert_eq!(line, 21),
            other => panic!("{other:?}"),
        }
    }
}
