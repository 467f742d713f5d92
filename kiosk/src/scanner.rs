//! The scanning loop: frames from the camera, QR decoding off the async
//! threads, parsing, chunk assembly, and one durable event per code read.
//! Camera loss is reported to the hub and recovers by itself.

use crate::camera::FrameSource;
use crate::driver::Handle;
use crate::paper::{self, Advice};
use crate::upload::PaperStore;
use rxedge_shared::payload::{self, chmed, Payload};
use rxedge_shared::protocol::{Body, DeviceStatus, PaperCaptured, QrScanned};
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
    /// Paper mode: what the patient should change, or `good`.
    pub paper: Option<Advice>,
    /// Paper images not yet on the hub.
    pub paper_waiting: usize,
}

/// What the camera is looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// QR codes (the default).
    Qr,
    /// A paper prescription to photograph.
    Paper,
}

/// Good frames in a row before the page is captured (the patient holds still).
const GOOD_FRAMES: u32 = 3;

enum Seen {
    Codes(crate::qr::Report),
    Page(paper::Quality, Option<Vec<u8>>),
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
    /// For a medicine pack (GS1), its GTIN: the screen asks the hub whether
    /// it is in stock and what it costs.
    pub gtin: Option<String>,
    /// For a pickup ticket that verified offline: its order.
    pub order: Option<String>,
    /// For a pickup ticket that did not verify: why (forged, expired, other pharmacy).
    pub ticket_problem: Option<String>,
}

/// The latest camera picture for the patient screen's live preview: a small
/// JPEG, refreshed a few times a second, `None` while nothing is in view.
#[derive(Clone, Default)]
pub struct Preview(std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>);

impl Preview {
    /// The current picture.
    pub fn get(&self) -> Option<Vec<u8>> {
        self.0.lock().ok().and_then(|p| p.clone())
    }
    fn set(&self, jpeg: Option<Vec<u8>>) {
        if let Ok(mut p) = self.0.lock() {
            *p = jpeg;
        }
    }
}

/// Longest side of the preview picture, pixels.
const PREVIEW_SIZE: u32 = 480;
/// Preview pictures are made at most this often.
const PREVIEW_EVERY: Duration = Duration::from_millis(200);

fn preview_jpeg(img: &image::GrayImage) -> Option<Vec<u8>> {
    let (w, h) = img.dimensions();
    let scale = (PREVIEW_SIZE as f32 / w.max(h).max(1) as f32).min(1.0);
    let small = image::imageops::resize(
        img,
        ((w as f32 * scale) as u32).max(1),
        ((h as f32 * scale) as u32).max(1),
        image::imageops::FilterType::Triangle,
    );
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 60)
        .encode_image(&small)
        .ok()?;
    Some(out)
}

/// What the scanner checks pickup tickets against (the hub key from enrollment),
/// and where it puts its live picture.
#[derive(Clone)]
pub struct ScannerLinks {
    /// The hub's key.
    pub hub_key: rxedge_shared::sign::VerifyingKey,
    /// This kiosk's store.
    pub store: String,
    /// Where the live preview goes.
    pub preview: Preview,
    /// Decode timings for `/metrics`.
    pub metrics: std::sync::Arc<crate::ui::KioskMetrics>,
}

use rxedge_shared::clock::system_now_ms as now_ms;

/// A code that is a whole prescription by itself (CHMED16A, or a one-code
/// CHMED23A): on the paper screen it is taken as scanned instead of photographed.
fn is_whole_prescription(text: &str) -> bool {
    matches!(
        rxedge_shared::payload::parse(text),
        rxedge_shared::payload::Payload::Chmed16a(_) | rxedge_shared::payload::Payload::Chmed23a(_)
    )
}

