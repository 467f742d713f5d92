//! "Is it in stock, and what does it cost?" asked of the hub over MQTT
//! request/response, with the last answers kept for when the hub is away.
//!
//! A question goes out signed on the kiosk's `query` topic at QoS 0; the
//! hub's signed answer comes back on `answer`. Answers are verified with the
//! hub's key and cached in sled by query text. Offline, or when the hub does
//! not answer in time, the cached answer is returned marked `cached` with its
//! age, and answers older than the cache limit are not offered at all.

use crate::identity::Identity;
use rumqttc::{AsyncClient, QoS};
use rxedge_shared::protocol::{AvailabilityAnswer, AvailabilityQuery};
use rxedge_shared::sign::{Context, Signed};
use rxedge_shared::topics::{self, Leaf};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

/// What the kiosk screen gets.
#[derive(Debug, Clone, Serialize)]
pub struct Availability {
    /// The hub's answer (live or cached).
    pub answer: Option<AvailabilityAnswer>,
    /// True when this is a kept answer, not a fresh one.
    pub cached: bool,
    /// Age of the answer in seconds (0 for live).
    pub age_secs: i64,
}

/// The asking side, shared by the link (answers) and the screen (questions).
#[derive(Clone)]
pub struct Asker {
    inner: Arc<Inner>,
}

struct Inner {
    client: AsyncClient,
    id: Identity,
    cache: sled::Tree,
    max_age_ms: i64,
    connected: AtomicBool,
    waiting: Mutex<HashMap<Uuid, oneshot::Sender<AvailabilityAnswer>>>,
}

fn cache_key(q: &str, order: Option<&str>) -> Vec<u8> {
    match order {
        Some(o) => format!("order:{o}").into_bytes(),
        None => q.trim().to_lowercase().into_bytes(),
    }
}

impl Asker {
    /// An asker publishing through `client`, caching in `cache`.
    pub fn new(client: AsyncClient, id: Identity, cache: sled::Tree, max_age: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                id,
                cache,
                max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
                connected: AtomicBool::new(false),
                waiting: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The topic answers arrive on (the link subscribes to it on every ConnAck).
    pub fn answer_topic(&self) -> String {
        topics::kiosk(&self.inner.id.store, &self.inner.id.kiosk, Leaf::Answer)
    }

    /// The link reports the broker connection.
    pub fn set_connected(&self, up: bool) {
        self.inner.connected.store(up, Ordering::Relaxed);
    }

    /// An answer arrived: verify, cache, hand to whoever waits for it.
    pub fn on_answer(&self, payload: &[u8]) {
        let ans: AvailabilityAnswer = match Signed::from_slice(payload)
            .and_then(|s| s.open(Context::Answer, &self.inner.id.hub_key))
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "availability answer refused");
                return;
            }
        };
        if let Ok(bytes) = serde_json::to_vec(&ans) {
            // A cache: losing the newest entry in a crash costs nothing, so no flush.
            let order = ans.order.as_ref().map(|o| o.id.as_str());
            if let Err(e) = self.inner.cache.insert(cache_key(&ans.q, order), bytes) {
                tracing::warn!(error = %e, "availability cache write failed");
            }
        }
        let waiter = self
            .inner
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&ans.id));
        if let Some(tx) = waiter {
            let _ = tx.send(ans);
        }
    }

    fn cached(&self, q: &str, order: Option<&str>, now_ms: i64) -> Availability {
        let hit = self
            .inner
            .cache
            .get(cache_key(q, order))
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<AvailabilityAnswer>(&b).ok())
            .filter(|a| now_ms - a.as_of_ms <= self.inner.max_age_ms);
        Availability {
            age_secs: hit.as_ref().map_or(0, |a| (now_ms - a.as_of_ms) / 1000),
            answer: hit,
            cached: true,
        }
    }

    /// Ask the hub, waiting up to `wait`; fall back to the cache.
    pub async fn ask(&self, q: &str, wait: Duration) -> Availability {
        self.ask_about(q, None, wait).await
    }

    /// Ask the hub for an order's status (from a verified pickup ticket).
    pub async fn ask_order(&self, order: &str, wait: Duration) -> Availability {
        self.ask_about("", Some(order), wait).await
    }

    async fn ask_about(&self, q: &str, order: Option<&str>, wait: Duration) -> Availability {
        let now = rxedge_shared::clock::system_now_ms();
        let q: String = q.trim().chars().take(100).collect();
        if (q.is_empty() && order.is_none()) || !self.inner.connected.load(Ordering::Relaxed) {
            return self.cached(&q, order, now);
        }
        let query = AvailabilityQuery {
            id: Uuid::now_v7(),
            q: q.clone(),
            sent_ms: now,
            order: order.map(str::to_owned),
        };
        let Ok(doc) = Signed::sign(&self.inner.id.key, Context::Query, &query) else {
            return self.cached(&q, order, now);
        };
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.inner.waiting.lock() {
            w.insert(query.id, tx);
        }
        let topic = topics::kiosk(&self.inner.id.store, &self.inner.id.kiosk, Leaf::Query);
        let sent = self
            .inner
            .client
            .try_publish(topic, QoS::AtMostOnce, false, doc.to_vec())
            .is_ok();
        let got = if sent {
            tokio::time::timeout(wait, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        if let Ok(mut w) = self.inner.waiting.lock() {
            w.remove(&query.id);
        }
        match got {
            Some(a) => Availability {
                answer: Some(a),
                cached: false,
                age_secs: 0,
            },
            None => self.cached(&q, order, rxedge_shared::clock::system_now_ms()),
        }
    }
}
