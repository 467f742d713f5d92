//! RxEdge hub: ingests kiosk events over MQTT, keeps the store, serves the screens.
//!
//! One module per bounded context, each with its own router merged over one
//! [`web::AppState`]. [`run`] wires them; `main.rs` only parses the command line.

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod billing;
pub mod blobs;
pub mod broker;
pub mod catalog;
pub mod coldchain;
pub mod config;
pub mod days;
pub mod demo;
pub mod devices;
pub mod ingest;
pub mod inventory;
pub mod metrics;
pub mod notify;
pub mod ocr;
pub mod orders;
pub mod outbound;
pub mod page_cache;
pub mod patients;
pub mod service;
pub mod store;
pub mod tls;
pub mod web;

use crate::config::Config;
use rxedge_shared::sign::SigningKey;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Hub start-up and run errors.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] rxedge_shared::config::ConfigError),
    /// State directory or key file problem.
    #[error("{0}")]
    State(String),
    /// Database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Embedded broker.
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    /// HTTP server.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// TLS certificates.
    #[error("tls: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Create the state directory (0700) if needed. Only `run` and CLI commands do this, never config loading.
pub fn ensure_state_dir(dir: &Path) -> Result<(), HubError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        HubError::State(format!(
            "cannot create state directory {}: {e}",
            dir.display()
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// The hub's Ed25519 key (`hub.key`, 0600), created on first use.
pub fn hub_key(state_dir: &Path) -> Result<SigningKey, HubError> {
    rxedge_kiosk::keyfile::load_or_create(&state_dir.join("hub.key"))
        .map_err(|e| HubError::State(e.to_string()))
}

/// Open the database named by the config and migrate it.
pub async fn open_db(cfg: &Config) -> Result<store::Db, HubError> {
    if cfg.database.url.is_empty() {
        ensure_state_dir(&cfg.paths.state_dir)?;
    }
    Ok(store::Db::connect(&cfg.database_url(), cfg.database.max_connections).await?)
}

/// Run the hub until `shutdown` resolves. Tests pass a listener bound to port 0.
pub async fn run(
    cfg: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    cfg.validate()?;
    let store_id = cfg.store_id()?;
    ensure_state_dir(&cfg.paths.state_dir)?;
    let key = Arc::new(hub_key(&cfg.paths.state_dir)?);
    let tls = tls::load(&cfg)?.map(Arc::new);
    if let Some(t) = &tls {
        tracing::info!(ca = %t.files.ca.display(), fingerprint = %t.ca_fingerprint, "TLS on");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    // Where the hub's own MQTT clients connect.
    let mut broker_local = cfg
        .broker_addr()
        .map_err(|e| HubError::State(format!("broker.url: {e}")))?;
    let mut front = None;
    let gate = if cfg.broker.url.is_empty() {
        let gate = Arc::new(broker::Gate::new(store_id.as_str()));
        let plain = match &tls {
            // rumqttd speaks plain MQTT on loopback; TLS ends in front of it.
            Some(t) => {
                let public = tokio::net::TcpListener::bind(cfg.broker.listen)
                    .await
                    .map_err(|source| broker::BrokerError::Bind {
                        addr: cfg.broker.listen,
                        source,
                    })?;
                let inner = broker::loopback_port()?;
                front = Some(tokio::spawn(tls::mqtt_front(
                    public,
                    t.mqtt_acceptor()?,
                    inner,
                    stop_rx.clone(),
                )));
                inner
            }
            None => cfg.broker.listen,
        };
        broker::start(plain, cfg.ingest.max_payload_bytes, gate.clone())?;
        if plain != cfg.broker.listen {
            broker_local = ("127.0.0.1".to_owned(), plain.port());
        }
        tracing::info!(listen = %cfg.broker.listen, tls = tls.is_some(), "embedded MQTT broker started");
        Some(gate)
    } else {
        None
    };
    let interactions = Arc::new(orders::load_interactions(&cfg.orders.interactions_file)?);
    let db = open_db(&cfg).await?;
    tracing::info!(backend = ?db.backend, interactions = interactions.rows.len(), "store open");
    // hub.toml is edited outside the hub: what changed since the last start
    // goes into the audit trail.
    match audit::config::record_start(&db, &cfg, rxedge_shared::clock::system_now_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            keys = n,
            "config differs from the last start: recorded in the audit trail"
        ),
        Err(e) => tracing::error!(error = %e, "config change not recorded in the audit trail"),
    }

    let metrics = Arc::new(metrics::Metrics::default());
    let (feed, _) = broadcast::channel(4096);
    let (host, port) = broker_local.clone();
    let mut opts = ingest::mqtt_options(
        &store_id,
        &host,
        port,
        Duration::from_secs(cfg.broker.keep_alive_secs),
        cfg.ingest.max_payload_bytes,
    );
    if !cfg.broker.url.is_empty() {
        let external = rxedge_shared::tls::parse_mqtt_url(&cfg.broker.url)
            .map_err(|e| HubError::State(format!("broker.url: {e}")))?;
        if external.tls {
            // An external broker over TLS presents a certificate from the CA
            // kiosks pin (docs/security.md): the hub pins the same one.
            let t = tls.as_ref().ok_or_else(|| {
                HubError::State("broker.url is mqtts:// but tls.mode is off: the hub has no CA to check the broker by".into())
            })?;
            opts.set_transport(rxedge_kiosk::link::pinned_tls(&t.ca_pem));
        }
    }
    let hub_login = match &gate {
        Some(g) => {
            g.reload(&db)
                .await
                .map_err(|e| HubError::State(format!("broker gate: {e}")))?;
            Some(g.hub_login())
        }
        None if !cfg.broker.username.is_empty() => {
            Some((cfg.broker.username.clone(), cfg.broker.password.clone()))
        }
        None => None,
    };
    if let Some((user, pass)) = &hub_login {
        opts.set_credentials(user.clone(), pass.clone());
    }
    let (client, eventloop) = rumqttc::AsyncClient::new(opts, 10_000);
    let (tx, rx) = mpsc::channel(10_000);
    let devices_changed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (cc_tx, cc_rx) = mpsc::channel(10_000);
    let views: coldchain::service::Views = Default::default();
    let cc = coldchain::service::ColdChain::new(
        db.clone(),
        cfg.coldchain.clone(),
        feed.clone(),
        views.clone(),
    );
    let cc_task = tokio::spawn(cc.run(cc_rx, stop_rx.clone()));

    let worker = ingest::Ingest::new(
        db.clone(),
        store_id.clone(),
        key.clone(),
        client.clone(),
        metrics.clone(),
        feed.clone(),
        cfg.ingest.max_payload_bytes,
        cfg.ingest.batch_max,
    )
    .with_device_changes(devices_changed.clone())
    .with_clock_window(cfg.ingest.max_clock_ahead_secs)
    .with_coldchain(cc_tx.clone());
    let worker = tokio::spawn(worker.run(rx));
    let (q_tx, q_rx) = mpsc::channel(256);
    let answers = tokio::spawn(inventory::availability::serve(
        q_rx,
        db.clone(),
        client.clone(),
        store_id.clone(),
        key.clone(),
    ));
    let conn = tokio::spawn(ingest::connection(
        eventloop,
        client.clone(),
        db.clone(),
        store_id.clone(),
        key.clone(),
        tx,
        q_tx,
        metrics.clone(),
        stop_rx.clone(),
    ));

    inventory::ensure_fridge_locations(
        &db,
        &cfg.kiosk_defaults.fridges,
        rxedge_shared::clock::system_now_ms(),
    )
    .await
    .map_err(|e| HubError::Store(e.into()))?;
    let sweeper = tokio::spawn(inventory::expiry_sweeper(
        db.clone(),
        feed.clone(),
        stop_rx.clone(),
    ));
    let order_sync = tokio::spawn(orders::sync_task(db.clone(), feed.clone(), stop_rx.clone()));
    let gate_task = gate
        .clone()
        .map(|g| tokio::spawn(broker::gate_refresher(g, db.clone(), stop_rx.clone())));
    let retention = tokio::spawn(blobs::retention_task(
        db.clone(),
        cfg.paths.state_dir.clone(),
        blobs::Retention {
            keep_ms: i64::from(cfg.blobs.keep_days) * 86_400_000,
            orphan_ms: i64::from(cfg.blobs.orphan_days) * 86_400_000,
        },
        stop_rx.clone(),
    ));
    let queue = Arc::new(page_cache::PageCache::new(orders::web::QUEUE_FRESH, 64));
    let pages = Arc::new(page_cache::PageCache::new(orders::web::REVIEW_FRESH, 512));
    let notify_wake = Arc::new(tokio::sync::Notify::new());
    let notifier = tokio::spawn(notify::worker(
        db.clone(),
        cfg.notify.clone(),
        notify_wake.clone(),
        feed.clone(),
        stop_rx.clone(),
    ));
    let ocr_wake = Arc::new(tokio::sync::Notify::new());
    let mut ocr_workers = Vec::new();
    if cfg.ocr.enabled {
        let names = if cfg.ocr.drug_names_file.is_empty() {
            ocr::vocab::Vocab::default()
        } else {
            let text = std::fs::read_to_string(&cfg.ocr.drug_names_file).map_err(|e| {
                HubError::State(format!(
                    "ocr.drug_names_file {}: {e}",
                    cfg.ocr.drug_names_file
                ))
            })?;
            let mut v = ocr::vocab::Vocab::default();
            let n = v.add_drug_names(&text);
            tracing::info!(names = n, "OCR drug name list loaded");
            v
        };
        let requeued = ocr::jobs::requeue_running(&db, rxedge_shared::clock::system_now_ms())
            .await
            .map_err(|e| HubError::Store(e.into()))?;
        if requeued > 0 {
            tracing::warn!(
                jobs = requeued,
                "OCR jobs cut off by the last stop are queued again"
            );
        }
        let w = ocr::jobs::Worker {
            db: db.clone(),
            cfg: cfg.ocr.clone(),
            max_bytes: cfg.ingest.max_image_bytes,
            state_dir: cfg.paths.state_dir.clone(),
            names: Arc::new(names),
            feed: feed.clone(),
            wake: ocr_wake.clone(),
            metrics: metrics.clone(),
        };
        for _ in 0..cfg.ocr.workers {
            ocr_workers.push(tokio::spawn(w.clone().run(stop_rx.clone())));
        }
    }
    let queue_watch = tokio::spawn(orders::web::invalidate_on_change(
        queue.clone(),
        pages.clone(),
        feed.subscribe(),
        stop_rx.clone(),
    ));
    let supervisor = tokio::spawn(service::supervise(
        db.clone(),
        metrics.clone(),
        stop_rx.clone(),
    ));
    // Live streams (SSE) must end when the hub stops, or graceful shutdown
    // would wait for every open browser tab forever.
    let (closing_tx, closing) = watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    // A name set in the first-run wizard outlives the config's.
    let store_name = auth::setting(&db, auth::STORE_NAME)
        .await
        .map_err(|e| HubError::Store(e.into()))?
        .unwrap_or_else(|| cfg.store.name.clone());
    let max_image = cfg.ingest.max_image_bytes;
    let auth_cfg = cfg.auth.clone();
    let metrics_layer = metrics.clone();
    let state = web::AppState(Arc::new(web::Inner {
        db,
        cfg,
        store: store_id,
        key,
        mqtt: client,
        metrics,
        feed,
        devices_changed,
        coldchain: cc_tx,
        fridges: views,
        closing,
        store_name: std::sync::RwLock::new(store_name),
        interactions,
        queue,
        pages,
        notify_wake,
        ocr_wake,
        gate: gate.clone(),
        sessions: auth::session::Cache::new(i64::from(auth_cfg.session_cache_secs) * 1000),
        mqtt_login: hub_login.clone(),
        broker_local,
        tls: tls.clone(),
        throttle: std::sync::Mutex::new(auth::throttle::Throttle::new(
            auth_cfg.max_failures_per_account,
            auth_cfg.max_failures_per_ip,
            i64::from(auth_cfg.lockout_minutes.max(1)) * 60_000,
        )),
    }));
    let app = web::router(max_image)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::writes_invalidate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard::security_headers,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            metrics_layer,
            web::observe,
        ));
    tracing::info!(addr = ?listener.local_addr().ok(), "hub web listening");
    let served = match &tls {
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(t) => {
            use axum::serve::ListenerExt as _;
            // tap_io: axum's connect-info for a custom listener.
            let listener = tls::HttpsListener::new(listener, t.http_acceptor()?)
                .map_err(HubError::Http)?
                .tap_io(|_| {});
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    };
    service::stopping();
    let _ = stop_tx.send(true);
    let _ = supervisor.await;
    let _ = conn.await;
    let _ = worker.await;
    let _ = cc_task.await;
    let _ = sweeper.await;
    let _ = retention.await;
    if let Some(t) = gate_task {
        let _ = t.await;
    }
    if let Some(f) = front {
        let _ = f.await;
    }
    let _ = order_sync.await;
    let _ = queue_watch.await;
    let _ = notifier.await;
    for w in ocr_workers {
        let _ = w.await;
    }
    let _ = answers.await;
    served.map_err(HubError::Http)
}

/// Set up logging from the config. rumqttd logs ordinary disconnects at ERROR,
/// so its connection target is capped at WARN unless the filter names it.
pub fn init_tracing(filter: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let mut f = filter.to_owned();
    if !f.contains("rumqttd") {
        f.push_str(",rumqttd::server::broker=off,rumqttd::router::routing=off,rumqttd::router=warn,rumqttd=warn");
    }
    let env = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(f));
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
