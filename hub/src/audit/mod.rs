//! The tamper-evident audit trail: an append-only table in which each entry
//! carries the SHA-256 of its contents and of the entry before it.
//!
//! Who writes: the web guard records every change a signed-in person makes
//! (method, route, the request's fields with secrets removed, the answer's
//! status) and every refusal; sign-in records good and failed logins; the
//! command line records the accounts it creates. Editing, deleting or
//! reordering a row breaks the chain at that row, which `rxedge-hub audit
//! verify` names. The database refuses updates and deletes on the table
//! (triggers) as a first line; the chain is what catches someone who drops
//! the triggers.

pub mod config;
pub mod web;

use crate::store::Db;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// Account name (or `kiosk:ID`, `command line`, `setup`, or the name typed at a failed login).
    pub actor: &'a str,
    /// What happened, e.g. `login`, `login.failed`, `POST /api/orders/{id}/action`.
    pub action: &'a str,
    /// What it happened to (the request path, an account).
    pub subject: &'a str,
    /// Details as JSON text.
    pub detail: &'a str,
    /// Client address, when there is one.
    pub ip: &'a str,
    /// When (ms).
    pub at_ms: i64,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When (ms).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// Details (JSON text).
    pub detail: String,
    /// Client address.
    pub ip: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The hash of an entry: SHA-256 (hex) over the previous hash and the
/// entry's fields, encoded as a JSON array so no two field lists collide.
pub fn entry_hash(prev: &str, seq: i64, e: &NewEntry<'_>) -> String {
    let canonical =
        serde_json::json!([prev, seq, e.at_ms, e.actor, e.action, e.subject, e.detail, e.ip]);
    format!("{:x}", Sha256::digest(canonical.to_string().as_bytes()))
}

impl Entry {
    /// The hashed fields of this entry.
    pub fn fields(&self) -> NewEntry<'_> {
        NewEntry {
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            detail: &self.detail,
            ip: &self.ip,
            at_ms: self.at_ms,
        }
    }
}

/// Where and why a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {reason}")]
pub struct Broken {
    /// The first entry that does not fit.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks entries in order; pure, so it is tested without a database.
#[derive(Debug)]
pub struct Verifier {
    prev: String,
    next_seq: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            prev: GENESIS.into(),
            next_seq: 1,
        }
    }
}

impl Verifier {
    /// Check the next entry.
    pub fn push(&mut self, e: &Entry) -> Result<(), Broken> {
        let broken = |reason: String| Broken { seq: e.seq, reason };
        if e.seq != self.next_seq {
            return Err(Broken {
                seq: self.next_seq,
                reason: format!("missing (the next stored entry is {})", e.seq),
            });
        }
        if e.prev_hash != self.prev {
            return Err(broken(
                "it does not point at the entry before it (an entry was removed or reordered)"
                    .into(),
            ));
        }
        let h = entry_hash(&e.prev_hash, e.seq, &e.fields());
        if h != e.hash {
            return Err(broken(
                "its contents do not match its hash (the row was edited)".into(),
            ));
        }
        self.prev = h;
        self.next_seq += 1;
        Ok(())
    }

    /// Entries checked so far.
    pub fn count(&self) -> i64 {
        self.next_seq - 1
    }

    /// The chain must end where the head says: entries cut off the end
    /// would otherwise go unnoticed.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<i64, Broken> {
        if head_seq != self.count() || head_hash != self.prev {
            return Err(Broken {
                seq: self.count() + 1,
                reason: format!(
                    "the chain ends at entry {} but {} were written (entries were removed from the end)",
                    self.count(),
                    head_seq
                ),
            });
        }
        Ok(self.count())
    }
}

/// Append an entry; returns its sequence number. Updating the head row
/// first makes concurrent appends queue behind each other (a row lock on
/// PostgreSQL, the write lock on SQLite), so the chain never forks.
pub async fn append(db: &Db, e: &NewEntry<'_>) -> Result<i64, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *tx)
        .await?;
    let seq: i64 = row.try_get("seq")?;
    let prev: String = row.try_get("hash")?;
    let hash = entry_hash(&prev, seq, e);
    sqlx::query(
        "INSERT INTO audit_log (seq, at_ms, actor, action, subject, detail, ip, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(e.at_ms)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.subject)
    .bind(e.detail)
    .bind(e.ip)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(seq)
}

/// Append, logging (not failing) when the store refuses: the action it
/// describes has already happened and must still be answered.
pub async fn record(db: &Db, e: &NewEntry<'_>) {
    if let Err(err) = append(db, e).await {
        tracing::error!(error = %err, action = e.action, actor = e.actor, "audit entry not written");
    }
}

const COLUMNS: &str = "seq, at_ms, actor, action, subject, detail, ip, prev_hash, hash";

fn entry(r: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at_ms")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        detail: r.try_get("detail")?,
        ip: r.try_get("ip")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Why verification could not say yes.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The chain is broken.
    #[error(transparent)]
    Broken(#[from] Broken),
    /// The store could not be read.
    #[error("reading the audit trail: {0}")]
    Db(#[from] sqlx::Error),
}

/// Check the whole chain, in pages; the number of entries when it is whole.
pub async fn verify(db: &Db) -> Result<i64, VerifyError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    let (head_seq, head_hash): (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
    let mut v = Verifier::default();
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 2000"
        ))
        .bind(after)
        .fetch_all(&db.pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let e = entry(r)?;
            after = e.seq;
            v.push(&e)?;
        }
    }
    Ok(v.finish(head_seq, &head_hash)?)
}

