//! Inventory: lots, the append-only stock ledger, FEFO reservations,
//! stocktakes, holds, recalls and the stock dashboards.
//!
//! Every movement runs in one write transaction: lock the lot, ask
//! [`rxedge_shared::inventory`] whether the movement is allowed, update the
//! kept balance and append the ledger line. The database backs the rules up
//! with CHECK constraints (no negative stock, no over-reservation) and
//! triggers that refuse to change or delete ledger lines.

pub mod availability;
pub mod web;

use crate::catalog::{self, Storage};
use crate::store::Db;
use chrono::NaiveDate;
use rxedge_shared::inventory::{
    self as rules, Balance, HoldReason, LotStatus, LotView, MoveKind, Pick, Shortfall, StockError,
    Unusable,
};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// Inventory errors; the web layer maps them to plain messages.
#[derive(Debug, thiserror::Error)]
pub enum InvError {
    /// The request is wrong.
    #[error("{0}")]
    Invalid(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// The ledger refuses the movement.
    #[error(transparent)]
    Stock(#[from] StockError),
    /// The lot may not go to a patient.
    #[error(transparent)]
    Unusable(#[from] Unusable),
    /// FEFO found too little usable stock.
    #[error("{product}: {source}")]
    Shortfall {
        /// Product name.
        product: String,
        /// Why.
        source: Shortfall,
    },
    /// The lot changed under us (never expected while rows are locked).
    #[error("the lot changed while this was being booked; please try again")]
    Changed,
    /// Database.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A lot as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Lot {
    /// Row id.
    pub id: i64,
    /// Location id.
    pub location: String,
    /// GTIN-14, when the lot is in the catalog.
    pub gtin: Option<String>,
    /// Product name.
    pub product: String,
    /// Batch.
    pub lot: String,
    /// Expiry `YYYY-MM-DD`.
    pub expiry: String,
    /// Packs on hand (kept balance).
    pub quantity: i64,
    /// Packs reserved.
    pub reserved: i64,
    /// Status.
    pub status: String,
    /// Why it is held.
    pub hold_reason: Option<String>,
    /// The cold-chain alarm that put it on hold.
    pub hold_alarm_id: Option<String>,
    /// What was found, for damage and investigation holds.
    pub hold_note: Option<String>,
}

impl Lot {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            location: r.try_get("location_id")?,
            gtin: r.try_get("gtin")?,
            product: r.try_get("product")?,
            lot: r.try_get("lot")?,
            expiry: r.try_get("expiry")?,
            quantity: r.try_get("quantity")?,
            reserved: r.try_get("reserved")?,
            status: r.try_get("status")?,
            hold_reason: r.try_get("hold_reason")?,
            hold_alarm_id: r.try_get("hold_alarm_id")?,
            hold_note: r.try_get("hold_note")?,
        })
    }

    /// The view the pure rules work on.
    pub fn view(&self) -> LotView {
        LotView {
            id: self.id,
            lot: self.lot.clone(),
            expiry: rules::parse_expiry(&self.expiry).unwrap_or(NaiveDate::MIN),
            status: LotStatus::parse(&self.status).unwrap_or(LotStatus::OnHold),
            hold_reason: self.hold_reason.as_deref().and_then(HoldReason::parse),
            balance: Balance {
                on_hand: self.quantity,
                reserved: self.reserved,
            },
        }
    }
}

/// Who and why, for a ledger line.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MoveCtx {
    /// The user.
    pub actor: String,
    /// Why (required for adjustments and write-offs).
    #[serde(default)]
    pub reason: String,
    /// The order this movement serves.
    #[serde(default)]
    pub order_ref: Option<String>,
    /// The patient who received the packs.
    #[serde(default)]
    pub patient: Option<String>,
}

impl MoveCtx {
    fn check(&self) -> Result<(), InvError> {
        if self.actor.trim().is_empty() {
            return Err(InvError::Invalid("who does this must be given".into()));
        }
        Ok(())
    }
}

/// When a movement happens: the calendar day (for expiry) and the instant
/// (for the ledger). Passed in, so the rules run on an injected clock.
#[derive(Debug, Clone, Copy)]
pub struct At {
    /// Today, for expiry checks.
    pub today: NaiveDate,
    /// Now, for the ledger.
    pub now_ms: i64,
}

impl At {
    /// The instant `ms` and its calendar day in the store's time zone: a
    /// pack that expired yesterday, store time, is expired now, whatever
    /// the UTC date (see [`crate::days`]).
    pub fn from_ms(ms: i64) -> Self {
        Self {
            today: crate::days::day_of(ms),
            now_ms: ms,
        }
    }
}

const LOT_COLUMNS: &str = "id, location_id, gtin, product, lot, expiry, quantity, reserved, status, hold_reason, hold_alarm_id, hold_note";

async fn lock_lot(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    db: &Db,
    id: i64,
) -> Result<Lot, InvError> {
    let sql = format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE id = $1{}",
        db.for_update()
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| InvError::NotFound(format!("no lot {id}")))?;
    Ok(Lot::from_row(&row)?)
}

