//! Stock screens and API: dashboard, lots and their ledger, receiving by GS1
//! scan, stocktake, holds, recalls with their trace.
//!
//! The screens' forms post JSON to the same API the tests use (see
//! `static/app.js`, `form[data-api]`), so a refused movement shows its plain
//! message next to the form.

use super::{At, Count, InvError, Lot, MoveCtx, NewLot, Receipt};
use crate::auth::session::Staff;
use crate::catalog;
use crate::web::{fmt_utc, layout, AppError, AppState, FeedItem};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup};
use rxedge_shared::inventory::{self as rules, HoldReason, MoveKind};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row as _;

use rxedge_shared::clock::system_now_ms as now_ms;

impl From<InvError> for AppError {
    fn from(e: InvError) -> Self {
        match e {
            InvError::Invalid(m) => AppError::BadRequest(m),
            InvError::NotFound(m) => AppError::NotFound(m),
            e @ (InvError::Stock(_)
            | InvError::Unusable(_)
            | InvError::Shortfall { .. }
            | InvError::Changed) => AppError::Conflict(capitalise(&e.to_string())),
            InvError::Db(e) => AppError::Internal(e.to_string()),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

fn at() -> At {
    At::from_ms(now_ms())
}

fn ctx(by: &str) -> MoveCtx {
    MoveCtx {
        actor: by.trim().to_owned(),
        ..MoveCtx::default()
    }
}

fn stock_moved(s: &AppState) {
    let _ = s.0.feed.send(FeedItem::Stock);
}

/// Routes of this context.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inventory", get(dashboard_page))
        .route("/inventory/lots", get(lots_page))
        .route("/inventory/lots/{id}", get(lot_page))
        .route("/inventory/receive", get(receive_page))
        .route("/inventory/stocktake", get(stocktake_page))
        .route("/inventory/recalls", get(recalls_page))
        .route("/inventory/trace", get(trace_page))
        .route("/inventory/trace.csv", get(trace_csv))
        .route("/inventory/lots/{id}/decision", post(decide))
        .route("/api/inventory/lots", get(lots_json).post(add_lot))
        .route("/api/inventory/lots/{id}", get(lot_json))
        .route("/api/inventory/lots/{id}/dispense", post(dispense))
        .route("/api/inventory/lots/{id}/adjust", post(adjust))
        .route("/api/inventory/lots/{id}/write-off", post(write_off))
        .route("/api/inventory/lots/{id}/transfer", post(transfer))
        .route("/api/inventory/lots/{id}/hold", post(hold))
        .route("/api/inventory/lots/{id}/decision", post(decide_json))
        .route("/api/inventory/receive", post(receive))
        .route("/api/inventory/reserve", post(reserve))
        .route("/api/inventory/reservations/{id}/release", post(release))
        .route(
            "/api/inventory/reservations/{id}/dispense",
            post(dispense_reservation),
        )
        .route("/api/inventory/stocktake", post(stocktake))
        .route("/api/inventory/recall", post(recall))
        .route("/api/inventory/trace", get(trace_json))
        .route("/api/inventory/dashboard", get(dashboard_json))
        .route("/api/inventory/ledger-check", get(ledger_check))
        .route("/api/inventory/gs1", post(gs1_text))
        .route("/api/inventory/gs1/image", post(gs1_image))
        .route("/api/inventory/availability", get(availability))
}

// ---- JSON API ----

async fn lots_json(State(s): State<AppState>) -> Result<Json<Vec<Lot>>, AppError> {
    Ok(Json(super::lots(&s.0.db, None).await?))
}

async fn lot_json(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    let lot = super::lot(&s.0.db, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no lot {id}")))?;
    let moves = ledger(&s, id).await?;
    Ok(Json(json!({ "lot": lot, "ledger": moves })))
}

#[derive(Deserialize)]
struct AddLot {
    #[serde(flatten)]
    lot: NewLot,
}

async fn add_lot(
    State(s): State<AppState>,
    user: Staff,
    Json(l): Json<AddLot>,
) -> Result<Json<Value>, AppError> {
    let id = super::open_lot(&s.0.db, &l.lot, &ctx(&user.name), at()).await?;
    let lot = super::lot(&s.0.db, id)
        .await?
        .ok_or_else(|| AppError::Internal(format!("lot {id} vanished")))?;
    stock_moved(&s);
    Ok(Json(json!({ "id": id, "status": lot.status })))
}

#[derive(Deserialize)]
struct Take {
    quantity: i64,
    #[serde(default)]
    order_ref: Option<String>,
    #[serde(default)]
    patient: Option<String>,
}

/// Hand packs over without a reservation (the desk). A lot on hold,
/// recalled or expired never leaves the shelf.
async fn dispense(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    Json(d): Json<Take>,
) -> Result<Json<Value>, AppError> {
    let c = MoveCtx {
        order_ref: d.order_ref,
        patient: d.patient,
        ..ctx(&user.name)
    };
    let (_, b) = super::move_stock(
        &s.0.db,
        id,
        MoveKind::DispenseUnreserved,
        d.quantity,
        &c,
        at(),
    )
    .await?;
    tracing::info!(lot = id, quantity = d.quantity, by = %user.name.as_str(), "dispensed");
    stock_moved(&s);
    Ok(Json(
        json!({ "id": id, "dispensed": d.quantity, "on_hand": b.on_hand }),
    ))
}

#[derive(Deserialize)]
struct Adjust {
    quantity: i64,
    reason: String,
}

async fn adjust(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    Json(a): Json<Adjust>,
) -> Result<Json<Value>, AppError> {
    movement(&s, id, MoveKind::Adjustment, a, user).await
}

async fn write_off(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    Json(a): Json<Adjust>,
) -> Result<Json<Value>, AppError> {
    movement(&s, id, MoveKind::WriteOff, a, user).await
}

async fn movement(
    s: &AppState,
    id: i64,
    kind: MoveKind,
    a: Adjust,
    user: Staff,
) -> Result<Json<Value>, AppError> {
    let c = MoveCtx {
        reason: a.reason,
        ..ctx(&user.name)
    };
    let (_, b) = super::move_stock(&s.0.db, id, kind, a.quantity, &c, at()).await?;
    stock_moved(s);
    Ok(Json(
        json!({ "id": id, "on_hand": b.on_hand, "reserved": b.reserved }),
    ))
}

#[derive(Deserialize)]
struct Transfer {
    to: String,
    quantity: i64,
    #[serde(default)]
    reason: String,
}

async fn transfer(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    Json(t): Json<Transfer>,
) -> Result<Json<Value>, AppError> {
    let c = MoveCtx {
        reason: t.reason,
        ..ctx(&user.name)
    };
    let to = super::transfer(&s.0.db, id, t.to.trim(), t.quantity, &c, at()).await?;
    stock_moved(&s);
    Ok(Json(json!({ "from": id, "to": to })))
}

#[derive(Deserialize)]
struct Hold {
    reason: String,
    note: String,
}

async fn hold(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    Json(h): Json<Hold>,
) -> Result<Json<Value>, AppError> {
    let reason = match HoldReason::parse(h.reason.trim()) {
        Some(HoldReason::ColdChainExcursion) | None => {
            return Err(AppError::BadRequest(
                "hold reason must be damage or investigation (excursion holds come from the cold chain)".into(),
            ))
        }
        Some(r) => r,
    };
    let c = MoveCtx {
        reason: h.note,
        ..ctx(&user.name)
    };
    super::hold(&s.0.db, id, reason, &c, now_ms()).await?;
    stock_moved(&s);
    Ok(Json(json!({ "id": id, "status": "on_hold" })))
}

#[derive(Deserialize)]
struct Decision {
    note: String,
    decision: String,
}

async fn decide_inner(s: &AppState, id: i64, d: Decision, user: Staff) -> Result<Lot, AppError> {
    let release = match d.decision.as_str() {
        "release" => true,
        "discard" => false,
        other => return Err(AppError::BadRequest(format!("unknown decision {other:?}"))),
    };
    if d.note.trim().is_empty() {
        return Err(AppError::BadRequest("A decision needs a reason.".into()));
    }
    let c = MoveCtx {
        reason: d.note,
        ..ctx(&user.name)
    };
    let lot = super::decide_hold(&s.0.db, id, release, &c, at()).await?;
    stock_moved(s);
    Ok(lot)
}

async fn decide(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    axum::Form(d): axum::Form<Decision>,
) -> Result<Response, AppError> {
    decide_inner(&s, id, d, user).await?;
    Ok(axum::response::Redirect::to("/inventory/holds").into_response())
}

async fn decide_json(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    Json(d): Json<Decision>,
) -> Result<Json<Lot>, AppError> {
    Ok(Json(decide_inner(&s, id, d, user).await?))
}

#[derive(Deserialize)]
struct ReceiveReq {
    #[serde(flatten)]
    receipt: Receipt,
}

async fn receive(
    State(s): State<AppState>,
    user: Staff,
    Json(r): Json<ReceiveReq>,
) -> Result<Json<Lot>, AppError> {
    let lot = super::receive(&s.0.db, &r.receipt, &ctx(&user.name), at()).await?;
    tracing::info!(lot = lot.id, gtin = ?lot.gtin, batch = %lot.lot, quantity = r.receipt.quantity, "received");
    stock_moved(&s);
    Ok(Json(lot))
}

#[derive(Deserialize)]
struct ReserveReq {
    gtin: String,
    quantity: i64,
    order_ref: String,
}

async fn reserve(
    State(s): State<AppState>,
    user: Staff,
    Json(r): Json<ReserveReq>,
) -> Result<Json<Value>, AppError> {
    let c = MoveCtx {
        order_ref: Some(r.order_ref),
        ..ctx(&user.name)
    };
    let got = super::reserve_fefo(
        &s.0.db,
        &r.gtin,
        r.quantity,
        s.0.cfg.inventory.min_shelf_life_days,
        &c,
        at(),
    )
    .await?;
    stock_moved(&s);
    Ok(Json(json!({ "reservations": got })))
}

#[derive(Deserialize)]
struct CloseReq {
    #[serde(default)]
    patient: Option<String>,
}

async fn release(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
) -> Result<Json<Lot>, AppError> {
    let lot = super::close_reservation(&s.0.db, id, false, &ctx(&user.name), at()).await?;
    stock_moved(&s);
    Ok(Json(lot))
}

async fn dispense_reservation(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    user: Staff,
    Json(r): Json<CloseReq>,
) -> Result<Json<Lot>, AppError> {
    let c = MoveCtx {
        patient: r.patient,
        ..ctx(&user.name)
    };
    let lot = super::close_reservation(&s.0.db, id, true, &c, at()).await?;
    stock_moved(&s);
    Ok(Json(lot))
}

#[derive(Deserialize)]
struct StocktakeReq {
    note: String,
    counts: Vec<Count>,
}

async fn stocktake(
    State(s): State<AppState>,
    user: Staff,
    Json(r): Json<StocktakeReq>,
) -> Result<Json<Value>, AppError> {
    let (id, lines) = super::stocktake(&s.0.db, &r.counts, &r.note, &ctx(&user.name), at()).await?;
    stock_moved(&s);
    Ok(Json(json!({ "id": id, "lines": lines })))
}

#[derive(Deserialize)]
struct RecallReq {
    gtin: String,
    batch: String,
    reason: String,
}

async fn recall(
    State(s): State<AppState>,
    user: Staff,
    Json(r): Json<RecallReq>,
) -> Result<Json<Value>, AppError> {
    let c = MoveCtx {
        reason: r.reason,
        ..ctx(&user.name)
    };
    let rep = super::recall(&s.0.db, &r.gtin, &r.batch, &c, at()).await?;
    tracing::warn!(gtin = %r.gtin, batch = %r.batch, lots = rep.lots, "batch recalled");
    stock_moved(&s);
    let trace = super::trace(&s.0.db, &r.gtin, &r.batch).await?;
    Ok(Json(json!({ "recall": rep, "trace": trace })))
}

#[derive(Deserialize)]
struct TraceQ {
    gtin: String,
    batch: String,
}

async fn trace_json(
    State(s): State<AppState>,
    Query(q): Query<TraceQ>,
) -> Result<Json<Vec<super::TraceLine>>, AppError> {
    Ok(Json(super::trace(&s.0.db, &q.gtin, &q.batch).await?))
}

async fn trace_csv(
    State(s): State<AppState>,
    Query(q): Query<TraceQ>,
) -> Result<Response, AppError> {
    let lines = super::trace(&s.0.db, &q.gtin, &q.batch).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AppError::Internal(e.to_string());
    w.write_record([
        "time_utc",
        "kind",
        "packs",
        "order",
        "patient",
        "handed_over_by",
        "location",
        "gtin",
        "batch",
    ])
    .map_err(err)?;
    for l in &lines {
        w.write_record([
            fmt_utc(l.at_ms),
            l.kind.clone(),
            l.qty.to_string(),
            l.order_ref.clone().unwrap_or_default(),
            l.patient.clone().unwrap_or_default(),
            l.actor.clone(),
            l.location.clone(),
            q.gtin.clone(),
            q.batch.clone(),
        ])
        .map_err(err)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let name = format!("recall-trace-{}-{}.csv", q.gtin.trim(), sanitize(&q.batch));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

async fn ledger_check(State(s): State<AppState>) -> Result<Json<Value>, AppError> {
    let drift = super::ledger_drift(&s.0.db).await?;
    Ok(Json(json!({ "ok": drift.is_empty(), "drift": drift })))
}

#[derive(Deserialize)]
struct Gs1Text {
    text: String,
}

async fn gs1_fill(s: &AppState, text: &str) -> Result<Value, AppError> {
    let g = rxedge_shared::payload::gs1::parse(text.trim())
        .map_err(|e| AppError::BadRequest(format!("not a GS1 code: {e}")))?;
    let product = match &g.gtin {
        Some(gt) => catalog::get(&s.0.db, gt).await?,
        None => None,
    };
    let expiry = g
        .expiry
        .as_deref()
        .and_then(rules::parse_expiry)
        .map(|d| d.to_string());
    Ok(json!({
        "gtin": g.gtin,
        "batch": g.batch,
        "expiry": expiry,
        "serial": g.serial,
        "element_string": g.element_string,
        "product": product,
        "known": product.is_some(),
    }))
}

async fn gs1_text(
    State(s): State<AppState>,
    Json(t): Json<Gs1Text>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(gs1_fill(&s, &t.text).await?))
}

/// A photo of a pack from the desk's camera: find its code, then parse it.
async fn gs1_image(State(s): State<AppState>, mut mp: Multipart) -> Result<Json<Value>, AppError> {
    let mut bytes = None;
    while let Some(f) = mp
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?
    {
        bytes = Some(
            f.bytes()
                .await
                .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?,
        );
    }
    let bytes = bytes.ok_or_else(|| AppError::BadRequest("no image in the upload".into()))?;
    // A pack photo: the same limits as a prescription page, so a bomb is refused unread.
    let limits = rxedge_shared::image_decode::Limits {
        max_bytes: s.0.cfg.ingest.max_image_bytes,
        max_side: s.0.cfg.ocr.max_side,
    };
    let img = rxedge_shared::image_decode::decode(&bytes, limits)
        .map_err(|e| AppError::BadRequest(format!("not an image we can read: {e}")))?
        .to_luma8();
    let report = tokio::task::spawn_blocking(move || {
        rxedge_kiosk::qr::decode(&img, std::time::Duration::from_secs(2))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?;
    let text = report
        .codes
        .into_iter()
        .map(|c| c.text)
        .find(|t| rxedge_shared::payload::gs1::parse(t).is_ok())
        .ok_or_else(|| {
            AppError::BadRequest(
                "no GS1 code found in the photo; hold the pack closer and steady, or type the code"
                    .into(),
            )
        })?;
    Ok(Json(gs1_fill(&s, &text).await?))
}

#[derive(Deserialize)]
struct AvailQ {
    q: String,
}

async fn availability(
    State(s): State<AppState>,
    Query(q): Query<AvailQ>,
) -> Result<Json<Value>, AppError> {
    let items = super::availability::lookup(&s.0.db, &q.q, at().today).await?;
    Ok(Json(json!({ "items": items })))
}

// ---- dashboard ----

async fn dashboard_json(State(s): State<AppState>) -> Result<Json<super::Dashboard>, AppError> {
    let c = &s.0.cfg.inventory;
    Ok(Json(
        super::dashboard(&s.0.db, c.expiring_within_days, c.rate_window_days, at()).await?,
    ))
}

async fn dashboard_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let c = &s.0.cfg.inventory;
    let d = super::dashboard(&s.0.db, c.expiring_within_days, c.rate_window_days, at()).await?;
    Ok(layout(
        "Stock",
        html! {
            h1 { "Stock" }
            (nav())
            section #dash data-refresh="stock" {
                div.tiles {
                    a.tile href="#expiring" { strong { (d.expiring.len()) } " expiring within " (c.expiring_within_days) " days" }
                    a.tile href="#reorder" { strong { (d.below_reorder.len()) } " below reorder point" }
                    a.tile href="/inventory/holds" { strong { (d.held.len()) } " held, awaiting a decision" }
                }
                h2 #expiring { "Expiring within " (c.expiring_within_days) " days" }
                table #expiring-table {
                    thead { tr { th { "Product" } th { "Batch" } th { "Expiry" } th { "Days" } th { "Packs" } th { "Location" } } }
                    tbody {
                        @if d.expiring.is_empty() { tr { td colspan="6" { "Nothing expires soon." } } }
                        @for e in &d.expiring {
                            tr { td { a href=(format!("/inventory/lots/{}", e.lot.id)) { (e.lot.product) } } td { (e.lot.lot) } td { (e.lot.expiry) }
                                 td.num { (e.days_left) } td.num { (e.lot.quantity) } td { (e.lot.location) } }
                        }
                    }
                }
                h2 #reorder { "Below reorder point" }
                table #reorder-table {
                    thead { tr { th { "Product" } th { "GTIN" } th { "Free packs" } th { "Reorder point" } } }
                    tbody {
                        @if d.below_reorder.is_empty() { tr { td colspan="4" { "Every product is above its reorder point." } } }
                        @for r in &d.below_reorder { tr { td { (r.name) } td { (r.gtin) } td.num { (r.free) } td.num { (r.reorder_point) } } }
                    }
                }
                h2 { "Held lots" }
                table #held-table {
                    thead { tr { th { "Product" } th { "Batch" } th { "Packs" } th { "Location" } th { "Why" } } }
                    tbody {
                        @if d.held.is_empty() { tr { td colspan="5" { "Nothing is on hold." } } }
                        @for l in &d.held {
                            tr { td { a href=(format!("/inventory/lots/{}", l.id)) { (l.product) } } td { (l.lot) } td.num { (l.quantity) } td { (l.location) }
                                 td { (l.hold_reason.as_deref().and_then(HoldReason::parse).map_or("–", |h| h.label())) } }
                        }
                    }
                }
                h2 { "Days of stock left (dispensing of the last " (c.rate_window_days) " days)" }
                table #days-table {
                    thead { tr { th { "Product" } th { "Free packs" } th { "Dispensed" } th { "Days left" } } }
                    tbody {
                        @if d.days_left.is_empty() { tr { td colspan="4" { "No stock yet." } } }
                        @for r in &d.days_left {
                            tr { td { (r.name) } td.num { (r.free) } td.num { (r.dispensed) }
                                 td.num { (r.days_left.map_or("no recent dispensing".into(), |x| format!("{x:.0}"))) } }
                        }
                    }
                }
            }
        },
    ))
}

