//! The pharmacist's queue and order pages, and the orders API.

use super::{Desk, OrderError, Settings};
use crate::auth::session::Staff;
use crate::inventory::At;
use crate::page_cache::PageCache;
use crate::web::{fmt_utc, layout, AppError, AppState, FeedItem};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup};
use rxedge_shared::orders::{Action, OrderState, Policy};
use rxedge_shared::payload;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row as _;

use rxedge_shared::clock::system_now_ms as now_ms;

impl From<OrderError> for AppError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound(m) => AppError::NotFound(format!("no order {m}")),
            OrderError::Refused(r) => AppError::Conflict(r.to_string()),
            OrderError::Stock(s) => s.into(),
            OrderError::Invalid(m) => AppError::BadRequest(m),
            OrderError::Changed => AppError::Conflict(OrderError::Changed.to_string()),
            OrderError::Db(e) => AppError::Internal(e.to_string()),
        }
    }
}

/// Routes of this context.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(queue_page))
        .route("/orders/{id}", get(order_page))
        .route("/api/orders", get(list_json))
        .route("/api/orders/{id}", get(order_json))
        .route("/api/orders/{id}/lines", post(add_line))
        .route("/api/orders/{id}/action", post(act))
        .route("/api/orders/{id}/checks", get(checks_json))
        .route("/api/orders/{id}/patient", post(file_under))
        .route("/api/orders/{id}/handover", post(handover_scan))
        .route("/api/orders/{id}/notify", post(notify_patient))
        .route("/api/notifications/{id}/retry", post(retry_notification))
}

fn settings(s: &AppState) -> Settings {
    Settings {
        policy: Policy {
            return_after_days: s.0.cfg.orders.return_after_days,
        },
        min_shelf_life_days: s.0.cfg.inventory.min_shelf_life_days,
        ticket_days: s.0.cfg.orders.ticket_days,
        verify_packs: s.0.cfg.orders.verify_packs_at_pickup,
    }
}

#[derive(Deserialize)]
struct ListQ {
    #[serde(default)]
    state: Option<String>,
}

/// The queue screen's filters, as the form sends them.
#[derive(Deserialize)]
struct QueueQ {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    source: Option<String>,
    /// `nobody` or `me`.
    #[serde(default)]
    held: Option<String>,
    /// Patient or reference.
    #[serde(default)]
    q: Option<String>,
}

/// Longest search text kept (a name or a reference is far shorter).
const MAX_SEARCH: usize = 100;

impl QueueQ {
    fn filter(self, me: &str) -> super::QueueFilter {
        let some = |v: Option<String>| v.map(|x| x.trim().to_owned()).filter(|x| !x.is_empty());
        super::QueueFilter {
            state: some(self.state),
            kind: some(self.kind),
            source: some(self.source),
            holder: match some(self.held).as_deref() {
                Some("nobody") => super::Holder::Nobody,
                Some("me") => super::Holder::User(me.to_owned()),
                _ => super::Holder::Anyone,
            },
            text: some(self.q).map(|t| t.chars().take(MAX_SEARCH).collect()),
        }
    }
}

/// Prescription kinds a queue can be narrowed to, with their labels.
const KINDS: [(&str, &str); 5] = [
    ("paper", "paper"),
    ("chmed16a", "eMediplan CHMED16A"),
    ("chmed23a", "eMediplan CHMED23A"),
    ("gs1", "GS1 pack code"),
    ("unknown", "unrecognised code"),
];

async fn list_json(
    State(s): State<AppState>,
    Query(q): Query<ListQ>,
) -> Result<Json<Vec<super::Order>>, AppError> {
    Ok(Json(
        super::list(&s.0.db, q.state.as_deref().filter(|x| !x.is_empty()), 500).await?,
    ))
}

async fn order_json(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let o = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no order {id}")))?;
    let lines = super::lines(&s.0.db, &id).await?;
    let trail = super::trail(&s.0.db, &id).await?;
    let checks = super::checks::run(&s.0.db, &s.0.interactions, &o, now_ms()).await?;
    let invoice = crate::billing::invoice_of_order(&s.0.db, &id).await?;
    let notifications = crate::notify::for_order(&s.0.db, &id).await?;
    Ok(Json(json!({
        "order": o, "lines": lines, "trail": trail, "checks": checks,
        "invoice": invoice, "notifications": notifications,
    })))
}

