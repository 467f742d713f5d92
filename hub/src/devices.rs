//! Kiosk registry: enrollment, identity keys, and each kiosk's operating config.
//!
//! Enrollment (two minutes for a technician):
//! 1. On the hub: `rxedge-hub kiosk add front-desk` prints a one-time code.
//! 2. On the kiosk: `rxedge-kiosk enroll --hub http://HUB:8080 --id KIOSK_ID --code CODE`.
//!    The kiosk generates its Ed25519 key, sends the public half with the code,
//!    and receives the store id, the broker address and the hub's public key.
//!
//! `kiosk add NAME --public-key KEY` registers a key directly (the reverse flow).

use crate::store::{Db, StoreError};
use rxedge_shared::outbox_report_json;
use rxedge_shared::protocol::{KioskConfig, OutboxReport, PatientFeatures};
use rxedge_shared::sign::{self, VerifyingKey};
use rxedge_shared::{KioskId, StoreId};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

/// How long an enrollment code stays valid.
pub const CODE_TTL_MS: i64 = 30 * 60 * 1000;

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such kiosk.
    #[error("no kiosk {0}")]
    NotFound(String),
    /// Wrong or expired code.
    #[error("the enrollment code is wrong or has expired; run `rxedge-hub kiosk add` again")]
    BadCode,
    /// Already enrolled.
    #[error("kiosk {0} is already enrolled; add it again with --reenroll to replace its key")]
    AlreadyEnrolled(String),
    /// Bad id or key.
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for DeviceError {
    fn from(e: sqlx::Error) -> Self {
        DeviceError::Store(StoreError::Db(e))
    }
}

/// A kiosk as the registry knows it.
#[derive(Debug, Clone, Serialize)]
pub struct Kiosk {
    /// Id (topic level).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Base64 public key, once enrolled.
    pub public_key: Option<String>,
    /// Revoked kiosks' events are refused.
    pub revoked: bool,
    /// Highest committed sequence per stream `[events, telemetry]`.
    pub last_seq: [u64; 2],
    /// Config version the hub publishes.
    pub config_version: u64,
    /// Config version the kiosk reports running.
    pub running_version: Option<u64>,
    /// Retained presence.
    pub online: bool,
    /// Last heartbeat (hub clock, ms).
    pub last_seen_ms: Option<i64>,
    /// Outbox figures from the last heartbeat.
    pub outbox: Option<OutboxReport>,
}

impl Kiosk {
    /// The parsed verifying key, if enrolled.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        self.public_key
            .as_deref()
            .and_then(|k| sign::decode_public(k).ok())
    }
    /// Whether the kiosk runs an older config than the hub publishes.
    pub fn config_lags(&self) -> bool {
        self.public_key.is_some() && self.running_version != Some(self.config_version)
    }
}

const SELECT: &str =
    "SELECT id, name, public_key, revoked, last_seq_events, last_seq_telemetry, config_version, \
     running_version, online, last_seen_ms, outbox_json FROM kiosks";

fn row_to_kiosk(r: &sqlx::any::AnyRow) -> Result<Kiosk, sqlx::Error> {
    let outbox: Option<String> = r.try_get("outbox_json")?;
    Ok(Kiosk {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        public_key: r.try_get("public_key")?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
        last_seq: [
            r.try_get::<i64, _>("last_seq_events")? as u64,
            r.try_get::<i64, _>("last_seq_telemetry")? as u64,
        ],
        config_version: r.try_get::<i64, _>("config_version")? as u64,
        running_version: r
            .try_get::<Option<i64>, _>("running_version")?
            .map(|v| v as u64),
        online: r.try_get::<i64, _>("online")? != 0,
        last_seen_ms: r.try_get("last_seen_ms")?,
        outbox: outbox.and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// Revoke a kiosk: from now on its events go to the dead letters and its
/// uploads are refused, until it is enrolled again with a new code.
pub async fn revoke(db: &Db, id: &str) -> Result<(), DeviceError> {
    let n = sqlx::query("UPDATE kiosks SET revoked = 1 WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(DeviceError::NotFound(id.to_owned()));
    }
    Ok(())
}

/// All kiosks, by id.
pub async fn list(db: &Db) -> Result<Vec<Kiosk>, DeviceError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY id"))
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(row_to_kiosk).collect::<Result<_, _>>()?)
}

/// One kiosk.
pub async fn get(db: &Db, id: &str) -> Result<Option<Kiosk>, DeviceError> {
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.as_ref().map(row_to_kiosk).transpose()?)
}

fn code_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    format!("{:x}", Sha256::digest(norm.as_bytes()))
}

