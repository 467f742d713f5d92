//! OCR end to end: a kiosk's paper scan becomes a draft on the hub, the
//! queue survives a kill -9, and bad files fail with their reason while the
//! queue goes on. Real Tesseract, real brokers, real databases.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// Posts a file to the desk upload API: `(status, body)`.
async fn upload(hub: &Hub, name: &str, bytes: Vec<u8>) -> Result<(reqwest::StatusCode, Value)> {
    let r = http_post(format!("{}/api/ocr/jobs?filename={name}", hub.url()))
        .body(bytes)
        .send()
        .await?;
    let st = r.status();
    let text = r.text().await?;
    Ok((
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn job(hub: &Hub, id: &str) -> Result<Value> {
    get_json(format!("{}/api/ocr/jobs/{id}", hub.url())).await
}

/// Waits until a job is done or failed, and returns it.
async fn settled(hub: &Hub, id: &str) -> Result<Value> {
    wait_for(&format!("OCR job {id} settled"), WAIT, || async {
        let j = job(hub, id).await?;
        Ok(matches!(j["state"].as_str(), Some("done" | "failed")).then_some(j))
    })
    .await
}

/// (name, strength, dose) of each item.
fn items(draft: &Value) -> Vec<(String, String, String)> {
    draft["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    let s = |k: &str| i[k].as_str().unwrap_or("").to_string();
                    (s("name"), s("strength"), s("dose"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_paper_scan_becomes_a_draft_on_the_hub() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no printed eMediplan page");
    };
    let t = tempdir("ocr-kiosk")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let started = std::time::Instant::now();
    photograph_page(&kiosk, &fx.join("chmed/emediplan_print_example1.png")).await?;
    // The paper order appears with its OCR job, and the job finishes.
    let order = wait_for("paper order", WAIT, || async {
        let v = get_json(format!("{}/api/orders", hub.url())).await?;
        Ok(v.as_array()
            .and_then(|a| a.iter().find(|o| o["kind"] == "paper").cloned()))
    })
    .await?;
    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("order id"))?
        .to_string();
    let job_id = wait_for("OCR job of the order", WAIT, || async {
        let v = get_json(format!("{}/api/ocr/jobs", hub.url())).await?;
        Ok(v["jobs"].as_array().and_then(|a| {
            a.iter()
                .find(|j| j["order_id"] == id.as_str())
                .and_then(|j| j["id"].as_str().map(str::to_string))
        }))
    })
    .await?;
    let j = settled(&hub, &job_id).await?;
    assert_eq!(j["state"], "done", "{j}");
    let took = started.elapsed();
    let d = &j["draft"];
    let got = items(d);
    // Keep the page as the hub got it, to look at when this fails.
    let page = http_get(format!("{}/ocr/jobs/{job_id}/image", hub.url()))
        .send()
        .await?
        .bytes()
        .await?;
    let _ = std::fs::create_dir_all("../target/ocr");
    let _ = std::fs::write("../target/ocr/kiosk-page.jpg", &page);
    // Every medication on the page, with its strength and the dose read
    // from the Morgen/Mittag/Abend/Nacht columns.
    for want in [
        ("ANTIBIOTIKUM", "800/160 mg", "1-0-1-0"),
        ("CO-ANTIHYP", "160/12.5 mg", "1-0-0-0"),
        ("CHOLES", "20 mg", "0.5-0-1-0"),
    ] {
        assert!(
            got.iter()
                .any(|(n, s, dose)| n == want.0 && s == want.1 && dose == want.2),
            "{want:?} not in {got:?}"
        );
    }
    assert_eq!(d["patient"]["birth_date"]["value"], "1943-11-01", "{d}");
    assert_eq!(d["prescriber"]["name"]["value"], "Dr. med. F. Weise", "{d}");
    // Every field carries a confidence and a box on the image.
    let f = &d["items"][0]["fields"]["strength"];
    assert!(
        f["confidence"]
            .as_f64()
            .is_some_and(|c| c > 0.0 && c <= 1.0),
        "{f}"
    );
    assert!(f["bbox"]["w"].as_u64().is_some_and(|w| w > 0), "{f}");
    // The review page shows the draft over the image.
    let page = get_text(format!("{}/orders/{id}", hub.url())).await?;
    assert!(
        page.contains("ANTIBIOTIKUM") && page.contains("ocr-box"),
        "review page lacks the draft"
    );
    // And search finds it by drug and prescriber.
    let hits = get_json(format!(
        "{}/api/ocr/search?q=choles+weise&days=31",
        hub.url()
    ))
    .await?;
    assert_eq!(hits["jobs"].as_array().map(Vec::len), Some(1), "{hits}");
    let none = get_json(format!("{}/api/ocr/search?q=metformin", hub.url())).await?;
    assert_eq!(none["jobs"].as_array().map(Vec::len), Some(0), "{none}");
    eprintln!("kiosk scan to OCR draft: {:.1} s", took.as_secs_f64());

    // The pharmacist corrects fields; each correction is kept with the old
    // value, the new one and who made it, and a wrong value is refused.
    let fields = format!("{}/api/ocr/jobs/{job_id}/fields", hub.url());
    let choles = got
        .iter()
        .position(|(n, _, _)| n == "CHOLES")
        .ok_or_else(|| anyhow!("no CHOLES"))?;
    for (field, value) in [
        ("patient.name".to_string(), "Gertrud Muster-Beispiel"),
        (format!("items.{choles}.dose"), "0.5-0-0-1"),
        (format!("items.{choles}.quantity"), "2"),
    ] {
        let v = ok(post_json(
            fields.clone(),
            serde_json::json!({ "field": field, "value": value }),
        )
        .await?)?;
        assert_eq!(v["edit"]["new_value"], value, "{v}");
    }
    for (field, value, says) in [
        ("items.0.dose", "twice a day", "morning-noon-evening-night"),
        ("patient.birth_date", "1.11.1943", "YYYY-MM-DD"),
        ("items.99.dose", "1-0-0-0", "not a field of this draft"),
    ] {
        let (st, v) = post_json(
            fields.clone(),
            serde_json::json!({ "field": field, "value": value }),
        )
        .await?;
        assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"].as_str().unwrap_or("").contains(says), "{v}");
    }
    let d = job(&hub, &job_id).await?["draft"].clone();
    assert_eq!(d["patient"]["name"]["value"], "Gertrud Muster-Beispiel");
    assert_eq!(d["items"][choles]["dose"], "0.5-0-0-1");
    assert_eq!(d["items"][choles]["quantity"], 2);
    let page = get_text(format!("{}/orders/{id}", hub.url())).await?;
    assert!(
        page.contains("id=\"ocr-edits\"") && page.contains("0.5-0-1-0") && page.contains("Pia"),
        "the review page shows the corrections with the old value and who"
    );
    let audit = get_as(
        Role::Admin,
        format!("{}/admin/audit.csv?q=fields", hub.url()),
    )
    .send()
    .await?
    .text()
    .await?;
    assert_eq!(
        audit.matches("POST /api/ocr/jobs/{id}/fields").count(),
        6,
        "{audit}"
    );
    Ok(())
}

fn page_bytes(fx: &std::path::Path, n: u32) -> Result<Vec<u8>> {
    Ok(std::fs::read(
        fx.join(format!("chmed/emediplan_print_example{n}.png")),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_queue_loses_no_job() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no printed eMediplan page");
    };
    let t = tempdir("ocr-restart")?;
    let mut hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let mut ids = Vec::new();
    for i in 0..4 {
        // Each upload a different file (a byte appended after PNG's end
        // changes the hash, not the picture).
        let mut b = page_bytes(&fx, 1 + i % 2)?;
        b.push(i as u8);
        let (st, v) = upload(&hub, &format!("page{i}.png"), b).await?;
        assert_eq!(st, 201, "{v}");
        ids.push(v["id"].as_str().ok_or_else(|| anyhow!("id"))?.to_string());
    }
    // Kill the hub while a job is being read.
    wait_for("a job running", WAIT, || async {
        let j = job(&hub, &ids[0]).await?;
        Ok((j["state"] == "running").then_some(()))
    })
    .await?;
    hub.kill9();
    hub.spawn().await?;
    let mut done = 0;
    for id in &ids {
        let j = settled(&hub, id).await?;
        assert_eq!(j["state"], "done", "{j}");
        assert!(items(&j["draft"]).len() >= 3, "{j}");
        done += 1;
    }
    assert_eq!(done, 4);
    // The job cut off by the kill was read again, not lost or doubled.
    let first = job(&hub, &ids[0]).await?;
    assert!(
        first["attempts"].as_i64().is_some_and(|a| a >= 1),
        "{first}"
    );
    Ok(())
}

/// A one-page PDF from numbered objects (`n 0 obj … endobj`), with its
/// cross-reference table.
fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in &offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer << /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut v = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\nendstream");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_are_read_from_their_text_layer_or_rendered() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no printed eMediplan page");
    };
    let t = tempdir("ocr-pdf")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    hub.import_catalog(include_str!("../../hub/data/demo-catalog.csv"))
        .await?;
    // A PDF written by a practice's software: text, no picture.
    let text = b"BT /F1 12 Tf 72 760 Td (Dr. med. Anna Frei) Tj ET\n\
BT /F1 12 Tf 72 730 Td (Patient: Hans Keller) Tj ET\n\
BT /F1 12 Tf 72 715 Td (geb. 12.04.1950) Tj ET\n\
BT /F1 12 Tf 72 690 Td (Datum: 03.11.2026) Tj ET\n\
BT /F1 12 Tf 72 650 Td (Metformin 500 mg Tabl) Tj ET\n\
BT /F1 12 Tf 72 635 Td (S: 1-0-1-0) Tj ET\n\
BT /F1 12 Tf 72 620 Td (OP 2) Tj ET\n";
    let pdf = pdf_of(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        stream("", text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ]);
    let (st, v) = upload(&hub, "practice.pdf", pdf).await?;
    assert_eq!(st, 201, "{v}");
    let j = settled(&hub, v["id"].as_str().unwrap_or_default()).await?;
    assert_eq!(j["state"], "done", "{j}");
    let d = &j["draft"];
    assert_eq!(d["source"], "pdf_text", "{d}");
    assert_eq!(
        items(d),
        [(
            "Metformin".to_string(),
            "500 mg".to_string(),
            "1-0-1-0".to_string()
        )],
        "{d}"
    );
    assert_eq!(d["items"][0]["quantity"], 2, "{d}");
    assert_eq!(d["items"][0]["matched"]["source"], "catalog", "{d}");
    assert_eq!(d["patient"]["name"]["value"], "Hans Keller", "{d}");
    assert_eq!(d["patient"]["birth_date"]["value"], "1950-04-12", "{d}");
    assert_eq!(d["date"]["value"], "2026-11-03", "{d}");
    // A scanner's PDF: one page that is a picture, rendered and read.
    let rgb = image::load_from_memory(&page_bytes(&fx, 1)?)?.to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&rgb)?;
    let (w, h) = rgb.dimensions();
    let draw = format!(
        "q 842 0 0 {:.1} 0 0 cm /Im1 Do Q",
        842.0 * f64::from(h) / f64::from(w)
    );
    let pdf = pdf_of(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 842 {:.1}] /Contents 4 0 R /Resources << /XObject << /Im1 5 0 R >> >> >>", 842.0 * f64::from(h) / f64::from(w)).into_bytes(),
        stream("", draw.as_bytes()),
        stream(&format!("/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode"), &jpeg),
    ]);
    let (st, v) = upload(&hub, "scan.pdf", pdf).await?;
    assert_eq!(st, 201, "{v}");
    let j = settled(&hub, v["id"].as_str().unwrap_or_default()).await?;
    assert_eq!(j["state"], "done", "{j}");
    let d = &j["draft"];
    assert_eq!(d["source"], "pdf_scan", "{d}");
    let names: Vec<String> = items(d).into_iter().map(|i| i.0).collect();
    for want in ["ANTIBIOTIKUM", "CO-ANTIHYP", "CHOLES"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    Ok(())
}