async fn checks_json(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<super::checks::Checks>, AppError> {
    let o = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no order {id}")))?;
    Ok(Json(
        super::checks::run(&s.0.db, &s.0.interactions, &o, now_ms()).await?,
    ))
}

#[derive(Deserialize)]
struct NotifyReq {
    kind: String,
}

/// Queue a message to the patient (opt-in), e.g. "please come and talk to
/// the pharmacist"; refused in words when the patient cannot be reached.
async fn notify_patient(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(r): Json<NotifyReq>,
) -> Result<Json<Value>, AppError> {
    let by = user.name.as_str();
    let kind = rxedge_shared::notify::Kind::parse(r.kind.trim()).ok_or_else(|| {
        AppError::BadRequest(format!("kind {:?} is not ready or needs_word", r.kind))
    })?;
    let o = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no order {id}")))?;
    match crate::notify::enqueue(&s.0.db, &o, kind, &s.0.store_name(), by, now_ms()).await? {
        Ok(n) => {
            s.0.notify_wake.notify_one();
            order_changed(&s);
            Ok(Json(
                json!({ "notification": n, "message": "Queued; the status shows below." }),
            ))
        }
        Err(why) => Err(AppError::Conflict(format!("no message sent: {why}"))),
    }
}

async fn retry_notification(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    if !crate::notify::retry(&s.0.db, id, now_ms()).await? {
        return Err(AppError::Conflict(
            "only a failed notification can be tried again".into(),
        ));
    }
    s.0.notify_wake.notify_one();
    order_changed(&s);
    Ok(Json(json!({ "message": "Trying again." })))
}

#[derive(Deserialize)]
struct Scan {
    code: String,
}

/// A pack scanned at the desk: accepted (the reserved lot) or refused in
/// words; a refusal is an answer, not an error, so the form shows it.
async fn handover_scan(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(b): Json<Scan>,
) -> Result<Json<super::handover::Progress>, AppError> {
    let by = user.name.as_str();
    let p = super::handover::scan(&s.0.db, &id, &b.code, by, now_ms()).await?;
    order_changed(&s);
    Ok(Json(p))
}

#[derive(Deserialize)]
struct FileUnder {
    /// An existing record…
    #[serde(default)]
    patient_id: String,
    /// …or a new one.
    #[serde(default)]
    name: String,
    #[serde(default)]
    birth_date: String,
}

/// File an order under a patient record: an existing one, or a new one made
/// from the name and date of birth (a paper prescription).
async fn file_under(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(f): Json<FileUnder>,
) -> Result<Json<crate::patients::Patient>, AppError> {
    let by = user.name.as_str();
    let now = now_ms();
    let pid = if f.patient_id.trim().is_empty() {
        let fields = crate::patients::Fields {
            name: f.name,
            birth_date: f.birth_date,
            ..Default::default()
        };
        crate::patients::create(&s.0.db, &fields, by, now).await?.id
    } else {
        f.patient_id.trim().to_owned()
    };
    let p = crate::patients::attach_order(&s.0.db, &id, &pid, by, now).await?;
    order_changed(&s);
    Ok(Json(p))
}

#[derive(Deserialize)]
struct AddLine {
    gtin: String,
    packs: i64,
    #[serde(default)]
    sig: String,
}

async fn add_line(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(l): Json<AddLine>,
) -> Result<Json<super::Line>, AppError> {
    let line = super::add_line(&s.0.db, &id, &l.gtin, l.packs, &l.sig, &user.name).await?;
    order_changed(&s);
    Ok(Json(line))
}

#[derive(Deserialize)]
struct ActReq {
    #[serde(flatten)]
    action: Action,
}

async fn act(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(r): Json<ActReq>,
) -> Result<Json<super::Order>, AppError> {
    let desk = Desk {
        db: &s.0.db,
        key: &s.0.key,
        store: s.0.store.as_str(),
        settings: settings(&s),
        interactions: &s.0.interactions,
    };
    let o = super::act(desk, &id, &r.action, &user.name, At::from_ms(now_ms())).await?;
    tracing::info!(order = %o.id, state = %o.state, by = %user.name.as_str(), action = r.action.name(), "order step");
    if o.state == "ready" {
        // Patients who opted in are told; one who did not is simply not.
        match crate::notify::enqueue(
            &s.0.db,
            &o,
            rxedge_shared::notify::Kind::Ready,
            &s.0.store_name(),
            user.name.as_str(),
            now_ms(),
        )
        .await
        {
            Ok(Ok(_)) => s.0.notify_wake.notify_one(),
            Ok(Err(why)) => tracing::info!(order = %o.id, %why, "no ready message"),
            Err(e) => tracing::error!(order = %o.id, error = %e, "ready message not queued"),
        }
    }
    if o.state == "picked_up" {
        // Handing over finalises the invoice. If that fails the order stays
        // picked up and its page offers "Finalise the invoice".
        let b = crate::billing::web::settings(&s);
        if let Err(e) = crate::billing::finalise(
            &s.0.db,
            b,
            s.0.store.as_str(),
            &o.id,
            user.name.as_str(),
            now_ms(),
        )
        .await
        {
            tracing::error!(order = %o.id, error = %e, "invoice not finalised at pick-up");
        }
    }
    order_changed(&s);
    let _ = s.0.feed.send(FeedItem::Stock);
    Ok(Json(o))
}

fn age(ms: i64, now: i64) -> String {
    let m = (now - ms).max(0) / 60_000;
    if m < 60 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{} days", m / 1440)
    }
}

