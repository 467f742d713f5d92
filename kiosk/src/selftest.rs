//! `rxedge-kiosk selftest`: prove a build works on its target (a Pi, or qemu).
//!
//! Each check exercises a real part of the kiosk with no hub, camera or probe:
//! the QR pipeline, the CHMED parser, the sled store (write, flush, reopen,
//! read back) and the cold-chain alarm engine. It is what `scripts/test-pi`
//! runs under `qemu-aarch64-static`.

use crate::camera::SimCamera;
use crate::store::{OutboxStore, Record};
use rxedge_shared::coldchain::{AlarmKind, Engine, FridgeRules, Input, Transition};
use rxedge_shared::outbox::Meta;
use rxedge_shared::payload::{self, Payload};
use rxedge_shared::protocol::Class;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// A prescription written for this test (not a fixture): one GTIN, 1-0-1-0.
const CHMED: &str = r#"CHMED16A0{"Id":"selftest-1","MedType":2,"Dt":"2026-01-01T08:00:00+01:00","Auth":"7601000000000","Patient":{"FName":"Self","LName":"Test","BDt":"1950-01-01"},"Medicaments":[{"Id":"7680000000000","IdType":2,"Pos":[{"D":[1,0,1,0]}]}]}"#;

/// One check's outcome.
#[derive(Debug, Serialize)]
pub struct Check {
    /// Name of the check.
    pub name: String,
    /// Passed?
    pub ok: bool,
    /// What it saw.
    pub detail: String,
    /// Time taken, ms.
    pub ms: f64,
}

fn check(name: &str, f: impl FnOnce() -> Result<String, String>) -> Check {
    let t = Instant::now();
    // A panic is a failed check, not a crashed self-test.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("panicked".into()));
    let (ok, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Check {
        name: name.into(),
        ok,
        detail,
        ms: t.elapsed().as_secs_f64() * 1000.0,
    }
}

/// Run every check. `qr_files` are photos with a code each (and `N.txt`
/// beside `N.png` holding the expected text, as in ZXing's sets, if present);
/// `tmp` is where the sled store goes.
pub fn run(qr_files: &[std::path::PathBuf], tmp: &Path) -> Vec<Check> {
    let mut out = vec![
        check("qr-rendered", qr_rendered),
        check("chmed16a", chmed),
        check("sled-store", || sled_store(tmp)),
        check("alarm-rule", alarm_rule),
    ];
    for f in qr_files {
        out.push(check(&format!("qr-file {}", f.display()), || qr_file(f)));
    }
    out
}

fn qr_rendered() -> Result<String, String> {
    let img = SimCamera::as_photo(&SimCamera::render_qr(CHMED)?);
    let r = crate::qr::decode(&img, Duration::from_secs(5));
    match r.codes.first() {
        Some(c) if c.text == CHMED => {
            Ok(format!("decoded {} bytes by {}", c.text.len(), c.strategy))
        }
        Some(c) => Err(format!("decoded the wrong text: {:?}", c.text)),
        None => Err(format!("no code found in {} attempts", r.attempts)),
    }
}

fn chmed() -> Result<String, String> {
    match payload::parse(CHMED) {
        Payload::Chmed16a(p) => {
            let m = p.medicaments.first().ok_or("no medicament")?;
            let d = m
                .posology
                .first()
                .and_then(|p| p.daily.clone())
                .ok_or("no posology")?;
            if m.id == "7680000000000" && d == [1.0, 0.0, 1.0, 0.0] {
                Ok(format!(
                    "patient {} {}, 1 medicament, 1-0-1-0",
                    p.patient.first_name, p.patient.last_name
                ))
            } else {
                Err(format!("wrong medicament {m:?}"))
            }
        }
        other => Err(format!("parsed as {}", other.kind())),
    }
}

fn sled_store(tmp: &Path) -> Result<String, String> {
    let dir = tmp.join("selftest-outbox");
    let _ = std::fs::remove_dir_all(&dir);
    let rec = Record {
        meta: Meta {
            seq: 1,
            id: uuid::Uuid::from_u128(0x5e1f_7e57),
            class: Class::Critical,
            bytes: 5,
            created_ms: 1,
        },
        msg: b"hello".to_vec(),
    };
    {
        let s = OutboxStore::open(&dir, 1).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(s.append(std::slice::from_ref(&rec), &[], Default::default()))
            .map_err(|e| e.to_string())?;
    }
    // Reopened from disk: what append reported stored must be there.
    let s = OutboxStore::open(&dir, 1).map_err(|e| e.to_string())?;
    let got = s.msg(1).map_err(|e| e.to_string())?;
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    match got {
        Some(m) if m == rec.msg => Ok("record written, flushed, reopened and read back".into()),
        other => Err(format!("read back {other:?}")),
    }
}

fn alarm_rule() -> Result<String, String> {
    let mut e = Engine::new(FridgeRules::standard_2_8("selftest"), 0);
    let min = 60_000;
    let mut changes = Vec::new();
    for m in 0..60 {
        let c = if m < 10 { 5.0 } else { 9.5 };
        changes.extend(e.push(Input::Reading {
            at_ms: m * min,
            celsius: Some(c),
        }));
    }
    let raised = changes.iter().find(|c| {
        c.key.kind == AlarmKind::HighSingle && matches!(c.transition, Transition::Raised { .. })
    });
    match raised {
        Some(c) => Ok(format!(
            "{} raised for 9.5 °C held 50 min",
            c.alarm_id("selftest")
        )),
        None => Err(format!("no high alarm; changes: {changes:?}")),
    }
}

fn qr_file(f: &Path) -> Result<String, String> {
    let img = image::open(f)
        .map_err(|e| format!("cannot read: {e}"))?
        .to_luma8();
    let r = crate::qr::decode(&img, Duration::from_secs(2));
    let expected = std::fs::read_to_string(f.with_extension("txt")).ok();
    match (r.codes.first(), expected) {
        (None, _) => Err(format!("no code found in {} attempts", r.attempts)),
        (Some(c), Some(want)) if c.text.trim_end() != want.trim_end() => {
            Err(format!("decoded {:?}, expected {:?}", c.text, want))
        }
        (Some(c), _) => Ok(format!("decoded {} bytes by {}", c.text.len(), c.strategy)),
    }
}
