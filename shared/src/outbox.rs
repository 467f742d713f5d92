//! Kiosk outbox bookkeeping, sans I/O.
//!
//! The kiosk task stores events in sled and moves bytes over MQTT; this state
//! machine decides what to send, when to resend and what to drop. It never
//! touches a disk or a socket and takes time as an argument, like rumqttc's
//! `MqttState`.
//!
//! Rules:
//! - An entry becomes sendable only after the caller marks it durable (flushed).
//! - Entries are sent in sequence order, at most `window` unacked at once.
//! - Only the hub's application ack removes an entry; a broker PUBACK means nothing here.
//! - Go-back-N: on a new link (reconnect, hub back online) or an ack timeout,
//!   every unacked entry is resent from the lowest sequence, so the hub
//!   commits each kiosk's events in order. Timeouts back off exponentially.
//! - Each send names `after`: the sequence of the entry of the same class
//!   (stream: events or telemetry topic, since MQTT orders only within a
//!   topic) before it that the outbox still held at send time (0 if none). The hub commits an event only
//!   when `after` is already committed, so a message lost mid-connection can
//!   never let a later one overtake it: the later one waits for the timeout's
//!   go-back instead.
//! - Over the size bound, the oldest telemetry is dropped first; critical
//!   events (prescriptions) are never dropped. When only critical events fill
//!   the outbox, a new critical event is refused so the caller can tell the
//!   patient, rather than claim it was saved.

use crate::protocol::{Class, OutboxReport};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// Size bounds and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events held.
    pub max_events: usize,
    /// Most payload bytes held.
    pub max_bytes: u64,
    /// Most events sent and unacked at once.
    pub window: usize,
    /// How long to wait for the hub's ack before going back.
    pub ack_timeout_ms: i64,
    /// First retry delay after a timeout; doubles per consecutive timeout.
    pub retry_base_ms: i64,
    /// Cap on the retry delay.
    pub retry_max_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_events: 100_000,
            max_bytes: 256 * 1024 * 1024,
            window: 256,
            ack_timeout_ms: 10_000,
            retry_base_ms: 1_000,
            retry_max_ms: 60_000,
        }
    }
}

/// What the outbox knows of one stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Per-kiosk sequence number (the storage key).
    pub seq: u64,
    /// Event id, as acked by the hub.
    pub id: Uuid,
    /// Drop class.
    pub class: Class,
    /// Stored size in bytes.
    pub bytes: u64,
    /// Creation time (ms).
    pub created_ms: i64,
}

/// One publish the caller must make now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Send {
    /// Sequence of the entry to publish.
    pub seq: u64,
    /// The predecessor still held when sent (0 if none): the hub's ordering gate.
    pub after: u64,
}

/// Why an event was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// Only critical events fill the outbox; this critical event was refused (nothing stored).
    #[error("outbox is full of undelivered prescriptions")]
    Full,
    /// The outbox is full and this telemetry event was dropped (counted).
    #[error("outbox is full; telemetry dropped")]
    TelemetryDropped,
    /// The sequence number is not above every stored one (a caller bug).
    #[error("sequence number {0} is not increasing")]
    SeqNotIncreasing(u64),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    meta: Meta,
    durable: bool,
    sent_ms: Option<i64>,
}

/// The outbox state machine.
#[derive(Debug, Clone)]
pub struct Outbox {
    limits: Limits,
    entries: BTreeMap<u64, Entry>,
    telemetry: BTreeSet<u64>,
    critical: BTreeSet<u64>,
    by_id: HashMap<Uuid, u64>,
    bytes: u64,
    /// Entries with seq < cursor have been sent in the current go-back epoch.
    cursor: u64,
    inflight: usize,
    link_up: bool,
    retry_at: i64,
    timeouts_in_row: u32,
    last_seq: u64,
    acked_total: u64,
    dropped_total: u64,
    resent_total: u64,
}

