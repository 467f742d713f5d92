//! Web: shared layout, the error type, the live feed (SSE), health and metrics,
//! and the first screen (kiosks and live events). Each bounded context adds
//! its own router; `router()` merges them over one state.

use crate::config::Config;
use crate::devices::{self, DeviceError};
use crate::metrics::Metrics;
use crate::store::Db;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup, DOCTYPE};
use rumqttc::AsyncClient;
use rxedge_shared::protocol::Envelope;
use rxedge_shared::sign::{self, SigningKey};
use rxedge_shared::{KioskId, StoreId};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt as _;

/// One item on the live feed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedItem {
    /// An event was committed.
    Event {
        /// Kiosk.
        kiosk: String,
        /// Sequence.
        seq: u64,
        /// Kind.
        kind: &'static str,
        /// Kiosk creation time (ms).
        created_ms: i64,
        /// Hub receive time (ms).
        received_ms: i64,
        /// Short human summary.
        summary: String,
        /// Replayed data.
        historical: bool,
    },
    /// A kiosk's status changed (heartbeat, presence, config).
    Kiosk {
        /// Kiosk.
        kiosk: String,
    },
    /// New fridge readings arrived.
    Coldchain {
        /// Fridges with new readings.
        fridges: Vec<String>,
    },
    /// An alarm was raised, changed or acknowledged.
    Alarm {
        /// Alarm id.
        id: String,
    },
    /// Stock moved, or a lot's status changed.
    Stock,
    /// An order arrived or changed.
    Order,
    /// An OCR job moved on.
    Ocr {
        /// Job id.
        job: String,
    },
}

impl FeedItem {
    /// Feed item for a committed event.
    pub fn event(kiosk: &str, env: &Envelope, received_ms: i64) -> Self {
        use rxedge_shared::protocol::Body;
        let summary = match &env.body {
            Body::QrScanned(q) => format!(
                "{} code, {} characters",
                if q.payload_kind.is_empty() {
                    "unknown"
                } else {
                    &q.payload_kind
                },
                q.text.len()
            ),
            Body::PaperCaptured(p) => format!(
                "paper page {} ({} KB)",
                &p.sha256.get(..12).unwrap_or(""),
                p.bytes / 1024
            ),
            Body::Telemetry(t) => format!("{} readings", t.readings.len()),
            Body::DeviceStatus(d) => {
                format!("{} {}", d.component, if d.ok { "ok" } else { "FAILED" })
            }
        };
        FeedItem::Event {
            kiosk: kiosk.to_owned(),
            seq: env.seq,
            kind: env.body.kind().as_str(),
            created_ms: env.created_ms,
            received_ms,
            summary,
            historical: env.historical,
        }
    }
    /// Feed item for a kiosk status change.
    pub fn kiosk(kiosk: &str) -> Self {
        FeedItem::Kiosk {
            kiosk: kiosk.to_owned(),
        }
    }
}

