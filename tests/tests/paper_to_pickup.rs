//! The pharmacist's whole day with a paper prescription: a patient holds a
//! printed eMediplan under the kiosk camera → the hub reads it (Tesseract)
//! into a draft → the pharmacist corrects a field, files the order under the
//! patient's record, adds the products, sees the interaction with what the
//! patient was given last month, approves over it with a reason → stock is
//! reserved first-expiry-first-out → the kiosk reads the pickup ticket and
//! shows "ready" → every pack is scanned at the desk and the order picked up
//! → stock and ledger agree → the invoice carries the copay and VAT per line
//! → the day's Z report adds up to exactly these documents and payments.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

// Prices include VAT (reduced 2.6 %); the hub adds a 4.30 dispensing fee per pack.
const CATALOG: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
09520000003012,Methotrexate 2.5 mg tablets,methotrexate,2.5 mg,tablet,100,L04AX03,no,room,25.00,reduced,,0,
09520000003029,Co-trimoxazole 800/160 mg tablets,sulfamethoxazole;trimethoprim,800/160 mg,tablet,10,J01EE01,no,room,9.70,reduced,,0,
09520000003036,Valsartan/HCT 160/12.5 mg film-coated tablets,valsartan;hydrochlorothiazide,160/12.5 mg,tablet,28,C09DA03,no,room,36.50,reduced,,0,
09520000003043,Simvastatin 20 mg film-coated tablets,simvastatin,20 mg,tablet,30,C10AA01,no,room,15.20,reduced,,0,
";

const MTX: &str = "09520000003012";
const COTRIM: &str = "09520000003029";
const VALS: &str = "09520000003036";
const SIMVA: &str = "09520000003043";

/// A GS1 pack code (GTIN, expiry, batch) in caret notation, as the desk scanner reads it.
fn pack(gtin: &str, expiry_yymmdd: &str, lot: &str) -> String {
    format!("^01{gtin}17{expiry_yymmdd}10{lot}")
}

