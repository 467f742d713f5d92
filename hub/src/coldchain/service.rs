//! The hub's authoritative cold-chain record: one engine per fridge fed by
//! committed telemetry, alarms and their audit trail in the store, stock put
//! on hold when an excursion becomes an alarm, escalation and reminders.
//!
//! Readings are committed by ingest in the same transaction as their event, so
//! this worker can always be rebuilt: at start it replays the stored readings of
//! the last `replay_hours`. Alarm ids are deterministic (`fridge:rule:onset`), so
//! replaying raises nothing twice.

use crate::config::Coldchain as Settings;
use crate::devices;
use crate::store::Db;
use crate::web::FeedItem;
use rxedge_shared::coldchain::{Change, Engine, FridgeRules, Input, Transition};
use rxedge_shared::protocol::Telemetry;
use rxedge_shared::KioskId;
use sqlx::Row as _;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch, RwLock};

/// What the worker is told.
#[derive(Debug)]
pub enum Msg {
    /// Telemetry that ingest has committed.
    Telemetry {
        /// From which kiosk.
        kiosk: KioskId,
        /// The batch.
        telemetry: Telemetry,
    },
    /// A kiosk's config changed: reload its fridge rules.
    RulesChanged,
    /// A person reset a cumulative alarm's budget.
    Reset {
        /// Fridge.
        fridge: String,
        /// Rule id.
        rule: String,
        /// When.
        at_ms: i64,
        /// Done.
        reply: oneshot::Sender<()>,
    },
}

/// What the screens read about a fridge, kept current by the worker.
#[derive(Debug, Clone, Default)]
pub struct FridgeView {
    /// Kiosk that reports it.
    pub kiosk: String,
    /// Engine snapshot.
    pub snapshot: Option<rxedge_shared::coldchain::engine::Snapshot>,
    /// Rules in force.
    pub rules: Option<FridgeRules>,
}

/// Shared read-only view for the web screens.
pub type Views = Arc<RwLock<HashMap<String, FridgeView>>>;

struct Fridge {
    kiosk: String,
    engine: Engine,
}

/// The worker.
pub struct ColdChain {
    db: Db,
    settings: Settings,
    feed: broadcast::Sender<FeedItem>,
    fridges: HashMap<String, Fridge>,
    rules: HashMap<String, FridgeRules>,
    views: Views,
}

use rxedge_shared::clock::system_now_ms as now_ms;

impl ColdChain {
    /// A worker over `db`.
    pub fn new(
        db: Db,
        settings: Settings,
        feed: broadcast::Sender<FeedItem>,
        views: Views,
    ) -> Self {
        Self {
            db,
            settings,
            feed,
            fridges: HashMap::new(),
            rules: HashMap::new(),
            views,
        }
    }

    async fn load_rules(&mut self) -> Result<(), sqlx::Error> {
        let mut rules = HashMap::new();
        for k in devices::list(&self.db)
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
        {
            if let Some(cfg) = devices::config(&self.db, &k.id)
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
            {
                for f in cfg.fridges {
                    rules.insert(f.fridge.clone(), f);
                }
            }
        }
        self.rules = rules;
        Ok(())
    }

    fn rules_for(&self, fridge: &str) -> FridgeRules {
        self.rules
            .get(fridge)
            .cloned()
            .unwrap_or_else(|| FridgeRules::standard_2_8(fridge))
    }

    fn engine_for(&mut self, fridge: &str, kiosk: &str) -> &mut Fridge {
        let rules = self.rules_for(fridge);
        let reorder = i64::from(self.settings.reorder_secs) * 1000;
        self.fridges
            .entry(fridge.to_owned())
            .or_insert_with(|| Fridge {
                kiosk: kiosk.to_owned(),
                engine: Engine::new(rules, reorder),
            })
    }