/// Shared state of every router.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// Store.
    pub db: Db,
    /// Configuration in force.
    pub cfg: Config,
    /// Store id.
    pub store: StoreId,
    /// Hub signing key (acks, config documents).
    pub key: Arc<SigningKey>,
    /// MQTT client (publishing configs).
    pub mqtt: AsyncClient,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Live feed.
    pub feed: broadcast::Sender<FeedItem>,
    /// Bumped when a kiosk's key or sequence gates change, so ingest reloads them.
    pub devices_changed: Arc<std::sync::atomic::AtomicU64>,
    /// The cold-chain worker.
    pub coldchain: tokio::sync::mpsc::Sender<crate::coldchain::service::Msg>,
    /// What the cold-chain worker knows about each fridge.
    pub fridges: crate::coldchain::service::Views,
    /// Turns true when the hub is stopping (ends live streams).
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// The store's name: the config's, or the one set in the first-run wizard.
    pub store_name: std::sync::RwLock<String>,
    /// The drug–drug interaction table the clinical checks use.
    pub interactions: Arc<rxedge_shared::clinical::InteractionTable>,
    /// The pharmacist's queue pages, rendered once per change of an order.
    pub queue: Arc<crate::page_cache::PageCache>,
    /// Other rendered pages (the review page), rendered once per change of
    /// anything: any write request, any feed item but a kiosk's status.
    pub pages: Arc<crate::page_cache::PageCache>,
    /// Wakes the patient-notification worker when a message is queued.
    pub notify_wake: Arc<tokio::sync::Notify>,
    /// Wakes the OCR workers when a job is queued.
    pub ocr_wake: Arc<tokio::sync::Notify>,
    /// Failed sign-ins per account and per address.
    pub throttle: std::sync::Mutex<crate::auth::throttle::Throttle>,
    /// Recently checked sessions.
    pub sessions: crate::auth::session::Cache,
    /// Who may log in to the embedded broker (None with an external broker).
    pub gate: Option<Arc<crate::broker::Gate>>,
    /// The hub's own MQTT login, if any (to close a revoked kiosk's connection).
    pub mqtt_login: Option<(String, String)>,
    /// Where the hub's own MQTT clients connect (the embedded broker's
    /// loopback port when TLS ends in front of it).
    pub broker_local: (String, u16),
    /// The hub's certificate and the CA kiosks pin, when TLS is on.
    pub tls: Option<Arc<crate::tls::Material>>,
}

impl Inner {
    /// The store's name as staff and patients see it.
    pub fn store_name(&self) -> String {
        self.store_name
            .read()
            .map(|n| n.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Rename the store (the wizard stores it in settings too).
    pub fn set_store_name(&self, name: &str) {
        let mut n = self.store_name.write().unwrap_or_else(|e| e.into_inner());
        *n = name.to_owned();
    }
}

/// The one web error type: internal errors are logged and shown as a plain message.
#[derive(Debug)]
pub enum AppError {
    /// The request is wrong; the message says how.
    BadRequest(String),
    /// Not found.
    NotFound(String),
    /// Not signed in, or the sign-in failed.
    Unauthorized(String),
    /// Not allowed.
    Forbidden(String),
    /// The thing is in a state that forbids this (stock on hold, …).
    Conflict(String),
    /// Our fault; details go to the log only.
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m),
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the hub. It has been logged; please try again."
                        .to_owned(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

impl From<DeviceError> for AppError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::NotFound(m) => AppError::NotFound(format!("no kiosk {m}")),
            DeviceError::BadCode | DeviceError::Invalid(_) | DeviceError::AlreadyEnrolled(_) => {
                AppError::BadRequest(e.to_string())
            }
            DeviceError::Store(s) => AppError::Internal(s.to_string()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        // SQLSTATE class 22 (data exception, e.g. a NUL byte PostgreSQL
        // cannot keep in text) is the request's fault, not ours.
        let data = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c.starts_with("22"));
        if data {
            tracing::info!(error = %e, "value refused by the store");
            return AppError::BadRequest(
                "a value has characters or a size the store cannot keep".into(),
            );
        }
        AppError::Internal(e.to_string())
    }
}

use rxedge_shared::clock::system_now_ms as now_ms;

/// The page frame every screen shares.
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · RxEdge" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header { nav { a href="/" { "RxEdge hub" } " " a href="/coldchain" { "Fridges" } " " a href="/coldchain/alarms" { "Alarms" } " " a href="/orders" { "Orders" } " " a href="/ocr" { "Paper" } " " a href="/patients" { "Patients" } " " a href="/billing" { "Billing" } " " a href="/analytics" { "Analytics" } " " a href="/inventory" { "Stock" } " " a href="/inventory/holds" { "On hold" } " " a href="/catalog" { "Catalog" } " " a href="/dead-letters" { "Dead letters" } " " a href="/metrics" { "Metrics" } " " a href="/admin/users" { "Accounts" } " " a href="/admin/audit" { "Audit" } " " span #me {} } }
                main { (body) }
            }
        }
    }
}

/// A timestamp as `YYYY-MM-DD HH:MM` UTC (screens that say "(UTC)" and CSV exports).
pub fn fmt_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn fmt_ms(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => "never".into(),
    }
}

