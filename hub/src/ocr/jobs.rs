//! The OCR job queue, durable in the hub's store.
//!
//! A job is claimed with a lease (a conditional UPDATE), so two workers
//! never read the same page, and a job whose worker died is taken again
//! when its lease lapses. At start the hub puts its own running jobs back
//! in the queue: a restart loses none. A refused file (not an image, too
//! large, a PDF bomb) fails at once with its reason; an engine failure is
//! retried with growing waits up to `ocr.max_attempts`.

use super::vocab::{catalog_vocab, Layered, Vocab};
use super::{OcrError, Pipeline, Reading};
use crate::store::Db;
use crate::web::FeedItem;
use serde::Serialize;
use sqlx::Row as _;
use std::sync::Arc;

/// One job as the screens show it.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Id.
    pub id: String,
    /// The paper order it drafts, if any.
    pub order_id: Option<String>,
    /// The image or PDF in the blob store.
    pub blob_sha: String,
    /// The uploaded file's name.
    pub filename: String,
    /// `kiosk` or `upload`.
    pub source: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// What a running job is doing.
    pub stage: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub error: String,
    /// The result, as JSON ([`Reading`] without its words).
    pub draft: Option<serde_json::Value>,
    /// Engine used.
    pub engine: String,
    /// Time taken.
    pub ms: Option<f64>,
    /// Queued at.
    pub created_ms: i64,
    /// Finished at.
    pub finished_ms: Option<i64>,
}

impl Job {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let draft: Option<String> = r.try_get("draft")?;
        Ok(Job {
            id: r.try_get("id")?,
            order_id: r.try_get("order_id")?,
            blob_sha: r.try_get("blob_sha")?,
            filename: r.try_get("filename")?,
            source: r.try_get("source")?,
            state: r.try_get("state")?,
            stage: r.try_get("stage")?,
            attempts: r.try_get("attempts")?,
            error: r.try_get("error")?,
            draft: draft.and_then(|d| serde_json::from_str(&d).ok()),
            engine: r.try_get("engine")?,
            ms: r.try_get("ms")?,
            created_ms: r.try_get("created_ms")?,
            finished_ms: r.try_get("finished_ms")?,
        })
    }
}

/// The columns a [`Job`] is read from. Never `*`: PostgreSQL's generated
/// `search` column is a `tsvector`, which sqlx's Any driver cannot decode.
const COLS: &str =
    "id, order_id, blob_sha, filename, source, state, stage, attempts, error, draft, \
                    engine, ms, created_ms, finished_ms";

/// Queues a job (once per order: a second call for the same order does
/// nothing). Runs inside the caller's transaction, so an order and its
/// job are committed together.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    order_id: Option<&str>,
    sha: &str,
    filename: &str,
    source: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    sqlx::query(
        "INSERT INTO ocr_jobs (id, order_id, blob_sha, filename, source, state, stage, next_at_ms, created_ms) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 'queued', $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(order_id)
    .bind(sha)
    .bind(filename)
    .bind(source)
    .bind(now_ms)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// One job.
pub async fn get(db: &Db, id: &str) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLS} FROM ocr_jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(Job::from_row)
        .transpose()
}

/// The job drafting an order.
pub async fn for_order(db: &Db, order_id: &str) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLS} FROM ocr_jobs WHERE order_id = $1"))
        .bind(order_id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(Job::from_row)
        .transpose()
}

/// The newest jobs.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM ocr_jobs ORDER BY created_ms DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(Job::from_row)
    .collect()
}

/// Queue depth: (queued, running, failed) and the oldest queued job's age.
pub async fn depth(db: &Db, now_ms: i64) -> Result<(i64, i64, i64, f64), sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT state, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(MIN(created_ms), 0) AS BIGINT) \
         FROM ocr_jobs WHERE state <> 'done' GROUP BY state",
    )
    .fetch_all(&db.pool)
    .await?;
    let n = |s: &str| rows.iter().find(|r| r.0 == s).map_or(0, |r| r.1);
    let oldest = rows
        .iter()
        .find(|r| r.0 == "queued")
        .map_or(0.0, |r| (now_ms - r.2).max(0) as f64 / 1000.0);
    Ok((n("queued"), n("running"), n("failed"), oldest))
}

