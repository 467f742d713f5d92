//! Simulated patient scans for the demo and tests: a camera that "reads"
//! sample codes. (Simulated fridges live in `fridge::sim`.)
//!
//! The real QR pipeline arrives with the kiosk work; this keeps the same event
//! shapes so the hub sees realistic traffic.

use crate::camera::SimCamera;
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

/// Where the shared fixtures are: `$RXEDGE_FIXTURES`, else `../shared/fixtures`.
pub fn fixtures_dir() -> Option<PathBuf> {
    let p = std::env::var_os("RXEDGE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/fixtures"));
    p.is_dir().then_some(p)
}

/// Run the simulated camera until shutdown.
pub async fn run(
    camera: SimCamera,
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
                // Shown to the camera: it goes through the real decode and parse path.
                match SimCamera::render_qr(&text) {
                    Ok(img) => camera.show(img, Duration::from_millis(1500)),
                    Err(e) => tracing::warn!(error = %e, "sample code does not fit a QR code"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_codes_always_include_a_gs1_pack() {
        let c = sample_codes(None);
        assert!(
            c.iter()
                .any(|t| rxedge_shared::payload::parse(t).kind() == "gs1"),
            "{c:?}"
        );
    }
}
