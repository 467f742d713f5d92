//! Billing: prices from the catalog plus a dispensing fee per pack, VAT per
//! class, the patient's and the insurer's shares under the patient's plan,
//! invoices with gapless numbers per store and year, credit notes as the only
//! correction, payments, and the daily Z report.
//!
//! The maths is pure, in [`rxedge_shared::billing`]. This module reads what
//! it needs and stores the result. The invoice number is taken from a
//! per-store, per-year counter in the same transaction that writes the
//! invoice, so a failed finalisation leaves no gap.

pub mod web;

use crate::store::Db;
use rxedge_shared::billing::{self as maths, Minor, Plan, Priced, VatRates, ZReport};
use serde::Serialize;
use sqlx::Row as _;
use std::collections::BTreeMap;

/// Billing errors.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Bad input or a refused step.
    #[error("{0}")]
    Invalid(String),
    /// The maths refused (negative or overflowing amounts).
    #[error(transparent)]
    Maths(#[from] maths::BillingError),
    /// Database.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Billing settings from config.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Dispensing fee per pack, VAT included.
    pub fee: Minor,
    /// VAT rates.
    pub vat: VatRates,
}

/// An insurance plan as stored.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    /// Id.
    pub id: String,
    /// Name ("Basic, 10 % up to 700").
    pub name: String,
    /// The insurer it bills.
    pub insurer: String,
    /// The rule.
    pub plan: Plan,
}

fn plan_of(r: &sqlx::any::AnyRow) -> Result<PlanRow, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let plan = match kind.as_str() {
        "copay" => Plan::Copay {
            per_line: r.try_get("per_line")?,
        },
        "coinsurance" => Plan::Coinsurance {
            share_bp: u32::try_from(r.try_get::<i64, _>("share_bp")?).unwrap_or(10_000),
            annual_cap: r.try_get("annual_cap")?,
        },
        // The table's CHECK allows only these three kinds.
        _ => Plan::NotCovered,
    };
    Ok(PlanRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        insurer: r.try_get("insurer")?,
        plan,
    })
}

/// Every plan, by name.
pub async fn plans(db: &Db) -> Result<Vec<PlanRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM insurance_plans ORDER BY name")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(plan_of).collect()
}

/// Add a plan.
pub async fn create_plan(
    db: &Db,
    name: &str,
    insurer: &str,
    plan: &Plan,
    now_ms: i64,
) -> Result<PlanRow, BillingError> {
    let (name, insurer) = (name.trim(), insurer.trim());
    if name.is_empty() || name.len() > 200 || insurer.len() > 200 {
        return Err(BillingError::Invalid(
            "a plan needs a name (up to 200 characters); the insurer is up to 200".into(),
        ));
    }
    let (kind, per_line, share_bp, cap) = match plan {
        Plan::NotCovered => ("not_covered", 0, 0, 0),
        Plan::Copay { per_line } => ("copay", *per_line, 0, 0),
        Plan::Coinsurance {
            share_bp,
            annual_cap,
        } => ("coinsurance", 0, i64::from(*share_bp), *annual_cap),
    };
    if per_line < 0 || cap < 0 || !(0..=10_000).contains(&share_bp) {
        return Err(BillingError::Invalid(
            "amounts must not be negative and a share is between 0 and 100 %".into(),
        ));
    }
    if kind != "not_covered" && insurer.is_empty() {
        return Err(BillingError::Invalid(
            "a plan that covers anything needs the insurer it bills".into(),
        ));
    }
    let id = uuid::Uuid::now_v7().simple().to_string();
    sqlx::query(
        "INSERT INTO insurance_plans (id, name, insurer, kind, per_line, share_bp, annual_cap, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(name)
    .bind(insurer)
    .bind(kind)
    .bind(per_line)
    .bind(share_bp)
    .bind(cap)
    .bind(now_ms)
    .execute(&db.pool)
    .await?;
    Ok(PlanRow {
        id,
        name: name.to_owned(),
        insurer: insurer.to_owned(),
        plan: plan.clone(),
    })
}

/// Put a patient on a plan (or none).
pub async fn set_patient_plan(
    db: &Db,
    patient: &str,
    plan: Option<&str>,
    actor: &str,
    now_ms: i64,
) -> Result<(), BillingError> {
    if let Some(p) = plan {
        let known = sqlx::query("SELECT 1 FROM insurance_plans WHERE id = $1")
            .bind(p)
            .fetch_optional(&db.pool)
            .await?
            .is_some();
        if !known {
            return Err(BillingError::NotFound(format!("no insurance plan {p}")));
        }
    }
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE patients SET plan_id = $1, updated_ms = $2 WHERE id = $3 AND merged_into IS NULL",
    )
    .bind(plan)
    .bind(now_ms)
    .bind(patient)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(BillingError::NotFound(format!(
            "no patient {patient} (or it was merged into another record)"
        )));
    }
    sqlx::query("INSERT INTO patient_log (patient_id, at_ms, actor, action, detail) VALUES ($1, $2, $3, 'plan', $4)")
        .bind(patient)
        .bind(now_ms)
        .bind(actor)
        .bind(plan.map_or_else(|| "no plan".to_owned(), |p| format!("plan {p}")))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What an order will cost, before the invoice is final.