/// Puts a failed job back in the queue.
pub async fn retry(db: &Db, id: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE ocr_jobs SET state = 'queued', stage = 'queued', attempts = 0, next_at_ms = $1, error = '' \
         WHERE id = $2 AND state = 'failed'",
    )
    .bind(now_ms)
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected()
        == 1)
}

/// At start: this hub's running jobs were cut off by the stop; queue them
/// again (one hub runs OCR per database, see `docs/ocr.md`).
pub async fn requeue_running(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE ocr_jobs SET state = 'queued', stage = 'queued', next_at_ms = $1, lease_until_ms = 0 \
         WHERE state = 'running'",
    )
    .bind(now_ms)
    .execute(&db.pool)
    .await?
    .rows_affected())
}

/// Takes the next due job, with a lease.
pub async fn claim(db: &Db, now_ms: i64, lease_ms: i64) -> Result<Option<Job>, sqlx::Error> {
    loop {
        let cand: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT id, state, CAST(lease_until_ms AS BIGINT) FROM ocr_jobs \
             WHERE (state = 'queued' AND next_at_ms <= $1) OR (state = 'running' AND lease_until_ms < $2) \
             ORDER BY next_at_ms, created_ms LIMIT 1",
        )
        .bind(now_ms)
        .bind(now_ms)
        .fetch_optional(&db.pool)
        .await?;
        let Some((id, state, lease)) = cand else {
            return Ok(None);
        };
        let took = sqlx::query(
            "UPDATE ocr_jobs SET state = 'running', stage = 'reading', attempts = attempts + 1, lease_until_ms = $1 \
             WHERE id = $2 AND state = $3 AND lease_until_ms = $4",
        )
        .bind(now_ms + lease_ms)
        .bind(&id)
        .bind(&state)
        .bind(lease)
        .execute(&db.pool)
        .await?
        .rows_affected();
        if took == 1 {
            return get(db, &id).await;
        }
    }
}

/// How long a job waits for its page to arrive from the kiosk.
pub const WAIT_FOR_IMAGE_MS: i64 = 24 * 3600 * 1000;

/// Puts a job back to wait for its image, without counting the attempt.
pub async fn defer(db: &Db, id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE ocr_jobs SET state = 'queued', stage = 'waiting for the page from the kiosk', \
         attempts = attempts - 1, next_at_ms = $1, lease_until_ms = 0 WHERE id = $2",
    )
    .bind(now_ms + 5_000)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Wakes waiting jobs for a page that just arrived.
