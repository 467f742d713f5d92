//! RxEdge kiosk: records patient scans and fridge readings, keeps every event
//! in a durable sled outbox, and delivers it to the hub over MQTT until the
//! hub acks it after its own commit.
//!
//! Rooms: [`driver`] (outbox actor), [`store`] (sled), [`link`] (MQTT),
//! [`ui`] (local HTTP), [`sim`] (simulated hardware). `main.rs` is wiring only.

pub mod availability;
pub mod camera;
#[cfg(feature = "usb-camera")]
pub mod camera_usb;
pub mod config;
pub mod driver;
pub mod fridge;
pub mod identity;
pub mod keyfile;
pub mod link;
pub mod paper;
pub mod qr;
pub mod scanner;
pub mod selftest;
pub mod service;
pub mod sim;
pub mod store;
pub mod ui;
pub mod upload;

use crate::config::Config;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Kiosk errors.
#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] rxedge_shared::config::ConfigError),
    /// Identity missing or bad.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// Outbox store.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Enrollment failed.
    #[error("enrollment: {0}")]
    Enroll(String),
    /// Local HTTP server.
    #[error("local ui: {0}")]
    Http(std::io::Error),
    /// State directory.
    #[error("{0}")]
    State(String),
}

/// Parse `mqtt://host:port`.
pub fn parse_broker(url: &str) -> Result<(String, u16), KioskError> {
    let bad = || {
        KioskError::Config(rxedge_shared::config::ConfigError::Invalid(format!(
            "broker url {url:?}: expected mqtt://host:port"
        )))
    };
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Ok((h.to_owned(), p.parse().map_err(|_| bad())?)),
        None if !rest.is_empty() => Ok((rest.to_owned(), 1883)),
        _ => Err(bad()),
    }
}

/// Create the state directory (0700).
pub fn ensure_state_dir(dir: &Path) -> Result<(), KioskError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| KioskError::State(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Enroll with a hub: create our key if needed, present it with the one-time
/// code, and save what the hub answers.
pub async fn enroll(
    state_dir: &Path,
    hub_url: &str,
    kiosk_id: &str,
    code: &str,
) -> Result<identity::IdentityFile, KioskError> {
    ensure_state_dir(state_dir)?;
    let key = keyfile::load_or_create(&identity::key_path(state_dir))
        .map_err(|e| KioskError::Enroll(e.to_string()))?;
    let url = format!("{}/api/enroll", hub_url.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(15))
        .json(&serde_json::json!({
            "kiosk_id": kiosk_id,
            "code": code,
            "public_key": rxedge_shared::sign::encode_public(&key.verifying_key()),
        }))
        .send()
        .await
        .map_err(|e| KioskError::Enroll(format!("cannot reach the hub at {url}: {e}")))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| KioskError::Enroll(format!("hub answered {status} with no JSON: {e}")))?;
    if !status.is_success() {
        return Err(KioskError::Enroll(
            body.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("refused")
                .to_owned(),
        ));
    }
    let f: identity::IdentityFile = serde_json::from_value(serde_json::json!({
        "store_id": body["store_id"], "kiosk_id": body["kiosk_id"], "broker_url": body["broker_url"], "hub_public_key": body["hub_public_key"],
        "hub_url": hub_url.trim_end_matches('/'),
    }))
    .map_err(|e| KioskError::Enroll(format!("unexpected answer: {e}")))?;
    identity::save(state_dir, &f)?;
    Ok(f)
}

