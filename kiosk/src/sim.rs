//! Simulated hardware for the demo and tests: a camera that "reads" sample
//! codes and fridge probes that follow a scripted normal cycle.
//!
//! The real QR pipeline and sensor drivers arrive with the kiosk and cold-chain
//! work; this keeps the same event shapes so the hub sees realistic traffic.

use crate::driver::Handle;
use rxedge_shared::protocol::{Body, QrScanned, Reading, Telemetry};
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

/// Scripted fridge temperature: a compressor cycle of 20 minutes between ~3 and ~7 °C.
pub fn fridge_temp(fridge_index: usize, t_ms: i64) -> f64 {
    let phase = (t_ms as f64 / 1_200_000.0 + fridge_index as f64 * 0.37) * std::f64::consts::TAU;
    let wobble = ((t_ms / 10_000) as f64 * 1.7 + fridge_index as f64).sin() * 0.1;
    ((5.0 + 1.8 * phase.sin() + wobble) * 100.0).round() / 100.0
}

/// Run the simulated camera and probes until shutdown.
pub async fn run(
    handle: Handle,
    cfg: crate::config::Simulator,
    mut shutdown: watch::Receiver<bool>,
) {
    let codes = sample_codes(fixtures_dir());
    let mut scan = (cfg.scan_every_secs > 0)
        .then(|| tokio::time::interval(Duration::from_secs(cfg.scan_every_secs)));
    let mut tele = (cfg.telemetry_every_secs > 0)
        .then(|| tokio::time::interval(Duration::from_secs(cfg.telemetry_every_secs)));
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
            _ = async { match tele.as_mut() { Some(t) => { t.tick().await; } None => std::future::pending().await } } => {
                use rxedge_shared::clock::Clock as _;
                let now = rxedge_shared::clock::SystemClock.now_ms();
                let step = 10_000i64;
                let n = (cfg.telemetry_every_secs as i64 * 1000 / step).max(1);
                let readings = cfg.fridges.iter().enumerate().flat_map(|(fi, f)| {
                    (0..n).map(move |k| {
                        let at = now - (n - 1 - k) * step;
                        Reading { sensor: f.clone(), at_ms: at, celsius: Some(fridge_temp(fi, at)) }
                    })
                }).collect();
                if let Err(e) = handle.enqueue(Body::Telemetry(Telemetry { readings }), false).await {
                    tracing::warn!(error = %e, "simulated telemetry not stored");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fridge_cycle_stays_in_range() {
        for t in (0..7_200_000).step_by(10_000) {
            let c = fridge_temp(0, t);
            assert!((2.9..=7.1).contains(&c), "{c} at {t}");
        }
    }

    #[test]
    fn classify_labels() {
        assert_eq!(classify("CHMED16A1H4sI"), "chmed16a");
        assert_eq!(classify("(01)09506000134352"), "gs1");
        assert_eq!(classify("hello"), "unknown");
    }
}
