//! The kiosk's local HTTP surface on loopback: status, health, metrics and the
//! API the patient screen (and tests) use to record events.

use crate::driver::{EnqueueError, Handle};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rxedge_shared::outbox::AdmitError;
use rxedge_shared::protocol::{Body, QrScanned};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// State of the local routes.
#[derive(Clone)]
pub struct UiState {
    /// Driver handle.
    pub handle: Handle,
    /// Fridge watch status.
    pub fridges: tokio::sync::watch::Receiver<crate::fridge::WatchStatus>,
    /// Simulated fridges' scenarios.
    pub sim_fridges: crate::fridge::sim::SimControl,
    /// The simulator's camera.
    pub sim_camera: crate::camera::SimCamera,
    /// Scanner status.
    pub scan_status: tokio::sync::watch::Receiver<crate::scanner::ScanStatus>,
    /// What the camera looks for.
    pub scan_mode: Arc<tokio::sync::watch::Sender<crate::scanner::Mode>>,
    /// Paper images waiting for the hub.
    pub papers: crate::upload::PaperStore,
    /// Simulator endpoints enabled.
    pub simulate: bool,
    /// Kiosk id, for the page.
    pub kiosk: Arc<str>,
    /// Availability questions to the hub.
    pub asker: crate::availability::Asker,
    /// The camera's live picture.
    pub preview: crate::scanner::Preview,
    /// Timings for `/metrics`.
    pub metrics: Arc<KioskMetrics>,
    /// A camera is configured (or simulated), so its absence is a problem.
    pub camera_configured: bool,
}

/// Kiosk timings served on `/metrics`.
#[derive(Debug, Default)]
pub struct KioskMetrics {
    /// Time to decode one camera frame for QR codes.
    pub qr_decode_seconds: rxedge_shared::metrics::Histogram,
    /// Local HTTP request latency.
    pub http_seconds: rxedge_shared::metrics::Histogram,
}

/// Times every request, and keeps `/metrics` to this machine: it says how many
/// prescriptions wait, which is nobody else's business.
async fn observe(
    State(m): State<Arc<KioskMetrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path() == "/metrics" {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if peer.is_some_and(|ip| !ip.is_loopback()) {
            return (
                StatusCode::FORBIDDEN,
                "metrics are served to this machine only",
            )
                .into_response();
        }
    }
    let t = std::time::Instant::now();
    let r = next.run(req).await;
    m.http_seconds.observe(t.elapsed().as_secs_f64());
    r
}

fn error(e: EnqueueError) -> Response {
    // The patient never sees an error code: the screen maps these to plain words.
    let (status, msg) = match e {
        EnqueueError::Admit(AdmitError::Full) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "This kiosk cannot save more prescriptions right now. Please see the pharmacist.",
        ),
        EnqueueError::Admit(_) => (
            StatusCode::OK,
            "Reading not kept: the kiosk is full of undelivered data.",
        ),
        EnqueueError::TooLarge(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "This scan is too large to send. Please hand the paper to the pharmacist.",
        ),
        EnqueueError::Closed => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The kiosk is restarting. Please try again in a moment.",
        ),
        EnqueueError::Store(_) | EnqueueError::Sign(_) => {
            tracing::error!(error = %e, "event not stored");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong. Please see the pharmacist.",
            )
        }
    };
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

async fn home() -> Html<&'static str> {
    Html(include_str!("../static/patient.html"))
}

async fn patient_js() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../static/patient.js"),
    )
        .into_response()
}

async fn patient_css() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/patient.css"),
    )
        .into_response()
}

