//! Scanning end to end with the simulated camera: codes held up to the camera
//! go through the real decoder and parsers and reach the hub as events.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::Value;
use sqlx::Row as _;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn show(kiosk: &Kiosk, body: Value) -> Result<()> {
    reqwest::Client::new()
        .post(format!("{}/api/sim/show", kiosk.url()))
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Committed scans at the hub: (payload kind, text).
async fn scans(hub: &Hub) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT envelope FROM events WHERE kiosk_id = 'k1' AND kind = 'qr_scanned' ORDER BY commit_id")
        .fetch_all(&hub.db().await?)
        .await?;
    rows.iter()
        .map(|r| {
            let v: Value = serde_json::from_str(&r.try_get::<String, _>("envelope")?)?;
            Ok((
                v["body"]["payload_kind"].as_str().unwrap_or("").to_owned(),
                v["body"]["text"].as_str().unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

async fn wait_scan(hub: &Hub, kind: &str, text: &str) -> Result<()> {
    wait_for(&format!("{kind} scan at the hub"), WAIT, || async {
        Ok(scans(hub)
            .await?
            .iter()
            .any(|(k, t)| k == kind && t == text)
            .then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emediplan_gs1_and_a_real_photo_arrive_at_the_hub_as_parsed_scans() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no eMediplan payloads or photos");
    };
    let t = tempdir("scan-e2e")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let read = |f: &str| std::fs::read_to_string(fx.join(f)).map(|s| s.trim().to_owned());

    let chmed16 = read("chmed/chmed16a1_transmission_example.txt")?;
    show(&kiosk, serde_json::json!({ "text": chmed16 })).await?;
    wait_scan(&hub, "chmed16a", &chmed16).await?;

    let gs1 = "https://id.gs1.org/01/09520123456788/10/ABC1/21/12345?17=270426";
    show(&kiosk, serde_json::json!({ "text": gs1 })).await?;
    wait_scan(&hub, "gs1", gs1).await?;

    // Four codes of one eMediplan, held up out of order; one event for the set.
    let chunks: Vec<String> = read("chmed/chmed23a_four_chunks.txt")?
        .lines()
        .map(str::to_owned)
        .collect();
    for (n, i) in [2usize, 0, 3, 1].into_iter().enumerate() {
        show(
            &kiosk,
            serde_json::json!({ "text": chunks[i], "hold_ms": 600 }),
        )
        .await?;
        let read_so_far = n as u64 + 1;
        wait_for(&format!("{read_so_far} of 4 codes read"), WAIT, || async {
            let s: Value = reqwest::get(format!("{}/api/scanner", kiosk.url()))
                .await?
                .json()
                .await?;
            let partial = s["chunks"] == serde_json::json!([read_so_far, 4]);
            let done = read_so_far == 4 && s["chunks"].is_null() && s["last"]["kind"] == "chmed23a";
            Ok((partial || done).then_some(()))
        })
        .await?;
    }
    wait_scan(&hub, "chmed23a", &read("chmed/chmed23a_single.txt")?).await?;
    assert_eq!(
        scans(&hub)
            .await?
            .iter()
            .filter(|(k, _)| k.starts_with("chmed23a"))
            .count(),
        1,
        "one event for the whole set"
    );

    // A real photo from the ZXing set.
    let photo = fx.join("qr/zxing-qrcode-1/1.png");
    let want = std::fs::read_to_string(photo.with_extension("txt"))?;
    show(&kiosk, serde_json::json!({ "path": photo })).await?;
    wait_scan(&hub, "unknown", &want).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_camera_is_reported_and_recovers() -> Result<()> {
    let t = tempdir("scan-cam")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let plug = |unplugged: bool| {
        let url = format!("{}/api/sim/camera", kiosk.url());
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({ "unplugged": unplugged }))
                .send()
                .await?
                .error_for_status()
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }
    };
    let statuses = || async {
        let rows = sqlx::query("SELECT envelope FROM events WHERE kiosk_id = 'k1' AND kind = 'device_status' ORDER BY commit_id")
            .fetch_all(&hub.db().await?)
            .await?;
        rows.iter()
            .map(|r| {
                let v: Value = serde_json::from_str(&r.try_get::<String, _>("envelope")?)?;
                Ok((
                    v["body"]["component"].as_str().unwrap_or("").to_owned(),
                    v["body"]["ok"].as_bool(),
                ))
            })
            .collect::<Result<Vec<_>>>()
    };
    plug(true).await?;
    let s: Value = wait_for("out of order on the kiosk", WAIT, || async {
        let s: Value = reqwest::get(format!("{}/api/scanner", kiosk.url()))
            .await?
            .json()
            .await?;
        Ok(Some(s).filter(|s| s["camera_ok"] == false))
    })
    .await?;
    assert!(
        s["camera_problem"]
            .as_str()
            .is_some_and(|p| p.contains("unplugged")),
        "{s}"
    );
    wait_for("camera failure at the hub", WAIT, || async {
        Ok(statuses()
            .await?
            .contains(&("camera".to_owned(), Some(false)))
            .then_some(()))
    })
    .await?;
    plug(false).await?;
    wait_for("camera back at the hub", WAIT, || async {
        Ok(statuses()
            .await?
            .contains(&("camera".to_owned(), Some(true)))
            .then_some(()))
    })
    .await?;
    // And it reads again.
    show(
        &kiosk,
        serde_json::json!({ "text": "(01)09506000134352(17)271231(10)ABC123" }),
    )
    .await?;
    wait_scan(&hub, "gs1", "(01)09506000134352(17)271231(10)ABC123")
        .await
        .map_err(|e| anyhow!("after recovery: {e}"))
}
