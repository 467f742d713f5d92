//! Temperature statistics: period summaries and mean kinetic temperature.

use serde::{Deserialize, Serialize};

/// Molar gas constant, J/(mol·K), as USP <1079.2> gives it.
pub const GAS_CONSTANT: f64 = 8.314_462_1;
/// Activation energy USP <1079.2> uses by default, J/mol.
pub const DEFAULT_DELTA_H_J_PER_MOL: f64 = 83_144.0;

/// Weight of each sample: the time it holds until the next one, capped at
/// `max_hold_ms` (a gap is not evidence). The last sample holds as long as the
/// one before it did.
fn weights(samples: &[(i64, f64)], max_hold_ms: i64) -> Vec<f64> {
    let cap = max_hold_ms.max(1);
    let mut w: Vec<f64> = samples
        .windows(2)
        .map(|p| (p[1].0 - p[0].0).clamp(0, cap) as f64)
        .collect();
    if !samples.is_empty() {
        let last = w.last().copied().unwrap_or(cap as f64);
        w.push(last);
    }
    if w.iter().all(|x| *x == 0.0) {
        w.iter_mut().for_each(|x| *x = 1.0);
    }
    w
}

/// Mean kinetic temperature (USP <1079.2>), °C, of time-ordered `(ms, °C)`
/// samples, weighted by time so uneven intervals count fairly.
/// `delta_h` is the activation energy in J/mol. `None` without samples.
pub fn mean_kinetic_temperature(
    samples: &[(i64, f64)],
    delta_h: f64,
    max_hold_ms: i64,
) -> Option<f64> {
    if samples.is_empty() || delta_h.is_nan() || delta_h <= 0.0 {
        return None;
    }
    let w = weights(samples, max_hold_ms);
    let total: f64 = w.iter().sum();
    let k = delta_h / GAS_CONSTANT;
    let mean: f64 = samples
        .iter()
        .zip(&w)
        .map(|((_, c), wi)| wi * (-k / (c + 273.15)).exp())
        .sum::<f64>()
        / total;
    Some(k / -mean.ln() - 273.15)
}

/// What happened in one period (a day, a shift, an excursion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyStats {
    /// Period start, ms.
    pub from_ms: i64,
    /// Period end (exclusive), ms.
    pub to_ms: i64,
    /// Readings in the period.
    pub readings: usize,
    /// Lowest value and when.
    pub min: Option<(i64, f64)>,
    /// Highest value and when.
    pub max: Option<(i64, f64)>,
    /// Time-weighted average, °C.
    pub avg_c: Option<f64>,
    /// Minutes below `low` or above `high`.
    pub minutes_out_of_range: f64,
    /// Mean kinetic temperature over the period, °C.
    pub mkt_c: Option<f64>,
}

impl DailyStats {
    /// Summarize time-ordered samples within `[from_ms, to_ms)`.
    pub fn of(
        samples: &[(i64, f64)],
        from_ms: i64,
        to_ms: i64,
        low: f64,
        high: f64,
        max_hold_ms: i64,
        delta_h: f64,
    ) -> Self {
        let inside: Vec<(i64, f64)> = samples
            .iter()
            .copied()
            .filter(|(t, _)| *t >= from_ms && *t < to_ms)
            .collect();
        let w = weights(&inside, max_hold_ms);
        let total: f64 = w.iter().sum();
        let min = inside
            .iter()
            .copied()
            .fold(None, |m: Option<(i64, f64)>, s| match m {
                Some(x) if x.1 <= s.1 => Some(x),
                _ => Some(s),
            });
        let max = inside
            .iter()
            .copied()
            .fold(None, |m: Option<(i64, f64)>, s| match m {
                Some(x) if x.1 >= s.1 => Some(x),
                _ => Some(s),
            });
        let avg_c = (!inside.is_empty()).then(|| {
            inside
                .iter()
                .zip(&w)
                .map(|((_, c), wi)| c * wi)
                .sum::<f64>()
                / total
        });
        // Time out of range: each value holds until the next sample (capped), and
        // never past the period end.
        let mut out_ms = 0i64;
        for (i, (t, c)) in inside.iter().enumerate() {
            if *c < low || *c > high {
                let next = inside.get(i + 1).map_or(to_ms, |n| n.0);
                out_ms += (next.min(to_ms) - t).clamp(0, max_hold_ms.max(0));
            }
        }
        Self {
            from_ms,
            to_ms,
            readings: inside.len(),
            min,
            max,
            avg_c,
            minutes_out_of_range: out_ms as f64 / 60_000.0,
            mkt_c: mean_kinetic_temperature(&inside, delta_h, max_hold_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkt_of_a_constant_is_that_constant() {
        let s: Vec<(i64, f64)> = (0..100).map(|i| (i * 60_000, 5.0)).collect();
        let m = mean_kinetic_temperature(&s, DEFAULT_DELTA_H_J_PER_MOL, 600_000);
        assert!(m.is_some_and(|m| (m - 5.0).abs() < 1e-9), "{m:?}");
    }

    #[test]
    fn mkt_weighs_heat_more_than_the_mean() {
        // Half the time at 2 °C, half at 20 °C: arithmetic mean 11, MKT above it.
        let s: Vec<(i64, f64)> = (0..100)
            .map(|i| (i * 60_000, if i < 50 { 2.0 } else { 20.0 }))
            .collect();
        let m = mean_kinetic_temperature(&s, DEFAULT_DELTA_H_J_PER_MOL, 600_000).unwrap_or(0.0);
        assert!(m > 12.0 && m < 20.0, "{m}");
    }

    #[test]
    fn mkt_weights_uneven_intervals_by_time() {
        // 10 readings at 20 °C one minute apart, then one at 2 °C held for 10 minutes
        // (the last sample holds as long as the one before it: here 10 minutes).
        let mut s: Vec<(i64, f64)> = (0..10).map(|i| (i * 60_000, 20.0)).collect();
        s.push((19 * 60_000, 2.0));
        s.push((29 * 60_000, 2.0));
        let weighted =
            mean_kinetic_temperature(&s, DEFAULT_DELTA_H_J_PER_MOL, 3_600_000).unwrap_or(0.0);
        let naive: Vec<(i64, f64)> = s
            .iter()
            .enumerate()
            .map(|(i, (_, c))| (i as i64, *c))
            .collect();
        let unweighted =
            mean_kinetic_temperature(&naive, DEFAULT_DELTA_H_J_PER_MOL, 1).unwrap_or(0.0);
        assert!(
            weighted < unweighted,
            "weighted {weighted} unweighted {unweighted}"
        );
    }

    #[test]
    fn daily_summary_counts_minutes_out_of_range() {
        // One reading a minute for an hour; 9 °C for 15 of them.
        let s: Vec<(i64, f64)> = (0..60)
            .map(|i| (i * 60_000, if (20..35).contains(&i) { 9.0 } else { 5.0 }))
            .collect();
        let d = DailyStats::of(
            &s,
            0,
            3_600_000,
            2.0,
            8.0,
            300_000,
            DEFAULT_DELTA_H_J_PER_MOL,
        );
        assert_eq!(d.readings, 60);
        assert!((d.minutes_out_of_range - 15.0).abs() < 1e-9, "{d:?}");
        assert_eq!(d.max.map(|m| m.1), Some(9.0));
        assert_eq!(d.min.map(|m| m.1), Some(5.0));
    }
}
