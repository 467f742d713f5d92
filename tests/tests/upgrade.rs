//! Schema upgrades: a store left by an older RxEdge, with data in it, migrates
//! forward on start and keeps every row, on SQLite and on PostgreSQL.

use anyhow::Result;
use rxedge_hub::store::{latest_migration, migrate_up_to, Backend, Db};
use rxedge_tests::{fresh_pg_database, skip_or_fail, tempdir};
use sqlx::Row as _;

/// The release before inventory (schema 2: spine and cold chain) had lots
/// without a ledger; schema 3 rebuilt the table and opened the ledger.
async fn data_from_schema_2_survives(url: &str, backend: Backend) -> Result<()> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    migrate_up_to(&pool, backend, 2).await?;
    for sql in [
        "INSERT INTO kiosks (id, name, public_key, created_ms) VALUES ('k1', 'Front desk', 'pk', 1)",
        "INSERT INTO events (kiosk_id, event_id, seq, kind, created_ms, received_ms, historical, digest, envelope, sig) \
         VALUES ('k1', 'e1', 1, 'qr_scanned', 10, 11, 0, 'd', '{\"body\":{\"text\":\"x\"}}', 's')",
        "INSERT INTO stock_locations (id, name, kind, created_ms) VALUES ('fridge-1', 'Fridge 1', 'fridge', 1)",
        "INSERT INTO lots (location_id, product, lot, expiry, quantity, status, hold_alarm_id, hold_ms) \
         VALUES ('fridge-1', 'Insulin pen', 'L42', '2027-03-31', 12, 'on_hold', 'fridge-1:high:5', 99)",
        "INSERT INTO lots (location_id, product, lot, expiry, quantity) VALUES ('fridge-1', 'Vaccine', 'V1', '2027-01-31', 0)",
    ] {
        sqlx::query(sql).execute(&pool).await?;
    }
    pool.close().await;

    // What the new release does on start.
    let db = Db::connect(url, 2).await?;
    let v: i64 = sqlx::query_scalar("SELECT CAST(MAX(version) AS BIGINT) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(v, latest_migration());
    let n: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM events WHERE kiosk_id = 'k1'")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(n, 1);
    let r = sqlx::query(
        "SELECT quantity, reserved, status, hold_reason, hold_alarm_id FROM lots WHERE lot = 'L42'",
    )
    .fetch_one(&db.pool)
    .await?;
    assert_eq!(r.try_get::<i64, _>("quantity")?, 12);
    assert_eq!(r.try_get::<i64, _>("reserved")?, 0);
    assert_eq!(r.try_get::<String, _>("status")?, "on_hold");
    assert_eq!(
        r.try_get::<String, _>("hold_reason")?,
        "cold_chain_excursion"
    );
    assert_eq!(r.try_get::<String, _>("hold_alarm_id")?, "fridge-1:high:5");
    // The opening balance makes the new ledger agree with the old quantities.
    assert!(rxedge_hub::inventory::ledger_drift(&db).await?.is_empty());
    // Later migrations start their own bookkeeping on the upgraded store.
    let w: i64 =
        sqlx::query_scalar("SELECT CAST(last_commit_id AS BIGINT) FROM orders_sync WHERE id = 1")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(w, 0);
    Ok(())
}

#[tokio::test]
async fn a_schema_2_sqlite_store_upgrades_with_its_data() -> Result<()> {
    let t = tempdir("upgrade")?;
    let url = Db::sqlite_url(t.path());
    data_from_schema_2_survives(&url, Backend::Sqlite).await
}

#[tokio::test]
async fn a_schema_2_postgres_store_upgrades_with_its_data() -> Result<()> {
    let Some(url) = fresh_pg_database("upgrade").await? else {
        return skip_or_fail("no PostgreSQL (RXEDGE_TEST_PG_URL unset)");
    };
    data_from_schema_2_survives(&url, Backend::Postgres).await
}
