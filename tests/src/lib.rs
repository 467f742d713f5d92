//! Harness for RxEdge's whole-system tests: real `rxedge-hub` and
//! `rxedge-kiosk` processes, real brokers (embedded rumqttd, Debian's
//! mosquitto) and real databases (SQLite, PostgreSQL), killed on purpose.
//!
//! Tests wait on conditions with deadlines, never on fixed sleeps.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::Value;
use sqlx::Row as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// Where the built binaries are: `$RXEDGE_BIN_DIR`, else next to the test executable.
pub fn bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("RXEDGE_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/test-xxxx → target/<profile>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate target dir from {}", exe.display()))?;
    Ok(dir.to_path_buf())
}

/// Path of a workspace binary in the current profile.
pub fn bin(name: &str) -> Result<PathBuf> {
    let p = bin_dir()?.join(name);
    if !p.exists() {
        bail!(
            "{} not found: build it first (cargo build --bins), or set RXEDGE_BIN_DIR",
            p.display()
        );
    }
    Ok(p)
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Poll `f` until it yields `Some`, or fail after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(anyhow!(
                "timed out after {timeout:?} waiting for {what}{}",
                last_err
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// Whether a test that needs an external service must fail (CI) rather than skip.
pub fn services_required() -> bool {
    std::env::var_os("RXEDGE_REQUIRE_SERVICES").is_some()
}

/// Print why a test is skipped, or fail when services are required.
pub fn skip_or_fail(why: &str) -> Result<()> {
    if services_required() {
        bail!("required service missing: {why}");
    }
    eprintln!("SKIPPED: {why}");
    Ok(())
}

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// A broker for the hub and kiosks to use.
#[derive(Debug, Clone)]
pub enum BrokerChoice {
    /// The hub's embedded rumqttd.
    Embedded,
    /// An external broker at this port (e.g. [`Mosquitto`]).
    External(u16),
}

/// A running `rxedge-hub`.
pub struct Hub {
    /// Its own directory (config, state, logs).
    pub dir: PathBuf,
    /// Config file.
    pub config: PathBuf,
    /// HTTP port.
    pub http_port: u16,
    /// Broker port kiosks use.
    pub mqtt_port: u16,
    /// Database URL.
    pub db_url: String,
    /// Extra environment for the process (e.g. systemd's NOTIFY_SOCKET).
    pub env: Vec<(String, String)>,
    /// Create the test accounts and sign them in at start (off for tests
    /// of the first-run wizard, which needs a hub without accounts).
    pub accounts: bool,
    /// Serves HTTPS and MQTTS with its own CA ([`Hub::start_tls`]).
    pub tls: bool,
    child: Option<Child>,
    runs: u32,
}

pub use rxedge_hub::auth::policy::Role;

/// The password of the accounts the harness creates.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// The harness's accounts: user name, full name, role. The first of each
/// role is the one [`post_as`] and [`get_as`] act as; `max` is a second
/// pharmacist, for tests of two people at one order.
pub const TEST_ACCOUNTS: [(&str, &str, Role); 4] = [
    ("pia", "Pia", Role::Pharmacist),
    ("max", "Max", Role::Pharmacist),
    ("tess", "Tess Technician", Role::Technician),
    ("ada", "Ada Admin", Role::Admin),
];

/// The user name the harness signs in with for `role`.
pub fn username_of(role: Role) -> &'static str {
    TEST_ACCOUNTS
        .iter()
        .find(|a| a.2 == role)
        .map(|a| a.0)
        .unwrap_or("pia")
}

/// The full name of the harness's account for `role` (what records show).
pub fn name_of(role: Role) -> &'static str {
    TEST_ACCOUNTS
        .iter()
        .find(|a| a.2 == role)
        .map(|a| a.1)
        .unwrap_or("")
}

/// A signed-in session: the `Cookie` header and the CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// `Cookie` header value.
    pub cookie: String,
    /// The CSRF token to send in `x-csrf-token`.
    pub csrf: String,
}

type Sessions = std::collections::HashMap<(String, String), Session>;

fn sessions() -> &'static std::sync::Mutex<Sessions> {
    static S: std::sync::OnceLock<std::sync::Mutex<Sessions>> = std::sync::OnceLock::new();
    S.get_or_init(Default::default)
}

fn clients() -> &'static std::sync::Mutex<std::collections::HashMap<String, reqwest::Client>> {
    static C: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, reqwest::Client>>,
    > = std::sync::OnceLock::new();
    C.get_or_init(Default::default)
}

/// The harness's HTTP client for `url`: for a hub with TLS, one that trusts
/// only that hub's CA (as its kiosks do); otherwise a plain client.
pub fn client_for(url: &str) -> reqwest::Client {
    let map = clients().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(&origin(url)) {
        return c.clone();
    }
    static PLAIN: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    PLAIN.get_or_init(reqwest::Client::new).clone()
}

/// `http://host:port` of a URL.
fn origin(url: &str) -> String {
    let rest = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[rest..].find('/').map(|i| rest + i).unwrap_or(url.len());
    url[..end].to_owned()
}

