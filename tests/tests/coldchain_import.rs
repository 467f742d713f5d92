//! `rxedge-hub coldchain import` on every real Berlinger export in the shared
//! fixtures: our engine, fed the device's readings and alarm settings, must
//! raise each alarm within one logging interval of the device's own alarm time,
//! and our mean kinetic temperature must match the device's to 0.1 °C.

use anyhow::{anyhow, bail, Result};
use chrono::NaiveDateTime;
use rxedge_tests::*;
use serde_json::Value;

fn time(v: &Value) -> Result<NaiveDateTime> {
    let s = v.as_str().ok_or_else(|| anyhow!("not a time: {v}"))?;
    Ok(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")?)
}

fn minutes_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    (a - b).num_minutes().abs()
}

fn check(file: &std::path::Path, r: &Value) -> Result<Vec<String>> {
    let mut checked = Vec::new();
    let raw = std::fs::read_to_string(file)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Serial as the file states it (independent of our parser's tree).
    let serial = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("Serial: "))
        .ok_or_else(|| anyhow!("{name}: no serial line"))?;
    assert_eq!(r["serial"].as_str(), Some(serial.trim()), "{name}");
    // Every daily record is read.
    let dates = raw
        .lines()
        .filter(|l| l.trim_start().starts_with("Date: "))
        .count();
    assert_eq!(
        r["days"].as_array().map(Vec::len),
        Some(dates),
        "{name}: daily records"
    );
    // Every interval row is read.
    let rows = raw
        .lines()
        .filter(|l| l.starts_with('\t') && l.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .filter(|l| {
            l.split('\t').count() >= 3 && l.split('\t').nth(1).is_some_and(|t| t.len() == 16)
        })
        .count();
    let readings = r["readings"].as_u64().unwrap_or(0) as usize;
    assert_eq!(readings, rows, "{name}: interval readings");
    if readings == 0 {
        checked.push(format!("{name}: {dates} daily records, no interval data"));
        return Ok(checked);
    }
    let interval = r["interval_min"]
        .as_i64()
        .ok_or_else(|| anyhow!("{name}: no interval"))?;
    let ours: Vec<(String, NaiveDateTime)> = r["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| {
            let id = a["id"].as_str().unwrap_or_default().to_owned();
            a["episodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |e| time(&e["alarm_at"]).ok().map(|t| (id.clone(), t)))
                .collect::<Vec<_>>()
        })
        .collect();
    let device = r["device_alarms"].as_array().cloned().unwrap_or_default();
    let mut onsets = 0;
    for d in &device {
        if d["carried_over"].as_bool() == Some(true) || d["alarm_at"].is_null() {
            continue;
        }
        let id = d["id"].as_str().unwrap_or_default();
        let at = time(&d["alarm_at"])?;
        let best = ours
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, t)| minutes_between(*t, at))
            .min();
        match best {
            Some(m) if m <= interval => onsets += 1,
            _ => bail!(
                "{name}: device alarm {id} at {at}: ours closest {best:?} min, interval {interval}"
            ),
        }
    }
    // And nothing the device did not see: each of ours falls on a day (or the run)
    // in which the device reports that alarm.
    for (id, t) in &ours {
        let day = t.date();
        let seen = device.iter().any(|d| {
            d["id"].as_str() == Some(id)
                && match d["date"].as_str() {
                    Some(date) => date == day.format("%Y-%m-%d").to_string(),
                    None => time(&d["alarm_at"]).is_ok_and(|a| minutes_between(a, *t) <= interval),
                }
        });
        if !seen {
            bail!("{name}: our alarm {id} at {t} has no device counterpart");
        }
    }
    checked.push(format!("{name}: {onsets} device alarm onsets matched within {interval} min, {} of ours all confirmed", ours.len()));
    if let Some(dm) = r["device_mkt"].as_f64() {
        let mkt = r["mkt"].as_f64().ok_or_else(|| anyhow!("{name}: no MKT"))?;
        assert!((mkt - dm).abs() <= 0.1, "{name}: MKT {mkt} vs device {dm}");
        checked.push(format!("{name}: MKT {mkt:.3} vs device {dm}"));
    }
    Ok(checked)
}

#[test]
fn every_berlinger_fixture_agrees_with_the_device() -> Result<()> {
    let Some(dir) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent (set RXEDGE_FIXTURES): no real logger files to check against");
    };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("coldchain"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the five Berlinger exports, found {files:?}"
    );
    let (mut with_data, mut with_mkt) = (0, 0);
    for f in &files {
        let path = f.to_string_lossy();
        let out = hub_cli(&["coldchain", "import", &path, "--json"])?;
        let r: Value = serde_json::from_str(&out)?;
        for line in check(f, &r)? {
            eprintln!("{line}");
        }
        with_data += usize::from(r["readings"].as_u64().unwrap_or(0) > 0);
        with_mkt += usize::from(r["device_mkt"].is_number());
    }
    // The onset and MKT checks above really ran on the interval loggers.
    assert!(
        with_data >= 3 && with_mkt >= 1,
        "data files {with_data}, MKT files {with_mkt}"
    );
    Ok(())
}

#[test]
fn a_file_that_is_not_a_logger_export_is_refused_with_a_reason() -> Result<()> {
    let t = tempdir("notlogger")?;
    let p = t.path().join("x.txt");
    std::fs::write(&p, "hello\nworld\n")?;
    let err = hub_cli(&["coldchain", "import", &p.to_string_lossy(), "--json"])
        .err()
        .ok_or_else(|| anyhow!("accepted garbage"))?;
    assert!(
        err.to_string().contains("not a Berlinger logger export"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_import_keeps_daily_records_as_fridge_history_once() -> Result<()> {
    let Some(dir) = fixtures_dir() else {
        return skip_or_fail("../shared/fixtures is absent (set RXEDGE_FIXTURES)");
    };
    let file = dir.join("coldchain/fridgetag2_130400191542.txt");
    let raw = std::fs::read_to_string(&file)?;
    let days = raw
        .lines()
        .filter(|l| l.trim_start().starts_with("Date: "))
        .count() as i64;
    let t = tempdir("cc-cli")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let path = file.to_string_lossy().into_owned();
    for _ in 0..2 {
        hub.cli(&["coldchain", "import", &path, "--fridge", "fridge-1"])?;
    }
    use sqlx::Row as _;
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM logger_days WHERE fridge = 'fridge-1' AND serial = '130400191542'")
        .fetch_one(&hub.db().await?)
        .await?
        .try_get("n")?;
    assert_eq!(n, days, "each day once, even imported twice");
    Ok(())
}