/// Apply one movement to a locked lot inside `tx`: check, update, append.
async fn move_locked(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    lot: &Lot,
    kind: MoveKind,
    qty: i64,
    ctx: &MoveCtx,
    other_lot: Option<i64>,
    at: At,
) -> Result<Balance, InvError> {
    let view = lot.view();
    if kind.is_outgoing_to_patient() {
        rules::usable(&view, at.today)?;
    }
    let next = rules::apply(view.balance, kind, qty, &ctx.reason)?;
    let d = rules::delta(kind, qty)?;
    // Compare-and-set on the balance read under the lock: should the lock ever
    // be missing, a concurrent change makes this touch no row instead of
    // overwriting it.
    let n = sqlx::query(
        "UPDATE lots SET quantity = $1, reserved = $2 WHERE id = $3 AND quantity = $4 AND reserved = $5",
    )
    .bind(next.on_hand)
    .bind(next.reserved)
    .bind(lot.id)
    .bind(view.balance.on_hand)
    .bind(view.balance.reserved)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(InvError::Changed);
    }
    sqlx::query(
        "INSERT INTO stock_moves (at_ms, lot_id, kind, qty_delta, reserved_delta, on_hand_after, reserved_after, actor, reason, order_ref, patient, other_lot) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CAST($12 AS BIGINT))",
    )
    .bind(at.now_ms)
    .bind(lot.id)
    .bind(kind.as_str())
    .bind(d.on_hand)
    .bind(d.reserved)
    .bind(next.on_hand)
    .bind(next.reserved)
    .bind(ctx.actor.trim())
    .bind(ctx.reason.trim())
    .bind(ctx.order_ref.as_deref())
    .bind(ctx.patient.as_deref())
    .bind(other_lot.map(|n| n.to_string()))
    .execute(&mut **tx)
    .await?;
    Ok(next)
}

/// One movement on one lot, in its own transaction.
pub async fn move_stock(
    db: &Db,
    lot_id: i64,
    kind: MoveKind,
    qty: i64,
    ctx: &MoveCtx,
    at: At,
) -> Result<(Lot, Balance), InvError> {
    ctx.check()?;
    if matches!(
        kind,
        MoveKind::Reservation
            | MoveKind::Release
            | MoveKind::Dispense
            | MoveKind::TransferIn
            | MoveKind::TransferOut
            | MoveKind::Receipt
    ) {
        // These go through reserve/release/dispense_reservation/transfer/receive,
        // which keep their companion rows in step.
        return Err(InvError::Invalid(format!(
            "{} is not a direct movement",
            kind.as_str()
        )));
    }
    let mut tx = db.begin_write().await?;
    let lot = lock_lot(&mut tx, db, lot_id).await?;
    let b = move_locked(&mut tx, &lot, kind, qty, ctx, None, at).await?;
    tx.commit().await?;
    Ok((lot, b))
}

/// A new, empty, available lot row; its stock arrives through the ledger.
struct EmptyLot<'a> {
    location: &'a str,
    gtin: Option<&'a str>,
    product: &'a str,
    batch: &'a str,
    expiry: NaiveDate,
}

impl EmptyLot<'_> {
    async fn insert(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        now_ms: i64,
    ) -> Result<i64, InvError> {
        let row = sqlx::query(
            "INSERT INTO lots (location_id, gtin, product, lot, expiry, quantity, reserved, status, received_ms) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, 'available', $6) RETURNING id",
        )
        .bind(self.location)
        .bind(self.gtin)
        .bind(self.product)
        .bind(self.batch)
        .bind(self.expiry.to_string())
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get(0)?)
    }
}

/// Goods in.
#[derive(Debug, Clone, Deserialize)]
pub struct Receipt {
    /// Product GTIN (8–14 digits).
    pub gtin: String,
    /// Batch.
    pub lot: String,
    /// Expiry, `YYYY-MM-DD` (day `00`: end of month).
    pub expiry: String,
    /// Packs.
    pub quantity: i64,
    /// Location id.
    pub location: String,
}

