//! Paper prescription images uploaded by kiosks: content-addressed (sha256),
//! idempotent, signed by the kiosk, written durably before the hub says yes.
//!
//! Two ways in: `PUT` with the whole image, or resumable: `HEAD` says how many
//! bytes the hub already holds (`Upload-Offset`), and each `PATCH` appends the
//! next piece at that offset (`Upload-Offset`, `Upload-Length`), fsynced, so an
//! upload cut off on a poor link continues where it stopped. The last piece is
//! checked against the sha256 before the image is kept.

use crate::web::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use rxedge_shared::sign::{self, Context};
use sha2::{Digest as _, Sha256};
use std::io::Write as _;

/// Routes of this context.
pub fn router(max_image_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/api/blobs/{sha}",
            put(upload).get(download).head(offset).patch(append),
        )
        // Allow one byte more than the limit, so an oversize body gets our own message.
        .layer(DefaultBodyLimit::max(max_image_bytes.saturating_add(1)))
}

fn valid_sha(sha: &str) -> bool {
    sha.len() == 64
        && sha
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Where a blob lives.
pub fn path_of(state_dir: &std::path::Path, sha: &str) -> std::path::PathBuf {
    state_dir.join("blobs").join(&sha[..2]).join(sha)
}

fn too_large(size: u64, max: u64) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(serde_json::json!({ "error": format!("The image is {size} bytes; the limit is {max} bytes.") })),
    )
        .into_response()
}

/// The upload's address, or a message saying what it must be.
fn check_sha(sha: &str) -> Result<(), AppError> {
    if valid_sha(sha) {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "the address must be the image's lowercase hex sha256".into(),
        ))
    }
}

