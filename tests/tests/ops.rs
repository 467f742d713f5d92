//! Operations: systemd's notify protocol (READY, watchdog, STOPPING), backup
//! and restore of a working hub, and a real Prometheus scraping both programs.

use anyhow::{anyhow, Context as _, Result};
use rxedge_tests::{
    free_port, http_get, http_post, skip_or_fail, tempdir, wait_committed, wait_for, BrokerChoice,
    Hub, Kiosk,
};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixDatagram;

/// Read notify datagrams until one satisfies `want`; returns it.
async fn notified(
    sock: &UnixDatagram,
    what: &str,
    timeout: Duration,
    want: impl Fn(&str) -> bool,
) -> Result<String> {
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| anyhow!("no {what} within {timeout:?}; got {seen:?}"))??;
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if want(&m) {
            return Ok(m);
        }
        seen.push(m);
    }
}

fn notify_env(sock: &Path) -> Vec<(String, String)> {
    vec![
        ("NOTIFY_SOCKET".into(), sock.display().to_string()),
        ("WATCHDOG_USEC".into(), "400000".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_and_kiosk_tell_systemd_when_ready_ping_the_watchdog_and_say_stopping() -> Result<()> {
    let t = tempdir("notify")?;
    let mut hub = Hub::prepare(&t.path().join("hub"), BrokerChoice::Embedded, None, "").await?;
    let hub_sock_path = t.path().join("hub.sock");
    let hub_sock = UnixDatagram::bind(&hub_sock_path)?;
    hub.env = notify_env(&hub_sock_path);
    hub.spawn().await?;
    let ready = notified(&hub_sock, "hub READY", Duration::from_secs(30), |m| {
        m.contains("READY=1")
    })
    .await?;
    assert!(
        ready.contains("STATUS=store open, MQTT connected"),
        "{ready}"
    );
    for _ in 0..2 {
        notified(
            &hub_sock,
            "hub watchdog ping",
            Duration::from_secs(5),
            |m| m.contains("WATCHDOG=1"),
        )
        .await?;
    }

    let mut kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    kiosk.stop();
    let kiosk_sock_path = t.path().join("kiosk.sock");
    let kiosk_sock = UnixDatagram::bind(&kiosk_sock_path)?;
    kiosk.env = notify_env(&kiosk_sock_path);
    kiosk.spawn().await?;
    let ready = notified(&kiosk_sock, "kiosk READY", Duration::from_secs(30), |m| {
        m.contains("READY=1")
    })
    .await?;
    assert!(
        ready.contains("STATUS=outbox open, MQTT connected"),
        "{ready}"
    );
    notified(
        &kiosk_sock,
        "kiosk watchdog ping",
        Duration::from_secs(5),
        |m| m.contains("WATCHDOG=1"),
    )
    .await?;

    let health: Value = http_get(format!("{}/healthz", hub.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], "ok", "{health}");
    hub.stop();
    notified(&hub_sock, "hub STOPPING", Duration::from_secs(10), |m| {
        m.contains("STOPPING=1")
    })
    .await?;
    // The kiosk's health says what is wrong, in words.
    let health = wait_for(
        "kiosk health to notice",
        Duration::from_secs(30),
        || async {
            let r = http_get(format!("{}/healthz", kiosk.url())).send().await?;
            let code = r.status();
            let v: Value = r.json().await?;
            Ok((code == reqwest::StatusCode::SERVICE_UNAVAILABLE).then_some(v))
        },
    )
    .await?;
    assert!(
        health["problems"]
            .to_string()
            .contains("events wait in the outbox"),
        "{health}"
    );

    // A kiosk starts without its hub: READY comes after the grace period, saying so.
    kiosk.stop();
    notified(
        &kiosk_sock,
        "kiosk STOPPING",
        Duration::from_secs(10),
        |m| m.contains("STOPPING=1"),
    )
    .await?;
    kiosk.spawn().await?;
    let ready = notified(
        &kiosk_sock,
        "offline kiosk READY",
        Duration::from_secs(40),
        |m| m.contains("READY=1"),
    )
    .await?;
    assert!(
        ready.contains("offline, events wait in the outbox"),
        "{ready}"
    );
    Ok(())
}

/// Indices of committed scans whose text is `prefix` followed by a number.
async fn indices(hub: &Hub, kiosk: &str, prefix: &str) -> Result<Vec<u64>> {
    let rows = rxedge_tests::committed(&hub.db().await?, kiosk).await?;
    let mut v: Vec<u64> = rows
        .iter()
        .filter_map(|(_, text)| {
            text.strip_prefix(prefix)
                .and_then(|n| n.trim_start_matches('-').parse().ok())
        })
        .collect();
    v.sort_unstable();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_the_hub_works_restores_into_a_new_hub() -> Result<()> {
    let t = tempdir("backup")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    kiosk.burst("before", 40).await?;
    wait_committed(&hub, "k1", "before", 40, Duration::from_secs(60)).await?;

    // A paper image in the blob store, uploaded as a kiosk does.
    let key = rxedge_shared::sign::decode_secret(&kiosk.key_text()?)?;
    let image: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let (sha, st) = rxedge_tests::put_blob(&hub, "k1", &key, image.clone()).await?;
    assert_eq!(st, reqwest::StatusCode::CREATED);

    // Scans keep arriving while the backup is taken.
    let burst = {
        let url = format!("{}/api/sim/burst", kiosk.url());
        tokio::spawn(async move {
            http_post(url)
                .json(&serde_json::json!({ "count": 400, "prefix": "during", "rate_per_sec": 200 }))
                .timeout(Duration::from_secs(120))
                .send()
                .await
        })
    };
    wait_for(
        "scans arriving during the backup",
        Duration::from_secs(30),
        || async { Ok((indices(&hub, "k1", "during").await?.len() >= 20).then_some(())) },
    )
    .await?;
    let file = t.path().join("store.tar.gz");
    let out = hub.cli(&["backup", &file.to_string_lossy()])?;
    assert!(out.contains("backup written"), "{out}");
    burst.await??.error_for_status()?;
    wait_committed(&hub, "k1", "during", 400, Duration::from_secs(120)).await?;

    // Into a new hub: new state directory (and on PostgreSQL a new database).
    let mut h2 = Hub::prepare(&t.path().join("hub2"), BrokerChoice::Embedded, None, "").await?;
    let out = h2.cli(&["restore", &file.to_string_lossy()])?;
    assert!(out.contains("restored"), "{out}");
    h2.spawn().await?;
    assert_eq!(
        std::fs::read(h2.dir.join("state/hub.key"))?,
        std::fs::read(hub.dir.join("state/hub.key"))?,
        "kiosks must keep trusting the restored hub"
    );
    assert_eq!(
        indices(&h2, "k1", "before").await?,
        (0..40).collect::<Vec<_>>()
    );
    // A consistent snapshot: the scans taken during the backup are a gapless
    // prefix of the burst (commits are in order), not a scattering.
    let during = indices(&h2, "k1", "during").await?;
    assert!(
        during.len() >= 20 && during.len() <= 400,
        "{}",
        during.len()
    );
    assert_eq!(during, (0..during.len() as u64).collect::<Vec<_>>());
    let got = http_get(format!("{}/api/blobs/{sha}", h2.url()))
        .send()
        .await?;
    assert_eq!(got.status(), reqwest::StatusCode::OK);
    assert_eq!(got.bytes().await?.to_vec(), image);
    let check: Value = http_get(format!("{}/api/inventory/ledger-check", h2.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(check["ok"], Value::Bool(true), "{check}");

    // Refused while that hub runs, then without --force over existing data.
    let e = h2
        .cli(&["restore", &file.to_string_lossy()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("stop it first"), "{e}");
    h2.stop();
    let e = h2
        .cli(&["restore", &file.to_string_lossy()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--force"), "{e}");
    let out = h2.cli(&["restore", "--force", &file.to_string_lossy()])?;
    if !h2.db_url.starts_with("postgres") {
        assert!(out.contains("kept aside"), "{out}");
    }

    // A damaged archive is refused with the reason, and nothing is touched.
    let mut bytes = std::fs::read(&file)?;
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    let bad = t.path().join("damaged.tar.gz");
    std::fs::write(&bad, bytes)?;
    let e = h2
        .cli(&["restore", "--force", &bad.to_string_lossy()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a usable backup"), "{e}");
    h2.spawn().await?;
    assert_eq!(indices(&h2, "k1", "before").await?.len(), 40);
    Ok(())
}

/// This machine's first non-loopback IPv4 address, if it has one. (Connecting
/// a UDP socket sends nothing; it only picks the route.)
fn lan_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

async fn prom_query(base: &str, q: &str) -> Result<Vec<Value>> {
    let v: Value = http_get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await?
        .json()
        .await?;
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn value_of(r: &Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_hub_and_the_kiosk() -> Result<()> {
    let Some(prometheus) = which("prometheus") else {
        return skip_or_fail("prometheus is not installed (apt-get install prometheus)");
    };
    let t = tempdir("prometheus")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let mut kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    // Listen on every address, to show /metrics still answers only this machine.
    kiosk.stop();
    kiosk.env = vec![(
        "RXEDGE_KIOSK__UI__LISTEN".into(),
        format!("0.0.0.0:{}", kiosk.ui_port),
    )];
    kiosk.spawn().await?;
    kiosk.burst("scrape", 20).await?;
    wait_committed(&hub, "k1", "scrape", 20, Duration::from_secs(60)).await?;
    if let Some(ip) = lan_ip() {
        let r = http_get(format!("http://{ip}:{}/metrics", kiosk.ui_port))
            .send()
            .await?;
        assert_eq!(
            r.status(),
            reqwest::StatusCode::FORBIDDEN,
            "kiosk metrics from {ip}"
        );
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let port = free_port()?;
    let cfg = t.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: rxedge-hub\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n\
             \x20 - job_name: rxedge-kiosk\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            root.join("docs/prometheus/alerts.yml").display(),
            hub.http_port,
            kiosk.ui_port
        ),
    )?;
    let log = std::fs::File::create(t.path().join("prometheus.log"))?;
    let mut child = std::process::Command::new(prometheus)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            t.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .context("start prometheus")?;
    let base = format!("http://127.0.0.1:{port}");
    let result = async {
        wait_for("both targets up", Duration::from_secs(60), || async {
            let up = prom_query(&base, "up").await.unwrap_or_default();
            let ok = up.len() == 2 && up.iter().all(|r| value_of(r) == 1.0);
            Ok(ok.then_some(()))
        })
        .await?;
        wait_for("hub events counted", Duration::from_secs(30), || async {
            let r = prom_query(&base, "rxedge_hub_events_committed_total").await?;
            Ok(r.first().filter(|r| value_of(r) >= 20.0).map(|_| ()))
        })
        .await?;
        let r = prom_query(&base, r#"rxedge_kiosk_online{job="rxedge-hub",kiosk="k1"}"#).await?;
        assert_eq!(r.first().map(value_of), Some(1.0), "{r:?}");
        let r = prom_query(&base, r#"rxedge_kiosk_mqtt_connected{job="rxedge-kiosk"}"#).await?;
        assert_eq!(r.first().map(value_of), Some(1.0), "{r:?}");
        // The simulator's camera runs the real QR pipeline on every frame it shows.
        http_post(format!("{}/api/sim/show", kiosk.url()))
            .json(&serde_json::json!({ "text": "(01)09520000002992(17)271231(10)LOT1", "hold_ms": 1500 }))
            .send()
            .await?
            .error_for_status()?;
        wait_for("QR decode timings", Duration::from_secs(30), || async {
            let r = prom_query(&base, "rxedge_kiosk_qr_decode_seconds_count").await?;
            Ok(r.first().filter(|r| value_of(r) > 0.0).map(|_| ()))
        })
        .await?;
        let r = prom_query(&base, r#"rxedge_hub_http_request_seconds_count"#).await?;
        assert!(r.first().is_some_and(|r| value_of(r) > 0.0), "{r:?}");
        let r = prom_query(&base, r#"rxedge_hub_alarms{state="active"}"#).await?;
        assert_eq!(r.first().map(value_of), Some(0.0), "{r:?}");
        // The OCR queue is watched too (empty here: nothing was scanned).
        let r = prom_query(&base, r#"rxedge_hub_ocr_jobs{state="queued"}"#).await?;
        assert_eq!(r.first().map(value_of), Some(0.0), "{r:?}");
        let r = prom_query(&base, "rxedge_hub_ocr_oldest_queued_seconds").await?;
        assert_eq!(r.first().map(value_of), Some(0.0), "{r:?}");
        // The documented alert rules load and evaluate against live data.
        let rules: Value = http_get(format!("{base}/api/v1/rules")).send().await?
            .json()
            .await?;
        let rules = rules["data"]["groups"][0]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(rules.len(), 8, "{rules:?}");
        assert!(rules.iter().all(|r| r["health"] != "err"), "{rules:?}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    if result.is_ok() {
        // The hub's health names what needs a look without failing itself.
        kiosk.stop();
        let health = wait_for(
            "hub health to name the offline kiosk",
            Duration::from_secs(30),
            || async {
                let v: Value = http_get(format!("{}/healthz", hub.url()))
                    .send()
                    .await?
                    .json()
                    .await?;
                Ok(v["warnings"]
                    .to_string()
                    .contains("kiosk k1 is offline")
                    .then_some(v))
            },
        )
        .await?;
        assert_eq!(health["status"], "ok", "{health}");
    }
    result.map_err(|e| {
        let log = std::fs::read_to_string(t.path().join("prometheus.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n");
        anyhow!("{e:#}\nprometheus log (newest first):\n{log}")
    })
}

#[test]
fn the_documented_prometheus_config_and_alert_rules_are_valid_and_fire_when_they_should(
) -> Result<()> {
    let Some(promtool) = which("promtool") else {
        return skip_or_fail("promtool is not installed (apt-get install prometheus)");
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/prometheus");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
    ] {
        let out = std::process::Command::new(&promtool)
            .args(&args)
            .current_dir(&dir)
            .output()?;
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}
