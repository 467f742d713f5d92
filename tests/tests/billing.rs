//! Billing end to end: a patient on a coinsurance plan scans an eMediplan,
//! the pharmacist approves, the order is picked up and its invoice is
//! finalised with a gapless number, VAT and shares worked out per line; the
//! patient pays, a credit note (its own number) cancels a second invoice and
//! refunds what was paid, and the day's Z report adds up to exactly those
//! documents and payments. Ten orders finalised at once take ten
//! consecutive numbers.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

// Prices include VAT (reduced 2.6 % for medicines, standard 8.1 %).
const CATALOG: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
09520000002015,Metformin 500 mg,metformin,500 mg,tablet,100,A10BA02,no,room,12.35,reduced,,0,3000
09520000002022,Eye care gel,carbomer,2 mg,gel,1,S01XA20,no,room,9.90,standard,,0,
";

/// Scan a plan for `first last` and take the order through review and
/// approval with `lines`; returns the order id.
async fn approved_order(
    kiosk: &Kiosk,
    base: &str,
    tag: &str,
    lines: &[(&str, i64)],
    known: usize,
) -> Result<String> {
    let plan = format!(
        r#"CHMED16A0{{"Id":"{tag}","MedType":3,"Dt":"2026-11-25T09:00:00+01:00","Patient":{{"FName":"Hans","LName":"Meier","BDt":"1944-02-29"}},"Medicaments":[]}}"#
    );
    http_post(format!("{}/api/sim/show", kiosk.url()))
        .json(&json!({ "text": plan, "hold_ms": 800 }))
        .send()
        .await?
        .error_for_status()?;
    let order = wait_for("the order in the queue", WAIT, || async {
        let all: Value = get_json(format!("{base}/api/orders?state=received")).await?;
        let total: Value = get_json(format!("{base}/api/orders")).await?;
        Ok((total.as_array().map_or(0, Vec::len) > known)
            .then(|| all.as_array().and_then(|a| a.last()).cloned())
            .flatten())
    })
    .await?;
    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let act = |a: &str| {
        post_json(
            format!("{base}/api/orders/{id}/action"),
            json!({ "action": a }),
        )
    };
    ok(act("start_review").await?)?;
    for (gtin, packs) in lines {
        ok(post_json(
            format!("{base}/api/orders/{id}/lines"),
            json!({ "gtin": gtin, "packs": packs, "sig": "1-0-1-0" }),
        )
        .await?)?;
    }
    ok(act("approve").await?)?;
    Ok(id)
}

/// Put the patient the order is filed under on `plan`.
async fn put_on_plan(base: &str, order: &str, plan: &Value) -> Result<()> {
    let o: Value = get_json(format!("{base}/api/orders/{order}")).await?;
    let patient = o["order"]["patient_id"]
        .as_str()
        .ok_or_else(|| anyhow!("no patient: {o}"))?;
    ok(post_json(
        format!("{base}/api/patients/{patient}/plan"),
        json!({ "plan_id": plan["id"] }),
    )
    .await?)?;
    Ok(())
}

