//! The pharmacy's figures: totals per day and per ISO week, the top
//! products, and the service time from scan to ready. Pure: the hub reads
//! the rows and these functions add them up. Which calendar day an instant
//! falls on is the caller's (the store's time zone).

use chrono::{Datelike as _, Duration, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;

/// `(time in ms, amount)` rows summed per day for the `days` days ending
/// with `last` (days without rows are 0, so a chart has no gaps). `day_of`
/// names the calendar day of an instant.
pub fn per_day(
    rows: &[(i64, i64)],
    last: NaiveDate,
    days: u32,
    day_of: impl Fn(i64) -> NaiveDate,
) -> Vec<(NaiveDate, i64)> {
    let first = last - Duration::days(i64::from(days.saturating_sub(1)));
    let mut out: BTreeMap<NaiveDate, i64> = (0..days)
        .map(|d| (first + Duration::days(i64::from(d)), 0))
        .collect();
    for (ms, v) in rows {
        if let Some(x) = out.get_mut(&day_of(*ms)) {
            *x += v;
        }
    }
    out.into_iter().collect()
}

/// The ISO week of a day, as `2026-W48`.
pub fn iso_week(d: NaiveDate) -> String {
    let w = d.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Daily totals summed per ISO week, in order.
pub fn per_week(daily: &[(NaiveDate, i64)]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for (d, v) in daily {
        let w = iso_week(*d);
        match out.last_mut() {
            Some((lw, total)) if *lw == w => *total += v,
            _ => out.push((w, *v)),
        }
    }
    out
}

/// `(key, packs, amount)` rows summed per key, largest `packs` first (ties
/// by key), at most `n`.
pub fn top(rows: &[(String, i64, i64)], n: usize) -> Vec<(String, i64, i64)> {
    let mut by: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (k, p, a) in rows {
        let e = by.entry(k.as_str()).or_default();
        e.0 += p;
        e.1 += a;
    }
    let mut v: Vec<(String, i64, i64)> = by
        .into_iter()
        .map(|(k, (p, a))| (k.to_owned(), p, a))
        .collect();
    v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    v.truncate(n);
    v
}

/// Service time figures in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ServiceTime {
    /// Orders measured.
    pub orders: usize,
    /// Mean minutes from scan to ready.
    pub mean_min: f64,
    /// Median minutes.
    pub median_min: f64,
    /// 90th percentile (nearest rank).
    pub p90_min: f64,
}

/// From `(scanned ms, ready ms)` pairs; pairs out of order are left out.
/// `None` when there is nothing to measure.
pub fn service_time(pairs: &[(i64, i64)]) -> Option<ServiceTime> {
    let mut mins: Vec<f64> = pairs
        .iter()
        .filter(|(a, b)| b >= a)
        .map(|(a, b)| (b - a) as f64 / 60_000.0)
        .collect();
    if mins.is_empty() {
        return None;
    }
    mins.sort_by(f64::total_cmp);
    let n = mins.len();
    let rank = |q: f64| mins[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some(ServiceTime {
        orders: n,
        mean_min: mins.iter().sum::<f64>() / n as f64,
        median_min: rank(0.5),
        p90_min: rank(0.9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::day_of_ms;
    use proptest::prelude::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ms(s: &str, h: i64) -> i64 {
        day(s)
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
            + h * 3_600_000
    }

    #[test]
    fn days_weeks_and_tops_add_up() {
        let rows = [
            (ms("2026-11-23", 9), 2),
            (ms("2026-11-23", 23), 1),
            (ms("2026-11-26", 1), 5),
            (ms("2026-10-01", 1), 99),
        ];
        let d = per_day(&rows, day("2026-11-26"), 7, day_of_ms);
        assert_eq!(d.len(), 7);
        assert_eq!(d[0].0, day("2026-11-20"));
        assert_eq!(
            d.iter().find(|x| x.0 == day("2026-11-23")).map(|x| x.1),
            Some(3)
        );
        assert_eq!(
            d.iter().map(|x| x.1).sum::<i64>(),
            8,
            "the October row is outside the window"
        );
        // 2026-11-20..22 are in W47, 23..26 in W48.
        assert_eq!(
            per_week(&d),
            vec![("2026-W47".into(), 0), ("2026-W48".into(), 8)]
        );
        let t = top(
            &[
                ("B".into(), 2, 200),
                ("A".into(), 3, 100),
                ("B".into(), 2, 50),
                ("C".into(), 1, 10),
            ],
            2,
        );
        assert_eq!(t, vec![("B".into(), 4, 250), ("A".into(), 3, 100)]);
    }

    #[test]
    fn days_are_the_callers_calendar() {
        // 23:30 UTC is already the next day two hours east.
        let rows = [(ms("2026-11-25", 23) + 1_800_000, 1)];
        let east = |t: i64| day_of_ms(t + 2 * 3_600_000);
        let utc = per_day(&rows, day("2026-11-26"), 2, day_of_ms);
        let local = per_day(&rows, day("2026-11-26"), 2, east);
        assert_eq!(utc, vec![(day("2026-11-25"), 1), (day("2026-11-26"), 0)]);
        assert_eq!(local, vec![(day("2026-11-25"), 0), (day("2026-11-26"), 1)]);
    }

    #[test]
    fn service_time_is_mean_median_and_p90() {
        let m = 60_000;
        let s = service_time(&[(0, 10 * m), (0, 20 * m), (0, 30 * m), (5, 0)]).unwrap();
        assert_eq!(s.orders, 3);
        assert!((s.mean_min - 20.0).abs() < 1e-9);
        assert!((s.median_min - 20.0).abs() < 1e-9);
        assert!((s.p90_min - 30.0).abs() < 1e-9);
        assert_eq!(service_time(&[]), None);
    }

    proptest! {
        /// Rows inside the window are all counted, once.
        #[test]
        fn per_day_keeps_every_row_in_the_window(hours in prop::collection::vec((0i64..24 * 10, 1i64..100), 0..50)) {
            let last = day("2026-11-26");
            let start = ms("2026-11-17", 0);
            let rows: Vec<(i64, i64)> = hours.iter().map(|(h, v)| (start + h * 3_600_000, *v)).collect();
            let d = per_day(&rows, last, 10, day_of_ms);
            prop_assert_eq!(d.iter().map(|x| x.1).sum::<i64>(), rows.iter().map(|x| x.1).sum::<i64>());
            prop_assert_eq!(per_week(&d).iter().map(|x| x.1).sum::<i64>(), rows.iter().map(|x| x.1).sum::<i64>());
        }
    }
}
