//! OCR screens and API: desk uploads (PNG, JPEG, PDF), the job list with
//! live progress, each draft over its image with the fields boxed, and
//! full-text search.

use super::jobs::{self, Job};
use crate::web::{fmt_utc, layout, AppError, AppState};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use rxedge_shared::clock::system_now_ms as now_ms;

/// Routes of this context. Uploads may be as large as a kiosk's page.
pub fn router(max_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/ocr", get(page))
        .route("/ocr/upload", post(upload_form))
        .route("/ocr/jobs/{id}", get(job_page))
        .route("/ocr/jobs/{id}/image", get(image))
        .route("/ocr/jobs/{id}/retry", post(retry))
        .route("/api/ocr/jobs", post(upload_api).get(list_api))
        .route("/api/ocr/jobs/{id}", get(job_api))
        .route("/api/ocr/jobs/{id}/fields", post(correct_field))
        .route("/api/ocr/search", get(search_api))
        .layer(DefaultBodyLimit::max(max_bytes.saturating_add(64 * 1024)))
}

/// What the bytes are, by their first bytes (never by the name).
fn kind_of(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if b.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// Stores an upload and queues its job.
async fn accept(s: &AppState, bytes: Vec<u8>, filename: &str) -> Result<String, AppError> {
    let max = s.0.cfg.ingest.max_image_bytes;
    if bytes.is_empty() {
        return Err(AppError::BadRequest("the file is empty".into()));
    }
    if bytes.len() > max {
        return Err(AppError::BadRequest(format!(
            "the file is {} bytes; the limit is {max} bytes",
            bytes.len()
        )));
    }
    if kind_of(&bytes).is_none() {
        return Err(AppError::BadRequest(
            "this is not a PNG, JPEG or PDF file".into(),
        ));
    }
    let sha = format!("{:x}", Sha256::digest(&bytes));
    crate::blobs::write(&s.0.cfg.paths.state_dir, &sha, bytes).await?;
    let name: String = filename
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let mut conn = s.0.db.pool.acquire().await?;
    let id = jobs::enqueue(&mut conn, None, &sha, &name, "upload", now_ms()).await?;
    drop(conn);
    s.0.ocr_wake.notify_waiters();
    let _ = s.0.feed.send(crate::web::FeedItem::Ocr { job: id.clone() });
    tracing::info!(job = %id, %sha, file = %name, "OCR upload queued");
    Ok(id)
}

#[derive(Deserialize)]
struct UploadQ {
    #[serde(default)]
    filename: String,
}

/// `POST /api/ocr/jobs?filename=…` with the file as the body → `{"id"}`.
async fn upload_api(
    State(s): State<AppState>,
    Query(q): Query<UploadQ>,
    body: Bytes,
) -> Result<Response, AppError> {
    let id = accept(&s, body.to_vec(), &q.filename).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

async fn upload_form(State(s): State<AppState>, mut mp: Multipart) -> Result<Response, AppError> {
    let mut file = None;
    while let Some(f) = mp
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?
    {
        let name = f.file_name().unwrap_or("").to_string();
        let b = f
            .bytes()
            .await
            .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?;
        file = Some((name, b.to_vec()));
    }
    let (name, bytes) = file.ok_or_else(|| AppError::BadRequest("no file in the upload".into()))?;
    let id = accept(&s, bytes, &name).await?;
    Ok(Redirect::to(&format!("/ocr/jobs/{id}")).into_response())
}

async fn job_api(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, AppError> {
    jobs::get(&s.0.db, &id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no OCR job {id}")))
}

async fn list_api(State(s): State<AppState>) -> Result<Json<Value>, AppError> {
    Ok(Json(json!({ "jobs": jobs::recent(&s.0.db, 100).await? })))
}

#[derive(Deserialize)]
struct SearchQ {
    #[serde(default)]
    q: String,
    /// Only the last this many days (0: all).
    #[serde(default)]
    days: u32,
}

fn since(days: u32) -> i64 {
    if days == 0 {
        0
    } else {
        now_ms() - i64::from(days) * 86_400_000
    }
}

async fn search_api(
    State(s): State<AppState>,
    Query(q): Query<SearchQ>,
) -> Result<Json<Value>, AppError> {
    let hits = jobs::search(&s.0.db, &q.q, since(q.days), 100).await?;
    Ok(Json(json!({ "jobs": hits })))
}

async fn retry(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    if !jobs::retry(&s.0.db, &id, now_ms()).await? {
        return Err(AppError::Conflict(
            "only a failed job can be tried again".into(),
        ));
    }
    s.0.ocr_wake.notify_waiters();
    let _ = s.0.feed.send(crate::web::FeedItem::Ocr { job: id.clone() });
    Ok(Redirect::to(&format!("/ocr/jobs/{id}")).into_response())
}

async fn image(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let job = jobs::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no OCR job {id}")))?;
    let path = crate::blobs::path_of(&s.0.cfg.paths.state_dir, &job.blob_sha);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| AppError::NotFound("the image is not in the blob store (yet)".into()))?;
    let ct = kind_of(&bytes).unwrap_or("application/octet-stream");
    let mut h = HeaderMap::new();
    if let Ok(v) = ct.parse() {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = "private, max-age=3600".parse() {
        h.insert(header::CACHE_CONTROL, v);
    }
    Ok((h, bytes).into_response())
}

fn state_badge(j: &Job) -> Markup {
    html! {
        span class={ "badge ocr-" (j.state) } { (j.state) }
        @if j.state == "running" || (j.state == "queued" && j.stage != "queued") { " " span.stage { (j.stage) } }
    }
}

fn jobs_table(list: &[Job]) -> Markup {
    html! {
        table #ocr-jobs {
            thead { tr { th { "Queued" } th { "Source" } th { "State" } th { "Items" } th { "Time" } th { "Attempts" } th { "Error" } } }
            tbody {
                @for j in list {
                    tr data-job=(j.id) {
                        td { a href={ "/ocr/jobs/" (j.id) } { (fmt_utc(j.created_ms)) } }
                        td { @if let Some(o) = &j.order_id { a href={ "/orders/" (o) } { "kiosk order" } } @else { (j.filename) } }
                        td { (state_badge(j)) }
                        td.num { (j.draft.as_ref().and_then(|d| d["items"].as_array()).map_or(0, Vec::len)) }
                        td.num { @if let Some(ms) = j.ms { (format!("{:.1} s", ms / 1000.0)) } }
                        td.num { (j.attempts) }
                        td { (j.error) }
                    }
                }
            }
        }
    }
}

async fn page(State(s): State<AppState>, Query(q): Query<SearchQ>) -> Result<Markup, AppError> {
    let searching = !q.q.trim().is_empty();
    let list = if searching {
        jobs::search(&s.0.db, &q.q, since(q.days), 100).await?
    } else {
        jobs::recent(&s.0.db, 100).await?
    };
    let (queued, running, failed, _) = jobs::depth(&s.0.db, now_ms()).await?;
    Ok(layout(
        "Paper prescriptions",
        html! {
            h1 { "Paper prescriptions (OCR)" }
            form method="post" action="/ocr/upload" enctype="multipart/form-data" {
                label { "Read a prescription: " input type="file" name="file" accept="image/png,image/jpeg,application/pdf" required; }
                button { "Upload" }
            }
            form #ocr-search method="get" {
                input name="q" value=(q.q) placeholder="e.g. metformin Weise";
                select name="days" {
                    option value="0" selected[q.days == 0] { "any time" }
                    option value="7" selected[q.days == 7] { "last 7 days" }
                    option value="31" selected[q.days == 31] { "last month" }
                    option value="365" selected[q.days == 365] { "last year" }
                }
                button { "Search" }
            }
            div #ocr-list data-refresh="ocr" {
                p.count { (queued) " waiting · " (running) " reading · " (failed) " failed" }
                @if searching { p { (list.len()) " prescription(s) match." } }
                (jobs_table(&list))
            }
        },
    ))
}

/// A box on the image as CSS percentages of the page.
fn pct(b: &Value, size: (f64, f64)) -> Option<String> {
    let (w, h) = size;
    if w <= 0.0 || h <= 0.0 {
        return None;
    }
    let f = |k: &str| b[k].as_f64();
    Some(format!(
        "left:{:.2}%;top:{:.2}%;width:{:.2}%;height:{:.2}%",
        f("x")? / w * 100.0,
        f("y")? / h * 100.0,
        f("w")? / w * 100.0,
        f("h")? / h * 100.0
    ))
}

fn conf_class(c: f64) -> &'static str {
    if c >= 0.85 {
        "conf-high"
    } else if c >= 0.6 {
        "conf-mid"
    } else {
        "conf-low"
    }
}