/// Everything the patient screen needs, in one small document.
async fn patient(State(s): State<UiState>) -> Json<serde_json::Value> {
    let st = s.handle.status.borrow().clone();
    let scan = s.scan_status.borrow().clone();
    let (store_name, languages, features) = match &st.config {
        Some(c) => (
            c.store_name.clone(),
            c.languages.clone(),
            serde_json::to_value(c.features).unwrap_or_default(),
        ),
        None => (
            "Pharmacy".to_owned(),
            vec!["en".into(), "de".into(), "fr".into(), "it".into()],
            serde_json::json!({}),
        ),
    };
    Json(serde_json::json!({
        "store_name": store_name,
        "languages": languages,
        "features": features,
        "online": st.connected && st.hub_online,
        "camera_ok": scan.camera_ok,
        "chunks": scan.chunks,
        "paper": scan.paper,
        "mode": *s.scan_mode.borrow(),
        "last": scan.last,
    }))
}

async fn status(State(s): State<UiState>) -> Json<crate::driver::Status> {
    Json(s.handle.status.borrow().clone())
}

async fn fridges(State(s): State<UiState>) -> Json<crate::fridge::WatchStatus> {
    Json(s.fridges.borrow().clone())
}

#[derive(serde::Deserialize)]
struct SetScenario {
    fridge: String,
    scenario: crate::fridge::sim::Scenario,
}

async fn sim_fridge(State(s): State<UiState>, Json(r): Json<SetScenario>) -> Response {
    if !s.simulate {
        return (StatusCode::NOT_FOUND, "simulator not enabled").into_response();
    }
    let now = rxedge_shared::clock::system_now_ms();
    if s.sim_fridges.set(&r.fridge, r.scenario, now) {
        Json(serde_json::json!({ "fridge": r.fridge, "scenario": r.scenario })).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            format!("no simulated fridge {}", r.fridge),
        )
            .into_response()
    }
}

async fn paper_start(State(s): State<UiState>) -> Json<serde_json::Value> {
    s.scan_mode.send_replace(crate::scanner::Mode::Paper);
    Json(serde_json::json!({ "mode": "paper" }))
}

async fn paper_stop(State(s): State<UiState>) -> Json<serde_json::Value> {
    s.scan_mode.send_replace(crate::scanner::Mode::Qr);
    Json(serde_json::json!({ "mode": "qr" }))
}

async fn scanner(State(s): State<UiState>) -> Json<crate::scanner::ScanStatus> {
    let mut st = s.scan_status.borrow().clone();
    st.paper_waiting = s.papers.waiting();
    Json(st)
}

#[derive(serde::Deserialize)]
struct Show {
    /// Render this text as a QR code…
    text: Option<String>,
    /// …or show this image file.
    path: Option<std::path::PathBuf>,
    #[serde(default = "default_hold")]
    hold_ms: u64,
    /// Model a camera photo of it (indoor light, no pure white) rather than a perfect render.
    #[serde(default)]
    as_photo: bool,
    /// First take away what is in front of the camera (the patient puts the
    /// last code down); alone, just that.
    #[serde(default)]
    clear: bool,
}

fn default_hold() -> u64 {
    1500
}