#[tokio::test]
async fn invoices_payments_credit_notes_and_the_z_report_add_up() -> Result<()> {
    let tmp = tempdir("billing")?;
    // The store's day is its local day, not the UTC day: the hub runs in a
    // zone whose date differs from UTC's for hours yet (see `store_zone`).
    let (zone, offset_h) = store_zone(chrono::Utc::now());
    let mut hub = Hub::prepare(&tmp.path().join("hub"), BrokerChoice::Embedded, None, "").await?;
    hub.env.push(("TZ".into(), zone.into()));
    hub.spawn().await?;
    let local_day = (chrono::Utc::now() + chrono::Duration::hours(offset_h))
        .format("%Y-%m-%d")
        .to_string();
    let utc_day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_ne!(local_day, utc_day, "{zone}");
    let base = hub.url();
    hub.import_catalog(CATALOG).await?;
    for gtin in ["09520000002015", "09520000002022"] {
        ok(post_json(
            format!("{base}/api/inventory/receive"),
            json!({ "gtin": gtin, "lot": "B1", "expiry": "2030-06-30", "quantity": 100, "location": "shelf" }),
        )
        .await?)?;
    }
    // 10 % coinsurance up to 20.00 a year.
    let plan = ok(post_json(
        format!("{base}/api/billing/plans"),
        json!({ "name": "Basic 10 %", "insurer": "Helvetia Kasse", "kind": "coinsurance", "share_percent": "10", "annual_cap": "20.00" }),
    )
    .await?)?;
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("k1"), &hub, "k1", "").await?;

    let id = approved_order(
        &kiosk,
        &base,
        "b1",
        &[("09520000002015", 2), ("09520000002022", 1)],
        0,
    )
    .await?;
    put_on_plan(&base, &id, &plan).await?;

    // Metformin: 2 × (12.35 + 4.30 fee) = 33.30, VAT 2.6 % inside = 0.84,
    // patient 10 % = 3.33. Gel: 9.90 + 4.30 = 14.20, VAT 8.1 % = 1.06,
    // patient 1.42. Total 47.50, VAT 1.90, patient 4.75, insurer 42.75.
    let q: Value = get_json(format!("{base}/api/orders/{id}/quote")).await?;
    assert_eq!(q["priced"]["total"], 4750, "{q}");
    assert_eq!(q["priced"]["vat"], 190, "{q}");
    assert_eq!(q["priced"]["patient"], 475, "{q}");
    assert_eq!(q["priced"]["insurer"], 4275, "{q}");

    // Pick-up (every pack scanned at the desk) finalises the invoice.
    for a in ["start_filling", "mark_ready"] {
        ok(post_json(
            format!("{base}/api/orders/{id}/action"),
            json!({ "action": a }),
        )
        .await?)?;
    }
    for code in [
        "^01095200000020151730063010B1",
        "^01095200000020151730063010B1",
        "^01095200000020221730063010B1",
    ] {
        let v = ok(post_json(
            format!("{base}/api/orders/{id}/handover"),
            json!({ "code": code }),
        )
        .await?)?;
        assert_eq!(v["verdict"], "accept", "{v}");
    }
    for a in ["pick_up"] {
        ok(post_json(
            format!("{base}/api/orders/{id}/action"),
            json!({ "action": a }),
        )
        .await?)?;
    }
    let after: Value = get_json(format!("{base}/api/orders/{id}")).await?;
    let number_1 = after["invoice"]["number"]
        .as_str()
        .ok_or_else(|| anyhow!("pick-up finalised no invoice: {after}"))?
        .to_owned();
    assert!(number_1.ends_with("-000001"), "{number_1}");
    let inv: Value = ok(post_json(format!("{base}/api/orders/{id}/invoice"), json!({})).await?)?;
    assert_eq!(
        inv["number"],
        number_1.as_str(),
        "finalising again returns the same invoice"
    );
    let inv_id = inv["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    assert_eq!(
        (
            inv["total"].clone(),
            inv["vat"].clone(),
            inv["patient_share"].clone(),
            inv["insurer_share"].clone()
        ),
        (json!(4750), json!(190), json!(475), json!(4275))
    );

    // Payments: an overpayment is refused in words; cash and the insurer settle it.
    let (st, v) = post_json(
        format!("{base}/api/invoices/{inv_id}/payments"),
        json!({ "method": "cash", "amount": "5.00" }),
    )
    .await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("4.75 still owed"),
        "{v}"
    );
    // Two tills take the same 4.75 at once: one payment fits, the other is refused.
    let both = futures::future::join_all((0..2).map(|_| {
        post_json(
            format!("{base}/api/invoices/{inv_id}/payments"),
            json!({ "method": "cash", "amount": "4.75" }),
        )
    }))
    .await;
    let fitted = both
        .into_iter()
        .filter_map(|r| r.ok())
        .filter(|(st, _)| st.is_success())
        .count();
    assert_eq!(fitted, 1, "exactly one of two simultaneous payments fits");
    let paid = ok(post_json(
        format!("{base}/api/invoices/{inv_id}/payments"),
        json!({ "method": "insurer", "amount": "42.75" }),
    )
    .await?)?;
    assert_eq!(paid["outstanding"], json!({ "patient": 0, "insurer": 0 }));

    // A second order: the cap has 20.00 - 4.75 = 15.25 left.
    let id2 = approved_order(&kiosk, &base, "b2", &[("09520000002015", 10)], 1).await?;
    let inv2 = ok(post_json(format!("{base}/api/orders/{id2}/invoice"), json!({})).await?)?;
    // 10 × 16.65 = 166.50; 10 % = 16.65 > 15.25 left: the patient pays 15.25.
    assert_eq!(inv2["patient_share"], 1525, "{inv2}");
    assert!(
        inv2["number"].as_str().unwrap_or("").ends_with("000002"),
        "{inv2}"
    );
    let inv2_id = inv2["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    ok(post_json(
        format!("{base}/api/invoices/{inv2_id}/payments"),
        json!({ "method": "card", "amount": "15.25" }),
    )
    .await?)?;
    // Corrected by credit note only: its own number, negated amounts, and
    // the card payment is refunded against it.
    let (st, v) = post_json(
        format!("{base}/api/invoices/{inv2_id}/credit"),
        json!({ "reason": "" }),
    )
    .await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
    let cn = ok(post_json(
        format!("{base}/api/invoices/{inv2_id}/credit"),
        json!({ "reason": "wrong pack size" }),
    )
    .await?)?;
    assert!(
        cn["number"].as_str().unwrap_or("").ends_with("000003"),
        "{cn}"
    );
    assert_eq!(cn["total"], -16650);
    assert_eq!(cn["insurer"], "Helvetia Kasse");
    let (st, _) = post_json(
        format!("{base}/api/invoices/{inv2_id}/credit"),
        json!({ "reason": "again" }),
    )
    .await?;
    assert_eq!(
        st,
        reqwest::StatusCode::BAD_REQUEST,
        "an invoice is credited once"
    );
    let cn_id = cn["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let c: Value = get_json(format!("{base}/api/invoices/{cn_id}")).await?;
    assert_eq!(
        c["outstanding"]["patient"], -1525,
        "the card payment is due back: {c}"
    );
    ok(post_json(
        format!("{base}/api/invoices/{cn_id}/payments"),
        json!({ "method": "card", "amount": "-15.25" }),
    )
    .await?)?;
    // The credit note gave the cap back: a new invoice may use it again.
    let q3: Value = get_json(format!("{base}/api/orders/{id2}/quote")).await?;
    assert_eq!(q3["year_paid"], 475, "{q3}");

    // Ten orders invoiced at once take ten consecutive numbers.
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            approved_order(
                &kiosk,
                &base,
                &format!("p{i}"),
                &[("09520000002022", 1)],
                2 + i,
            )
            .await?,
        );
    }
    let made = futures::future::join_all(
        ids.iter()
            .map(|id| post_json(format!("{base}/api/orders/{id}/invoice"), json!({}))),
    )
    .await;
    let mut seqs = Vec::new();
    for m in made {
        let v = ok(m?)?;
        let n = v["number"].as_str().unwrap_or("");
        seqs.push(n.rsplit('-').next().unwrap_or("").parse::<u32>()?);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (4..14).collect::<Vec<u32>>(), "gapless and unique");

    // The Z report: exactly these documents and payments, on the store's
    // day; the UTC day of the same instants has none.
    let z: Value = get_json(format!("{base}/api/billing/z")).await?;
    let docs = z["documents"].as_array().map_or(0, Vec::len);
    assert_eq!(docs, 13, "{z}");
    assert_eq!(z["day"], local_day.as_str(), "{z}");
    let explicit: Value = get_json(format!("{base}/api/billing/z?date={local_day}")).await?;
    assert_eq!(explicit["documents"], z["documents"]);
    let utc: Value = get_json(format!("{base}/api/billing/z?date={utc_day}")).await?;
    assert_eq!(utc["documents"].as_array().map_or(99, Vec::len), 0, "{utc}");
    // 47.50 + 166.50 - 166.50 + 10 × 14.20 = 189.50
    assert_eq!(z["report"]["invoiced_total"], 18950, "{z}");
    assert_eq!(z["report"]["by_method"]["cash"], 475);
    assert_eq!(z["report"]["by_method"]["card"], 0, "paid and refunded");
    assert_eq!(z["report"]["by_method"]["insurer"], 4275);
    assert_eq!(z["report"]["payments_total"], 4750);
    let vat: i64 = z["report"]["vat_by_rate"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0);
    assert_eq!(vat, 190 + 10 * 106, "VAT of the day: {z}");
    // Insurer: 42.75 + (149.85 - 149.85) + 10 x (14.20 - 1.42).
    assert_eq!(z["by_insurer"]["Helvetia Kasse"], 4275 + 10 * 1278, "{z}");
    assert_eq!(
        z["patient_total"].as_i64().unwrap_or(0)
            + z["by_insurer"]["Helvetia Kasse"].as_i64().unwrap_or(0),
        18950,
        "the shares add up to the invoiced total: {z}"
    );
    let csv = get_text(format!("{base}/api/billing/z?format=csv")).await?;
    assert!(
        csv.lines().any(|l| l.ends_with(",payments,cash,4.75")),
        "{csv}"
    );
    assert!(
        csv.lines().any(|l| l.ends_with(",invoiced,total,189.50")),
        "{csv}"
    );

    // Analytics over the same day: sales net of the credit note, the packs
    // handed over, the top product by packs invoiced, and scan-to-ready.
    let a = get_json(format!("{base}/api/analytics?days=7")).await?;
    let today = a["sales_per_day"][6].clone();
    assert_eq!(today[1], 18950, "{a}");
    assert_eq!(
        a["dispensed_per_day"][6][1], 3,
        "two metformin and one gel handed over: {a}"
    );
    // Gel 1 + 10 packs; metformin 2 + 10 - 10 (credited).
    assert_eq!(
        a["top_products"][0],
        json!(["Eye care gel", 11, 15620]),
        "{a}"
    );
    assert_eq!(
        a["top_products"][1],
        json!(["Metformin 500 mg", 2, 3330]),
        "{a}"
    );
    assert_eq!(
        a["service_time"]["orders"], 1,
        "one order became ready: {a}"
    );
    let bad = http_get(format!("{base}/api/analytics?days=0"))
        .send()
        .await?;
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);
    let page = get_text(format!("{base}/analytics")).await?;
    assert!(
        page.contains("Scan to ready") && page.contains("Eye care gel"),
        "{page}"
    );

    // The printable documents: A4 invoice and the receipt with the pickup QR.
    let a4 = get_text(format!("{base}/invoices/{inv_id}")).await?;
    assert!(
        a4.contains(&number_1) && a4.contains("47.50") && a4.contains("Helvetia Kasse"),
        "{a4}"
    );
    let receipt = get_text(format!("{base}/invoices/{inv_id}/receipt")).await?;
    assert!(
        receipt.contains("id=\"pickup-qr\"") && receipt.contains("<svg"),
        "{receipt}"
    );
    assert!(receipt.contains("4.75"), "{receipt}");
    drop(kiosk);
    Ok(())
}