/// The draft beside its image: every field with its confidence, and a box
/// on the image where it was read. Shared with the order review page.
pub fn draft_view(job: &Job, edits: &[super::edits::Edit]) -> Markup {
    let Some(d) = &job.draft else {
        return html! {
            p.ocr-state { "OCR: " (state_badge(job)) @if !job.error.is_empty() { " — " (job.error) } }
        };
    };
    let size = (
        d["size"][0].as_f64().unwrap_or(0.0),
        d["size"][1].as_f64().unwrap_or(0.0),
    );
    let field = |label: &str, f: &Value| -> Markup {
        html! {
            tr {
                th { (label) }
                @if f.is_object() {
                    td class=(conf_class(f["confidence"].as_f64().unwrap_or(0.0))) { (f["value"].as_str().unwrap_or("")) }
                    td.num { (format!("{:.0} %", f["confidence"].as_f64().unwrap_or(0.0) * 100.0)) }
                } @else { td.missing { "not found" } td {} }
            }
        }
    };
    let items = d["items"].as_array().cloned().unwrap_or_default();
    let mut boxes: Vec<(String, String, f64)> = Vec::new();
    for (k, label) in [("name", "Patient"), ("birth_date", "Born")] {
        if let Some(st) = pct(&d["patient"][k]["bbox"], size) {
            boxes.push((
                label.into(),
                st,
                d["patient"][k]["confidence"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    if let Some(st) = pct(&d["prescriber"]["name"]["bbox"], size) {
        boxes.push((
            "Prescriber".into(),
            st,
            d["prescriber"]["name"]["confidence"]
                .as_f64()
                .unwrap_or(0.0),
        ));
    }
    for (i, it) in items.iter().enumerate() {
        if let Some(fs) = it["fields"].as_object() {
            for (k, f) in fs {
                if let Some(st) = pct(&f["bbox"], size) {
                    boxes.push((
                        format!("Item {} {k}", i + 1),
                        st,
                        f["confidence"].as_f64().unwrap_or(0.0),
                    ));
                }
            }
        }
    }
    let is_pdf = d["source"].as_str().is_some_and(|s| s.starts_with("pdf"));
    html! {
        div.ocr-draft {
            div.ocr-page {
                @if is_pdf {
                    p { a href={ "/ocr/jobs/" (job.id) "/image" } { "Open the PDF" } " (" (d["source"].as_str().unwrap_or("")) ")" }
                } @else {
                    div.zoom-view {
                        div.ocr-image.zoom-layer {
                            img src={ "/ocr/jobs/" (job.id) "/image" } alt="The prescription as scanned";
                            @for (label, st, c) in &boxes {
                                span class={ "ocr-box " (conf_class(*c)) } data-css=(st) title=(label) {}
                            }
                        }
                    }
                }
            }
            div.ocr-fields {
                table.fields {
                    (field("Patient", &d["patient"]["name"]))
                    (field("Date of birth", &d["patient"]["birth_date"]))
                    (field("Prescriber", &d["prescriber"]["name"]))
                    (field("GLN", &d["prescriber"]["gln"]))
                    (field("Date", &d["date"]))
                    (field("Notes", &d["notes"]))
                }
                table #ocr-items {
                    thead { tr { th { "Drug (as read)" } th { "Matched" } th { "Strength" } th { "Dose" } th { "Qty" } th { "Sure" } } }
                    tbody {
                        @for it in &items {
                            tr class=(conf_class(it["confidence"].as_f64().unwrap_or(0.0))) {
                                td { (it["name"].as_str().unwrap_or("")) @if let Some(f) = it["form"].as_str() { " " small { (f) } } }
                                td {
                                    @if it["matched"].is_object() {
                                        (it["matched"]["name"].as_str().unwrap_or("")) " → " (it["matched"]["generic"].as_str().unwrap_or(""))
                                        @if let Some(g) = it["matched"]["gtin"].as_str() { " " small { "GTIN " (g) } }
                                    } @else { span.missing { "no match: check by hand" } }
                                }
                                td { (it["strength"].as_str().unwrap_or("—")) }
                                td { (it["dose"].as_str().unwrap_or("—")) @if let Some(sig) = it["sig"].as_str() { br; small { (sig) } } }
                                td.num { @if let Some(q) = it["quantity"].as_u64() { (q) } }
                                td.num { (format!("{:.0} %", it["confidence"].as_f64().unwrap_or(0.0) * 100.0)) }
                            }
                        }
                    }
                }
                (corrections(job, d, edits))
                p.meta { "Read by " (job.engine) " in " (format!("{:.1} s", job.ms.unwrap_or(0.0) / 1000.0)) ", language " (d["language"].as_str().unwrap_or("?")) ". Green: sure; amber: check; red: likely wrong." }
                details { summary { "Text as read" } pre { (d["text"].as_str().unwrap_or("")) } }
            }
        }
    }
}

async fn job_page(State(s): State<AppState>, Path(id): Path<String>) -> Result<Markup, AppError> {
    let job = jobs::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no OCR job {id}")))?;
    let edits = super::edits::trail(&s.0.db, &id).await?;
    Ok(layout(
        "OCR draft",
        html! {
            h1 { "Prescription draft" }
            p { a href="/ocr" { "All paper prescriptions" } @if let Some(o) = &job.order_id { " · " a href={ "/orders/" (o) } { "The order" } } }
            div #ocr-job data-refresh="ocr" {
                p { "State: " (state_badge(&job)) " · attempts " (job.attempts) " · queued " (fmt_utc(job.created_ms)) " UTC" }
                @if job.state == "failed" {
                    p.error { (job.error) }
                    form method="post" action={ "/ocr/jobs/" (job.id) "/retry" } { button { "Try again" } }
                }
                (draft_view(&job, &edits))
            }
        },
    ))
}

/// The correction form (any field, by its label and current value) and the
/// trail of corrections made.
fn corrections(job: &Job, d: &Value, edits: &[super::edits::Edit]) -> Markup {
    use super::edits::{current, ITEM, TOP};
    let mut fields: Vec<(String, String, String)> = TOP
        .iter()
        .map(|(f, label)| {
            (
                (*f).to_owned(),
                (*label).to_owned(),
                current(d, f).unwrap_or_default(),
            )
        })
        .collect();
    for (i, _) in d["items"].as_array().into_iter().flatten().enumerate() {
        for (k, label) in ITEM {
            let f = format!("items.{i}.{k}");
            let v = current(d, &f).unwrap_or_default();
            fields.push((f, format!("Item {} {label}", i + 1), v));
        }
    }
    html! {
        form #ocr-correct data-api={ "/api/ocr/jobs/" (job.id) "/fields" } {
            label { "Correct " select name="field" {
                @for (f, label, v) in &fields { option value=(f) { (label) ": " (if v.is_empty() { "—" } else { v.as_str() }) } }
            } }
            label { " to " input name="value" placeholder="the value on the page (empty: not on the page)"; }
            button type="submit" { "Save correction" }
            output {}
        }
        @if !edits.is_empty() {
            table #ocr-edits {
                thead { tr { th { "Corrected" } th { "Was" } th { "Now" } th { "By" } th { "When (UTC)" } } }
                tbody {
                    @for e in edits {
                        tr { td { (e.field) } td { (e.old_value) } td { (e.new_value) } td { (e.actor) } td { (fmt_utc(e.at_ms)) } }
                    }
                }
            }
        }
    }
}

/// `POST /api/ocr/jobs/{id}/fields` `{field, value}`: one correction, trailed.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Correction {
    field: String,
    #[serde(default)]
    value: String,
}

async fn correct_field(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: crate::auth::session::Staff,
    axum::Json(c): axum::Json<Correction>,
) -> Result<axum::Json<Value>, AppError> {
    use super::edits::CorrectError;
    let edit = super::edits::correct(&s.0.db, &id, &c.field, &c.value, &user.name, now_ms())
        .await
        .map_err(|e| match e {
            CorrectError::Edit(e) => AppError::BadRequest(e.to_string()),
            CorrectError::NotFound(m) => AppError::NotFound(m),
            CorrectError::Db(e) => e.into(),
        })?;
    let _ = s.0.feed.send(crate::web::FeedItem::Ocr { job: id.clone() });
    let message = match &edit {
        Some(e) => format!(
            "{} corrected: {:?} → {:?}.",
            e.field, e.old_value, e.new_value
        ),
        None => "Unchanged.".into(),
    };
    Ok(axum::Json(
        serde_json::json!({ "edit": edit, "message": message }),
    ))
}
