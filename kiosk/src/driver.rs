//! The outbox driver: the one task that owns the outbox core, the sled store
//! and the MQTT client. It only moves data: every decision is the core's.

use crate::identity::Identity;
use crate::store::{Counters, OutboxStore, Record, StoreError};
use rumqttc::{AsyncClient, QoS};
use rxedge_shared::clock::{Clock, SystemClock};
use rxedge_shared::outbox::{AdmitError, Meta, Outbox};
use rxedge_shared::protocol::{
    Ack, Body, Class, Envelope, Heartbeat, KioskConfig, OutboxReport, Presence, PROTOCOL_VERSION,
};
use rxedge_shared::sign::{Context, Signed};
use rxedge_shared::topics::{self, Leaf};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

/// What the link task reports.
#[derive(Debug)]
pub enum LinkEvent {
    /// ConnAck received (subscriptions renewed).
    Connected,
    /// The connection dropped.
    Disconnected,
    /// A message on the ack topic.
    Ack(Vec<u8>),
    /// A message on the config topic.
    Config(Vec<u8>),
    /// The hub's retained presence.
    HubState(Vec<u8>),
}

/// An event stored durably.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stored {
    /// Event id.
    pub id: Uuid,
    /// Sequence number.
    pub seq: u64,
}

/// Why an event was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnqueueError {
    /// Outbox bounds (see [`AdmitError`]).
    #[error(transparent)]
    Admit(#[from] AdmitError),
    /// Disk failure; nothing was stored.
    #[error("could not store the event: {0}")]
    Store(String),
    /// The signed event would exceed what the hub accepts in one message.
    #[error("the event is {0} bytes once signed; the limit is {max} bytes", max = EVENT_BYTES_MAX)]
    TooLarge(usize),
    /// Signing failed (a bug).
    #[error("could not sign the event: {0}")]
    Sign(String),
    /// The kiosk is shutting down.
    #[error("the kiosk is shutting down")]
    Closed,
}

/// Largest signed event the kiosk stores: the hub's message limit less room for the frame.
pub const EVENT_BYTES_MAX: usize = rxedge_shared::protocol::MAX_MESSAGE_BYTES - 1024;

/// Requests to the driver.
#[derive(Debug)]
pub struct Enqueue {
    /// Body.
    pub body: Body,
    /// Replayed data.
    pub historical: bool,
    /// Answer once flushed (or refused).
    pub reply: oneshot::Sender<Result<Stored, EnqueueError>>,
}

/// Live status for the screen, the API and `rxedge-kiosk outbox`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Outbox figures.
    pub outbox: OutboxReport,
    /// Connected to the broker.
    pub connected: bool,
    /// The hub says it is online.
    pub hub_online: bool,
    /// The config in force.
    pub config: Option<KioskConfig>,
}

/// Handle for producers of events.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Enqueue>,
    /// Status updates.
    pub status: watch::Receiver<Status>,
    /// Counters for `/metrics`.
    pub counters: Arc<DriverCounters>,
}

/// Kiosk-side counters.
#[derive(Debug, Default)]
pub struct DriverCounters {
    /// Events stored.
    pub enqueued: AtomicU64,
    /// Publishes made (including resends).
    pub published: AtomicU64,
    /// Acks that failed verification.
    pub bad_acks: AtomicU64,
}

impl Handle {
    /// Store an event durably; resolves once it is flushed to disk.
    pub async fn enqueue(&self, body: Body, historical: bool) -> Result<Stored, EnqueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Enqueue {
                body,
                historical,
                reply,
            })
            .await
            .map_err(|_| EnqueueError::Closed)?;
        rx.await.map_err(|_| EnqueueError::Closed)?
    }
}

/// The driver's state.
pub struct Driver {
    id: Identity,
    core: Outbox,
    store: OutboxStore,
    client: AsyncClient,
    connected: bool,
    hub_online: bool,
    config: Option<KioskConfig>,
    status: watch::Sender<Status>,
    counters: Arc<DriverCounters>,
    clock: SystemClock,
}

const BATCH: usize = 1024;

