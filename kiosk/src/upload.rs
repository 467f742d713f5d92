//! Paper images wait in sled until the hub has stored them, then leave the
//! kiosk: patient data stays here no longer than needed. Uploads are
//! content-addressed (sha256) and signed, so a retry after any failure is safe.

use rxedge_shared::sign::{self, Context, SigningKey};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Images waiting for the hub.
#[derive(Clone)]
pub struct PaperStore {
    tree: sled::Tree,
    wake: Arc<Notify>,
}

impl PaperStore {
    /// Over a sled tree.
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Keep `jpeg` durably; returns its sha256 (hex).
    pub async fn put(&self, jpeg: &[u8]) -> Result<String, sled::Error> {
        let sha = format!("{:x}", Sha256::digest(jpeg));
        self.tree.insert(sha.as_bytes(), jpeg)?;
        self.tree.flush_async().await?;
        self.wake.notify_one();
        Ok(sha)
    }

    /// Images waiting.
    pub fn waiting(&self) -> usize {
        self.tree.len()
    }
}

/// Upload until shutdown through `client` (which pins the hub's CA when the
/// hub uses TLS). `hub_url` empty means this kiosk was enrolled key-first
/// and has no hub address: images wait (and the log says why).
pub async fn run(
    store: PaperStore,
    client: reqwest::Client,
    hub_url: String,
    kiosk: String,
    key: SigningKey,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut failed = false;
        for item in store.tree.iter() {
            let Ok((k, v)) = item else { continue };
            let sha = String::from_utf8_lossy(&k).into_owned();
            if hub_url.is_empty() {
                tracing::warn!("paper image waiting: this kiosk has no hub_url in identity.toml");
                failed = true;
                break;
            }
            match send(&client, &hub_url, &kiosk, &key, &sha, &v).await {
                Ok(()) => {
                    // The hub has it on disk: delete our copy.
                    let _ = store.tree.remove(&k);
                    let _ = store.tree.flush_async().await;
                    tracing::info!(%sha, "paper image delivered and deleted from the kiosk");
                }
                Err(Failure::Damaged(why)) => {
                    // Our copy does not match its address: nothing a retry can fix.
                    tracing::error!(%sha, %why, "paper image refused as damaged; dropped");
                    let _ = store.tree.remove(&k);
                }
                Err(Failure::Retry(why)) => {
                    tracing::warn!(%sha, %why, "paper image not delivered yet; will resume");
                    failed = true;
                }
            }
        }
        let wait = if failed {
            backoff = (backoff * 2).min(Duration::from_secs(30));
            backoff
        } else {
            backoff = Duration::from_secs(1);
            Duration::from_secs(30)
        };
        tokio::select! {
            _ = store.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Pieces of this size are appended one request at a time, so a cut-off upload
/// loses at most one piece.
const PIECE: usize = 64 * 1024;

enum Failure {
    /// Try again later (from where the hub got to).
    Retry(String),
    /// The hub says our bytes do not match their address.
    Damaged(String),
}

/// Resumable upload: ask the hub how much it holds, then append the rest.
async fn send(
    client: &reqwest::Client,
    hub_url: &str,
    kiosk: &str,
    key: &SigningKey,
    sha: &str,
    data: &[u8],
) -> Result<(), Failure> {
    let url = format!("{hub_url}/api/blobs/{sha}");
    let sig = sign::sign_detached(key, Context::Blob, sha.as_bytes());
    let offset_of = |r: &reqwest::Response| {
        r.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
    };
    let head = client
        .head(&url)
        .header("x-rxedge-kiosk", kiosk)
        .header("x-rxedge-signature", &sig)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| Failure::Retry(format!("hub unreachable: {e}")))?;
    let mut at = match head.status() {
        reqwest::StatusCode::NOT_FOUND => 0,
        s if s.is_success() => offset_of(&head).unwrap_or(0),
        s => return Err(Failure::Retry(format!("hub answered {s}"))),
    };
    if at >= data.len() {
        return Ok(());
    }
    if at > 0 {
        tracing::info!(%sha, at, of = data.len(), "resuming paper image upload");
    }
    loop {
        let end = (at + PIECE).min(data.len());
        let r = client
            .patch(&url)
            .header("x-rxedge-kiosk", kiosk)
            .header("x-rxedge-signature", &sig)
            .header("upload-offset", at.to_string())
            .header("upload-length", data.len().to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(data[at..end].to_vec())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("hub unreachable: {e}")))?;
        match r.status() {
            reqwest::StatusCode::CREATED | reqwest::StatusCode::OK => return Ok(()),
            // More wanted, or we were out of step: continue from the hub's count.
            reqwest::StatusCode::ACCEPTED | reqwest::StatusCode::CONFLICT => {
                at = offset_of(&r)
                    .filter(|n| *n <= data.len())
                    .ok_or_else(|| Failure::Retry("no usable Upload-Offset".into()))?;
            }
            reqwest::StatusCode::BAD_REQUEST => {
                return Err(Failure::Damaged(r.text().await.unwrap_or_default()))
            }
            s => return Err(Failure::Retry(format!("hub answered {s}"))),
        }
    }
}
