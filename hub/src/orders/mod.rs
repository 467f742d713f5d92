//! Orders: every prescription that arrives becomes an order, and moves only
//! through [`rxedge_shared::orders::step`], with each step in its audit trail.
//!
//! Orders are made from committed events (a QR prescription or a paper
//! photo) by [`sync_from_events`], which keeps a watermark in the same
//! transaction as the orders it creates: a hub crash between an event's commit
//! and its order only delays the order, never loses it.
//!
//! Approval reserves every line first-expiry-first-out and issues a signed
//! pickup ticket; pick-up hands the reserved packs over (the ledger records
//! the order and patient); cancel, reject after approval and return-to-stock
//! give the reservations back.

pub mod checks;
pub mod handover;
pub mod review_stock;
pub mod web;

use crate::inventory::{self, At, InvError, MoveCtx};
use crate::store::Db;
use rxedge_shared::orders::{self as machine, Action, OrderState, OrderView, Policy, Refused};
use rxedge_shared::payload::{self, Payload};
use rxedge_shared::protocol::{Body, Envelope};
use rxedge_shared::sign::SigningKey;
use serde::Serialize;
use sqlx::Row as _;

/// Order errors.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// No such order.
    #[error("no order {0}")]
    NotFound(String),
    /// The state machine refuses.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Stock could not be reserved or handed over.
    #[error(transparent)]
    Stock(#[from] InvError),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Someone else changed the order first.
    #[error("the order changed while this was being done; reload and try again")]
    Changed,
    /// Database.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// An order as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// Id (the kiosk event id for kiosk orders).
    pub id: String,
    /// Short reference the patient was shown.
    pub reference: String,
    /// Kiosk it came from.
    pub source_kiosk: Option<String>,
    /// `chmed16a`, `chmed23a`, `paper`, `unknown`, `desk`.
    pub kind: String,
    /// The scanned text, or the paper image's sha256.
    pub payload: String,
    /// Patient (from the prescription or entered), as shown in the queue.
    pub patient: String,
    /// The patient record it is filed under.
    pub patient_id: Option<String>,
    /// State.
    pub state: String,
    /// Who holds it for review.
    pub reviewer: Option<String>,
    /// When it became ready.
    pub ready_since_ms: Option<i64>,
    /// Pickup ticket text, once approved.
    pub ticket: Option<String>,
    /// Created (ms).
    pub created_ms: i64,
    /// Last change (ms).
    pub updated_ms: i64,
}

impl Order {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            reference: r.try_get("reference")?,
            source_kiosk: r.try_get("source_kiosk")?,
            kind: r.try_get("kind")?,
            payload: r.try_get("payload")?,
            patient: r.try_get("patient")?,
            patient_id: r.try_get("patient_id")?,
            state: r.try_get("state")?,
            reviewer: r.try_get("reviewer")?,
            ready_since_ms: r.try_get("ready_since_ms")?,
            ticket: r.try_get("ticket")?,
            created_ms: r.try_get("created_ms")?,
            updated_ms: r.try_get("updated_ms")?,
        })
    }

    fn view(&self) -> OrderView {
        OrderView {
            state: OrderState::parse(&self.state).unwrap_or(OrderState::Received),
            reviewer: self.reviewer.clone(),
            ready_since_ms: self.ready_since_ms,
        }
    }
}

/// What an incoming event becomes, if anything: kind, payload, the
/// patient as shown in the queue, and the patient to file it under.
fn order_from(env: &Envelope) -> Option<(String, String, String, Option<crate::patients::Named>)> {
    match &env.body {
        Body::QrScanned(q) => {
            let parsed = payload::parse(&q.text);
            let named = parsed.plan().and_then(|plan| {
                let p = plan.patient?;
                Some(crate::patients::Named {
                    name: format!("{} {}", p.first_name.trim(), p.last_name.trim()),
                    birth_date: p.birth_date.trim().chars().take(10).collect(),
                    allergies: rxedge_shared::clinical::chmed_allergies(p.medical.as_ref()),
                    language: p.language.clone().unwrap_or_default(),
                    insurance: plan
                        .insurance_card
                        .map(|c| format!("card {c}"))
                        .unwrap_or_default(),
                })
            });
            let label = named
                .as_ref()
                .map(|n| format!("{} ({})", n.name, n.birth_date))
                .unwrap_or_default();
            match parsed {
                Payload::Chmed16a(_) | Payload::Chmed23a(_) | Payload::Unknown { .. } => {
                    Some((parsed.kind().to_owned(), q.text.clone(), label, named))
                }
                // Packs and tickets are questions, not prescriptions.
                _ => None,
            }
        }
        Body::PaperCaptured(p) => Some(("paper".into(), p.sha256.clone(), String::new(), None)),
        _ => None,
    }
}

