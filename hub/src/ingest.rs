//! Ingest: kiosk events in over MQTT, verified, deduplicated, committed, then acked.
//!
//! Order of work for each batch: classify every message (signature, kiosk,
//! ordering gate, dedupe), write events and dead letters in one transaction,
//! commit, and only then publish the acks. A kiosk deletes an event only on
//! that ack, so a crash anywhere before the commit just means a resend.

use crate::devices;
use crate::metrics::Metrics;
use crate::store::Db;
use crate::web::FeedItem;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use rxedge_shared::protocol::{
    Ack, Body, Envelope, Frame, FrameKind, Heartbeat, Presence, PROTOCOL_VERSION,
};
use rxedge_shared::sign::{Context, Signed, SigningKey, VerifyingKey};
use rxedge_shared::topics::{self, Leaf};
use rxedge_shared::{KioskId, StoreId};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

/// Why a message went to the dead-letter table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadReason {
    /// Not a frame, not JSON, too large, or a body that does not fit the schema.
    Malformed,
    /// The signature does not verify against the kiosk's enrolled key.
    BadSignature,
    /// No enrolled kiosk of that id.
    UnknownKiosk,
    /// The kiosk is revoked.
    RevokedKiosk,
    /// An event id seen before, with different content.
    ReplayedId,
    /// The envelope's store or kiosk differs from the topic's.
    TopicMismatch,
    /// An envelope version this hub does not speak.
    UnsupportedVersion,
    /// A new event whose sequence is below one already committed.
    Late,
    /// Dated further ahead of the hub's clock than `ingest.max_clock_ahead_secs`:
    /// a forged or mis-set clock, refused rather than ordered ahead of real events.
    OutOfWindow,
}

impl DeadReason {
    /// Stable name stored in the table and shown in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Malformed => "malformed",
            DeadReason::BadSignature => "bad_signature",
            DeadReason::UnknownKiosk => "unknown_kiosk",
            DeadReason::RevokedKiosk => "revoked_kiosk",
            DeadReason::ReplayedId => "replayed_id",
            DeadReason::TopicMismatch => "topic_mismatch",
            DeadReason::UnsupportedVersion => "unsupported_version",
            DeadReason::Late => "late",
            DeadReason::OutOfWindow => "out_of_window",
        }
    }
    /// All reasons, for metrics.
    pub const ALL: [DeadReason; 9] = [
        DeadReason::Malformed,
        DeadReason::BadSignature,
        DeadReason::UnknownKiosk,
        DeadReason::RevokedKiosk,
        DeadReason::ReplayedId,
        DeadReason::TopicMismatch,
        DeadReason::UnsupportedVersion,
        DeadReason::Late,
        DeadReason::OutOfWindow,
    ];
}

/// A message as it came off the broker.
#[derive(Debug)]
pub struct Inbound {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Known {
    key: VerifyingKey,
    revoked: bool,
    last_seq: [u64; 2],
}

struct EventRow {
    kiosk: KioskId,
    topic: String,
    payload: Vec<u8>,
    env: Envelope,
    digest: String,
    envelope_json: String,
    sig: String,
    stream: usize,
}

#[derive(Clone)]
struct DeadRow {
    topic: String,
    kiosk: Option<String>,
    event_id: Option<String>,
    reason: DeadReason,
    detail: String,
    payload: Vec<u8>,
}

/// Everything the ingest worker needs.
pub struct Ingest {
    db: Db,
    store: StoreId,
    key: Arc<SigningKey>,
    client: AsyncClient,
    metrics: Arc<Metrics>,
    feed: broadcast::Sender<FeedItem>,
    known: HashMap<KioskId, Known>,
    misses: HashMap<String, Instant>,
    max_payload: usize,
    batch_max: usize,
    devices_changed: Arc<AtomicU64>,
    devices_seen: u64,
    coldchain: Option<mpsc::Sender<crate::coldchain::service::Msg>>,
    max_ahead_ms: i64,
}

use rxedge_shared::clock::system_now_ms as now_ms;

/// Ordering stream of a topic: MQTT orders messages only within one topic.
fn stream_of(leaf: Leaf) -> usize {
    match leaf {
        Leaf::Telemetry => 1,
        _ => 0,
    }
}

impl Ingest {
    /// Build the worker.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        store: StoreId,
        key: Arc<SigningKey>,
        client: AsyncClient,
        metrics: Arc<Metrics>,
        feed: broadcast::Sender<FeedItem>,
        max_payload: usize,
        batch_max: usize,
    ) -> Self {
        Self {
            db,
            store,
            key,
            client,
            metrics,
            feed,
            known: HashMap::new(),
            misses: HashMap::new(),
            max_payload,
            batch_max,
            devices_changed: Arc::new(AtomicU64::new(0)),
            devices_seen: 0,
            coldchain: None,
            max_ahead_ms: 3_600_000,
        }
    }

