//! "Is it in stock and what does it cost?": answered for the web and for
//! kiosks over MQTT request/response.
//!
//! A kiosk publishes a signed [`AvailabilityQuery`] on its `query` topic; the
//! hub verifies it with the kiosk's enrolled key, looks the stock up and
//! publishes a signed [`AvailabilityAnswer`] on that kiosk's `answer` topic.
//! Questions from unknown kiosks or with bad signatures are dropped (logged).

use crate::catalog::{self, Storage};
use crate::devices;
use crate::store::Db;
use chrono::NaiveDate;
use rumqttc::{AsyncClient, QoS};
use rxedge_shared::protocol::{
    AvailabilityAnswer, AvailabilityItem, AvailabilityQuery, OrderStatusInfo,
};
use rxedge_shared::sign::{Context, Signed, SigningKey};
use rxedge_shared::topics::{self, Leaf};
use rxedge_shared::StoreId;
use sqlx::Row as _;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Longest query text accepted.
const MAX_QUERY: usize = 100;

async fn in_stock(db: &Db, gtin: &str, today: NaiveDate) -> Result<i64, sqlx::Error> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(quantity - reserved), 0) AS BIGINT) FROM lots \
         WHERE gtin = $1 AND status = 'available' AND expiry >= $2",
    )
    .bind(gtin)
    .bind(today.to_string())
    .fetch_one(&db.pool)
    .await?;
    r.try_get(0)
}

/// Products matching `q` (GTIN, name or ingredient) with the packs that can be
/// handed out today, and generic equivalents that are in stock.
pub async fn lookup(
    db: &Db,
    q: &str,
    today: NaiveDate,
) -> Result<Vec<AvailabilityItem>, sqlx::Error> {
    let q: String = q.trim().chars().take(MAX_QUERY).collect();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for p in catalog::search(db, &q, 10).await? {
        let mut generics = Vec::new();
        for g in &p.generics {
            if let Some(gp) = catalog::get(db, g).await? {
                let n = in_stock(db, &gp.gtin, today).await?;
                if n > 0 {
                    generics.push((gp.gtin, gp.name, n));
                }
            }
        }
        out.push(AvailabilityItem {
            in_stock: in_stock(db, &p.gtin, today).await?,
            gtin: p.gtin,
            name: p.name,
            strength: p.strength,
            form: p.form,
            pack_size: p.pack_size,
            price_minor: p.price_minor,
            fridge: p.storage == Storage::Fridge,
            generics,
        });
    }
    Ok(out)
}

/// What a patient may know about an order.
pub async fn order_status(db: &Db, id: &str) -> Result<Option<OrderStatusInfo>, sqlx::Error> {
    Ok(crate::orders::get(db, id).await?.map(|o| OrderStatusInfo {
        status: rxedge_shared::orders::OrderState::parse(&o.state)
            .map_or(rxedge_shared::orders::PatientStatus::SeePharmacist, |s| {
                s.patient_status()
            }),
        id: o.id,
        reference: o.reference,
    }))
}

/// One question as it arrived.
#[derive(Debug)]
pub struct Question {
    /// Topic it came on.
    pub topic: String,
    /// Wire bytes.
    pub payload: Vec<u8>,
}

/// Answer kiosks' questions until the channel closes.
pub async fn serve(
    mut rx: mpsc::Receiver<Question>,
    db: Db,
    client: AsyncClient,
    store: StoreId,
    key: Arc<SigningKey>,
) {
    while let Some(q) = rx.recv().await {
        if let Err(e) = answer(&db, &client, &store, &key, &q).await {
            tracing::warn!(topic = %q.topic, error = %e, "availability question dropped");
        }
    }
}

async fn answer(
    db: &Db,
    client: &AsyncClient,
    store: &StoreId,
    key: &SigningKey,
    q: &Question,
) -> Result<(), String> {
    let t = topics::parse(&q.topic).ok_or("not a kiosk topic")?;
    let kiosk = devices::get(db, t.kiosk.as_str())
        .await
        .map_err(|e| e.to_string())?
        .ok_or("unknown kiosk")?;
    let vk = kiosk.verifying_key().ok_or("kiosk not enrolled")?;
    let signed = Signed::from_slice(&q.payload).map_err(|e| e.to_string())?;
    let query: AvailabilityQuery = signed
        .open(Context::Query, &vk)
        .map_err(|e| e.to_string())?;
    let now = rxedge_shared::clock::system_now_ms();
    let (items, order) = match &query.order {
        // A kiosk only ever learns the status of an order it holds a signed ticket for.
        Some(id) => (
            Vec::new(),
            order_status(db, id).await.map_err(|e| e.to_string())?,
        ),
        None => (
            lookup(db, &query.q, crate::days::day_of(now))
                .await
                .map_err(|e| e.to_string())?,
            None,
        ),
    };
    let ans = AvailabilityAnswer {
        id: query.id,
        q: query.q.trim().chars().take(MAX_QUERY).collect(),
        as_of_ms: now,
        items,
        about_order: query.order.is_some(),
        order,
    };
    let doc = Signed::sign(key, Context::Answer, &ans).map_err(|e| e.to_string())?;
    client
        .publish(
            topics::kiosk(store, &t.kiosk, Leaf::Answer),
            QoS::AtMostOnce,
            false,
            doc.to_vec(),
        )
        .await
        .map_err(|e| e.to_string())
}