fn header(headers: &HeaderMap, h: &str) -> String {
    headers
        .get(h)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The enrolled kiosk that signed this upload's address, or 403.
async fn authorize(s: &AppState, headers: &HeaderMap, sha: &str) -> Result<String, AppError> {
    let kiosk = header(headers, "x-rxedge-kiosk");
    let sig = header(headers, "x-rxedge-signature");
    let known = crate::devices::get(&s.0.db, &kiosk)
        .await?
        .filter(|k| !k.revoked)
        .and_then(|k| k.verifying_key())
        .ok_or_else(|| AppError::Forbidden("unknown kiosk".into()))?;
    sign::verify_detached(&known, Context::Blob, sha.as_bytes(), &sig)
        .map_err(|_| AppError::Forbidden("the upload is not signed by this kiosk".into()))?;
    Ok(kiosk)
}

fn part_of(path: &std::path::Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

fn with_offset(status: StatusCode, offset: u64, msg: &str) -> Response {
    (
        status,
        [("upload-offset", offset.to_string())],
        msg.to_owned(),
    )
        .into_response()
}

/// `HEAD`: how many bytes of this image the hub holds (the whole image once stored).
async fn offset(
    State(s): State<AppState>,
    Path(sha): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !valid_sha(&sha) {
        return Err(AppError::NotFound("no such image".into()));
    }
    authorize(&s, &headers, &sha).await?;
    let path = path_of(&s.0.cfg.paths.state_dir, &sha);
    let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).ok();
    Ok(match (len(&path), len(&part_of(&path))) {
        (Some(n), _) => with_offset(StatusCode::OK, n, ""),
        (None, Some(n)) => with_offset(StatusCode::OK, n, ""),
        (None, None) => with_offset(StatusCode::NOT_FOUND, 0, ""),
    })
}

/// Serialises appends: two pieces of one image must never interleave.
static APPEND: std::sync::Mutex<()> = std::sync::Mutex::new(());

enum Appended {
    Stored,
    Already(u64),
    More(u64),
    WrongOffset(u64),
    Damaged(String),
    TooLong,
}

/// `PATCH`: append the next piece at `Upload-Offset` of an `Upload-Length` image.
async fn append(
    State(s): State<AppState>,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    check_sha(&sha)?;
    let kiosk = authorize(&s, &headers, &sha).await?;
    let num = |h: &str| {
        header(&headers, h)
            .parse::<u64>()
            .map_err(|_| AppError::BadRequest(format!("{h} must be a number of bytes")))
    };
    let (at, total) = (num("upload-offset")?, num("upload-length")?);
    let max = s.0.cfg.ingest.max_image_bytes as u64;
    if total > max {
        return Ok(too_large(total, max));
    }
    let path = path_of(&s.0.cfg.paths.state_dir, &sha);
    let sha2 = sha.clone();
    let outcome = tokio::task::spawn_blocking(move || -> std::io::Result<Appended> {
        let _one = APPEND.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(m) = std::fs::metadata(&path) {
            return Ok(Appended::Already(m.len()));
        }
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::other("no parent"))?;
        std::fs::create_dir_all(dir)?;
        let part = part_of(&path);
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if at != have {
            return Ok(Appended::WrongOffset(have));
        }
        if have + body.len() as u64 > total {
            return Ok(Appended::TooLong);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)?;
        f.write_all(&body)?;
        f.sync_all()?;
        let now = have + body.len() as u64;
        if now < total {
            return Ok(Appended::More(now));
        }
        let got = format!("{:x}", Sha256::digest(std::fs::read(&part)?));
        if got != sha2 {
            std::fs::remove_file(&part)?;
            return Ok(Appended::Damaged(got));
        }
        std::fs::rename(&part, &path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(Appended::Stored)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(format!("storing blob {sha}: {e}")))?;
    Ok(match outcome {
        Appended::Stored => {
            tracing::info!(%sha, kiosk = %kiosk, bytes = total, "paper image stored (resumable)");
            arrived(&s, &sha).await;
            with_offset(StatusCode::CREATED, total, "stored")
        }
        Appended::Already(n) => with_offset(StatusCode::OK, n, "already stored"),
        Appended::More(n) => with_offset(StatusCode::ACCEPTED, n, "more"),
        Appended::WrongOffset(n) => with_offset(
            StatusCode::CONFLICT,
            n,
            &format!("the hub holds {n} bytes of this image; continue from there"),
        ),
        Appended::TooLong => {
            return Err(AppError::BadRequest(
                "the piece goes past Upload-Length".into(),
            ))
        }
        Appended::Damaged(got) => {
            return Err(AppError::BadRequest(format!(
                "the image's sha256 is {got}, not {sha}: upload damaged, send again"
            )))
        }
    })
}

async fn upload(
    State(s): State<AppState>,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    check_sha(&sha)?;
    let max = s.0.cfg.ingest.max_image_bytes;
    if body.len() > max {
        return Ok(too_large(body.len() as u64, max as u64));
    }
    let kiosk = authorize(&s, &headers, &sha).await?;
    let got = format!("{:x}", Sha256::digest(&body));
    if got != sha {
        return Err(AppError::BadRequest(format!(
            "the image's sha256 is {got}, not {sha}: upload damaged, send again"
        )));
    }
    let path = path_of(&s.0.cfg.paths.state_dir, &sha);
    if path.exists() {
        return Ok((StatusCode::OK, "already stored").into_response());
    }
    write(&s.0.cfg.paths.state_dir, &sha, body.to_vec()).await?;
    tracing::info!(%sha, kiosk = %kiosk, bytes = body.len(), "paper image stored");
    arrived(&s, &sha).await;
    Ok((StatusCode::CREATED, "stored").into_response())
}

/// Writes a blob durably (temp file, fsync, rename, fsync the folder).
/// `sha` must be the bytes' sha256, checked by the caller.
pub async fn write(state_dir: &std::path::Path, sha: &str, bytes: Vec<u8>) -> Result<(), AppError> {
    let p = path_of(state_dir, sha);
    let shown = sha.to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let dir = p
            .parent()
            .ok_or_else(|| std::io::Error::other("no parent"))?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::now_v7()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        std::fs::File::open(dir)?.sync_all()
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(format!("storing blob {shown}: {e}")))
}

/// A page is in: OCR jobs waiting for it go now.
async fn arrived(s: &AppState, sha: &str) {
    match crate::ocr::jobs::page_arrived(&s.0.db, sha, rxedge_shared::clock::system_now_ms()).await
    {
        Ok(n) if n > 0 => s.0.ocr_wake.notify_waiters(),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "OCR jobs not woken"),
    }
}