impl Driver {
    /// Restore from the store and build the handle.
    pub fn new(
        id: Identity,
        store: OutboxStore,
        limits: rxedge_shared::outbox::Limits,
        client: AsyncClient,
    ) -> Result<(Self, Handle, mpsc::Receiver<Enqueue>), StoreError> {
        let (recs, c) = store.load()?;
        let core = Outbox::restore(
            limits,
            recs.into_iter().map(|r| r.meta),
            c.last_seq,
            c.acked,
            c.dropped,
        );
        // Start with the last good config, so the kiosk works with the hub unreachable.
        let config = match store.config()? {
            Some(bytes) => Signed::from_slice(&bytes)
                .and_then(|s| s.open::<KioskConfig>(Context::Config, &id.hub_key))
                .map_err(|e| tracing::warn!(error = %e, "stored config ignored"))
                .ok(),
            None => None,
        };
        let (status, status_rx) = watch::channel(Status::default());
        let (tx, rx) = mpsc::channel(8192);
        let counters = Arc::new(DriverCounters::default());
        let d = Self {
            id,
            core,
            store,
            client,
            connected: false,
            hub_online: false,
            config,
            status,
            counters: counters.clone(),
            clock: SystemClock,
        };
        d.publish_status();
        Ok((
            d,
            Handle {
                tx,
                status: status_rx,
                counters,
            },
            rx,
        ))
    }

    fn counters(&self) -> Counters {
        let r = self.core.report(0);
        Counters {
            last_seq: self.core.next_seq() - 1,
            acked: r.acked,
            dropped: r.dropped,
        }
    }

    fn publish_status(&self) {
        self.status.send_replace(Status {
            outbox: self.core.report(self.clock.now_ms()),
            connected: self.connected,
            hub_online: self.hub_online,
            config: self.config.clone(),
        });
    }

    fn heartbeat_every(&self) -> Duration {
        Duration::from_secs(u64::from(
            self.config.as_ref().map_or(10, |c| c.heartbeat_secs.max(1)),
        ))
    }

