//! The store's calendar. A business day (the Z report, the analytics, the
//! invoice year and the coinsurance year) and the day that decides whether
//! a batch has expired are days of the hub's local time zone: the system's (`timedatectl set-timezone Europe/Zurich`) or `TZ`.
//! A UTC day would put a Swiss pharmacy's first hour or two after midnight
//! on the day before.

use chrono::{Local, NaiveDate, TimeZone as _};
use rxedge_shared::inventory::day_of_ms;

/// The local calendar day of an instant (ms since the epoch).
pub fn day_of(ms: i64) -> NaiveDate {
    Local
        .timestamp_millis_opt(ms)
        .earliest()
        .map(|t| t.date_naive())
        .unwrap_or_else(|| day_of_ms(ms))
}

/// The instants `[start, end)` of a local day, in ms: 23 or 25 hours long on
/// the days the clocks change.
pub fn bounds(day: NaiveDate) -> (i64, i64) {
    let next = day.succ_opt().unwrap_or(day);
    (start_of(day), start_of(next))
}

/// The first instant of a local day. Where the clocks jump over midnight,
/// the day starts at the first hour that exists.
fn start_of(day: NaiveDate) -> i64 {
    (0..4)
        .filter_map(|h| day.and_hms_opt(h, 0, 0))
        .find_map(|t| t.and_local_timezone(Local).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| {
            day.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
                .unwrap_or(0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The zone is the machine's; these hold in any zone.
    #[test]
    fn a_day_holds_its_instants_and_the_next_day_follows() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let (start, end) = bounds(d);
        assert!(end - start >= 23 * 3_600_000 && end - start <= 25 * 3_600_000);
        assert_eq!(day_of(start), d);
        assert_eq!(day_of(end - 1), d);
        assert_eq!(day_of(end), d.succ_opt().unwrap());
        assert_eq!(bounds(d.succ_opt().unwrap()).0, end);
    }
}
