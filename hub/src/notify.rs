//! Patient notifications: opt-in per patient, sent when an order is ready
//! or when the pharmacist asks for a word. E-mail goes over SMTP. SMS and
//! WhatsApp go through the pharmacy's gateway, as a JSON webhook.
//!
//! Messages wait in a durable outbox (the `notifications` table). A worker
//! sends what is due. A failed send is retried with growing waits
//! ([`rxedge_shared::notify::retry_after_ms`]) and, once the attempts are
//! spent, stays failed with its error on the order page for a person to act
//! on.

use crate::config::Notify as Settings;
use crate::store::Db;
use crate::web::FeedItem;
use rxedge_shared::notify::{self as rules, Channel, Kind};
use serde::Serialize;
use sqlx::Row as _;
use std::sync::Arc;

/// How long a worker holds a message it is sending (another hub on the same
/// database leaves it alone meanwhile).
const LEASE_MS: i64 = 60_000;

/// One notification as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// Id.
    pub id: i64,
    /// `ready` or `needs_word`.
    pub kind: String,
    /// `email`, `sms`, `whatsapp`.
    pub channel: String,
    /// Address or number.
    pub recipient: String,
    /// The text sent.
    pub body: String,
    /// `pending`, `sent`, `failed`.
    pub state: String,
    /// Sends tried.
    pub attempts: i64,
    /// Next try (pending).
    pub next_at_ms: i64,
    /// Why the last try failed.
    pub last_error: String,
    /// Who asked.
    pub actor: String,
    /// Created.
    pub created_ms: i64,
    /// Sent.
    pub sent_ms: Option<i64>,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Notification, sqlx::Error> {
    Ok(Notification {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        channel: r.try_get("channel")?,
        recipient: r.try_get("recipient")?,
        body: r.try_get("body")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_at_ms: r.try_get("next_at_ms")?,
        last_error: r.try_get("last_error")?,
        actor: r.try_get("actor")?,
        created_ms: r.try_get("created_ms")?,
        sent_ms: r.try_get("sent_ms")?,
    })
}

/// An order's notifications, oldest first.
pub async fn for_order(db: &Db, order: &str) -> Result<Vec<Notification>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM notifications WHERE order_id = $1 ORDER BY id")
        .bind(order)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Queue a message to the order's patient, if the patient opted in.