/// The reference a kiosk shows for an event: the last six hex digits of its id.
pub fn reference_of(id: &str) -> String {
    let s: String = id.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    s[s.len().saturating_sub(6)..].to_uppercase()
}

/// Make orders for committed prescription events past the watermark.
/// Returns how many orders were created.
pub async fn sync_from_events(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    let mut made = 0;
    loop {
        let mut tx = db.begin_write().await?;
        let last: i64 = sqlx::query("SELECT last_commit_id FROM orders_sync WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let rows = sqlx::query(
            "SELECT commit_id, kiosk_id, envelope FROM events WHERE commit_id > $1 \
             AND kind IN ('qr_scanned', 'paper_captured') ORDER BY commit_id LIMIT 200",
        )
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
        let Some(top) = rows
            .last()
            .map(|r| r.try_get::<i64, _>("commit_id"))
            .transpose()?
        else {
            return Ok(made);
        };
        for r in &rows {
            let text: String = r.try_get("envelope")?;
            let Ok(env) = serde_json::from_str::<Envelope>(&text) else {
                continue;
            };
            let Some((kind, payload, patient, who)) = order_from(&env) else {
                continue;
            };
            let id = env.id.simple().to_string();
            let patient_id = match &who {
                Some(named) if !named.name.trim().is_empty() => Some(
                    crate::patients::find_or_create(&mut tx, named, now_ms, "eMediplan").await?,
                ),
                _ => None,
            };
            let inserted = sqlx::query(
                "INSERT INTO orders (id, reference, source_kiosk, source_event, kind, payload, patient, state, created_ms, updated_ms, patient_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'received', $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id)
            .bind(reference_of(&id))
            .bind(r.try_get::<String, _>("kiosk_id")?)
            .bind(env.id.to_string())
            .bind(&kind)
            .bind(&payload)
            .bind(&patient)
            .bind(env.created_ms)
            .bind(now_ms)
            .bind(&patient_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // A paper page is read by OCR: its job commits with its order.
            if inserted == 1 && kind == "paper" {
                crate::ocr::jobs::enqueue(&mut tx, Some(&id), &payload, "", "kiosk", now_ms)
                    .await?;
            }
            made += inserted;
        }
        sqlx::query("UPDATE orders_sync SET last_commit_id = $1 WHERE id = 1")
            .bind(top)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
}

/// Keep orders in step with ingest: on each committed prescription event,
/// and every few seconds as a safety net.
pub async fn sync_task(
    db: Db,
    feed: tokio::sync::broadcast::Sender<crate::web::FeedItem>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut rx = feed.subscribe();
    loop {
        match sync_from_events(&db, rxedge_shared::clock::system_now_ms()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(orders = n, "new orders from kiosk events");
                let _ = feed.send(crate::web::FeedItem::Order);
            }
            Err(e) => tracing::error!(error = %e, "order sync failed"),
        }
        // Wait for a prescription event (or the safety-net tick); fridge
        // readings and other feed items do not wake the sync.
        let wake = async {
            loop {
                match rx.recv().await {
                    Ok(crate::web::FeedItem::Event {
                        kind: "qr_scanned" | "paper_captured",
                        ..
                    }) => return true,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        tokio::select! {
            open = wake => if !open { break },
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// One order.
pub async fn get(db: &Db, id: &str) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query("SELECT * FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(Order::from_row)
        .transpose()
}

/// Orders for the queue: open ones first, oldest first; or one state.
pub async fn list(db: &Db, state: Option<&str>, limit: i64) -> Result<Vec<Order>, sqlx::Error> {
    let rows = match state {
        Some(s) => {
            sqlx::query("SELECT * FROM orders WHERE state = $1 ORDER BY created_ms LIMIT $2")
                .bind(s)
                .bind(limit)
                .fetch_all(&db.pool)
                .await?
        }
        None => {
            sqlx::query(
                "SELECT * FROM orders ORDER BY CASE state WHEN 'received' THEN 0 WHEN 'in_review' THEN 1 \
                 WHEN 'approved' THEN 2 WHEN 'filling' THEN 3 WHEN 'ready' THEN 4 ELSE 5 END, created_ms LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&db.pool)
            .await?
        }
    };
    rows.iter().map(Order::from_row).collect()
}

/// The states a pharmacist still works on.
pub const OPEN_STATES: [&str; 5] = ["received", "in_review", "approved", "filling", "ready"];

/// The working queue: open orders by urgency (waiting for review first,
/// then ready to hand over, then the rest), oldest first within each.
/// Closed orders are listed only when asked for by state, newest first.
pub async fn queue(db: &Db, f: &QueueFilter, limit: i64) -> Result<Vec<Order>, sqlx::Error> {
    let mut binds: Vec<String> = Vec::new();
    let mut mark = |v: String| {
        binds.push(v);
        format!("${}", binds.len())
    };
    let (mut sql, order_by) = match f.state.as_deref() {
        Some(s) if !OPEN_STATES.contains(&s) => (
            format!("SELECT * FROM orders WHERE state = {}", mark(s.to_owned())),
            "created_ms DESC",
        ),
        Some(s) => (
            format!("SELECT * FROM orders WHERE state = {}", mark(s.to_owned())),
            "created_ms",
        ),
        // The IN list uses the (state, created_ms) index, so only open
        // orders are sorted, however long the history.
        None => (
            "SELECT * FROM orders WHERE state IN ('received', 'in_review', 'approved', 'filling', 'ready')".to_owned(),
            "CASE state WHEN 'received' THEN 0 WHEN 'in_review' THEN 1 WHEN 'ready' THEN 2 \
             WHEN 'approved' THEN 3 ELSE 4 END, created_ms",
        ),
    };
    if let Some(k) = &f.kind {
        sql += &format!(" AND kind = {}", mark(k.clone()));
    }
    match f.source.as_deref() {
        Some(DESK) => sql += " AND source_kiosk IS NULL",
        Some(k) => sql += &format!(" AND source_kiosk = {}", mark(k.to_owned())),
        None => {}
    }
    match &f.holder {
        Holder::Anyone => {}
        Holder::Nobody => sql += " AND reviewer IS NULL",
        Holder::User(u) => sql += &format!(" AND reviewer = {}", mark(u.clone())),
    }
    if let Some(t) = &f.text {
        let pattern = crate::store::contains_pattern(&t.to_lowercase());
        let (a, b) = (mark(pattern.clone()), mark(pattern));
        sql += &format!(
            " AND (LOWER(patient) LIKE {a} ESCAPE '\\' OR LOWER(reference) LIKE {b} ESCAPE '\\')"
        );
    }
    let limit_mark = format!("${}", binds.len() + 1);
    sql += &format!(" ORDER BY {order_by} LIMIT {limit_mark}");
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let rows = q.bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(Order::from_row).collect()
}

/// The source filter's word for orders started at the desk (no kiosk).
pub const DESK: &str = "desk";

/// Whose held orders the queue shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Holder {
    /// Held or not.
    #[default]
    Anyone,
    /// Only orders no pharmacist holds for review.
    Nobody,
    /// Only orders this pharmacist holds.
    User(String),
}

/// What the queue screen narrows to. Empty fields filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct QueueFilter {
    /// One state; none means every open order, most urgent first.
    pub state: Option<String>,
    /// Prescription kind (`paper`, `chmed16a`, ...).
    pub kind: Option<String>,
    /// Kiosk id, or [`DESK`].
    pub source: Option<String>,
    /// Who holds it for review.
    pub holder: Holder,
    /// Part of the patient's name or of the reference, any case.
    pub text: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Row id.
    pub id: i64,
    /// Product.
    pub gtin: String,
    /// Product name.
    pub name: String,
    /// Packs.
    pub packs: i64,
    /// Controlled substance.
    pub controlled: bool,
    /// Dosage instructions (`1-0-1-0`, `2x daily 1`), read by the dose check.
    pub sig: String,
}

/// An order's lines.
pub async fn lines(db: &Db, id: &str) -> Result<Vec<Line>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT l.id, l.gtin, l.packs, l.sig, p.name, p.controlled FROM order_lines l JOIN products p ON p.gtin = l.gtin \
         WHERE l.order_id = $1 ORDER BY l.id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Line {
                id: r.try_get("id")?,
                gtin: r.try_get("gtin")?,
                name: r.try_get("name")?,
                packs: r.try_get("packs")?,
                controlled: r.try_get::<i64, _>("controlled")? != 0,
                sig: r.try_get("sig")?,
            })
        })
        .collect()
}

/// Add a line while the order is being reviewed, by the reviewer.
pub async fn add_line(
    db: &Db,
    id: &str,
    gtin: &str,
    packs: i64,
    sig: &str,
    actor: &str,
) -> Result<Line, OrderError> {
    let o = get(db, id)
        .await?
        .ok_or_else(|| OrderError::NotFound(id.into()))?;
    if o.state != "in_review" || o.reviewer.as_deref() != Some(actor.trim()) {
        return Err(OrderError::Invalid(
            "lines are added by the pharmacist reviewing the order; start the review first".into(),
        ));
    }
    if packs <= 0 {
        return Err(OrderError::Invalid(
            "the number of packs must be positive".into(),
        ));
    }
    let sig = sig.trim();
    if sig.chars().count() > 200 {
        return Err(OrderError::Invalid(
            "dosage instructions are limited to 200 characters".into(),
        ));
    }
    let p = crate::catalog::get(db, gtin)
        .await?
        .ok_or_else(|| OrderError::Invalid(format!("GTIN {gtin} is not in the catalog")))?;
    let r = sqlx::query(
        "INSERT INTO order_lines (order_id, gtin, packs, sig) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(id)
    .bind(&p.gtin)
    .bind(packs)
    .bind(sig)
    .fetch_one(&db.pool)
    .await?;
    Ok(Line {
        id: r.try_get(0)?,
        gtin: p.gtin,
        name: p.name,
        packs,
        controlled: p.controlled,
        sig: sig.to_owned(),
    })
}

async fn reservations_of(db: &Db, id: &str) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id FROM reservations WHERE order_ref = $1 AND state = 'active' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

async fn release_all(db: &Db, id: &str, ctx: &MoveCtx, at: At) -> Result<(), OrderError> {
    for r in reservations_of(db, id).await? {
        inventory::close_reservation(db, r, false, ctx, at).await?;
    }
    Ok(())
}

/// Release reservations this request made, when it cannot finish. One that
/// is already closed (a concurrent cancel released it) is fine; any other
/// failure is logged, and `/api/inventory/ledger-check` stays the judge.
async fn give_back(db: &Db, ids: &[i64], ctx: &MoveCtx, at: At) {
    for &r in ids {
        if let Err(e) = inventory::close_reservation(db, r, false, ctx, at).await {
            tracing::warn!(reservation = r, error = %e, "could not give back a reservation");
        }
    }
}

/// Settings for [`act`].
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// State machine policy.
    pub policy: Policy,
    /// FEFO minimum remaining shelf life.
    pub min_shelf_life_days: u32,
    /// Pickup tickets stay valid this many days.
    pub ticket_days: u32,
    /// Every reserved pack must be scanned at the desk before hand-over.
    pub verify_packs: bool,
}

/// What [`act`] works with.
#[derive(Clone, Copy)]
pub struct Desk<'a> {
    /// Store.
    pub db: &'a Db,
    /// Hub key (signs pickup tickets).
    pub key: &'a SigningKey,
    /// Store id (in tickets).
    pub store: &'a str,
    /// Policy.
    pub settings: Settings,
    /// Drug–drug interactions for the clinical checks.
    pub interactions: &'a rxedge_shared::clinical::InteractionTable,
}

/// Read the interaction table: the file named in config, or the one shipped
/// with the hub. A bad line stops the start with its line number.
pub fn load_interactions(
    path: &std::path::Path,
) -> Result<rxedge_shared::clinical::InteractionTable, crate::HubError> {
    let (name, text) = if path.as_os_str().is_empty() {
        (
            "the shipped table".to_owned(),
            SHIPPED_INTERACTIONS.to_owned(),
        )
    } else {
        (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                crate::HubError::State(format!("orders.interactions_file {}: {e}", path.display()))
            })?,
        )
    };
    rxedge_shared::clinical::InteractionTable::parse(&text)
        .map_err(|e| crate::HubError::State(format!("orders.interactions_file ({name}): {e}")))
}