impl Outbox {
    /// An empty outbox.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: BTreeMap::new(),
            telemetry: BTreeSet::new(),
            critical: BTreeSet::new(),
            by_id: HashMap::new(),
            bytes: 0,
            cursor: 0,
            inflight: 0,
            link_up: false,
            retry_at: i64::MIN,
            timeouts_in_row: 0,
            last_seq: 0,
            acked_total: 0,
            dropped_total: 0,
            resent_total: 0,
        }
    }

    /// Rebuild from storage after a restart. Every stored entry is durable and unsent.
    /// `last_seq` is the highest sequence ever assigned (stored separately, so it
    /// survives an empty outbox).
    pub fn restore(
        limits: Limits,
        stored: impl IntoIterator<Item = Meta>,
        last_seq: u64,
        acked_total: u64,
        dropped_total: u64,
    ) -> Self {
        let mut o = Self::new(limits);
        for meta in stored {
            o.insert(meta, true);
        }
        o.last_seq = last_seq.max(o.last_seq);
        o.acked_total = acked_total;
        o.dropped_total = dropped_total;
        o
    }

    fn insert(&mut self, meta: Meta, durable: bool) {
        self.class_set(meta.class).insert(meta.seq);
        self.by_id.insert(meta.id, meta.seq);
        self.bytes += meta.bytes;
        self.last_seq = self.last_seq.max(meta.seq);
        self.entries.insert(
            meta.seq,
            Entry {
                meta,
                durable,
                sent_ms: None,
            },
        );
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let e = self.entries.remove(&seq)?;
        self.class_set(e.meta.class).remove(&seq);
        self.by_id.remove(&e.meta.id);
        self.bytes -= e.meta.bytes;
        if e.sent_ms.is_some() {
            self.inflight -= 1;
        }
        Some(e)
    }

    fn class_set(&mut self, c: Class) -> &mut BTreeSet<u64> {
        match c {
            Class::Telemetry => &mut self.telemetry,
            Class::Critical => &mut self.critical,
        }
    }

    /// The next sequence number to assign.
    pub fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// Admit a new event (not yet durable). Returns the sequence numbers evicted
    /// to make room, which the caller deletes from storage in the same batch.
    pub fn admit(&mut self, meta: Meta) -> Result<Vec<u64>, AdmitError> {
        if meta.seq <= self.last_seq {
            return Err(AdmitError::SeqNotIncreasing(meta.seq));
        }
        // Decide before mutating, so a refusal leaves no trace.
        let mut victims = Vec::new();
        let (mut n, mut b) = (self.entries.len() + 1, self.bytes + meta.bytes);
        let mut tele = self.telemetry.iter();
        while n > self.limits.max_events || b > self.limits.max_bytes {
            match tele.next() {
                Some(&seq) => {
                    victims.push(seq);
                    n -= 1;
                    b -= self.entries.get(&seq).map_or(0, |e| e.meta.bytes);
                }
                None => {
                    return Err(match meta.class {
                        Class::Critical => AdmitError::Full,
                        Class::Telemetry => {
                            self.dropped_total += 1;
                            // The seq is consumed so numbering stays monotonic.
                            self.last_seq = meta.seq;
                            AdmitError::TelemetryDropped
                        }
                    });
                }
            }
        }
        for &seq in &victims {
            self.remove(seq);
            self.dropped_total += 1;
        }
        self.insert(meta, false);
        Ok(victims)
    }

    /// The caller flushed these entries to disk: they may now be sent.
    pub fn mark_durable(&mut self, seqs: &[u64]) {
        for s in seqs {
            if let Some(e) = self.entries.get_mut(s) {
                e.durable = true;
            }
        }
    }

    /// The caller failed to store these entries: forget them.
    pub fn forget(&mut self, seqs: &[u64]) {
        for &s in seqs {
            self.remove(s);
        }
    }

    fn go_back(&mut self) {
        for e in self.entries.values_mut() {
            if e.sent_ms.take().is_some() {
                self.resent_total += 1;
            }
        }
        self.inflight = 0;
        self.cursor = 0;
    }

    /// The path to the hub came up (broker connected and hub online) or went down.
    /// Either way, unacked entries will be resent from the lowest sequence.
    pub fn set_link(&mut self, up: bool) {
        if up != self.link_up {
            self.go_back();
            self.link_up = up;
            self.timeouts_in_row = 0;
            self.retry_at = i64::MIN;
        }
    }

    /// Whether the outbox believes the hub is reachable.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// What to publish now, in order. The caller publishes exactly these.
    pub fn poll_send(&mut self, now_ms: i64) -> Vec<Send> {
        if !self.link_up {
            return Vec::new();
        }
        if let Some(first) = self.entries.values().next() {
            if let Some(sent) = first.sent_ms {
                if now_ms - sent >= self.limits.ack_timeout_ms {
                    self.timeouts_in_row = self.timeouts_in_row.saturating_add(1);
                    let shift = (self.timeouts_in_row - 1).min(20);
                    let delay = self
                        .limits
                        .retry_base_ms
                        .saturating_mul(1 << shift)
                        .min(self.limits.retry_max_ms);
                    self.retry_at = now_ms + delay;
                    self.go_back();
                }
            }
        }
        if now_ms < self.retry_at {
            return Vec::new();
        }
        self.retry_at = i64::MIN;
        let room = self.limits.window.saturating_sub(self.inflight);
        let mut out: Vec<Send> = Vec::new();
        for (&seq, e) in self.entries.range_mut(self.cursor..) {
            if out.len() >= room || !e.durable {
                break;
            }
            e.sent_ms = Some(now_ms);
            let same = match e.meta.class {
                Class::Telemetry => &self.telemetry,
                Class::Critical => &self.critical,
            };
            let after = same.range(..seq).next_back().copied().unwrap_or(0);
            out.push(Send { seq, after });
        }
        if let Some(last) = out.last() {
            self.cursor = last.seq + 1;
            self.inflight += out.len();
        }
        out
    }

    /// The hub acked `id`. Returns the sequence to delete from storage, or
    /// `None` for an unknown id (already acked, or evicted).
    pub fn on_ack(&mut self, id: &Uuid) -> Option<u64> {
        let seq = *self.by_id.get(id)?;
        self.remove(seq)?;
        self.acked_total += 1;
        self.timeouts_in_row = 0;
        self.retry_at = i64::MIN;
        Some(seq)
    }

    /// When `poll_send` next has something to do (timeout or retry), if ever.
    pub fn next_wakeup(&self) -> Option<i64> {
        if !self.link_up {
            return None;
        }
        let timeout = self
            .entries
            .values()
            .next()
            .and_then(|e| e.sent_ms)
            .map(|s| s + self.limits.ack_timeout_ms);
        let retry = (self.retry_at != i64::MIN).then_some(self.retry_at);
        match (timeout, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Figures for the heartbeat and the `outbox` command.
    pub fn report(&self, now_ms: i64) -> OutboxReport {
        OutboxReport {
            queued: (self.entries.len() - self.inflight) as u64,
            inflight: self.inflight as u64,
            acked: self.acked_total,
            dropped: self.dropped_total,
            oldest_age_ms: self
                .entries
                .values()
                .map(|e| e.meta.created_ms)
                .min()
                .map(|c| (now_ms - c).max(0)),
        }
    }

    /// Entries resent because of go-back (for metrics).
    pub fn resent_total(&self) -> u64 {
        self.resent_total
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stored payload bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Metadata of a stored entry.
    pub fn get(&self, seq: u64) -> Option<&Meta> {
        self.entries.get(&seq).map(|e| &e.meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(seq: u64, class: Class) -> Meta {
        Meta {
            seq,
            id: Uuid::from_u128(seq as u128),
            class,
            bytes: 100,
            created_ms: seq as i64,
        }
    }

    fn limits() -> Limits {
        Limits {
            max_events: 10,
            max_bytes: 1 << 20,
            window: 3,
            ack_timeout_ms: 1000,
            retry_base_ms: 100,
            retry_max_ms: 800,
        }
    }

    fn seqs(v: Vec<Send>) -> Vec<u64> {
        v.into_iter().map(|s| s.seq).collect()
    }

    fn admit_durable(o: &mut Outbox, m: Meta) -> Result<Vec<u64>, AdmitError> {
        let ev = o.admit(m)?;
        o.mark_durable(&[m.seq]);
        Ok(ev)
    }

    #[test]
    fn sends_in_order_within_window_only_when_durable_and_linked() -> Result<(), AdmitError> {
        let mut o = Outbox::new(limits());
        for s in 1..=5 {
            o.admit(meta(s, Class::Critical))?;
        }
        o.set_link(true);
        assert!(o.poll_send(0).is_empty(), "nothing durable yet");
        o.mark_durable(&[1, 2, 4, 5]);
        assert_eq!(
            seqs(o.poll_send(0)),
            vec![1, 2],
            "stops before the non-durable 3"
        );
        o.mark_durable(&[3]);
        assert_eq!(seqs(o.poll_send(0)), vec![3], "window of 3");
        assert_eq!(o.on_ack(&Uuid::from_u128(1)), Some(1));
        assert_eq!(seqs(o.poll_send(1)), vec![4]);
        let r = o.report(10);
        assert_eq!((r.queued, r.inflight, r.acked), (1, 3, 1));
        Ok(())
    }

    #[test]
    fn puback_is_not_an_ack_and_unknown_acks_are_ignored() -> Result<(), AdmitError> {
        let mut o = Outbox::new(limits());
        admit_durable(&mut o, meta(1, Class::Critical))?;
        o.set_link(true);
        assert_eq!(seqs(o.poll_send(0)), vec![1]);
        assert_eq!(o.on_ack(&Uuid::from_u128(99)), None);
        assert_eq!(o.len(), 1);
        assert_eq!(o.on_ack(&Uuid::from_u128(1)), Some(1));
        assert_eq!(
            o.on_ack(&Uuid::from_u128(1)),
            None,
            "double ack removes nothing"
        );
        Ok(())
    }

    #[test]
    fn timeout_goes_back_with_backoff() -> Result<(), AdmitError> {
        let mut o = Outbox::new(limits());
        for s in 1..=2 {
            admit_durable(&mut o, meta(s, Class::Critical))?;
        }
        o.set_link(true);
        assert_eq!(seqs(o.poll_send(0)), vec![1, 2]);
        assert_eq!(o.next_wakeup(), Some(1000));
        assert!(o.poll_send(999).is_empty());
        // Timeout at 1000: retry after 100 ms.
        assert!(o.poll_send(1000).is_empty());
        assert_eq!(seqs(o.poll_send(1100)), vec![1, 2]);
        // Second timeout: 200 ms.
        assert!(o.poll_send(2100).is_empty());
        assert!(o.poll_send(2299).is_empty());
        assert_eq!(seqs(o.poll_send(2300)), vec![1, 2]);
        // Capped at 800.
        for _ in 0..10 {
            let t = o.next_wakeup().unwrap_or(0);
            o.poll_send(t);
            let r = o.next_wakeup().unwrap_or(0);
            assert!(r - t <= 800);
            o.poll_send(r);
        }
        assert!(o.resent_total() > 0);
        Ok(())
    }

    #[test]
    fn reconnect_resends_everything_unacked_from_the_start() -> Result<(), AdmitError> {
        let mut o = Outbox::new(limits());
        for s in 1..=4 {
            admit_durable(&mut o, meta(s, Class::Critical))?;
        }
        o.set_link(true);
        assert_eq!(seqs(o.poll_send(0)), vec![1, 2, 3]);
        o.on_ack(&Uuid::from_u128(1));
        o.set_link(false);
        assert!(o.poll_send(5).is_empty());
        o.set_link(true);
        assert_eq!(seqs(o.poll_send(6)), vec![2, 3, 4]);
        Ok(())
    }

    #[test]
    fn eviction_drops_oldest_telemetry_never_critical() -> Result<(), AdmitError> {
        let mut o = Outbox::new(Limits {
            max_events: 3,
            ..limits()
        });
        admit_durable(&mut o, meta(1, Class::Telemetry))?;
        admit_durable(&mut o, meta(2, Class::Critical))?;
        admit_durable(&mut o, meta(3, Class::Telemetry))?;
        assert_eq!(admit_durable(&mut o, meta(4, Class::Critical))?, vec![1]);
        assert_eq!(admit_durable(&mut o, meta(5, Class::Critical))?, vec![3]);
        assert_eq!(
            o.admit(meta(6, Class::Telemetry)),
            Err(AdmitError::TelemetryDropped)
        );
        assert_eq!(o.admit(meta(7, Class::Critical)), Err(AdmitError::Full));
        assert_eq!(o.report(0).dropped, 3);
        assert_eq!(o.len(), 3);
        // A refused critical event does not consume the number; telemetry did.
        assert_eq!(o.next_seq(), 7);
        Ok(())
    }

    #[test]
    fn byte_bound_counts() -> Result<(), AdmitError> {
        let mut o = Outbox::new(Limits {
            max_bytes: 250,
            ..limits()
        });
        admit_durable(&mut o, meta(1, Class::Telemetry))?;
        admit_durable(&mut o, meta(2, Class::Telemetry))?;
        assert_eq!(admit_durable(&mut o, meta(3, Class::Critical))?, vec![1]);
        assert_eq!(o.bytes(), 200);
        Ok(())
    }

    #[test]
    fn restore_keeps_numbering_and_counters() {
        let o = Outbox::restore(
            limits(),
            [meta(5, Class::Critical), meta(7, Class::Telemetry)],
            9,
            4,
            2,
        );
        assert_eq!(o.next_seq(), 10);
        let r = o.report(10);
        assert_eq!(
            (r.queued, r.acked, r.dropped, r.oldest_age_ms),
            (2, 4, 2, Some(5))
        );
        assert!(!o.link_up());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Admit(bool),
        Flush,
        Poll(u16),
        Deliver(u8),
        LoseInflight,
        HubAcks,
        LoseAcks,
        Link(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<bool>().prop_map(Op::Admit),
            2 => Just(Op::Flush),
            4 => (0u16..3000).prop_map(Op::Poll),
            4 => (1u8..8).prop_map(Op::Deliver),
            1 => Just(Op::LoseInflight),
            3 => Just(Op::HubAcks),
            1 => Just(Op::LoseAcks),
            1 => any::<bool>().prop_map(Op::Link),
        ]
    }

    /// The hub's rule: a known id is re-acked; a new one is committed only if
    /// its `after` is committed, otherwise held back (no ack).
    fn hub(
        last: &mut [u64; 2],
        committed: &mut Vec<u64>,
        set: &mut std::collections::HashSet<u64>,
        m: Send,
        class: Class,
    ) -> Option<Uuid> {
        let last = &mut last[class as usize];
        if set.contains(&m.seq) {
            return Some(Uuid::from_u128(m.seq as u128));
        }
        if m.after > *last {
            return None;
        }
        assert!(m.seq > *last, "seq {} reused after {}", m.seq, last);
        set.insert(m.seq);
        committed.push(m.seq);
        *last = m.seq;
        Some(Uuid::from_u128(m.seq as u128))
    }

    proptest! {
        /// A model of the whole path: the outbox publishes into a lossy in-order
        /// channel; a hub dedupes by id, commits and acks; acks can be lost;
        /// the link flaps. Whatever happens, the hub commits every critical
        /// event exactly once and in sequence order, and the outbox drains.
        #[test]
        fn exactly_once_in_order_through_a_lossy_link(ops in proptest::collection::vec(op(), 1..400)) {
            let mut o = Outbox::new(Limits { max_events: 20, max_bytes: 1 << 20, window: 4, ack_timeout_ms: 500, retry_base_ms: 50, retry_max_ms: 400 });
            let mut now = 0i64;
            let mut wire: std::collections::VecDeque<Send> = Default::default();
            let mut hub_last = [0u64; 2];
            let mut classes = std::collections::HashMap::new();
            let mut acks: Vec<Uuid> = Vec::new();
            let mut committed: Vec<u64> = Vec::new();
            let mut committed_set = std::collections::HashSet::new();
            let mut admitted_critical = std::collections::BTreeSet::new();
            let mut unflushed = Vec::new();
            for op in ops {
                match op {
                    Op::Admit(crit) => {
                        let seq = o.next_seq();
                        let class = if crit { Class::Critical } else { Class::Telemetry };
                        classes.insert(seq, class);
                        if o.admit(meta(seq, class)).is_ok() {
                            unflushed.push(seq);
                            if crit { admitted_critical.insert(seq); }
                        }
                    }
                    Op::Flush => { o.mark_durable(&unflushed); unflushed.clear(); }
                    Op::Poll(dt) => { now += i64::from(dt); wire.extend(o.poll_send(now)); }
                    Op::Deliver(n) => {
                        for _ in 0..n {
                            if let Some(m) = wire.pop_front() {
                                if let Some(a) = hub(&mut hub_last, &mut committed, &mut committed_set, m, classes[&m.seq]) { acks.push(a); }
                            }
                        }
                    }
                    Op::LoseInflight => wire.clear(),
                    Op::HubAcks => { for id in acks.drain(..) { o.on_ack(&id); } }
                    Op::LoseAcks => acks.clear(),
                    Op::Link(up) => { if !up { wire.clear(); } o.set_link(up); }
                }
            }
            // Drain: link up, no more loss.
            o.mark_durable(&unflushed);
            o.set_link(true);
            wire.clear();
            for _ in 0..10_000 {
                if o.is_empty() { break; }
                now = o.next_wakeup().map_or(now, |w| w.max(now));
                wire.extend(o.poll_send(now));
                while let Some(m) = wire.pop_front() {
                    if let Some(a) = hub(&mut hub_last, &mut committed, &mut committed_set, m, classes[&m.seq]) { o.on_ack(&a); }
                }
            }
            prop_assert!(o.is_empty(), "outbox did not drain");
            for c in [Class::Critical, Class::Telemetry] {
                let stream: Vec<u64> = committed.iter().copied().filter(|s| classes[s] == c).collect();
                prop_assert!(stream.windows(2).all(|w| w[0] < w[1]), "out of order: {:?}", stream);
            }
            for s in &admitted_critical {
                prop_assert!(committed_set.contains(s), "critical {} lost", s);
            }
            let r = o.report(now);
            prop_assert_eq!(r.inflight + r.queued, 0);
        }
    }
}
