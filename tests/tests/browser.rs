//! The hub's screens in Debian's real Chromium (playwright-core), against real processes.

use anyhow::{bail, Result};
use rxedge_tests::*;
use std::time::Duration;

/// Why a scenario cannot run on this machine.
const NO_BROWSER: &str =
    "chromium or tests/browser/node_modules missing (scripts/test installs them)";

/// `target/screenshots`, where every scenario saves its screens, and its path
/// as the scripts take it.
fn screenshots() -> Result<(std::path::PathBuf, String)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir)?;
    let arg = dir.to_string_lossy().into_owned();
    Ok((dir, arg))
}

/// Fail, naming the first missing step, unless a scenario printed them all.
fn assert_steps(transcript: &[String], steps: &[&str]) {
    for step in steps {
        assert!(
            transcript.iter().any(|l| l == step),
            "missing {step:?}: {transcript:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_screen_shows_presence_and_live_events() -> Result<()> {
    let t = tempdir("browser")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let mut kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let (hub_url, kiosk_url) = (hub.url(), kiosk.url());
    let Some(mut b) = BrowserScript::start("first_screen.mjs", &[&hub_url, &kiosk_url, "k1"])?
    else {
        return skip_or_fail(NO_BROWSER);
    };
    let wait = Duration::from_secs(60);
    while let Some(need) = b.next_need(wait).await? {
        match need.as_str() {
            "kill-kiosk" => kiosk.kill9(),
            other => bail!("unknown request {other}"),
        }
        b.done(&need).await?;
    }
    let transcript = b.finish(wait).await?;
    assert_steps(
        &transcript,
        &[
            "step: kiosk shown online",
            "step: live feed updated over SSE",
            "step: kiosk shown offline after its Last Will",
        ],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn technician_acknowledges_an_alarm_and_imports_a_logger_file() -> Result<()> {
    let t = tempdir("browser-tech")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(
        &t.path().join("kiosk"),
        &hub,
        "k1",
        "fridges = [\"fridge-1\"]\n",
    )
    .await?;
    let mut rules = rxedge_shared::coldchain::FridgeRules::standard_2_8("fridge-1");
    rules.sample_secs = 1;
    rules.door_open_max_secs = 2;
    post_as(
        Role::Technician,
        format!("{}/api/kiosks/k1/config", hub.url()),
    )
    .json(&serde_json::json!({ "fridges": [rules] }))
    .send()
    .await?
    .error_for_status()?;
    wait_for("kiosk on 1 s sampling", Duration::from_secs(60), || async {
        let s = kiosk.status().await?;
        Ok((s["config"]["fridges"][0]["sample_secs"] == 1).then_some(()))
    })
    .await?;
    http_post(format!("{}/api/sim/fridge", kiosk.url()))
        .json(&serde_json::json!({ "fridge": "fridge-1", "scenario": "door_left_open" }))
        .send()
        .await?
        .error_for_status()?;
    let logger = fixtures_dir()
        .map(|d| d.join("coldchain/fridgetag2_130400191542.txt"))
        .filter(|p| p.exists());
    if logger.is_none() {
        eprintln!("SKIPPED (part): no ../shared/fixtures, so no logger upload in this run");
    }
    let hub_url = hub.url();
    let logger_arg = logger
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(b) = BrowserScript::start("technician.mjs", &[&hub_url, &logger_arg])? else {
        return skip_or_fail(NO_BROWSER);
    };
    let transcript = b.finish(Duration::from_secs(90)).await?;
    let mut expect = vec![
        "step: fridge in alarm with door open and chart",
        "step: alarm acknowledged with a comment, in the audit trail",
    ];
    if logger.is_some() {
        expect.push("step: imported history on the fridge log");
    }
    assert_steps(&transcript, &expect);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_screen_at_both_kiosk_sizes() -> Result<()> {
    let t = tempdir("browser-patient")?;
    let mut hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    // The pack the simulated camera shows is in the hub's catalog and stock.
    hub.import_catalog("gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
               09506000134352,Dafalgan 500 mg,acetaminophen,500 mg,tablet,20,N02BE01,no,room,3.90,reduced,,5,4000
").await?;
    http_post(format!("{}/api/inventory/receive", hub.url()))
        .json(&serde_json::json!({ "gtin": "09506000134352", "lot": "D1", "expiry": "2030-01-31", "quantity": 6, "location": "shelf" }))
        .send()
        .await?
        .error_for_status()?;
    let (shots, shots_arg) = screenshots()?;
    let chunks: Vec<String> = fixtures_dir()
        .and_then(|d| std::fs::read_to_string(d.join("chmed/chmed23a_four_chunks.txt")).ok())
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    if chunks.is_empty() {
        eprintln!("SKIPPED (part): no ../shared/fixtures, so no chunked eMediplan set in this run");
    }
    let kiosk_url = kiosk.url();
    let mode = if chunks.len() == 4 { "chunks" } else { "" };
    let Some(mut b) = BrowserScript::start("patient.mjs", &[&kiosk_url, &shots_arg, mode])? else {
        return skip_or_fail(NO_BROWSER);
    };
    let show = |text: String| {
        let url = format!("{kiosk_url}/api/sim/show");
        async move {
            http_post(url)
                .json(&serde_json::json!({ "text": text, "hold_ms": 800 }))
                .send()
                .await?
                .error_for_status()?;
            Ok::<_, anyhow::Error>(())
        }
    };
    let mut shown = 0u32;
    let mut ticket = String::new();
    while let Some(need) = b.next_need(Duration::from_secs(120)).await? {
        match need.as_str() {
            "show-code" => {
                // A fresh pack code each time: the same code twice is one scan.
                shown += 1;
                show(format!("(01)09506000134352(10)LOT{shown}")).await?;
            }
            "show-two-chunks" => {
                for (n, i) in [(1u64, 3usize), (2, 1)] {
                    show(chunks[i].clone()).await?;
                    wait_for(
                        &format!("{n} of 4 read"),
                        Duration::from_secs(30),
                        || async {
                            let s: serde_json::Value = http_get(format!("{kiosk_url}/api/scanner"))
                                .send()
                                .await?
                                .json()
                                .await?;
                            Ok((s["chunks"][0] == n).then_some(()))
                        },
                    )
                    .await?;
                }
            }
            "show-other-chunks" => {
                for i in [0, 2] {
                    show(chunks[i].clone()).await?;
                }
            }
            "show-page" => {
                let page = fixtures_dir()
                    .map(|d| d.join("chmed/emediplan_print_example1.png"))
                    .ok_or_else(|| anyhow::anyhow!("no fixtures"))?;
                http_post(format!("{kiosk_url}/api/sim/show"))
                    .json(&serde_json::json!({ "path": page, "as_photo": true, "hold_ms": 4000 }))
                    .send()
                    .await?
                    .error_for_status()?;
            }
            "camera-unplug" | "camera-plug" => {
                http_post(format!("{kiosk_url}/api/sim/camera"))
                    .json(&serde_json::json!({ "unplugged": need == "camera-unplug" }))
                    .send()
                    .await?
                    .error_for_status()?;
            }
            "prepare-order" => {
                // A prescription scanned at the kiosk, reviewed, approved and made ready at the hub.
                show(r#"CHMED16A0{"Id":"c1","MedType":3,"Dt":"2026-11-25","Patient":{"FName":"Anna","LName":"Muster","BDt":"1950-03-04"},"Medicaments":[{"Id":"09506000134352","IdType":2}]}"#.to_owned()).await?;
                let id = wait_for("the order at the hub", Duration::from_secs(30), || async {
                    let list: serde_json::Value =
                        http_get(format!("{}/api/orders?state=received", hub.url()))
                            .send()
                            .await?
                            .json()
                            .await?;
                    Ok(list
                        .as_array()
                        .and_then(|a| a.iter().find(|o| o["kind"] == "chmed16a"))
                        .and_then(|o| o["id"].as_str().map(str::to_owned)))
                })
                .await?;
                let api = format!("{}/api/orders/{id}", hub.url());
                http_post(format!("{api}/action"))
                    .json(&serde_json::json!({ "action": "start_review" }))
                    .send()
                    .await?
                    .error_for_status()?;
                http_post(format!("{api}/lines"))
                    .json(&serde_json::json!({ "gtin": "09506000134352", "packs": 1 }))
                    .send()
                    .await?
                    .error_for_status()?;
                for action in ["approve", "start_filling", "mark_ready"] {
                    http_post(format!("{api}/action"))
                        .json(&serde_json::json!({ "action": action }))
                        .send()
                        .await?
                        .error_for_status()?;
                }
                let o: serde_json::Value = http_get(&api).send().await?.json().await?;
                ticket = o["order"]["ticket"].as_str().unwrap_or_default().to_owned();
            }
            "show-ticket" => show(ticket.clone()).await?,
            "hub-down" => hub.stop(),
            other => bail!("unknown request {other}"),
        }
        b.done(&need).await?;
    }
    let transcript = b.finish(Duration::from_secs(120)).await?;
    let mut expect = vec![
        "step: scan flow at 800x480",
        "step: scan flow at 1280x800",
        "step: offline and camera trouble in plain words",
        "step: stock and price for a scanned pack, cached when offline",
        "step: collect my order says the order is ready",
    ];
    if mode == "chunks" {
        expect.push("step: chunked set");
        expect.push("step: paper prescription photographed");
        expect.push("step: live preview shown");
    }
    assert_steps(&transcript, &expect);
    for name in [
        "home-800x480",
        "scan-1280x800",
        "done-800x480",
        "done-offline-1280x800",
    ] {
        assert!(
            shots.join(format!("{name}.png")).exists(),
            "screenshot {name}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_screens_receive_by_scan_explain_refusals_and_recall() -> Result<()> {
    let t = tempdir("browser-stock")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    hub.import_catalog(include_str!("../../hub/data/demo-catalog.csv"))
        .await?;
    let (_, shots_arg) = screenshots()?;
    let hub_url = hub.url();
    let Some(b) = BrowserScript::start("stock.mjs", &[&hub_url, &shots_arg])? else {
        return skip_or_fail(NO_BROWSER);
    };
    let transcript = b.finish(Duration::from_secs(90)).await?;
    assert_steps(
        &transcript,
        &[
            "step: received by scanning, lot and ledger shown",
            "step: refusal explained, adjustment booked and shown live",
            "step: batch recalled, trace page shown",
        ],
    );
    // The screens booked real movements: receipt, then the adjustment.
    let lots: serde_json::Value = http_get(format!("{}/api/inventory/lots", hub.url()))
        .send()
        .await?
        .json()
        .await?;
    let lot = lots
        .as_array()
        .and_then(|a| a.iter().find(|l| l["lot"] == "GLA-77"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (lot["quantity"].as_i64(), lot["status"].as_str()),
        (Some(11), Some("recalled")),
        "{lot}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_wizard_creates_the_admin_names_the_store_and_enrolls_a_kiosk() -> Result<()> {
    let t = tempdir("browser-setup")?;
    let mut hub = Hub::prepare(&t.path().join("hub"), BrokerChoice::Embedded, None, "").await?;
    hub.accounts = false;
    hub.spawn().await?;
    let (_, shots_arg) = screenshots()?;
    let hub_url = hub.url();
    let Some(b) = BrowserScript::start("setup.mjs", &[&hub_url, &shots_arg])? else {
        return skip_or_fail(NO_BROWSER);
    };
    let transcript = b.finish(Duration::from_secs(90)).await?;
    assert_steps(
        &transcript,
        &[
            "step: short password refused",
            "step: setup done",
            "step: administrator signed in",
            "step: wizard closed",
        ],
    );
    // The command the wizard showed enrolls the kiosk, which gets the new store name.
    let cmd = transcript
        .iter()
        .find_map(|l| l.strip_prefix("enroll: "))
        .ok_or_else(|| anyhow::anyhow!("no enroll line: {transcript:?}"))?;
    let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    let kdir = t.path().join("kiosk");
    std::fs::create_dir_all(&kdir)?;
    let out = std::process::Command::new(bin("rxedge-kiosk")?)
        .env("RXEDGE_KIOSK__PATHS__STATE_DIR", kdir.join("state"))
        .args(&args)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = hub.db().await?;
    let (hash, role): (String, String) =
        sqlx::query_as("SELECT password_hash, role FROM users WHERE username = 'anna.m'")
            .fetch_one(&db)
            .await?;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(role, "admin");
    let config: String = sqlx::query_scalar("SELECT config_json FROM kiosks WHERE id = 'entrance'")
        .fetch_one(&db)
        .await?;
    assert!(config.contains("Apotheke am See"), "{config}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pharmacist_reviews_approves_over_a_warning_and_prints_the_receipt() -> Result<()> {
    let t = tempdir("browser-pharmacist")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    hub.import_catalog(include_str!("../../hub/data/demo-catalog.csv"))
        .await?;
    // Zocor is on the patient's plan; Biaxin is what the pharmacist adds.
    let (zocor, biaxin) = ("09520000001124", "09520000002305");
    // The generic simvastatin the pharmacist dispenses instead of Zocor.
    let generic = "09520000001117";
    for (gtin, lot) in [(biaxin, "CLA-1"), (generic, "SIM-1")] {
        http_post(format!("{}/api/inventory/receive", hub.url()))
            .json(&serde_json::json!({ "gtin": gtin, "lot": lot, "expiry": "2030-01-31", "quantity": 5, "location": "shelf" }))
            .send()
            .await?
            .error_for_status()?;
    }
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let plan = format!(
        r#"CHMED16A0{{"Id":"p1","MedType":3,"Dt":"2026-11-25T09:00:00+01:00","Patient":{{"FName":"Maxima","LName":"Matter","BDt":"1981-01-12"}},"Medicaments":[{{"Id":"{zocor}","IdType":2,"Pos":[{{"D":[0,0,1,0]}}]}}]}}"#
    );
    http_post(format!("{}/api/sim/show", kiosk.url()))
        .json(&serde_json::json!({ "text": plan, "hold_ms": 800 }))
        .send()
        .await?
        .error_for_status()?;
    hub.wait_order("the order in the queue", |_| true).await?;
    let (shots, shots_arg) = screenshots()?;
    let hub_url = hub.url();
    // The reserved lot's code, and one of a lot the order does not hold.
    let (right, wrong) = (
        "^01095200000023051730013110CLA-1",
        "^01095200000023051730013110CLA-2",
    );
    let Some(b) = BrowserScript::start(
        "pharmacist.mjs",
        &[
            &hub_url,
            &shots_arg,
            biaxin,
            right,
            wrong,
            "^01095200000011171730013110SIM-1",
        ],
    )?
    else {
        return skip_or_fail(NO_BROWSER);
    };
    let transcript = b.finish(Duration::from_secs(120)).await?;
    assert_steps(
        &transcript,
        &[
            "step: queue shows one waiting",
            "step: review shows the severe interaction",
            "step: the generic is dispensed instead of the brand",
            "step: approval without a reason refused",
            "step: approved with a reason in the trail",
            "step: keyboard shortcuts took the steps",
            "step: packs checked at the desk",
            "step: filled, ready and handed over",
            "step: invoice and receipt with the pickup QR",
        ],
    );
    for name in [
        "queue", "review", "approved", "handover", "invoice", "receipt",
    ] {
        let p = shots.join(format!("pharmacist-{name}.png"));
        assert!(p.exists(), "no screenshot {}", p.display());
    }
    // What the screens did is stored: one picked-up order with its invoice.
    let orders: serde_json::Value = http_get(format!("{}/api/orders", hub.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(orders[0]["state"], "picked_up", "{orders}");
    // The receipt's QR, shot at about a receipt printer's density and as a scanner
    // aimed at it sees it, reads back (through the kiosk's own decoder) as
    // this order's signed pickup ticket.
    let out = std::process::Command::new(bin("rxedge-kiosk")?)
        .arg("scan")
        .arg(shots.join("pharmacist-receipt-qr.png"))
        .output()?;
    let line: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        line["codes"][0]["payload"]["kind"], "pickup_ticket",
        "{line}"
    );
    assert_eq!(
        line["codes"][0]["text"], orders[0]["ticket"],
        "the printed code is the order's ticket"
    );
    drop(kiosk);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xss_payload_in_a_patient_name_is_shown_as_text_and_runs_nothing() -> Result<()> {
    let t = tempdir("browser-xss")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let payload = r#"<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"#;
    let (st, p) = post_json(
        format!("{}/api/patients", hub.url()),
        serde_json::json!({ "name": payload }),
    )
    .await?;
    assert!(st.is_success(), "{p}");
    assert_eq!(p["name"], payload, "stored as typed");
    let id = p["id"].as_str().unwrap_or_default().to_owned();
    // A kiosk connected to the broker, for the administrator to revoke.
    let kiosk = mqtt_as_new_kiosk(&hub, "counter-2").await?;
    let (_, shots_arg) = screenshots()?;
    let hub_url = hub.url();
    let Some(b) = BrowserScript::start("security.mjs", &[&hub_url, &id, &shots_arg, "counter-2"])?
    else {
        return skip_or_fail(NO_BROWSER);
    };
    let transcript = b.finish(Duration::from_secs(90)).await?;
    assert_steps(
        &transcript,
        &[
            "step: the payload reads as text and runs nothing",
            "step: switch user hands the screen from Pia to Max",
            "step: the administrator revokes the kiosk",
        ],
    );
    // The click did what it says, under the administrator's name: the
    // store has the kiosk revoked and the audit trail says who did it.
    let db = rxedge_hub::store::Db::connect(&hub.db_url, 1).await?;
    let k = rxedge_hub::devices::get(&db, "counter-2")
        .await?
        .ok_or_else(|| anyhow::anyhow!("kiosk gone"))?;
    assert!(k.revoked, "{k:?}");
    drop(kiosk);
    let who: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action LIKE 'POST /api/kiosks/%/revoke' ORDER BY seq",
    )
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(who, ["ada"], "one revocation, by the administrator");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_image_zooms_and_pans_with_its_ocr_boxes() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        eprintln!("skipped: ../shared/fixtures (or RXEDGE_FIXTURES) is absent; the page photographed is a real eMediplan print-out from it");
        return Ok(());
    };
    let t = tempdir("browser-zoom")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    photograph_page(&kiosk, &fx.join("chmed/emediplan_print_example1.png")).await?;
    let order = hub
        .wait_order("the paper order in the queue", |o| o["kind"] == "paper")
        .await?;
    let order = order["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no id in {order}"))?
        .to_owned();
    let (shots, shots_arg) = screenshots()?;
    let hub_url = hub.url();
    let Some(b) = BrowserScript::start("review_image.mjs", &[&hub_url, &shots_arg, &order])? else {
        return skip_or_fail(NO_BROWSER);
    };
    let transcript = b.finish(Duration::from_secs(150)).await?;
    assert_steps(
        &transcript,
        &[
            "step: the page with its OCR boxes",
            "step: zoomed in, the boxes stay on their words",
            "step: dragged to pan",
            "step: wheel, keys and back to the whole page",
        ],
    );
    assert!(shots.join("pharmacist-review-zoom.png").exists());
    drop(kiosk);
    Ok(())
}
