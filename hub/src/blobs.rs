//! Paper prescription images uploaded by kiosks: content-addressed (sha256),
//! idempotent, signed by the kiosk, written durably before the hub says yes.

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
        .route("/api/blobs/{sha}", put(upload).get(download))
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

async fn upload(
    State(s): State<AppState>,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    if !valid_sha(&sha) {
        return Err(AppError::BadRequest(
            "the address must be the image's lowercase hex sha256".into(),
        ));
    }
    let max = s.0.cfg.ingest.max_image_bytes;
    if body.len() > max {
        return Ok((
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(serde_json::json!({ "error": format!("The image is {} bytes; the limit is {max} bytes.", body.len()) })),
        )
            .into_response());
    }
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let kiosk = header("x-rxedge-kiosk");
    let sig = header("x-rxedge-signature");
    let known = crate::devices::get(&s.0.db, &kiosk)
        .await?
        .filter(|k| !k.revoked)
        .and_then(|k| k.verifying_key())
        .ok_or_else(|| AppError::Forbidden("unknown kiosk".into()))?;
    sign::verify_detached(&known, Context::Blob, sha.as_bytes(), &sig)
        .map_err(|_| AppError::Forbidden("the upload is not signed by this kiosk".into()))?;
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
    let bytes = body.to_vec();
    let p = path.clone();
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
    .map_err(|e| AppError::Internal(format!("storing blob {sha}: {e}")))?;
    tracing::info!(%sha, kiosk = %kiosk, bytes = body.len(), "paper image stored");
    Ok((StatusCode::CREATED, "stored").into_response())
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
