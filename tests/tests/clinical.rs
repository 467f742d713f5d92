//! Clinical checks and patient records end to end: an eMediplan scanned at
//! the kiosk files the order under a patient record (made from the plan,
//! with the plan's allergies), the review shows interactions, allergies and
//! over-doses computed by the hub, approval over a severe one needs a written
//! reason that the audit trail keeps, the next plan of the same person finds
//! the same record and sees what was dispensed, and a duplicate record made
//! at the desk merges into it.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

const CATALOG: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
09520000001018,Zocor 20 mg,simvastatin,20 mg,tablet,28,C10AA01,no,room,25.00,reduced,,0,80
09520000001025,Biaxin 500 mg,clarithromycin,500 mg,tablet,14,J01FA09,no,room,30.00,reduced,,0,1000
09520000001032,Brufen 400 mg,ibuprofen,400 mg,tablet,20,M01AE01,no,room,8.00,reduced,,0,2400
09520000001049,Coumadin 5 mg,warfarin,5 mg,tablet,30,B01AA03,no,room,12.00,reduced,,0,
09520000001056,Amoxil 1000 mg,amoxicillin,1000 mg,tablet,20,J01CA04,no,room,15.00,reduced,,0,3000
";

/// Scan `plan` at the kiosk and wait for its order; returns the order.
async fn scan(kiosk: &Kiosk, base: &str, plan: &str, known: usize) -> Result<Value> {
    http_post(format!("{}/api/sim/show", kiosk.url()))
        .json(&json!({ "text": plan, "hold_ms": 800 }))
        .send()
        .await?
        .error_for_status()?;
    wait_for("the order in the queue", WAIT, || async {
        let list: Value = get_json(format!("{base}/api/orders?state=received")).await?;
        let all: Value = get_json(format!("{base}/api/orders")).await?;
        let n = all.as_array().map_or(0, Vec::len);
        Ok((n > known)
            .then(|| list.as_array().and_then(|a| a.last()).cloned())
            .flatten())
    })
    .await
}