fn on_hand(lots: &Value, gtin: &str, lot: &str) -> Option<(i64, i64)> {
    lots.as_array()?
        .iter()
        .find(|l| l["gtin"] == gtin && l["lot"] == lot)
        .map(|l| {
            (
                l["quantity"].as_i64().unwrap_or(-1),
                l["reserved"].as_i64().unwrap_or(-1),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_prescription_from_kiosk_scan_to_pickup_invoice_and_z_report() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no printed eMediplan page");
    };
    let t = tempdir("paper-day")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    hub.import_catalog(CATALOG).await?;
    for (gtin, lot, expiry, qty) in [
        (MTX, "M1", "2029-03-31", 5),
        (COTRIM, "EARLY", "2028-01-31", 1),
        (COTRIM, "LATE", "2029-12-31", 10),
        (VALS, "V1", "2029-06-30", 5),
        (SIMVA, "S1", "2029-06-30", 5),
    ] {
        ok(post_json(
            format!("{base}/api/inventory/receive"),
            json!({ "gtin": gtin, "lot": lot, "expiry": expiry, "quantity": qty, "location": "shelf" }),
        )
        .await?)?;
    }
    // Copay: the patient pays 5.00 per line, the insurer the rest.
    let plan = ok(post_json(
        format!("{base}/api/billing/plans"),
        json!({ "name": "Copay 5", "insurer": "Sanitas Test", "kind": "copay", "per_line": "5.00" }),
    )
    .await?)?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("k1"), &hub, "k1", "").await?;
    let act = |id: &str, body: Value| post_json(format!("{base}/api/orders/{id}/action"), body);
    let handover = |id: &str, code: String| {
        post_json(
            format!("{base}/api/orders/{id}/handover"),
            json!({ "code": code }),
        )
    };

    // Last month: Peter Muster was given methotrexate (an eMediplan QR).
    let plan_qr = r#"CHMED16A0{"Id":"mtx-1","MedType":3,"Dt":"2026-10-20T09:00:00+01:00","Patient":{"FName":"Peter","LName":"Muster","BDt":"1943-11-01"},"Medicaments":[{"Id":"09520000003012","IdType":2,"Pos":[]}]}"#;
    sim_show(&kiosk, json!({ "text": plan_qr, "hold_ms": 800 })).await?;
    let first = wait_for("the methotrexate order", WAIT, || async {
        let v = get_json(format!("{base}/api/orders")).await?;
        Ok(v.as_array().and_then(|a| a.first()).cloned())
    })
    .await?;
    let mtx_order = first["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let o = get_json(format!("{base}/api/orders/{mtx_order}")).await?;
    let patient = o["order"]["patient_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the eMediplan made no patient record: {o}"))?
        .to_owned();
    ok(post_json(
        format!("{base}/api/patients/{patient}/plan"),
        json!({ "plan_id": plan["id"] }),
    )
    .await?)?;
    ok(act(&mtx_order, json!({ "action": "start_review" })).await?)?;
    ok(post_json(
        format!("{base}/api/orders/{mtx_order}/lines"),
        json!({ "gtin": MTX, "packs": 1, "sig": "weekly" }),
    )
    .await?)?;
    for a in ["approve", "start_filling", "mark_ready"] {
        ok(act(&mtx_order, json!({ "action": a })).await?)?;
    }
    let v = ok(handover(&mtx_order, pack(MTX, "290331", "M1")).await?)?;
    assert_eq!(v["verdict"], "accept", "{v}");
    ok(act(&mtx_order, json!({ "action": "pick_up" })).await?)?;

    // Today: the paper prescription under the camera (the QR code put away first).
    photograph_page(&kiosk, &fx.join("chmed/emediplan_print_example1.png")).await?;
    let reference = wait_for("the kiosk confirms the page", WAIT, || async {
        let s: Value = reqwest::get(format!("{}/api/scanner", kiosk.url()))
            .await?
            .json()
            .await?;
        Ok((s["last"]["kind"] == "paper")
            .then(|| s["last"]["reference"].as_str().unwrap_or("").to_owned()))
    })
    .await?;
    let order = wait_for("the paper order in the queue", WAIT, || async {
        let v = get_json(format!("{base}/api/orders")).await?;
        Ok(v.as_array()
            .and_then(|a| a.iter().find(|o| o["kind"] == "paper").cloned()))
    })
    .await?;
    assert_eq!(
        order["reference"].as_str(),
        Some(reference.as_str()),
        "{order}"
    );
    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let job = wait_for("the OCR draft", WAIT, || async {
        let v = get_json(format!("{base}/api/ocr/jobs")).await?;
        let Some(job_id) = v["jobs"].as_array().and_then(|a| {
            a.iter()
                .find(|j| j["order_id"] == id.as_str())
                .and_then(|j| j["id"].as_str().map(str::to_owned))
        }) else {
            return Ok(None);
        };
        let j = get_json(format!("{base}/api/ocr/jobs/{job_id}")).await?;
        Ok((j["state"] == "done").then_some(j))
    })
    .await?;
    let job_id = job["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no job id"))?
        .to_owned();
    let draft = &job["draft"];
    assert_eq!(
        draft["patient"]["birth_date"]["value"], "1943-11-01",
        "{draft}"
    );
    assert!(
        draft["items"][0]["name"]
            .as_str()
            .unwrap_or("")
            .contains("ANTIBIOTIKUM"),
        "{draft}"
    );

    // The page gives no quantity for the antibiotic: the pharmacist writes
    // it into the draft (10 days, twice a day), and the trail keeps it.
    ok(post_json(
        format!("{base}/api/ocr/jobs/{job_id}/fields"),
        json!({ "field": "items.0.quantity", "value": "20" }),
    )
    .await?)?;
    let j = get_json(format!("{base}/api/ocr/jobs/{job_id}")).await?;
    assert_eq!(j["draft"]["items"][0]["quantity"], 20, "{j}");
    assert_eq!(j["draft"]["corrected"], json!(["items.0.quantity"]), "{j}");

    // Filed under Peter Muster's record (name and birth date as on the page).
    let filed = ok(post_json(
        format!("{base}/api/orders/{id}/patient"),
        json!({ "patient_id": patient }),
    )
    .await?)?;
    assert_eq!(filed["birth_date"], "1943-11-01", "{filed}");
    ok(act(&id, json!({ "action": "start_review" })).await?)?;
    for (gtin, packs, sig) in [
        (COTRIM, 2, "1-0-1-0"),
        (VALS, 1, "1-0-0-0"),
        (SIMVA, 1, "0.5-0-1-0"),
    ] {
        ok(post_json(
            format!("{base}/api/orders/{id}/lines"),
            json!({ "gtin": gtin, "packs": packs, "sig": sig }),
        )
        .await?)?;
    }
    let review = get_text(format!("{base}/orders/{id}")).await?;
    assert!(
        review.contains("ANTIBIOTIKUM") && review.contains("ocr-box"),
        "the review page shows the draft over the page"
    );

    // Trimethoprim with last month's methotrexate: severe, before approval.
    let checks = get_json(format!("{base}/api/orders/{id}/checks")).await?;
    let findings = checks["findings"].to_string().to_lowercase();
    assert!(
        checks["severe"].as_u64().unwrap_or(0) >= 1
            && findings.contains("methotrexate")
            && findings.contains("co-trimoxazole"),
        "{checks}"
    );
    let (st, v) = act(&id, json!({ "action": "approve" })).await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("severe warning"),
        "{v}"
    );
    let approved = ok(act(
        &id,
        json!({ "action": "approve", "gates": { "override_reason": "methotrexate paused by the rheumatologist during the antibiotic" } }),
    )
    .await?)?;
    assert_eq!(approved["state"], "approved", "{approved}");
    let ticket = approved["ticket"]
        .as_str()
        .ok_or_else(|| anyhow!("no ticket: {approved}"))?
        .to_owned();

    // FEFO: the one pack of the early lot first, then one of the late lot.
    let lots = get_json(format!("{base}/api/inventory/lots")).await?;
    assert_eq!(on_hand(&lots, COTRIM, "EARLY"), Some((1, 1)), "{lots}");
    assert_eq!(on_hand(&lots, COTRIM, "LATE"), Some((10, 1)), "{lots}");

    for a in ["start_filling", "mark_ready"] {
        ok(act(&id, json!({ "action": a })).await?)?;
    }
    // At the kiosk: the ticket is read offline and the order shows ready.
    sim_show(&kiosk, json!({ "text": ticket, "hold_ms": 800 })).await?;
    wait_for("the kiosk reads the ticket", WAIT, || async {
        let s: Value = reqwest::get(format!("{}/api/scanner", kiosk.url()))
            .await?
            .json()
            .await?;
        Ok(
            (s["last"]["kind"] == "pickup_ticket" && s["last"]["order"] == id.as_str())
                .then_some(()),
        )
    })
    .await?;
    let status: Value = reqwest::get(format!("{}/api/order-status?id={id}", kiosk.url()))
        .await?
        .json()
        .await?;
    assert_eq!(status["answer"]["order"]["status"], "ready", "{status}");

    // At the desk: the late lot first is refused (the early one was reserved),
    // then each reserved pack is accepted and the order picked up.
    let v = ok(handover(&id, pack(COTRIM, "291231", "OTHER")).await?)?;
    assert_eq!(v["verdict"], "refuse", "{v}");
    for code in [
        pack(COTRIM, "280131", "EARLY"),
        pack(COTRIM, "291231", "LATE"),
        pack(VALS, "290630", "V1"),
        pack(SIMVA, "290630", "S1"),
    ] {
        let v = ok(handover(&id, code.clone()).await?)?;
        assert_eq!(v["verdict"], "accept", "{code}: {v}");
    }
    ok(act(&id, json!({ "action": "pick_up" })).await?)?;
    let lots = get_json(format!("{base}/api/inventory/lots")).await?;
    assert_eq!(on_hand(&lots, COTRIM, "EARLY"), Some((0, 0)), "{lots}");
    assert_eq!(on_hand(&lots, COTRIM, "LATE"), Some((9, 0)), "{lots}");
    assert_eq!(on_hand(&lots, VALS, "V1"), Some((4, 0)), "{lots}");
    let check = get_json(format!("{base}/api/inventory/ledger-check")).await?;
    assert_eq!(check["ok"], true, "{check}");

    // The invoice, per line: packs × (price + 4.30 fee), VAT 2.6 % inside,
    // the patient 5.00 a line. Co-trimoxazole 2 × 14.00 = 28.00 (VAT 0.71),
    // Valsartan/HCT 40.80 (1.03), Simvastatin 19.50 (0.49): 88.30, VAT 2.23,
    // patient 15.00, insurer 73.30.
    let done = get_json(format!("{base}/api/orders/{id}")).await?;
    assert_eq!(done["order"]["state"], "picked_up", "{done}");
    let inv = ok(post_json(format!("{base}/api/orders/{id}/invoice"), json!({})).await?)?;
    assert_eq!(
        (
            inv["total"].clone(),
            inv["vat"].clone(),
            inv["patient_share"].clone(),
            inv["insurer_share"].clone()
        ),
        (json!(8830), json!(223), json!(1500), json!(7330)),
        "{inv}"
    );
    let inv_id = inv["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no invoice id"))?
        .to_owned();
    ok(post_json(
        format!("{base}/api/invoices/{inv_id}/payments"),
        json!({ "method": "cash", "amount": "15.00" }),
    )
    .await?)?;
    let receipt = get_text(format!("{base}/invoices/{inv_id}/receipt")).await?;
    assert!(
        receipt.contains("88.30") && receipt.contains("15.00"),
        "{receipt}"
    );

    // Z report: last month's methotrexate (25.00 + 4.30 = 29.30, VAT 0.74,
    // patient 5.00) and today's order, and the one cash payment.
    let z = get_json(format!("{base}/api/billing/z")).await?;
    assert_eq!(z["report"]["invoiced_total"], 2930 + 8830, "{z}");
    let vat: i64 = z["report"]["vat_by_rate"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0);
    assert_eq!(vat, 74 + 223, "{z}");
    assert_eq!(z["patient_total"], 500 + 1500, "{z}");
    assert_eq!(z["by_insurer"]["Sanitas Test"], 2430 + 7330, "{z}");
    assert_eq!(z["report"]["by_method"]["cash"], 1500, "{z}");
    Ok(())
}
