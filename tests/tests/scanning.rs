//! Scanning end to end with the simulated camera: codes held up to the camera
//! go through the real decoder and parsers and reach the hub as events.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::Value;
use sqlx::Row as _;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

use rxedge_tests::sim_show as show;

/// Bodies of k1's committed events of `kind`, in commit order.
async fn bodies(hub: &Hub, kind: &str) -> Result<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT envelope FROM events WHERE kiosk_id = 'k1' AND kind = $1 ORDER BY commit_id",
    )
    .bind(kind)
    .fetch_all(&hub.db().await?)
    .await?;
    rows.iter()
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.try_get::<String, _>("envelope")?)?;
            Ok(v["body"].take())
        })
        .collect()
}

/// Committed scans at the hub: (payload kind, text).
async fn scans(hub: &Hub) -> Result<Vec<(String, String)>> {
    Ok(bodies(hub, "qr_scanned")
        .await?
        .iter()
        .map(|b| {
            (
                b["payload_kind"].as_str().unwrap_or("").to_owned(),
                b["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect())
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
            let s: Value = http_get(format!("{}/api/scanner", kiosk.url()))
                .send()
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
            http_post(url)
                .json(&serde_json::json!({ "unplugged": unplugged }))
                .send()
                .await?
                .error_for_status()
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }
    };
    let statuses = || async {
        Ok::<_, anyhow::Error>(
            bodies(&hub, "device_status")
                .await?
                .iter()
                .map(|b| {
                    (
                        b["component"].as_str().unwrap_or("").to_owned(),
                        b["ok"].as_bool(),
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    plug(true).await?;
    let s: Value = wait_for("out of order on the kiosk", WAIT, || async {
        let s: Value = http_get(format!("{}/api/scanner", kiosk.url()))
            .send()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_prescription_is_photographed_uploaded_and_leaves_the_kiosk() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no printed eMediplan page");
    };
    let t = tempdir("scan-paper")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    photograph_page(&kiosk, &fx.join("chmed/emediplan_print_example1.png")).await?;
    // The gate sees a good page, the kiosk captures it by itself.
    let probe = || async {
        let s: Value = http_get(format!("{}/api/scanner", kiosk.url()))
            .send()
            .await?
            .json()
            .await?;
        Ok::<_, anyhow::Error>(s)
    };
    let st: Value = match wait_for("paper captured", WAIT, || async {
        let s = probe().await?;
        Ok(Some(s).filter(|s| s["last"]["kind"] == "paper"))
    })
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return Err(e.context(format!(
                "scanner: {}; kiosk log: {}",
                probe().await?,
                kiosk.log_tail()
            )))
        }
    };
    assert!(
        st["last"]["reference"]
            .as_str()
            .is_some_and(|r| r.len() == 6),
        "{st}"
    );
    // The event names the image by its sha256, and the hub has exactly that image.
    let sha = wait_for("paper event at the hub", WAIT, || async {
        let b = bodies(&hub, "paper_captured").await?;
        Ok(b.first()
            .and_then(|b| b["sha256"].as_str().map(str::to_owned)))
    })
    .await?;
    let jpeg = wait_for("image on the hub", WAIT, || async {
        let r = http_get(format!("{}/api/blobs/{sha}", hub.url()))
            .send()
            .await?;
        Ok(if r.status().is_success() {
            Some(r.bytes().await?)
        } else {
            None
        })
    })
    .await?;
    use sha2::Digest as _;
    assert_eq!(format!("{:x}", sha2::Sha256::digest(&jpeg)), sha);
    let img = image::load_from_memory(&jpeg)?;
    assert!(
        img.width() > 600,
        "cropped page kept its detail: {}",
        img.width()
    );
    // Once the hub has it, the kiosk forgets it.
    wait_for("image deleted from the kiosk", WAIT, || async {
        let s: Value = http_get(format!("{}/api/scanner", kiosk.url()))
            .send()
            .await?
            .json()
            .await?;
        Ok((s["paper_waiting"] == 0).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_refuses_oversize_unsigned_and_damaged_images_with_a_message() -> Result<()> {
    let t = tempdir("blobs")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let key = rxedge_shared::sign::decode_secret(&kiosk.key_text()?)?;
    let c = reqwest::Client::new();
    let put = |body: Vec<u8>, sha: String, sig: String| {
        let c = c.clone();
        let url = format!("{}/api/blobs/{sha}", hub.url());
        async move {
            let r = c
                .put(url)
                .header("x-rxedge-kiosk", "k1")
                .header("x-rxedge-signature", sig)
                .body(body)
                .send()
                .await?;
            let status = r.status();
            Ok::<_, anyhow::Error>((status, r.text().await?))
        }
    };
    use sha2::Digest as _;
    let sign = |sha: &str| {
        rxedge_shared::sign::sign_detached(&key, rxedge_shared::sign::Context::Blob, sha.as_bytes())
    };
    let big = vec![0u8; 8 * 1024 * 1024 + 10];
    let sha = format!("{:x}", sha2::Sha256::digest(&big));
    let (st, msg) = put(big, sha.clone(), sign(&sha)).await?;
    assert_eq!(st, reqwest::StatusCode::PAYLOAD_TOO_LARGE, "{msg}");
    assert!(msg.contains("limit"), "{msg}");
    let small = b"\xff\xd8 a jpeg".to_vec();
    let sha = format!("{:x}", sha2::Sha256::digest(&small));
    let (st, _) = put(small.clone(), sha.clone(), "AAAA".into()).await?;
    assert_eq!(st, reqwest::StatusCode::FORBIDDEN);
    let wrong = "0".repeat(64);
    let (st, msg) = put(small.clone(), wrong.clone(), sign(&wrong)).await?;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{msg}");
    let (st, _) = put(small.clone(), sha.clone(), sign(&sha)).await?;
    assert_eq!(st, reqwest::StatusCode::CREATED);
    let (st, _) = put(small, sha.clone(), sign(&sha)).await?;
    assert_eq!(st, reqwest::StatusCode::OK, "a retry is harmless");

    // Resumable: an upload cut off half-way continues from the hub's count.
    let image: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let sha = format!("{:x}", sha2::Sha256::digest(&image));
    let url = format!("{}/api/blobs/{sha}", hub.url());
    let patch = |at: usize, piece: &[u8], sha: &str| {
        c.patch(format!("{}/api/blobs/{sha}", hub.url()))
            .header("x-rxedge-kiosk", "k1")
            .header("x-rxedge-signature", sign(sha))
            .header("upload-offset", at.to_string())
            .header("upload-length", image.len().to_string())
            .body(piece.to_vec())
            .send()
    };
    let offset = |r: &reqwest::Response| {
        r.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
    };
    let head = || {
        c.head(&url)
            .header("x-rxedge-kiosk", "k1")
            .header("x-rxedge-signature", sign(&sha))
            .send()
    };
    assert_eq!(head().await?.status(), reqwest::StatusCode::NOT_FOUND);
    let r = patch(0, &image[..120_000], &sha).await?;
    assert_eq!(
        (r.status(), offset(&r)),
        (reqwest::StatusCode::ACCEPTED, Some(120_000))
    );
    // The link drops; later the kiosk asks where to continue.
    let r = head().await?;
    assert_eq!(
        (r.status(), offset(&r)),
        (reqwest::StatusCode::OK, Some(120_000))
    );
    let r = patch(50_000, &image[50_000..60_000], &sha).await?;
    assert_eq!(
        (r.status(), offset(&r)),
        (reqwest::StatusCode::CONFLICT, Some(120_000)),
        "out of step is refused, with the count"
    );
    let r = patch(120_000, &image[120_000..], &sha).await?;
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let stored = http_get(&url).send().await?.bytes().await?;
    assert_eq!(stored.as_ref(), image.as_slice());
    // A damaged resumable upload is refused at its last piece and starts over.
    let good = &image[..1000];
    let small_sha = format!("{:x}", sha2::Sha256::digest(good));
    let mut bad = good.to_vec();
    bad[7] ^= 1;
    let send = |at: usize, piece: Vec<u8>| {
        c.patch(format!("{}/api/blobs/{small_sha}", hub.url()))
            .header("x-rxedge-kiosk", "k1")
            .header("x-rxedge-signature", sign(&small_sha))
            .header("upload-offset", at.to_string())
            .header("upload-length", "1000")
            .body(piece)
            .send()
    };
    assert_eq!(
        send(0, bad[..600].to_vec()).await?.status(),
        reqwest::StatusCode::ACCEPTED
    );
    let r = send(600, bad[600..].to_vec()).await?;
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(r.text().await?.contains("damaged"));
    // Nothing of it was kept: the whole image can be sent again from 0.
    assert_eq!(
        send(0, good.to_vec()).await?.status(),
        reqwest::StatusCode::CREATED
    );
    Ok(())
}

#[test]
fn real_printed_pages_pass_the_paper_gate_as_photographed() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no printed eMediplan pages");
    };
    use rxedge_kiosk::paper::{assess, Advice, Gate};
    for f in [
        "emediplan_print_example1.png",
        "emediplan_print_example2.png",
    ] {
        let img = image::open(fx.join("chmed").join(f))?.to_luma8();
        let photo = rxedge_kiosk::camera::SimCamera::as_photo(&img);
        let q = assess(&photo, &Gate::default());
        eprintln!("{f}: {q:?}");
        assert_eq!(q.advice, Advice::Good, "{f}: {q:?}");
        // The same page far away and blurred is not.
        let small = image::imageops::resize(
            &photo,
            photo.width() / 3,
            photo.height() / 3,
            image::imageops::FilterType::Triangle,
        );
        let mut canvas =
            image::GrayImage::from_pixel(photo.width(), photo.height(), image::Luma([50]));
        image::imageops::overlay(&mut canvas, &small, 100, 100);
        assert_eq!(assess(&canvas, &Gate::default()).advice, Advice::MoveCloser);
        let blurred = image::imageops::blur(&photo, 4.0);
        assert_eq!(assess(&blurred, &Gate::default()).advice, Advice::HoldStill);
    }
    Ok(())
}

/// On the paper screen, a patient holds up an eMediplan QR code rather than
/// a page: it is read as the prescription it is (exact data, no OCR), and
/// no photo of it is captured. A code alone would otherwise pass the page
/// gate and reach the pharmacist as a photo of a QR code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emediplan_code_on_the_paper_screen_is_read_not_photographed() -> Result<()> {
    let t = tempdir("scan-paper-qr")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let plan = r#"CHMED16A0{"Id":"pq1","MedType":3,"Dt":"2026-11-25T09:00:00+01:00","Patient":{"FName":"Paula","LName":"Paper","BDt":"1955-05-05"},"Medicaments":[{"Id":"7680000000000","IdType":2,"Pos":[{"D":[1,0,1,0]}]}]}"#;
    client_for(&kiosk.url())
        .post(format!("{}/api/paper/start", kiosk.url()))
        .send()
        .await?
        .error_for_status()?;
    // The paper screen is on: the scanner asks for a page.
    wait_for("the paper screen's advice", WAIT, || async {
        let s: Value = http_get(format!("{}/api/scanner", kiosk.url()))
            .send()
            .await?
            .json()
            .await?;
        Ok(s["paper"].is_string().then_some(()))
    })
    .await?;
    show(
        &kiosk,
        serde_json::json!({ "text": plan, "hold_ms": 3000, "as_photo": true }),
    )
    .await?;
    wait_scan(&hub, "chmed16a", plan).await?;
    let st: Value = http_get(format!("{}/api/scanner", kiosk.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(st["last"]["kind"], "chmed16a", "{st}");
    assert!(
        st["paper"].is_null(),
        "the paper screen's capture ended: {st}"
    );
    // Held up for 3 s on the paper screen, it was never photographed: once
    // everything the kiosk stored has reached the hub, no page is among it.
    kiosk.wait_drained(WAIT).await?;
    assert!(bodies(&hub, "paper_captured").await?.is_empty());
    assert_eq!(st["paper_waiting"], 0, "{st}");
    Ok(())
}
