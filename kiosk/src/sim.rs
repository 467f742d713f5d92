//! Simulated patient scans for the demo and tests: a camera that "reads"
//! sample codes. (Simulated fridges live in `fridge::sim`.)
//!
//! The real QR pipeline arrives with the kiosk work; this keeps the same event
//! shapes so the hub sees realistic traffic.

use crate::driver::Handle;
use rxedge_shared::protocol::{Body, QrScanned};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Sample codes, from the shared fixtures when present.
pub fn sample_codes(fixtures: Option<PathBuf>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(dir) = fixtures {
        for f in [
            "chmed/chmed16a1_transmission_example.txt",
            "chmed/chmed23a_single.txt",
        ] {
            if let Ok(t) = std::fs::read_to_string(dir.join(f)) {
                out.push(t.trim().to_owned());
            }
        }
    }
    out.push("https://id.gs1.org/01/09506000134352/10/ABC123/17/271231".to_owned());
    out.push("(01)09506000134352(17)271231(10)ABC123".to_owned());
    out
}

/// A rough label for a scanned text, until the real parsers land.
pub fn classify(text: &str) -> &'static str {
    if text.starts_with("CHMED16A") {
        "chmed16a"
    } else if text.starts_with("CHMED23A") {
        "chmed23a"
    } else if text.contains("/01/") || text.starts_with("(01)") || text.starts_with("01") {
        "gs1"
    } else {
        "unknown"
    }
}

/// Where the shared fixtures are: `$RXEDGE_FIXTURES`, else `../shared/fixtures`.
pub fn fixtures_dir() -> Option<PathBuf> {
    let p = std::env::var_os("RXEDGE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/fixtures"));
    p.is_dir().then_some(p)
}

/// Run the simulated camera until shutdown.
pub async fn run(
    handle: Handle,
    cfg: crate::config::Simulator,
    mut shutdown: watch::Receiver<bool>,
) {
    let codes = sample_codes(fixtures_dir());
    let mut scan = (cfg.scan_every_secs > 0)
        .then(|| tokio::time::interval(Duration::from_secs(cfg.scan_every_secs)));
    let mut i = 0usize;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = async { match scan.as_mut() { Some(s) => { s.tick().await; } None => std::future::pending().await } } => {
                let text = codes[i % codes.len()].clone();
                i += 1;
                let body = Body::QrScanned(QrScanned { payload_kind: classify(&text).to_owned(), text });
                if let Err(e) = handle.enqueue(body, false).await {
                    tracing::warn!(error = %e, "simulated scan not stored");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_labels() {
        assert_eq!(classify("CHMED16A1H4sI"), "chmed16a");
        assert_eq!(classify("(01)09506000134352"), "gs1");
        assert_eq!(classify("hello"), "unknown");
    }
}
