//! `scripts/bench/ingest`: durable end-to-end ingest throughput against raw
//! Mosquitto QoS 1 in the same run, and kiosk → hub-screen (SSE) latency at
//! a paced 1,000 events/s.
//!
//! Ends with `ingest: rxedge_eps=X mosquitto_eps=Y ratio=X/Y p99_ms=Z`.

use anyhow::{anyhow, bail, Context as _, Result};
use rxedge_tests::*;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Raw QoS 1 through Mosquitto: mosquitto_pub -l → mosquitto_sub -C N, payloads of `size` bytes.
async fn raw_mosquitto(port: u16, n: u32, size: usize, dir: &std::path::Path) -> Result<f64> {
    let file = dir.join("payloads.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for i in 0..n {
            let head = format!("{i:08}");
            writeln!(f, "{head}{}", "x".repeat(size.saturating_sub(head.len())))?;
        }
    }
    // stdbuf: mosquitto_sub's debug lines are block-buffered into a pipe otherwise.
    let mut sub = Command::new("stdbuf")
        .args([
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            "bench/raw",
            "-C",
            &n.to_string(),
            "-d",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("mosquitto_sub")?;
    // Wait for its SUBACK in the debug output before publishing.
    let mut out = sub.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut r = std::io::BufReader::new(&mut out);
        let mut line = String::new();
        let mut told = false;
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if !told && line.contains("SUBACK") {
                let _ = tx.send(());
                told = true;
            }
            line.clear();
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| anyhow!("mosquitto_sub did not subscribe"))?;
    let started = Instant::now();
    let input = std::fs::File::open(&file)?;
    let st = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            "bench/raw",
            "-l",
            "-M",
            "256",
        ])
        .stdin(input)
        .status()?;
    if !st.success() {
        bail!("mosquitto_pub failed");
    }
    let st = sub.wait()?;
    let secs = started.elapsed().as_secs_f64();
    if !st.success() {
        bail!("mosquitto_sub failed");
    }
    Ok(f64::from(n) / secs)
}

/// SSE latencies in ms: arrival at this screen client minus kiosk creation time.
async fn sse_latencies(mut resp: reqwest::Response, expect: usize) -> Result<Vec<i64>> {
    let mut buf = String::new();
    let mut out = Vec::with_capacity(expect);
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < expect && Instant::now() < deadline {
        let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await??
        else {
            break;
        };
        let now = {
            use rxedge_shared::clock::Clock as _;
            rxedge_shared::clock::SystemClock.now_ms()
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(pos) = buf.find('\n') {
            let line: String = buf.drain(..=pos).collect();
            if let Some(data) = line.strip_prefix("data:") {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                    if v["type"] == "event" {
                        if let Some(c) = v["created_ms"].as_i64() {
                            out.push(now - c);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n = cli_arg("--events", 20_000u32);
    let rate = cli_arg("--rate", 1000u32);
    let secs = cli_arg("--seconds", 10u32);
    let tmp = tempdir("bench-ingest")?;
    let Some(m) = Mosquitto::start(&tmp.path().join("mosq")).await? else {
        bail!("mosquitto is not installed")
    };

    // RxEdge: kiosk outbox → Mosquitto → hub commit → ack back at the kiosk.
    let hub = Hub::start(
        &tmp.path().join("hub"),
        BrokerChoice::External(m.port),
        None,
    )
    .await?;
    let kiosk = Kiosk::enroll_and_start(
        &tmp.path().join("kiosk"),
        &hub,
        "bench",
        "[outbox]\nwindow = 1024\n",
    )
    .await?;
    kiosk.burst("warm", 500).await?;
    kiosk.wait_drained(Duration::from_secs(60)).await?;
    let started = Instant::now();
    let stored = kiosk.burst("T", n).await?;
    kiosk.wait_drained(Duration::from_secs(600)).await?;
    let rx_secs = started.elapsed().as_secs_f64();
    let d = wait_committed(&hub, "bench", "T", u64::from(n), Duration::from_secs(60)).await?;
    if stored != u64::from(n) || d.lost != 0 || d.duplicated != 0 {
        bail!("benchmark run was not lossless: stored={stored} {d:?}");
    }
    let rxedge_eps = f64::from(n) / rx_secs;
    // Frame size on the wire, for a like-for-like raw comparison.
    let size = {
        let pool = hub.db().await?;
        use sqlx::Row as _;
        let r = sqlx::query("SELECT envelope, sig FROM events WHERE kiosk_id = 'bench' LIMIT 1")
            .fetch_one(&pool)
            .await?;
        r.try_get::<String, _>("envelope")?.len() + r.try_get::<String, _>("sig")?.len() + 40
    };
    eprintln!("rxedge: {n} events durable end to end in {rx_secs:.2} s ({rxedge_eps:.0}/s), frame ≈ {size} bytes");

    // Latency at a paced rate, measured at the hub screen's SSE stream.
    let total = rate * secs;
    // The response headers arrive once the hub has subscribed this client to the feed.
    let resp = http_get(format!("{}/events/stream", hub.url()))
        .send()
        .await?
        .error_for_status()?;
    let lat = tokio::spawn(sse_latencies(resp, total as usize));
    let v: serde_json::Value = http_post(format!("{}/api/sim/burst", kiosk.url()))
        .json(&serde_json::json!({ "count": total, "prefix": "L", "rate_per_sec": rate }))
        .timeout(Duration::from_secs(u64::from(secs) * 3 + 60))
        .send()
        .await?
        .json()
        .await?;
    if v["stored"].as_u64() != Some(u64::from(total)) {
        bail!("paced burst stored {v}");
    }
    let mut l = lat.await??;
    l.sort_unstable();
    if l.is_empty() {
        bail!("no SSE events seen");
    }
    let p = |q: f64| l[((l.len() as f64 * q).ceil() as usize).clamp(1, l.len()) - 1];
    eprintln!(
        "latency kiosk→SSE at {rate}/s over {} events: p50={} ms p99={} ms max={} ms",
        l.len(),
        p(0.5),
        p(0.99),
        l[l.len() - 1]
    );

    let mosquitto_eps = raw_mosquitto(m.port, n, size, tmp.path()).await?;
    eprintln!("mosquitto: raw QoS 1 pub→sub {n} messages of {size} bytes: {mosquitto_eps:.0}/s");
    println!(
        "ingest: rxedge_eps={rxedge_eps:.0} mosquitto_eps={mosquitto_eps:.0} ratio={:.2} p99_ms={}",
        rxedge_eps / mosquitto_eps,
        p(0.99)
    );
    Ok(())
}