async fn location_kind(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
) -> Result<String, InvError> {
    let r = sqlx::query("SELECT kind FROM stock_locations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| InvError::Invalid(format!("unknown location {id:?}")))?;
    Ok(r.try_get(0)?)
}

fn storage_fits(storage: Storage, location_kind: &str) -> bool {
    match (storage, location_kind) {
        (_, "quarantine") => true,
        (Storage::Fridge, k) => k == "fridge",
        (Storage::Frozen, k) => k == "freezer",
        (Storage::Room, k) => k == "shelf",
    }
}

async fn recalled(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    gtin: &str,
    batch: &str,
) -> Result<bool, InvError> {
    Ok(
        sqlx::query("SELECT 1 FROM recalls WHERE gtin = $1 AND batch = $2")
            .bind(gtin)
            .bind(batch)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// Receive stock: into the existing lot of that batch at that location, or a new one.
pub async fn receive(db: &Db, r: &Receipt, ctx: &MoveCtx, at: At) -> Result<Lot, InvError> {
    ctx.check()?;
    let product = catalog::get(db, &r.gtin).await?.ok_or_else(|| {
        InvError::Invalid(format!("GTIN {} is not in the catalog", r.gtin.trim()))
    })?;
    let batch = r.lot.trim();
    if batch.is_empty() || batch.len() > 20 {
        return Err(InvError::Invalid(
            "the batch number must be 1 to 20 characters".into(),
        ));
    }
    let expiry = rules::parse_expiry(&r.expiry).ok_or_else(|| {
        InvError::Invalid(format!("expiry {:?} is not a date (YYYY-MM-DD)", r.expiry))
    })?;
    if expiry < at.today {
        return Err(InvError::Invalid(format!(
            "batch {batch} expired on {expiry}; expired stock cannot be received"
        )));
    }
    if r.quantity <= 0 {
        return Err(StockError::BadQuantity.into());
    }
    let mut tx = db.begin_write().await?;
    let kind = location_kind(&mut tx, r.location.trim()).await?;
    if !storage_fits(product.storage, &kind) {
        return Err(InvError::Invalid(format!(
            "{} must be stored at {}; {} is a {kind} location",
            product.name,
            product.storage.label(),
            r.location.trim()
        )));
    }
    if recalled(&mut tx, &product.gtin, batch).await? {
        return Err(InvError::Invalid(format!(
            "batch {batch} of {} is recalled and must not be received; put it in quarantine for return",
            product.name
        )));
    }
    let sql = format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE gtin = $1 AND lot = $2 AND location_id = $3 AND expiry = $4 AND status = 'available'{}",
        db.for_update()
    );
    let existing = sqlx::query(&sql)
        .bind(&product.gtin)
        .bind(batch)
        .bind(r.location.trim())
        .bind(expiry.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let lot = match existing {
        Some(row) => Lot::from_row(&row)?,
        None => {
            let row = EmptyLot {
                location: r.location.trim(),
                gtin: Some(&product.gtin),
                product: &product.name,
                batch,
                expiry,
            };
            let id = row.insert(&mut tx, at.now_ms).await?;
            lock_lot(&mut tx, db, id).await?
        }
    };
    move_locked(&mut tx, &lot, MoveKind::Receipt, r.quantity, ctx, None, at).await?;
    hold_if_fridge_in_alarm(&mut tx, lot.id, &lot.location, at.now_ms).await?;
    let lot = lock_lot(&mut tx, db, lot.id).await?;
    tx.commit().await?;
    Ok(lot)
}

/// A lot recorded outside the scanning flow.
#[derive(Debug, Clone, Deserialize)]
pub struct NewLot {
    /// Location id.
    pub location: String,
    /// Product name (taken from the catalog when `gtin` is given).
    #[serde(default)]
    pub product: String,
    /// GTIN, when the product is in the catalog.
    #[serde(default)]
    pub gtin: Option<String>,
    /// Batch.
    pub lot: String,
    /// Expiry `YYYY-MM-DD`.
    pub expiry: String,
    /// Packs.
    pub quantity: i64,
}

/// Record a lot outside the catalog flow (stock counted in at installation,
/// products not yet in the catalog): a new lot with an opening receipt.
pub async fn open_lot(db: &Db, n: &NewLot, ctx: &MoveCtx, at: At) -> Result<i64, InvError> {
    ctx.check()?;
    let expiry = rules::parse_expiry(&n.expiry)
        .ok_or_else(|| InvError::Invalid(format!("expiry {:?} is not a date", n.expiry)))?;
    let (gtin, product) = match n.gtin.as_deref().filter(|g| !g.trim().is_empty()) {
        Some(g) => {
            let p = catalog::get(db, g)
                .await?
                .ok_or_else(|| InvError::Invalid(format!("GTIN {g} is not in the catalog")))?;
            (Some(p.gtin), p.name)
        }
        None => (None, n.product.trim().to_owned()),
    };
    if product.is_empty() || n.lot.trim().is_empty() || n.quantity < 0 {
        return Err(InvError::Invalid(
            "a lot needs a product, a batch number and a quantity of zero or more".into(),
        ));
    }
    let (location, batch, quantity) = (n.location.trim(), n.lot.trim(), n.quantity);
    let mut tx = db.begin_write().await?;
    location_kind(&mut tx, location).await?;
    let id = EmptyLot {
        location,
        gtin: gtin.as_deref(),
        product: &product,
        batch,
        expiry,
    }
    .insert(&mut tx, at.now_ms)
    .await?;
    let lot = lock_lot(&mut tx, db, id).await?;
    if quantity > 0 {
        move_locked(
            &mut tx,
            &lot,
            MoveKind::Receipt,
            quantity,
            ctx,
            None,
            At {
                today: NaiveDate::MIN,
                ..at
            },
        )
        .await?;
    }
    hold_if_fridge_in_alarm(&mut tx, id, location, at.now_ms).await?;
    tx.commit().await?;
    Ok(id)
}

/// One reservation line.
#[derive(Debug, Clone, Serialize)]
pub struct Reserved {
    /// Reservation id.
    pub id: i64,
    /// Lot row id.
    pub lot_id: i64,
    /// Batch.
    pub lot: String,
    /// Expiry.
    pub expiry: String,
    /// Location.
    pub location: String,
    /// Packs.
    pub qty: i64,
}

/// Reserve `qty` packs of `gtin` for `order_ref`, first-expiry-first-out.
/// All or nothing. Two concurrent callers never over-allocate a lot: the
/// candidate lots are locked for the transaction (`BEGIN IMMEDIATE` on
/// SQLite, `FOR UPDATE` on PostgreSQL), and the CHECK constraints stand behind that.
pub async fn reserve_fefo(
    db: &Db,
    gtin: &str,
    qty: i64,
    min_shelf_life_days: u32,
    ctx: &MoveCtx,
    at: At,
) -> Result<Vec<Reserved>, InvError> {
    ctx.check()?;
    let order_ref = ctx
        .order_ref
        .clone()
        .filter(|o| !o.trim().is_empty())
        .ok_or_else(|| InvError::Invalid("a reservation needs an order reference".into()))?;
    let product = catalog::get(db, gtin)
        .await?
        .ok_or_else(|| InvError::NotFound(format!("GTIN {gtin} is not in the catalog")))?;
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE gtin = $1 AND status = 'available' AND quantity > reserved ORDER BY expiry, id{}",
        db.for_update()
    );
    let lots: Vec<Lot> = sqlx::query(&sql)
        .bind(&product.gtin)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(Lot::from_row)
        .collect::<Result<_, _>>()?;
    let views: Vec<LotView> = lots.iter().map(Lot::view).collect();
    let picks: Vec<Pick> =
        rules::allocate(&views, qty, at.today, min_shelf_life_days).map_err(|source| {
            InvError::Shortfall {
                product: product.name.clone(),
                source,
            }
        })?;
    let mut out = Vec::new();
    for p in picks {
        let Some(lot) = lots.iter().find(|l| l.id == p.lot_id) else {
            continue;
        };
        move_locked(&mut tx, lot, MoveKind::Reservation, p.qty, ctx, None, at).await?;
        let row = sqlx::query(
            "INSERT INTO reservations (order_ref, lot_id, qty, state, actor, created_ms) VALUES ($1, $2, $3, 'active', $4, $5) RETURNING id",
        )
        .bind(order_ref.trim())
        .bind(lot.id)
        .bind(p.qty)
        .bind(ctx.actor.trim())
        .bind(at.now_ms)
        .fetch_one(&mut *tx)
        .await?;
        out.push(Reserved {
            id: row.try_get(0)?,
            lot_id: lot.id,
            lot: lot.lot.clone(),
            expiry: lot.expiry.clone(),
            location: lot.location.clone(),
            qty: p.qty,
        });
    }
    tx.commit().await?;
    Ok(out)
}

async fn lock_reservation(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    db: &Db,
    id: i64,
) -> Result<(i64, i64, String), InvError> {
    let sql = format!(
        "SELECT lot_id, qty, order_ref, state FROM reservations WHERE id = $1{}",
        db.for_update()
    );
    let r = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| InvError::NotFound(format!("no reservation {id}")))?;
    let state: String = r.try_get("state")?;
    if state != "active" {
        return Err(InvError::Invalid(format!(
            "reservation {id} is already {state}"
        )));
    }
    Ok((
        r.try_get("lot_id")?,
        r.try_get("qty")?,
        r.try_get("order_ref")?,
    ))
}

/// Give a reservation back, or hand it to the patient.
pub async fn close_reservation(
    db: &Db,
    id: i64,
    dispense: bool,
    ctx: &MoveCtx,
    at: At,
) -> Result<Lot, InvError> {
    ctx.check()?;
    let mut tx = db.begin_write().await?;
    let (lot_id, qty, order_ref) = lock_reservation(&mut tx, db, id).await?;
    let lot = lock_lot(&mut tx, db, lot_id).await?;
    let ctx = MoveCtx {
        order_ref: Some(order_ref),
        ..ctx.clone()
    };
    let kind = if dispense {
        MoveKind::Dispense
    } else {
        MoveKind::Release
    };
    let b = move_locked(&mut tx, &lot, kind, qty, &ctx, None, at).await?;
    sqlx::query("UPDATE reservations SET state = $1, closed_ms = $2 WHERE id = $3")
        .bind(if dispense { "dispensed" } else { "released" })
        .bind(at.now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Lot {
        quantity: b.on_hand,
        reserved: b.reserved,
        ..lot
    })
}

/// Move `qty` packs of a lot to another location (same batch and expiry).
pub async fn transfer(
    db: &Db,
    lot_id: i64,
    to: &str,
    qty: i64,
    ctx: &MoveCtx,
    at: At,
) -> Result<i64, InvError> {
    ctx.check()?;
    let mut tx = db.begin_write().await?;
    let src = lock_lot(&mut tx, db, lot_id).await?;
    let kind = location_kind(&mut tx, to).await?;
    if src.location == to {
        return Err(InvError::Invalid("the lot is already there".into()));
    }
    if let Some(g) = &src.gtin {
        // Read inside the transaction: a second pool connection here could
        // wait forever behind writers queued on the first.
        let p = sqlx::query("SELECT name, storage FROM products WHERE gtin = $1")
            .bind(g)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(p) = p {
            let storage =
                Storage::parse(&p.try_get::<String, _>("storage")?).unwrap_or(Storage::Room);
            if !storage_fits(storage, &kind) {
                return Err(InvError::Invalid(format!(
                    "{} must be stored at {}; {to} is a {kind} location",
                    p.try_get::<String, _>("name")?,
                    storage.label()
                )));
            }
        }
    }
    // The target lot keeps the source's status: held stock stays held wherever it goes.
    let sql = format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE product = $1 AND lot = $2 AND expiry = $3 AND location_id = $4 AND status = $5{}",
        db.for_update()
    );
    let existing = sqlx::query(&sql)
        .bind(&src.product)
        .bind(&src.lot)
        .bind(&src.expiry)
        .bind(to)
        .bind(&src.status)
        .fetch_optional(&mut *tx)
        .await?;
    let dst = match existing {
        Some(r) => Lot::from_row(&r)?,
        None => {
            let r = sqlx::query(
                "INSERT INTO lots (location_id, gtin, product, lot, expiry, quantity, reserved, status, hold_reason, hold_alarm_id, received_ms) \
                 VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, $8, $9) RETURNING id",
            )
            .bind(to)
            .bind(src.gtin.as_deref())
            .bind(&src.product)
            .bind(&src.lot)
            .bind(&src.expiry)
            .bind(&src.status)
            .bind(src.hold_reason.as_deref())
            .bind(src.hold_alarm_id.as_deref())
            .bind(at.now_ms)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = r.try_get(0)?;
            lock_lot(&mut tx, db, id).await?
        }
    };
    move_locked(
        &mut tx,
        &src,
        MoveKind::TransferOut,
        qty,
        ctx,
        Some(dst.id),
        at,
    )
    .await?;
    move_locked(
        &mut tx,
        &dst,
        MoveKind::TransferIn,
        qty,
        ctx,
        Some(src.id),
        at,
    )
    .await?;
    tx.commit().await?;
    Ok(dst.id)
}