#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    /// The priced lines and totals.
    pub priced: Priced,
    /// The patient's plan, if any.
    pub plan: Option<PlanRow>,
    /// The patient record.
    pub patient_id: Option<String>,
    /// The patient's name as the order shows it.
    pub patient_name: String,
    /// Coinsurance already paid this year, before this invoice.
    pub year_paid: Minor,
}

fn year_of(ms: i64) -> i32 {
    use chrono::Datelike as _;
    crate::days::day_of(ms).year()
}

async fn quote_in(
    conn: &mut sqlx::AnyConnection,
    s: Settings,
    order: &str,
    now_ms: i64,
) -> Result<Quote, BillingError> {
    let o = sqlx::query("SELECT patient, patient_id FROM orders WHERE id = $1")
        .bind(order)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no order {order}")))?;
    let patient_name: String = o.try_get("patient")?;
    // Follow merges: the survivor's plan and cap count.
    let patient_id = match o.try_get::<Option<String>, _>("patient_id")? {
        Some(id) => crate::patients::survivor(conn, &id).await?,
        None => None,
    };
    let plan = match &patient_id {
        Some(p) => sqlx::query(
            "SELECT ip.* FROM patients pa JOIN insurance_plans ip ON ip.id = pa.plan_id WHERE pa.id = $1",
        )
        .bind(p)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(plan_of)
        .transpose()?,
        None => None,
    };
    let year_paid: Minor = match &patient_id {
        Some(p) => sqlx::query(
            "SELECT CAST(COALESCE(SUM(toward_cap), 0) AS BIGINT) FROM invoices WHERE patient_id = $1 AND year = $2",
        )
        .bind(p)
        .bind(year_of(now_ms))
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?,
        None => 0,
    };
    let rows = sqlx::query(
        "SELECT p.name, l.packs, p.price_minor, p.vat_class, p.covered FROM order_lines l JOIN products p ON p.gtin = l.gtin \
         WHERE l.order_id = $1 ORDER BY l.id",
    )
    .bind(order)
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for r in &rows {
        let class: String = r.try_get("vat_class")?;
        lines.push(maths::LineIn {
            label: r.try_get("name")?,
            packs: r.try_get("packs")?,
            unit_price: r.try_get("price_minor")?,
            fee: s.fee,
            vat_bp: s.vat.rate_bp(&class).ok_or_else(|| {
                BillingError::Invalid(format!("unknown VAT class {class:?} in the catalog"))
            })?,
            covered: r.try_get::<i64, _>("covered")? != 0,
        });
    }
    let rule = plan.as_ref().map_or(Plan::NotCovered, |p| p.plan.clone());
    let priced = maths::price(&lines, &rule, year_paid)?;
    Ok(Quote {
        priced,
        plan,
        patient_id,
        patient_name,
        year_paid,
    })
}

/// Price an order as it stands.
pub async fn quote(db: &Db, s: Settings, order: &str, now_ms: i64) -> Result<Quote, BillingError> {
    let mut conn = db.pool.acquire().await?;
    quote_in(&mut conn, s, order, now_ms).await
}

