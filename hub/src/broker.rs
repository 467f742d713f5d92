//! The embedded MQTT broker (rumqttd), the default.
//!
//! `Broker::start()` blocks and has no shutdown, so it runs on its own OS
//! thread for the life of the process. rumqttd keeps nothing on disk: the hub
//! republishes every retained document after it connects (see `ingest`).
//!
//! Every connection must log in ([`Gate`]): a kiosk with its id and the
//! password its key makes ([`rxedge_shared::sign::mqtt_password`]), under its
//! own client id; the hub with a password made fresh at each start. Revoked
//! and unknown kiosks are refused. rumqttd has no per-topic ACL, so a kiosk
//! could still publish under another kiosk's topic; the hub refuses such
//! events because the signature is checked against the topic's kiosk.

use rxedge_shared::sign::VerifyingKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// Who may connect to the embedded broker.
pub struct Gate {
    store: String,
    hub_user: String,
    hub_pass: String,
    kiosks: RwLock<HashMap<String, VerifyingKey>>,
}

impl Gate {
    /// A gate for `store` with a fresh random hub password.
    pub fn new(store: &str) -> Self {
        Self {
            store: store.to_owned(),
            hub_user: format!("rxedge-hub-{store}"),
            hub_pass: crate::auth::session::new_token(),
            kiosks: RwLock::new(HashMap::new()),
        }
    }

    /// The hub's own login.
    pub fn hub_login(&self) -> (String, String) {
        (self.hub_user.clone(), self.hub_pass.clone())
    }

    /// May this connection in? Kiosks only under their own client id.
    pub fn allows(&self, client_id: &str, user: &str, pass: &str) -> bool {
        if user == self.hub_user {
            return crate::auth::session::same(pass, &self.hub_pass);
        }
        if client_id != rxedge_shared::topics::kiosk_client_id(&self.store, user) {
            return false;
        }
        let kiosks = self.kiosks.read().unwrap_or_else(|e| e.into_inner());
        kiosks
            .get(user)
            .is_some_and(|k| rxedge_shared::sign::check_mqtt_password(k, &self.store, user, pass))
    }

    /// Reload the enrolled, unrevoked kiosks' keys from the store.
    pub async fn reload(
        &self,
        db: &crate::store::Db,
    ) -> Result<usize, crate::devices::DeviceError> {
        let fresh: HashMap<String, VerifyingKey> = crate::devices::list(db)
            .await?
            .into_iter()
            .filter(|k| !k.revoked)
            .filter_map(|k| k.verifying_key().map(|v| (k.id, v)))
            .collect();
        let n = fresh.len();
        *self.kiosks.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(n)
    }
}

/// Keep the gate in step with the store (kiosks enrolled from the command
/// line, or by another process) until shutdown.
pub async fn gate_refresher(
    gate: Arc<Gate>,
    db: crate::store::Db,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = gate.reload(&db).await {
            tracing::error!(error = %e, "broker gate reload failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Close whatever connection uses `client_id` (a revoked kiosk's): the
/// broker drops an existing session when a new one takes its client id, and
/// this one then leaves at once. The kiosk's next login is refused.
pub async fn kick(host: &str, port: u16, client_id: &str, login: Option<(String, String)>) -> bool {
    let mut o = rumqttc::MqttOptions::new(client_id, host, port);
    o.set_clean_session(true);
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    let (client, mut el) = rumqttc::AsyncClient::new(o, 4);
    let connected = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = client.disconnect().await;
    // Let the DISCONNECT go out before the event loop is dropped.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), el.poll()).await;
    connected
}

/// Errors starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address is taken or not allowed.
    #[error("embedded broker cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The generated configuration was refused (a bug).
    #[error("embedded broker config: {0}")]
    Config(String),
    /// The thread could not be spawned.
    #[error("embedded broker thread: {0}")]
    Thread(std::io::Error),
}

fn config(listen: SocketAddr, max_payload: usize) -> Result<rumqttd::Config, BrokerError> {
    let text = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "{listen}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = {max_payload}
    max_inflight_count = 500
    dynamic_filters = true
"#
    );
    toml::from_str(&text).map_err(|e| BrokerError::Config(e.to_string()))
}

/// A free port on loopback for the embedded broker when TLS ends in front of
/// it. rumqttd binds by address, so the port is found, released and handed
/// over; [`start`] checks it again.
pub fn loopback_port() -> Result<SocketAddr, BrokerError> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let l = std::net::TcpListener::bind(any)
        .map_err(|source| BrokerError::Bind { addr: any, source })?;
    l.local_addr()
        .map_err(|source| BrokerError::Bind { addr: any, source })
}

/// Start the embedded broker on a background thread. Returns once the port is
/// known to be free; the broker accepts connections shortly after.
pub fn start(listen: SocketAddr, max_payload: usize, gate: Arc<Gate>) -> Result<(), BrokerError> {
    // rumqttd reports a bind failure only in its own thread's log; check first.
    drop(
        std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind {
            addr: listen,
            source,
        })?,
    );
    let mut cfg = config(listen, max_payload + 1024)?;
    let check: rumqttd::AuthHandler =
        Arc::new(move |client, user, pass| gate.allows(&client, &user, &pass));
    for server in cfg.v4.iter_mut().flat_map(|m| m.values_mut()) {
        server.connections.external_auth = Some(check.clone());
    }
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(cfg);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use rxedge_shared::sign::{mqtt_password, SigningKey};

    #[test]
    fn the_gate_lets_in_the_hub_and_enrolled_kiosks_under_their_own_client_id() {
        let gate = Gate::new("s1");
        let key = SigningKey::from_bytes(&[3; 32]);
        let pw = mqtt_password(&key, "s1", "k1");
        let cid = rxedge_shared::topics::kiosk_client_id("s1", "k1");
        assert!(!gate.allows(&cid, "k1", &pw), "not enrolled yet");
        gate.kiosks
            .write()
            .unwrap()
            .insert("k1".into(), key.verifying_key());
        assert!(gate.allows(&cid, "k1", &pw));
        assert!(!gate.allows("someone-else", "k1", &pw), "another client id");
        assert!(!gate.allows(&cid, "k1", "guess"), "wrong password");
        assert!(
            !gate.allows(&cid, "k1", &mqtt_password(&key, "s2", "k1")),
            "another store's password"
        );
        let (u, p) = gate.hub_login();
        assert!(gate.allows("any-client", &u, &p));
        assert!(!gate.allows("any-client", &u, "nope"));
        assert!(!gate.allows("x", "", ""), "anonymous");
    }

    #[test]
    fn generated_config_parses() {
        assert!(super::config(
            "127.0.0.1:1883".parse().unwrap_or_else(|_| unreachable!()),
            1000
        )
        .is_ok());
    }
}