/// A counted line of a stocktake.
#[derive(Debug, Clone, Deserialize)]
pub struct Count {
    /// Lot row id.
    pub lot_id: i64,
    /// Packs counted.
    pub counted: i64,
}

/// A stocktake's result line.
#[derive(Debug, Clone, Serialize)]
pub struct Variance {
    /// Lot row id.
    pub lot_id: i64,
    /// Kept balance before.
    pub expected: i64,
    /// Counted.
    pub counted: i64,
    /// counted − expected.
    pub variance: i64,
}

/// Record a stocktake: each variance becomes an adjustment with the note as
/// its reason. All lines or none.
pub async fn stocktake(
    db: &Db,
    counts: &[Count],
    note: &str,
    ctx: &MoveCtx,
    at: At,
) -> Result<(i64, Vec<Variance>), InvError> {
    ctx.check()?;
    if note.trim().is_empty() {
        return Err(InvError::Invalid(
            "a stocktake needs a note (which shelf, why)".into(),
        ));
    }
    if counts.iter().any(|c| c.counted < 0) {
        return Err(InvError::Invalid("a count cannot be negative".into()));
    }
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(
        "INSERT INTO stocktakes (at_ms, actor, note, lines) VALUES ($1, $2, $3, '[]') RETURNING id",
    )
    .bind(at.now_ms)
    .bind(ctx.actor.trim())
    .bind(note.trim())
    .fetch_one(&mut *tx)
    .await?;
    let id: i64 = row.try_get(0)?;
    let mut out = Vec::new();
    for c in counts {
        let lot = lock_lot(&mut tx, db, c.lot_id).await?;
        let variance = c.counted - lot.quantity;
        if variance != 0 {
            let ctx = MoveCtx {
                reason: format!("stocktake #{id}: {}", note.trim()),
                ..ctx.clone()
            };
            move_locked(&mut tx, &lot, MoveKind::Adjustment, variance, &ctx, None, at)
                .await
                .map_err(|e| match e {
                    InvError::Stock(StockError::Insufficient { reserved, .. }) => InvError::Invalid(format!(
                        "lot {}: {} counted but {reserved} are reserved for orders; release those reservations first",
                        lot.lot, c.counted
                    )),
                    other => other,
                })?;
        }
        out.push(Variance {
            lot_id: lot.id,
            expected: lot.quantity,
            counted: c.counted,
            variance,
        });
    }
    let lines = serde_json::to_string(&out).unwrap_or_default();
    sqlx::query("UPDATE stocktakes SET lines = $1 WHERE id = $2")
        .bind(lines)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((id, out))
}

