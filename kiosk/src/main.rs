//! `rxedge-kiosk`: command-line wiring only.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use rxedge_kiosk::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rxedge-kiosk",
    version,
    about = "RxEdge kiosk: scanning, fridge watch, durable outbox to the hub"
)]
struct Cli {
    /// Config file (kiosk.toml). Defaults apply without one; RXEDGE_KIOSK__* env overrides both.
    #[arg(long, short, global = true, env = "RXEDGE_KIOSK_CONFIG")]
    config: Option<PathBuf>,
    /// Use simulated camera and fridge probes.
    #[arg(long, global = true)]
    simulate: bool,
    /// Print the default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the kiosk (the default).
    Run,
    /// Enroll with a hub using the code from `rxedge-hub kiosk add`.
    Enroll {
        /// Hub web address, e.g. https://hub.local:8443 (or http:// without TLS).
        #[arg(long)]
        hub: String,
        /// This kiosk's id, as given to `rxedge-hub kiosk add`.
        #[arg(long)]
        id: String,
        /// One-time enrollment code.
        #[arg(long)]
        code: String,
        /// For an https:// hub: the SHA-256 fingerprint of its CA, as
        /// `rxedge-hub kiosk add` prints it. That CA is pinned from then on.
        #[arg(long)]
        ca_fingerprint: Option<String>,
    },
    /// Print this kiosk's public key (creating the key if needed).
    Identity,
    /// Print outbox figures: queued, in flight, acked, dropped, oldest age.
    Outbox,
    /// Print this enrolled kiosk's MQTT login (client id, user name, password)
    /// for an external broker's password file; see docs/security.md.
    MqttLogin,
    /// Decode QR codes in image files: one JSON line per file.
    Scan {
        /// Image files (PNG, JPEG).
        files: Vec<std::path::PathBuf>,
        /// Time budget per image, ms.
        #[arg(long, default_value_t = 250)]
        budget_ms: u64,
    },
    /// Parse a scanned text (eMediplan, GS1, pickup ticket) and print it as JSON.
    Parse {
        /// The text, as a code reader gives it.
        text: String,
    },
    /// Open the configured camera (or --device), capture frames through the
    /// kiosk's own camera code, and print what came: size, rate, brightness.
    CameraCheck {
        /// V4L2 device (default: camera.device from the config).
        #[arg(long)]
        device: Option<String>,
        /// Frames to capture.
        #[arg(long, default_value_t = 30)]
        frames: u32,
        /// Save the last frame as this PNG.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Check this build on its hardware: QR decode, CHMED parse, sled store, alarm rule.
    /// Prints one JSON line per check; exits 1 if any fails.
    Selftest {
        /// Photos of QR codes to decode as well (with `N.txt` beside `N.png` to compare).
        qr: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Scan { files, budget_ms }) = &cli.cmd {
        for f in files {
            println!("{}", scan_file(f, *budget_ms));
        }
        return Ok(());
    }
    if let Some(Cmd::Parse { text }) = &cli.cmd {
        // Pure: no config, no runtime.
        let p = rxedge_shared::payload::parse(text);
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    if let Some(Cmd::Selftest { qr }) = &cli.cmd {
        let tmp = std::env::temp_dir().join(format!("rxedge-selftest-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let checks = rxedge_kiosk::selftest::run(qr, &tmp);
        let _ = std::fs::remove_dir_all(&tmp);
        let failed = checks.iter().filter(|c| !c.ok).count();
        for c in &checks {
            println!("{}", serde_json::to_string(c)?);
        }
        println!(
            "selftest: {} on {}: {} passed, {failed} failed",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            checks.len() - failed
        );
        std::process::exit(i32::from(failed > 0));
    }
    if let Some(Cmd::CameraCheck {
        device,
        frames,
        save,
    }) = &cli.cmd
    {
        let mut cfg = Config::load(cli.config.as_deref())?;
        if let Some(d) = device {
            cfg.camera.device = d.clone();
        }
        anyhow::ensure!(
            !cfg.camera.device.trim().is_empty(),
            "no camera: set camera.device or pass --device /dev/videoN"
        );
        let report = camera_check(&cfg.camera, *frames, save.as_deref())?;
        println!("{report}");
        return Ok(());
    }
    if cli.print_default_config {
        print!("{}", rxedge_shared::config::print_defaults::<Config>()?);
        return Ok(());
    }
    let mut cfg = Config::load(cli.config.as_deref())?;
    if cli.simulate {
        cfg.simulator.enabled = true;
    }
    rxedge_kiosk::init_tracing(&cfg.log.filter, cfg.log.json);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd.unwrap_or(Cmd::Run) {
            Cmd::Run => {
                let listener = tokio::net::TcpListener::bind(cfg.ui.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", cfg.ui.listen))?;
                rxedge_kiosk::run(cfg, listener, rxedge_kiosk::shutdown_signal()).await?;
            }
            Cmd::Enroll {
                hub,
                id,
                code,
                ca_fingerprint,
            } => {
                let f = rxedge_kiosk::enroll(
                    &cfg.paths.state_dir,
                    &hub,
                    &id,
                    &code,
                    ca_fingerprint.as_deref(),
                )
                .await?;
                println!(
                    "enrolled as kiosk {} of store {}; broker {}",
                    f.kiosk_id, f.store_id, f.broker_url
                );
            }
            Cmd::Identity => {
                rxedge_kiosk::ensure_state_dir(&cfg.paths.state_dir)?;
                let key = rxedge_kiosk::keyfile::load_or_create(
                    &rxedge_kiosk::identity::key_path(&cfg.paths.state_dir),
                )?;
                println!(
                    "{}",
                    rxedge_shared::sign::encode_public(&key.verifying_key())
                );
            }
            Cmd::Outbox => print_outbox(&cfg).await?,
            Cmd::MqttLogin => {
                let id = rxedge_kiosk::identity::load(&cfg.paths.state_dir)?;
                let (store, kiosk) = (id.store.as_str(), id.kiosk.as_str());
                println!(
                    "client_id = {}",
                    rxedge_shared::topics::kiosk_client_id(store, kiosk)
                );
                println!("username = {kiosk}");
                println!(
                    "password = {}",
                    rxedge_shared::sign::mqtt_password(&id.key, store, kiosk)
                );
            }
            Cmd::Parse { .. }
            | Cmd::Scan { .. }
            | Cmd::Selftest { .. }
            | Cmd::CameraCheck { .. } => {}
        }
        Ok::<_, anyhow::Error>(())
    })
}

fn camera_check(
    c: &rxedge_kiosk::config::Camera,
    frames: u32,
    save: Option<&std::path::Path>,
) -> anyhow::Result<serde_json::Value> {
    let mut cam = rxedge_kiosk::camera::open_configured(c);
    let start = std::time::Instant::now();
    let deadline = start + std::time::Duration::from_secs(30);
    let (mut got, mut last, mut first_at) = (0u32, None, None);
    while got < frames && std::time::Instant::now() < deadline {
        match cam.next_frame() {
            Ok(Some(f)) => {
                got += 1;
                first_at.get_or_insert_with(std::time::Instant::now);
                last = Some(f);
            }
            Ok(None) => {}
            Err(e) => anyhow::bail!("{}: {e}", cam.describe()),
        }
    }
    let last = last.ok_or_else(|| anyhow::anyhow!("{}: no frame in 30 s", cam.describe()))?;
    let secs = first_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let fps = if got > 1 && secs > 0.0 {
        f64::from(got - 1) / secs
    } else {
        0.0
    };
    let mean = last.pixels().map(|p| f64::from(p.0[0])).sum::<f64>()
        / f64::from(last.width() * last.height()).max(1.0);
    if let Some(p) = save {
        last.save(p)
            .with_context(|| format!("cannot save {}", p.display()))?;
    }
    Ok(serde_json::json!({
        "camera": cam.describe(),
        "frames": got,
        "width": last.width(),
        "height": last.height(),
        "fps": (fps * 10.0).round() / 10.0,
        "first_frame_ms": first_at.map(|t| (t - start).as_millis()),
        "mean_luma": mean.round(),
    }))
}

fn scan_file(f: &std::path::Path, budget_ms: u64) -> serde_json::Value {
    let file = f.display().to_string();
    let img = match image::open(f) {
        Ok(i) => i.to_luma8(),
        Err(e) => {
            return serde_json::json!({ "file": file, "error": format!("cannot read image: {e}") })
        }
    };
    let t = std::time::Instant::now();
    let r = rxedge_kiosk::qr::decode(&img, std::time::Duration::from_millis(budget_ms));
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let codes: Vec<serde_json::Value> = r
        .codes
        .iter()
        .map(|c| serde_json::json!({ "text": c.text, "payload": rxedge_shared::payload::parse(&c.text), "strategy": c.strategy, "region": c.region }))
        .collect();
    serde_json::json!({ "file": file, "codes": codes, "ms": (ms * 100.0).round() / 100.0, "attempts": r.attempts, "panics": r.panics })
}

async fn print_outbox(cfg: &Config) -> anyhow::Result<()> {
    // A running kiosk holds sled's lock: ask it first, then fall back to the files.
    let url = format!("http://{}/api/outbox", cfg.ui.listen);
    let live = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await;
    let (report, source) = match live {
        Ok(r) if r.status().is_success() => {
            let st: serde_json::Value = r.json().await?;
            (
                serde_json::from_value::<rxedge_shared::protocol::OutboxReport>(
                    st["outbox"].clone(),
                )?,
                "running kiosk",
            )
        }
        _ => {
            let store =
                rxedge_kiosk::store::OutboxStore::open(&cfg.paths.state_dir.join("outbox"), 1)
                    .context("kiosk not running and its outbox cannot be opened")?;
            let (recs, c) = store.load()?;
            let o = rxedge_shared::outbox::Outbox::restore(
                cfg.outbox.limits(),
                recs.into_iter().map(|r| r.meta),
                c.last_seq,
                c.acked,
                c.dropped,
            );
            (
                o.report(rxedge_shared::clock::system_now_ms()),
                "outbox files (kiosk not running)",
            )
        }
    };
    println!("source:   {source}");
    println!("queued:   {}", report.queued);
    println!("inflight: {}", report.inflight);
    println!("acked:    {}", report.acked);
    println!("dropped:  {}", report.dropped);
    match report.oldest_age_ms {
        Some(ms) => println!("oldest:   {:.1} s", ms as f64 / 1000.0),
        None => println!("oldest:   -"),
    }
    Ok(())
}