/// Sign in at `base` and return the session (not remembered).
pub async fn login(base: &str, username: &str, password: &str) -> Result<Session> {
    let r = client_for(base)
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await?;
    if !r.status().is_success() {
        let st = r.status();
        bail!(
            "sign-in as {username} refused: {st} {}",
            r.text().await.unwrap_or_default()
        );
    }
    let mut cookie = Vec::new();
    let mut csrf = String::new();
    for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
        let kv = v.to_str()?.split(';').next().unwrap_or("").to_owned();
        if let Some(t) = kv.strip_prefix("rxedge_csrf=") {
            csrf = t.to_owned();
        }
        cookie.push(kv);
    }
    Ok(Session {
        cookie: cookie.join("; "),
        csrf,
    })
}

/// The remembered session of `username` at the hub serving `url`, if any.
pub fn session_for(url: &str, username: &str) -> Option<Session> {
    sessions()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(origin(url), username.to_owned()))
        .cloned()
}

fn with_session(b: reqwest::RequestBuilder, url: &str, username: &str) -> reqwest::RequestBuilder {
    match session_for(url, username) {
        Some(s) => b
            .header(reqwest::header::COOKIE, s.cookie)
            .header("x-csrf-token", s.csrf),
        None => b,
    }
}

/// GET as `role` (signed in by the harness when the hub started).
pub fn get_as(role: Role, url: impl AsRef<str>) -> reqwest::RequestBuilder {
    get_user(username_of(role), url)
}

/// POST as `role`, with the CSRF token.
pub fn post_as(role: Role, url: impl AsRef<str>) -> reqwest::RequestBuilder {
    post_user(username_of(role), url)
}

/// GET as the harness account `username`.
pub fn get_user(username: &str, url: impl AsRef<str>) -> reqwest::RequestBuilder {
    let url = url.as_ref();
    with_session(client_for(url).get(url), url, username)
}

/// POST as the harness account `username`, with the CSRF token.
pub fn post_user(username: &str, url: impl AsRef<str>) -> reqwest::RequestBuilder {
    let url = url.as_ref();
    with_session(client_for(url).post(url), url, username)
}

/// GET as the pharmacist (the role most tests act in).
pub fn http_get(url: impl AsRef<str>) -> reqwest::RequestBuilder {
    get_as(Role::Pharmacist, url)
}

/// POST as the pharmacist, with the CSRF token.
pub fn http_post(url: impl AsRef<str>) -> reqwest::RequestBuilder {
    post_as(Role::Pharmacist, url)
}

impl Hub {
    /// Write a config and start the hub. `db_url` None means the suite's default
    /// backend: SQLite in the state dir, or a fresh PostgreSQL database when
    /// `RXEDGE_TEST_BACKEND=postgres` (so the same tests run on both engines).
    pub async fn start(dir: &Path, broker: BrokerChoice, db_url: Option<String>) -> Result<Self> {
        Self::start_with(dir, broker, db_url, "").await
    }

    /// [`Hub::start`] with more TOML appended to the config (whole tables, e.g. `[coldchain]`).
    pub async fn start_with(
        dir: &Path,
        broker: BrokerChoice,
        db_url: Option<String>,
        extra_toml: &str,
    ) -> Result<Self> {
        let mut h = Self::prepare(dir, broker, db_url, extra_toml).await?;
        h.spawn().await?;
        Ok(h)
    }

    /// [`Hub::start`] with `tls.mode = "auto"`: the hub makes its CA, serves
    /// HTTPS and MQTTS, and the harness trusts only that CA for it.
    pub async fn start_tls(dir: &Path, broker: BrokerChoice) -> Result<Self> {
        let mut h = Self::prepare(dir, broker, None, "[tls]\nmode = \"auto\"\n").await?;
        let text = std::fs::read_to_string(&h.config)?
            .replace("public_url = \"http://", "public_url = \"https://")
            .replace("public_url = \"mqtt://", "public_url = \"mqtts://");
        std::fs::write(&h.config, text)?;
        h.tls = true;
        h.spawn().await?;
        Ok(h)
    }

