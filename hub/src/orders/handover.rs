//! Hand-over at the desk: the pharmacist scans each pack's GS1 code before
//! the order is handed over, and the hub checks that it is the exact lot the
//! order reserved ([`rxedge_shared::handover`]). Accepted and refused scans
//! are both kept. The order can be handed over once every reserved pack has
//! been scanned (when `orders.verify_packs_at_pickup` is on, the default).

use super::OrderError;
use crate::store::Db;
use rxedge_shared::handover::{self as rules, Reserved, Scanned, Verdict};
use serde::Serialize;
use sqlx::Row as _;

/// Longest code accepted (a GS1 code is well under 100 characters).
const MAX_CODE: usize = 500;

/// The lots an order holds, with their reservations.
pub async fn reserved(db: &Db, order: &str) -> Result<Vec<Reserved>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.id, r.qty, l.gtin, l.lot, l.expiry, l.product FROM reservations r JOIN lots l ON l.id = r.lot_id \
         WHERE r.order_ref = $1 AND r.state = 'active' ORDER BY r.id",
    )
    .bind(order)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Reserved {
                reservation: r.try_get("id")?,
                qty: r.try_get("qty")?,
                gtin: r.try_get("gtin")?,
                lot: r.try_get("lot")?,
                expiry: r.try_get("expiry")?,
                product: r.try_get("product")?,
            })
        })
        .collect()
}

/// The lot behind each of an order's active reservations, by reservation id.
pub async fn reserved_lots(
    db: &Db,
    order: &str,
) -> Result<std::collections::HashMap<i64, i64>, sqlx::Error> {
    sqlx::query("SELECT id, lot_id FROM reservations WHERE order_ref = $1 AND state = 'active'")
        .bind(order)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("lot_id")?)))
        .collect()
}

/// Packs already accepted for an order.
pub async fn accepted(db: &Db, order: &str) -> Result<Vec<Scanned>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT reservation, serial FROM handover_scans WHERE order_id = $1 AND accepted = 1 ORDER BY id",
    )
    .bind(order)
    .fetch_all(&db.pool)
    .await?;
    scanned(&rows)
}

fn scanned(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Scanned>, sqlx::Error> {
    rows.iter()
        .map(|r| {
            Ok(Scanned {
                reservation: r.try_get::<Option<i64>, _>(0)?.unwrap_or(-1),
                serial: r.try_get(1)?,
            })
        })
        .collect()
}

/// What the desk sees after a scan.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// The verdict on this pack.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Still to scan: (product, lot, packs).
    pub missing: Vec<(String, String, i64)>,
    /// The message the form shows.
    pub message: String,
}

/// Still to scan before the order can be handed over.
pub async fn missing(db: &Db, order: &str) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    Ok(rules::missing(
        &reserved(db, order).await?,
        &accepted(db, order).await?,
    ))
}

/// Check one scanned pack and record the scan.
pub async fn scan(
    db: &Db,
    order: &str,
    code: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Progress, OrderError> {
    let code = code.trim();
    if code.is_empty() || code.len() > MAX_CODE {
        return Err(OrderError::Invalid(format!(
            "scan a pack's code (1 to {MAX_CODE} characters)"
        )));
    }
    let o = super::get(db, order)
        .await?
        .ok_or_else(|| OrderError::NotFound(order.into()))?;
    if o.state != "ready" {
        return Err(OrderError::Invalid(format!(
            "packs are scanned when the order is ready to hand over; this one is {}",
            o.state.replace('_', " ")
        )));
    }
    let verdict = match rules::desk_code(code) {
        Ok(g) => {
            // One writer at a time, so two quick scans of the last pack
            // cannot both be accepted.
            let mut tx = db.begin_write().await?;
            let lock = db.for_update();
            sqlx::query(&format!("SELECT id FROM orders WHERE id = $1{lock}"))
                .bind(order)
                .fetch_optional(&mut *tx)
                .await?;
            let done = scanned(
                &sqlx::query(
                    "SELECT reservation, serial FROM handover_scans WHERE order_id = $1 AND accepted = 1",
                )
                .bind(order)
                .fetch_all(&mut *tx)
                .await?,
            )?;
            let verdict = rules::verify(&reserved(db, order).await?, &done, &g);
            let (reservation, ok, message) = match &verdict {
                Verdict::Accept {
                    reservation,
                    message,
                } => (Some(*reservation), 1_i64, message.clone()),
                Verdict::Refuse { message } => (None, 0, message.clone()),
            };
            sqlx::query(
                "INSERT INTO handover_scans (order_id, reservation, code, serial, accepted, message, actor, at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(order)
            .bind(reservation)
            .bind(code)
            .bind(g.serial.as_deref())
            .bind(ok)
            .bind(&message)
            .bind(actor)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            verdict
        }
        Err(e) => Verdict::Refuse {
            message: format!("That is not a pack's GS1 code ({e}): scan the 2D code on the pack."),
        },
    };
    let missing = missing(db, order).await?;
    let message = match &verdict {
        Verdict::Accept { message, .. } if missing.is_empty() => {
            format!("{message} Every pack is scanned: hand the order over.")
        }
        Verdict::Accept { message, .. } | Verdict::Refuse { message } => message.clone(),
    };
    Ok(Progress {
        verdict,
        missing,
        message,
    })
}

/// Scans of an order: (time, actor, accepted, message).
pub async fn log(db: &Db, order: &str) -> Result<Vec<(i64, String, bool, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT at_ms, actor, accepted, message FROM handover_scans WHERE order_id = $1 ORDER BY id")
        .bind(order)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get::<i64, _>(2)? != 0,
                r.try_get(3)?,
            ))
        })
        .collect()
}