/// Hold something in front of the simulated camera.
async fn sim_show(State(s): State<UiState>, Json(r): Json<Show>) -> Response {
    if !s.simulate {
        return (StatusCode::NOT_FOUND, "simulator not enabled").into_response();
    }
    if r.clear {
        s.sim_camera.clear();
        if r.text.is_none() && r.path.is_none() {
            return Json(serde_json::json!({ "cleared": true })).into_response();
        }
    }
    let img = match (r.text, r.path) {
        (Some(t), _) => crate::camera::SimCamera::render_qr(&t),
        (None, Some(p)) => image::open(&p)
            .map(|i| i.to_luma8())
            .map_err(|e| format!("{}: {e}", p.display())),
        (None, None) => Err("give text or path".into()),
    };
    let img = img.map(|i| {
        if r.as_photo {
            crate::camera::SimCamera::as_photo(&i)
        } else {
            i
        }
    });
    match img {
        Ok(img) => {
            s.sim_camera
                .show(img, std::time::Duration::from_millis(r.hold_ms));
            Json(serde_json::json!({ "shown": true })).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct CameraPlug {
    unplugged: bool,
}

async fn sim_camera(State(s): State<UiState>, Json(r): Json<CameraPlug>) -> Response {
    if !s.simulate {
        return (StatusCode::NOT_FOUND, "simulator not enabled").into_response();
    }
    s.sim_camera.set_unplugged(r.unplugged);
    Json(serde_json::json!({ "unplugged": r.unplugged })).into_response()
}

/// Outbox age past which `/healthz` reports a backlog (the alert rule's figure).
const BACKLOG_SECS: i64 = 300;

async fn healthz(State(s): State<UiState>) -> Response {
    let st = s.handle.status.borrow().clone();
    let mut problems: Vec<String> = Vec::new();
    if !st.connected {
        problems.push("not connected to the broker: events wait in the outbox".into());
    } else if !st.hub_online {
        problems.push("hub offline: events wait in the outbox".into());
    }
    let oldest = st.outbox.oldest_age_ms.unwrap_or(0) / 1000;
    if oldest > BACKLOG_SECS {
        problems.push(format!(
            "outbox backing up: {} event(s) waiting, the oldest for {oldest} s",
            st.outbox.queued + st.outbox.inflight
        ));
    }
    let scan = s.scan_status.borrow().clone();
    if s.camera_configured && !scan.camera_ok {
        problems.push(format!(
            "camera out of order: {}",
            scan.camera_problem.unwrap_or_else(|| "no frames".into())
        ));
    }
    let alarms = s.fridges.borrow().active_alarms.clone();
    if !alarms.is_empty() {
        problems.push(format!("cold-chain alarm(s) active: {}", alarms.join(", ")));
    }
    let code = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(serde_json::json!({ "status": if problems.is_empty() { "ok" } else { "degraded" }, "problems": problems, "outbox": st.outbox }))).into_response()
}

async fn metrics(State(s): State<UiState>) -> Response {
    let st = s.handle.status.borrow().clone();
    let c = &s.handle.counters;
    let mut o = String::new();
    let mut g = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    };
    g(
        "rxedge_kiosk_outbox_queued",
        "gauge",
        "Events stored, not sent in this connection.",
        st.outbox.queued as f64,
    );
    g(
        "rxedge_kiosk_outbox_inflight",
        "gauge",
        "Events sent, awaiting the hub's ack.",
        st.outbox.inflight as f64,
    );
    g(
        "rxedge_kiosk_outbox_acked_total",
        "counter",
        "Events acked by the hub.",
        st.outbox.acked as f64,
    );
    g(
        "rxedge_kiosk_outbox_dropped_total",
        "counter",
        "Telemetry dropped because the outbox was full.",
        st.outbox.dropped as f64,
    );
    g(
        "rxedge_kiosk_outbox_oldest_seconds",
        "gauge",
        "Age of the oldest unacked event.",
        st.outbox.oldest_age_ms.unwrap_or(0) as f64 / 1000.0,
    );
    g(
        "rxedge_kiosk_mqtt_connected",
        "gauge",
        "1 when connected to the broker.",
        f64::from(u8::from(st.connected)),
    );
    g(
        "rxedge_kiosk_events_enqueued_total",
        "counter",
        "Events stored durably.",
        c.enqueued.load(Ordering::Relaxed) as f64,
    );
    g(
        "rxedge_kiosk_publishes_total",
        "counter",
        "Event publishes including resends.",
        c.published.load(Ordering::Relaxed) as f64,
    );
    g(
        "rxedge_kiosk_bad_acks_total",
        "counter",
        "Acks refused for a bad signature.",
        c.bad_acks.load(Ordering::Relaxed) as f64,
    );
    g(
        "rxedge_kiosk_alarms_active",
        "gauge",
        "Cold-chain alarms active on this kiosk's engine.",
        s.fridges.borrow().active_alarms.len() as f64,
    );
    s.metrics.qr_decode_seconds.render(
        "rxedge_kiosk_qr_decode_seconds",
        "Time to decode one camera frame for QR codes.",
        &mut o,
    );
    s.metrics.http_seconds.render(
        "rxedge_kiosk_http_request_seconds",
        "Local HTTP request latency.",
        &mut o,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], o).into_response()
}