/// Put a lot on hold for damage or an investigation (the cold chain holds its own).
pub async fn hold(
    db: &Db,
    lot_id: i64,
    reason: HoldReason,
    ctx: &MoveCtx,
    now_ms: i64,
) -> Result<(), InvError> {
    ctx.check()?;
    if ctx.reason.trim().is_empty() {
        return Err(InvError::Invalid("say what was found".into()));
    }
    let n = sqlx::query(
        "UPDATE lots SET status = 'on_hold', hold_reason = $1, hold_ms = $2, hold_alarm_id = NULL, hold_note = $3 || ' (' || $4 || ')' \
         WHERE id = $5 AND status = 'available'",
    )
    .bind(reason.as_str())
    .bind(now_ms)
    .bind(ctx.reason.trim())
    .bind(ctx.actor.trim())
    .bind(lot_id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(InvError::Invalid(format!(
            "lot {lot_id} is not available, so it cannot be put on hold"
        )));
    }
    Ok(())
}

/// Release a held lot, or discard it (its remaining packs are written off).
pub async fn decide_hold(
    db: &Db,
    lot_id: i64,
    release: bool,
    ctx: &MoveCtx,
    at: At,
) -> Result<Lot, InvError> {
    ctx.check()?;
    if ctx.reason.trim().is_empty() {
        return Err(InvError::Invalid(
            "a decision needs a note saying why".into(),
        ));
    }
    let mut tx = db.begin_write().await?;
    let lot = lock_lot(&mut tx, db, lot_id).await?;
    if lot.status != "on_hold" {
        return Err(InvError::Invalid(format!("lot {} is not on hold", lot.lot)));
    }
    if !release && lot.quantity > 0 {
        // Reservations on a discarded lot go back first, so the order is re-allocated.
        release_all_on(&mut tx, db, &lot, "lot discarded", ctx, at).await?;
        let lot = lock_lot(&mut tx, db, lot_id).await?;
        let wctx = MoveCtx {
            reason: format!("discarded after hold: {}", ctx.reason.trim()),
            ..ctx.clone()
        };
        move_locked(
            &mut tx,
            &lot,
            MoveKind::WriteOff,
            lot.quantity,
            &wctx,
            None,
            at,
        )
        .await?;
    }
    sqlx::query("UPDATE lots SET status = $1, decided_by = $2, decision_note = $3, decided_ms = $4 WHERE id = $5")
        .bind(if release { "available" } else { "discarded" })
        .bind(ctx.actor.trim())
        .bind(ctx.reason.trim())
        .bind(at.now_ms)
        .bind(lot_id)
        .execute(&mut *tx)
        .await?;
    if let Some(alarm) = &lot.hold_alarm_id {
        let what = format!(
            "lot {} of {}: {}: {}",
            lot.lot,
            lot.product,
            if release { "release" } else { "discard" },
            ctx.reason.trim()
        );
        let action = if release {
            "stock_release"
        } else {
            "stock_discard"
        };
        crate::coldchain::service::log(&mut tx, alarm, at.now_ms, action, ctx.actor.trim(), &what)
            .await?;
    }
    let lot = lock_lot(&mut tx, db, lot_id).await?;
    tx.commit().await?;
    Ok(lot)
}