    /// Refuse events dated more than `secs` ahead of the hub's clock.
    pub fn with_clock_window(mut self, secs: u32) -> Self {
        self.max_ahead_ms = i64::from(secs) * 1000;
        self
    }

    /// Run until the channel closes.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Inbound>) {
        let mut batch = Vec::with_capacity(self.batch_max);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.process(std::mem::take(&mut batch)).await;
        }
    }

    async fn lookup(&mut self, kiosk: &KioskId, force: bool) -> Option<Known> {
        if !force {
            if let Some(k) = self.known.get(kiosk) {
                return Some(k.clone());
            }
        }
        // Unknown ids may be garbage; look them up at most once a second.
        if let Some(t) = self.misses.get(kiosk.as_str()) {
            if t.elapsed() < Duration::from_secs(1) {
                return self.known.get(kiosk).cloned();
            }
        }
        match devices::get(&self.db, kiosk.as_str()).await {
            Ok(Some(k)) => match k.verifying_key() {
                Some(key) => {
                    let known = Known {
                        key,
                        revoked: k.revoked,
                        last_seq: k.last_seq,
                    };
                    self.known.insert(kiosk.clone(), known.clone());
                    self.misses.remove(kiosk.as_str());
                    Some(known)
                }
                None => {
                    self.misses.insert(kiosk.to_string(), Instant::now());
                    None
                }
            },
            Ok(None) => {
                self.misses.insert(kiosk.to_string(), Instant::now());
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "kiosk lookup failed");
                None
            }
        }
    }

    /// Share the counter the web side bumps on enrollment, so cached keys and
    /// sequence gates are reloaded after a kiosk is re-enrolled.
    pub fn with_device_changes(mut self, changed: Arc<AtomicU64>) -> Self {
        self.devices_changed = changed;
        self
    }

    /// Hand committed telemetry to the cold-chain worker.
    pub fn with_coldchain(mut self, tx: mpsc::Sender<crate::coldchain::service::Msg>) -> Self {
        self.coldchain = Some(tx);
        self
    }

    async fn process(&mut self, batch: Vec<Inbound>) {
        let gen = self.devices_changed.load(AtomicOrdering::Acquire);
        if gen != self.devices_seen {
            self.devices_seen = gen;
            self.known.clear();
            self.misses.clear();
        }
        let started = Instant::now();
        let received_ms = now_ms();
        let mut rows: Vec<EventRow> = Vec::new();
        let mut dead: Vec<DeadRow> = Vec::new();
        let mut acks: HashMap<KioskId, Vec<Uuid>> = HashMap::new();
        let mut heartbeats: Vec<(KioskId, Heartbeat)> = Vec::new();
        let mut presence: Vec<(KioskId, bool)> = Vec::new();
        // In-batch view of ids staged for commit, for duplicates inside one batch.
        let mut staged: HashMap<(KioskId, Uuid), String> = HashMap::new();
        let before: HashMap<KioskId, Known> = self.known.clone();
        let mut held = 0u64;
        let mut duplicates = 0u64;
        // Ids of this batch already committed, fetched in one query per kiosk, so an id
        // reused under a new sequence is refused before it can move the ordering gate.
        let committed = self.already_committed(&batch).await;

        for m in batch {
            let dl = |reason: DeadReason,
                      kiosk: Option<&KioskId>,
                      event_id: Option<Uuid>,
                      detail: String,
                      m: &Inbound| DeadRow {
                topic: m.topic.clone(),
                kiosk: kiosk.map(|k| k.to_string()),
                event_id: event_id.map(|u| u.to_string()),
                reason,
                detail,
                payload: m.payload.clone(),
            };
            if m.topic == topics::hub_state(&self.store) {
                // Our own retained presence also matches `+/state`.
                continue;
            }
            let Some(t) = topics::parse(&m.topic) else {
                dead.push(dl(
                    DeadReason::Malformed,
                    None,
                    None,
                    "unexpected topic".into(),
                    &m,
                ));
                continue;
            };
            if t.store != self.store {
                dead.push(dl(
                    DeadReason::TopicMismatch,
                    Some(&t.kiosk),
                    None,
                    format!("store {} is not this hub's", t.store),
                    &m,
                ));
                continue;
            }
            if t.leaf == Leaf::State {
                match serde_json::from_slice::<Presence>(&m.payload) {
                    Ok(p) => presence.push((t.kiosk, p.online)),
                    // An empty retained payload clears the topic; nothing to record.
                    Err(_) if m.payload.is_empty() => {}
                    Err(e) => dead.push(dl(
                        DeadReason::Malformed,
                        Some(&t.kiosk),
                        None,
                        format!("presence: {e}"),
                        &m,
                    )),
                }
                continue;
            }
            if m.payload.len() > self.max_payload {
                dead.push(dl(
                    DeadReason::Malformed,
                    Some(&t.kiosk),
                    None,
                    format!(
                        "payload of {} bytes exceeds {}",
                        m.payload.len(),
                        self.max_payload
                    ),
                    &m,
                ));
                continue;
            }
            let frame: Frame = match serde_json::from_slice(&m.payload) {
                Ok(f) => f,
                Err(e) => {
                    dead.push(dl(
                        DeadReason::Malformed,
                        Some(&t.kiosk),
                        None,
                        format!("not a frame: {e}"),
                        &m,
                    ));
                    continue;
                }
            };
            let Some(mut known) = self.lookup(&t.kiosk, false).await else {
                dead.push(dl(
                    DeadReason::UnknownKiosk,
                    Some(&t.kiosk),
                    None,
                    "no enrolled kiosk with this id".into(),
                    &m,
                ));
                continue;
            };
            let ctx = match frame.kind {
                FrameKind::Event => Context::Event,
                FrameKind::Heartbeat => Context::Heartbeat,
            };
            if frame.msg.verify(ctx, &known.key).is_err() {
                // The key may have changed by re-enrollment; check once more against the store.
                match self.lookup(&t.kiosk, true).await {
                    Some(k) if frame.msg.verify(ctx, &k.key).is_ok() => known = k,
                    _ => {
                        dead.push(dl(
                            DeadReason::BadSignature,
                            Some(&t.kiosk),
                            None,
                            "signature does not verify".into(),
                            &m,
                        ));
                        continue;
                    }
                }
            }
            if known.revoked {
                dead.push(dl(
                    DeadReason::RevokedKiosk,
                    Some(&t.kiosk),
                    None,
                    "kiosk is revoked".into(),
                    &m,
                ));
                continue;
            }
            if frame.kind == FrameKind::Heartbeat {
                match frame.msg.decode::<Heartbeat>() {
                    Ok(hb) if hb.kiosk == t.kiosk => heartbeats.push((t.kiosk, hb)),
                    Ok(_) => dead.push(dl(
                        DeadReason::TopicMismatch,
                        Some(&t.kiosk),
                        None,
                        "heartbeat names another kiosk".into(),
                        &m,
                    )),
                    Err(e) => dead.push(dl(
                        DeadReason::Malformed,
                        Some(&t.kiosk),
                        None,
                        format!("heartbeat: {e}"),
                        &m,
                    )),
                }
                continue;
            }
            // From here the message is authentically the kiosk's: every outcome is acked,
            // except an event held back by the ordering gate.
            let body = frame.msg.body.get();
            let env: Envelope = match serde_json::from_str(body) {
                Ok(e) => e,
                Err(e) => {
                    let id = serde_json::from_str::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| {
                            v.get("id")
                                .and_then(|i| i.as_str())
                                .and_then(|s| Uuid::parse_str(s).ok())
                        });
                    if let Some(id) = id {
                        acks.entry(t.kiosk.clone()).or_default().push(id);
                    }
                    dead.push(dl(
                        DeadReason::Malformed,
                        Some(&t.kiosk),
                        id,
                        format!("envelope: {e}"),
                        &m,
                    ));
                    continue;
                }
            };
            if env.v != PROTOCOL_VERSION {
                acks.entry(t.kiosk.clone()).or_default().push(env.id);
                dead.push(dl(
                    DeadReason::UnsupportedVersion,
                    Some(&t.kiosk),
                    Some(env.id),
                    format!("version {}", env.v),
                    &m,
                ));
                continue;
            }
            if env.kiosk != t.kiosk || env.store != t.store {
                acks.entry(t.kiosk.clone()).or_default().push(env.id);
                dead.push(dl(
                    DeadReason::TopicMismatch,
                    Some(&t.kiosk),
                    Some(env.id),
                    "envelope names another kiosk or store".into(),
                    &m,
                ));
                continue;
            }
            if env.created_ms > received_ms.saturating_add(self.max_ahead_ms) {
                acks.entry(t.kiosk.clone()).or_default().push(env.id);
                dead.push(dl(
                    DeadReason::OutOfWindow,
                    Some(&t.kiosk),
                    Some(env.id),
                    format!(
                        "dated {} s ahead of the hub's clock",
                        (env.created_ms - received_ms) / 1000
                    ),
                    &m,
                ));
                continue;
            }
            let stream = stream_of(t.leaf);
            let digest = format!("{:x}", Sha256::digest(body.as_bytes()));
            let last = known.last_seq[stream];
            if env.seq <= last || staged.contains_key(&(t.kiosk.clone(), env.id)) {
                // Seen before (resend after a lost ack), a replay, or a late straggler.
                let prior = match staged.get(&(t.kiosk.clone(), env.id)) {
                    Some(d) => Some(d.clone()),
                    None => self.prior_digest(&t.kiosk, &env.id).await,
                };
                acks.entry(t.kiosk.clone()).or_default().push(env.id);
                match prior {
                    Some(d) if d == digest => duplicates += 1,
                    Some(_) => dead.push(dl(
                        DeadReason::ReplayedId,
                        Some(&t.kiosk),
                        Some(env.id),
                        "event id reused with different content".into(),
                        &m,
                    )),
                    None => dead.push(dl(
                        DeadReason::Late,
                        Some(&t.kiosk),
                        Some(env.id),
                        format!("seq {} arrived after {last}", env.seq),
                        &m,
                    )),
                }
                continue;
            }
            if frame.after > last {
                // Its predecessor is not committed yet: wait for the kiosk's go-back resend.
                held += 1;
                continue;
            }
            if committed.contains(&(t.kiosk.clone(), env.id)) {
                acks.entry(t.kiosk.clone()).or_default().push(env.id);
                dead.push(dl(
                    DeadReason::ReplayedId,
                    Some(&t.kiosk),
                    Some(env.id),
                    format!("event id reused with a new sequence {}", env.seq),
                    &m,
                ));
                continue;
            }
            known.last_seq[stream] = env.seq;
            self.known.insert(t.kiosk.clone(), known);
            staged.insert((t.kiosk.clone(), env.id), digest.clone());
            acks.entry(t.kiosk.clone()).or_default().push(env.id);
            rows.push(EventRow {
                kiosk: t.kiosk,
                envelope_json: body.to_owned(),
                sig: frame.msg.sig.clone(),
                env,
                digest,
                stream,
                payload: m.payload,
                topic: m.topic,
            });
        }

        let refused = match self.commit(&rows, &dead, received_ms).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, events = rows.len(), "commit failed; kiosks will resend");
                self.metrics.commit_failures.inc();
                // Nothing was stored: forget the gates we advanced, send no acks.
                self.known = before;
                return;
            }
        };
        for &i in &refused {
            self.metrics.dead_letter(DeadReason::ReplayedId);
            if let Some(r) = rows.get(i) {
                tracing::warn!(kiosk = %r.kiosk, id = %r.env.id, "dead letter: event id reused with a new sequence");
                // Only committed rows moved the stored gate; reload it rather than trust ours.
                self.known.remove(&r.kiosk);
            }
        }
        for (k, hb) in heartbeats {
            if let Err(e) = devices::record_heartbeat(
                &self.db,
                k.as_str(),
                received_ms,
                &hb.outbox,
                hb.config_version,
            )
            .await
            {
                tracing::warn!(error = %e, "heartbeat not recorded");
            }
            let _ = self.feed.send(FeedItem::kiosk(k.as_str()));
        }
        for (k, online) in presence {
            if let Err(e) =
                devices::record_presence(&self.db, k.as_str(), online, received_ms).await
            {
                tracing::warn!(error = %e, "presence not recorded");
            }
            let _ = self.feed.send(FeedItem::kiosk(k.as_str()));
        }
        self.metrics
            .events_committed
            .add((rows.len() - refused.len()) as u64);
        self.metrics.duplicates.add(duplicates);
        self.metrics.held.add(held);
        for d in &dead {
            self.metrics.dead_letter(d.reason);
            tracing::warn!(reason = d.reason.as_str(), kiosk = d.kiosk.as_deref().unwrap_or("-"), detail = %d.detail, "dead letter");
        }
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        for (kiosk, ids) in acks {
            self.send_ack(&kiosk, ids).await;
        }
        if let Some(cc) = &self.coldchain {
            for (i, r) in rows.iter().enumerate() {
                if let (false, Body::Telemetry(t)) = (refused.contains(&i), &r.env.body) {
                    let msg = crate::coldchain::service::Msg::Telemetry {
                        kiosk: r.kiosk.clone(),
                        telemetry: t.clone(),
                    };
                    if cc.send(msg).await.is_err() {
                        tracing::error!(
                            "cold-chain worker is gone; readings stay stored for its replay"
                        );
                    }
                }
            }
        }
        for (i, r) in rows.iter().enumerate() {
            if refused.contains(&i) {
                continue;
            }
            let _ = self
                .feed
                .send(FeedItem::event(r.kiosk.as_str(), &r.env, received_ms));
        }
    }

    /// Which (kiosk, event id) pairs named in `batch` are already stored. Reads ids
    /// from unverified payloads, which is harmless: the answer only ever refuses.
    async fn already_committed(&self, batch: &[Inbound]) -> HashSet<(KioskId, Uuid)> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Uuid,
        }
        let mut wanted: HashMap<KioskId, Vec<String>> = HashMap::new();
        for m in batch {
            let Some(t) = topics::parse(&m.topic) else {
                continue;
            };
            if !matches!(t.leaf, Leaf::Events | Leaf::Telemetry)
                || m.payload.len() > self.max_payload
            {
                continue;
            }
            let Ok(f) = serde_json::from_slice::<Frame>(&m.payload) else {
                continue;
            };
            if let Ok(i) = serde_json::from_str::<IdOnly>(f.msg.body.get()) {
                wanted.entry(t.kiosk).or_default().push(i.id.to_string());
            }
        }
        let mut found = HashSet::new();
        for (kiosk, ids) in wanted {
            for chunk in ids.chunks(500) {
                let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT event_id FROM events WHERE kiosk_id = $1 AND event_id IN ({})",
                    marks.join(",")
                );
                let mut q = sqlx::query(&sql).bind(kiosk.as_str());
                for id in chunk {
                    q = q.bind(id);
                }
                match q.fetch_all(&self.db.pool).await {
                    Ok(rs) => found.extend(
                        rs.iter()
                            .filter_map(|r| r.try_get::<String, _>("event_id").ok())
                            .filter_map(|s| Uuid::parse_str(&s).ok())
                            .map(|u| (kiosk.clone(), u)),
                    ),
                    // The unique constraint at commit still refuses a reused id.
                    Err(e) => tracing::error!(error = %e, "batch dedupe lookup failed"),
                }
            }
        }
        found
    }

    async fn prior_digest(&self, kiosk: &KioskId, id: &Uuid) -> Option<String> {
        let r = sqlx::query("SELECT digest FROM events WHERE kiosk_id = $1 AND event_id = $2")
            .bind(kiosk.as_str())
            .bind(id.to_string())
            .fetch_optional(&self.db.pool)
            .await;
        match r {
            Ok(Some(row)) => row.try_get::<String, _>("digest").ok(),
            Ok(None) => {
                // A dead-lettered event from a genuine kiosk was acked too; its resend is a duplicate.
                let d = sqlx::query("SELECT payload FROM dead_letters WHERE kiosk_id = $1 AND event_id = $2 LIMIT 1")
                    .bind(kiosk.as_str())
                    .bind(id.to_string())
                    .fetch_optional(&self.db.pool)
                    .await
                    .ok()
                    .flatten();
                d.and_then(|row| row.try_get::<Vec<u8>, _>("payload").ok())
                    .and_then(|p| {
                        let f: Frame = serde_json::from_slice(&p).ok()?;
                        Some(format!("{:x}", Sha256::digest(f.msg.body.get().as_bytes())))
                    })
            }
            Err(e) => {
                tracing::error!(error = %e, "dedupe lookup failed");
                None
            }
        }
    }

    /// One transaction: events (multi-row, conflict-checked), ordering gates and
    /// dead letters. Returns the indexes of rows the unique (kiosk, event id)
    /// constraint refused; they are written to dead letters in the same transaction.
    async fn commit(
        &self,
        rows: &[EventRow],
        dead: &[DeadRow],
        received_ms: i64,
    ) -> Result<Vec<usize>, sqlx::Error> {
        if rows.is_empty() && dead.is_empty() {
            return Ok(Vec::new());
        }
        const CHUNK: usize = 100;
        let mut tx = self.db.pool.begin().await?;
        let mut gates: HashMap<&KioskId, [Option<u64>; 2]> = HashMap::new();
        let mut refused = Vec::new();
        for (ci, chunk) in rows.chunks(CHUNK).enumerate() {
            let mut sql = String::from(
                "INSERT INTO events (kiosk_id, event_id, seq, kind, created_ms, received_ms, historical, digest, envelope, sig) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 10;
                if i > 0 {
                    sql.push(',');
                }
                let cols: Vec<String> = (1..=10).map(|c| format!("${}", b + c)).collect();
                sql.push('(');
                sql.push_str(&cols.join(","));
                sql.push(')');
            }
            sql.push_str(
                " ON CONFLICT (kiosk_id, event_id) DO NOTHING RETURNING kiosk_id, event_id",
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.kiosk.as_str())
                    .bind(r.env.id.to_string())
                    .bind(r.env.seq as i64)
                    .bind(r.env.body.kind().as_str())
                    .bind(r.env.created_ms)
                    .bind(received_ms)
                    .bind(i64::from(r.env.historical))
                    .bind(&r.digest)
                    .bind(&r.envelope_json)
                    .bind(&r.sig);
            }
            let inserted: HashSet<(String, String)> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .filter_map(|row| {
                    Some((row.try_get("kiosk_id").ok()?, row.try_get("event_id").ok()?))
                })
                .collect();
            for (i, r) in chunk.iter().enumerate() {
                if inserted.contains(&(r.kiosk.to_string(), r.env.id.to_string())) {
                    gates.entry(&r.kiosk).or_default()[r.stream] = Some(r.env.seq);
                    if let Body::Telemetry(t) = &r.env.body {
                        store_readings(&mut tx, &r.kiosk, t, r.env.historical).await?;
                    }
                } else {
                    refused.push(ci * CHUNK + i);
                }
            }
        }
        for (k, g) in gates {
            if let Some(s) = g[0] {
                sqlx::query("UPDATE kiosks SET last_seq_events = $1 WHERE id = $2")
                    .bind(s as i64)
                    .bind(k.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(s) = g[1] {
                sqlx::query("UPDATE kiosks SET last_seq_telemetry = $1 WHERE id = $2")
                    .bind(s as i64)
                    .bind(k.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let replays = refused
            .iter()
            .filter_map(|&i| rows.get(i))
            .map(|r| DeadRow {
                topic: r.topic.clone(),
                kiosk: Some(r.kiosk.to_string()),
                event_id: Some(r.env.id.to_string()),
                reason: DeadReason::ReplayedId,
                detail: format!("event id reused with a new sequence {}", r.env.seq),
                payload: r.payload.clone(),
            });
        for d in dead.iter().cloned().chain(replays) {
            sqlx::query(
                "INSERT INTO dead_letters (received_ms, topic, kiosk_id, event_id, reason, detail, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(received_ms)
            .bind(&d.topic)
            .bind(d.kiosk.as_deref())
            .bind(d.event_id.as_deref())
            .bind(d.reason.as_str())
            .bind(&d.detail)
            .bind(&d.payload)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(refused)
    }

    async fn send_ack(&self, kiosk: &KioskId, ids: Vec<Uuid>) {
        let n = ids.len() as u64;
        let ack = Ack {
            store: self.store.clone(),
            kiosk: kiosk.clone(),
            ids,
        };
        match Signed::sign(&self.key, Context::Ack, &ack) {
            Ok(s) => {
                let topic = topics::kiosk(&self.store, kiosk, Leaf::Ack);
                if let Err(e) = self
                    .client
                    .publish(topic, QoS::AtLeastOnce, false, s.to_vec())
                    .await
                {
                    tracing::warn!(error = %e, "ack not queued; the kiosk will resend");
                } else {
                    self.metrics.acks_sent.add(n);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot sign ack"),
        }
    }
}

/// MQTT options for the hub's own client.
pub fn mqtt_options(
    store: &StoreId,
    host: &str,
    port: u16,
    keep_alive: Duration,
    max_payload: usize,
) -> MqttOptions {
    let mut o = MqttOptions::new(format!("rxedge-hub-{store}"), host, port);
    o.set_keep_alive(keep_alive);
    o.set_clean_session(true);
    o.set_max_packet_size(max_payload + 4096, max_payload + 4096);
    o.set_inflight(1000);
    let offline = serde_json::to_vec(&Presence {
        online: false,
        at_ms: 0,
    })
    .unwrap_or_default();
    o.set_last_will(LastWill::new(
        topics::hub_state(store),
        offline,
        QoS::AtLeastOnce,
        true,
    ));
    o
}

/// Drive the hub's MQTT connection: forward inbound publishes to ingest, and on
/// every ConnAck subscribe again and republish what kiosks need (rumqttd keeps
/// no retained messages across restarts; rumqttc does not resubscribe).
#[allow(clippy::too_many_arguments)] // one task, wired once in `run`
pub async fn connection(
    mut eventloop: EventLoop,
    client: AsyncClient,
    db: Db,
    store: StoreId,
    key: Arc<SigningKey>,
    tx: mpsc::Sender<Inbound>,
    questions: mpsc::Sender<crate::inventory::availability::Question>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let ev = tokio::select! {
            ev = eventloop.poll() => ev,
            _ = shutdown.changed() => break,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(200);
                metrics.mqtt_connected.set(1);
                tracing::info!("hub connected to broker");
                let (c, d, s, k) = (client.clone(), db.clone(), store.clone(), key.clone());
                tokio::spawn(async move {
                    if let Err(e) = on_connect(&c, &d, &s, &k).await {
                        tracing::error!(error = %e, "resubscribe/republish failed");
                    }
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if topics::parse(&p.topic).is_some_and(|t| t.leaf == Leaf::Query) {
                    // Questions are answered on their own task and never wait
                    // behind event commits; when that task is swamped they are dropped.
                    let q = crate::inventory::availability::Question {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    };
                    if questions.try_send(q).is_err() {
                        tracing::warn!("availability questions backlog full; one dropped");
                    }
                    continue;
                }
                if tx
                    .send(Inbound {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                metrics.mqtt_connected.set(0);
                // Our acks and subscriptions are regenerated; stale replays would only reorder.
                eventloop.pending.clear();
                tracing::warn!(error = %e, "broker connection lost; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {},
                    _ = shutdown.changed() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let offline = serde_json::to_vec(&Presence {
        online: false,
        at_ms: now_ms(),
    })
    .unwrap_or_default();
    let _ = client.try_publish(topics::hub_state(&store), QoS::AtLeastOnce, true, offline);
    let _ = client.try_disconnect();
    // Drive the connection briefly so the offline state and DISCONNECT leave; the
    // Last Will covers the case where they cannot.
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}

async fn on_connect(
    client: &AsyncClient,
    db: &Db,
    store: &StoreId,
    key: &SigningKey,
) -> Result<(), anyhow::Error> {
    for leaf in [Leaf::Events, Leaf::Telemetry, Leaf::State] {
        client
            .subscribe(topics::all_kiosks(store, leaf), QoS::AtLeastOnce)
            .await?;
    }
    client
        .subscribe(topics::all_kiosks(store, Leaf::Query), QoS::AtMostOnce)
        .await?;
    for cfg in devices::all_configs(db).await? {
        publish_config(client, store, key, &cfg).await?;
    }
    let online = serde_json::to_vec(&Presence {
        online: true,
        at_ms: now_ms(),
    })?;
    client
        .publish(topics::hub_state(store), QoS::AtLeastOnce, true, online)
        .await?;
    Ok(())
}

/// Publish a kiosk's config document, signed and retained.
pub async fn publish_config(
    client: &AsyncClient,
    store: &StoreId,
    key: &SigningKey,
    cfg: &rxedge_shared::protocol::KioskConfig,
) -> Result<(), anyhow::Error> {
    let signed = Signed::sign(key, Context::Config, cfg)?;
    client
        .publish(
            topics::kiosk(store, &cfg.kiosk, Leaf::Config),
            QoS::AtLeastOnce,
            true,
            signed.to_vec(),
        )
        .await?;
    Ok(())
}

/// Count of rows in the dead-letter table by reason (for tests and screens).
pub async fn dead_letter_counts(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT reason, COUNT(*) AS n FROM dead_letters GROUP BY reason ORDER BY reason",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("reason")?, r.try_get("n")?)))
        .collect()
}

/// Fridge readings and door changes of a committed telemetry event, in the same
/// transaction, so the cold-chain worker can always rebuild from the store.
async fn store_readings(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kiosk: &KioskId,
    t: &rxedge_shared::protocol::Telemetry,
    historical: bool,
) -> Result<(), sqlx::Error> {
    for r in &t.readings {
        sqlx::query(
            "INSERT INTO fridge_readings (fridge, at_ms, kiosk_id, celsius, historical) \
             VALUES ($1, $2, $3, CAST($4 AS DOUBLE PRECISION), $5) ON CONFLICT (fridge, at_ms) DO NOTHING",
        )
        .bind(&r.sensor)
        .bind(r.at_ms)
        .bind(kiosk.as_str())
        .bind(crate::store::nullable_f64(r.celsius))
        .bind(i64::from(historical))
        .execute(&mut **tx)
        .await?;
    }
    for d in &t.doors {
        sqlx::query(
            "INSERT INTO door_events (fridge, at_ms, kiosk_id, open) VALUES ($1, $2, $3, $4) ON CONFLICT (fridge, at_ms) DO NOTHING",
        )
        .bind(&d.fridge)
        .bind(d.at_ms)
        .bind(kiosk.as_str())
        .bind(i64::from(d.open))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