    /// Rebuild every engine from stored readings and door events.
    async fn replay(&mut self) -> Result<(), sqlx::Error> {
        self.fridges.clear();
        let since = now_ms() - i64::from(self.settings.replay_hours) * 3_600_000;
        let readings = sqlx::query(
            "SELECT fridge, kiosk_id, at_ms, celsius, 1 AS r FROM fridge_readings WHERE at_ms >= $1 \
             UNION ALL SELECT fridge, kiosk_id, at_ms, NULL, 0 FROM door_events WHERE at_ms >= $2 \
             ORDER BY at_ms",
        )
        .bind(since)
        .bind(since)
        .fetch_all(&self.db.pool)
        .await?;
        let doors = sqlx::query("SELECT fridge, at_ms, open FROM door_events WHERE at_ms >= $1")
            .bind(since)
            .fetch_all(&self.db.pool)
            .await?;
        let door_state: HashMap<(String, i64), bool> = doors
            .iter()
            .filter_map(|r| {
                Some((
                    (r.try_get("fridge").ok()?, r.try_get("at_ms").ok()?),
                    r.try_get::<i64, _>("open").ok()? != 0,
                ))
            })
            .collect();
        let mut changes: Vec<(String, String, Change)> = Vec::new();
        for r in readings {
            let fridge: String = r.try_get("fridge")?;
            let kiosk: String = r.try_get("kiosk_id")?;
            let at_ms: i64 = r.try_get("at_ms")?;
            let input = if r.try_get::<i64, _>("r")? == 1 {
                Input::Reading {
                    at_ms,
                    celsius: r.try_get::<Option<f64>, _>("celsius")?,
                }
            } else {
                Input::Door {
                    at_ms,
                    open: door_state
                        .get(&(fridge.clone(), at_ms))
                        .copied()
                        .unwrap_or(false),
                }
            };
            let f = self.engine_for(&fridge, &kiosk);
            for c in f.engine.push(input) {
                changes.push((fridge.clone(), kiosk.clone(), c));
            }
        }
        for (fridge, kiosk, c) in changes {
            self.record(&fridge, &kiosk, &c).await?;
        }
        self.publish_views().await;
        Ok(())
    }

    async fn publish_views(&self) {
        let mut v = self.views.write().await;
        v.clear();
        for (id, f) in &self.fridges {
            v.insert(
                id.clone(),
                FridgeView {
                    kiosk: f.kiosk.clone(),
                    snapshot: Some(f.engine.snapshot()),
                    rules: Some(f.engine.rules().clone()),
                },
            );
        }
        for (id, r) in &self.rules {
            v.entry(id.clone()).or_insert_with(|| FridgeView {
                kiosk: String::new(),
                snapshot: None,
                rules: Some(r.clone()),
            });
        }
    }

    async fn on_telemetry(&mut self, kiosk: &KioskId, t: Telemetry) -> Result<(), sqlx::Error> {
        // Merge readings and door changes per fridge in time order.
        let mut per: HashMap<String, Vec<Input>> = HashMap::new();
        for r in &t.readings {
            per.entry(r.sensor.clone())
                .or_default()
                .push(Input::Reading {
                    at_ms: r.at_ms,
                    celsius: r.celsius,
                });
        }
        for d in &t.doors {
            per.entry(d.fridge.clone()).or_default().push(Input::Door {
                at_ms: d.at_ms,
                open: d.open,
            });
        }
        if let Some(w) = t.as_of_ms {
            // The watermark covers every fridge this kiosk reports.
            let mine: Vec<String> = self
                .fridges
                .iter()
                .filter(|(_, f)| f.kiosk == kiosk.as_str())
                .map(|(id, _)| id.clone())
                .collect();
            for id in mine {
                per.entry(id).or_default();
            }
            for v in per.values_mut() {
                v.push(Input::Watermark { at_ms: w });
            }
        }
        let mut changes = Vec::new();
        for (fridge, mut inputs) in per {
            inputs.sort_by_key(|i| match *i {
                Input::Door { at_ms, .. } => (at_ms, 0),
                Input::Reading { at_ms, .. } => (at_ms, 1),
                Input::Watermark { at_ms } => (at_ms, 2),
            });
            let f = self.engine_for(&fridge, kiosk.as_str());
            for i in inputs {
                for c in f.engine.push(i) {
                    changes.push((fridge.clone(), c));
                }
            }
        }
        for (fridge, c) in &changes {
            self.record(fridge, kiosk.as_str(), c).await?;
        }
        self.publish_views().await;
        let _ = self.feed.send(FeedItem::Coldchain {
            fridges: t.readings.iter().map(|r| r.sensor.clone()).collect(),
        });
        Ok(())
    }