/// The interaction table shipped with the hub (sources in its header).
pub const SHIPPED_INTERACTIONS: &str = include_str!("../../data/interactions.tsv");

/// Do one step on an order: ask the machine, carry out its stock side
/// effects, then store the new state and the audit line together.
pub async fn act(
    desk: Desk<'_>,
    id: &str,
    action: &Action,
    actor: &str,
    at: At,
) -> Result<Order, OrderError> {
    let (db, settings) = (desk.db, desk.settings);
    let o = get(db, id)
        .await?
        .ok_or_else(|| OrderError::NotFound(id.into()))?;
    let mut action = action.clone();
    let ls = lines(db, id).await?;
    let mut overridden = Vec::new();
    if let Action::Approve { gates } = &mut action {
        // The catalog, not the client, says whether a controlled substance is in the order.
        gates.controlled = ls.iter().any(|l| l.controlled);
        // Severe warnings come from the server's clinical checks, run now on
        // what is stored, never from the client.
        let c = checks::run(db, desk.interactions, &o, at.now_ms).await?;
        gates.severe_warnings = c.severe;
        overridden = c
            .findings
            .iter()
            .filter(|f| f.severity == rxedge_shared::clinical::Severity::Severe)
            .map(|f| f.title.clone())
            .collect();
    }
    let mut t = machine::step(&o.view(), &action, actor, at.now_ms, settings.policy)?;
    if !overridden.is_empty() {
        // The trail keeps what was approved over, beside the reason given.
        t.reason = format!("{} [approved over: {}]", t.reason, overridden.join("; "));
    }
    if t.to == OrderState::Approved && ls.is_empty() {
        return Err(OrderError::Invalid(
            "add at least one line before approving".into(),
        ));
    }
    // Claim the order before touching stock: of two requests on the same
    // order, the second stops here, before it can hold stock that would push
    // the first one's FEFO picks onto later lots.
    let claimed = sqlx::query(
        "UPDATE orders SET busy_until_ms = $1 WHERE id = $2 AND state = $3 \
         AND (busy_until_ms IS NULL OR busy_until_ms < $4)",
    )
    .bind(at.now_ms + CLAIM_MS)
    .bind(id)
    .bind(&o.state)
    .bind(at.now_ms)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if claimed != 1 {
        return Err(OrderError::Changed);
    }
    let done = carry_out(desk, &o, &ls, &t, at).await;
    if done.is_err() {
        // The state did not change, so the claim is still ours to lift.
        if let Err(e) =
            sqlx::query("UPDATE orders SET busy_until_ms = NULL WHERE id = $1 AND state = $2")
                .bind(id)
                .bind(&o.state)
                .execute(&db.pool)
                .await
        {
            tracing::warn!(order = id, error = %e, "could not lift an order claim; it lapses by itself");
        }
    }
    done?;
    get(db, id)
        .await?
        .ok_or_else(|| OrderError::NotFound(id.into()))
}