fn nav() -> Markup {
    html! {
        nav.sub {
            a href="/inventory" { "Dashboard" } " · " a href="/inventory/lots" { "Lots" } " · "
            a href="/inventory/receive" { "Receive" } " · " a href="/inventory/stocktake" { "Stocktake" } " · "
            a href="/inventory/holds" { "Holds" } " · " a href="/inventory/recalls" { "Recalls" } " · " a href="/catalog" { "Catalog" }
        }
    }
}

#[derive(Deserialize)]
struct LotsQ {
    #[serde(default)]
    status: Option<String>,
}

async fn lots_page(State(s): State<AppState>, Query(q): Query<LotsQ>) -> Result<Markup, AppError> {
    let status = q.status.filter(|x| !x.is_empty());
    let lots = super::lots(&s.0.db, status.as_deref()).await?;
    Ok(layout(
        "Lots",
        html! {
            h1 { "Lots" }
            (nav())
            form method="get" {
                label { "Status " select name="status" {
                    option value="" { "all" }
                    @for st in ["available", "on_hold", "recalled", "expired", "discarded"] {
                        option value=(st) selected[status.as_deref() == Some(st)] { (st) }
                    }
                } }
                button { "Show" }
            }
            table #lots data-refresh="stock" {
                thead { tr { th { "Product" } th { "GTIN" } th { "Batch" } th { "Expiry" } th { "On hand" } th { "Reserved" } th { "Location" } th { "Status" } } }
                tbody {
                    @if lots.is_empty() { tr { td colspan="8" { "No lots." } } }
                    @for l in &lots {
                        tr data-lot=(l.id) {
                            td { a href=(format!("/inventory/lots/{}", l.id)) { (l.product) } } td { (l.gtin.clone().unwrap_or_default()) }
                            td { (l.lot) } td { (l.expiry) } td.num { (l.quantity) } td.num { (l.reserved) } td { (l.location) } td { (l.status) }
                        }
                    }
                }
            }
        },
    ))
}