    /// Store one alarm change, idempotently, with its audit line and any hold.
    async fn record(&self, fridge: &str, kiosk: &str, c: &Change) -> Result<(), sqlx::Error> {
        let id = c.alarm_id(fridge);
        let now = now_ms();
        match c.transition {
            Transition::Raised { start_ms, onset_ms } => {
                let rules = self
                    .fridges
                    .get(fridge)
                    .map(|f| serde_json::to_string(f.engine.rules()).unwrap_or_default())
                    .unwrap_or_default();
                let mut tx = self.db.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO alarms (id, fridge, kiosk_id, rule, kind, state, start_ms, onset_ms, rules_json, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(fridge)
                .bind(kiosk)
                .bind(&c.key.rule)
                .bind(c.key.kind.as_str())
                .bind(start_ms)
                .bind(onset_ms)
                .bind(&rules)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    // Seen before (replay after a restart): nothing new.
                    return Ok(());
                }
                log(
                    &mut tx,
                    &id,
                    now,
                    "raised",
                    "engine",
                    &format!("{} on {fridge}", c.key.kind.as_str()),
                )
                .await?;
                if c.key.kind.is_excursion() {
                    let held = sqlx::query(
                        "UPDATE lots SET status = 'on_hold', hold_reason = 'cold_chain_excursion', hold_alarm_id = $1, hold_ms = $2 \
                         WHERE location_id = $3 AND status = 'available'",
                    )
                    .bind(&id)
                    .bind(now)
                    .bind(fridge)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if held > 0 {
                        log(
                            &mut tx,
                            &id,
                            now,
                            "stock_held",
                            "engine",
                            &format!("{held} lot(s) in {fridge} put on hold"),
                        )
                        .await?;
                    }
                }
                tx.commit().await?;
                if c.key.kind.is_excursion() {
                    let _ = self.feed.send(FeedItem::Stock);
                }
                tracing::warn!(alarm = %id, kind = c.key.kind.as_str(), "cold-chain alarm raised");
            }
            Transition::Cleared {
                onset_ms: _,
                end_ms,
                peak_c,
            } => {
                let mut tx = self.db.pool.begin().await?;
                let n = sqlx::query(
                    "UPDATE alarms SET end_ms = $1, peak_c = CAST($2 AS DOUBLE PRECISION), \
                     state = CASE WHEN state = 'acknowledged' THEN 'cleared' ELSE state END \
                     WHERE id = $3 AND end_ms IS NULL",
                )
                .bind(end_ms)
                .bind(crate::store::nullable_f64(peak_c))
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n > 0 {
                    log(
                        &mut tx,
                        &id,
                        now,
                        "condition_ended",
                        "engine",
                        &match peak_c {
                            Some(p) => format!("peak {p:.1} °C"),
                            None => String::new(),
                        },
                    )
                    .await?;
                }
                tx.commit().await?;
            }
        }
        let _ = self.feed.send(FeedItem::Alarm { id });
        Ok(())
    }