/// Release every active reservation on a lot; returns the orders affected.
async fn release_all_on(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    db: &Db,
    lot: &Lot,
    why: &str,
    ctx: &MoveCtx,
    at: At,
) -> Result<Vec<String>, InvError> {
    let rows = sqlx::query(
        "SELECT id, qty, order_ref FROM reservations WHERE lot_id = $1 AND state = 'active' ORDER BY id",
    )
    .bind(lot.id)
    .fetch_all(&mut **tx)
    .await?;
    let mut orders = Vec::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let qty: i64 = r.try_get("qty")?;
        let order: String = r.try_get("order_ref")?;
        let current = lock_lot(tx, db, lot.id).await?;
        let c = MoveCtx {
            reason: why.to_owned(),
            order_ref: Some(order.clone()),
            ..ctx.clone()
        };
        move_locked(tx, &current, MoveKind::Release, qty, &c, None, at).await?;
        sqlx::query("UPDATE reservations SET state = 'released', closed_ms = $1 WHERE id = $2")
            .bind(at.now_ms)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        orders.push(order);
    }
    Ok(orders)
}

/// What a recall did.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    /// Recall id.
    pub id: i64,
    /// GTIN-14 recalled.
    pub gtin: String,
    /// Batch recalled.
    pub batch: String,
    /// Lot rows marked recalled.
    pub lots: i64,
    /// Orders whose reservations were given back and need another lot.
    pub orders_released: Vec<String>,
}

/// Recall a batch: every lot of it becomes recalled, reservations on it are
/// given back, and later receipts of it are refused.
pub async fn recall(
    db: &Db,
    gtin: &str,
    batch: &str,
    ctx: &MoveCtx,
    at: At,
) -> Result<RecallReport, InvError> {
    ctx.check()?;
    let gtin = catalog::normalize_gtin(gtin).map_err(InvError::Invalid)?;
    let batch = batch.trim();
    if batch.is_empty() {
        return Err(InvError::Invalid("the batch number is required".into()));
    }
    if ctx.reason.trim().is_empty() {
        return Err(InvError::Invalid(
            "give the recall's reason or reference".into(),
        ));
    }
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE gtin = $1 AND lot = $2 ORDER BY id{}",
        db.for_update()
    );
    let lots: Vec<Lot> = sqlx::query(&sql)
        .bind(&gtin)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(Lot::from_row)
        .collect::<Result<_, _>>()?;
    let mut orders = Vec::new();
    for l in &lots {
        orders.extend(release_all_on(&mut tx, db, l, "recall", ctx, at).await?);
    }
    let n = sqlx::query("UPDATE lots SET status = 'recalled', decided_by = $1, decision_note = $2, decided_ms = $3 WHERE gtin = $4 AND lot = $5")
        .bind(ctx.actor.trim())
        .bind(ctx.reason.trim())
        .bind(at.now_ms)
        .bind(&gtin)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let row = sqlx::query("INSERT INTO recalls (gtin, batch, reason, actor, at_ms, lots) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
        .bind(&gtin)
        .bind(batch)
        .bind(ctx.reason.trim())
        .bind(ctx.actor.trim())
        .bind(at.now_ms)
        .bind(n as i64)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    orders.dedup();
    Ok(RecallReport {
        id: row.try_get(0)?,
        gtin,
        batch: batch.to_owned(),
        lots: n as i64,
        orders_released: orders,
    })
}

