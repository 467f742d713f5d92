//! Orders end to end: a patient scans an eMediplan at the kiosk, the order
//! appears in the pharmacist's queue with the reference the patient was
//! shown, moves only through legal steps (each in the audit trail),
//! approval reserves stock first-expiry-first-out and issues a pickup ticket
//! the kiosk can verify offline, and pick-up hands over the reserved lot.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

const CATALOG: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
09520000002992,Lamotrigine 100 mg tablets,lamotrigine,100 mg,tablet,56,N03AX09,no,room,35.36,reduced,,3,500
09520000002268,Oxycodone 10 mg prolonged-release tablets,oxycodone,10 mg,prolonged-release tablet,30,N02AA05,yes,room,38.64,reduced,,2,
";

#[tokio::test]
async fn chmed_scan_to_pickup_through_review_approval_and_fefo() -> Result<()> {
    let tmp = tempdir("orders")?;
    let hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    hub.import_catalog(CATALOG).await?;
    for (gtin, lot, expiry, qty) in [
        ("09520000002992", "LATE", "2029-12-31", 10),
        ("09520000002992", "EARLY", "2028-01-31", 2),
        ("09520000002268", "OXY1", "2028-06-30", 5),
    ] {
        let (st, v) = post_json(format!("{base}/api/inventory/receive"), json!({ "gtin": gtin, "lot": lot, "expiry": expiry, "quantity": qty, "location": "shelf" })).await?;
        assert!(st.is_success(), "{v}");
    }

    // The patient scans an eMediplan (CHMED16A, plain-JSON variant) at the kiosk.
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("k1"), &hub, "k1", "").await?;
    let plan = r#"CHMED16A0{"Id":"b5c2f1e0","MedType":3,"Dt":"2026-11-25T09:00:00+01:00","Auth":"7601000000001","Patient":{"FName":"Anna","LName":"Muster","BDt":"1950-03-04"},"Medicaments":[{"Id":"09520000002992","IdType":2,"Pos":[]}]}"#;
    http_post(format!("{}/api/sim/show", kiosk.url()))
        .json(&json!({ "text": plan, "hold_ms": 800 }))
        .send()
        .await?
        .error_for_status()?;
    let shown = wait_for("the kiosk confirms the scan", WAIT, || async {
        let s: Value = http_get(format!("{}/api/scanner", kiosk.url()))
            .send()
            .await?
            .json()
            .await?;
        Ok((s["last"]["kind"] == "chmed16a")
            .then(|| s["last"]["reference"].as_str().unwrap_or("").to_owned()))
    })
    .await?;
    let order = wait_for("the order in the queue", WAIT, || async {
        let list: Value = http_get(format!("{base}/api/orders"))
            .send()
            .await?
            .json()
            .await?;
        Ok(list.as_array().and_then(|a| a.first()).cloned())
    })
    .await?;
    assert_eq!(order["kind"], "chmed16a");
    assert_eq!(order["patient"], "Anna Muster (1950-03-04)");
    assert_eq!(
        order["reference"].as_str(),
        Some(shown.as_str()),
        "the patient's reference finds the order"
    );
    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let act = |body: Value| post_json(format!("{base}/api/orders/{id}/action"), body);
    // Max, a second pharmacist, for the steps two people share.
    let act_max = |body: Value| {
        let url = format!("{base}/api/orders/{id}/action");
        async move {
            let r = post_user("max", url).json(&body).send().await?;
            let st = r.status();
            Ok::<_, anyhow::Error>((st, r.json().await.unwrap_or(Value::Null)))
        }
    };

    // Illegal steps are refused with a sentence; nothing is released without approval.
    let (st, v) = act(json!({ "action": "pick_up" })).await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT);
    assert_eq!(v["error"], "an order that is received cannot pick up");
    let queue = || get_text(format!("{base}/orders"));
    let before = queue().await?;
    assert!(
        before.contains(&shown) && !before.contains("held by"),
        "{before}"
    );
    let (st, _) = act(json!({ "action": "start_review" })).await?;
    assert!(st.is_success());
    // The queue page is rendered once per change: the step shows at once,
    // not when a cached page runs out.
    let after = queue().await?;
    assert!(after.contains("held by <strong>Pia</strong>"), "{after}");
    // Filters narrow the queue; each is also a way to lose an order from
    // view, so each is checked both ways.
    for (query, shown) in [
        ("held=me", true),
        ("held=nobody", false),
        ("q=muster", true),
        ("q=MUSTER", true),
        ("q=Mustermann", false),
        ("q=%25", false),
        ("kind=chmed16a&source=k1", true),
        ("kind=paper", false),
        ("source=desk", false),
        ("state=in_review&q=anna", true),
        ("state=ready", false),
    ] {
        let page = get_text(format!("{base}/orders?{query}")).await?;
        let row = format!("data-order=\"{id}\"");
        assert_eq!(page.contains(&row), shown, "{query}: {page}");
    }
    // Max holds nothing: "held by me" is his own view.
    let theirs = get_user("max", format!("{base}/orders?held=me"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        !theirs.contains(&format!("data-order=\"{id}\"")),
        "{theirs}"
    );
    let (st, v) = act_max(json!({ "action": "approve" })).await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("Pia is reviewing"),
        "{v}"
    );
    let (st, v) = act(json!({ "action": "approve" })).await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
    for (gtin, packs) in [("09520000002992", 3), ("09520000002268", 1)] {
        let (st, v) = post_json(
            format!("{base}/api/orders/{id}/lines"),
            json!({ "gtin": gtin, "packs": packs }),
        )
        .await?;
        assert!(st.is_success(), "{v}");
    }
    // Before approving, the review shows what approval will take, first
    // expiry first: both EARLY packs, then one of LATE.
    let review = get_text(format!("{base}/orders/{id}")).await?;
    let takes = |lot: &str| {
        let at = review.find(&format!("data-lot=\"{lot}\""))?;
        let row = &review[at..at + review[at..].find("</tr>")?];
        let n = row.rsplit("<strong>").next()?.split('<').next()?;
        row.contains("<strong>").then(|| n.to_owned())
    };
    assert_eq!(takes("EARLY").as_deref(), Some("2"), "{review}");
    assert_eq!(takes("LATE").as_deref(), Some("1"), "{review}");
    assert_eq!(takes("OXY1").as_deref(), Some("1"), "{review}");
    // The oxycodone line is a controlled substance: a second confirmation is required.
    let (st, v) = act(json!({ "action": "approve" })).await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("controlled substance"),
        "{v}"
    );
    // Six approvals at once (a double click, a second tab): one wins, the
    // others are refused, and only the winner's stock stays reserved.
    let tries =
        futures::future::join_all((0..6).map(|_| {
            act(json!({ "action": "approve", "gates": { "controlled_confirmed": true } }))
        }))
        .await;
    let mut won = Vec::new();
    for t in tries {
        let (st, v) = t?;
        if st.is_success() {
            won.push(v);
        } else {
            assert_eq!(st, reqwest::StatusCode::CONFLICT, "{v}");
        }
    }
    assert_eq!(won.len(), 1, "exactly one approval wins: {won:?}");
    let approved = won.remove(0);
    assert_eq!(approved["state"], "approved");
    let check: Value = http_get(format!("{base}/api/inventory/ledger-check"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(check["ok"], json!(true), "{check}");

    // FEFO: the 2 packs of EARLY first, then 1 of LATE.
    let lots: Value = http_get(format!("{base}/api/inventory/lots"))
        .send()
        .await?
        .json()
        .await?;
    let reserved = |lot: &str| {
        lots.as_array()
            .and_then(|a| a.iter().find(|l| l["lot"] == lot))
            .map(|l| l["reserved"].clone())
    };
    assert_eq!(
        (reserved("EARLY"), reserved("LATE"), reserved("OXY1")),
        (Some(json!(2)), Some(json!(1)), Some(json!(1))),
        "{lots}"
    );

    // The pickup ticket verifies offline with the hub key, for this order.
    let ticket = approved["ticket"]
        .as_str()
        .ok_or_else(|| anyhow!("no ticket {approved}"))?;
    let hub_key = rxedge_hub::hub_key(&hub.dir.join("state"))?.verifying_key();
    let t = rxedge_shared::ticket::verify(
        ticket,
        &hub_key,
        "test-store",
        rxedge_shared::clock::system_now_ms(),
    )?;
    assert_eq!(t.order, id);
    let parsed = hub_cli_kiosk_parse(ticket)?;
    assert_eq!(parsed["kind"], "pickup_ticket", "{parsed}");

    for step in ["start_filling", "mark_ready"] {
        let (st, v) = act_max(json!({ "action": step })).await?;
        assert!(st.is_success(), "{step}: {v}");
    }

    // "Collect my order": the kiosk verifies the ticket offline and asks the hub for its status.
    let show = |text: String| {
        let url = format!("{}/api/sim/show", kiosk.url());
        async move {
            http_post(url)
                .json(&json!({ "text": text, "hold_ms": 800 }))
                .send()
                .await?
                .error_for_status()?;
            Ok::<(), anyhow::Error>(())
        }
    };
    let last_scan = |seq_after: u64| {
        let url = format!("{}/api/scanner", kiosk.url());
        async move {
            let s: Value = http_get(url).send().await?.json().await?;
            Ok::<Option<Value>, anyhow::Error>(Some(s["last"].clone()).filter(|l| {
                l["kind"] == "pickup_ticket" && l["seq"].as_u64().unwrap_or(0) > seq_after
            }))
        }
    };
    show(ticket.to_owned()).await?;
    let scanned = wait_for("the kiosk reads the ticket", WAIT, || last_scan(0)).await?;
    assert_eq!(scanned["order"], id.as_str(), "{scanned}");
    assert!(scanned["ticket_problem"].is_null());
    let status = |order: String| {
        let url = format!("{}/api/order-status?id={order}", kiosk.url());
        async move { Ok::<Value, anyhow::Error>(http_get(url).send().await?.json().await?) }
    };
    let s = status(id.clone()).await?;
    assert_eq!(
        (
            s["cached"].as_bool(),
            s["answer"]["order"]["status"].as_str()
        ),
        (Some(false), Some("ready")),
        "{s}"
    );
    assert_eq!(
        s["answer"]["order"]["reference"].as_str(),
        Some(shown.as_str())
    );
    // A ticket signed by anyone but the hub is refused offline, and still sent on for review.
    let forged = rxedge_shared::ticket::issue(
        &rxedge_shared::sign::SigningKey::from_bytes(&[42; 32]),
        &rxedge_shared::ticket::Ticket {
            store: "test-store".into(),
            order: id.clone(),
            reference: shown.clone(),
            issued_ms: 0,
            expires_ms: i64::MAX,
        },
    );
    let seq = scanned["seq"].as_u64().unwrap_or(0);
    show(forged).await?;
    let bad = wait_for("the kiosk reads the forged ticket", WAIT, || last_scan(seq)).await?;
    assert!(
        bad["ticket_problem"]
            .as_str()
            .unwrap_or("")
            .contains("signature"),
        "{bad}"
    );
    assert!(bad["order"].is_null());
    let orders: Value = http_get(format!("{base}/api/orders"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        orders.as_array().map(Vec::len),
        Some(1),
        "tickets are not prescriptions: {orders}"
    );

    // At the desk every pack is scanned first: the exact lots reserved.
    let (st, v) = act_max(json!({ "action": "pick_up" })).await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("still to scan: 2 × Lamotrigine"),
        "{v}"
    );
    let scan = |code: &str| {
        let (url, body) = (
            format!("{base}/api/orders/{id}/handover"),
            json!({ "code": code }),
        );
        async move {
            let r = post_user("max", url).json(&body).send().await?;
            let st = r.status();
            Ok::<_, anyhow::Error>((st, r.json().await.unwrap_or(Value::Null)))
        }
    };
    // A later lot than reserved, another product, not a pack: refused in words.
    for (code, says) in [
        ("^01095200000029921729123110OTHER", "Wrong lot"),
        ("^01095200000000111728063010X", "Wrong product"),
        ("hello", "not a pack"),
    ] {
        let (st, v) = scan(code).await?;
        assert!(st.is_success(), "{v}");
        assert_eq!(v["verdict"], "refuse", "{code}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(says),
            "{code}: {v}"
        );
    }
    // The bare element string a keyboard-mode scanner sends is read too.
    for code in [
        "^01095200000029921728013110EARLY",
        "01095200000029921728013110EARLY",
        "^01095200000029921729123110LATE",
        "^01095200000022681728063010OXY1",
    ] {
        let (st, v) = scan(code).await?;
        assert!(st.is_success() && v["verdict"] == "accept", "{code}: {v}");
    }
    let (_, v) = scan("^01095200000029921728013110EARLY").await?;
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("already scanned"),
        "one pack too many: {v}"
    );
    let (st, v) = act_max(json!({ "action": "pick_up" })).await?;
    assert!(st.is_success(), "pick_up: {v}");
    let s = status(id.clone()).await?;
    assert_eq!(s["answer"]["order"]["status"], "picked_up", "{s}");
    let done: Value = http_get(format!("{base}/api/orders/{id}"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(done["order"]["state"], "picked_up");
    let steps: Vec<String> = done["trail"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    format!(
                        "{} by {}",
                        t[1].as_str().unwrap_or(""),
                        t[4].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        steps,
        [
            "start_review by Pia",
            "approve by Pia",
            "start_filling by Max",
            "mark_ready by Max",
            "pick_up by Max"
        ]
    );
    // Stock left with the order and the patient on the ledger.
    let trace: Value = http_get(format!(
        "{base}/api/inventory/trace?gtin=09520000002992&batch=EARLY"
    ))
    .send()
    .await?
    .json()
    .await?;
    assert_eq!(trace[0]["order_ref"], id.as_str(), "{trace}");
    assert_eq!(trace[0]["patient"], "Anna Muster (1950-03-04)");
    let lots: Value = http_get(format!("{base}/api/inventory/lots"))
        .send()
        .await?
        .json()
        .await?;
    let on_hand = |lot: &str| {
        lots.as_array()
            .and_then(|a| a.iter().find(|l| l["lot"] == lot))
            .map(|l| (l["quantity"].clone(), l["reserved"].clone()))
    };
    assert_eq!(on_hand("EARLY"), Some((json!(0), json!(0))));
    assert_eq!(on_hand("LATE"), Some((json!(9), json!(0))));
    let check: Value = http_get(format!("{base}/api/inventory/ledger-check"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(check["ok"], true, "{check}");
    Ok(())
}

fn hub_cli_kiosk_parse(text: &str) -> Result<Value> {
    let out = std::process::Command::new(bin("rxedge-kiosk")?)
        .args(["parse", text])
        .output()?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The review page is served from a cache of rendered pages, and is never
/// stale after a change the hub makes or hears of: an order's line, a stock
/// receipt, a patient's allergy, each shows on the very next view. A change
/// written to the database behind the hub's back (a CLI, another hub) shows
/// once the page's short freshness bound runs out.
#[tokio::test]
async fn the_cached_review_page_shows_every_change_at_once() -> Result<()> {
    let tmp = tempdir("review-cache")?;
    let hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    hub.import_catalog(CATALOG).await?;
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("k1"), &hub, "k1", "").await?;
    let plan = r#"CHMED16A0{"Id":"cache1","MedType":3,"Dt":"2026-11-25T09:00:00+01:00","Patient":{"FName":"Carl","LName":"Cache","BDt":"1960-02-02"},"Medicaments":[{"Id":"09520000002992","IdType":2,"Pos":[]}]}"#;
    http_post(format!("{}/api/sim/show", kiosk.url()))
        .json(&json!({ "text": plan, "hold_ms": 800 }))
        .send()
        .await?
        .error_for_status()?;
    let order = hub.wait_order("the order", |_| true).await?;
    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let pid = order["patient_id"]
        .as_str()
        .ok_or_else(|| anyhow!("no patient"))?
        .to_owned();
    let review = || get_text(format!("{base}/orders/{id}"));

    let before = review().await?;
    assert_eq!(review().await?, before, "nothing changed, the same page");
    let (st, v) = post_json(
        format!("{base}/api/orders/{id}/action"),
        json!({ "action": "start_review" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let (st, v) = post_json(
        format!("{base}/api/orders/{id}/lines"),
        json!({ "gtin": "09520000002992", "packs": 2, "sig": "1-0-1-0" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let page = review().await?;
    assert!(
        page.contains("Approval would fail"),
        "the new line, with no stock"
    );

    let (st, v) = post_json(
        format!("{base}/api/inventory/receive"),
        json!({ "gtin": "09520000002992", "lot": "CACHE1", "expiry": "2029-06-30", "quantity": 5, "location": "shelf" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let page = review().await?;
    assert!(
        page.contains("CACHE1")
            && page.contains("2029-06-30")
            && !page.contains("Approval would fail"),
        "the lot received a moment ago"
    );

    let (st, v) = post_json(
        format!("{base}/api/patients/{pid}"),
        json!({ "name": "Carl Cache", "birth_date": "1960-02-02", "allergies": "lamotrigine" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    let page = review().await?;
    assert!(
        page.contains(r#"<span class="allergy">lamotrigine</span>"#),
        "the allergy just recorded"
    );

    // Behind the hub's back: shown within the freshness bound (2 s).
    let db = hub.db().await?;
    sqlx::query("UPDATE lots SET expiry = '2029-07-31' WHERE lot = 'CACHE1'")
        .execute(&db)
        .await?;
    wait_for(
        "the page renders again",
        Duration::from_secs(20),
        || async { Ok(review().await?.contains("2029-07-31").then_some(())) },
    )
    .await?;
    Ok(())
}