fn state_label(s: &str) -> String {
    s.replace('_', " ")
}

/// An order changed through this hub's screens: the queue page is stale now,
/// before the answer goes back (the pharmacist who acted must see it), and
/// live screens hear of it. (Review pages go stale on every write request:
/// `web::writes_invalidate`.)
fn order_changed(s: &AppState) {
    s.0.queue.invalidate();
    let _ = s.0.feed.send(FeedItem::Order);
}

/// How long a rendered queue stays fresh without any change (the ages it
/// shows are in minutes).
pub const QUEUE_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a rendered review page stays fresh without any change the hub
/// hears of (see [`crate::page_cache`]).
pub const REVIEW_FRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// Drop rendered pages when the live feed says something changed: the
/// queue on an order, the review pages on anything but a kiosk's status
/// (orders, stock, OCR, alarms, readings, events). A lagging receiver may
/// have missed one, so it drops them all.
pub async fn invalidate_on_change(
    queue: std::sync::Arc<PageCache>,
    pages: std::sync::Arc<PageCache>,
    mut feed: tokio::sync::broadcast::Receiver<FeedItem>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        tokio::select! {
            m = feed.recv() => match m {
                Ok(FeedItem::Order) | Err(RecvError::Lagged(_)) => {
                    queue.invalidate();
                    pages.invalidate();
                }
                Ok(FeedItem::Kiosk { .. }) => {}
                Ok(_) => pages.invalidate(),
                Err(RecvError::Closed) => break,
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn queue_page(
    State(s): State<AppState>,
    user: Staff,
    Query(q): Query<QueueQ>,
) -> Result<axum::response::Response, AppError> {
    let filter = q.filter(&user.name);
    cached(&s.0.queue, format!("{filter:?}"), render_queue(&s, &filter)).await
}

/// The page for `key` from `cache`, or `render` it and keep it.
async fn cached(
    cache: &PageCache,
    key: String,
    render: impl std::future::Future<Output = Result<Markup, AppError>>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse as _;
    // Futures are lazy: nothing is read before this (see `page_cache`).
    let generation = cache.generation();
    let html = [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")];
    if let Some(page) = cache.get(&key, generation) {
        return Ok((html, page).into_response());
    }
    let page = axum::body::Bytes::from(render.await?.into_string());
    cache.put(key, generation, page.clone());
    Ok((html, page).into_response())
}

async fn render_queue(s: &AppState, f: &super::QueueFilter) -> Result<Markup, AppError> {
    let orders = super::queue(&s.0.db, f, 300).await?;
    let kiosks = crate::devices::list(&s.0.db).await?;
    let now = now_ms();
    let waiting = orders
        .iter()
        .filter(|o| matches!(o.state.as_str(), "received" | "in_review"))
        .count();
    let narrowed = f.kind.is_some()
        || f.source.is_some()
        || f.holder != super::Holder::Anyone
        || f.text.is_some();
    Ok(layout(
        "Orders",
        html! {
            h1 { "Orders" }
            form #queue-filter method="get" {
                label { "Show " select name="state" {
                    option value="" { "open orders" }
                    @for st in rxedge_shared::orders::OrderState::ALL {
                        option value=(st.as_str()) selected[f.state.as_deref() == Some(st.as_str())] { (state_label(st.as_str())) }
                    }
                } }
                " "
                label { "Kind " select name="kind" {
                    option value="" { "any" }
                    @for (k, label) in KINDS { option value=(k) selected[f.kind.as_deref() == Some(k)] { (label) } }
                } }
                " "
                label { "From " select name="source" {
                    option value="" { "anywhere" }
                    option value=(super::DESK) selected[f.source.as_deref() == Some(super::DESK)] { "the desk" }
                    @for k in &kiosks { option value=(k.id) selected[f.source.as_deref() == Some(k.id.as_str())] { "kiosk " (k.id) } }
                } }
                " "
                label { "Held " select name="held" {
                    option value="" { "by anyone or nobody" }
                    option value="nobody" selected[f.holder == super::Holder::Nobody] { "by nobody" }
                    option value="me" selected[matches!(f.holder, super::Holder::User(_))] { "by me" }
                } }
                " "
                label { "Patient or reference " input type="search" name="q" value=(f.text.clone().unwrap_or_default()) maxlength=(MAX_SEARCH) autocomplete="off"; }
                " "
                button { "Filter" }
                @if narrowed || f.state.is_some() { " " a href="/orders" { "Clear" } }
            }
            p { small.keys { "Keys: j / k move, Enter opens, n opens the oldest waiting" } }
            section #queue data-refresh="order" {
                p.count { strong #waiting { (waiting) } " waiting for review" @if narrowed { " among the orders shown" } }
                table {
                    thead { tr { th { "Ref" } th { "Kind" } th { "Patient" } th { "From" } th { "Age" } th { "State" } } }
                    tbody {
                        @if orders.is_empty() { tr { td colspan="6" { "No orders." } } }
                        @for o in &orders {
                            tr data-order=(o.id) class=(o.state) {
                                td { a href=(format!("/orders/{}", o.id)) { (o.reference) } }
                                td { (o.kind) } td { (o.patient) } td { (o.source_kiosk.clone().unwrap_or_else(|| "desk".into())) }
                                td { (age(o.created_ms, now)) }
                                td.state { (state_label(&o.state)) @if let Some(r) = &o.reviewer { " · held by " strong { (r) } } }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// A catalog product as the review page offers it: its details and the
/// packs free to reserve.
struct Offer {
    product: crate::catalog::Product,
    free: i64,
}

/// Catalog products with the packs free to reserve, in one query (the
/// review page is the pharmacist's most viewed page).
async fn products_with_free(
    db: &crate::store::Db,
    gtins: &[String],
) -> Result<Vec<Offer>, sqlx::Error> {
    if gtins.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT p.*, CAST(COALESCE((SELECT SUM(l.quantity - l.reserved) FROM lots l \
         WHERE l.gtin = p.gtin AND l.status = 'available'), 0) AS BIGINT) AS free_packs \
         FROM products p WHERE p.gtin IN ({})",
        crate::store::marks(1, gtins.len())
    );
    let mut q = sqlx::query(&sql);
    for g in gtins {
        q = q.bind(g);
    }
    q.fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Offer {
                product: crate::catalog::from_row(r)?,
                free: r.try_get("free_packs")?,
            })
        })
        .collect()
}

/// What the catalog has for each GTIN an eMediplan names, and for the
/// generics each of those allows: two queries whatever the plan's length.
async fn offers(
    db: &crate::store::Db,
    o: &super::Order,
) -> Result<std::collections::HashMap<String, Offer>, AppError> {
    let mut out = std::collections::HashMap::new();
    let parsed = payload::parse(&o.payload);
    let Some(plan) = parsed.plan() else {
        return Ok(out);
    };
    let mut prescribed: Vec<String> = plan
        .medicaments
        .iter()
        .filter(|m| m.id_type == 2)
        .filter_map(|m| rxedge_shared::catalog::normalize_gtin(&m.id).ok())
        .collect();
    prescribed.sort();
    prescribed.dedup();
    prescribed.truncate(50);
    for f in products_with_free(db, &prescribed).await? {
        out.insert(f.product.gtin.clone(), f);
    }
    let mut generics: Vec<String> = out
        .values()
        .flat_map(|f| f.product.generics.iter().cloned())
        .filter(|g| !out.contains_key(g))
        .collect();
    generics.sort();
    generics.dedup();
    generics.truncate(50);
    for f in products_with_free(db, &generics).await? {
        out.insert(f.product.gtin.clone(), f);
    }
    Ok(out)
}

/// The catalog's offer for an eMediplan item named by GTIN. Plans write
/// Swiss packs' GTIN-13 (7680…); the catalog keeps GTIN-14.
fn offer_for<'a>(
    offers: &'a std::collections::HashMap<String, Offer>,
    m: &rxedge_shared::payload::chmed::Medicament,
) -> Option<&'a Offer> {
    if m.id_type != 2 {
        return None;
    }
    let gtin = rxedge_shared::catalog::normalize_gtin(&m.id).ok()?;
    offers.get(&gtin)
}

/// CHMED daily doses as the pharmacist writes them: 1-0-1-0, 0.5-0-1-0.
fn dosing(m: &rxedge_shared::payload::chmed::Medicament) -> String {
    let part = rxedge_shared::payload::posology::amount;
    let mut out: Vec<String> = m
        .posology
        .iter()
        .map(|p| match (&p.daily, &p.text, &p.as_needed) {
            (Some(d), _, _) => d.iter().map(|v| part(*v)).collect::<Vec<_>>().join("-"),
            (None, Some(t), None) => t.clone(),
            (None, Some(t), Some(_)) => format!("{t}, as needed"),
            (None, None, Some(_)) => "as needed".to_owned(),
            (None, None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    out.dedup();
    out.join("; ")
}

fn prescription(
    o: &super::Order,
    ocr: Option<&crate::ocr::jobs::Job>,
    edits: &[crate::ocr::edits::Edit],
    offers: &std::collections::HashMap<String, Offer>,
    in_review: bool,
) -> Markup {
    if o.kind == "paper" {
        return html! {
            p { "Paper prescription photographed at the kiosk." }
            @match ocr {
                Some(job) if job.draft.is_some() => {
                    div #ocr-job data-refresh="ocr" { (crate::ocr::web::draft_view(job, edits)) }
                    p { a href={ "/ocr/jobs/" (job.id) } { "The OCR job" } }
                }
                Some(job) => {
                    // The photo is inside the region, so the draft's own view
                    // (with its boxes) takes its place when OCR is done.
                    div #ocr-job data-refresh="ocr" {
                        (crate::ocr::web::draft_view(job, edits))
                        div.zoom-view { div.zoom-layer { img.paper src=(format!("/api/blobs/{}", o.payload)) alt="The paper prescription"; } }
                    }
                }
                None => {
                    div.zoom-view { div.zoom-layer { img.paper src=(format!("/api/blobs/{}", o.payload)) alt="The paper prescription"; } }
                }
            }
        };
    }
    let parsed = payload::parse(&o.payload);
    let version = parsed.kind().to_uppercase();
    match parsed.plan() {
        Some(c) => html! {
            p { "eMediplan " (version) @if let Some(d) = c.date { " of " (d) } @if let Some(g) = c.prescriber_gln { ", prescriber GLN " (g) } }
            @match c.patient {
                Some(p) => p { "Patient: " strong { (p.first_name) " " (p.last_name) } ", born " (p.birth_date)
                    @if let Some(card) = c.insurance_card { ", insurance card " (card) } },
                None => p.warn { "The plan names no patient: file the order under one below." },
            }
            table #medicaments {
                thead { tr { th { "Prescribed" } th { "Dosing" } th { "Packs" } th { "Instructions" } th { "In stock" } th { "Generics allowed" } } }
                tbody { @for m in c.medicaments {
                    @let offer = offer_for(offers, m);
                    @let packs = m.packs.map(|p| p.ceil().max(1.0) as i64).unwrap_or(1);
                    @let sig = dosing(m);
                    tr {
                        td {
                            @match offer {
                                Some(f) => { strong { (f.product.name) } @if f.product.controlled { " " span.badge { "controlled" } } br; small { "GTIN " (m.id) } }
                                None => { (match m.id_type { 1 => "", 2 => "GTIN ", 3 => "Pharmacode ", _ => "Product no. " }) (m.id) br; small.warn { @if m.id_type == 1 { "free text: match it to a product" } @else { "not in the catalog" } } }
                            }
                        }
                        td { (sig) }
                        td.num { (packs) }
                        td { @if let Some(t) = &m.instructions { (t) } @if let Some(r) = &m.reason { " (" (r) ")" } }
                        td.num { @if let Some(f) = offer { (f.free) } @else { "–" } }
                        td {
                            @if m.substitution == Some(1) {
                                span.warn { "No substitution: the prescriber asks for this product" }
                            } @else if let Some(f) = offer {
                                @let generics: Vec<&Offer> = f.product.generics.iter().filter_map(|g| offers.get(g)).collect();
                                @if generics.is_empty() { "none in the catalog" }
                                ul.generics { @for g in &generics {
                                    li { (g.product.name) " · " (rxedge_shared::billing::fmt(g.product.price_minor)) " · " (g.free) " in stock"
                                        @if in_review { (add_line_button(&o.id, &g.product.gtin, packs, &sig, "Dispense this instead")) } }
                                } }
                            }
                        }
                    }
                    @if in_review { @if let Some(f) = offer {
                        tr.add { td colspan="6" { (add_line_button(&o.id, &f.product.gtin, packs, &sig, "Add as prescribed")) } }
                    } }
                } }
            }
        },
        None => {
            html! { p { "Unrecognised code (" (parsed.kind()) "), as scanned:" } pre { (o.payload) } }
        }
    }
}

/// A one-click line: this product, these packs, this dosing.
fn add_line_button(order: &str, gtin: &str, packs: i64, sig: &str, label: &str) -> Markup {
    html! {
        form.quick-line data-api=(format!("/api/orders/{order}/lines")) data-next=(format!("/orders/{order}")) {
            input type="hidden" name="gtin" value=(gtin);
            input type="hidden" name="packs" value=(packs) data-number;
            input type="hidden" name="sig" value=(sig);
            button { (label) } output {}
        }
    }
}

fn patient_section(o: &super::Order, c: &super::checks::Checks) -> Markup {
    html! {
        section #patient {
            h2 { "Patient" }
            @if let Some(p) = &c.patient {
                p { a href=(format!("/patients/{}", p.id)) { strong { (p.name) } } @if !p.birth_date.is_empty() { ", born " (p.birth_date) }
                    @if !p.insurance.is_empty() { " · insurance " (p.insurance) } }
                p { "Allergies: "
                    @if p.allergies.is_empty() { "none recorded" }
                    @for (i, a) in p.allergies.iter().enumerate() { @if i > 0 { "; " } span.allergy { (a.label) } }
                }
            } @else {
                p { "Not filed under a patient record yet: allergies and earlier dispensings cannot be checked." }
            }
            @if !OrderState::parse(&o.state).unwrap_or(OrderState::Received).is_final() {
                details {
                    summary { @if c.patient.is_some() { "File under another patient" } @else { "File under a patient" } }
                    form data-api=(format!("/api/orders/{}/patient", o.id)) data-next=(format!("/orders/{}", o.id)) {
                        input name="patient_id" required placeholder="Patient id (see Patients)";
                        button { "File under this record" } output {}
                    }
                    form data-api=(format!("/api/orders/{}/patient", o.id)) data-next=(format!("/orders/{}", o.id)) {
                        input name="name" required placeholder="New patient: full name";
                        input name="birth_date" type="date" placeholder="Date of birth";
                        button { "Create and file" } output {}
                    }
                }
            }
        }
    }
}

fn checks_section(c: &super::checks::Checks) -> Markup {
    html! {
        section #checks {
            h2 { "Clinical checks" }
            @if c.findings.is_empty() {
                p.ok { "No interactions, duplicates, allergies or dose problems found in what could be checked." }
            } @else {
                ul.findings {
                    @for f in &c.findings {
                        li class=(format!("finding {}", f.severity.as_str())) data-kind=(format!("{:?}", f.kind).to_lowercase()) {
                            span.badge { (f.severity.as_str()) } " " strong { (f.title) }
                            br; (f.detail) " " small { "(" (f.source) ")" }
                        }
                    }
                }
            }
            @if !c.unchecked.is_empty() {
                p { "Not checked:" }
                ul.unchecked { @for u in &c.unchecked { li { (u) } } }
            }
            details {
                summary { "What was checked (" (c.drugs.len()) " drugs)" }
                ul { @for d in &c.drugs { li { (d.label) " · " (match &d.origin {
                    rxedge_shared::clinical::Origin::ThisOrder => "this order".to_owned(),
                    rxedge_shared::clinical::Origin::Plan => "on the eMediplan".to_owned(),
                    rxedge_shared::clinical::Origin::Dispensed(r) => format!("dispensed, order {r}"),
                }) } } }
            }
        }
    }
}

/// The review page, from [`Inner::pages`](crate::web::Inner) while nothing
/// it may show has changed: a busy pharmacy's screens reload it often, and
/// a render runs the clinical checks and a dozen queries.
async fn order_page(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, AppError> {
    cached(
        &s.0.pages,
        format!("order/{id}"),
        render_order(&s, id.clone()),
    )
    .await
}

async fn render_order(s: &AppState, id: String) -> Result<Markup, AppError> {
    let o = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no order {id}")))?;
    let lines = super::lines(&s.0.db, &id).await?;
    let trail = super::trail(&s.0.db, &id).await?;
    let checks = super::checks::run(&s.0.db, &s.0.interactions, &o, now_ms()).await?;
    let price = crate::billing::web::price_section(s, &o).await?;
    let held = super::handover::reserved(&s.0.db, &o.id).await?;
    let held_lots = if held.is_empty() {
        std::collections::HashMap::new()
    } else {
        super::handover::reserved_lots(&s.0.db, &o.id).await?
    };
    let held_cold = crate::coldchain::history::since_receipt(
        &s.0.db,
        &held_lots.values().copied().collect::<Vec<_>>(),
    )
    .await?;
    let scans = super::handover::accepted(&s.0.db, &o.id).await?;
    let scan_log = super::handover::log(&s.0.db, &o.id).await?;
    let notes = crate::notify::for_order(&s.0.db, &o.id).await?;
    let ocr = crate::ocr::jobs::for_order(&s.0.db, &o.id).await?;
    let ocr_edits = match &ocr {
        Some(j) => crate::ocr::edits::trail(&s.0.db, &j.id).await?,
        None => Vec::new(),
    };
    let st = OrderState::parse(&o.state).unwrap_or(OrderState::Received);
    let offers = offers(&s.0.db, &o).await?;
    let stock = if matches!(st, OrderState::Received | OrderState::InReview) && !lines.is_empty() {
        Some(
            super::review_stock::plan(
                &s.0.db,
                &lines,
                At::from_ms(now_ms()),
                s.0.cfg.inventory.min_shelf_life_days,
            )
            .await?,
        )
    } else {
        None
    };
    let api = format!("/api/orders/{}/action", o.id);
    // Each frequent step has a key (see `app.js`): pressing it submits the
    // form once its fields are filled, or puts the
    // cursor in the first empty one.
    let key = |action: &str| match action {
        "start_review" => "s",
        "release_review" => "g",
        "start_filling" => "f",
        "mark_ready" => "m",
        "pick_up" => "h",
        _ => "",
    };
    let button = |action: &str, label: &str| {
        html! {
            form data-api=(api) data-next=(format!("/orders/{}", o.id)) data-key=(key(action)) data-key-confirm=[(action == "pick_up").then_some("1")] {
                input type="hidden" name="action" value=(action);
                button { (label) } output {}
            }
        }
    };
    Ok(layout(
        &format!("Order {}", o.reference),
        html! {
            h1 { "Order " (o.reference) " · " span #state { (state_label(&o.state)) } }
            p { a href="/orders" { "Back to the queue" } " · "
                small.keys { "Keys: s start review · l add a line · a approve · g give back · f start filling · m mark ready · p scan a pack · h hand over · q queue" } }
            @if let Some(r) = &o.reviewer { p.held { "Held for review by " strong { (r) } } }
            section { h2 { "Prescription" } (prescription(&o, ocr.as_ref(), &ocr_edits, &offers, st == OrderState::InReview)) }
            (patient_section(&o, &checks))
            (checks_section(&checks))
            (price)
            @if !held.is_empty() {
                section #handover {
                    h2 { "Reserved stock (first expiry first)" }
                    table #reserved data-refresh="order" {
                        thead { tr { th { "Product" } th { "Lot" } th { "Expires" } th { "Packs" } th { "Scanned at hand-over" } @if !held_cold.is_empty() { th { "Cold chain since receipt" } } } }
                        tbody { @for r in &held {
                            @let n = scans.iter().filter(|x| x.reservation == r.reservation).count();
                            @let cold = held_lots.get(&r.reservation).and_then(|l| held_cold.get(l));
                            tr { td { (r.product) } td { (r.lot) } td { (r.expiry) } td.num { (r.qty) } td.num class=(if i64::try_from(n).unwrap_or(0) >= r.qty { "ok" } else { "" }) { (n) }
                                @if !held_cold.is_empty() { td.cold { (super::review_stock::cold_cell(cold)) } } }
                        } }
                    }
                    @if st == OrderState::Ready {
                        form #scan-pack data-api=(format!("/api/orders/{}/handover", o.id)) data-clear="code" data-key="p" {
                            label { "Scan each pack's 2D code " input name="code" required autofocus autocomplete="off" placeholder="GS1 code from the scanner"; }
                            button { "Check pack" } output {}
                        }
                    }
                    table #scans data-refresh="order" { tbody { @for (at, who, ok, msg) in &scan_log {
                        tr class=(if *ok { "ok" } else { "out" }) { td { (fmt_utc(*at)) } td { (who) } td { (if *ok { "accepted" } else { "refused" }) } td { (msg) } }
                    } } }
                }
            }
            section {
                h2 { "Lines" }
                table #lines {
                    thead { tr { th { "Product" } th { "GTIN" } th { "Packs" } th { "Dosage" } } }
                    tbody {
                        @if lines.is_empty() { tr { td colspan="4" { "No lines yet." } } }
                        @for l in &lines { tr { td { (l.name) @if l.controlled { " " span.badge { "controlled" } } } td { (l.gtin) } td.num { (l.packs) } td { (l.sig) } } }
                    }
                }
                @if st == OrderState::InReview {
                    form data-api=(format!("/api/orders/{}/lines", o.id)) data-next=(format!("/orders/{}", o.id)) data-key="l" {
                        input name="gtin" required placeholder="GTIN" inputmode="numeric";
                        input name="packs" type="number" min="1" value="1" required;
                        input name="sig" placeholder="Dosage, e.g. 1-0-1-0" maxlength="200";
                        button { "Add line" } output {}
                    }
                }
            }
            @if let Some(p) = &stock { (super::review_stock::section(p)) }
            section.actions {
                h2 { "Next step" }
                @match st {
                    OrderState::Received => { (button("start_review", "Start review")) }
                    OrderState::InReview => {
                        form data-api=(api) data-next=(format!("/orders/{}", o.id)) data-shape="approve" data-key="a" data-key-confirm="1" {
                            input type="hidden" name="action" value="approve";
                            @if lines.iter().any(|l| l.controlled) {
                                label { input type="checkbox" name="controlled_confirmed" value="true"; " I confirm the controlled substance a second time" }
                            }
                            @if checks.severe > 0 {
                                label.severe { "Reason to approve over " (checks.severe) " severe warning(s) (required)"
                                    input name="override_reason" required placeholder="Why this is right for this patient"; }
                            } @else {
                                input type="hidden" name="override_reason" value="";
                            }
                            button { "Approve and reserve stock" } output {}
                        }
                        form data-api=(api) data-next=(format!("/orders/{}", o.id)) {
                            input type="hidden" name="action" value="reject";
                            input name="reason" required placeholder="Reason for rejecting";
                            button { "Reject" } output {}
                        }
                        (button("release_review", "Give back to the queue"))
                    }
                    OrderState::Approved => { (button("start_filling", "Start filling")) }
                    OrderState::Filling => { (button("mark_ready", "Mark ready")) }
                    OrderState::Ready => { (button("pick_up", "Handed to the patient")) }
                    _ => { p { "This order is closed." } }
                }
                @if !st.is_final() {
                    form data-api=(api) data-next=(format!("/orders/{}", o.id)) {
                        input type="hidden" name="action" value="cancel";
                        input name="reason" required placeholder="Reason for cancelling";
                        button { "Cancel order" } output {}
                    }
                }
            }
            section #notifications data-refresh="order" {
                h2 { "Messages to the patient" }
                @if notes.is_empty() { p { "None sent." } }
                table { tbody { @for n in &notes {
                    tr class=(n.state.clone()) {
                        td { (fmt_utc(n.created_ms)) } td { (n.kind.replace('_', " ")) } td { (n.channel) " to " (n.recipient) }
                        td.state { (n.state) @if n.attempts > 1 || n.state == "failed" { " after " (n.attempts) " attempt(s)" } }
                        td { (n.last_error) }
                        td { @if n.state == "failed" {
                            form data-api=(format!("/api/notifications/{}/retry", n.id)) {
                                button { "Try again" } output {}
                            }
                        } }
                    }
                } } }
                @if !st.is_final() {
                    form data-api=(format!("/api/orders/{}/notify", o.id)) {
                        input type="hidden" name="kind" value="needs_word";
                        button { "Ask the patient to talk to the pharmacist" } output {}
                    }
                }
            }
            @if let Some(t) = &o.ticket { section { h2 { "Pickup ticket" } pre #ticket { (t) } } }
            section {
                h2 { "Audit trail" }
                table #trail {
                    thead { tr { th { "When (UTC)" } th { "Step" } th { "From → to" } th { "By" } th { "Reason" } } }
                    tbody {
                        @for (at, action, from, to, actor, reason) in &trail {
                            tr { td { (fmt_utc(*at)) } td { (action) } td { (state_label(from)) " → " (state_label(to)) } td { (actor) } td { (reason) } }
                        }
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::dosing;
    use rxedge_shared::payload::chmed::Medicament;

    #[test]
    fn chmed_doses_read_as_the_pharmacist_writes_them() -> Result<(), serde_json::Error> {
        let m: Medicament = serde_json::from_str(
            r#"{"Id":"x","IdType":2,"Pos":[{"D":[0.5,0,1,0]},{"D":[0.5,0,1,0]},{"InRes":1}]}"#,
        )?;
        assert_eq!(dosing(&m), "0.5-0-1-0; as needed");
        let none: Medicament = serde_json::from_str(r#"{"Id":"x","IdType":1}"#)?;
        assert_eq!(dosing(&none), "");
        Ok(())
    }
}