/// Make a one-time code like `7KQ2-9XMP` (no 0/O/1/I to misread).
pub fn new_code(rng: &mut impl rand::Rng) -> String {
    const ALPHA: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let c: String = (0..8)
        .map(|_| ALPHA[rng.gen_range(0..ALPHA.len())] as char)
        .collect();
    format!("{}-{}", &c[..4], &c[4..])
}

/// The command to run on the kiosk. With TLS on it carries the fingerprint
/// of the CA the kiosk will pin, so the kiosk can tell this hub from an
/// impostor before it sends its code. The code comes last.
pub fn enroll_command(
    hub_url: &str,
    kiosk: &str,
    ca_fingerprint: Option<&str>,
    code: &str,
) -> String {
    match ca_fingerprint {
        Some(fp) => format!(
            "rxedge-kiosk enroll --hub {hub_url} --id {kiosk} --ca-fingerprint {fp} --code {code}"
        ),
        None => format!("rxedge-kiosk enroll --hub {hub_url} --id {kiosk} --code {code}"),
    }
}

/// Register a kiosk (or renew its code) and return a one-time enrollment code.
pub async fn add(
    db: &Db,
    id: &KioskId,
    name: &str,
    reenroll: bool,
    now_ms: i64,
) -> Result<String, DeviceError> {
    let code = new_code(&mut rand::thread_rng());
    let existing = get(db, id.as_str()).await?;
    match existing {
        Some(k) if k.public_key.is_some() && !reenroll => {
            return Err(DeviceError::AlreadyEnrolled(k.id))
        }
        Some(_) => {
            sqlx::query("UPDATE kiosks SET name = $1, enroll_code_hash = $2, enroll_expires_ms = $3 WHERE id = $4")
                .bind(name)
                .bind(code_hash(&code))
                .bind(now_ms + CODE_TTL_MS)
                .bind(id.as_str())
                .execute(&db.pool)
                .await?;
        }
        None => {
            sqlx::query("INSERT INTO kiosks (id, name, enroll_code_hash, enroll_expires_ms, created_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(id.as_str())
                .bind(name)
                .bind(code_hash(&code))
                .bind(now_ms + CODE_TTL_MS)
                .bind(now_ms)
                .execute(&db.pool)
                .await?;
        }
    }
    Ok(code)
}

/// Initial operating config for a newly enrolled kiosk.
pub fn initial_config(
    store: &StoreId,
    kiosk: &KioskId,
    store_name: &str,
    d: &crate::config::KioskDefaults,
    now_ms: i64,
) -> KioskConfig {
    KioskConfig {
        store: store.clone(),
        kiosk: kiosk.clone(),
        version: 1,
        issued_ms: now_ms,
        store_name: store_name.to_owned(),
        languages: d.languages.clone(),
        features: PatientFeatures::default(),
        heartbeat_secs: d.heartbeat_secs,
        fridges: d
            .fridges
            .iter()
            .map(rxedge_shared::coldchain::FridgeRules::standard_2_8)
            .collect(),
    }
}

/// Set a kiosk's key (after a code check, or directly), reset its sequence
/// gates (a new identity starts numbering at 1) and give it config version 1
/// if it has none.
pub async fn set_key(
    db: &Db,
    id: &KioskId,
    name: Option<&str>,
    key: &VerifyingKey,
    initial: &KioskConfig,
    now_ms: i64,
) -> Result<(), DeviceError> {
    let cfg = serde_json::to_string(initial).map_err(|e| DeviceError::Invalid(e.to_string()))?;
    let mut tx = db.pool.begin().await?;
    let exists = sqlx::query("SELECT config_version FROM kiosks WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        sqlx::query("INSERT INTO kiosks (id, name, created_ms) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(name.unwrap_or(id.as_str()))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE kiosks SET public_key = $1, enrolled_ms = $2, enroll_code_hash = NULL, enroll_expires_ms = NULL, \
         revoked = 0, last_seq_events = 0, last_seq_telemetry = 0 WHERE id = $3",
    )
    .bind(sign::encode_public(key))
    .bind(now_ms)
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE kiosks SET config_version = 1, config_json = $1 WHERE id = $2 AND config_json IS NULL")
        .bind(cfg)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    if let Some(n) = name {
        sqlx::query("UPDATE kiosks SET name = $1 WHERE id = $2")
            .bind(n)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Check a one-time code and enroll the key.
pub async fn enroll_with_code(
    db: &Db,
    id: &KioskId,
    code: &str,
    key: &VerifyingKey,
    initial: &KioskConfig,
    now_ms: i64,
) -> Result<(), DeviceError> {
    let row = sqlx::query("SELECT enroll_code_hash, enroll_expires_ms FROM kiosks WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&db.pool)
        .await?
        .ok_or(DeviceError::BadCode)?;
    let hash: Option<String> = row.try_get("enroll_code_hash")?;
    let exp: Option<i64> = row.try_get("enroll_expires_ms")?;
    match (hash, exp) {
        (Some(h), Some(e)) if h == code_hash(code) && now_ms <= e => {
            set_key(db, id, None, key, initial, now_ms).await
        }
        _ => Err(DeviceError::BadCode),
    }
}

/// A partial edit of a kiosk's operating config, as technicians make it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEdit {
    /// Store name shown to patients.
    pub store_name: Option<String>,
    /// Languages offered.
    pub languages: Option<Vec<String>>,
    /// Patient flows.
    pub features: Option<PatientFeatures>,
    /// Heartbeat period.
    pub heartbeat_secs: Option<u32>,
    /// Fridge rules.
    pub fridges: Option<Vec<rxedge_shared::coldchain::FridgeRules>>,
}

/// The stored config document of a kiosk.
pub async fn config(db: &Db, id: &str) -> Result<Option<KioskConfig>, DeviceError> {
    let row = sqlx::query("SELECT config_json FROM kiosks WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let json: Option<String> = row.try_get("config_json")?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Apply an edit: the version goes up by one. Returns the new document.
pub async fn edit_config(
    db: &Db,
    id: &str,
    edit: ConfigEdit,
    now_ms: i64,
) -> Result<KioskConfig, DeviceError> {
    let mut cfg = config(db, id)
        .await?
        .ok_or_else(|| DeviceError::NotFound(id.to_owned()))?;
    if let Some(v) = edit.store_name {
        if v.trim().is_empty() || v.len() > 120 {
            return Err(DeviceError::Invalid(
                "store name must be 1 to 120 characters".into(),
            ));
        }
        cfg.store_name = v;
    }
    if let Some(v) = edit.languages {
        if v.is_empty()
            || v.iter()
                .any(|l| !["en", "de", "fr", "it"].contains(&l.as_str()))
        {
            return Err(DeviceError::Invalid(
                "languages must be a non-empty list of en, de, fr, it".into(),
            ));
        }
        cfg.languages = v;
    }
    if let Some(v) = edit.features {
        cfg.features = v;
    }
    if let Some(v) = edit.heartbeat_secs {
        if !(1..=3600).contains(&v) {
            return Err(DeviceError::Invalid(
                "heartbeat_secs must be 1 to 3600".into(),
            ));
        }
        cfg.heartbeat_secs = v;
    }
    if let Some(v) = edit.fridges {
        cfg.fridges = v;
    }
    cfg.version += 1;
    cfg.issued_ms = now_ms;
    let json = serde_json::to_string(&cfg).map_err(|e| DeviceError::Invalid(e.to_string()))?;
    sqlx::query("UPDATE kiosks SET config_version = $1, config_json = $2 WHERE id = $3")
        .bind(cfg.version as i64)
        .bind(json)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(cfg)
}

/// Every kiosk's current config document (to republish after a broker restart).
pub async fn all_configs(db: &Db) -> Result<Vec<KioskConfig>, DeviceError> {
    let rows =
        sqlx::query("SELECT config_json FROM kiosks WHERE config_json IS NOT NULL AND revoked = 0")
            .fetch_all(&db.pool)
            .await?;
    let mut out = Vec::new();
    for r in rows {
        let j: String = r.try_get("config_json")?;
        if let Ok(c) = serde_json::from_str(&j) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Record a heartbeat.
pub async fn record_heartbeat(
    db: &Db,
    id: &str,
    now_ms: i64,
    outbox: &OutboxReport,
    running: Option<u64>,
) -> Result<(), DeviceError> {
    sqlx::query(
        "UPDATE kiosks SET last_seen_ms = $1, outbox_json = $2, running_version = $3 WHERE id = $4",
    )
    .bind(now_ms)
    .bind(outbox_report_json(outbox))
    .bind(running.map(|v| v as i64))
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Record retained presence.
pub async fn record_presence(
    db: &Db,
    id: &str,
    online: bool,
    now_ms: i64,
) -> Result<(), DeviceError> {
    sqlx::query("UPDATE kiosks SET online = $1, last_seen_ms = CASE WHEN $2 = 1 THEN $3 ELSE last_seen_ms END WHERE id = $4")
        .bind(i64::from(online))
        .bind(i64::from(online))
        .bind(now_ms)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_normalised() {
        let c = new_code(&mut rand::thread_rng());
        assert_eq!(c.len(), 9);
        assert!(!c.contains('0') && !c.contains('O') && !c.contains('I') && !c.contains('1'));
        assert_eq!(
            code_hash(&c),
            code_hash(&c.to_lowercase().replace('-', " "))
        );
    }
}
