//! Server-side sessions. The cookie holds 256 random bits; the store holds
//! only their SHA-256, the account, the CSRF token and the times. A session
//! ends on sign-out, after `idle_minutes` without a request, `session_hours`
//! after sign-in, and when its account is disabled.

use super::policy::Role;
use crate::store::Db;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

/// The session cookie's name.
pub const COOKIE: &str = "rxedge_session";
/// The cookie the page script reads to send the CSRF token back.
pub const CSRF_COOKIE: &str = "rxedge_csrf";
/// The header a change must carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header the page script puts on its own background refreshes.
pub const BACKGROUND_HEADER: &str = "x-rxedge-background";

/// A signed-in person, as handlers see them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Staff {
    /// Login name (unique; what the audit trail records).
    pub username: String,
    /// Full name (what screens and records show).
    pub name: String,
    /// Role.
    pub role: Role,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub staff: Staff,
    /// The token every change must echo.
    pub csrf: String,
    /// Store key.
    pub id_hash: String,
}

/// A fresh random token (256 bits, URL-safe base64).
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The store key of a session token.
pub fn hash_token(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// The session token a request's cookies carry, if any.
pub fn token_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie(c, COOKIE))
}

/// Start a session; returns the cookie token and the CSRF token.
pub async fn create(
    db: &Db,
    username: &str,
    ip: &str,
    now_ms: i64,
) -> Result<(String, String), sqlx::Error> {
    let token = new_token();
    let csrf = new_token();
    sqlx::query(
        "INSERT INTO sessions (id_hash, username, csrf, created_ms, last_seen_ms, ip) VALUES ($1, $2, $3, $4, $4, $5)",
    )
    .bind(hash_token(&token))
    .bind(username)
    .bind(&csrf)
    .bind(now_ms)
    .bind(ip)
    .execute(&db.pool)
    .await?;
    Ok((token, csrf))
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Ends after this long without a request.
    pub idle_ms: i64,
    /// Ends this long after sign-in.
    pub max_ms: i64,
}

/// The live session of `token`, if any; an expired one is deleted. A
/// request the person made (`touch`) counts as activity; a screen's own
/// background refresh does not, so a page left open still signs out when
/// idle. The last-seen time is written at most every 30 s, so reading a
/// page does not cost a write each time.
pub async fn lookup(
    db: &Db,
    cache: &Cache,
    token: &str,
    limits: Limits,
    touch: bool,
    now_ms: i64,
) -> Result<Option<Session>, sqlx::Error> {
    let id_hash = hash_token(token);
    if let Some(mut c) = cache.fresh(&id_hash, now_ms) {
        if now_ms - c.seen_ms > limits.idle_ms || now_ms - c.created_ms > limits.max_ms {
            cache.forget(&id_hash);
            end(db, &id_hash).await?;
            return Ok(None);
        }
        if touch && now_ms - c.seen_ms > 30_000 {
            sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE id_hash = $2")
                .bind(now_ms)
                .bind(&id_hash)
                .execute(&db.pool)
                .await?;
            c.seen_ms = now_ms;
            cache.put(&id_hash, c.clone());
        }
        return Ok(Some(c.session));
    }
    cache.forget(&id_hash);
    let Some(r) = sqlx::query(
        "SELECT s.csrf, s.created_ms, s.last_seen_ms, u.username, u.display_name, u.role, u.disabled \
         FROM sessions s JOIN users u ON u.username = s.username WHERE s.id_hash = $1",
    )
    .bind(&id_hash)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let created: i64 = r.try_get("created_ms")?;
    let seen: i64 = r.try_get("last_seen_ms")?;
    let disabled: i64 = r.try_get("disabled")?;
    let role = Role::parse(&r.try_get::<String, _>("role")?);
    let (Some(role), false) = (role, disabled != 0) else {
        end(db, &id_hash).await?;
        return Ok(None);
    };
    if now_ms - seen > limits.idle_ms || now_ms - created > limits.max_ms {
        end(db, &id_hash).await?;
        return Ok(None);
    }
    let mut seen_ms = seen;
    if touch && now_ms - seen > 30_000 {
        sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE id_hash = $2")
            .bind(now_ms)
            .bind(&id_hash)
            .execute(&db.pool)
            .await?;
        seen_ms = now_ms;
    }
    let session = Session {
        staff: Staff {
            username: r.try_get("username")?,
            name: r.try_get("display_name")?,
            role,
        },
        csrf: r.try_get("csrf")?,
        id_hash: id_hash.clone(),
    };
    cache.put(
        &id_hash,
        Cached {
            session: session.clone(),
            created_ms: created,
            seen_ms,
            fetched_ms: now_ms,
        },
    );
    Ok(Some(session))
}

