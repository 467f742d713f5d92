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

/// Parse `mqtt://host:port` or `mqtts://host:port`.
pub fn parse_broker(url: &str) -> Result<rxedge_shared::tls::MqttUrl, KioskError> {
    rxedge_shared::tls::parse_mqtt_url(url).map_err(|e| {
        KioskError::Config(rxedge_shared::config::ConfigError::Invalid(format!(
            "broker url: {e}"
        )))
    })
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

/// Largest CA certificate file the kiosk fetches at enrollment.
const MAX_CA_BYTES: usize = 64 * 1024;

/// Fetch the hub's CA at enrollment and check it against the fingerprint
/// `rxedge-hub kiosk add` printed. The connection that fetches it trusts no
/// one; the fingerprint is what makes the answer trustworthy, and nothing
/// secret is sent before it matches.
async fn fetch_hub_ca(hub_url: &str, fingerprint: &str) -> Result<String, KioskError> {
    use rustls_pki_types::pem::PemObject as _;
    let url = format!("{hub_url}/api/tls/ca.pem");
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| KioskError::Enroll(format!("TLS client: {e}")))?;
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| KioskError::Enroll(format!("cannot reach the hub at {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(KioskError::Enroll(format!(
            "the hub answered {} for its CA certificate at {url}",
            resp.status()
        )));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_CA_BYTES as u64)
    {
        return Err(KioskError::Enroll(format!(
            "{url}: the CA certificate is too large"
        )));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| KioskError::Enroll(format!("{url}: {e}")))?;
    if body.len() > MAX_CA_BYTES {
        return Err(KioskError::Enroll(format!(
            "{url}: the CA certificate is too large"
        )));
    }
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&body)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KioskError::Enroll(format!("{url}: not a PEM certificate: {e}")))?;
    let [ca] = certs.as_slice() else {
        return Err(KioskError::Enroll(format!(
            "{url}: expected one CA certificate, got {}",
            certs.len()
        )));
    };
    let got = rxedge_shared::tls::fingerprint(ca);
    if got != fingerprint {
        return Err(KioskError::Enroll(format!(
            "the hub at {hub_url} presents a CA with fingerprint {got}, not the {fingerprint} given: \
             this is not the hub that issued the code (or the fingerprint was mistyped). Nothing was sent."
        )));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| KioskError::Enroll(format!("{url}: the certificate is not text")))
}

/// Enroll with a hub: create our key if needed, present it with the one-time
/// code, and save what the hub answers. An `https://` hub needs the CA
/// fingerprint `rxedge-hub kiosk add` printed; that CA is pinned from then on.
pub async fn enroll(
    state_dir: &Path,
    hub_url: &str,
    kiosk_id: &str,
    code: &str,
    ca_fingerprint: Option<&str>,
) -> Result<identity::IdentityFile, KioskError> {
    let hub_url = hub_url.trim_end_matches('/');
    let ca_pem = match (hub_url.starts_with("https://"), ca_fingerprint) {
        (true, Some(fp)) => {
            let fp = rxedge_shared::tls::parse_fingerprint(fp)
                .map_err(|e| KioskError::Enroll(format!("--ca-fingerprint: {e}")))?;
            Some(fetch_hub_ca(hub_url, &fp).await?)
        }
        (true, None) => {
            return Err(KioskError::Enroll(
                "an https:// hub needs --ca-fingerprint (rxedge-hub kiosk add prints it)".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(KioskError::Enroll(
                "--ca-fingerprint is for an https:// hub; this hub URL is not https://".into(),
            ))
        }
        (false, None) => None,
    };
    ensure_state_dir(state_dir)?;
    let key = keyfile::load_or_create(&identity::key_path(state_dir))
        .map_err(|e| KioskError::Enroll(e.to_string()))?;
    let url = format!("{hub_url}/api/enroll");
    let resp = identity::pinned_client(ca_pem.as_deref())?
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
        "hub_url": hub_url,
        "hub_ca_pem": ca_pem.unwrap_or_default(),
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
    let url = parse_broker(&broker)?;
    let mut opts = link::options(
        &id,
        &url.host,
        url.port,
        Duration::from_secs(cfg.hub.keep_alive_secs),
    );
    if url.tls {
        let ca = id.hub_ca_pem.as_deref().ok_or_else(|| {
            KioskError::Enroll(format!(
                "the broker {broker} uses TLS but this kiosk holds no hub CA: enroll again with --ca-fingerprint"
            ))
        })?;
        opts.set_transport(link::pinned_tls(ca));
    }
    let hub_http = id.hub_client()?;
    let (client, eventloop) = rumqttc::AsyncClient::new(opts, 4096);
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
        hub_http,
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