/// A final invoice or credit note.
#[derive(Debug, Clone, Serialize)]
pub struct Invoice {
    /// Id.
    pub id: String,
    /// Printed number, `STORE-YYYY-NNNNNN`.
    pub number: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// The order.
    pub order_id: String,
    /// For a credit note: the invoice it cancels.
    pub credits: Option<String>,
    /// Patient record.
    pub patient_id: Option<String>,
    /// Patient as billed.
    pub patient_name: String,
    /// Insurer billed.
    pub insurer: String,
    /// Total, VAT included.
    pub total: Minor,
    /// VAT contained.
    pub vat: Minor,
    /// The patient's share.
    pub patient_share: Minor,
    /// The insurer's share.
    pub insurer_share: Minor,
    /// Why (credit notes).
    pub reason: String,
    /// Finalised (ms).
    pub finalised_ms: i64,
    /// By whom.
    pub actor: String,
}

fn invoice_of(r: &sqlx::any::AnyRow) -> Result<Invoice, sqlx::Error> {
    Ok(Invoice {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        kind: r.try_get("kind")?,
        order_id: r.try_get("order_id")?,
        credits: r.try_get("credits")?,
        patient_id: r.try_get("patient_id")?,
        patient_name: r.try_get("patient_name")?,
        insurer: r.try_get("insurer")?,
        total: r.try_get("total")?,
        vat: r.try_get("vat")?,
        patient_share: r.try_get("patient_share")?,
        insurer_share: r.try_get("insurer_share")?,
        reason: r.try_get("reason")?,
        finalised_ms: r.try_get("finalised_ms")?,
        actor: r.try_get("actor")?,
    })
}

/// Take the next number of the store's year, in the caller's transaction.
async fn next_seq(
    conn: &mut sqlx::AnyConnection,
    store: &str,
    year: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoice_seq (store, year, last) VALUES ($1, $2, 1) \
         ON CONFLICT (store, year) DO UPDATE SET last = invoice_seq.last + 1 RETURNING last",
    )
    .bind(store)
    .bind(year)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