async fn ledger(s: &AppState, id: i64) -> Result<Vec<Value>, AppError> {
    let rows = sqlx::query(
        "SELECT id, at_ms, kind, qty_delta, reserved_delta, on_hand_after, reserved_after, actor, reason, order_ref, patient, other_lot \
         FROM stock_moves WHERE lot_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&s.0.db.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(json!({
            "id": r.try_get::<i64, _>("id")?,
            "at_ms": r.try_get::<i64, _>("at_ms")?,
            "kind": r.try_get::<String, _>("kind")?,
            "qty_delta": r.try_get::<i64, _>("qty_delta")?,
            "reserved_delta": r.try_get::<i64, _>("reserved_delta")?,
            "on_hand_after": r.try_get::<i64, _>("on_hand_after")?,
            "reserved_after": r.try_get::<i64, _>("reserved_after")?,
            "actor": r.try_get::<String, _>("actor")?,
            "reason": r.try_get::<String, _>("reason")?,
            "order_ref": r.try_get::<Option<String>, _>("order_ref")?,
            "patient": r.try_get::<Option<String>, _>("patient")?,
            "other_lot": r.try_get::<Option<i64>, _>("other_lot")?,
        }));
    }
    Ok(out)
}

async fn locations(s: &AppState) -> Result<Vec<(String, String)>, AppError> {
    let rows = sqlx::query("SELECT id, kind FROM stock_locations ORDER BY kind DESC, id")
        .fetch_all(&s.0.db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

fn location_select(locs: &[(String, String)], name: &str) -> Markup {
    html! {
        select name=(name) required {
            @for (id, kind) in locs { option value=(id) { (id) " (" (kind) ")" } }
        }
    }
}

async fn lot_page(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Markup, AppError> {
    let l = super::lot(&s.0.db, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no lot {id}")))?;
    let moves = ledger(&s, id).await?;
    let locs = locations(&s).await?;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok(layout(
        &format!("Lot {}", l.lot),
        html! {
            h1 { (l.product) " · batch " (l.lot) }
            (nav())
            p #lot-facts data-refresh="stock" {
                "Expiry " (l.expiry) " · " (l.quantity) " on hand, " (l.reserved) " reserved · " (l.location) " · status " strong { (l.status) }
                @if let Some(g) = &l.gtin { " · GTIN " (g) }
            }
            div.forms {
                form data-api=(format!("/api/inventory/lots/{id}/adjust")) {
                    h3 { "Adjust" }
                    input name="quantity" type="number" required placeholder="+/- packs";
                    input name="reason" required placeholder="Reason";
                    button { "Adjust" } output {}
                }
                form data-api=(format!("/api/inventory/lots/{id}/write-off")) {
                    h3 { "Write off" }
                    input name="quantity" type="number" min="1" required placeholder="Packs";
                    input name="reason" required placeholder="Reason";
                    button { "Write off" } output {}
                }
                form data-api=(format!("/api/inventory/lots/{id}/transfer")) {
                    h3 { "Transfer" }
                    (location_select(&locs, "to"))
                    input name="quantity" type="number" min="1" required placeholder="Packs";
                    button { "Transfer" } output {}
                }
                @if l.status == "available" {
                    form data-api=(format!("/api/inventory/lots/{id}/hold")) {
                        h3 { "Put on hold" }
                        select name="reason" { option value="damage" { "damage" } option value="investigation" { "investigation" } }
                        input name="note" required placeholder="What was found";
                        button { "Hold" } output {}
                    }
                }
            }
            h2 { "Ledger" }
            table #ledger data-refresh="stock" {
                thead { tr { th { "#" } th { "Time (UTC)" } th { "Movement" } th { "On hand Δ" } th { "Reserved Δ" } th { "After" } th { "By" } th { "Reason / order" } } }
                tbody {
                    @for m in &moves {
                        tr { td { (m["id"]) } td { (fmt_utc(m["at_ms"].as_i64().unwrap_or(0))) } td { (text(m, "kind")) }
                             td.num { (m["qty_delta"]) } td.num { (m["reserved_delta"]) } td.num { (m["on_hand_after"]) "/" (m["reserved_after"]) }
                             td { (text(m, "actor")) } td { (text(m, "reason")) " " (text(m, "order_ref")) " " (text(m, "patient")) } }
                    }
                }
            }
        },
    ))
}

async fn receive_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let locs = locations(&s).await?;
    Ok(layout(
        "Receive stock",
        html! {
            h1 { "Receive stock" }
            (nav())
            p { "Scan the pack's GS1 code with the desk scanner (it types into the first field), take a photo of it, or type it. GTIN, batch and expiry fill in; confirm the quantity and the location." }
            form #gs1-scan data-gs1="/api/inventory/gs1" {
                label { "GS1 code " input name="text" autofocus autocomplete="off" placeholder="(01)…(17)…(10)… or https://id.gs1.org/01/…"; }
                button { "Read" }
                label.photo { "or a photo " input name="photo" type="file" accept="image/*" capture="environment" data-upload="/api/inventory/gs1/image"; }
                output #gs1-result {}
            }
            form #receive data-api="/api/inventory/receive" data-next="/inventory/lots/{id}" {
                label { "GTIN " input name="gtin" required inputmode="numeric"; }
                label { "Batch " input name="lot" required; }
                label { "Expiry " input name="expiry" type="date" required; }
                label { "Packs " input name="quantity" type="number" min="1" required; }
                label { "Location " (location_select(&locs, "location")) }
                button { "Receive" } output {}
            }
        },
    ))
}

