//! systemd integration (`Type=notify`): readiness, status, watchdog pings.
//! The hub uses the same loop ([`ready_then_watchdog`]) with its own checks.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op. The kiosk
//! sends READY once the outbox store is open and the MQTT link is up, or after
//! [`READY_GRACE`] without it: the kiosk works offline, so a missing hub must
//! not keep it from starting. The watchdog is pinged only while the outbox
//! driver runs and the store answers.

use crate::driver::Status;
use crate::store::OutboxStore;
use sd_notify::NotifyState;
use std::future::Future;
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

/// Tell systemd the program is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Wait up to [`READY_GRACE`] for `up`, send READY with `status(up_in_time)`,
/// then ping the watchdog at half its interval whenever `healthy` answers
/// `Ok` within that half. Ends when `stop` turns true.
pub async fn ready_then_watchdog<U, H, Fut>(
    up: U,
    status: impl Fn(bool) -> &'static str,
    mut healthy: H,
    mut stop: watch::Receiver<bool>,
) where
    U: Future<Output = bool>,
    H: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let in_time = tokio::select! {
        w = tokio::time::timeout(READY_GRACE, up) => matches!(w, Ok(true)),
        _ = stop.changed() => return,
    };
    let state = status(in_time);
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
        match tokio::time::timeout(every, healthy()).await {
            Ok(Ok(())) => notify(&[NotifyState::Watchdog]),
            Ok(Err(why)) => tracing::error!(%why, "unhealthy: watchdog not pinged"),
            Err(_) => tracing::error!("health check did not answer in time: watchdog not pinged"),
        }
    }
}

/// The kiosk's supervision: READY when the MQTT link is up, watchdog while
/// the outbox driver runs and its store answers.
pub async fn supervise(
    store: OutboxStore,
    status: watch::Receiver<Status>,
    stop: watch::Receiver<bool>,
) {
    let mut up = status.clone();
    ready_then_watchdog(
        async move { up.wait_for(|s| s.connected).await.is_ok() },
        |connected| {
            if connected {
                "outbox open, MQTT connected"
            } else {
                "outbox open; offline, events wait in the outbox"
            }
        },
        || {
            // A closed status channel means the outbox driver has died.
            let driver_alive = status.has_changed().is_ok();
            let store_ok = store.config().map(|_| ()).map_err(|e| e.to_string());
            async move {
                if !driver_alive {
                    return Err("outbox driver stopped".to_owned());
                }
                store_ok.map_err(|e| format!("outbox store failing: {e}"))
            }
        },
        stop,
    )
    .await;
}
