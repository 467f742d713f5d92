//! `scripts/bench/web`: the pharmacist's queue page and review page under
//! load (wrk), against the hub's own hello-world route in the same binary
//! and the same run, with 10,000 orders in the store.
//!
//! Ends with `web: queue_rps=X queue_p99_ms=Y hello_rps=Z ratio=X/Z`.
//! Options: `--seconds S` per target (default 10), `--orders N` (10000),
//! `--connections C` (16).

use anyhow::{anyhow, bail, Context as _, Result};
use rxedge_tests::*;
use std::process::Command;
use std::time::Instant;

/// What wrk measured.
struct Load {
    rps: f64,
    p99_ms: f64,
    requests: u64,
}

fn ms(v: &str) -> Option<f64> {
    let v = v.trim();
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// One wrk run; every request carries the pharmacist's session cookie, as
/// a signed-in browser's would (so the screens pay for the session check).
fn wrk(url: &str, secs: u32, conns: u32) -> Result<Load> {
    wrk_with(url, secs, conns, None)
}

/// [`wrk`], with a Lua script that chooses each request's path.
fn wrk_with(url: &str, secs: u32, conns: u32, script: Option<&std::path::Path>) -> Result<Load> {
    let cookie = session_for(url, username_of(Role::Pharmacist))
        .map(|s| format!("Cookie: {}", s.cookie))
        .ok_or_else(|| anyhow!("no signed-in session for {url}"))?;
    let mut args: Vec<String> = vec![
        "-t2".into(),
        format!("-c{conns}"),
        format!("-d{secs}s"),
        "--latency".into(),
        "-H".into(),
        cookie,
    ];
    if let Some(s) = script {
        args.push("-s".into());
        args.push(s.display().to_string());
    }
    args.push(url.to_owned());
    let out = Command::new("wrk")
        .args(&args)
        .output()
        .context("wrk (apt install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed on {url}: {text}");
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("errors while loading {url}:\n{text}");
    }
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no Requests/sec in wrk output:\n{text}"))?;
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(ms)
        .ok_or_else(|| anyhow!("no 99% latency in wrk output:\n{text}"))?;
    let requests = text
        .lines()
        .find_map(|l| {
            l.split_once(" requests in ")
                .map(|(n, _)| n.trim().to_owned())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(Load {
        rps,
        p99_ms,
        requests,
    })
}

const OPEN: [(&str, u32); 5] = [
    ("received", 25),
    ("in_review", 10),
    ("approved", 10),
    ("filling", 5),
    ("ready", 10),
];

/// A store's history: `n` orders over 90 days for 2,000 patients, of which
/// 60 are still open (the working queue), the rest picked up.
async fn seed(hub: &Hub, n: u32) -> Result<String> {
    let pool = hub.db().await?;
    let gtins: Vec<String> =
        sqlx::query_scalar("SELECT gtin FROM products ORDER BY gtin LIMIT 120")
            .fetch_all(&pool)
            .await?;
    if gtins.len() < 10 {
        bail!("the demo catalog did not load");
    }
    let now = rxedge_shared::clock::system_now_ms();
    let mut tx = pool.begin().await?;
    let patients = 2000u32;
    for p in 0..patients {
        let name = format!("Patient{p:04} Bench");
        let dob = format!("19{:02}-{:02}-{:02}", 30 + p % 60, 1 + p % 12, 1 + p % 28);
        sqlx::query(
            "INSERT INTO patients (id, name, birth_date, match_key, allergies, insurance, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, '[]', '', $5, $5)",
        )
        .bind(format!("p{p:05}"))
        .bind(&name)
        .bind(&dob)
        .bind(rxedge_shared::clinical::match_key(&name, &dob))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let mut states: Vec<&str> = OPEN
        .iter()
        .flat_map(|(s, k)| std::iter::repeat_n(*s, *k as usize))
        .collect();
    let open = u32::try_from(states.len())?;
    states.extend(std::iter::repeat_n(
        "picked_up",
        n.saturating_sub(open) as usize,
    ));
    let mut review = None;
    for (i, state) in states.iter().rev().enumerate() {
        let i = u32::try_from(i)?;
        let id = format!("{i:032x}");
        let p = i % patients;
        let g1 = &gtins[(i as usize * 7) % gtins.len()];
        let g2 = &gtins[(i as usize * 13 + 5) % gtins.len()];
        let payload = format!(
            r#"CHMED16A0{{"Id":"b{i}","MedType":3,"Dt":"2026-11-01T09:00:00+01:00","Patient":{{"FName":"Patient{p:04}","LName":"Bench","BDt":"1950-01-01"}},"Medicaments":[{{"Id":"{g1}","IdType":2,"Pos":[{{"D":[1,0,1,0]}}]}},{{"Id":"{g2}","IdType":2,"Pos":[{{"D":[0,0,1,0]}}]}}]}}"#
        );
        // Oldest first: the last `open` orders are the newest.
        let created = now - i64::from(n - i) * 90 * 86_400_000 / i64::from(n.max(1));
        let reviewer = (*state != "received").then_some("Pia");
        sqlx::query(
            "INSERT INTO orders (id, reference, source_kiosk, source_event, kind, payload, patient, state, reviewer, created_ms, updated_ms, patient_id) \
             VALUES ($1, $2, 'k1', $3, 'chmed16a', $4, $5, $6, $7, $8, $8, $9)",
        )
        .bind(&id)
        .bind(format!("{:06X}", i & 0xFF_FFFF))
        .bind(format!("bench-{i}"))
        .bind(&payload)
        .bind(format!("Patient{p:04} Bench (1950-01-01)"))
        .bind(*state)
        .bind(reviewer)
        .bind(created)
        .bind(format!("p{p:05}"))
        .execute(&mut *tx)
        .await?;
        for (g, sig) in [(g1, "1-0-1-0"), (g2, "0-0-1-0")] {
            sqlx::query(
                "INSERT INTO order_lines (order_id, gtin, packs, sig) VALUES ($1, $2, 1, $3)",
            )
            .bind(&id)
            .bind(g)
            .bind(sig)
            .execute(&mut *tx)
            .await?;
        }
        if *state == "in_review" && review.is_none() {
            review = Some(id);
        }
    }
    tx.commit().await?;
    review.ok_or_else(|| anyhow!("no order in review"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let secs = cli_arg("--seconds", 10u32);
    let n = cli_arg("--orders", 10_000u32);
    let conns = cli_arg("--connections", 16u32);
    let tmp = tempdir("web-bench")?;
    let hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    hub.import_catalog(include_str!("../../../hub/data/demo-catalog.csv"))
        .await?;
    let t = Instant::now();
    let review = seed(&hub, n).await?;
    eprintln!("seeded {n} orders in {:.1} s", t.elapsed().as_secs_f64());
    let queue_url = format!("{base}/orders");
    let review_url = format!("{base}/orders/{review}");
    // The pages must be the real ones, with the seeded data in them.
    let q = http_get(&queue_url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let rows = q.matches("<tr data-order=").count();
    if rows != 60 {
        bail!("the queue shows {rows} open orders, expected 60");
    }
    let r = http_get(&review_url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    if !r.contains("Clinical checks") || !r.contains("Price") {
        bail!("the review page is not complete:\n{r}");
    }
    eprintln!(
        "queue page {} bytes, review page {} bytes; wrk -t2 -c{conns} -d{secs}s each",
        q.len(),
        r.len()
    );
    // Warm up, then measure each in turn.
    for u in [&queue_url, &review_url] {
        wrk(u, 2, conns)?;
    }
    let hello = wrk(&format!("{base}/bench/hello"), secs, conns)?;
    let queue = wrk(&queue_url, secs, conns)?;
    let review = wrk(&review_url, secs, conns)?;
    // The review page is served from the rendered-page cache while nothing
    // changes; this measures the render itself: every request a different
    // order of the N, each wrk thread starting half-way round from the other.
    let script = tmp.path().join("every-order.lua");
    std::fs::write(
        &script,
        format!(
            "local n = {n}\nlocal next_id = 0\nlocal threads = 0\n\
             function setup(thread) thread:set(\"start\", threads * math.floor(n / 2)); threads = threads + 1 end\n\
             function init(args) next_id = start end\n\
             function request() next_id = (next_id + 1) % n\n  return wrk.format(\"GET\", string.format(\"/orders/%032x\", next_id)) end\n"
        ),
    )?;
    let cold = wrk_with(&base, secs, conns, Some(&script))?;
    eprintln!(
        "requests: hello={} queue={} review={} review_every_order={}",
        hello.requests, queue.requests, review.requests, cold.requests
    );
    println!(
        "web-review-render: rps={:.0} p99_ms={:.2} ratio={:.3} (each request a different order, so each renders)",
        cold.rps,
        cold.p99_ms,
        cold.rps / hello.rps
    );
    println!(
        "web-review: review_rps={:.0} review_p99_ms={:.2} ratio={:.3}",
        review.rps,
        review.p99_ms,
        review.rps / hello.rps
    );
    println!(
        "web: queue_rps={:.0} queue_p99_ms={:.2} hello_rps={:.0} ratio={:.3}",
        queue.rps,
        queue.p99_ms,
        hello.rps,
        queue.rps / hello.rps
    );
    drop(hub);
    Ok(())
}