async fn stocktake_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let lots: Vec<Lot> = super::lots(&s.0.db, None)
        .await?
        .into_iter()
        .filter(|l| l.quantity > 0 || l.status == "available")
        .collect();
    Ok(layout(
        "Stocktake",
        html! {
            h1 { "Stocktake" }
            (nav())
            p { "Count each lot and enter what you find. Every difference is booked as an adjustment with your note; lots you leave empty are not counted." }
            form #stocktake data-api="/api/inventory/stocktake" data-shape="stocktake" {
                table {
                    thead { tr { th { "Location" } th { "Product" } th { "Batch" } th { "Expected" } th { "Counted" } } }
                    tbody {
                        @for l in &lots {
                            tr { td { (l.location) } td { (l.product) } td { (l.lot) } td.num { (l.quantity) }
                                 td { input name=(format!("count-{}", l.id)) type="number" min="0"; } }
                        }
                    }
                }
                input name="note" required placeholder="Note (which shelf, why)";
                button { "Book stocktake" } output {}
            }
        },
    ))
}

async fn recalls_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let rows = sqlx::query("SELECT r.id, r.gtin, r.batch, r.reason, r.actor, r.at_ms, r.lots, p.name FROM recalls r LEFT JOIN products p ON p.gtin = r.gtin ORDER BY r.id DESC")
        .fetch_all(&s.0.db.pool)
        .await?;
    let mut items = Vec::new();
    for r in &rows {
        let gtin: String = r.try_get("gtin")?;
        let batch: String = r.try_get("batch")?;
        items.push(html! {
            tr {
                td { (fmt_utc(r.try_get("at_ms")?)) } td { (r.try_get::<Option<String>, _>("name")?.unwrap_or_default()) } td { (gtin) } td { (batch) }
                td { (r.try_get::<String, _>("reason")?) } td { (r.try_get::<String, _>("actor")?) } td.num { (r.try_get::<i64, _>("lots")?) }
                td { a href=(format!("/inventory/trace?gtin={gtin}&batch={}", urlenc(&batch))) { "who received it" } }
            }
        });
    }
    Ok(layout(
        "Recalls",
        html! {
            h1 { "Recalls" }
            (nav())
            form #recall data-api="/api/inventory/recall" data-next="/inventory/trace?gtin={recall.gtin}&batch={recall.batch}" {
                label { "GTIN " input name="gtin" required inputmode="numeric"; }
                label { "Batch " input name="batch" required; }
                label { "Reason / reference " input name="reason" required; }
                button { "Recall this batch" } output {}
            }
            table #recalls {
                thead { tr { th { "When" } th { "Product" } th { "GTIN" } th { "Batch" } th { "Reason" } th { "By" } th { "Lots" } th {} } }
                tbody { @if items.is_empty() { tr { td colspan="8" { "No recalls." } } } @for i in items { (i) } }
            }
        },
    ))
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn trace_page(
    State(s): State<AppState>,
    Query(q): Query<TraceQ>,
) -> Result<Markup, AppError> {
    let lines = super::trace(&s.0.db, &q.gtin, &q.batch).await?;
    let product = catalog::get(&s.0.db, &q.gtin)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    Ok(layout(
        "Recall trace",
        html! {
            h1 { "Who received " (product) " batch " (q.batch) }
            (nav())
            p { (lines.len()) " hand-over(s). " a href=(format!("/inventory/trace.csv?gtin={}&batch={}", urlenc(&q.gtin), urlenc(&q.batch))) { "Download CSV" } }
            table #trace {
                thead { tr { th { "When (UTC)" } th { "Order" } th { "Patient" } th { "Packs" } th { "Handed over by" } th { "From" } } }
                tbody {
                    @if lines.is_empty() { tr { td colspan="6" { "No pack of this batch has left the pharmacy." } } }
                    @for l in &lines {
                        tr { td { (fmt_utc(l.at_ms)) } td { (l.order_ref.clone().unwrap_or_else(|| "desk sale".into())) } td { (l.patient.clone().unwrap_or_default()) }
                             td.num { (l.qty) } td { (l.actor) } td { (l.location) } }
                    }
                }
            }
        },
    ))
}