#[allow(clippy::too_many_arguments)]
async fn insert_invoice(
    conn: &mut sqlx::AnyConnection,
    store: &str,
    now_ms: i64,
    kind: &str,
    order: &str,
    credits: Option<&str>,
    q: &Quote,
    toward_cap: Minor,
    reason: &str,
    actor: &str,
) -> Result<String, sqlx::Error> {
    let year = year_of(now_ms);
    let seq = next_seq(conn, store, year).await?;
    let number = maths::invoice_number(store, year, u64::try_from(seq).unwrap_or(0));
    let id = uuid::Uuid::now_v7().simple().to_string();
    let plan =
        serde_json::to_string(&q.plan.as_ref().map(|p| &p.plan)).unwrap_or_else(|_| "null".into());
    sqlx::query(
        "INSERT INTO invoices (id, number, store, year, seq, kind, order_id, credits, patient_id, patient_name, insurer, plan, \
         total, vat, patient_share, insurer_share, toward_cap, reason, finalised_ms, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .bind(&id)
    .bind(&number)
    .bind(store)
    .bind(year)
    .bind(seq)
    .bind(kind)
    .bind(order)
    .bind(credits)
    .bind(q.patient_id.as_deref())
    .bind(&q.patient_name)
    .bind(q.plan.as_ref().map_or("", |p| p.insurer.as_str()))
    .bind(plan)
    .bind(q.priced.total)
    .bind(q.priced.vat)
    .bind(q.priced.patient)
    .bind(q.priced.insurer)
    .bind(toward_cap)
    .bind(reason)
    .bind(now_ms)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    for (n, l) in q.priced.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_id, n, label, packs, total, vat, vat_bp, patient, insurer, covered) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .bind(&l.label)
        .bind(l.packs)
        .bind(l.total)
        .bind(l.vat)
        .bind(i64::from(l.vat_bp))
        .bind(l.patient)
        .bind(l.insurer)
        .bind(i64::from(l.covered))
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// The order's invoice, if finalised.
pub async fn invoice_of_order(db: &Db, order: &str) -> Result<Option<Invoice>, sqlx::Error> {
    sqlx::query("SELECT * FROM invoices WHERE order_id = $1 AND kind = 'invoice'")
        .bind(order)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(invoice_of)
        .transpose()
}

/// One invoice.
pub async fn get(db: &Db, id: &str) -> Result<Option<Invoice>, sqlx::Error> {
    sqlx::query("SELECT * FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(invoice_of)
        .transpose()
}

/// Finalise the order's invoice: price it, take the next number, store it.
/// Finalising twice returns the first invoice.
pub async fn finalise(
    db: &Db,
    s: Settings,
    store: &str,
    order: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Invoice, BillingError> {
    let mut tx = db.begin_write().await?;
    let lock = db.for_update();
    let state: String = sqlx::query(&format!("SELECT state FROM orders WHERE id = $1{lock}"))
        .bind(order)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no order {order}")))?
        .try_get(0)?;
    if !matches!(
        state.as_str(),
        "approved" | "filling" | "ready" | "picked_up"
    ) {
        return Err(BillingError::Invalid(format!(
            "an order that is {} is not invoiced; it must be approved first",
            state.replace('_', " ")
        )));
    }
    if let Some(r) = sqlx::query("SELECT * FROM invoices WHERE order_id = $1 AND kind = 'invoice'")
        .bind(order)
        .fetch_optional(&mut *tx)
        .await?
    {
        return Ok(invoice_of(&r)?);
    }
    let q = quote_in(&mut tx, s, order, now_ms).await?;
    if let Some(p) = &q.patient_id {
        // Serialise one patient's invoices so the coinsurance cap read above holds.
        sqlx::query(&format!("SELECT id FROM patients WHERE id = $1{lock}"))
            .bind(p)
            .fetch_optional(&mut *tx)
            .await?;
    }
    if q.priced.lines.is_empty() {
        return Err(BillingError::Invalid(
            "the order has no lines to invoice".into(),
        ));
    }
    let toward = q.priced.year_paid_after - q.year_paid;
    let id = insert_invoice(
        &mut tx, store, now_ms, "invoice", order, None, &q, toward, "", actor,
    )
    .await?;
    tx.commit().await?;
    get(db, &id)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no invoice {id}")))
}

/// The invoice's priced lines, as stored.
pub async fn lines(db: &Db, invoice: &str) -> Result<Vec<maths::Line>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM invoice_lines WHERE invoice_id = $1 ORDER BY n")
        .bind(invoice)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(line_of).collect()
}

fn line_of(r: &sqlx::any::AnyRow) -> Result<maths::Line, sqlx::Error> {
    Ok(maths::Line {
        label: r.try_get("label")?,
        packs: r.try_get("packs")?,
        total: r.try_get("total")?,
        vat: r.try_get("vat")?,
        vat_bp: u32::try_from(r.try_get::<i64, _>("vat_bp")?).unwrap_or(0),
        patient: r.try_get("patient")?,
        insurer: r.try_get("insurer")?,
        covered: r.try_get::<i64, _>("covered")? != 0,
    })
}

/// Cancel an invoice with a credit note (its own number, amounts negated).
pub async fn credit(
    db: &Db,
    store: &str,
    invoice: &str,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Invoice, BillingError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(BillingError::Invalid(
            "a credit note needs a reason (up to 500 characters)".into(),
        ));
    }
    let orig = get(db, invoice)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no invoice {invoice}")))?;
    if orig.kind != "invoice" {
        return Err(BillingError::Invalid(
            "a credit note cannot itself be credited".into(),
        ));
    }
    let priced = Priced {
        lines: lines(db, invoice).await?,
        total: orig.total,
        vat: orig.vat,
        patient: orig.patient_share,
        insurer: orig.insurer_share,
        year_paid_after: 0,
    };
    let q = Quote {
        priced: maths::credit_note(&priced),
        plan: None,
        patient_id: orig.patient_id.clone(),
        patient_name: orig.patient_name.clone(),
        year_paid: 0,
    };
    let toward: Minor = sqlx::query("SELECT toward_cap FROM invoices WHERE id = $1")
        .bind(invoice)
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
    let mut tx = db.begin_write().await?;
    let done = sqlx::query("SELECT id FROM invoices WHERE credits = $1")
        .bind(invoice)
        .fetch_optional(&mut *tx)
        .await?;
    if done.is_some() {
        return Err(BillingError::Invalid(format!(
            "invoice {} is already credited",
            orig.number
        )));
    }
    let id = insert_invoice(
        &mut tx,
        store,
        now_ms,
        "credit_note",
        &orig.order_id,
        Some(invoice),
        &q,
        -toward,
        reason,
        actor,
    )
    .await?;
    // The credit note bills the same insurer as the invoice it cancels.
    sqlx::query("UPDATE invoices SET insurer = $1, plan = (SELECT plan FROM invoices WHERE id = $2) WHERE id = $3")
        .bind(&orig.insurer)
        .bind(invoice)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    get(db, &id)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no invoice {id}")))
}

/// A payment as stored.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRow {
    /// `cash`, `card`, `insurer`.
    pub method: String,
    /// Amount (negative: a refund).
    pub amount: Minor,
    /// When.
    pub at_ms: i64,
    /// By whom.
    pub actor: String,
}