async fn post_event(State(s): State<UiState>, Json(body): Json<Body>) -> Response {
    match s.handle.enqueue(body, false).await {
        Ok(st) => (StatusCode::CREATED, Json(st)).into_response(),
        Err(e) => error(e),
    }
}

/// A burst of simulated scans.
#[derive(Debug, Deserialize)]
pub struct Burst {
    /// How many.
    pub count: u32,
    /// Text prefix (the index is appended).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Events per second; absent or 0 means as fast as possible.
    #[serde(default)]
    pub rate_per_sec: u32,
}

async fn burst(State(s): State<UiState>, Json(b): Json<Burst>) -> Response {
    if !s.simulate {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "simulator is off" })),
        )
            .into_response();
    }
    let prefix = b.prefix.unwrap_or_else(|| "SIM".into());
    // Enqueue concurrently so the driver can group-commit many events per flush.
    let mut set = tokio::task::JoinSet::new();
    let mut tick = (b.rate_per_sec > 0).then(|| {
        let mut t = tokio::time::interval(std::time::Duration::from_secs_f64(
            1.0 / f64::from(b.rate_per_sec),
        ));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    for i in 0..b.count {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let h = s.handle.clone();
        let text = format!("{prefix}-{i}");
        set.spawn(async move {
            h.enqueue(
                Body::QrScanned(QrScanned {
                    text,
                    payload_kind: "unknown".into(),
                }),
                false,
            )
            .await
        });
    }
    let mut stored = 0u32;
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(_)) => stored += 1,
            Ok(Err(e)) => first_err = first_err.or(Some(e.to_string())),
            Err(e) => first_err = first_err.or(Some(e.to_string())),
        }
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({ "stored": stored, "error": first_err })),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct AvailQ {
    q: String,
}

/// Is it in stock, and what does it cost? Live from the hub, or the last
/// known answer marked `cached` while the hub is away.
async fn availability(
    State(s): State<UiState>,
    axum::extract::Query(q): axum::extract::Query<AvailQ>,
) -> Json<crate::availability::Availability> {
    Json(s.asker.ask(&q.q, std::time::Duration::from_secs(3)).await)
}

#[derive(serde::Deserialize)]
struct OrderQ {
    id: String,
}

/// "Collect my order": the status of the order on a verified pickup ticket.
async fn order_status(
    State(s): State<UiState>,
    axum::extract::Query(q): axum::extract::Query<OrderQ>,
) -> Json<crate::availability::Availability> {
    Json(
        s.asker
            .ask_order(&q.id, std::time::Duration::from_secs(3))
            .await,
    )
}

/// The camera's live picture for the patient screen (204 while nothing is in view).
async fn preview(State(s): State<UiState>) -> Response {
    match s.preview.get() {
        Some(jpeg) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            jpeg,
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// The local router.
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/api/status", get(status))
        .route("/api/outbox", get(status))
        .route("/api/events", post(post_event))
        .route("/api/sim/burst", post(burst))
        .route("/api/fridges", get(fridges))
        .route("/api/scanner", get(scanner))
        .route("/api/patient", get(patient))
        .route("/api/availability", get(availability))
        .route("/api/order-status", get(order_status))
        .route("/api/preview.jpg", get(preview))
        .route("/api/paper/start", post(paper_start))
        .route("/api/paper/stop", post(paper_stop))
        .route("/static/patient.js", get(patient_js))
        .route("/static/patient.css", get(patient_css))
        .route("/api/sim/show", post(sim_show))
        .route("/api/sim/camera", post(sim_camera))
        .route("/api/sim/fridge", post(sim_fridge))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            observe,
        ))
        .with_state(state)
}
