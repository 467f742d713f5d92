//! Every GS1 Digital Link vector and every eMediplan fixture, through the
//! shared parsers and the `rxedge-kiosk parse` command.

use anyhow::{anyhow, Result};
use rxedge_shared::payload::{self, chmed, gs1, Payload};
use rxedge_tests::*;

#[test]
fn all_gs1_digital_link_vectors() -> Result<()> {
    let Some(dir) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no GS1 vectors to check");
    };
    let text = std::fs::read_to_string(dir.join("gs1/digital_link_vectors.tsv"))?;
    let (mut ok, mut refused) = (0, 0);
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut cols = line.split('\t');
        let should = cols.next().unwrap_or("");
        let uri = cols.next().unwrap_or("");
        let want = cols.next().unwrap_or("");
        // GS1's suite runs some URIs twice: accepted with zero-suppressed GTINs
        // permitted, refused without. Accepting rows use the permissive mode the
        // kiosk runs; refusing rows the strict one.
        match should {
            "true" => {
                let g = gs1::parse_digital_link(
                    uri,
                    gs1::LinkOptions {
                        permit_zero_suppressed_gtin: true,
                    },
                )
                .map_err(|e| anyhow!("line {}: {uri}: {e}", n + 1))?;
                assert_eq!(g.element_string, want, "line {}: {uri}", n + 1);
                ok += 1;
            }
            "false" => {
                let r = gs1::parse_digital_link(uri, gs1::LinkOptions::default());
                let e = r
                    .err()
                    .ok_or_else(|| anyhow!("line {}: {uri:?} was accepted", n + 1))?;
                assert!(!e.to_string().is_empty());
                refused += 1;
            }
            other => return Err(anyhow!("line {}: should_parse {other:?}", n + 1)),
        }
    }
    eprintln!("GS1 vectors: {ok} parsed as expected, {refused} refused with a reason");
    assert!(ok > 40 && refused > 20, "{ok} / {refused}");
    Ok(())
}

#[test]
fn all_chmed_fixtures_decode() -> Result<()> {
    let Some(dir) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent: no eMediplan payloads to check");
    };
    let read =
        |f: &str| std::fs::read_to_string(dir.join("chmed").join(f)).map(|s| s.trim().to_owned());
    for f in [
        "chmed16a1_transmission_example.txt",
        "chmed16a0_uncompressed_example.txt",
    ] {
        match payload::parse(&read(f)?) {
            Payload::Chmed16a(p) => {
                assert!(!p.medicaments.is_empty(), "{f}");
                assert!(!p.patient.last_name.is_empty(), "{f}");
                assert!(p.medicaments.iter().all(|m| !m.id.is_empty()), "{f}");
            }
            other => return Err(anyhow!("{f}: {other:?}")),
        }
    }
    let single = match payload::parse(&read("chmed23a_single.txt")?) {
        Payload::Chmed23a(d) => d,
        other => return Err(anyhow!("single: {other:?}")),
    };
    assert!(!single.medicaments.is_empty());
    let chunks: Vec<String> = read("chmed23a_four_chunks.txt")?
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(chunks.len(), 4);
    for order in [[0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]] {
        let mut a = chmed::Assembler::default();
        let mut progress = Vec::new();
        for i in order {
            let Payload::Chmed23aChunk(c) = payload::parse(&chunks[i]) else {
                return Err(anyhow!("chunk {i} not recognised"));
            };
            progress.push(a.add(c)?);
        }
        assert_eq!(
            progress[1],
            chmed::Progress::Partial { have: 2, total: 4 },
            "shows 2 of 4"
        );
        match progress.last() {
            Some(chmed::Progress::Complete { text, doc }) => {
                assert_eq!(**doc, single, "order {order:?}");
                assert_eq!(
                    text,
                    &read("chmed23a_single.txt")?,
                    "joined = the single-code form"
                );
            }
            other => return Err(anyhow!("{other:?}")),
        }
    }
    Ok(())
}

/// The CHMED23A specification's own examples use its camelCase names
/// (`patient`, `meds`, `pos`), unlike the capitalised fixture code: both
/// decode, and each names the patient its prose describes.
#[test]
fn the_chmed23a_specifications_examples_name_their_patients() -> Result<()> {
    let Some(examples) = chmed23a_examples()? else {
        return skip_or_fail("../shared/fixtures is absent: no CHMED23A examples to check");
    };
    assert_eq!(examples.len(), 4, "{examples:#?}");
    for ex in &examples {
        let doc = match payload::parse(&ex.code) {
            Payload::Chmed23a(d) => d,
            other => return Err(anyhow!("{}: {other:?}", ex.title)),
        };
        let p = doc
            .patient
            .as_ref()
            .ok_or_else(|| anyhow!("{}: no patient", ex.title))?;
        // The specification's Example 4 says "15.05.1972" in its prose and
        // "1971-05-15" in its JSON; a decoder can only read the JSON.
        let born = if ex.title == "Example 4" && ex.birth_date == "1972-05-15" {
            "1971-05-15"
        } else {
            ex.birth_date.as_str()
        };
        assert_eq!(
            (
                p.first_name.as_str(),
                p.last_name.as_str(),
                p.birth_date.as_str()
            ),
            (ex.first_name.as_str(), ex.last_name.as_str(), born),
            "{}",
            ex.title
        );
        assert_eq!(
            doc.insurance_card.as_deref().unwrap_or(""),
            ex.card,
            "{}",
            ex.title
        );
        assert_eq!(doc.medicaments.len(), ex.medicaments, "{}", ex.title);
        for m in &doc.medicaments {
            assert!(!m.id.is_empty(), "{}: {m:?}", ex.title);
            // Every schedule is shown, as four doses or in words.
            for pos in &m.posology {
                assert!(
                    pos.daily.is_some() || pos.text.as_deref().is_some_and(|t| !t.contains('?')),
                    "{}: {} {pos:?}",
                    ex.title,
                    m.id
                );
            }
        }
    }
    // Example 1 records the analgesic allergy (risk 503) and a weekly
    // vitamin D of 1.4 ml.
    let first = match payload::parse(&examples[0].code) {
        Payload::Chmed23a(d) => d,
        other => return Err(anyhow!("{other:?}")),
    };
    let medical = first.patient.as_ref().and_then(|p| p.medical.as_ref());
    let allergies = rxedge_shared::clinical::chmed_allergies(medical);
    assert_eq!(allergies.len(), 1, "{allergies:?}");
    assert!(allergies[0].label.contains("503"));
    let vit_d = first
        .medicaments
        .iter()
        .find(|m| m.id == "7680334810013")
        .ok_or_else(|| anyhow!("no vitamin D"))?;
    assert_eq!(vit_d.posology[0].text.as_deref(), Some("1.4 every week"));
    assert_eq!(vit_d.unit.as_deref(), Some("ml"));
    Ok(())
}

#[test]
fn kiosk_parse_command_prints_json() -> Result<()> {
    let out = std::process::Command::new(bin("rxedge-kiosk")?)
        .args(["parse", "(01)09506000134352(17)271231(10)ABC123"])
        .output()?;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["kind"], "gs1");
    assert_eq!(v["gtin"], "09506000134352");
    assert_eq!(v["expiry"], "2027-12-31");
    let out = std::process::Command::new(bin("rxedge-kiosk")?)
        .args(["parse", "(01)09506000134353"])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["kind"], "unknown");
    assert!(
        v["problem"]
            .as_str()
            .is_some_and(|p| p.contains("check digit")),
        "{v}"
    );
    Ok(())
}
