//! Prometheus text metrics, kept as plain atomics.

use crate::ingest::DeadReason;
use std::fmt::Write as _;

pub use rxedge_shared::metrics::{Counter, Gauge, Histogram};

/// Every hub metric.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events committed.
    pub events_committed: Counter,
    /// Resent events already committed (acked again).
    pub duplicates: Counter,
    /// Events held back by the ordering gate.
    pub held: Counter,
    /// Event ids acked.
    pub acks_sent: Counter,
    /// Failed commits.
    pub commit_failures: Counter,
    /// Dead letters by reason, indexed like [`DeadReason::ALL`].
    pub dead: [Counter; DeadReason::ALL.len()],
    /// 1 while the hub's client is connected to the broker.
    pub mqtt_connected: Gauge,
    /// Time to classify and commit a batch.
    pub commit_seconds: Histogram,
    /// HTTP request latency.
    pub http_seconds: Histogram,
    /// Time to read one page (OCR job).
    pub ocr_seconds: Histogram,
}

impl Metrics {
    /// Count a dead letter.
    pub fn dead_letter(&self, r: DeadReason) {
        if let Some(i) = DeadReason::ALL.iter().position(|x| *x == r) {
            self.dead[i].inc();
        }
    }

    /// Prometheus text exposition. `kiosks` is (id, online, outbox depth, oldest age s).
    pub fn render(&self, kiosks: &[(String, bool, u64, f64)]) -> String {
        let mut o = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "rxedge_hub_events_committed_total",
            "Kiosk events committed to the store.",
            self.events_committed.get(),
        );
        counter(
            "rxedge_hub_events_duplicate_total",
            "Resent events that were already committed.",
            self.duplicates.get(),
        );
        counter(
            "rxedge_hub_events_held_total",
            "Events held back until their predecessor is committed.",
            self.held.get(),
        );
        counter(
            "rxedge_hub_acks_sent_total",
            "Event ids acked to kiosks after commit.",
            self.acks_sent.get(),
        );
        counter(
            "rxedge_hub_commit_failures_total",
            "Ingest transactions that failed.",
            self.commit_failures.get(),
        );
        let _ = writeln!(o, "# HELP rxedge_hub_dead_letters_total Messages stored in the dead-letter table.\n# TYPE rxedge_hub_dead_letters_total counter");
        for (i, r) in DeadReason::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "rxedge_hub_dead_letters_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.dead[i].get()
            );
        }
        let _ = writeln!(o, "# HELP rxedge_hub_mqtt_connected 1 when the hub is connected to its broker.\n# TYPE rxedge_hub_mqtt_connected gauge\nrxedge_hub_mqtt_connected {}", self.mqtt_connected.get());
        let _ = writeln!(o, "# HELP rxedge_kiosk_online Kiosk presence from its retained state.\n# TYPE rxedge_kiosk_online gauge");
        for (id, online, _, _) in kiosks {
            let _ = writeln!(
                o,
                "rxedge_kiosk_online{{kiosk=\"{id}\"}} {}",
                u8::from(*online)
            );
        }
        let _ = writeln!(o, "# HELP rxedge_kiosk_outbox_depth Events waiting in a kiosk's outbox (last heartbeat).\n# TYPE rxedge_kiosk_outbox_depth gauge");
        for (id, _, depth, _) in kiosks {
            let _ = writeln!(o, "rxedge_kiosk_outbox_depth{{kiosk=\"{id}\"}} {depth}");
        }
        let _ = writeln!(o, "# HELP rxedge_kiosk_outbox_oldest_seconds Age of the oldest unacked event (last heartbeat).\n# TYPE rxedge_kiosk_outbox_oldest_seconds gauge");
        for (id, _, _, age) in kiosks {
            let _ = writeln!(
                o,
                "rxedge_kiosk_outbox_oldest_seconds{{kiosk=\"{id}\"}} {age}"
            );
        }
        self.commit_seconds.render(
            "rxedge_hub_ingest_commit_seconds",
            "Time to classify and commit one ingest batch.",
            &mut o,
        );
        self.http_seconds.render(
            "rxedge_hub_http_request_seconds",
            "HTTP request latency.",
            &mut o,
        );
        self.ocr_seconds.render(
            "rxedge_hub_ocr_seconds",
            "Time to read one prescription (decode, preprocess, OCR, extract).",
            &mut o,
        );
        o
    }
}
