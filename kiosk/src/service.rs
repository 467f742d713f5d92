//! systemd integration (`Type=notify`): readiness, status, watchdog pings.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op. READY is
//! sent once the outbox store is open and the MQTT link is up, or after
//! [`READY_GRACE`] without it: the kiosk works offline, so a missing hub must
//! not keep it from starting. The watchdog is pinged only while the outbox
//! driver runs and the store answers.

use crate::driver::Status;
use crate::store::OutboxStore;
use sd_notify::NotifyState;
use std::time::Duration;
use tokio::sync::watch;

/// How long READY waits for the broker.
pub const READY_GRACE: Duration = Duration::from_secs(20);

fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The watchdog interval systemd asked for, as libsystemd's
/// `sd_watchdog_enabled` reads it: `WATCHDOG_USEC`, unless `WATCHDOG_PID`
/// names another process. (The sd-notify crate also insists on
/// `WATCHDOG_PID` being present, which systemd does not promise.)
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Tell systemd the kiosk is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Send READY, then ping the watchdog at half its interval while the kiosk is
/// healthy. Ends when `stop` turns true.
pub async fn supervise(
    store: OutboxStore,
    mut status: watch::Receiver<Status>,
    mut stop: watch::Receiver<bool>,
) {
    let waited = tokio::select! {
        w = tokio::time::timeout(READY_GRACE, status.wait_for(|s| s.connected)) => matches!(w, Ok(Ok(_))),
        _ = stop.changed() => return,
    };
    let state = if waited {
        "outbox open, MQTT connected"
    } else {
        "outbox open; offline, events wait in the outbox"
    };
    notify(&[NotifyState::Ready, NotifyState::Status(state)]);
    tracing::info!(status = state, "ready");

    let Some(interval) = watchdog_interval() else {
        return;
    };
    let every = interval / 2;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
        // A closed status channel means the outbox driver has died.
        let driver_alive = status.has_changed().is_ok();
        match (driver_alive, store.config()) {
            (true, Ok(_)) => notify(&[NotifyState::Watchdog]),
            (false, _) => tracing::error!("outbox driver stopped: watchdog not pinged"),
            (_, Err(e)) => tracing::error!(error = %e, "outbox store failing: watchdog not pinged"),
        }
    }
}