/// Run until shutdown.
pub async fn run(
    mut source: Box<dyn FrameSource>,
    handle: Handle,
    status: watch::Sender<ScanStatus>,
    mode: std::sync::Arc<watch::Sender<Mode>>,
    papers: PaperStore,
    tickets: ScannerLinks,
    mut shutdown: watch::Receiver<bool>,
) {
    let preview = tickets.preview.clone();
    let mut last_preview = Instant::now() - PREVIEW_EVERY;
    let mut good_run = 0u32;
    let mut st = ScanStatus {
        camera_ok: true,
        ..Default::default()
    };
    let _ = status.send(st.clone());
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut assembler = chmed::Assembler::default();
    let mut camera_reported_down = false;
    // The QR step the next frame starts at (see `qr::decode_from`).
    let mut qr_resume = 0usize;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let m = *mode.borrow();
        if m == Mode::Qr {
            good_run = 0;
        }
        let capture_next = good_run + 1 >= GOOD_FRAMES;
        let want_preview = last_preview.elapsed() >= PREVIEW_EVERY;
        if want_preview {
            last_preview = Instant::now();
        }
        let pv = preview.clone();
        let pm = tickets.metrics.clone();
        let resume = if m == Mode::Qr { qr_resume } else { 0 };
        let step = tokio::task::spawn_blocking(move || {
            let r = source.next_frame().map(|f| {
                if want_preview {
                    pv.set(f.as_ref().and_then(preview_jpeg));
                }
                f.map(|img| match m {
                    Mode::Qr => {
                        let t = Instant::now();
                        let r = crate::qr::decode_from(&img, Duration::from_millis(120), resume);
                        pm.qr_decode_seconds.observe(t.elapsed().as_secs_f64());
                        Seen::Codes(r)
                    }
                    Mode::Paper => {
                        // An eMediplan code held up on the paper screen is
                        // read as the code it is: its data is exact, a photo
                        // of it is not (and a code alone passes the page gate).
                        let mut r = crate::qr::decode(&img, Duration::from_millis(30));
                        r.codes.retain(|c| is_whole_prescription(&c.text));
                        if !r.codes.is_empty() {
                            return Seen::Codes(r);
                        }
                        let q = paper::assess(&img, &paper::Gate::default());
                        let jpeg = (q.advice == Advice::Good && capture_next)
                            .then(|| paper::finish(&img).ok())
                            .flatten();
                        Seen::Page(q, jpeg)
                    }
                })
            });
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
                let report = match frame {
                    None => {
                        if st.paper.is_some() != (m == Mode::Paper) {
                            st.paper = (m == Mode::Paper).then_some(Advice::ShowPage);
                            let _ = status.send(st.clone());
                        }
                        continue;
                    }
                    Some(Seen::Page(q, jpeg)) => {
                        good_run = if q.advice == Advice::Good {
                            good_run + 1
                        } else {
                            0
                        };
                        st.paper = Some(q.advice);
                        if let Some(jpeg) = jpeg {
                            store_page(&handle, &papers, &jpeg, &mut st).await;
                            good_run = 0;
                            st.paper = None;
                            mode.send_replace(Mode::Qr);
                        }
                        st.paper_waiting = papers.waiting();
                        let _ = status.send(st.clone());
                        continue;
                    }
                    Some(Seen::Codes(r)) => r,
                };
                if st.paper.take().is_some() {
                    let _ = status.send(st.clone());
                }
                // A prescription code read on the paper screen ends the
                // paper capture, as a photographed page does.
                if m == Mode::Paper && !report.codes.is_empty() {
                    good_run = 0;
                    mode.send_replace(Mode::Qr);
                }
                st.decoder_panics += u64::from(report.panics);
                qr_resume = report.resume;
                for code in report.codes {
                    // A code held up is seen on many frames: store it once.
                    seen.retain(|_, t| t.elapsed() < Duration::from_secs(5));
                    if seen.insert(code.text.clone(), Instant::now()).is_some() {
                        continue;
                    }
                    // Parsers are fuzzed, but a scanned code is hostile input: a
                    // panic costs this code (kept as unknown), never the scanner.
                    let parsed =
                        crate::qr::isolated(|| payload::parse(&code.text)).unwrap_or_else(|| {
                            tracing::error!("payload parser panicked; code kept as unknown");
                            Payload::Unknown {
                                text: code.text.clone(),
                                problem: Some("could not be parsed".into()),
                            }
                        });
                    let gtin = match &parsed {
                        Payload::Gs1(g) => g.gtin.clone(),
                        _ => None,
                    };
                    // Tickets are checked here, offline; a bad one is still sent on
                    // for the pharmacist, never dropped.
                    let (order, ticket_problem) = match &parsed {
                        Payload::PickupTicket { .. } => match rxedge_shared::ticket::verify(
                            &code.text,
                            &tickets.hub_key,
                            &tickets.store,
                            now_ms(),
                        ) {
                            Ok(t) => (Some(t.order), None),
                            Err(e) => (None, Some(e.to_string())),
                        },
                        _ => (None, None),
                    };
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
                                gtin,
                                order,
                                ticket_problem,
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

/// Keep the page until the hub has it, and record the event that refers to it.
async fn store_page(handle: &Handle, papers: &PaperStore, jpeg: &[u8], st: &mut ScanStatus) {
    let sha = match papers.put(jpeg).await {
        Ok(sha) => sha,
        Err(e) => {
            tracing::error!(error = %e, "paper image not stored");
            return;
        }
    };
    let body = Body::PaperCaptured(PaperCaptured {
        sha256: sha,
        bytes: jpeg.len() as u64,
        mime: "image/jpeg".into(),
    });
    match handle.enqueue(body, false).await {
        Ok(stored) => {
            st.stored += 1;
            let id = stored.id.simple().to_string();
            st.last = Some(LastScan {
                kind: "paper".into(),
                reference: id[id.len().saturating_sub(6)..].to_uppercase(),
                seq: stored.seq,
                gtin: None,
                order: None,
                ticket_problem: None,
            });
        }
        Err(e) => tracing::error!(error = %e, "paper capture event not stored"),
    }
}
