//! Accounts, sign-in and store settings.
//!
//! Accounts have a role and an argon2id password hash; they are created by
//! the first-run wizard (`/setup`), an administrator (`/admin/users`) or
//! `rxedge-hub user add`. People sign in to a server-side session
//! ([`session`]); the web guard ([`guard`]) applies the role matrix
//! ([`policy`]) and the CSRF check on every route, and sign-in is throttled
//! per account and per address ([`throttle`]).

pub mod guard;
pub mod policy;
pub mod session;
pub mod throttle;
pub mod web;

use crate::store::Db;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use rand::RngCore as _;

/// Role names, as stored (see [`policy::Role`]).
pub const ROLES: [&str; 3] = ["admin", "pharmacist", "technician"];

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// Account and settings errors, in words for the person at the screen.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// The name is taken, or setup is already done.
    #[error("{0}")]
    Conflict(String),
    /// Hashing failed (should not happen).
    #[error("password hashing: {0}")]
    Hash(String),
    /// Database.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Login name: 1–64 of a-z, 0-9, `.`, `_`, `-`.
    pub username: &'a str,
    /// Name shown on screens and in audit trails.
    pub display_name: &'a str,
    /// One of [`ROLES`].
    pub role: &'a str,
    /// At least [`MIN_PASSWORD`] characters.
    pub password: &'a str,
}

/// Check a new account's fields; the message names the field.
pub fn validate(u: &NewUser<'_>) -> Result<(), AuthError> {
    let bad = |m: &str| Err(AuthError::Invalid(m.into()));
    if u.username.is_empty()
        || u.username.len() > 64
        || !u
            .username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return bad("user name: 1 to 64 of a-z, 0-9, '.', '_' and '-'");
    }
    if u.display_name.trim().is_empty() || u.display_name.chars().count() > 120 {
        return bad("full name: 1 to 120 characters");
    }
    if !ROLES.contains(&u.role) {
        return bad("role: admin, pharmacist or technician");
    }
    if u.password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::Invalid(format!(
            "password: at least {MIN_PASSWORD} characters (a short sentence is easiest to remember)"
        )));
    }
    if u.password.len() > 1024 {
        return bad("password: at most 1024 bytes");
    }
    Ok(())
}

/// An argon2id hash (PHC string) with a fresh random salt, at the crate's
/// defaults (19 MiB, 2 passes, 1 lane: OWASP's recommended minimum).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Does `password` match the stored PHC `hash`?
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Create an account.
pub async fn create_user(db: &Db, u: &NewUser<'_>, by: &str, now_ms: i64) -> Result<(), AuthError> {
    validate(u)?;
    let hash = hash_password(u.password)?;
    let n = sqlx::query(
        "INSERT INTO users (username, display_name, role, password_hash, created_ms, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING",
    )
    .bind(u.username)
    .bind(u.display_name.trim())
    .bind(u.role)
    .bind(&hash)
    .bind(now_ms)
    .bind(by)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AuthError::Conflict(format!(
            "user name {} is taken",
            u.username
        )));
    }
    crate::audit::record(
        db,
        &crate::audit::NewEntry {
            actor: by,
            action: "user.add",
            subject: u.username,
            detail: &serde_json::json!({ "role": u.role, "name": u.display_name.trim() })
                .to_string(),
            ip: "",
            at_ms: now_ms,
        },
    )
    .await;
    Ok(())
}

/// Is there an enabled administrator? (Until there is, `/setup` is open.)
pub async fn has_admin(db: &Db) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE role = 'admin' AND disabled = 0",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

/// A stored setting.
pub async fn setting(db: &Db, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await
}

/// Store a setting.
pub async fn set_setting(
    db: &Db,
    key: &str,
    value: &str,
    by: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, updated_ms, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
    )
    .bind(key)
    .bind(value)
    .bind(now_ms)
    .bind(by)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The settings key of the store name.
pub const STORE_NAME: &str = "store_name";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_a_fresh_salt() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterz", &a));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn accounts_are_validated_field_by_field() {
        let ok = NewUser {
            username: "anna.m",
            display_name: "Anna Muster",
            role: "pharmacist",
            password: "twelve chars!",
        };
        assert!(validate(&ok).is_ok());
        for (u, field) in [
            (
                NewUser {
                    username: "Anna",
                    ..ok.clone()
                },
                "user name",
            ),
            (
                NewUser {
                    display_name: " ",
                    ..ok.clone()
                },
                "full name",
            ),
            (
                NewUser {
                    role: "root",
                    ..ok.clone()
                },
                "role",
            ),
            (
                NewUser {
                    password: "short",
                    ..ok.clone()
                },
                "password",
            ),
        ] {
            let e = validate(&u).unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
    }
}