/// Run the kiosk until `shutdown` resolves. `listener` serves the local UI/API.
pub async fn run(
    cfg: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), KioskError> {
    cfg.validate()?;
    let id = identity::load(&cfg.paths.state_dir)?;
    let store =
        store::OutboxStore::open(&cfg.paths.state_dir.join("outbox"), cfg.outbox.cache_mib)?;
    let broker = if cfg.hub.broker_url.is_empty() {
        id.broker_url.clone()
    } else {
        cfg.hub.broker_url.clone()
    };
    let (host, port) = parse_broker(&broker)?;
    let (client, eventloop) = rumqttc::AsyncClient::new(
        link::options(
            &id,
            &host,
            port,
            Duration::from_secs(cfg.hub.keep_alive_secs),
        ),
        4096,
    );
    let (driver, handle, cmds) = driver::Driver::new(
        id.clone(),
        store.clone(),
        cfg.outbox.limits(),
        client.clone(),
    )?;
    let (link_tx, link_rx) = mpsc::channel(4096);
    let (stop_tx, stop_rx) = watch::channel(false);
    tracing::info!(kiosk = %id.kiosk, store = %id.store, broker = %broker, "kiosk starting");

    let asker = availability::Asker::new(
        client.clone(),
        id.clone(),
        store.tree("availability")?,
        Duration::from_secs(u64::from(cfg.hub.availability_cache_hours) * 3600),
    );
    let link_task = tokio::spawn(link::run(
        eventloop,
        client,
        id.clone(),
        link_tx,
        asker.clone(),
        Duration::from_millis(cfg.hub.reconnect_max_ms),
        stop_rx.clone(),
    ));
    let driver_task = tokio::spawn(driver.run(cmds, link_rx, stop_rx.clone()));
    let sim_fridges = fridge::sim::SimControl::default();
    let (fridges, buzzer) = build_fridges(&cfg, &sim_fridges)?;
    let (watch, fridge_status) = fridge::Watch::new(
        fridges,
        buzzer,
        handle.clone(),
        store.tree("fridge_buffer")?,
        fridge::Settings {
            default_sample_secs: cfg.hardware.default_sample_secs,
            door_debounce_ms: i64::from(cfg.hardware.door_debounce_ms),
            buffer_max: cfg.hardware.buffer_max,
        },
    );
    let watch_task = tokio::spawn(watch.run(stop_rx.clone()));
    let sim_camera = camera::SimCamera::default();
    let (scan_tx, scan_status) = watch::channel(scanner::ScanStatus {
        camera_ok: false,
        camera_problem: Some("no camera configured".into()),
        ..Default::default()
    });
    let papers = upload::PaperStore::new(store.tree("paper")?);
    let upload_task = tokio::spawn(upload::run(
        papers.clone(),
        id.hub_url.clone(),
        id.kiosk.to_string(),
        id.key.clone(),
        stop_rx.clone(),
    ));
    let scan_mode = Arc::new(watch::channel(scanner::Mode::Qr).0);
    let preview = scanner::Preview::default();
    let metrics = Arc::new(ui::KioskMetrics::default());
    let source: Option<Box<dyn camera::FrameSource>> = if cfg.simulator.enabled {
        Some(Box::new(sim_camera.clone()))
    } else if cfg.camera.device.trim().is_empty() {
        None
    } else {
        Some(camera::open_configured(&cfg.camera))
    };
    let camera_configured = source.is_some();
    let scanner_task = source.map(|source| {
        tokio::spawn(scanner::run(
            source,
            handle.clone(),
            scan_tx,
            scan_mode.clone(),
            papers.clone(),
            scanner::ScannerLinks {
                hub_key: id.hub_key,
                store: id.store.to_string(),
                preview: preview.clone(),
                metrics: metrics.clone(),
            },
            stop_rx.clone(),
        ))
    });
    let sim_task = cfg.simulator.enabled.then(|| {
        tokio::spawn(sim::run(
            sim_camera.clone(),
            cfg.simulator.clone(),
            stop_rx.clone(),
        ))
    });

    let supervisor = tokio::spawn(service::supervise(
        store.clone(),
        handle.status.clone(),
        stop_rx.clone(),
    ));
    let app = ui::router(ui::UiState {
        handle,
        fridges: fridge_status,
        sim_fridges,
        sim_camera,
        scan_status,
        scan_mode,
        papers,
        simulate: cfg.simulator.enabled,
        kiosk: Arc::from(id.kiosk.as_str()),
        asker,
        preview,
        metrics,
        camera_configured,
    });
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    service::stopping();
    let _ = stop_tx.send(true);
    let _ = supervisor.await;
    if let Some(t) = sim_task {
        let _ = t.await;
    }
    if let Some(t) = scanner_task {
        let _ = t.await;
    }
    let _ = upload_task.await;
    let _ = watch_task.await;
    let _ = driver_task.await;
    let _ = link_task.await;
    served.map_err(KioskError::Http)
}