fn kiosk_table(kiosks: &[devices::Kiosk], stale_ms: i64, now: i64) -> Markup {
    html! {
        table #kiosks {
            thead { tr { th { "Kiosk" } th { "Status" } th { "Last seen" } th { "Outbox" } th { "Oldest" } th { "Config" } th {} } }
            tbody {
                @if kiosks.is_empty() { tr { td colspan="6" { "No kiosks yet. Run " code { "rxedge-hub kiosk add NAME" } "." } } }
                @for k in kiosks {
                    @let stale = k.last_seen_ms.is_none_or(|t| now - t > stale_ms);
                    @let status = if k.revoked { "revoked" } else if k.public_key.is_none() { "awaiting enrollment" } else if k.online && !stale { "online" } else { "offline" };
                    tr data-kiosk=(k.id) class=(status.replace(' ', "-")) {
                        td { strong { (k.name) } br; small { (k.id) } }
                        td.status { (status) }
                        td { (fmt_ms(k.last_seen_ms)) }
                        td { @if let Some(o) = k.outbox { (o.queued + o.inflight) " waiting" @if o.dropped > 0 { ", " (o.dropped) " dropped" } } @else { "–" } }
                        td { @if let Some(a) = k.outbox.and_then(|o| o.oldest_age_ms) { (a / 1000) " s" } @else { "–" } }
                        td { @if k.config_lags() { span.lag { "v" (k.running_version.map_or("?".into(), |v| v.to_string())) " → v" (k.config_version) " (lagging)" } } @else { "v" (k.config_version) } }
                        td { @if !k.revoked && k.public_key.is_some() {
                            form.revoke data-api=(format!("/api/kiosks/{}/revoke", k.id)) data-next="/" {
                                button type="submit" title="A lost or stolen kiosk: refuse its events and uploads" { "Revoke" } output {}
                            }
                        } }
                    }
                }
            }
        }
    }
}

async fn home(State(s): State<AppState>) -> Result<Markup, AppError> {
    let kiosks = devices::list(&s.0.db).await?;
    let stale = i64::from(s.0.cfg.kiosk_defaults.stale_after_secs) * 1000;
    let recent = sqlx::query("SELECT kiosk_id, seq, kind, created_ms, received_ms FROM events ORDER BY commit_id DESC LIMIT 25")
        .fetch_all(&s.0.db.pool)
        .await?;
    Ok(layout(
        "Kiosks",
        html! {
            h1 { (s.0.store_name()) }
            section { h2 { "Kiosks" } div #kiosk-table data-src="/fragments/kiosks" { (kiosk_table(&kiosks, stale, now_ms())) } }
            section {
                h2 { "Live events" }
                ol #feed data-stream="/events/stream" {
                    @for r in &recent {
                        li {
                            (r.try_get::<String, _>("kiosk_id").unwrap_or_default()) " #" (r.try_get::<i64, _>("seq").unwrap_or_default()) " "
                            (r.try_get::<String, _>("kind").unwrap_or_default()) " · " (fmt_ms(r.try_get::<i64, _>("received_ms").ok()))
                        }
                    }
                }
            }
        },
    ))
}

async fn kiosks_fragment(State(s): State<AppState>) -> Result<Markup, AppError> {
    let kiosks = devices::list(&s.0.db).await?;
    Ok(kiosk_table(
        &kiosks,
        i64::from(s.0.cfg.kiosk_defaults.stale_after_secs) * 1000,
        now_ms(),
    ))
}

async fn stream(
    State(s): State<AppState>,
) -> Sse<impl tokio_stream::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let rx = BroadcastStream::new(s.0.feed.subscribe());
    let mut closing = s.0.closing.clone();
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let st = futures::StreamExt::take_until(rx, closed).filter_map(|item| {
        let item = item.ok()?;
        let name = match &item {
            FeedItem::Event { .. } => "event",
            FeedItem::Kiosk { .. } => "kiosk",
            FeedItem::Coldchain { .. } => "coldchain",
            FeedItem::Alarm { .. } => "alarm",
            FeedItem::Stock => "stock",
            FeedItem::Order => "order",
            FeedItem::Ocr { .. } => "ocr",
        };
        let data = serde_json::to_string(&item).ok()?;
        Some(Ok(SseEvent::default().event(name).data(data)))
    });
    Sse::new(st).keep_alive(KeepAlive::default())
}

