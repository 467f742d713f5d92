//! The hub's database: one pool over SQLite (default) or PostgreSQL, with
//! migrations embedded per backend.
//!
//! Queries are written once with `$N` placeholders, in ascending order of
//! first use, which both SQLite and PostgreSQL accept through sqlx's Any driver.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor as _};
use std::borrow::Cow;
use std::str::FromStr as _;
use std::time::Duration;

/// Which database engine backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no supported engine.
    #[error("unsupported database url {0:?} (use sqlite:// or postgres://)")]
    Url(String),
    /// A query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The pool and what it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    /// Connection pool.
    pub pool: AnyPool,
    /// Engine.
    pub backend: Backend,
}

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "spine",
        include_str!("../migrations/sqlite/0001_spine.sql"),
    ),
    (
        2,
        "coldchain",
        include_str!("../migrations/sqlite/0002_coldchain.sql"),
    ),
    (
        3,
        "inventory",
        include_str!("../migrations/sqlite/0003_inventory.sql"),
    ),
    (
        4,
        "orders",
        include_str!("../migrations/sqlite/0004_orders.sql"),
    ),
    (
        5,
        "accounts",
        include_str!("../migrations/sqlite/0005_accounts.sql"),
    ),
    (
        6,
        "order_claim",
        include_str!("../migrations/sqlite/0006_order_claim.sql"),
    ),
    (
        7,
        "patients",
        include_str!("../migrations/sqlite/0007_patients.sql"),
    ),
    (
        8,
        "billing",
        include_str!("../migrations/sqlite/0008_billing.sql"),
    ),
    (
        9,
        "handover",
        include_str!("../migrations/sqlite/0009_handover.sql"),
    ),
    (
        10,
        "notify",
        include_str!("../migrations/sqlite/0010_notify.sql"),
    ),
    (11, "ocr", include_str!("../migrations/sqlite/0011_ocr.sql")),
    (
        12,
        "security",
        include_str!("../migrations/sqlite/0012_security.sql"),
    ),
    (
        13,
        "ocr_edits",
        include_str!("../migrations/sqlite/0013_ocr_edits.sql"),
    ),
    (
        14,
        "covered",
        include_str!("../migrations/sqlite/0014_covered.sql"),
    ),
    (
        15,
        "line_covered",
        include_str!("../migrations/sqlite/0015_line_covered.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "spine",
        include_str!("../migrations/postgres/0001_spine.sql"),
    ),
    (
        2,
        "coldchain",
        include_str!("../migrations/postgres/0002_coldchain.sql"),
    ),
    (
        3,
        "inventory",
        include_str!("../migrations/postgres/0003_inventory.sql"),
    ),
    (
        4,
        "orders",
        include_str!("../migrations/postgres/0004_orders.sql"),
    ),
    (
        5,
        "accounts",
        include_str!("../migrations/postgres/0005_accounts.sql"),
    ),
    (
        6,
        "order_claim",
        include_str!("../migrations/postgres/0006_order_claim.sql"),
    ),
    (
        7,
        "patients",
        include_str!("../migrations/postgres/0007_patients.sql"),
    ),
    (
        8,
        "billing",
        include_str!("../migrations/postgres/0008_billing.sql"),
    ),
    (
        9,
        "handover",
        include_str!("../migrations/postgres/0009_handover.sql"),
    ),
    (
        10,
        "notify",
        include_str!("../migrations/postgres/0010_notify.sql"),
    ),
    (
        11,
        "ocr",
        include_str!("../migrations/postgres/0011_ocr.sql"),
    ),
    (
        12,
        "security",
        include_str!("../migrations/postgres/0012_security.sql"),
    ),
    (
        13,
        "ocr_edits",
        include_str!("../migrations/postgres/0013_ocr_edits.sql"),
    ),
    (
        14,
        "covered",
        include_str!("../migrations/postgres/0014_covered.sql"),
    ),
    (
        15,
        "line_covered",
        include_str!("../migrations/postgres/0015_line_covered.sql"),
    ),
];

/// A `LIKE` pattern that finds `text` anywhere, with `%`, `_` and `\\` in it
/// matched literally; use it as `LIKE $n ESCAPE '\\'`.
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// `n` placeholders from `$first` on, comma-separated, for an `IN (...)` list.
pub fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The highest schema version this build knows (both engines share numbering).
pub fn latest_migration() -> i64 {
    SQLITE
        .iter()
        .chain(POSTGRES)
        .map(|m| m.0)
        .max()
        .unwrap_or(0)
}

fn migrator(backend: Backend) -> Migrator {
    let set = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let migrations = set
        .iter()
        .map(|&(v, d, sql)| {
            Migration::new(
                v,
                Cow::Borrowed(d),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Bring a database to schema `version` exactly as an older RxEdge release
/// would have left it (the migrations up to and including `version`). Upgrade
/// tests start from this; [`Db::connect`] then migrates the rest.
pub async fn migrate_up_to(
    pool: &AnyPool,
    backend: Backend,
    version: i64,
) -> Result<(), StoreError> {
    let mut m = migrator(backend);
    m.migrations = Cow::Owned(
        m.migrations
            .iter()
            .filter(|x| x.version <= version)
            .cloned()
            .collect(),
    );
    m.run(pool).await?;
    Ok(())
}

impl Db {
    /// Connect and migrate forward.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_owned()));
        };
        let opts = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { max_connections.min(4) } else { max_connections })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets the web screens read while ingest writes; FULL makes
                        // every commit durable before the hub acks it.
                        conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        migrator(backend).run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// Begin a transaction that writes. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`): a deferred transaction that reads first and
    /// writes later fails with SQLITE_BUSY when another writer got in between,
    /// and the busy timeout does not help. PostgreSQL callers lock rows with
    /// `FOR UPDATE` instead (see [`Db::for_update`]).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The row-locking suffix for a SELECT inside [`Db::begin_write`].
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// The default SQLite URL inside a state directory.
    pub fn sqlite_url(state_dir: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", state_dir.join("hub.db").display())
    }
}

/// A nullable float for binding through sqlx's `Any` driver. Sent as text and
/// cast in SQL (`CAST($n AS DOUBLE PRECISION)`): on PostgreSQL a statement first
/// prepared with a NULL float declares the wrong parameter type, and every later
/// non-NULL value on that connection is then refused.
pub fn nullable_f64(v: Option<f64>) -> Option<String> {
    v.filter(|x| x.is_finite()).map(|x| x.to_string())
}

#[cfg(test)]
mod like_tests {
    #[test]
    fn wildcards_in_search_text_are_matched_literally() {
        assert_eq!(super::contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(super::contains_pattern(""), "%%");
        assert_eq!(super::marks(3, 2), "$3, $4");
        assert_eq!(super::marks(1, 0), "");
    }
}