pub async fn page_arrived(db: &Db, sha: &str, now_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE ocr_jobs SET next_at_ms = $1 WHERE blob_sha = $2 AND state = 'queued'")
            .bind(now_ms)
            .bind(sha)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

/// Records a job's stage (for the live progress on the screens).
pub async fn set_stage(db: &Db, id: &str, stage: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ocr_jobs SET stage = $1 WHERE id = $2 AND state = 'running'")
        .bind(stage)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The text a search looks in: the page's text and every extracted value.
pub fn search_text(r: &Reading) -> String {
    let d = &r.draft;
    let mut parts = vec![d.text.clone()];
    let f = |x: &Option<super::extract::Field>| x.as_ref().map(|f| f.value.clone());
    parts.extend(f(&d.patient.name));
    parts.extend(f(&d.prescriber.name));
    parts.extend(f(&d.prescriber.gln));
    for i in &d.items {
        parts.push(i.name.clone());
        if let Some(m) = &i.matched {
            parts.push(m.entry.name.clone());
            parts.push(m.entry.generic.clone());
        }
    }
    parts.join("\n")
}

/// Stores a finished job's draft and indexes it for search.
pub async fn finish(
    db: &Db,
    id: &str,
    r: &Reading,
    engine: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let mut json = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = json.as_object_mut() {
        o.remove("words");
    }
    let text = search_text(r);
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE ocr_jobs SET state = 'done', stage = 'done', draft = $1, search_text = $2, engine = $3, ms = $4, \
         finished_ms = $5, error = '' WHERE id = $6",
    )
    .bind(json.to_string())
    .bind(&text)
    .bind(engine)
    .bind(r.ms)
    .bind(now_ms)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if db.backend == crate::store::Backend::Sqlite {
        sqlx::query("DELETE FROM ocr_search WHERE job_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO ocr_search (job_id, body) VALUES ($1, $2)")
            .bind(id)
            .bind(&text)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Records a failure: retried after a growing wait while attempts remain
/// and the error may pass, else failed for good.
pub async fn fail(
    db: &Db,
    job: &Job,
    err: &OcrError,
    max_attempts: u32,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let again = err.retryable() && job.attempts < i64::from(max_attempts);
    let wait = 2_000i64 << job.attempts.clamp(0, 10);
    sqlx::query(
        "UPDATE ocr_jobs SET state = $1, stage = $2, error = $3, next_at_ms = $4, lease_until_ms = 0, finished_ms = $5 WHERE id = $6",
    )
    .bind(if again { "queued" } else { "failed" })
    .bind(if again { "waiting to retry" } else { "failed" })
    .bind(err.to_string())
    .bind(now_ms + wait)
    .bind((!again).then_some(now_ms))
    .bind(&job.id)
    .execute(&db.pool)
    .await?;
    Ok(again)
}

/// Jobs whose text holds every word of `q`, newest first, optionally
/// since a time ("last month").
pub async fn search(db: &Db, q: &str, since_ms: i64, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    // Words only: the query language of neither engine reaches the user.
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(12)
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let rows = match db.backend {
        crate::store::Backend::Sqlite => {
            let m = words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" AND ");
            sqlx::query(
                &format!(
                    "SELECT {COLS} FROM ocr_jobs WHERE id IN (SELECT job_id FROM ocr_search WHERE ocr_search MATCH $1) \
                     AND created_ms >= $2 ORDER BY created_ms DESC LIMIT $3"
                ),
            )
            .bind(m)
            .bind(since_ms)
            .bind(limit)
            .fetch_all(&db.pool)
            .await?
        }
        crate::store::Backend::Postgres => {
            let m = words.join(" & ");
            sqlx::query(
                &format!(
                    "SELECT {COLS} FROM ocr_jobs WHERE search @@ to_tsquery('simple', $1) AND created_ms >= $2 \
                     ORDER BY created_ms DESC LIMIT $3"
                ),
            )
            .bind(m)
            .bind(since_ms)
            .bind(limit)
            .fetch_all(&db.pool)
            .await?
        }
    };
    rows.iter().map(Job::from_row).collect()
}

/// The catalog's names, fresh for each job (a new product is matched at once).
async fn catalog(db: &Db) -> Result<Vocab, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT gtin, name, strength, ingredients FROM products")
            .fetch_all(&db.pool)
            .await?;
    let items: Vec<(String, String, String, Vec<String>)> = rows
        .into_iter()
        .map(|(g, n, s, i)| {
            let ing = i
                .split(';')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
            (g, n, s, ing)
        })
        .collect();
    Ok(catalog_vocab(items.iter().map(|(g, n, s, i)| {
        (g.as_str(), n.as_str(), s.as_str(), i.as_slice())
    })))
}

/// What a worker needs.
#[derive(Clone)]
pub struct Worker {
    /// Store.
    pub db: Db,
    /// `[ocr]` settings.
    pub cfg: crate::config::Ocr,
    /// Largest upload.
    pub max_bytes: usize,
    /// Where blobs live.
    pub state_dir: std::path::PathBuf,
    /// The brand → generic list, loaded once for all workers.
    pub names: Arc<Vocab>,
    /// Live feed.
    pub feed: tokio::sync::broadcast::Sender<FeedItem>,
    /// Wakes idle workers when a job is queued.
    pub wake: Arc<tokio::sync::Notify>,
    /// Metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Worker {
    /// Runs jobs until shutdown. The engine is loaded on first use and kept.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut pipeline: Option<Pipeline> = None;
        // New paper orders arrive through the order sync, which announces them.
        let mut feed = self.feed.subscribe();
        loop {
            let now = rxedge_shared::clock::system_now_ms();
            let lease = 10 * 60 * 1000;
            match claim(&self.db, now, lease).await {
                Ok(Some(job)) => {
                    pipeline = self.one(job, pipeline).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "OCR queue unreadable"),
            }
            let order = async {
                loop {
                    match feed.recv().await {
                        Ok(FeedItem::Order)
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = order => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }

    async fn one(&self, job: Job, pipeline: Option<Pipeline>) -> Option<Pipeline> {
        let _ = self.feed.send(FeedItem::Ocr {
            job: job.id.clone(),
        });
        let path = crate::blobs::path_of(&self.state_dir, &job.blob_sha);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            // A kiosk sends the event and uploads the page independently;
            // the event often wins. Wait for the page (a day at most)
            // without spending an attempt.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && rxedge_shared::clock::system_now_ms() - job.created_ms
                        < WAIT_FOR_IMAGE_MS =>
            {
                if let Err(e) =
                    defer(&self.db, &job.id, rxedge_shared::clock::system_now_ms()).await
                {
                    tracing::error!(error = %e, job = %job.id, "OCR job not deferred");
                }
                let _ = self.feed.send(FeedItem::Ocr {
                    job: job.id.clone(),
                });
                return pipeline;
            }
            Err(e) => {
                let err = OcrError::Io(std::io::Error::new(
                    e.kind(),
                    format!("the image {} is not in the blob store: {e}", job.blob_sha),
                ));
                self.failed(&job, &err).await;
                return pipeline;
            }
        };
        let cat = match catalog(&self.db).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "catalog unreadable for OCR");
                Vocab::default()
            }
        };
        // Stages reach the screens while the engine works.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        let stages = {
            let (db, feed, id) = (self.db.clone(), self.feed.clone(), job.id.clone());
            tokio::spawn(async move {
                while let Some(s) = rx.recv().await {
                    let _ = set_stage(&db, &id, s).await;
                    let _ = feed.send(FeedItem::Ocr { job: id.clone() });
                }
            })
        };
        let (cfg, max, names) = (self.cfg.clone(), self.max_bytes, self.names.clone());
        let ran = tokio::task::spawn_blocking(move || {
            let mut p = match pipeline {
                Some(p) => p,
                None => {
                    let _ = tx.send("loading the OCR engine");
                    match Pipeline::from_config(&cfg, max) {
                        Ok(p) => p,
                        Err(e) => return (None, Err(OcrError::from(e))),
                    }
                }
            };
            let vocab = Layered(vec![&cat, &*names]);
            let mut progress = |s: &'static str| {
                let _ = tx.send(s);
            };
            let r = p.read_with(&bytes, &vocab, &mut progress);
            (Some(p), r)
        })
        .await;
        let _ = stages.await;
        let now = rxedge_shared::clock::system_now_ms();
        let (pipeline, result) = match ran {
            Ok(x) => x,
            Err(e) => (
                None,
                Err(OcrError::Engine(super::engine::EngineError::Recognise(
                    format!("the OCR worker stopped: {e}"),
                ))),
            ),
        };
        let engine = pipeline.as_ref().map_or("", |p| p.engine_name());
        match result {
            Ok(r) => {
                self.metrics.ocr_seconds.observe(r.ms / 1000.0);
                if let Err(e) = finish(&self.db, &job.id, &r, engine, now).await {
                    tracing::error!(error = %e, job = %job.id, "OCR result not stored");
                } else {
                    tracing::info!(job = %job.id, items = r.draft.items.len(), ms = r.ms, "OCR draft ready");
                }
            }
            Err(e) => self.failed(&job, &e).await,
        }
        let _ = self.feed.send(FeedItem::Ocr {
            job: job.id.clone(),
        });
        if job.order_id.is_some() {
            let _ = self.feed.send(FeedItem::Order);
        }
        pipeline
    }

    async fn failed(&self, job: &Job, e: &OcrError) {
        let now = rxedge_shared::clock::system_now_ms();
        match fail(&self.db, job, e, self.cfg.max_attempts, now).await {
            Ok(true) => tracing::warn!(job = %job.id, error = %e, "OCR failed; will retry"),
            Ok(false) => tracing::warn!(job = %job.id, error = %e, "OCR failed"),
            Err(db) => tracing::error!(job = %job.id, error = %db, "OCR failure not stored"),
        }
    }
}