async fn healthz(State(s): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = sqlx::query("SELECT 1").execute(&s.0.db.pool).await {
        problems.push(format!("database: {e}"));
    }
    if s.0.metrics.mqtt_connected.get() == 0 {
        problems.push("not connected to the MQTT broker".to_owned());
    }
    // Warnings: the hub itself works, but someone should look.
    let mut warnings = Vec::new();
    if let Ok(kiosks) = devices::list(&s.0.db).await {
        for k in kiosks
            .iter()
            .filter(|k| k.public_key.is_some() && !k.revoked && !k.online)
        {
            warnings.push(format!("kiosk {} is offline", k.id));
        }
    }
    if let Ok(n) = sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM alarms WHERE state = 'active'",
    )
    .fetch_one(&s.0.db.pool)
    .await
    {
        if n > 0 {
            warnings.push(format!("{n} cold-chain alarm(s) not acknowledged"));
        }
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(serde_json::json!({ "status": if problems.is_empty() { "ok" } else { "degraded" }, "problems": problems, "warnings": warnings }))).into_response()
}

/// A request that may have written (anything but GET and HEAD) makes every
/// cached page stale once it is answered, so after its commit: the one
/// path all screen and API writes share (see [`crate::page_cache`]).
pub async fn writes_invalidate(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let r = next.run(req).await;
    if !safe {
        s.0.pages.invalidate();
    }
    r
}

/// Times every request for `rxedge_hub_http_request_seconds` (to the response head).
pub async fn observe(
    State(m): State<Arc<crate::metrics::Metrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let t = std::time::Instant::now();
    let r = next.run(req).await;
    m.http_seconds.observe(t.elapsed().as_secs_f64());
    r
}

async fn metrics(State(s): State<AppState>) -> Result<Response, AppError> {
    let kiosks: Vec<(String, bool, u64, f64)> = devices::list(&s.0.db)
        .await?
        .into_iter()
        .filter(|k| k.public_key.is_some())
        .map(|k| {
            let o = k.outbox.unwrap_or_default();
            (
                k.id,
                k.online,
                o.queued + o.inflight,
                o.oldest_age_ms.unwrap_or(0) as f64 / 1000.0,
            )
        })
        .collect();
    let alarms: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, CAST(COUNT(*) AS BIGINT) FROM alarms WHERE state <> 'cleared' GROUP BY state",
    )
    .fetch_all(&s.0.db.pool)
    .await?;
    let mut text = s.0.metrics.render(&kiosks);
    let (queued, running, failed, oldest) = crate::ocr::jobs::depth(&s.0.db, now_ms()).await?;
    let _ = writeln!(
        text,
        "# HELP rxedge_hub_ocr_jobs OCR jobs not done, by state.\n# TYPE rxedge_hub_ocr_jobs gauge\n\
         rxedge_hub_ocr_jobs{{state=\"queued\"}} {queued}\nrxedge_hub_ocr_jobs{{state=\"running\"}} {running}\n\
         rxedge_hub_ocr_jobs{{state=\"failed\"}} {failed}\n\
         # HELP rxedge_hub_ocr_oldest_queued_seconds Age of the oldest queued OCR job.\n# TYPE rxedge_hub_ocr_oldest_queued_seconds gauge\n\
         rxedge_hub_ocr_oldest_queued_seconds {oldest}"
    );
    text.push_str("# HELP rxedge_hub_alarms Cold-chain alarms not yet cleared, by state.\n# TYPE rxedge_hub_alarms gauge\n");
    for state in ["active", "acknowledged"] {
        let n = alarms.iter().find(|(s, _)| s == state).map_or(0, |a| a.1);
        let _ = writeln!(text, "rxedge_hub_alarms{{state=\"{state}\"}} {n}");
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Enrollment request from a kiosk.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// Kiosk id registered with `kiosk add`.
    pub kiosk_id: String,
    /// One-time code.
    pub code: String,
    /// Kiosk's base64 Ed25519 public key.
    pub public_key: String,
}