/// An invoice's payments.
pub async fn payments(db: &Db, invoice: &str) -> Result<Vec<PaymentRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT method, amount, at_ms, actor FROM payments WHERE invoice_id = $1 ORDER BY id",
    )
    .bind(invoice)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PaymentRow {
                method: r.try_get(0)?,
                amount: r.try_get(1)?,
                at_ms: r.try_get(2)?,
                actor: r.try_get(3)?,
            })
        })
        .collect()
}

/// What is still owed on an invoice: (patient, insurer). A credited
/// invoice owes nothing; what was paid on it is refunded on the credit note.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Outstanding {
    /// The patient still owes (negative: refund due).
    pub patient: Minor,
    /// The insurer still owes (negative: refund due).
    pub insurer: Minor,
}

/// Work out what is owed on an invoice.
pub async fn outstanding(db: &Db, inv: &Invoice) -> Result<Outstanding, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    outstanding_in(&mut conn, inv).await
}

/// What was paid on an invoice by the insurer, or by the patient (cash, card).
async fn paid(conn: &mut sqlx::AnyConnection, insurer: bool, id: &str) -> Result<i64, sqlx::Error> {
    let sql = if insurer {
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments WHERE invoice_id = $1 AND method = 'insurer'"
    } else {
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments WHERE invoice_id = $1 AND method <> 'insurer'"
    };
    sqlx::query(sql)
        .bind(id)
        .fetch_one(conn)
        .await?
        .try_get::<i64, _>(0)
}

