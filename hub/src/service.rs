//! systemd integration (`Type=notify`): readiness, status, watchdog pings.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op. READY is
//! sent once the store is open and the MQTT client is connected, or after
//! [`READY_GRACE`] without a broker, so the web screens, which say what is
//! wrong, stay reachable while an external broker is down. The watchdog is
//! pinged only while the store answers, so a wedged database gets the hub
//! restarted.

use crate::metrics::Metrics;
use crate::store::Db;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long READY waits for the broker.
pub const READY_GRACE: Duration = Duration::from_secs(20);

fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Tell systemd the hub is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Send READY when the hub can serve, then ping the watchdog at half its
/// interval for as long as the store answers. Ends when `stop` turns true.
pub async fn supervise(db: Db, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let connected = async {
        while metrics.mqtt_connected.get() == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let waited = tokio::select! {
        w = tokio::time::timeout(READY_GRACE, connected) => w,
        _ = stop.changed() => return,
    };
    let status = if waited.is_ok() {
        "store open, MQTT connected".to_owned()
    } else {
        "store open; waiting for the MQTT broker".to_owned()
    };
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    tracing::info!(%status, "ready");

    let Some(interval) = rxedge_kiosk::service::watchdog_interval() else {
        return;
    };
    let every = interval / 2;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
        let alive = tokio::time::timeout(every, sqlx::query("SELECT 1").execute(&db.pool)).await;
        match alive {
            Ok(Ok(_)) => notify(&[NotifyState::Watchdog]),
            Ok(Err(e)) => tracing::error!(error = %e, "store not answering: watchdog not pinged"),
            Err(_) => tracing::error!("store did not answer in time: watchdog not pinged"),
        }
    }
}