/// One line of a recall trace: who received packs of the batch.
#[derive(Debug, Clone, Serialize)]
pub struct TraceLine {
    /// When.
    pub at_ms: i64,
    /// `dispense`, `dispense_unreserved`, or `reservation` (still held for an order).
    pub kind: String,
    /// Packs.
    pub qty: i64,
    /// Order reference.
    pub order_ref: Option<String>,
    /// Patient.
    pub patient: Option<String>,
    /// Who handed it over.
    pub actor: String,
    /// Lot row.
    pub lot_id: i64,
    /// Location it left from.
    pub location: String,
}

/// Every order and patient that received the batch (and any order that still holds it).
pub async fn trace(db: &Db, gtin: &str, batch: &str) -> Result<Vec<TraceLine>, InvError> {
    let gtin = catalog::normalize_gtin(gtin).map_err(InvError::Invalid)?;
    let rows = sqlx::query(
        "SELECT m.at_ms, m.kind, m.qty_delta, m.reserved_delta, m.order_ref, m.patient, m.actor, m.lot_id, l.location_id \
         FROM stock_moves m JOIN lots l ON l.id = m.lot_id \
         WHERE l.gtin = $1 AND l.lot = $2 AND m.kind IN ('dispense', 'dispense_unreserved') ORDER BY m.at_ms, m.id",
    )
    .bind(&gtin)
    .bind(batch.trim())
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(TraceLine {
            at_ms: r.try_get("at_ms")?,
            kind: r.try_get("kind")?,
            qty: -r.try_get::<i64, _>("qty_delta")?,
            order_ref: r.try_get("order_ref")?,
            patient: r.try_get("patient")?,
            actor: r.try_get("actor")?,
            lot_id: r.try_get("lot_id")?,
            location: r.try_get("location_id")?,
        });
    }
    Ok(out)
}

/// Lots whose expiry date has passed become `expired`. Returns how many changed.
pub async fn expire_lots(db: &Db, today: NaiveDate) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query(
            "UPDATE lots SET status = 'expired' WHERE status = 'available' AND expiry < $1",
        )
        .bind(today.to_string())
        .execute(&db.pool)
        .await?
        .rows_affected(),
    )
}

/// Make sure every watched fridge exists as a stock location.
pub async fn ensure_fridge_locations(
    db: &Db,
    fridges: &[String],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    for f in fridges {
        sqlx::query("INSERT INTO stock_locations (id, name, kind, created_ms) VALUES ($1, $2, 'fridge', $3) ON CONFLICT (id) DO NOTHING")
            .bind(f)
            .bind(f)
            .bind(now_ms)
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

/// Stock put into a fridge that is in an excursion alarm right now is held at once.
async fn hold_if_fridge_in_alarm(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    lot_id: i64,
    location: &str,
    now_ms: i64,
) -> Result<bool, InvError> {
    let active: Option<String> = sqlx::query(
        "SELECT id FROM alarms WHERE fridge = $1 AND end_ms IS NULL \
         AND kind IN ('high_single', 'high_cumulative', 'low_single', 'low_cumulative') ORDER BY start_ms LIMIT 1",
    )
    .bind(location)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    let Some(alarm) = active else {
        return Ok(false);
    };
    sqlx::query("UPDATE lots SET status = 'on_hold', hold_reason = 'cold_chain_excursion', hold_alarm_id = $1, hold_ms = $2 WHERE id = $3 AND status = 'available'")
        .bind(&alarm)
        .bind(now_ms)
        .bind(lot_id)
        .execute(&mut **tx)
        .await?;
    crate::coldchain::service::log(
        tx,
        &alarm,
        now_ms,
        "stock_held",
        "inventory",
        &format!("lot row {lot_id} received into {location} during the excursion, held"),
    )
    .await?;
    Ok(true)
}

/// Mark lots past their expiry date as expired, at start and then hourly.
pub async fn expiry_sweeper(
    db: Db,
    feed: tokio::sync::broadcast::Sender<crate::web::FeedItem>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let today = crate::days::day_of(rxedge_shared::clock::system_now_ms());
        match expire_lots(&db, today).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(lots = n, "lots past their expiry date marked expired");
                let _ = feed.send(crate::web::FeedItem::Stock);
            }
            Err(e) => tracing::error!(error = %e, "expiry sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// The lots of these products still on the shelves, usable or held, first
/// expiry first: what a review weighs before reserving. One query.
pub async fn on_hand(db: &Db, gtins: &[String]) -> Result<Vec<Lot>, sqlx::Error> {
    if gtins.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE gtin IN ({}) AND status IN ('available', 'on_hold') \
         AND quantity > 0 ORDER BY gtin, expiry, id",
        crate::store::marks(1, gtins.len())
    );
    let mut q = sqlx::query(&sql);
    for g in gtins {
        q = q.bind(g);
    }
    q.fetch_all(&db.pool)
        .await?
        .iter()
        .map(Lot::from_row)
        .collect()
}

/// Lots, optionally of one status, by location and expiry.
pub async fn lots(db: &Db, status: Option<&str>) -> Result<Vec<Lot>, sqlx::Error> {
    let rows = match status {
        Some(s) => {
            sqlx::query(&format!(
                "SELECT {LOT_COLUMNS} FROM lots WHERE status = $1 ORDER BY location_id, expiry, id"
            ))
            .bind(s)
            .fetch_all(&db.pool)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {LOT_COLUMNS} FROM lots ORDER BY location_id, expiry, id"
            ))
            .fetch_all(&db.pool)
            .await?
        }
    };
    rows.iter().map(Lot::from_row).collect()
}