/// The catalog's optional `covered` column: a lotion no plan pays for.
const COVERED_CATALOG: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg,covered
09520000002015,Metformin 500 mg,metformin,500 mg,tablet,100,A10BA02,no,room,12.35,reduced,,0,3000,yes
09520000002046,Urea lotion 5 %,urea,5 %,lotion,1,,no,room,9.90,standard,,0,,no
";

#[tokio::test]
async fn a_product_no_plan_covers_is_the_patients_alone() -> Result<()> {
    let tmp = tempdir("billing-covered")?;
    let hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    hub.import_catalog(COVERED_CATALOG).await?;
    let (metformin, lotion) = ("09520000002015", "09520000002046");
    for gtin in [metformin, lotion] {
        ok(post_json(
            format!("{base}/api/inventory/receive"),
            json!({ "gtin": gtin, "lot": "C1", "expiry": "2030-06-30", "quantity": 10, "location": "shelf" }),
        )
        .await?)?;
    }
    let plan = ok(post_json(
        format!("{base}/api/billing/plans"),
        json!({ "name": "Copay 5", "insurer": "Helvetia Kasse", "kind": "copay", "per_line": "5.00" }),
    )
    .await?)?;
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("k1"), &hub, "k1", "").await?;
    let id = approved_order(&kiosk, &base, "c1", &[(metformin, 1), (lotion, 1)], 0).await?;
    put_on_plan(&base, &id, &plan).await?;
    // Metformin 12.35 + 4.30 fee = 16.65: the copay 5.00, the insurer 11.65.
    // The lotion 9.90 + 4.30 = 14.20 is not covered: all the patient's.
    let q: Value = get_json(format!("{base}/api/orders/{id}/quote")).await?;
    let lines = &q["priced"]["lines"];
    assert_eq!(
        (&lines[0]["patient"], &lines[0]["insurer"]),
        (&json!(500), &json!(1165)),
        "{q}"
    );
    assert_eq!(
        (&lines[1]["patient"], &lines[1]["insurer"]),
        (&json!(1420), &json!(0)),
        "{q}"
    );
    assert_eq!(q["priced"]["patient"], 1920, "{q}");
    assert_eq!(q["priced"]["insurer"], 1165, "{q}");
    let catalog = get_text(format!("{base}/catalog")).await?;
    assert_eq!(
        catalog.matches(">not covered</span>").count(),
        1,
        "{catalog}"
    );
    // Each priced line says whether it is covered, and so do the review
    // page, the invoice, its receipt and the credit note that cancels it.
    assert_eq!(
        (&lines[0]["covered"], &lines[1]["covered"]),
        (&json!(true), &json!(false)),
        "{q}"
    );
    let marked = |page: &str| {
        page.matches(r#"<small class="badge">not covered</small>"#)
            .count()
    };
    let review = get_text(format!("{base}/orders/{id}")).await?;
    assert_eq!(marked(&review), 1, "the lotion's line on the review page");
    let inv = ok(post_json(format!("{base}/api/orders/{id}/invoice"), json!({})).await?)?;
    let inv_id = inv["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no invoice: {inv}"))?
        .to_owned();
    assert_eq!(
        marked(&get_text(format!("{base}/invoices/{inv_id}")).await?),
        1
    );
    assert_eq!(
        marked(&get_text(format!("{base}/invoices/{inv_id}/receipt")).await?),
        1
    );
    let cn = ok(post_json(
        format!("{base}/api/invoices/{inv_id}/credit"),
        json!({ "reason": "wrong lotion" }),
    )
    .await?)?;
    let cn_id = cn["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no credit note: {cn}"))?;
    assert_eq!(
        marked(&get_text(format!("{base}/invoices/{cn_id}")).await?),
        1
    );
    drop(kiosk);
    Ok(())
}