fn kinds(checks: &Value) -> Vec<(String, String)> {
    checks["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["kind"].as_str().unwrap_or("").to_owned(),
                        f["severity"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn checks_gate_approval_and_patient_records_follow_the_person() -> Result<()> {
    let tmp = tempdir("clinical")?;
    let hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    hub.import_catalog(CATALOG).await?;
    for gtin in [
        "09520000001018",
        "09520000001025",
        "09520000001032",
        "09520000001049",
    ] {
        let (st, v) = post_json(
            format!("{base}/api/inventory/receive"),
            json!({ "gtin": gtin, "lot": "L1", "expiry": "2030-01-31", "quantity": 10, "location": "shelf" }),
        )
        .await?;
        assert!(st.is_success(), "{v}");
    }
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("k1"), &hub, "k1", "").await?;

    // The plan lists warfarin and simvastatin (GTINs) and one item by
    // Pharmacode, and records an analgesic allergy (eMediplan risk 503).
    let plan = r#"CHMED16A0{"Id":"c1","MedType":3,"Dt":"2026-11-25T09:00:00+01:00","Patient":{"FName":"Maxima","LName":"Matter","BDt":"1981-01-12","Med":{"Rc":[{"Id":1,"R":[577]},{"Id":6,"R":[503]}]}},"Medicaments":[{"Id":"09520000001049","IdType":2,"Pos":[{"D":[0,0,1,0]}]},{"Id":"09520000001018","IdType":2,"Pos":[{"D":[0,0,1,0]}]},{"Id":"2355687","IdType":3,"Pos":[]}]}"#;
    let order = scan(&kiosk, &base, plan, 0).await?;
    assert_eq!(order["patient"], "Maxima Matter (1981-01-12)");
    let pid = order["patient_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the order is filed under a patient: {order}"))?
        .to_owned();
    let patients: Value = get_json(format!("{base}/api/patients?q=matter")).await?;
    assert_eq!(patients.as_array().map(Vec::len), Some(1), "{patients}");
    assert_eq!(patients[0]["id"], pid.as_str());
    let allergy = &patients[0]["allergies"][0];
    assert!(
        allergy["label"].as_str().unwrap_or("").contains("503"),
        "{allergy}"
    );

    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let act = |body: Value| post_json(format!("{base}/api/orders/{id}/action"), body);
    let line = |gtin: &str, sig: &str| {
        post_json(
            format!("{base}/api/orders/{id}/lines"),
            json!({ "gtin": gtin, "packs": 1, "sig": sig }),
        )
    };
    let (st, _) = act(json!({ "action": "start_review" })).await?;
    assert!(st.is_success());

    // Simvastatin for the plan's simvastatin: the same therapy, no warning.
    let (st, v) = line("09520000001018", "0-0-1-0").await?;
    assert!(st.is_success(), "{v}");
    let checks: Value = get_json(format!("{base}/api/orders/{id}/checks")).await?;
    assert_eq!(checks["severe"], 0, "{checks}");
    assert!(kinds(&checks).is_empty(), "{checks}");
    let unchecked = checks["unchecked"].to_string();
    assert!(
        unchecked.contains("2355687"),
        "the Pharmacode item is named as unchecked: {unchecked}"
    );

    // Clarithromycin with simvastatin: contraindicated (severe).
    let (st, v) = line("09520000001025", "1-0-1-0").await?;
    assert!(st.is_success(), "{v}");
    // Ibuprofen 2-2-2-2 x 400 mg = 3200 mg > 2400: over-dose; with the
    // plan's warfarin: bleeding (moderate); and the analgesic allergy.
    let (st, v) = line("09520000001032", "2-2-2-2").await?;
    assert!(st.is_success(), "{v}");
    let checks: Value = get_json(format!("{base}/api/orders/{id}/checks")).await?;
    let k = kinds(&checks);
    for want in [
        ("interaction", "severe"),
        ("interaction", "moderate"),
        ("allergy", "severe"),
        ("dose", "severe"),
    ] {
        assert!(
            k.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} in {checks}"
        );
    }
    assert_eq!(checks["severe"], 3, "{checks}");
    assert_eq!(checks["findings"][0]["severity"], "severe", "severe first");
    let title = checks["findings"].to_string();
    assert!(title.contains("3200 mg a day"), "{title}");
    // The review page shows them.
    let page = get_text(format!("{base}/orders/{id}")).await?;
    assert!(
        page.contains("Clinical checks") && page.contains("Biaxin 500 mg with Zocor 20 mg"),
        "{page}"
    );

    // A client cannot wave them away: approval without a reason is refused
    // whatever the request claims.
    let (st, v) = act(json!({ "action": "approve", "gates": { "severe_warnings": 0 } })).await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("severe warning"),
        "{v}"
    );
    let (st, v) = act(json!({ "action": "approve", "gates": { "override_reason": "prescriber called: short course, statin paused" } })).await?;
    assert!(st.is_success(), "{v}");
    let o: Value = get_json(format!("{base}/api/orders/{id}")).await?;
    let trail = o["trail"].to_string();
    assert!(
        trail.contains("prescriber called")
            && trail.contains("approved over:")
            && trail.contains("Biaxin 500 mg with Zocor 20 mg"),
        "the trail keeps the reason and what was approved over: {trail}"
    );

    // The same person's next plan files under the same record, and what
    // was just approved counts as taken.
    let plan2 = r#"CHMED16A0{"Id":"c2","MedType":3,"Dt":"2026-11-26T09:00:00+01:00","Patient":{"FName":"Maxima","LName":"Matter","BDt":"1981-01-12"},"Medicaments":[]}"#;
    let order2 = scan(&kiosk, &base, plan2, 1).await?;
    assert_eq!(order2["patient_id"], pid.as_str(), "{order2}");
    let id2 = order2["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let checks2: Value = get_json(format!("{base}/api/orders/{id2}/checks")).await?;
    let dispensed = checks2["drugs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|d| d["origin"]["kind"] == "dispensed")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(dispensed, 3, "{checks2}");

    // A duplicate record made at the desk merges into the plan's record:
    // its allergy joins, its orders move, it points at the survivor.
    let (st, dup) = post_json(
        format!("{base}/api/patients"),
        json!({ "name": "Matter Maxima", "birth_date": "", "allergies": "penicillins = atc:J01C" }),
    )
    .await?;
    assert!(st.is_success(), "{dup}");
    let dup_id = dup["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let (st, v) = post_json(
        format!("{base}/api/orders/{id2}/patient"),
        json!({ "patient_id": dup_id }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let (st, v) = post_json(
        format!("{base}/api/patients/{dup_id}/merge"),
        json!({ "into": pid }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let allergies = v["allergies"].to_string();
    assert!(
        allergies.contains("503") && allergies.contains("penicillins"),
        "{allergies}"
    );
    let gone: Value = get_json(format!("{base}/api/patients/{dup_id}")).await?;
    assert_eq!(gone["patient"]["merged_into"], pid.as_str());
    let kept: Value = get_json(format!("{base}/api/patients/{pid}")).await?;
    let orders = kept["orders"].to_string();
    assert!(
        orders.contains(&id) && orders.contains(&id2),
        "both orders are the survivor's: {orders}"
    );
    assert!(kept["log"].to_string().contains("merged in"), "{kept}");
    // A merged record cannot be merged or edited again, and a bad date is named.
    let (st, v) = post_json(
        format!("{base}/api/patients/{dup_id}/merge"),
        json!({ "into": pid }),
    )
    .await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = post_json(
        format!("{base}/api/patients/{pid}"),
        json!({ "name": "Maxima Matter", "birth_date": "12.01.1981" }),
    )
    .await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("12.01.1981"),
        "{v}"
    );
    // An allergy typed with an ingredient nobody stocks is not silently
    // ignored: it shows as one to check by hand.
    let (st, v) = post_json(
        format!("{base}/api/patients/{pid}"),
        json!({ "name": "Maxima Matter", "birth_date": "1981-01-12", "allergies": "penicilin" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let (st, _) = post_json(
        format!("{base}/api/orders/{id2}/action"),
        json!({ "action": "start_review" }),
    )
    .await?;
    assert!(st.is_success());
    let (st, v) = post_json(
        format!("{base}/api/orders/{id2}/lines"),
        json!({ "gtin": "09520000001056", "packs": 1, "sig": "1-0-1-0" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let checks2: Value = get_json(format!("{base}/api/orders/{id2}/checks")).await?;
    assert!(
        kinds(&checks2).contains(&("allergy".to_owned(), "moderate".to_owned())),
        "{checks2}"
    );
    assert!(
        checks2["findings"].to_string().contains("penicilin"),
        "{checks2}"
    );
    let page = get_text(format!("{base}/patients/{pid}")).await?;
    assert!(
        page.contains("Maxima Matter") && page.contains("penicilin"),
        "{page}"
    );
    drop(kiosk);
    Ok(())
}

/// A CHMED23A plan in the specification's own form (its Example 1, scanned
/// at the kiosk) files its order under the patient it names, with the
/// plan's analgesic allergy and insurance card, and its items reach the
/// review page and the clinical checks as CHMED16A's do.
#[tokio::test]
async fn a_chmed23a_plan_files_its_patient_and_its_items_are_checked() -> Result<()> {
    let Some(examples) = chmed23a_examples()? else {
        return skip_or_fail("../shared/fixtures is absent: no CHMED23A example to scan");
    };
    let ex = examples
        .first()
        .ok_or_else(|| anyhow!("no CHMED23A example"))?;
    let tmp = tempdir("clinical23")?;
    let hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    hub.import_catalog(
        "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
7680334810013,Vitamin D3 Streuli 4000 IE/ml,colecalciferol,4000 IE/ml,drops,1,A11CC05,no,room,9.80,reduced,,0,
09520000001032,Brufen 400 mg,ibuprofen,400 mg,tablet,20,M01AE01,no,room,8.00,reduced,,0,2400
",
    )
    .await?;
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("k1"), &hub, "k1", "").await?;
    let order = scan(&kiosk, &base, &ex.code, 0).await?;
    assert_eq!(order["kind"], "chmed23a");
    assert_eq!(
        order["patient"],
        format!("{} {} ({})", ex.first_name, ex.last_name, ex.birth_date).as_str()
    );
    let pid = order["patient_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the order is filed under a patient: {order}"))?
        .to_owned();
    let record: Value = get_json(format!("{base}/api/patients/{pid}")).await?;
    let p = &record["patient"];
    assert_eq!(p["insurance"], format!("card {}", ex.card).as_str(), "{p}");
    assert!(p["allergies"].to_string().contains("503"), "{p}");
    assert_eq!(p["language"], "de", "{p}");

    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let (st, v) = post_json(
        format!("{base}/api/orders/{id}/action"),
        json!({ "action": "start_review" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let page = get_text(format!("{base}/orders/{id}")).await?;
    for want in [
        "eMediplan CHMED23A",
        "Alice",
        "insurance card 87588895877545621",
        "Vitamin D3 Streuli 4000 IE/ml",
        "1.4 every week",
        "Add as prescribed",
    ] {
        assert!(page.contains(want), "{want:?} on the review page");
    }
    // The plan's items outside the catalog are named for a check by hand;
    // the allergy from the plan flags an analgesic added at the desk.
    let (st, v) = post_json(
        format!("{base}/api/orders/{id}/lines"),
        json!({ "gtin": "09520000001032", "packs": 1, "sig": "1-0-1-0" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let checks: Value = get_json(format!("{base}/api/orders/{id}/checks")).await?;
    let unchecked = checks["unchecked"].to_string();
    assert!(
        unchecked.contains("5292958") && unchecked.contains("1246564"),
        "{unchecked}"
    );
    assert!(
        kinds(&checks).contains(&("allergy".to_owned(), "severe".to_owned())),
        "{checks}"
    );
    Ok(())
}