/// Returns why nothing was queued otherwise, in words.
pub async fn enqueue(
    db: &Db,
    order: &crate::orders::Order,
    kind: Kind,
    store_name: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Result<i64, String>, sqlx::Error> {
    let Some(pid) = &order.patient_id else {
        return Ok(Err("the order is not filed under a patient".into()));
    };
    let Some(p) = crate::patients::resolve(db, pid).await? else {
        return Ok(Err("the patient record is missing".into()));
    };
    let Some(channel) = Channel::parse(&p.notify_channel) else {
        return Ok(Err(format!("{} has not asked to be notified", p.name)));
    };
    let recipient = match channel {
        Channel::Email => &p.email,
        Channel::Sms | Channel::Whatsapp => &p.phone,
    };
    if recipient.trim().is_empty() {
        return Ok(Err(format!(
            "{} chose {} but has no {} recorded",
            p.name,
            channel.as_str(),
            if channel == Channel::Email {
                "e-mail address"
            } else {
                "phone number"
            }
        )));
    }
    let (subject, body) = rules::message(kind, &p.language, store_name, &order.reference);
    let id: i64 = sqlx::query(
        "INSERT INTO notifications (order_id, patient_id, kind, channel, recipient, subject, body, state, attempts, next_at_ms, actor, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $10) RETURNING id",
    )
    .bind(&order.id)
    .bind(&p.id)
    .bind(kind.as_str())
    .bind(channel.as_str())
    .bind(recipient.trim())
    .bind(&subject)
    .bind(&body)
    .bind(now_ms)
    .bind(actor)
    .bind(now_ms)
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    Ok(Ok(id))
}

async fn send(
    s: &Settings,
    n: &Notification,
    subject: &str,
    reference: &str,
) -> Result<String, String> {
    match Channel::parse(&n.channel) {
        Some(Channel::Email) => {
            if s.smtp_url.is_empty() {
                return Err("no SMTP relay configured ([notify] smtp_url)".into());
            }
            crate::outbound::email(
                &s.smtp_url,
                &s.email_from,
                std::slice::from_ref(&n.recipient),
                subject,
                &n.body,
            )
            .await
        }
        Some(c) => {
            if s.webhook_url.is_empty() {
                return Err("no SMS/WhatsApp gateway configured ([notify] webhook_url)".into());
            }
            let body = serde_json::json!({
                "channel": c.as_str(),
                "to": n.recipient,
                "text": n.body,
                "order_reference": reference,
                "kind": n.kind,
                "notification": n.id,
            });
            crate::outbound::webhook(&s.webhook_url, &body).await
        }
        None => Err(format!("unknown channel {}", n.channel)),
    }
}

/// Send what is due now. Returns how many notifications changed.
pub async fn run_due(db: &Db, s: &Settings, now_ms: i64) -> Result<usize, sqlx::Error> {
    let due = sqlx::query(
        "SELECT n.*, o.reference FROM notifications n JOIN orders o ON o.id = n.order_id \
         WHERE n.state = 'pending' AND n.next_at_ms <= $1 ORDER BY n.next_at_ms LIMIT 20",
    )
    .bind(now_ms)
    .fetch_all(&db.pool)
    .await?;
    let mut changed = 0;
    for r in &due {
        let n = from_row(r)?;
        let reference: String = r.try_get("reference")?;
        let subject: String = r.try_get("subject")?;
        // Take the lease; if another worker took it first, leave it.
        let took = sqlx::query("UPDATE notifications SET next_at_ms = $1 WHERE id = $2 AND state = 'pending' AND next_at_ms = $3")
            .bind(now_ms + LEASE_MS)
            .bind(n.id)
            .bind(n.next_at_ms)
            .execute(&db.pool)
            .await?
            .rows_affected();
        if took != 1 {
            continue;
        }
        let attempts = n.attempts + 1;
        match send(s, &n, &subject, &reference).await {
            Ok(said) => {
                tracing::info!(notification = n.id, %said, "patient notified");
                sqlx::query("UPDATE notifications SET state = 'sent', attempts = $1, sent_ms = $2, last_error = '' WHERE id = $3")
                    .bind(attempts)
                    .bind(now_ms)
                    .bind(n.id)
                    .execute(&db.pool)
                    .await?;
            }
            Err(e) => {
                let tries = u32::try_from(attempts).unwrap_or(u32::MAX);
                let next = rules::retry_after_ms(tries, s.retry_base_secs, s.max_attempts);
                tracing::warn!(notification = n.id, attempts, error = %e, retry = next.is_some(), "patient notification failed");
                sqlx::query("UPDATE notifications SET state = $1, attempts = $2, next_at_ms = $3, last_error = $4 WHERE id = $5")
                    .bind(if next.is_some() { "pending" } else { "failed" })
                    .bind(attempts)
                    .bind(now_ms + next.unwrap_or(0))
                    .bind(&e)
                    .bind(n.id)
                    .execute(&db.pool)
                    .await?;
            }
        }
        changed += 1;
    }
    Ok(changed)
}

/// Try a failed notification again now.
pub async fn retry(db: &Db, id: i64, now_ms: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("UPDATE notifications SET state = 'pending', next_at_ms = $1 WHERE id = $2 AND state = 'failed'")
        .bind(now_ms)
        .bind(id)
        .execute(&db.pool)
        .await?
        .rows_affected()
        == 1)
}

/// The worker: sends what is due whenever woken (a new message) and every
/// second; tells the screens when a status changed.
pub async fn worker(
    db: Db,
    s: Settings,
    wake: Arc<tokio::sync::Notify>,
    feed: tokio::sync::broadcast::Sender<FeedItem>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match run_due(&db, &s, rxedge_shared::clock::system_now_ms()).await {
            Ok(0) => {}
            Ok(_) => {
                let _ = feed.send(FeedItem::Order);
            }
            Err(e) => tracing::error!(error = %e, "notification worker"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
    }
}