/// What an enrolled kiosk needs to know.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// Store id.
    pub store_id: String,
    /// Kiosk id.
    pub kiosk_id: String,
    /// Broker URL.
    pub broker_url: String,
    /// Hub's base64 public key (verifies acks and config).
    pub hub_public_key: String,
}

/// The CA certificate kiosks pin. Public: a kiosk fetches it before it
/// trusts anything, and checks it against the fingerprint it was given.
async fn hub_ca(State(s): State<AppState>) -> Result<Response, AppError> {
    match &s.0.tls {
        Some(t) => Ok((
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            t.ca_pem.clone(),
        )
            .into_response()),
        None => Err(AppError::NotFound(
            "TLS is off on this hub (tls.mode)".into(),
        )),
    }
}

async fn enroll(
    State(s): State<AppState>,
    Json(req): Json<EnrollRequest>,
) -> Result<Json<EnrollResponse>, AppError> {
    let id =
        KioskId::new(req.kiosk_id).map_err(|e| AppError::BadRequest(format!("kiosk id: {e}")))?;
    let key = sign::decode_public(&req.public_key)
        .map_err(|e| AppError::BadRequest(format!("public key: {e}")))?;
    let now = now_ms();
    let initial = devices::initial_config(
        &s.0.store,
        &id,
        &s.0.store_name(),
        &s.0.cfg.kiosk_defaults,
        now,
    );
    devices::enroll_with_code(&s.0.db, &id, &req.code, &key, &initial, now).await?;
    tracing::info!(kiosk = %id, "kiosk enrolled");
    s.0.devices_changed
        .fetch_add(1, std::sync::atomic::Ordering::Release);
    // Its broker login works from now, not from the next periodic reload.
    if let Some(g) = &s.0.gate {
        g.reload(&s.0.db).await?;
    }
    // The key is stored and the code used: a failed publish must not fail the
    // enrollment. The hub republishes every config when it reconnects.
    if let Err(e) = publish_current_config(&s, id.as_str()).await {
        tracing::warn!(kiosk = %id, error = ?e, "config not published after enrollment");
    }
    let _ = s.0.feed.send(FeedItem::kiosk(id.as_str()));
    Ok(Json(EnrollResponse {
        store_id: s.0.store.to_string(),
        kiosk_id: id.to_string(),
        broker_url: s.0.cfg.broker.public_url.clone(),
        hub_public_key: sign::encode_public(&s.0.key.verifying_key()),
    }))
}