    /// Run until shutdown. Flushes the store on the way out.
    pub async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Enqueue>,
        mut link: mpsc::Receiver<LinkEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut next_hb = Instant::now() + Duration::from_secs(1);
        loop {
            let wake = self
                .core
                .next_wakeup()
                .map(|w| {
                    Instant::now() + Duration::from_millis((w - self.clock.now_ms()).max(0) as u64)
                })
                .unwrap_or(next_hb)
                .min(next_hb);
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                ev = link.recv() => match ev {
                    Some(ev) => self.on_link(ev).await,
                    None => break,
                },
                cmd = cmds.recv() => match cmd {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < BATCH {
                            match cmds.try_recv() { Ok(c) => batch.push(c), Err(_) => break }
                        }
                        self.enqueue(batch).await;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
            if Instant::now() >= next_hb {
                self.heartbeat().await;
                next_hb = Instant::now() + self.heartbeat_every();
            }
            self.pump().await;
            self.publish_status();
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "final outbox flush failed");
        }
    }

    async fn enqueue(&mut self, batch: Vec<Enqueue>) {
        let now = self.clock.now_ms();
        let mut recs = Vec::with_capacity(batch.len());
        let mut evicted = Vec::new();
        let mut waiting = Vec::with_capacity(batch.len());
        for e in batch {
            let seq = self.core.next_seq();
            let class = e.body.class();
            let env = Envelope {
                v: PROTOCOL_VERSION,
                id: Uuid::now_v7(),
                store: self.id.store.clone(),
                kiosk: self.id.kiosk.clone(),
                seq,
                created_ms: now,
                historical: e.historical,
                body: e.body,
            };
            let msg = match Signed::sign(&self.id.key, Context::Event, &env) {
                Ok(s) => s.to_vec(),
                Err(err) => {
                    let _ = e.reply.send(Err(EnqueueError::Sign(err.to_string())));
                    continue;
                }
            };
            // Refused here, not at the hub: an oversize event would never be acked and
            // would hold back every later event of its class.
            if msg.len() > EVENT_BYTES_MAX {
                let _ = e.reply.send(Err(EnqueueError::TooLarge(msg.len())));
                continue;
            }
            let meta = Meta {
                seq,
                id: env.id,
                class,
                bytes: msg.len() as u64,
                created_ms: now,
            };
            match self.core.admit(meta) {
                Ok(ev) => {
                    evicted.extend(ev);
                    recs.push(Record { meta, msg });
                    waiting.push((e.reply, Stored { id: env.id, seq }));
                }
                Err(err) => {
                    let _ = e.reply.send(Err(err.into()));
                }
            }
        }
        let seqs: Vec<u64> = recs.iter().map(|r| r.meta.seq).collect();
        match self.store.append(&recs, &evicted, self.counters()).await {
            Ok(()) => {
                self.core.mark_durable(&seqs);
                self.counters
                    .enqueued
                    .fetch_add(seqs.len() as u64, Ordering::Relaxed);
                for (reply, stored) in waiting {
                    let _ = reply.send(Ok(stored));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "outbox write failed");
                self.core.forget(&seqs);
                for (reply, _) in waiting {
                    let _ = reply.send(Err(EnqueueError::Store(err.to_string())));
                }
            }
        }
        if !evicted.is_empty() {
            tracing::warn!(
                dropped = evicted.len(),
                "outbox full: oldest telemetry dropped"
            );
        }
    }

    async fn pump(&mut self) {
        let sends = self.core.poll_send(self.clock.now_ms());
        for s in sends {
            let Some(class) = self.core.get(s.seq).map(|m| m.class) else {
                continue;
            };
            let msg = match self.store.msg(s.seq) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    tracing::error!(seq = s.seq, "outbox record missing");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox read failed");
                    continue;
                }
            };
            // The stored message is a complete JSON document; wrap it without re-parsing.
            let mut frame = Vec::with_capacity(msg.len() + 48);
            frame.extend_from_slice(
                format!("{{\"kind\":\"event\",\"after\":{},\"msg\":", s.after).as_bytes(),
            );
            frame.extend_from_slice(&msg);
            frame.push(b'}');
            let leaf = match class {
                Class::Critical => Leaf::Events,
                Class::Telemetry => Leaf::Telemetry,
            };
            let topic = topics::kiosk(&self.id.store, &self.id.kiosk, leaf);
            if let Err(e) = self
                .client
                .publish(topic, QoS::AtLeastOnce, false, frame)
                .await
            {
                // The core resends after its timeout.
                tracing::warn!(error = %e, "publish not queued");
                break;
            }
            self.counters.published.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn relink(&mut self) {
        self.core.set_link(self.connected && self.hub_online);
    }

    async fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Connected => {
                self.connected = true;
                self.relink();
            }
            LinkEvent::Disconnected => {
                self.connected = false;
                // The hub's retained presence will arrive again after the next subscribe.
                self.hub_online = false;
                self.relink();
            }
            LinkEvent::HubState(p) => {
                if let Ok(p) = serde_json::from_slice::<Presence>(&p) {
                    if p.online != self.hub_online {
                        tracing::info!(online = p.online, "hub presence");
                    }
                    self.hub_online = p.online;
                    self.relink();
                }
            }
            LinkEvent::Ack(bytes) => self.on_ack(&bytes),
            LinkEvent::Config(bytes) => self.on_config(&bytes).await,
        }
    }

    fn on_ack(&mut self, bytes: &[u8]) {
        let ack = match Signed::from_slice(bytes)
            .and_then(|s| s.open::<Ack>(Context::Ack, &self.id.hub_key))
        {
            Ok(a) if a.kiosk == self.id.kiosk && a.store == self.id.store => a,
            Ok(_) | Err(_) => {
                // An ack we cannot trust deletes nothing.
                self.counters.bad_acks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("ignored an ack that does not verify");
                return;
            }
        };
        let seqs: Vec<u64> = ack
            .ids
            .iter()
            .filter_map(|id| self.core.on_ack(id))
            .collect();
        if !seqs.is_empty() {
            if let Err(e) = self.store.remove_acked(&seqs, self.counters()) {
                tracing::error!(error = %e, "could not delete acked events; they will be resent and deduplicated");
            }
        }
    }

    async fn on_config(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let cfg = match Signed::from_slice(bytes)
            .and_then(|s| s.open::<KioskConfig>(Context::Config, &self.id.hub_key))
        {
            Ok(c) if c.kiosk == self.id.kiosk && c.store == self.id.store => c,
            _ => {
                tracing::warn!("ignored a config document that does not verify or is not ours");
                return;
            }
        };
        if self
            .config
            .as_ref()
            .is_some_and(|c| c.version >= cfg.version)
        {
            return;
        }
        if let Err(e) = self.store.set_config(bytes).await {
            tracing::error!(error = %e, "could not persist config; applying it for this run only");
        }
        tracing::info!(version = cfg.version, "applied hub config");
        self.config = Some(cfg);
        // Report the new version at once rather than at the next heartbeat.
        self.heartbeat().await;
    }

    async fn heartbeat(&mut self) {
        if !self.connected {
            return;
        }
        let hb = Heartbeat {
            store: self.id.store.clone(),
            kiosk: self.id.kiosk.clone(),
            sent_ms: self.clock.now_ms(),
            outbox: self.core.report(self.clock.now_ms()),
            config_version: self.config.as_ref().map(|c| c.version),
            software: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let Ok(signed) = Signed::sign(&self.id.key, Context::Heartbeat, &hb) else {
            return;
        };
        let mut frame = Vec::new();
        frame.extend_from_slice(b"{\"kind\":\"heartbeat\",\"after\":0,\"msg\":");
        frame.extend_from_slice(&signed.to_vec());
        frame.push(b'}');
        let topic = topics::kiosk(&self.id.store, &self.id.kiosk, Leaf::Telemetry);
        let _ = self
            .client
            .try_publish(topic, QoS::AtMostOnce, false, frame);
    }
}
