//! Prometheus text metrics, kept as plain atomics.

use crate::ingest::DeadReason;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);
impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);
impl Gauge {
    /// Set.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A fixed-bucket histogram of seconds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 10],
    count: AtomicU64,
    sum_us: AtomicU64,
}
impl Histogram {
    /// Record one observation in seconds.
    pub fn observe(&self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }
    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let c = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {c}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {c}");
    }
}

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
    pub dead: [Counter; 8],
    /// 1 while the hub's client is connected to the broker.
    pub mqtt_connected: Gauge,
    /// Time to classify and commit a batch.
    pub commit_seconds: Histogram,
    /// HTTP request latency.
    pub http_seconds: Histogram,
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
        o
    }
}
