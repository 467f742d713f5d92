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

/// Upload until shutdown. `hub_url` empty means this kiosk was enrolled key-first
/// and has no hub address: images wait (and the log says why).
pub async fn run(
    store: PaperStore,
    hub_url: String,
    kiosk: String,
    key: SigningKey,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = reqwest::Client::new();
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
            let r = client
                .put(format!("{hub_url}/api/blobs/{sha}"))
                .header("x-rxedge-kiosk", &kiosk)
                .header(
                    "x-rxedge-signature",
                    sign::sign_detached(&key, Context::Blob, sha.as_bytes()),
                )
                .header("content-type", "image/jpeg")
                .body(v.to_vec())
                .timeout(Duration::from_secs(60))
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => {
                    // The hub has it on disk: delete our copy.
                    let _ = store.tree.remove(&k);
                    let _ = store.tree.flush_async().await;
                    tracing::info!(%sha, "paper image delivered and deleted from the kiosk");
                }
                Ok(resp) if resp.status() == reqwest::StatusCode::BAD_REQUEST => {
                    // Our copy does not match its address: nothing a retry can fix.
                    tracing::error!(%sha, status = %resp.status(), "paper image refused as damaged; dropped");
                    let _ = store.tree.remove(&k);
                }
                Ok(resp) => {
                    tracing::warn!(%sha, status = %resp.status(), "paper image upload refused; will retry");
                    failed = true;
                }
                Err(e) => {
                    tracing::warn!(%sha, error = %e, "hub unreachable for paper upload; will retry");
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