    /// The CA this hub made (`tls.mode = "auto"`), once it has started.
    pub fn ca_pem(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("state/tls/ca.pem")).ok()
    }

    /// Write the config (and pick the database) without starting the process.
    pub async fn prepare(
        dir: &Path,
        broker: BrokerChoice,
        db_url: Option<String>,
        extra_toml: &str,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db_url = match db_url {
            Some(u) => Some(u),
            None if std::env::var("RXEDGE_TEST_BACKEND").as_deref() == Ok("postgres") => {
                Some(fresh_pg_database("suite").await?.ok_or_else(|| {
                    anyhow!("RXEDGE_TEST_BACKEND=postgres needs RXEDGE_TEST_PG_URL")
                })?)
            }
            None => None,
        };
        let http_port = free_port()?;
        let (mqtt_port, broker_url) = match broker {
            BrokerChoice::Embedded => (free_port()?, String::new()),
            BrokerChoice::External(p) => (p, format!("mqtt://127.0.0.1:{p}")),
        };
        let state = dir.join("state");
        let db_url = db_url
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", state.join("hub.db").display()));
        let config = dir.join("hub.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nid = \"test-store\"\nname = \"Test Pharmacy\"\n[paths]\nstate_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http_port}\"\npublic_url = \"http://127.0.0.1:{http_port}\"\n\
                 [broker]\nurl = \"{broker_url}\"\nlisten = \"127.0.0.1:{mqtt_port}\"\npublic_url = \"mqtt://127.0.0.1:{mqtt_port}\"\nkeep_alive_secs = 5\n\
                 [database]\nurl = \"{db_url}\"\n[kiosk_defaults]\nheartbeat_secs = 1\n[log]\nfilter = \"info\"\n{extra_toml}\n",
                state.display()
            ),
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            http_port,
            mqtt_port,
            db_url,
            env: Vec::new(),
            accounts: true,
            tls: false,
            child: None,
            runs: 0,
        })
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("hub-{}.log", self.runs))
    }

    /// Start the process (again) and wait until it is healthy.
    pub async fn spawn(&mut self) -> Result<()> {
        self.runs += 1;
        let log = std::fs::File::create(self.log())?;
        let child = Command::new(bin("rxedge-hub")?)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn rxedge-hub")?;
        self.child = Some(child);
        let url = format!("{}/healthz", self.url());
        let log = self.log();
        let tls = self.tls;
        let ca_path = self.dir.join("state/tls/ca.pem");
        wait_for("hub healthy", Duration::from_secs(60), || {
            let url = url.clone();
            let ca_path = ca_path.clone();
            async move {
                let client = if tls {
                    // The CA appears when the hub first starts.
                    let Ok(ca) = std::fs::read_to_string(&ca_path) else {
                        return Ok(None);
                    };
                    let c = rxedge_kiosk::identity::pinned_client(Some(&ca))?;
                    clients()
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(origin(&url), c.clone());
                    c
                } else {
                    client_for(&url)
                };
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => Ok(Some(())),
                    _ => Ok(None),
                }
            }
        })
        .await
        .with_context(|| format!("hub log:\n{}", tail(&log)))?;
        if self.accounts {
            self.sign_in_all().await?;
        }
        Ok(())
    }

    /// Make sure the harness's accounts exist and sign each in; requests
    /// through [`http_get`], [`post_as`] and friends then carry the session.
    pub async fn sign_in_all(&self) -> Result<()> {
        let db = rxedge_hub::store::Db::connect(&self.db_url, 2).await?;
        for (user, name, role) in TEST_ACCOUNTS {
            let u = rxedge_hub::auth::NewUser {
                username: user,
                display_name: name,
                role: role.as_str(),
                password: TEST_PASSWORD,
            };
            match rxedge_hub::auth::create_user(&db, &u, "test harness", 0).await {
                Ok(()) | Err(rxedge_hub::auth::AuthError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        db.pool.close().await;
        for (user, _, _) in TEST_ACCOUNTS {
            let s = login(&self.url(), user, TEST_PASSWORD).await?;
            sessions()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((origin(&self.url()), user.to_owned()), s);
        }
        Ok(())
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Graceful stop (SIGTERM) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm(&c);
            let _ = c.wait();
        }
    }

    /// Run a hub CLI command with this hub's config.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let config = self.config.to_string_lossy();
        let mut all = vec!["--config", &config];
        all.extend_from_slice(args);
        hub_cli(&all)
    }

    /// Base URL (https:// for a [`Hub::start_tls`] hub).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.http_port)
    }

    /// Wait (up to 60 s) until the hub lists an order that `pred` accepts,
    /// and return it as `/api/orders` shows it.
    pub async fn wait_order(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        let url = format!("{}/api/orders", self.url());
        let pred = &pred;
        wait_for(what, Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                let list: Value = http_get(url).send().await?.json().await?;
                Ok(list
                    .as_array()
                    .and_then(|a| a.iter().find(|o| pred(o)).cloned()))
            }
        })
        .await
    }

    /// Import a catalog CSV through the hub's API (all rows or none).
    pub async fn import_catalog(&self, csv: &'static str) -> Result<()> {
        http_post(format!("{}/api/catalog/import", self.url()))
            .body(csv)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// A read connection to the hub's database.
    pub async fn db(&self) -> Result<sqlx::AnyPool> {
        sqlx::any::install_default_drivers();
        Ok(sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.db_url)
            .await?)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running `rxedge-kiosk --simulate`.
pub struct Kiosk {
    /// Id.
    pub id: String,
    /// Directory.
    pub dir: PathBuf,
    /// Config file.
    pub config: PathBuf,
    /// Local UI port.
    pub ui_port: u16,
    /// Extra environment for the process.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    runs: u32,
}

impl Kiosk {
    /// Enroll through the real code flow (hub CLI, then kiosk CLI) and start it.
    pub async fn enroll_and_start(
        dir: &Path,
        hub: &Hub,
        id: &str,
        extra_toml: &str,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ui_port = free_port()?;
        let config = dir.join("kiosk.toml");
        std::fs::write(
            &config,
            format!(
                "[paths]\nstate_dir = \"{}\"\n[ui]\nlisten = \"127.0.0.1:{ui_port}\"\n[hub]\nkeep_alive_secs = 5\nreconnect_max_ms = 500\n\
                 [simulator]\nenabled = true\nscan_every_secs = 0\n{}{extra_toml}\n",
                dir.join("state").display(),
                // Spine tests count events exactly: no simulated fridges unless asked for.
                if extra_toml.contains("fridges =") { "" } else { "fridges = []\n" },
            ),
        )?;
        let out = hub.cli(&["kiosk", "add", id])?;
        let code = out
            .split("--code ")
            .nth(1)
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| anyhow!("no code in {out:?}"))?;
        let mut args = vec!["enroll", "--hub"];
        let url = hub.url();
        args.extend([url.as_str(), "--id", id, "--code", &code]);
        // A TLS hub prints the fingerprint of the CA the kiosk is to pin.
        let fp = out
            .split("--ca-fingerprint ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next());
        if let Some(fp) = fp {
            args.extend(["--ca-fingerprint", fp]);
        }
        let st = Command::new(bin("rxedge-kiosk")?)
            .arg("--config")
            .arg(&config)
            .args(&args)
            .output()?;
        if !st.status.success() {
            bail!("enroll failed: {}", String::from_utf8_lossy(&st.stderr));
        }
        let mut k = Self {
            id: id.to_owned(),
            dir: dir.to_path_buf(),
            config,
            ui_port,
            env: Vec::new(),
            child: None,
            runs: 0,
        };
        k.spawn().await?;
        Ok(k)
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("kiosk-{}.log", self.runs))
    }

    /// Start (again) and wait for its local API.
    pub async fn spawn(&mut self) -> Result<()> {
        self.runs += 1;
        let log = std::fs::File::create(self.log())?;
        let child = Command::new(bin("rxedge-kiosk")?)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let url = format!("{}/api/status", self.url());
        let log = self.log();
        wait_for("kiosk api up", Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                Ok(reqwest::get(&url)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ()))
            }
        })
        .await
        .with_context(|| format!("kiosk log:\n{}", tail(&log)))
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Graceful stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm(&c);
            let _ = c.wait();
        }
    }

    /// Local API base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ui_port)
    }

    /// `/api/status`.
    pub async fn status(&self) -> Result<Value> {
        Ok(reqwest::get(format!("{}/api/status", self.url()))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Store `count` simulated scans with texts `{prefix}-{i}`; returns how many were stored.
    pub async fn burst(&self, prefix: &str, count: u32) -> Result<u64> {
        let v: Value = reqwest::Client::new()
            .post(format!("{}/api/sim/burst", self.url()))
            .json(&serde_json::json!({ "count": count, "prefix": prefix }))
            .timeout(Duration::from_secs(300))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        v["stored"]
            .as_u64()
            .ok_or_else(|| anyhow!("bad burst answer {v}"))
    }

    /// Wait until the outbox is empty.
    pub async fn wait_drained(&self, timeout: Duration) -> Result<Value> {
        wait_for("kiosk outbox drained", timeout, || async {
            let s = self.status().await?;
            let o = &s["outbox"];
            Ok((o["queued"].as_u64() == Some(0) && o["inflight"].as_u64() == Some(0)).then_some(s))
        })
        .await
    }

    /// The kiosk's signing key (for crafting replays in tests).
    pub fn key_text(&self) -> Result<String> {
        Ok(std::fs::read_to_string(
            self.dir.join("state").join("kiosk.key"),
        )?)
    }

    /// Last log tail.
    pub fn log_tail(&self) -> String {
        tail(&self.log())
    }
}

impl Drop for Kiosk {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Debian's mosquitto on a free port, persistence off, loopback only.
pub struct Mosquitto {
    /// Port.
    pub port: u16,
    child: Child,
}

impl Mosquitto {
    /// Start it, or `None` if the binary is not installed.
    pub async fn start(dir: &Path) -> Result<Option<Self>> {
        Self::start_with(dir, "allow_anonymous true\n").await
    }

    /// [`Mosquitto::start`] with these lines (authentication, ACL) in its config.
    pub async fn start_with(dir: &Path, conf_lines: &str) -> Result<Option<Self>> {
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(exe) = exe else { return Ok(None) };
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\npersistence false\nmax_inflight_messages 1000\nmax_queued_messages 100000\n{conf_lines}"))?;
        let log = std::fs::File::create(dir.join("mosquitto.log"))?;
        let child = Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        wait_for(
            "mosquitto listening",
            Duration::from_secs(10),
            || async move {
                Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ()))
            },
        )
        .await?;
        Ok(Some(Self { port, child }))
    }

    /// Make it read its password and ACL files again (SIGHUP).
    pub fn reload(&self) -> Result<()> {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()?
            .success();
        if !ok {
            bail!("mosquitto did not take the reload signal");
        }
        Ok(())
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh PostgreSQL database on the server named by `$RXEDGE_TEST_PG_URL`
/// (a URL to an admin database; `scripts/test` starts the server). `None` if unset.
pub async fn fresh_pg_database(name_hint: &str) -> Result<Option<String>> {
    let Ok(admin) = std::env::var("RXEDGE_TEST_PG_URL") else {
        return Ok(None);
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .context("connect to RXEDGE_TEST_PG_URL")?;
    let name = format!("rxedge_{}_{}", name_hint, uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await?;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    Ok(Some(format!("{base}/{name}")))
}

/// What the hub committed for one kiosk, in commit order: (seq, qr text).
pub async fn committed(pool: &sqlx::AnyPool, kiosk: &str) -> Result<Vec<(i64, String)>> {
    let rows =
        sqlx::query("SELECT seq, envelope FROM events WHERE kiosk_id = $1 ORDER BY commit_id")
            .bind(kiosk)
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|r| {
            let env: String = r.try_get("envelope")?;
            let v: Value = serde_json::from_str(&env)?;
            Ok((
                r.try_get("seq")?,
                v["body"]["text"].as_str().unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

/// Exactly-once and order figures for texts `{prefix}-0 … {prefix}-{n-1}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Expected.
    pub sent: u64,
    /// Distinct expected texts committed.
    pub stored: u64,
    /// Expected texts missing.
    pub lost: u64,
    /// Extra rows for a text already committed.
    pub duplicated: u64,
    /// Whether seq increased with every commit.
    pub in_order: bool,
}

/// Compare what the hub committed against `n` expected texts.
pub fn delivery(rows: &[(i64, String)], prefix: &str, n: u64) -> Delivery {
    let mut seen = std::collections::HashSet::new();
    let mut dup = 0;
    let p = format!("{prefix}-");
    for (_, t) in rows.iter().filter(|(_, t)| t.starts_with(&p)) {
        if !seen.insert(t.clone()) {
            dup += 1;
        }
    }
    let stored = (0..n)
        .filter(|i| seen.contains(&format!("{prefix}-{i}")))
        .count() as u64;
    let in_order = rows.windows(2).all(|w| w[0].0 < w[1].0);
    Delivery {
        sent: n,
        stored,
        lost: n - stored,
        duplicated: dup,
        in_order,
    }
}

/// Wait until the hub has committed all `n` texts of `prefix` for `kiosk`.
pub async fn wait_committed(
    hub: &Hub,
    kiosk: &str,
    prefix: &str,
    n: u64,
    timeout: Duration,
) -> Result<Delivery> {
    let pool = hub.db().await?;
    let d = wait_for(
        &format!("{n} events with prefix {prefix} committed"),
        timeout,
        || {
            let pool = pool.clone();
            async move {
                let rows = committed(&pool, kiosk).await?;
                let d = delivery(&rows, prefix, n);
                Ok((d.stored == n).then_some(d))
            }
        },
    )
    .await;
    match d {
        Ok(d) => Ok(d),
        Err(e) => {
            let rows = committed(&pool, kiosk).await.unwrap_or_default();
            Err(e.context(format!("so far: {:?}", delivery(&rows, prefix, n))))
        }
    }
}

/// A bench driver's `--name VALUE` option, or `default`.
pub fn cli_arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// POST `body` as JSON; the status and the JSON answer (`null` if none),
/// so a test can assert on refusals as well as successes.
pub async fn post_json(url: String, body: Value) -> Result<(reqwest::StatusCode, Value)> {
    let r = http_post(&url).json(&body).send().await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// The JSON of a [`post_json`] answer that must have succeeded.
pub fn ok(r: (reqwest::StatusCode, Value)) -> Result<Value> {
    if r.0.is_success() {
        Ok(r.1)
    } else {
        Err(anyhow!("{}: {}", r.0, r.1))
    }
}

/// GET a page's text; a non-2xx status is an error.
pub async fn get_text(url: String) -> Result<String> {
    Ok(http_get(&url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// GET a JSON answer; a non-2xx status is an error.
pub async fn get_json(url: String) -> Result<Value> {
    Ok(http_get(&url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// A time zone (and its fixed UTC offset, hours) whose calendar date differs
/// from UTC's at `now` and stays different for at least an hour: Kiritimati
/// (UTC+14) is a day ahead from 10:00 UTC, Pago Pago (UTC-11) a day behind
/// until 11:00 UTC. Neither changes its clocks. Tests run a hub in it (`TZ`)
/// to show it counts the store's days, not UTC's.
pub fn store_zone(now: chrono::DateTime<chrono::Utc>) -> (&'static str, i64) {
    use chrono::Timelike as _;
    if now.hour() >= 10 {
        ("Pacific/Kiritimati", 14)
    } else {
        ("Pacific/Pago_Pago", -11)
    }
}

/// Temp directory that survives on failure when `RXEDGE_KEEP_TMP` is set.
pub fn tempdir(name: &str) -> Result<tempfile::TempDir> {
    let prefix = format!("rxedge-{name}-");
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix);
    if std::env::var_os("RXEDGE_KEEP_TMP").is_some() {
        b.disable_cleanup(true);
    }
    Ok(b.tempdir()?)
}

/// Fault scenarios shared by the test suite and `scripts/faults/spine`.
pub mod faults {
    use super::*;
    use rand::{Rng as _, SeedableRng as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    async fn count(pool: &sqlx::AnyPool, kiosk: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM events WHERE kiosk_id = $1")
                .bind(kiosk)
                .fetch_one(pool)
                .await?
                .try_get("n")?,
        )
    }

    /// Stream `n` events from the kiosk while killing the hub with SIGKILL
    /// `kills` times, each at a random point of progress, restarting it at once.
    pub async fn kill_hub_during_stream(
        hub: &mut Hub,
        kiosk: &Kiosk,
        prefix: &str,
        n: u32,
        kills: u32,
        seed: u64,
    ) -> Result<Delivery> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let base = count(&hub.db().await?, &kiosk.id).await?;
        let mut targets: Vec<i64> = (0..kills)
            .map(|_| base + rng.gen_range(1..i64::from(n)))
            .collect();
        targets.sort_unstable();
        let url = kiosk.url();
        let prefix_owned = prefix.to_owned();
        let burst = tokio::spawn(async move {
            let v: serde_json::Value = reqwest::Client::new()
                .post(format!("{url}/api/sim/burst"))
                .json(&serde_json::json!({ "count": n, "prefix": prefix_owned }))
                .timeout(Duration::from_secs(600))
                .send()
                .await?
                .json()
                .await?;
            Ok::<_, anyhow::Error>(v["stored"].as_u64().unwrap_or(0))
        });
        for target in targets {
            let pool = hub.db().await?;
            let id = kiosk.id.clone();
            wait_for(
                &format!("hub to commit {target} events"),
                Duration::from_secs(240),
                || {
                    let (pool, id) = (pool.clone(), id.clone());
                    async move { Ok((count(&pool, &id).await? >= target).then_some(())) }
                },
            )
            .await?;
            pool.close().await;
            hub.kill9();
            hub.spawn().await?;
        }
        let sent = burst.await??;
        if sent != u64::from(n) {
            bail!("the kiosk stored only {sent} of {n}");
        }
        let d = wait_committed(
            hub,
            &kiosk.id,
            prefix,
            u64::from(n),
            Duration::from_secs(240),
        )
        .await?;
        kiosk.wait_drained(Duration::from_secs(120)).await?;
        Ok(d)
    }

    /// Post `n` events one by one (64 at a time) and SIGKILL the kiosk when
    /// half are confirmed; restart it. Returns the texts confirmed stored.
    pub async fn kill_kiosk_during_burst(
        kiosk: &mut Kiosk,
        prefix: &str,
        n: u32,
    ) -> Result<Vec<String>> {
        let confirmed = Arc::new(Mutex::new(Vec::new()));
        let ok = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::new();
        let url = format!("{}/api/events", kiosk.url());
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let (client, url, sem, confirmed, ok) = (
                client.clone(),
                url.clone(),
                sem.clone(),
                confirmed.clone(),
                ok.clone(),
            );
            let text = format!("{prefix}-{i}");
            tasks.spawn(async move {
                let Ok(_permit) = sem.acquire_owned().await else { return };
                let r = client
                    .post(&url)
                    .json(&serde_json::json!({ "kind": "qr_scanned", "body": { "text": text, "payload_kind": "unknown" } }))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                if matches!(r, Ok(ref r) if r.status().as_u16() == 201) {
                    if let Ok(mut c) = confirmed.lock() {
                        c.push(text);
                    }
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let half = u64::from(n / 2);
        wait_for("half the burst confirmed", Duration::from_secs(120), || {
            let ok = ok.clone();
            async move { Ok((ok.load(Ordering::SeqCst) >= half).then_some(())) }
        })
        .await?;
        kiosk.kill9();
        while tasks.join_next().await.is_some() {}
        kiosk.spawn().await?;
        let out = confirmed
            .lock()
            .map(|c| c.clone())
            .map_err(|_| anyhow!("poisoned"))?;
        Ok(out)
    }
}

/// A Node.js script under `tests/browser/` that drives Debian's Chromium through
/// playwright-core. It prints `need: X` when it wants the test to act and waits
/// for `done: X` on stdin; it exits 0 only when every check passed.
pub struct BrowserScript {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Everything the script printed, for failure messages.
    pub transcript: Vec<String>,
}

impl BrowserScript {
    /// Start `tests/browser/<script>` with `args`, or `None` when Chromium or the
    /// npm packages are missing (the caller skips or fails, see [`skip_or_fail`]).
    pub fn start(script: &str, args: &[&str]) -> Result<Option<Self>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !Path::new(&chromium).exists() || !dir.join("node_modules/playwright-core").exists() {
            return Ok(None);
        }
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .env("CHROMIUM", &chromium)
            .env("RXEDGE_TEST_PASSWORD", TEST_PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting node")?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        use tokio::io::AsyncBufReadExt as _;
        Ok(Some(Self {
            child,
            stdin,
            lines: tokio::io::BufReader::new(stdout).lines(),
            transcript: Vec::new(),
        }))
    }

    /// The next request (`need: X` → `X`), or `None` once the script has finished.
    pub async fn next_need(&mut self, timeout: Duration) -> Result<Option<String>> {
        loop {
            let line = tokio::time::timeout(timeout, self.lines.next_line())
                .await
                .map_err(|_| {
                    anyhow!(
                        "browser script silent for {timeout:?}: {:?}",
                        self.transcript
                    )
                })??;
            let Some(line) = line else { return Ok(None) };
            self.transcript.push(line.clone());
            if let Some(n) = line.strip_prefix("need: ") {
                return Ok(Some(n.to_owned()));
            }
        }
    }

    /// Tell the script its request `what` has been carried out.
    pub async fn done(&mut self, what: &str) -> Result<()> {
        use tokio::io::AsyncWriteExt as _;
        self.stdin
            .write_all(format!("done: {what}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Wait for the script to exit; an error unless it exited 0 after printing `ok`.
    pub async fn finish(mut self, timeout: Duration) -> Result<Vec<String>> {
        while self.next_need(timeout).await?.is_some() {}
        let st = tokio::time::timeout(timeout, self.child.wait())
            .await
            .map_err(|_| anyhow!("browser script did not exit"))??;
        if !st.success() || self.transcript.last().map(String::as_str) != Some("ok") {
            bail!("browser script failed ({st}): {:?}", self.transcript);
        }
        Ok(self.transcript)
    }
}

/// The shared fixtures folder (`$RXEDGE_FIXTURES`, else `../shared/fixtures` next
/// to the checkout), or `None` when it is absent, as in a user's own clone.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RXEDGE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    dir.is_dir().then_some(dir)
}

/// One worked example of the CHMED23A specification
/// (`chmed/spec/chmed23a_examples.md`): its JSON document, encoded as a
/// single code would carry it, and what its prose says about the patient.
#[derive(Debug, Clone)]
pub struct Chmed23aExample {
    /// "Example 1".
    pub title: String,
    /// `CHMED23A.` + base64(gzip(JSON)).
    pub code: String,
    /// The prose's first name, last name, date of birth (`YYYY-MM-DD`) and
    /// insurance card number (empty when the prose gives none).
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Date of birth.
    pub birth_date: String,
    /// Insurance card number.
    pub card: String,
    /// How many medicaments the JSON lists.
    pub medicaments: usize,
}

/// The CHMED23A specification's examples, from the fixtures (`None` when absent).
pub fn chmed23a_examples() -> Result<Option<Vec<Chmed23aExample>>> {
    use base64::Engine as _;
    use std::io::Write as _;
    let Some(dir) = fixtures_dir() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(dir.join("chmed/spec/chmed23a_examples.md"))?;
    let mut out = Vec::new();
    for section in text.split("\n### ").skip(1) {
        let title = section.lines().next().unwrap_or("").trim().to_owned();
        let Some((prose, rest)) = section.split_once("```json") else {
            continue;
        };
        let json = rest
            .split_once('\n')
            .and_then(|(_, body)| body.split_once("```"))
            .map(|(body, _)| body)
            .ok_or_else(|| anyhow!("{title}: unterminated JSON block"))?;
        let doc: serde_json::Value =
            serde_json::from_str(json).map_err(|e| anyhow!("{title}: {e}"))?;
        let said = |label: &str| {
            prose
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("- {label}: ")))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let dob = said("Date of birth");
        let birth_date = match dob.split('.').collect::<Vec<_>>()[..] {
            [d, m, y] => format!("{y}-{m}-{d}"),
            _ => return Err(anyhow!("{title}: date of birth {dob:?}")),
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(doc.to_string().as_bytes())?;
        out.push(Chmed23aExample {
            code: format!(
                "CHMED23A.{}",
                base64::engine::general_purpose::STANDARD.encode(gz.finish()?)
            ),
            first_name: said("First name"),
            last_name: said("Last name"),
            birth_date,
            card: said("Insurance card number"),
            medicaments: doc["meds"].as_array().map_or(0, Vec::len),
            title,
        });
    }
    Ok(Some(out))
}

/// Run `rxedge-hub` with `args` and no config file; stdout on success.
pub fn hub_cli(args: &[&str]) -> Result<String> {
    let out = Command::new(bin("rxedge-hub")?)
        .args(args)
        .env_remove("RXEDGE_HUB_CONFIG")
        .output()?;
    if !out.status.success() {
        bail!(
            "rxedge-hub {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A minimal SMTP receiver on loopback that keeps every message it is given
/// (enough of RFC 5321 for a real client: EHLO, MAIL, RCPT, DATA, QUIT).
pub struct SmtpSink {
    /// Port it listens on.
    pub port: u16,
    /// Messages received (headers and body).
    pub messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SmtpSink {
    /// Start it.
    pub async fn start() -> Result<Self> {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        let messages: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = tokio::io::BufReader::new(r).lines();
                    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(d) = data.as_mut() {
                            if line == "." {
                                if let Ok(mut m) = store.lock() {
                                    m.push(std::mem::take(d));
                                }
                                data = None;
                                let _ = w.write_all(b"250 queued\r\n").await;
                            } else {
                                d.push_str(&line);
                                d.push('\n');
                            }
                            continue;
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 sink\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = w.write_all(reply).await;
                    }
                });
            }
        });
        Ok(Self { port, messages })
    }

    /// Messages so far.
    pub fn received(&self) -> Vec<String> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// A patient at the kiosk chooses "scan paper prescription" and holds the
/// printed page `path` under the camera for 4 s (a camera photo of it,
/// not a perfect render); whatever was held up before is put down first.
pub async fn photograph_page(kiosk: &Kiosk, path: &Path) -> Result<()> {
    sim_show(kiosk, serde_json::json!({ "clear": true })).await?;
    client_for(&kiosk.url())
        .post(format!("{}/api/paper/start", kiosk.url()))
        .send()
        .await?
        .error_for_status()?;
    sim_show(
        kiosk,
        serde_json::json!({ "path": path, "hold_ms": 4000, "as_photo": true }),
    )
    .await
}

/// Shows something to a simulated kiosk's camera (`/api/sim/show`): a code's
/// `text`, or an image `path`, held for `hold_ms`.
pub async fn sim_show(kiosk: &Kiosk, body: Value) -> Result<()> {
    reqwest::Client::new()
        .post(format!("{}/api/sim/show", kiosk.url()))
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// An event as a kiosk puts it on the wire (for tests that play a hostile
/// client); typed, so the signed body's bytes pass through untouched.
pub fn event_frame(msg: &rxedge_shared::sign::Signed, after: u64) -> Vec<u8> {
    serde_json::to_vec(&rxedge_shared::protocol::Frame {
        kind: rxedge_shared::protocol::FrameKind::Event,
        after,
        msg: msg.clone(),
    })
    .unwrap_or_default()
}

/// A QR-scan event envelope of the test store, dated `created_ms` 1.
pub fn test_envelope(
    kiosk: &str,
    id: uuid::Uuid,
    seq: u64,
    text: &str,
) -> Result<rxedge_shared::protocol::Envelope> {
    Ok(rxedge_shared::protocol::Envelope {
        v: rxedge_shared::protocol::PROTOCOL_VERSION,
        id,
        store: rxedge_shared::StoreId::new("test-store")?,
        kiosk: rxedge_shared::KioskId::new(kiosk)?,
        seq,
        created_ms: 1,
        historical: false,
        body: rxedge_shared::protocol::Body::QrScanned(rxedge_shared::protocol::QrScanned {
            text: text.into(),
            payload_kind: "unknown".into(),
        }),
    })
}

/// One try at an MQTT login; the client (its event loop polled in the
/// background) once the broker says yes, `None` when it says no.
pub async fn mqtt_connect(
    port: u16,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<Option<rumqttc::AsyncClient>> {
    let mut o = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    let (client, mut el) = rumqttc::AsyncClient::new(o, 100);
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => {
                    return a.code == rumqttc::ConnectReturnCode::Success
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    if !answer {
        return Ok(None);
    }
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    Ok(Some(client))
}

/// An MQTT client logged in as a kiosk enrolled just for it: the
/// "compromised colleague" a hostile test plays (the embedded broker lets
/// only enrolled kiosks in, and only under their own client id).
pub async fn mqtt_as_new_kiosk(hub: &Hub, id: &str) -> Result<rumqttc::AsyncClient> {
    use rand::RngCore as _;
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    let key = rxedge_shared::sign::SigningKey::from_bytes(&seed);
    let public = rxedge_shared::sign::encode_public(&key.verifying_key());
    hub.cli(&["kiosk", "add", id, "--public-key", &public])?;
    let password = rxedge_shared::sign::mqtt_password(&key, "test-store", id);
    let client_id = rxedge_shared::topics::kiosk_client_id("test-store", id);
    // The broker's gate picks up kiosks enrolled from the command line within 5 s.
    wait_for(
        "the broker to let the new kiosk in",
        Duration::from_secs(30),
        || {
            let (client_id, password) = (client_id.clone(), password.clone());
            async move { mqtt_connect(hub.mqtt_port, &client_id, Some((id, &password))).await }
        },
    )
    .await
}

/// Upload `image` to the hub's blob store as kiosk `kiosk` would (signed
/// with its `key`); the image's sha256 and the hub's answer.
pub async fn put_blob(
    hub: &Hub,
    kiosk: &str,
    key: &rxedge_shared::sign::SigningKey,
    image: Vec<u8>,
) -> Result<(String, reqwest::StatusCode)> {
    use sha2::Digest as _;
    let sha = format!("{:x}", sha2::Sha256::digest(&image));
    let sig =
        rxedge_shared::sign::sign_detached(key, rxedge_shared::sign::Context::Blob, sha.as_bytes());
    let r = reqwest::Client::new()
        .put(format!("{}/api/blobs/{sha}", hub.url()))
        .header("x-rxedge-kiosk", kiosk)
        .header("x-rxedge-signature", sig)
        .body(image)
        .send()
        .await?;
    Ok((sha, r.status()))
}
