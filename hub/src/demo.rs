//! `rxedge-hub demo`: the hub with its embedded broker and one simulated kiosk,
//! enrolled through the same code flow a technician uses.

use crate::config::Config;
use crate::HubError;
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

async fn wait_healthy(url: &str) -> Result<(), HubError> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut delay = Duration::from_millis(50);
    loop {
        if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(HubError::State(format!(
                "hub did not become healthy at {url} within 60 s"
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Run the demo until `shutdown` resolves.
pub async fn run(
    dir: &Path,
    port: u16,
    mqtt_port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    let mut cfg = Config::default();
    cfg.paths.state_dir = dir.join("hub");
    cfg.http.listen = ([127, 0, 0, 1], port).into();
    cfg.http.public_url = format!("http://127.0.0.1:{port}");
    cfg.broker.listen = ([127, 0, 0, 1], mqtt_port).into();
    cfg.broker.public_url = format!("mqtt://127.0.0.1:{mqtt_port}");
    cfg.store.name = "RxEdge Demo Pharmacy".into();
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|e| {
            HubError::State(format!(
                "cannot listen on {}: {e} (is another demo running? try --port)",
                cfg.http.listen
            ))
        })?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut hub_stop = stop_rx.clone();
    let hub_cfg = cfg.clone();
    let hub = tokio::spawn(crate::run(hub_cfg, listener, async move {
        let _ = hub_stop.changed().await;
    }));
    wait_healthy(&format!("{}/healthz", cfg.http.public_url)).await?;

    // Accounts first (also for a demo directory made before sign-in existed).
    {
        let db = crate::open_db(&cfg).await?;
        if !crate::auth::has_admin(&db)
            .await
            .map_err(|e| HubError::State(e.to_string()))?
        {
            for (user, name, role) in DEMO_ACCOUNTS {
                let u = crate::auth::NewUser {
                    username: user,
                    display_name: name,
                    role,
                    password: DEMO_PASSWORD,
                };
                crate::auth::create_user(&db, &u, "demo", now_ms())
                    .await
                    .map_err(|e| HubError::State(format!("demo account {user}: {e}")))?;
            }
        }
    }
    let kiosk_dir = dir.join("kiosk");
    let kiosk_id = "demo-kiosk";
    if rxedge_kiosk::identity::load(&kiosk_dir).is_err() {
        let db = crate::open_db(&cfg).await?;
        let id =
            rxedge_shared::KioskId::new(kiosk_id).map_err(|e| HubError::State(e.to_string()))?;
        let code = crate::devices::add(&db, &id, "Demo kiosk (simulated)", true, now_ms())
            .await
            .map_err(|e| HubError::State(e.to_string()))?;
        rxedge_kiosk::enroll(&kiosk_dir, &cfg.http.public_url, kiosk_id, &code, None)
            .await
            .map_err(|e| HubError::State(e.to_string()))?;
        demo_setup(&cfg.http.public_url, kiosk_id).await?;
    }
    let mut kcfg = rxedge_kiosk::config::Config::default();
    kcfg.paths.state_dir = kiosk_dir;
    kcfg.simulator.enabled = true;
    kcfg.simulator.scan_every_secs = 8;
    kcfg.ui.listen = ([127, 0, 0, 1], port.saturating_add(10)).into();
    let kl = tokio::net::TcpListener::bind(kcfg.ui.listen)
        .await
        .map_err(|e| HubError::State(format!("kiosk ui {}: {e}", kcfg.ui.listen)))?;
    let mut k_stop = stop_rx.clone();
    let kiosk = tokio::spawn(rxedge_kiosk::run(kcfg, kl, async move {
        let _ = k_stop.changed().await;
    }));

    println!();
    println!("  RxEdge demo is running.");
    println!("  Open the hub:   {}/", cfg.http.public_url);
    println!("  Sign in as one of these demo accounts, password {DEMO_PASSWORD:?}:");
    for (user, name, role) in DEMO_ACCOUNTS {
        println!("    {user:<12} {name} ({role})");
    }
    println!(
        "  Kiosk (local):  http://127.0.0.1:{}/",
        port.saturating_add(10)
    );
    println!("  Make a fridge misbehave (normal, door_left_open, compressor_failure,");
    println!("  power_cut, probe_unplugged, freezing):");
    println!(
        "    curl -X POST -H 'content-type: application/json' -d '{{\"fridge\":\"fridge-1\",\"scenario\":\"compressor_failure\"}}' http://127.0.0.1:{}/api/sim/fridge",
        port.saturating_add(10)
    );
    println!("  Stop with Ctrl-C.");
    println!();

    tokio::select! {
        _ = shutdown => {}
        _ = stop_rx.changed() => {}
    }
    let _ = stop_tx.send(true);
    if let Ok(Err(e)) = kiosk.await {
        tracing::error!(error = %e, "demo kiosk stopped with an error");
    }
    match hub.await {
        Ok(r) => r,
        Err(e) => Err(HubError::State(e.to_string())),
    }
}

/// The demo's accounts: user name, full name, role.
const DEMO_ACCOUNTS: [(&str, &str, &str); 3] = [
    ("pharmacist", "Dr. Paula Pharma", "pharmacist"),
    ("technician", "Tom Tech", "technician"),
    ("admin", "Ada Admin", "admin"),
];

/// The demo accounts' password: printed on the console, for a demo on this machine only.
const DEMO_PASSWORD: &str = "rxedge demo only";

/// A signed-in HTTP client for the demo's own setup: the session cookie and
/// the CSRF token go on every request, as a browser's would.
struct Signed {
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Signed {
    async fn login(hub: &str, user: &str) -> Result<Self, HubError> {
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{hub}/api/login"))
            .json(&serde_json::json!({ "username": user, "password": DEMO_PASSWORD }))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| HubError::State(format!("demo sign-in as {user}: {e}")))?;
        let mut cookie = Vec::new();
        let mut csrf = String::new();
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let kv = v.to_str().unwrap_or("").split(';').next().unwrap_or("");
            if let Some(t) = kv.strip_prefix("rxedge_csrf=") {
                csrf = t.to_owned();
            }
            cookie.push(kv.to_owned());
        }
        Ok(Self {
            client,
            cookie: cookie.join("; "),
            csrf,
        })
    }

    fn post(&self, url: String) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .header(reqwest::header::COOKIE, &self.cookie)
            .header("x-csrf-token", &self.csrf)
    }
}

/// First run only: demo-speed fridge rules (seconds, not minutes) and some stock.
async fn demo_setup(hub: &str, kiosk: &str) -> Result<(), HubError> {
    use rxedge_shared::coldchain::FridgeRules;
    let fast = |id: &str| {
        let mut r = FridgeRules::standard_2_8(id);
        r.sample_secs = 5;
        r.max_gap_secs = 30;
        r.offline_after_secs = 30;
        r.door_open_max_secs = 45;
        r.bad_read_streak = 3;
        for t in &mut r.temp {
            t.delay_secs = (t.delay_secs / 30).max(15);
        }
        r
    };
    let tech = Signed::login(hub, "technician").await?;
    let c = Signed::login(hub, "pharmacist").await?;
    let err = |e: reqwest::Error| HubError::State(format!("demo setup: {e}"));
    tech.post(format!("{hub}/api/kiosks/{kiosk}/config"))
        .json(&serde_json::json!({ "fridges": [fast("fridge-1"), fast("fridge-2")] }))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(err)?;
    // The demo catalog (scripts/gen-demo-catalog.py) and stock received by GTIN,
    // with expiries relative to today so the dashboard has something to say.
    c.post(format!("{hub}/api/catalog/import"))
        .body(include_str!("../data/demo-catalog.csv"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(err)?;
    let day = |d: u64| {
        chrono::Utc::now()
            .date_naive()
            .checked_add_days(chrono::Days::new(d))
            .map(|x| x.to_string())
            .unwrap_or_default()
    };
    let stock = [
        ("fridge-1", "09520000000011", "L2391A", day(400), 20),
        ("fridge-1", "09520000000028", "LAN0142", day(45), 6),
        ("fridge-1", "09520000000318", "FLU2611", day(200), 40),
        ("fridge-2", "09520000000172", "ADA7781", day(300), 6),
        ("fridge-2", "09520000000189", "HUM5520", day(75), 2),
    ];
    let mut shelf = Vec::new();
    for (i, gtin) in ["09520000002992", "09520000003005"].into_iter().enumerate() {
        shelf.push((
            "shelf",
            gtin,
            if i == 0 { "LT2210" } else { "LM0931" },
            day(20 + 300 * i as u64),
            12,
        ));
    }
    for (loc, gtin, lot, expiry, qty) in stock.into_iter().chain(shelf) {
        c.post(format!("{hub}/api/inventory/receive"))
            .json(&serde_json::json!({ "location": loc, "gtin": gtin, "lot": lot, "expiry": expiry, "quantity": qty }))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(err)?;
    }
    Ok(())
}

use rxedge_shared::clock::system_now_ms as now_ms;