/// The fridges and buzzer this kiosk has: simulated, or from `[hardware]`.
fn build_fridges(
    cfg: &Config,
    sim: &fridge::sim::SimControl,
) -> Result<(Vec<fridge::FridgeHw>, Box<dyn fridge::Buzzer>), KioskError> {
    let now = rxedge_shared::clock::system_now_ms();
    if cfg.simulator.enabled {
        let list = cfg
            .simulator
            .fridges
            .iter()
            .map(|id| {
                sim.add(id, now);
                fridge::FridgeHw {
                    id: id.clone(),
                    probe: Box::new(sim.probe(id)),
                    offset_c: 0.0,
                    door: Some(Box::new(sim.door_switch(id))),
                }
            })
            .collect();
        return Ok((list, Box::new(fridge::SimBuzzer::default())));
    }
    let bad = |m: String| KioskError::Config(rxedge_shared::config::ConfigError::Invalid(m));
    let mut list = Vec::new();
    for f in &cfg.hardware.fridges {
        let probe: Box<dyn fridge::TempProbe> = match f.probe.split_once(':') {
            Some(("ds18b20", id)) => Box::new(fridge::ds18b20::Ds18b20::new(&cfg.hardware.w1_root, id)),
            #[cfg(feature = "pi")]
            Some(("sht3x", rest)) => {
                let (bus, addr) = rest.split_once(':').ok_or_else(|| bad(format!("hardware.fridges {}: probe {:?}: use sht3x:BUS:0xADDR", f.id, f.probe)))?;
                let bus: u8 = bus.parse().map_err(|_| bad(format!("hardware.fridges {}: bad I2C bus {bus:?}", f.id)))?;
                let addr = u8::from_str_radix(addr.trim_start_matches("0x"), 16).map_err(|_| bad(format!("hardware.fridges {}: bad I2C address {addr:?}", f.id)))?;
                Box::new(fridge::gpio::sht3x(bus, addr).map_err(|e| bad(format!("hardware.fridges {}: {e}", f.id)))?)
            }
            _ => return Err(bad(format!("hardware.fridges {}: probe {:?} is not ds18b20:ID or sht3x:BUS:ADDR (sht3x needs the `pi` build)", f.id, f.probe))),
        };
        let door: Option<Box<dyn fridge::DoorSwitch>> = match f.door_gpio {
            0 => None,
            #[cfg(feature = "pi")]
            pin => {
                Some(Box::new(fridge::gpio::GpioDoor::new(pin).map_err(|e| {
                    bad(format!("hardware.fridges {}: {e}", f.id))
                })?))
            }
            #[cfg(not(feature = "pi"))]
            pin => {
                return Err(bad(format!(
                    "hardware.fridges {}: door_gpio {pin} needs the `pi` build",
                    f.id
                )))
            }
        };
        list.push(fridge::FridgeHw {
            id: f.id.clone(),
            probe,
            offset_c: f.offset_c,
            door,
        });
    }
    let buzzer: Box<dyn fridge::Buzzer> = match cfg.hardware.buzzer_gpio {
        0 => Box::new(fridge::SimBuzzer::default()),
        #[cfg(feature = "pi")]
        pin => Box::new(
            fridge::gpio::GpioBuzzer::new(pin)
                .map_err(|e| bad(format!("hardware.buzzer_gpio: {e}")))?,
        ),
        #[cfg(not(feature = "pi"))]
        pin => {
            return Err(bad(format!(
                "hardware.buzzer_gpio {pin} needs the `pi` build"
            )))
        }
    };
    Ok((list, buzzer))
}

/// Set up logging.
pub fn init_tracing(filter: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let env = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr);
    // Under systemd, stderr goes to the journal, which stamps the time itself
    // and shows colour codes as garbage.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let _ = if json {
        b.json().try_init()
    } else if journal {
        b.with_ansi(false).without_time().try_init()
    } else {
        b.try_init()
    };
}

/// Resolves on Ctrl-C or SIGTERM (systemd's stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
