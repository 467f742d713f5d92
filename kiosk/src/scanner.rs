//! The scanning loop: frames from the camera, QR decoding off the async
//! threads, parsing, chunk assembly, and one durable event per code read.
//! Camera loss is reported to the hub and recovers by itself.

use crate::camera::FrameSource;
use crate::driver::Handle;
use rxedge_shared::payload::{self, chmed, Payload};
use rxedge_shared::protocol::{Body, DeviceStatus, QrScanned};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the patient screen shows about scanning.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanStatus {
    /// The camera works.
    pub camera_ok: bool,
    /// Why not.
    pub camera_problem: Option<String>,
    /// The last code stored.
    pub last: Option<LastScan>,
    /// A chunked eMediplan set in progress: codes read, codes needed.
    pub chunks: Option<(u32, u32)>,
    /// Codes stored since start.
    pub stored: u64,
    /// Decoder panics survived since start.
    pub decoder_panics: u64,
}

/// The last code stored, for the confirmation screen.
#[derive(Debug, Clone, Serialize)]
pub struct LastScan {
    /// Payload kind.
    pub kind: String,
    /// Short reference the patient can quote.
    pub reference: String,
    /// Event sequence.
    pub seq: u64,
}

fn now_ms() -> i64 {
    use rxedge_shared::clock::Clock as _;
    rxedge_shared::clock::SystemClock.now_ms()
}

/// Run until shutdown.
pub async fn run(
    mut source: Box<dyn FrameSource>,
    handle: Handle,
    status: watch::Sender<ScanStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut st = ScanStatus {
        camera_ok: true,
        ..Default::default()
    };
    let _ = status.send(st.clone());
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut assembler = chmed::Assembler::default();
    let mut camera_reported_down = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let step = tokio::task::spawn_blocking(move || {
            let r = source
                .next_frame()
                .map(|f| f.map(|img| crate::qr::decode(&img, Duration::from_millis(120))));
            (source, r)
        });
        let (back, result) = tokio::select! {
            r = step => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "scanner thread failed; scanning stops");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        };
        source = back;
        match result {
            Err(e) => {
                if !camera_reported_down {
                    tracing::warn!(error = %e, "camera lost");
                    camera_reported_down = true;
                    st.camera_ok = false;
                    st.camera_problem = Some(e.to_string());
                    let _ = status.send(st.clone());
                    let body = Body::DeviceStatus(DeviceStatus {
                        component: "camera".into(),
                        ok: false,
                        detail: e.to_string(),
                    });
                    if let Err(e) = handle.enqueue(body, false).await {
                        tracing::error!(error = %e, "camera status not stored");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            Ok(frame) => {
                if camera_reported_down {
                    tracing::info!("camera back");
                    camera_reported_down = false;
                    st.camera_ok = true;
                    st.camera_problem = None;
                    let body = Body::DeviceStatus(DeviceStatus {
                        component: "camera".into(),
                        ok: true,
                        detail: "working again".into(),
                    });
                    if let Err(e) = handle.enqueue(body, false).await {
                        tracing::error!(error = %e, "camera status not stored");
                    }
                    let _ = status.send(st.clone());
                }
                let Some(report) = frame else { continue };
                st.decoder_panics += u64::from(report.panics);
                for code in report.codes {
                    // A code held up is seen on many frames: store it once.
                    seen.retain(|_, t| t.elapsed() < Duration::from_secs(5));
                    if seen.insert(code.text.clone(), Instant::now()).is_some() {
                        continue;
                    }
                    let parsed = payload::parse(&code.text);
                    let (text, kind) = match parsed {
                        Payload::Chmed23aChunk(c) => match assembler.add(c) {
                            Ok(chmed::Progress::Partial { have, total }) => {
                                st.chunks = Some((have, total));
                                let _ = status.send(st.clone());
                                continue;
                            }
                            Ok(chmed::Progress::Complete { text, .. }) => {
                                st.chunks = None;
                                (text, "chmed23a".to_owned())
                            }
                            Err(e) => {
                                st.chunks = None;
                                tracing::warn!(error = %e, "chunked eMediplan set did not assemble");
                                (code.text.clone(), "unknown".to_owned())
                            }
                        },
                        p => (code.text.clone(), p.kind().to_owned()),
                    };
                    match handle
                        .enqueue(
                            Body::QrScanned(QrScanned {
                                text,
                                payload_kind: kind.clone(),
                            }),
                            false,
                        )
                        .await
                    {
                        Ok(stored) => {
                            st.stored += 1;
                            let id = stored.id.simple().to_string();
                            st.last = Some(LastScan {
                                kind,
                                reference: id[id.len().saturating_sub(6)..].to_uppercase(),
                                seq: stored.seq,
                            });
                            tracing::info!(seq = stored.seq, at = now_ms(), "code stored");
                        }
                        Err(e) => tracing::error!(error = %e, "scanned code not stored"),
                    }
                    let _ = status.send(st.clone());
                }
            }
        }
    }
}
