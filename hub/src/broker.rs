//! The embedded MQTT broker (rumqttd), the default.
//!
//! `Broker::start()` blocks and has no shutdown, so it runs on its own OS
//! thread for the life of the process. rumqttd keeps nothing on disk: the hub
//! republishes every retained document after it connects (see `ingest`).

use std::net::SocketAddr;

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

/// Start the embedded broker on a background thread. Returns once the port is
/// known to be free; the broker accepts connections shortly after.
pub fn start(listen: SocketAddr, max_payload: usize) -> Result<(), BrokerError> {
    // rumqttd reports a bind failure only in its own thread's log; check first.
    drop(
        std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind {
            addr: listen,
            source,
        })?,
    );
    let cfg = config(listen, max_payload + 1024)?;
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
    #[test]
    fn generated_config_parses() {
        assert!(super::config(
            "127.0.0.1:1883".parse().unwrap_or_else(|_| unreachable!()),
            1000
        )
        .is_ok());
    }
}
