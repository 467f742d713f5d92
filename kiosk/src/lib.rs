//! RxEdge kiosk: records patient scans and fridge readings, keeps every event
//! in a durable sled outbox, and delivers it to the hub over MQTT until the
//! hub acks it after its own commit.
//!
//! Rooms: [`driver`] (outbox actor), [`store`] (sled), [`link`] (MQTT),
//! [`ui`] (local HTTP), [`sim`] (simulated hardware). `main.rs` is wiring only.

pub mod config;
pub mod driver;
pub mod identity;
pub mod keyfile;
pub mod link;
pub mod sim;
pub mod store;
pub mod ui;

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
    let (driver, handle, cmds) =
        driver::Driver::new(id.clone(), store, cfg.outbox.limits(), client.clone())?;
    let (link_tx, link_rx) = mpsc::channel(4096);
    let (stop_tx, stop_rx) = watch::channel(false);
    tracing::info!(kiosk = %id.kiosk, store = %id.store, broker = %broker, "kiosk starting");

    let link_task = tokio::spawn(link::run(
        eventloop,
        client,
        id.clone(),
        link_tx,
        Duration::from_millis(cfg.hub.reconnect_max_ms),
        stop_rx.clone(),
    ));
    let driver_task = tokio::spawn(driver.run(cmds, link_rx, stop_rx.clone()));
    let sim_task = cfg.simulator.enabled.then(|| {
        tokio::spawn(sim::run(
            handle.clone(),
            cfg.simulator.clone(),
            stop_rx.clone(),
        ))
    });

    let app = ui::router(ui::UiState {
        handle,
        simulate: cfg.simulator.enabled,
        kiosk: Arc::from(id.kiosk.as_str()),
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    if let Some(t) = sim_task {
        let _ = t.await;
    }
    let _ = driver_task.await;
    let _ = link_task.await;
    served.map_err(KioskError::Http)
}

/// Set up logging.
pub fn init_tracing(filter: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let env = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr);
    let _ = if json {
        b.json().try_init()
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