/// How long a request may hold an order before its claim lapses (a request
/// that crashed mid-way must not lock the order for good).
const CLAIM_MS: i64 = 60_000;

/// The claimed part of [`act`]: stock side effects, then the new state and
/// its audit line in one transaction.
async fn carry_out(
    desk: Desk<'_>,
    o: &Order,
    ls: &[Line],
    t: &machine::Transition,
    at: At,
) -> Result<(), OrderError> {
    let (db, settings, id) = (desk.db, desk.settings, o.id.as_str());
    let ctx = MoveCtx {
        actor: t.actor.clone(),
        reason: format!("order {}", o.reference),
        order_ref: Some(o.id.clone()),
        patient: Some(o.patient.clone()).filter(|p| !p.is_empty()),
    };
    let mut ticket = o.ticket.clone();
    // Reservations made by this request: only these are given back if it
    // fails, never those of a request that got there first.
    let mut mine: Vec<i64> = Vec::new();
    match t.to {
        OrderState::Approved => {
            // All lines or none: a shortfall gives back what was taken.
            for l in ls {
                match inventory::reserve_fefo(
                    db,
                    &l.gtin,
                    l.packs,
                    settings.min_shelf_life_days,
                    &ctx,
                    at,
                )
                .await
                {
                    Ok(rs) => mine.extend(rs.iter().map(|r| r.id)),
                    Err(e) => {
                        give_back(db, &mine, &ctx, at).await;
                        return Err(e.into());
                    }
                }
            }
            ticket = Some(rxedge_shared::ticket::issue(
                desk.key,
                &rxedge_shared::ticket::Ticket {
                    store: desk.store.to_owned(),
                    order: o.id.clone(),
                    reference: o.reference.clone(),
                    issued_ms: at.now_ms,
                    expires_ms: at.now_ms + i64::from(settings.ticket_days) * 86_400_000,
                },
            ));
        }
        OrderState::PickedUp => {
            if settings.verify_packs {
                let left = handover::missing(db, id).await?;
                if !left.is_empty() {
                    let list: Vec<String> = left
                        .iter()
                        .map(|(p, lot, n)| format!("{n} × {p} lot {lot}"))
                        .collect();
                    return Err(OrderError::Invalid(format!(
                        "scan every pack before handing the order over; still to scan: {}",
                        list.join(", ")
                    )));
                }
            }
            for r in reservations_of(db, id).await? {
                inventory::close_reservation(db, r, true, &ctx, at).await?;
            }
        }
        OrderState::Cancelled | OrderState::Rejected | OrderState::ReturnedToStock => {
            release_all(db, id, &ctx, at).await?;
        }
        _ => {}
    }
    let next = machine::apply(&o.view(), t);
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE orders SET state = $1, reviewer = $2, ready_since_ms = CAST($3 AS BIGINT), ticket = $4, updated_ms = $5, \
         busy_until_ms = NULL WHERE id = $6 AND state = $7",
    )
    .bind(next.state.as_str())
    .bind(next.reviewer.as_deref())
    .bind(next.ready_since_ms.map(|x| x.to_string()))
    .bind(ticket.as_deref())
    .bind(at.now_ms)
    .bind(id)
    .bind(&o.state)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        drop(tx);
        give_back(db, &mine, &ctx, at).await;
        return Err(OrderError::Changed);
    }
    sqlx::query("INSERT INTO order_log (order_id, at_ms, action, from_state, to_state, actor, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id)
        .bind(t.at_ms)
        .bind(&t.action)
        .bind(t.from.as_str())
        .bind(t.to.as_str())
        .bind(&t.actor)
        .bind(&t.reason)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// An order's audit trail: (time, action, from, to, actor, reason).
pub async fn trail(
    db: &Db,
    id: &str,
) -> Result<Vec<(i64, String, String, String, String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT at_ms, action, from_state, to_state, actor, reason FROM order_log WHERE order_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_interaction_table_reads_and_names_its_sources() {
        let t = load_interactions(std::path::Path::new("")).unwrap();
        assert!(t.rows.len() >= 20, "{}", t.rows.len());
        assert!(t.rows.iter().all(|r| !r.source.trim().is_empty()));
        assert!(t
            .rows
            .iter()
            .any(|r| r.severity == rxedge_shared::clinical::Severity::Severe));
        let e = load_interactions(std::path::Path::new("/nonexistent/table.tsv")).unwrap_err();
        assert!(e.to_string().contains("orders.interactions_file"), "{e}");
    }

    async fn order_in_review(db: &Db) {
        sqlx::query(
            "INSERT INTO orders (id, reference, kind, payload, state, reviewer, created_ms, updated_ms) \
             VALUES ('o1', 'R-1', 'chmed', '{}', 'in_review', 'Pia', 0, 0)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
    }

    /// A fresh SQLite store holding order `o1`, in review by Pia.
    async fn store_with_order_in_review() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        order_in_review(&db).await;
        (dir, db)
    }

    fn desk<'a>(
        db: &'a Db,
        key: &'a SigningKey,
        table: &'a rxedge_shared::clinical::InteractionTable,
    ) -> Desk<'a> {
        Desk {
            db,
            key,
            store: "s",
            settings: Settings {
                policy: Policy {
                    return_after_days: 7,
                },
                min_shelf_life_days: 30,
                ticket_days: 14,
                verify_packs: true,
            },
            interactions: table,
        }
    }

    async fn state(db: &Db) -> (String, Option<i64>) {
        let r = sqlx::query("SELECT state, busy_until_ms FROM orders WHERE id = 'o1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        (r.get(0), r.get(1))
    }

    #[tokio::test]
    async fn a_claimed_order_refuses_a_second_request_until_the_claim_lapses() {
        let (_dir, db) = store_with_order_in_review().await;
        let (key, table) = (SigningKey::from_bytes(&[7; 32]), Default::default());
        let desk = desk(&db, &key, &table);
        let now = 1_000_000;
        // Another request holds the order (it is mid-way through reserving).
        sqlx::query("UPDATE orders SET busy_until_ms = $1 WHERE id = 'o1'")
            .bind(now + CLAIM_MS)
            .execute(&db.pool)
            .await
            .unwrap();
        let reject = Action::Reject {
            reason: "wrong patient".into(),
        };
        let e = act(desk, "o1", &reject, "Pia", At::from_ms(now + 1))
            .await
            .unwrap_err();
        assert!(matches!(e, OrderError::Changed), "{e}");
        assert_eq!(state(&db).await.0, "in_review");
        // Past the claim, a crashed holder no longer blocks the order; the
        // step clears the claim with the state change.
        let o = act(desk, "o1", &reject, "Pia", At::from_ms(now + CLAIM_MS + 1))
            .await
            .unwrap();
        assert_eq!(o.state, "rejected");
        assert_eq!(state(&db).await, ("rejected".into(), None));
    }

    #[tokio::test]
    async fn a_refused_step_lifts_its_claim() {
        let (_dir, db) = store_with_order_in_review().await;
        let (key, table) = (SigningKey::from_bytes(&[7; 32]), Default::default());
        let desk = desk(&db, &key, &table);
        // A line for a product with no stock: approval claims, fails to
        // reserve, and must not leave the order locked.
        sqlx::query("INSERT INTO products (gtin, name, ingredients, strength, form, pack_size, storage, price_minor, vat_class, updated_ms) \
             VALUES ('09520000002992', 'Lamotrigine 100 mg tablets', 'lamotrigine', '100 mg', 'tablet', 56, 'room', 3536, 'reduced', 0)")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO order_lines (order_id, gtin, packs) VALUES ('o1', '09520000002992', 1)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let approve = Action::Approve {
            gates: Default::default(),
        };
        let e = act(desk, "o1", &approve, "Pia", At::from_ms(5_000))
            .await
            .unwrap_err();
        assert!(!matches!(e, OrderError::Changed), "{e}");
        assert_eq!(state(&db).await, ("in_review".into(), None));
    }
}