    /// Run until the channel closes or `shutdown` fires.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>, mut shutdown: watch::Receiver<bool>) {
        if let Err(e) = self.load_rules().await {
            tracing::error!(error = %e, "cold chain: loading rules failed");
        }
        if let Err(e) = self.replay().await {
            tracing::error!(error = %e, "cold chain: replay failed");
        }
        // Webhooks can be slow: escalation runs beside the worker, never inside it.
        let esc = tokio::spawn(escalation_loop(
            self.db.clone(),
            self.settings.clone(),
            self.feed.clone(),
            shutdown.clone(),
        ));
        loop {
            tokio::select! {
                m = rx.recv() => {
                    let Some(m) = m else { break };
                    let r = match m {
                        Msg::Telemetry { kiosk, telemetry } => self.on_telemetry(&kiosk, telemetry).await,
                        Msg::RulesChanged => match self.load_rules().await {
                            Ok(()) => self.replay().await,
                            Err(e) => Err(e),
                        },
                        Msg::Reset { fridge, rule, at_ms, reply } => {
                            let changes = self
                                .fridges
                                .get_mut(&fridge)
                                .map(|f| f.engine.reset(&rule, at_ms))
                                .unwrap_or_default();
                            let kiosk = self.fridges.get(&fridge).map(|f| f.kiosk.clone()).unwrap_or_default();
                            let mut r = Ok(());
                            for c in &changes {
                                if let Err(e) = self.record(&fridge, &kiosk, c).await {
                                    r = Err(e);
                                }
                            }
                            let _ = reply.send(());
                            r
                        }
                    };
                    if let Err(e) = r {
                        tracing::error!(error = %e, "cold chain: storing alarm state failed");
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        let _ = esc.await;
    }
}

async fn escalation_loop(
    db: Db,
    settings: Settings,
    feed: broadcast::Sender<FeedItem>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = escalate(&db, &settings, &feed).await {
                    tracing::error!(error = %e, "cold chain: escalation failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// One line of an alarm's audit trail.
pub async fn log(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    alarm: &str,
    at_ms: i64,
    action: &str,
    actor: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO alarm_log (alarm_id, at_ms, action, actor, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(alarm)
        .bind(at_ms)
        .bind(action)
        .bind(actor)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Escalate unacknowledged alarms and remind about sensors that stay offline.
async fn escalate(
    db: &Db,
    s: &Settings,
    feed: &broadcast::Sender<FeedItem>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let late = now - i64::from(s.escalate_after_secs) * 1000;
    let due = sqlx::query(
        "SELECT id, fridge, kind, onset_ms FROM alarms WHERE ack_ms IS NULL AND escalated_ms IS NULL AND onset_ms <= $1",
    )
    .bind(late)
    .fetch_all(&db.pool)
    .await?;
    for r in due {
        let id: String = r.try_get("id")?;
        let body = serde_json::json!({
            "event": "alarm_escalated",
            "alarm": id,
            "fridge": r.try_get::<String, _>("fridge")?,
            "kind": r.try_get::<String, _>("kind")?,
            "onset_ms": r.try_get::<i64, _>("onset_ms")?,
            "unacknowledged_secs": s.escalate_after_secs,
        });
        told(db, s, feed, id, &body, Told::Escalated, now).await?;
    }
    let every = i64::from(s.remind_every_secs.max(1)) * 1000;
    let offline = sqlx::query(
        "SELECT id, fridge FROM alarms WHERE kind = 'sensor_offline' AND end_ms IS NULL \
         AND COALESCE(notified_ms, onset_ms) <= $1",
    )
    .bind(now - every)
    .fetch_all(&db.pool)
    .await?;
    for r in offline {
        let id: String = r.try_get("id")?;
        let body = serde_json::json!({
            "event": "sensor_still_offline",
            "alarm": id,
            "fridge": r.try_get::<String, _>("fridge")?,
        });
        told(db, s, feed, id, &body, Told::Reminded, now).await?;
    }
    Ok(())
}

enum Told {
    Escalated,
    Reminded,
}

/// Notify, then record that we did (and how it went) in the alarm and its trail.
async fn told(
    db: &Db,
    s: &Settings,
    feed: &broadcast::Sender<FeedItem>,
    id: String,
    body: &serde_json::Value,
    what: Told,
    now: i64,
) -> Result<(), sqlx::Error> {
    let outcome = notify(s, body).await;
    let (sql, action) = match what {
        Told::Escalated => (
            "UPDATE alarms SET escalated_ms = $1 WHERE id = $2",
            "escalated",
        ),
        Told::Reminded => (
            "UPDATE alarms SET notified_ms = $1 WHERE id = $2",
            "reminder",
        ),
    };
    let mut tx = db.pool.begin().await?;
    sqlx::query(sql)
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    log(&mut tx, &id, now, action, "system", &outcome).await?;
    tx.commit().await?;
    let _ = feed.send(FeedItem::Alarm { id });
    Ok(())
}

/// Tell people: webhook and e-mail, whichever are configured. Says what happened,
/// for the audit trail.
async fn notify(s: &Settings, body: &serde_json::Value) -> String {
    let mut said = Vec::new();
    if s.webhook_url.is_empty() && s.smtp_url.is_empty() {
        return "no webhook or e-mail configured: shown on screen".into();
    }
    if !s.webhook_url.is_empty() {
        said.push(post_webhook(&s.webhook_url, body).await);
    }
    if !s.smtp_url.is_empty() && !s.email_to.is_empty() {
        said.push(send_email(s, body).await);
    }
    said.join("; ")
}

async fn send_email(s: &Settings, body: &serde_json::Value) -> String {
    let what = body["event"].as_str().unwrap_or("alarm");
    let fridge = body["fridge"].as_str().unwrap_or("?");
    let subject = match what {
        "alarm_escalated" => format!(
            "Cold-chain alarm not acknowledged: {} on {fridge}",
            body["kind"].as_str().unwrap_or("alarm")
        ),
        _ => format!("Fridge sensor still offline: {fridge}"),
    };
    let text = format!(
        "{subject}\n\nAlarm {}\nPlease check the fridge and acknowledge the alarm on the hub's Alarms screen.\n\n{}",
        body["alarm"].as_str().unwrap_or("?"),
        serde_json::to_string_pretty(body).unwrap_or_default()
    );
    crate::outbound::email(&s.smtp_url, &s.email_from, &s.email_to, &subject, &text)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cold-chain e-mail failed");
            e
        })
}

async fn post_webhook(url: &str, body: &serde_json::Value) -> String {
    crate::outbound::webhook(url, body)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cold-chain webhook failed");
            e
        })
}
