//! systemd integration (`Type=notify`) for the hub, on the kiosk's loop
//! ([`rxedge_kiosk::service::ready_then_watchdog`]).
//!
//! READY is sent once the store is open and the MQTT client is connected, or
//! after the grace period without a broker, so the web screens, which say what
//! is wrong, stay reachable while an external broker is down. The watchdog is
//! pinged only while the store answers, so a wedged database gets the hub
//! restarted.

use crate::metrics::Metrics;
use crate::store::Db;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use rxedge_kiosk::service::stopping;

/// Send READY when the hub can serve, then ping the watchdog for as long as
/// the store answers. Ends when `stop` turns true.
pub async fn supervise(db: Db, metrics: Arc<Metrics>, stop: watch::Receiver<bool>) {
    rxedge_kiosk::service::ready_then_watchdog(
        async move {
            while metrics.mqtt_connected.get() == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            true
        },
        |connected| {
            if connected {
                "store open, MQTT connected"
            } else {
                "store open; waiting for the MQTT broker"
            }
        },
        || {
            let pool = db.pool.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("store not answering: {e}"))
            }
        },
        stop,
    )
    .await;
}