/// A search of the trail, newest first.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Query {
    /// Words that must each appear in the actor, action, subject or detail.
    pub q: String,
    /// Only this account.
    pub actor: String,
    /// At most this many entries (1–5000; default 200).
    pub limit: Option<u32>,
}

/// Entries matching `q`, newest first.
pub async fn search(db: &Db, q: &Query) -> Result<Vec<Entry>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    if !q.actor.trim().is_empty() {
        binds.push(q.actor.trim().to_owned());
        sql.push_str(&format!(" AND actor = ${}", binds.len()));
    }
    for w in q.q.split_whitespace().take(8) {
        binds.push(crate::store::contains_pattern(&w.to_lowercase()));
        let n = binds.len();
        sql.push_str(&format!(
            " AND (LOWER(actor) LIKE ${n} ESCAPE '\\' OR LOWER(action) LIKE ${n} ESCAPE '\\' OR LOWER(subject) LIKE ${n} ESCAPE '\\' OR LOWER(detail) LIKE ${n} ESCAPE '\\')"
        ));
    }
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT {limit}"));
    let mut query = sqlx::query(&sql);
    for b in &binds {
        query = query.bind(b);
    }
    query.fetch_all(&db.pool).await?.iter().map(entry).collect()
}

/// Request fields safe to keep: JSON with every key that names a secret
/// removed, cut to `max` bytes on a character boundary.
pub fn redact(body: &[u8], max: usize) -> String {
    fn secret(k: &str) -> bool {
        let k = k.to_ascii_lowercase();
        k.contains("password") || k.contains("secret") || k.contains("token")
    }
    fn scrub(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !secret(k));
                m.values_mut().for_each(scrub);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut v) => {
            scrub(&mut v);
            v.to_string()
        }
        // Form posts: keep the field names and values that are not secrets.
        Err(_) => {
            let fields: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(body)
                .filter(|(k, _)| !secret(k))
                .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                .collect();
            serde_json::Value::Object(fields).to_string()
        }
    };
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let (actor, action, subject, detail, ip) =
                    ("anna.m", "login", "anna.m", "{}", "127.0.0.1");
                let hash = entry_hash(
                    &prev,
                    seq,
                    &NewEntry {
                        actor,
                        action,
                        subject,
                        detail,
                        ip,
                        at_ms: seq * 10,
                    },
                );
                let e = Entry {
                    seq,
                    at_ms: seq * 10,
                    actor: actor.into(),
                    action: action.into(),
                    subject: subject.into(),
                    detail: detail.into(),
                    ip: ip.into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn verify_all(es: &[Entry], head: (i64, &str)) -> Result<i64, Broken> {
        let mut v = Verifier::default();
        for e in es {
            v.push(e)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn a_whole_chain_verifies() {
        let es = chain(5);
        assert_eq!(verify_all(&es, (5, &es[4].hash)), Ok(5));
        assert_eq!(verify_all(&[], (0, GENESIS)), Ok(0));
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_broken_entry() {
        let es = chain(6);
        let head = (6, es[5].hash.clone());
        let mut edited = es.clone();
        edited[2].detail = "{\"reason\":\"nothing to see\"}".into();
        let b = verify_all(&edited, (head.0, &head.1)).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("edited"), "{b}");

        // Editing and re-hashing one row still breaks the next one's link.
        let mut rehashed = es.clone();
        rehashed[2].actor = "someone.else".into();
        let e = &rehashed[2];
        rehashed[2].hash = entry_hash(&e.prev_hash, e.seq, &e.fields());
        assert_eq!(verify_all(&rehashed, (head.0, &head.1)).unwrap_err().seq, 4);

        let mut removed = es.clone();
        removed.remove(3);
        let b = verify_all(&removed, (head.0, &head.1)).unwrap_err();
        assert_eq!(b.seq, 4);
        assert!(b.reason.contains("missing"), "{b}");

        let cut = &es[..4];
        let b = verify_all(cut, (head.0, &head.1)).unwrap_err();
        assert_eq!(b.seq, 5);
        assert!(b.reason.contains("removed from the end"), "{b}");
    }

    #[test]
    fn secrets_are_removed_from_recorded_fields() {
        let r = redact(
            br#"{"username":"anna","password":"hunter2 hunter2","nested":{"csrf_token":"x","note":"ok"}}"#,
            1000,
        );
        assert!(!r.contains("hunter2") && !r.contains("csrf_token"), "{r}");
        assert!(r.contains("anna") && r.contains("ok"), "{r}");
        let f = redact(b"by=x&password=secret1&note=hello", 1000);
        assert!(!f.contains("secret1") && f.contains("hello"), "{f}");
        let long = redact("é".repeat(100).as_bytes(), 11);
        assert!(long.ends_with('…') && long.len() <= 14, "{long}");
    }
}
