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
                assert_eq!(doc, &single, "order {order:?}");
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