/// One lot.
pub async fn lot(db: &Db, id: i64) -> Result<Option<Lot>, sqlx::Error> {
    sqlx::query(&format!("SELECT {LOT_COLUMNS} FROM lots WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(Lot::from_row)
        .transpose()
}

/// The ledger check: every lot whose kept balance differs from the sum of
/// its ledger lines. Empty when the books are straight.
pub async fn ledger_drift(db: &Db) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT l.id, l.quantity, l.reserved, CAST(COALESCE(SUM(m.qty_delta), 0) AS BIGINT) AS oh, CAST(COALESCE(SUM(m.reserved_delta), 0) AS BIGINT) AS rs \
         FROM lots l LEFT JOIN stock_moves m ON m.lot_id = l.id GROUP BY l.id, l.quantity, l.reserved",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let q: i64 = r.try_get(1)?;
        let res: i64 = r.try_get(2)?;
        let oh: i64 = r.try_get(3)?;
        let rs: i64 = r.try_get(4)?;
        if q != oh || res != rs {
            out.push((id, q, oh));
        }
    }
    Ok(out)
}

/// A lot expiring soon.
#[derive(Debug, Clone, Serialize)]
pub struct Expiring {
    /// The lot.
    pub lot: Lot,
    /// Days until expiry.
    pub days_left: i64,
}

/// A product's stock position.
#[derive(Debug, Clone, Serialize)]
pub struct Position {
    /// GTIN.
    pub gtin: String,
    /// Name.
    pub name: String,
    /// Free packs in available lots.
    pub free: i64,
    /// Reorder point.
    pub reorder_point: i64,
    /// Packs dispensed in the rate window.
    pub dispensed: i64,
    /// Days of stock left at that rate.
    pub days_left: Option<f64>,
}

/// Everything the stock dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// Available lots expiring within the window, soonest first.
    pub expiring: Vec<Expiring>,
    /// Stocked products (ever received) whose free stock is below their reorder point.
    pub below_reorder: Vec<Position>,
    /// Lots on hold awaiting a decision.
    pub held: Vec<Lot>,
    /// Products with stock or recent dispensing, fewest days left first.
    pub days_left: Vec<Position>,
}

/// Compute the dashboard.
pub async fn dashboard(
    db: &Db,
    expiring_within_days: u32,
    window_days: u32,
    at: At,
) -> Result<Dashboard, sqlx::Error> {
    let horizon = at
        .today
        .checked_add_days(chrono::Days::new(u64::from(expiring_within_days)))
        .unwrap_or(NaiveDate::MAX);
    let rows = sqlx::query(&format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE status = 'available' AND quantity > 0 AND expiry <= $1 ORDER BY expiry, id"
    ))
    .bind(horizon.to_string())
    .fetch_all(&db.pool)
    .await?;
    let mut expiring = Vec::new();
    for r in &rows {
        let lot = Lot::from_row(r)?;
        let days_left = rules::days_until(lot.view().expiry, at.today);
        expiring.push(Expiring { lot, days_left });
    }
    let since = at.now_ms - i64::from(window_days) * 86_400_000;
    let rows = sqlx::query(
        "SELECT p.gtin, p.name, p.reorder_point, \
           CAST(COALESCE((SELECT SUM(l.quantity - l.reserved) FROM lots l WHERE l.gtin = p.gtin AND l.status = 'available'), 0) AS BIGINT) AS free, \
           CAST(COALESCE((SELECT SUM(-m.qty_delta) FROM stock_moves m JOIN lots l2 ON l2.id = m.lot_id \
                 WHERE l2.gtin = p.gtin AND m.kind IN ('dispense', 'dispense_unreserved') AND m.at_ms >= $1), 0) AS BIGINT) AS dispensed \
         FROM products p ORDER BY p.name",
    )
    .bind(since)
    .fetch_all(&db.pool)
    .await?;
    let stocked: std::collections::HashSet<String> =
        sqlx::query("SELECT DISTINCT gtin FROM lots WHERE gtin IS NOT NULL")
            .fetch_all(&db.pool)
            .await?
            .iter()
            .filter_map(|r| r.try_get(0).ok())
            .collect();
    let mut below_reorder = Vec::new();
    let mut days_left = Vec::new();
    for r in &rows {
        let free: i64 = r.try_get("free")?;
        let dispensed: i64 = r.try_get("dispensed")?;
        let p = Position {
            gtin: r.try_get("gtin")?,
            name: r.try_get("name")?,
            free,
            reorder_point: r.try_get("reorder_point")?,
            dispensed,
            days_left: rules::days_of_stock(free, dispensed, window_days),
        };
        // Only products the pharmacy stocks: the catalog is a master list, and
        // a product never received is not "running low".
        if p.free < p.reorder_point && stocked.contains(&p.gtin) {
            below_reorder.push(p.clone());
        }
        if p.free > 0 || p.dispensed > 0 {
            days_left.push(p);
        }
    }
    days_left.sort_by(|a, b| {
        let k = |p: &Position| p.days_left.unwrap_or(f64::INFINITY);
        k(a).total_cmp(&k(b)).then(a.name.cmp(&b.name))
    });
    Ok(Dashboard {
        expiring,
        below_reorder,
        held: lots(db, Some("on_hold")).await?,
        days_left,
    })
}
