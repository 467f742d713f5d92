//! Inventory through the running hub: catalog import over HTTP, receiving by
//! a scanned or photographed GS1 code, live stock events, holds refused at
//! dispensing, a recall trace as CSV, and a kiosk asking "is it in stock" over
//! MQTT, then answering from its cache while the hub is away.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

const CATALOG: &str = "gtin,name,ingredients,strength,form,pack_size,atc,controlled,storage,price,vat_class,generics,reorder_point,max_daily_mg
09520000002992,Lamotrigine 100 mg tablets,lamotrigine,100 mg,tablet,56,N03AX09,no,room,35.36,reduced,09520000003005,3,500
09520000003005,Lamictal 100 mg,lamotrigine,100 mg,tablet,56,N03AX09,no,room,44.20,reduced,09520000002992,30,500
";

#[tokio::test]
async fn receive_by_scan_hold_recall_and_ask_from_a_kiosk() -> Result<()> {
    let tmp = tempdir("inventory-hub")?;
    let mut hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();

    // A bad catalog file imports nothing and names its lines.
    let bad = format!("{CATALOG}09520000000042,Oops,x,1 mg,tablet,0,,no,room,1.00,reduced,,0,\n");
    let r = http_post(format!("{base}/api/catalog/import"))
        .body(bad)
        .send()
        .await?;
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let v: Value = r.json().await?;
    let problems = v["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p["line"] == 4 && p["message"].as_str().unwrap_or("").contains("pack_size")),
        "{v}"
    );
    let none: Value = http_get(format!("{base}/api/catalog?q=lamo"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        none["items"].as_array().map(Vec::len),
        Some(0),
        "nothing half-imported"
    );
    let ok: Value = http_post(format!("{base}/api/catalog/import"))
        .body(CATALOG)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(ok["added"], 2);

    // The live feed says when stock moves.
    let mut sse = http_get(format!("{base}/events/stream")).send().await?;

    // Receiving: a typed Digital Link fills GTIN, batch and expiry (GS1 day 00 → end of month).
    let (st, g) = post_json(
        format!("{base}/api/inventory/gs1"),
        json!({ "text": "https://id.gs1.org/01/09520000002992/10/LT-9?17=271200" }),
    )
    .await?;
    assert!(st.is_success(), "{g}");
    assert_eq!(
        (
            g["gtin"].as_str(),
            g["batch"].as_str(),
            g["expiry"].as_str()
        ),
        (Some("09520000002992"), Some("LT-9"), Some("2027-12-31"))
    );
    assert_eq!(g["product"]["name"], "Lamotrigine 100 mg tablets");
    let (st, lot) = post_json(
        format!("{base}/api/inventory/receive"),
        json!({ "gtin": g["gtin"], "lot": g["batch"], "expiry": g["expiry"], "quantity": 10, "location": "shelf" }),
    )
    .await?;
    assert!(st.is_success(), "{lot}");
    let lot_id = lot["id"].as_i64().ok_or_else(|| anyhow!("no id {lot}"))?;
    let got_stock_event = tokio::time::timeout(WAIT, async {
        let mut seen = String::new();
        while let Some(chunk) = sse.chunk().await? {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: stock") {
                return Ok::<bool, anyhow::Error>(true);
            }
        }
        Ok(false)
    })
    .await??;
    assert!(got_stock_event, "no stock event on the live feed");

    // A photo of the pack's code works the same (element string in a QR).
    let img = rxedge_kiosk::camera::SimCamera::render_qr("(01)09520000003005(17)280131(10)LM-2")
        .map_err(|e| anyhow!(e))?;
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    let form = reqwest::multipart::Form::new().part(
        "photo",
        reqwest::multipart::Part::bytes(png).file_name("pack.png"),
    );
    let g2: Value = http_post(format!("{base}/api/inventory/gs1/image"))
        .multipart(form)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(
        (g2["gtin"].as_str(), g2["batch"].as_str()),
        (Some("09520000003005"), Some("LM-2")),
        "{g2}"
    );
    let (st, lm) = post_json(
        format!("{base}/api/inventory/receive"),
        json!({ "gtin": g2["gtin"], "lot": g2["batch"], "expiry": g2["expiry"], "quantity": 4, "location": "shelf" }),
    )
    .await?;
    assert!(st.is_success(), "{lm}");

    // Dashboard: Lamictal (4 free) is below its reorder point of 30.
    let dash: Value = http_get(format!("{base}/api/inventory/dashboard"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        dash["below_reorder"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["gtin"] == "09520000003005")),
        "{dash}"
    );

    // Damage hold: dispensing is refused with a plain message.
    let (st, _) = post_json(
        format!("{base}/api/inventory/lots/{lot_id}/hold"),
        json!({ "reason": "damage", "note": "wet carton" }),
    )
    .await?;
    assert!(st.is_success());
    let (st, refused) = post_json(
        format!("{base}/api/inventory/lots/{lot_id}/dispense"),
        json!({ "quantity": 1 }),
    )
    .await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT);
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("on hold (damage)"),
        "{refused}"
    );
    let (st, _) = post_json(
        format!("{base}/api/inventory/lots/{lot_id}/decision"),
        json!({ "decision": "release", "note": "inner packs dry" }),
    )
    .await?;
    assert!(st.is_success());
    let (st, d) = post_json(
        format!("{base}/api/inventory/lots/{lot_id}/dispense"),
        json!({ "quantity": 2, "order_ref": "ORD-77", "patient": "Anna Muster" }),
    )
    .await?;
    assert!(st.is_success(), "{d}");

    // A kiosk asks over MQTT: live answer with price and stock.
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("k1"), &hub, "k1", "").await?;
    let ask = |q: &str| {
        let url = format!("{}/api/availability?q={q}", kiosk.url());
        async move {
            Ok::<Value, anyhow::Error>(
                http_get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?,
            )
        }
    };
    let live = wait_for("a live availability answer", WAIT, || async {
        let v = ask("lamotrigine").await?;
        Ok((v["cached"] == false && v["answer"].is_object()).then_some(v))
    })
    .await?;
    let items = live["answer"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let generic = items
        .iter()
        .find(|i| i["gtin"] == "09520000002992")
        .ok_or_else(|| anyhow!("{live}"))?;
    assert_eq!(generic["in_stock"], 8, "{live}");
    assert_eq!(generic["price_minor"], 3536);

    // Recall: the trace names the order and the patient; CSV for the authority.
    let (st, rec) = post_json(
        format!("{base}/api/inventory/recall"),
        json!({ "gtin": "09520000002992", "batch": "LT-9", "reason": "Swissmedic recall 2026-0042" }),
    )
    .await?;
    assert!(st.is_success(), "{rec}");
    assert_eq!(rec["trace"][0]["order_ref"], "ORD-77");
    let csv = http_get(format!(
        "{base}/inventory/trace.csv?gtin=09520000002992&batch=LT-9"
    ))
    .send()
    .await?
    .text()
    .await?;
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.contains("ORD-77") && l.contains("Anna Muster")),
        "{csv}"
    );

    // With the hub gone the kiosk answers from its cache, and says so.
    hub.stop();
    let cached = wait_for("a cached availability answer", WAIT, || async {
        let v = ask("lamotrigine").await?;
        Ok((v["cached"] == true).then_some(v))
    })
    .await?;
    assert_eq!(
        cached["answer"]["items"], live["answer"]["items"],
        "{cached}"
    );
    let unknown = ask("never-asked-before").await?;
    assert!(
        unknown["answer"].is_null() && unknown["cached"] == true,
        "{unknown}"
    );
    Ok(())
}