/// Sessions checked in the last `ttl_ms`, so a busy screen does not cost a
/// store read per request. Signing out, a new sign-in and a disabled account
/// drop entries at once on this hub; another hub on the same database sees
/// such a change within `ttl_ms` (`auth.session_cache_secs`, 0 turns it off).
#[derive(Debug, Default)]
pub struct Cache {
    ttl_ms: i64,
    entries: std::sync::Mutex<std::collections::HashMap<String, Cached>>,
}

/// A cached session with the times its expiry is judged by.
#[derive(Debug, Clone)]
pub struct Cached {
    session: Session,
    created_ms: i64,
    seen_ms: i64,
    fetched_ms: i64,
}

impl Cache {
    /// A cache trusting an entry for `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        Self {
            ttl_ms,
            entries: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Cached>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, id_hash: &str, now_ms: i64) -> Option<Cached> {
        self.lock()
            .get(id_hash)
            .filter(|c| now_ms - c.fetched_ms < self.ttl_ms)
            .cloned()
    }

    fn put(&self, id_hash: &str, c: Cached) {
        if self.ttl_ms <= 0 {
            return;
        }
        let mut m = self.lock();
        if m.len() > 10_000 {
            let (now, ttl) = (c.fetched_ms, self.ttl_ms);
            m.retain(|_, x| now - x.fetched_ms < ttl);
        }
        m.insert(id_hash.to_owned(), c);
    }

    /// Drop one session (signed out, replaced).
    pub fn forget(&self, id_hash: &str) {
        self.lock().remove(id_hash);
    }

    /// Drop every session of an account (disabled).
    pub fn forget_user(&self, username: &str) {
        self.lock()
            .retain(|_, c| c.session.staff.username != username);
    }
}

/// End one session (by its store key).
pub async fn end(db: &Db, id_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// End every session of an account (it was disabled).
pub async fn end_all(db: &Db, username: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM sessions WHERE username = $1")
        .bind(username)
        .execute(&db.pool)
        .await?
        .rows_affected())
}

/// Forget sessions that can no longer be used.
pub async fn sweep(db: &Db, limits: Limits, now_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE last_seen_ms < $1 OR created_ms < $2")
            .bind(now_ms - limits.idle_ms)
            .bind(now_ms - limits.max_ms)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

/// A cookie's value from a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compare secrets in constant time.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in URL-safe base64");
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn the_cache_trusts_an_entry_for_its_time_and_forgets_on_request() {
        let staff = |u: &str| Staff {
            username: u.into(),
            name: u.into(),
            role: Role::Pharmacist,
        };
        let entry = |u: &str, at: i64| Cached {
            session: Session {
                staff: staff(u),
                csrf: "c".into(),
                id_hash: u.into(),
            },
            created_ms: 0,
            seen_ms: 0,
            fetched_ms: at,
        };
        let c = Cache::new(5_000);
        c.put("a", entry("anna", 1_000));
        c.put("b", entry("bert", 1_000));
        assert!(c.fresh("a", 5_999).is_some());
        assert!(c.fresh("a", 6_000).is_none(), "older than its time");
        c.forget("a");
        assert!(c.fresh("a", 1_001).is_none());
        c.forget_user("bert");
        assert!(c.fresh("b", 1_001).is_none());
        let off = Cache::new(0);
        off.put("a", entry("anna", 1_000));
        assert!(off.fresh("a", 1_000).is_none(), "0 turns it off");
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let h = "theme=dark; rxedge_session_old=x; rxedge_session=abc=; rxedge_csrf=t";
        assert_eq!(cookie(h, COOKIE), Some("abc="));
        assert_eq!(cookie(h, CSRF_COOKIE), Some("t"));
        assert_eq!(cookie(h, "missing"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