/// A PDF whose only content stream inflates to `mb` megabytes of blanks.
fn pdf_bomb(mb: usize) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..mb {
        z.write_all(&chunk)?;
    }
    let stream = z.finish()?;
    let mut pdf = Vec::new();
    let mut offsets = Vec::new();
    pdf.extend_from_slice(b"%PDF-1.4\n");
    let mut obj = |pdf: &mut Vec<u8>, body: &[u8]| {
        offsets.push(pdf.len());
        pdf.extend_from_slice(body);
    };
    obj(
        &mut pdf,
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n",
    );
    obj(
        &mut pdf,
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n",
    );
    obj(
        &mut pdf,
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >> endobj\n",
    );
    let mut s4 = format!(
        "4 0 obj << /Length {} /Filter /FlateDecode >> stream\n",
        stream.len()
    )
    .into_bytes();
    s4.extend_from_slice(&stream);
    s4.extend_from_slice(b"\nendstream endobj\n");
    obj(&mut pdf, &s4);
    let xref = pdf.len();
    pdf.extend_from_slice(b"xref\n0 5\n0000000000 65535 f \n");
    for o in &offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer << /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    Ok(pdf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_fail_with_a_reason_and_the_queue_goes_on() -> Result<()> {
    let Some(fx) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no printed eMediplan page");
    };
    let t = tempdir("ocr-bad")?;
    let hub = Hub::start_with(
        &t.path().join("hub"),
        BrokerChoice::Embedded,
        None,
        "[ingest]\nmax_image_bytes = 4000000\n[ocr]\npdf_timeout_secs = 3\n",
    )
    .await?;
    // Refused at the door, with the reason.
    let (st, v) = upload(&hub, "huge.png", vec![0x89; 4_000_001]).await?;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("limit is 4000000 bytes"), "{v}");
    let (st, v) = upload(&hub, "notes.txt", b"Metformin 500 mg".to_vec()).await?;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("not a PNG, JPEG or PDF"), "{v}");
    // Accepted, then failed with its reason: a PNG cut short, and a PDF bomb.
    let good = page_bytes(&fx, 1)?;
    let cut = good[..good.len() / 3].to_vec();
    let (_, v) = upload(&hub, "cut.png", cut).await?;
    let cut_id = v["id"].as_str().ok_or_else(|| anyhow!("{v}"))?.to_string();
    let (_, v) = upload(&hub, "bomb.pdf", pdf_bomb(3000)?).await?;
    let bomb_id = v["id"].as_str().ok_or_else(|| anyhow!("{v}"))?.to_string();
    let (_, v) = upload(&hub, "good.png", good).await?;
    let good_id = v["id"].as_str().ok_or_else(|| anyhow!("{v}"))?.to_string();
    let j = settled(&hub, &cut_id).await?;
    assert_eq!(j["state"], "failed", "{j}");
    assert!(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("could not be read")),
        "{j}"
    );
    assert_eq!(j["attempts"], 1, "a broken file is not retried: {j}");
    let j = settled(&hub, &bomb_id).await?;
    assert_eq!(j["state"], "failed", "{j}");
    assert!(
        j["error"].as_str().is_some_and(|e| e.contains("PDF")),
        "{j}"
    );
    // The queue went on.
    let j = settled(&hub, &good_id).await?;
    assert_eq!(j["state"], "done", "{j}");
    assert!(items(&j["draft"]).len() >= 3, "{j}");
    // The failures show on the screen with their reasons.
    let page = get_text(format!("{}/ocr", hub.url())).await?;
    assert!(
        page.contains("could not be read") && page.contains("2 failed"),
        "{page}"
    );
    Ok(())
}