/// Expiry is judged by the store's calendar day, not UTC's: in a zone whose
/// date differs from UTC's, a batch dated the store's today is still
/// received (and sold), and one dated the store's yesterday is not. On UTC
/// days a Swiss pharmacy would hand out yesterday's expired packs in the
/// first hour or two after midnight.
#[tokio::test]
async fn expiry_follows_the_stores_day_not_utcs() -> Result<()> {
    let tmp = tempdir("expiry-day")?;
    let now = chrono::Utc::now();
    let (zone, offset_h) = store_zone(now);
    let mut hub = Hub::prepare(&tmp.path().join("hub"), BrokerChoice::Embedded, None, "").await?;
    hub.env.push(("TZ".into(), zone.into()));
    hub.spawn().await?;
    let base = hub.url();
    hub.import_catalog(CATALOG).await?;
    let today = (now + chrono::Duration::hours(offset_h)).date_naive();
    assert_ne!(today, now.date_naive(), "{zone}");
    let yesterday = today
        .pred_opt()
        .ok_or_else(|| anyhow!("no day before {today}"))?;
    let receive = |lot: &str, expiry: chrono::NaiveDate| {
        post_json(
            format!("{base}/api/inventory/receive"),
            json!({ "gtin": "09520000002992", "lot": lot, "expiry": expiry.to_string(), "quantity": 3, "location": "shelf" }),
        )
    };
    let (st, v) = receive("TODAY", today).await?;
    assert!(
        st.is_success(),
        "a batch expiring at the end of the store's today: {v}"
    );
    let (st, v) = receive("YDAY", yesterday).await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{zone}: {v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("expired on {yesterday}")),
        "{v}"
    );
    Ok(())
}