async fn download(
    State(s): State<AppState>,
    Path(sha): Path<String>,
) -> Result<Response, AppError> {
    if !valid_sha(&sha) {
        return Err(AppError::NotFound("no such image".into()));
    }
    let bytes = tokio::fs::read(path_of(&s.0.cfg.paths.state_dir, &sha))
        .await
        .map_err(|_| AppError::NotFound("no such image".into()))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response())
}

/// What the retention sweep keeps and removes (see `[blobs]` in the config).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// An image of a closed order (or an OCR upload) is kept this long.
    pub keep_ms: i64,
    /// An image nothing refers to (its event never came) is kept this long.
    pub orphan_ms: i64,
}

/// The images to remove: those no live reference keeps, once older than
/// the orphan grace (so a fresh upload waiting for its event stays). Pure.
pub fn expired(
    files: &[(String, i64)],
    keep: &std::collections::HashSet<String>,
    now_ms: i64,
    r: Retention,
) -> Vec<String> {
    files
        .iter()
        .filter(|(sha, mtime)| !keep.contains(sha) && now_ms - mtime > r.orphan_ms)
        .map(|(sha, _)| sha.clone())
        .collect()
}

/// Images still needed: open orders, orders closed within the keep period,
/// and OCR jobs made within it.
async fn keep_set(
    db: &crate::store::Db,
    now_ms: i64,
    r: Retention,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let since = now_ms - r.keep_ms;
    let mut keep: std::collections::HashSet<String> = sqlx::query_scalar(
        "SELECT payload FROM orders WHERE kind = 'paper' AND \
         (state NOT IN ('picked_up', 'rejected', 'cancelled', 'returned_to_stock') OR updated_ms >= $1)",
    )
    .bind(since)
    .fetch_all(&db.pool)
    .await?
    .into_iter()
    .collect();
    let jobs: Vec<String> = sqlx::query_scalar(
        "SELECT blob_sha FROM ocr_jobs WHERE created_ms >= $1 OR state IN ('queued', 'running')",
    )
    .bind(since)
    .fetch_all(&db.pool)
    .await?;
    keep.extend(jobs);
    Ok(keep)
}

fn stored(state_dir: &std::path::Path) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(state_dir.join("blobs")) else {
        return out;
    };
    for d in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !valid_sha(&name) {
                continue; // partial uploads (.part) are the upload's business
            }
            let mtime = f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            out.push((name, mtime));
        }
    }
    out
}

/// One retention sweep; the number of images removed (recorded in the audit trail).
pub async fn sweep(
    db: &crate::store::Db,
    state_dir: &std::path::Path,
    r: Retention,
    now_ms: i64,
) -> Result<usize, sqlx::Error> {
    let keep = keep_set(db, now_ms, r).await?;
    let dir = state_dir.to_path_buf();
    let files = tokio::task::spawn_blocking(move || stored(&dir))
        .await
        .unwrap_or_default();
    let gone = expired(&files, &keep, now_ms, r);
    let mut removed = 0;
    for sha in &gone {
        match tokio::fs::remove_file(path_of(state_dir, sha)).await {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(%sha, error = %e, "retention: image not removed"),
        }
    }
    if removed > 0 {
        crate::audit::record(
            db,
            &crate::audit::NewEntry {
                actor: "retention",
                action: "blobs.removed",
                subject: "blobs",
                detail: &serde_json::json!({ "removed": removed, "sha256": gone }).to_string(),
                ip: "",
                at_ms: now_ms,
            },
        )
        .await;
        tracing::info!(removed, "retention: expired prescription images removed");
    }
    Ok(removed)
}

/// Sweep at start and then hourly until shutdown.
pub async fn retention_task(
    db: crate::store::Db,
    state_dir: std::path::PathBuf,
    r: Retention,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = sweep(&db, &state_dir, r, rxedge_shared::clock::system_now_ms()).await {
            tracing::error!(error = %e, "retention sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unkept_images_past_the_grace_are_removed() {
        let r = Retention {
            keep_ms: 1000,
            orphan_ms: 100,
        };
        let files = vec![
            ("kept".to_owned(), 0),
            ("old-orphan".to_owned(), 0),
            ("fresh-orphan".to_owned(), 950),
        ];
        let keep = std::collections::HashSet::from(["kept".to_owned()]);
        assert_eq!(
            expired(&files, &keep, 1000, r),
            vec!["old-orphan".to_owned()]
        );
    }
}