async fn publish_current_config(s: &AppState, id: &str) -> Result<(), AppError> {
    if let Some(cfg) = devices::config(&s.0.db, id).await? {
        crate::ingest::publish_config(&s.0.mqtt, &s.0.store, &s.0.key, &cfg)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    Ok(())
}

/// `POST /api/kiosks/{id}/revoke` (administrators; the guard records who).
async fn revoke_kiosk(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    devices::revoke(&s.0.db, &id).await?;
    // Ingest drops its cached key and gate, so the next event is refused.
    s.0.devices_changed
        .fetch_add(1, std::sync::atomic::Ordering::Release);
    // The broker refuses its next login, and its current connection is closed.
    if let Some(g) = &s.0.gate {
        g.reload(&s.0.db).await?;
    }
    let (host, port) = &s.0.broker_local;
    let closed = crate::broker::kick(
        host,
        *port,
        &rxedge_shared::topics::kiosk_client_id(s.0.store.as_str(), &id),
        s.0.mqtt_login.clone(),
    )
    .await;
    let _ = s.0.feed.send(FeedItem::kiosk(&id));
    tracing::warn!(kiosk = %id, connection_closed = closed, "kiosk revoked");
    Ok(Json(serde_json::json!({
        "message": format!("Kiosk {id} is revoked: its events and uploads are refused. Enroll it again with a new code to bring it back."),
    })))
}

async fn list_kiosks(State(s): State<AppState>) -> Result<Json<Vec<devices::Kiosk>>, AppError> {
    Ok(Json(devices::list(&s.0.db).await?))
}

async fn get_config(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<rxedge_shared::protocol::KioskConfig>, AppError> {
    devices::config(&s.0.db, &id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no config for kiosk {id}")))
}

async fn edit_config(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(edit): Json<devices::ConfigEdit>,
) -> Result<Json<rxedge_shared::protocol::KioskConfig>, AppError> {
    Ok(Json(apply_config_edit(&s, &id, edit).await?))
}

/// Validate, store and publish a kiosk config change; the cold-chain worker reloads its rules.
pub async fn apply_config_edit(
    s: &AppState,
    id: &str,
    edit: devices::ConfigEdit,
) -> Result<rxedge_shared::protocol::KioskConfig, AppError> {
    if let Some(fridges) = &edit.fridges {
        for f in fridges {
            f.validate()
                .map_err(|e| AppError::BadRequest(e.to_string()))?;
        }
    }
    let cfg = devices::edit_config(&s.0.db, id, edit, now_ms()).await?;
    let _ =
        s.0.coldchain
            .send(crate::coldchain::service::Msg::RulesChanged)
            .await;
    crate::ingest::publish_config(&s.0.mqtt, &s.0.store, &s.0.key, &cfg)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    tracing::info!(kiosk = %id, version = cfg.version, "kiosk config published");
    let _ = s.0.feed.send(FeedItem::kiosk(id));
    Ok(cfg)
}

async fn dead_letters(State(s): State<AppState>) -> Result<Markup, AppError> {
    let counts = crate::ingest::dead_letter_counts(&s.0.db).await?;
    let rows = sqlx::query("SELECT received_ms, topic, kiosk_id, reason, detail FROM dead_letters ORDER BY id DESC LIMIT 200")
        .fetch_all(&s.0.db.pool)
        .await?;
    Ok(layout(
        "Dead letters",
        html! {
            h1 { "Dead letters" }
            p { "Messages the hub refused to commit, kept with the reason. Nothing here was lost: the bytes are stored." }
            ul { @for (r, n) in &counts { li { (r) ": " (n) } } }
            table {
                thead { tr { th { "When" } th { "Kiosk" } th { "Reason" } th { "Detail" } th { "Topic" } } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { (fmt_ms(r.try_get::<i64, _>("received_ms").ok())) }
                            td { (r.try_get::<Option<String>, _>("kiosk_id").ok().flatten().unwrap_or_default()) }
                            td { (r.try_get::<String, _>("reason").unwrap_or_default()) }
                            td { (r.try_get::<String, _>("detail").unwrap_or_default()) }
                            td { code { (r.try_get::<String, _>("topic").unwrap_or_default()) } }
                        }
                    }
                }
            }
        },
    ))
}

async fn static_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/app.css"),
    )
        .into_response()
}

async fn static_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/app.js"),
    )
        .into_response()
}

/// This context's routes.
pub fn router(max_image_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/fragments/kiosks", get(kiosks_fragment))
        .route("/events/stream", get(stream))
        .route("/healthz", get(healthz))
        // The baseline `scripts/bench/web` compares the screens against.
        .route("/bench/hello", get(|| async { "Hello, World!" }))
        .route("/metrics", get(metrics))
        .route("/dead-letters", get(dead_letters))
        .route("/api/enroll", post(enroll))
        .route("/api/tls/ca.pem", get(hub_ca))
        .route("/api/kiosks", get(list_kiosks))
        .route("/api/kiosks/{id}/config", get(get_config).post(edit_config))
        .route("/api/kiosks/{id}/revoke", post(revoke_kiosk))
        .route("/static/app.css", get(static_css))
        .route("/static/app.js", get(static_js))
        .merge(crate::coldchain::web::router())
        .merge(crate::catalog::web::router())
        .merge(crate::inventory::web::router())
        .merge(crate::orders::web::router())
        .merge(crate::patients::web::router())
        .merge(crate::billing::web::router())
        .merge(crate::analytics::router())
        .merge(crate::auth::web::router())
        .merge(crate::audit::web::router())
        .merge(crate::blobs::router(max_image_bytes))
        .merge(crate::ocr::web::router(max_image_bytes))
}