/// [`outstanding`] in the caller's connection or transaction.
async fn outstanding_in(
    conn: &mut sqlx::AnyConnection,
    inv: &Invoice,
) -> Result<Outstanding, sqlx::Error> {
    let credited = inv.kind == "invoice"
        && sqlx::query("SELECT 1 FROM invoices WHERE credits = $1")
            .bind(&inv.id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
    let (pp, ip) = (
        paid(conn, false, &inv.id).await?,
        paid(conn, true, &inv.id).await?,
    );
    if credited {
        return Ok(Outstanding {
            patient: 0,
            insurer: 0,
        });
    }
    if inv.kind == "credit_note" {
        // A credit note owes back what was paid on the invoice it cancels.
        let orig = inv.credits.clone().unwrap_or_default();
        let (op, oi) = (
            paid(conn, false, &orig).await?,
            paid(conn, true, &orig).await?,
        );
        return Ok(Outstanding {
            patient: -(op + pp),
            insurer: -(oi + ip),
        });
    }
    Ok(Outstanding {
        patient: inv.patient_share - pp,
        insurer: inv.insurer_share - ip,
    })
}

/// Record a payment (or, on a credit note, a refund as a negative amount).
pub async fn pay(
    db: &Db,
    invoice: &str,
    method: &str,
    amount: Minor,
    actor: &str,
    now_ms: i64,
) -> Result<Outstanding, BillingError> {
    if !matches!(method, "cash" | "card" | "insurer") {
        return Err(BillingError::Invalid(format!(
            "payment method {method:?} is not one of cash, card, insurer"
        )));
    }
    if amount == 0 {
        return Err(BillingError::Invalid(
            "a payment of 0.00 records nothing".into(),
        ));
    }
    let mut tx = db.begin_write().await?;
    let lock = db.for_update();
    let inv = sqlx::query(&format!("SELECT * FROM invoices WHERE id = $1{lock}"))
        .bind(invoice)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(invoice_of)
        .transpose()?
        .ok_or_else(|| BillingError::NotFound(format!("no invoice {invoice}")))?;
    // The write transaction (SQLite) or the invoice's row lock (PostgreSQL)
    // stays held until the payment is written: two payments at once cannot
    // both fit what was owed. Read in the same transaction: a second pool
    // connection held beside it could starve a small pool.
    let owed = outstanding_in(&mut tx, &inv).await?;
    let due = if method == "insurer" {
        owed.insurer
    } else {
        owed.patient
    };
    let ok = if due >= 0 {
        amount > 0 && amount <= due
    } else {
        amount < 0 && amount >= due
    };
    if !ok {
        return Err(BillingError::Invalid(format!(
            "{} {} does not fit: {} is {} on invoice {}",
            method,
            maths::fmt(amount),
            if method == "insurer" {
                "the insurer's share"
            } else {
                "the patient's share"
            },
            if due >= 0 {
                format!("{} still owed", maths::fmt(due))
            } else {
                format!("{} to refund", maths::fmt(-due))
            },
            inv.number
        )));
    }
    sqlx::query("INSERT INTO payments (invoice_id, method, amount, at_ms, actor) VALUES ($1, $2, $3, $4, $5)")
        .bind(invoice)
        .bind(method)
        .bind(amount)
        .bind(now_ms)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(outstanding(db, &inv).await?)
}

/// A day's Z report: totals by payment method, VAT rate and insurer.
#[derive(Debug, Clone, Serialize)]
pub struct Z {
    /// The store's day, `YYYY-MM-DD`.
    pub day: String,
    /// Totals.
    pub report: ZReport,
    /// Insurer's shares invoiced per insurer (credit notes negative).
    pub by_insurer: BTreeMap<String, Minor>,
    /// Patients' shares invoiced.
    pub patient_total: Minor,
    /// Invoices and credit notes of the day: (number, kind, total).
    pub documents: Vec<(String, String, Minor)>,
}

/// Build the Z report of one of the store's days (local time, see [`crate::days`]).
pub async fn z(db: &Db, day: chrono::NaiveDate) -> Result<Z, sqlx::Error> {
    let (start, end) = crate::days::bounds(day);
    let invs = sqlx::query(
        "SELECT * FROM invoices WHERE finalised_ms >= $1 AND finalised_ms < $2 ORDER BY year, seq",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&db.pool)
    .await?;
    // Every line of the day's documents in one query, not one per invoice.
    let all_lines = sqlx::query(
        "SELECT l.* FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
         WHERE i.finalised_ms >= $1 AND i.finalised_ms < $2 ORDER BY i.year, i.seq, l.n",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(line_of)
    .collect::<Result<Vec<_>, _>>()?;
    let mut by_insurer: BTreeMap<String, Minor> = BTreeMap::new();
    let mut documents = Vec::new();
    let mut patient_total = 0;
    for r in &invs {
        let inv = invoice_of(r)?;
        if inv.insurer_share != 0 {
            *by_insurer.entry(inv.insurer.clone()).or_default() += inv.insurer_share;
        }
        patient_total += inv.patient_share;
        documents.push((inv.number, inv.kind, inv.total));
    }
    let pays = sqlx::query("SELECT method, amount FROM payments WHERE at_ms >= $1 AND at_ms < $2")
        .bind(start)
        .bind(end)
        .fetch_all(&db.pool)
        .await?;
    let payments: Vec<maths::Payment> = pays
        .iter()
        .map(|r| {
            Ok(maths::Payment {
                method: r.try_get(0)?,
                amount: r.try_get(1)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Z {
        day: day.format("%Y-%m-%d").to_string(),
        report: maths::z_report(&all_lines, &payments),
        by_insurer,
        patient_total,
        documents,
    })
}

/// The Z report as CSV: one `section,key,amount` row per figure.
pub fn z_csv(z: &Z) -> String {
    let mut out = String::from("day,section,key,amount\n");
    let mut row = |section: &str, key: &str, amount: Minor| {
        let key = key.replace(['"', ',', '\n', '\r'], " ");
        out.push_str(&format!(
            "{},{section},{key},{}\n",
            z.day,
            maths::fmt(amount)
        ));
    };
    for (m, a) in &z.report.by_method {
        row("payments", m, *a);
    }
    row("payments", "total", z.report.payments_total);
    for (rate, a) in &z.report.sales_by_rate {
        row(
            "sales_by_vat_rate",
            &format!("{}.{:02} %", rate / 100, rate % 100),
            *a,
        );
    }
    for (rate, a) in &z.report.vat_by_rate {
        row(
            "vat_by_rate",
            &format!("{}.{:02} %", rate / 100, rate % 100),
            *a,
        );
    }
    for (ins, a) in &z.by_insurer {
        row("insurer", ins, *a);
    }
    row("invoiced", "patients", z.patient_total);
    row("invoiced", "total", z.report.invoiced_total);
    out
}
