//! What a fridge recorded while a lot was in it: the pharmacist's view of a
//! fridge lot's cold chain since it was received, shown beside the stock a
//! review would reserve and the stock an order holds.

use crate::store::{marks, Db};
use rxedge_shared::coldchain::AlarmKind;
use sqlx::Row as _;
use std::collections::HashMap;

/// The readings and excursions of a lot's fridge since the lot arrived there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinceReceipt {
    /// When the lot was received (ms since the epoch).
    pub received_ms: i64,
    /// Good readings since then.
    pub readings: i64,
    /// Lowest reading, °C.
    pub min_c: Option<f64>,
    /// Highest reading, °C.
    pub max_c: Option<f64>,
    /// The latest reading's time.
    pub last_ms: Option<i64>,
    /// Temperature excursions (not equipment faults) that overlapped the
    /// lot's stay, oldest first.
    pub excursions: Vec<Excursion>,
}

/// One excursion alarm, as far as the review page needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Excursion {
    /// Alarm id (links to its page and trail).
    pub id: String,
    /// Rule kind, e.g. `high_single`.
    pub kind: String,
    /// Alarm state.
    pub state: String,
    /// Onset.
    pub onset_ms: i64,
    /// Peak °C, for a high excursion that cleared.
    pub peak_c: Option<f64>,
}

/// The most lots one call looks at (a review page shows a handful).
const MAX_LOTS: usize = 200;

/// For each of `lot_ids` that lies in a fridge location, what that fridge
/// recorded since the lot was received: three queries whatever the count.
/// Lots in other locations are left out of the map.
pub async fn since_receipt(
    db: &Db,
    lot_ids: &[i64],
) -> Result<HashMap<i64, SinceReceipt>, sqlx::Error> {
    let ids: Vec<i64> = lot_ids.iter().copied().take(MAX_LOTS).collect();
    let mut out: HashMap<i64, SinceReceipt> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT l.id AS lot_id, l.received_ms FROM lots l JOIN stock_locations s ON s.id = l.location_id \
         WHERE s.kind = 'fridge' AND l.id IN ({})",
        marks(1, ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(*id);
    }
    for r in q.fetch_all(&db.pool).await? {
        out.insert(
            r.try_get("lot_id")?,
            SinceReceipt {
                received_ms: r.try_get("received_ms")?,
                ..SinceReceipt::default()
            },
        );
    }
    if out.is_empty() {
        return Ok(out);
    }
    let fridge_lots: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|i| out.contains_key(i))
        .collect();
    let lot_marks = marks(1, fridge_lots.len());
    // The readings' key is (fridge, at_ms): each lot is one index range.
    let sql = format!(
        "SELECT l.id AS lot_id, COUNT(r.celsius) AS n, MIN(r.celsius) AS lo, MAX(r.celsius) AS hi, \
         MAX(r.at_ms) AS last_ms FROM lots l JOIN fridge_readings r \
         ON r.fridge = l.location_id AND r.at_ms >= l.received_ms \
         WHERE l.id IN ({lot_marks}) GROUP BY l.id"
    );
    let mut q = sqlx::query(&sql);
    for id in &fridge_lots {
        q = q.bind(*id);
    }
    for r in q.fetch_all(&db.pool).await? {
        let id: i64 = r.try_get("lot_id")?;
        if let Some(h) = out.get_mut(&id) {
            h.readings = r.try_get("n")?;
            h.min_c = r.try_get("lo")?;
            h.max_c = r.try_get("hi")?;
            h.last_ms = r.try_get("last_ms")?;
        }
    }
    let kinds: Vec<&str> = [
        AlarmKind::HighSingle,
        AlarmKind::HighCumulative,
        AlarmKind::LowSingle,
        AlarmKind::LowCumulative,
    ]
    .iter()
    .map(|k| k.as_str())
    .collect();
    let kind_marks = marks(fridge_lots.len() + 1, kinds.len());
    // An alarm still open (no end) overlaps every stay that began before it.
    let sql = format!(
        "SELECT l.id AS lot_id, a.id AS alarm_id, a.kind, a.state, a.onset_ms, a.peak_c \
         FROM lots l JOIN alarms a ON a.fridge = l.location_id \
         AND (a.end_ms IS NULL OR a.end_ms >= l.received_ms) \
         WHERE l.id IN ({lot_marks}) AND a.kind IN ({kind_marks}) ORDER BY a.onset_ms, a.id"
    );
    let mut q = sqlx::query(&sql);
    for id in &fridge_lots {
        q = q.bind(*id);
    }
    for k in &kinds {
        q = q.bind(*k);
    }
    for r in q.fetch_all(&db.pool).await? {
        let id: i64 = r.try_get("lot_id")?;
        if let Some(h) = out.get_mut(&id) {
            h.excursions.push(Excursion {
                id: r.try_get("alarm_id")?,
                kind: r.try_get("kind")?,
                state: r.try_get("state")?,
                onset_ms: r.try_get("onset_ms")?,
                peak_c: r.try_get("peak_c")?,
            });
        }
    }
    Ok(out)
}
