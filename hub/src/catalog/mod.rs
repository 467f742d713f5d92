//! Catalog: the products the pharmacy stocks, imported from CSV.
//!
//! The CSV format is documented in `docs/inventory.md`. An import validates
//! every row first and writes nothing unless all rows are good, so a bad file
//! never half-imports; each problem names its line.

pub mod web;

use crate::store::Db;
pub use rxedge_shared::catalog::{
    normalize_gtin, parse_csv, parse_price, split_list, Product, RowError, Storage, CSV_HEADER,
    CSV_OPTIONAL,
};
use serde::Serialize;
use sqlx::Row as _;
use std::collections::HashSet;

/// Catalog errors.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file has problems; nothing was imported.
    #[error("nothing imported; {} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RowError>),
    /// Database.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Products new to the catalog.
    pub added: usize,
    /// Products whose data was replaced.
    pub updated: usize,
}

/// GTINs in the catalog.
pub async fn known_gtins(db: &Db) -> Result<HashSet<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT gtin FROM products")
        .fetch_all(&db.pool)
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect())
}

/// Validate and import a CSV file: all rows or none.
pub async fn import_csv(db: &Db, text: &str, now_ms: i64) -> Result<ImportReport, CatalogError> {
    let known = known_gtins(db).await?;
    let products = parse_csv(text, &known).map_err(CatalogError::Invalid)?;
    let mut tx = db.begin_write().await?;
    let mut report = ImportReport {
        added: 0,
        updated: 0,
    };
    for p in &products {
        if known.contains(&p.gtin) {
            report.updated += 1;
        } else {
            report.added += 1;
        }
        sqlx::query(
            "INSERT INTO products (gtin, name, ingredients, strength, form, pack_size, atc, controlled, storage, price_minor, vat_class, generics, reorder_point, max_daily_mg, updated_ms, covered) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, CAST($14 AS BIGINT), $15, $16) \
             ON CONFLICT (gtin) DO UPDATE SET name = excluded.name, ingredients = excluded.ingredients, strength = excluded.strength, \
             form = excluded.form, pack_size = excluded.pack_size, atc = excluded.atc, controlled = excluded.controlled, storage = excluded.storage, \
             price_minor = excluded.price_minor, vat_class = excluded.vat_class, generics = excluded.generics, reorder_point = excluded.reorder_point, \
             max_daily_mg = excluded.max_daily_mg, updated_ms = excluded.updated_ms, covered = excluded.covered",
        )
        .bind(&p.gtin)
        .bind(&p.name)
        .bind(p.ingredients.join(";"))
        .bind(&p.strength)
        .bind(&p.form)
        .bind(p.pack_size)
        .bind(p.atc.as_deref())
        .bind(i64::from(p.controlled))
        .bind(p.storage.as_str())
        .bind(p.price_minor)
        .bind(&p.vat_class)
        .bind(p.generics.join(";"))
        .bind(p.reorder_point)
        .bind(p.max_daily_mg.map(|n| n.to_string()))
        .bind(now_ms)
        .bind(i64::from(p.covered))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Build a product from a database row.
pub fn from_row(r: &sqlx::any::AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        gtin: r.try_get("gtin")?,
        name: r.try_get("name")?,
        ingredients: split_list(&r.try_get::<String, _>("ingredients")?),
        strength: r.try_get("strength")?,
        form: r.try_get("form")?,
        pack_size: r.try_get("pack_size")?,
        atc: r.try_get("atc")?,
        controlled: r.try_get::<i64, _>("controlled")? != 0,
        storage: Storage::parse(&r.try_get::<String, _>("storage")?).unwrap_or(Storage::Room),
        price_minor: r.try_get("price_minor")?,
        vat_class: r.try_get("vat_class")?,
        generics: split_list(&r.try_get::<String, _>("generics")?),
        reorder_point: r.try_get("reorder_point")?,
        max_daily_mg: r.try_get("max_daily_mg")?,
        covered: r.try_get::<i64, _>("covered")? != 0,
    })
}

/// One product by GTIN (any length; normalised).
pub async fn get(db: &Db, gtin: &str) -> Result<Option<Product>, sqlx::Error> {
    let Ok(g) = normalize_gtin(gtin) else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT * FROM products WHERE gtin = $1")
        .bind(g)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Products whose GTIN, name or ingredient matches `q` (case-insensitive), by name.
pub async fn search(db: &Db, q: &str, limit: i64) -> Result<Vec<Product>, sqlx::Error> {
    let q = q.trim();
    let rows = if q.is_empty() {
        sqlx::query("SELECT * FROM products ORDER BY name LIMIT $1")
            .bind(limit)
            .fetch_all(&db.pool)
            .await?
    } else {
        let pat = crate::store::contains_pattern(&q.to_lowercase());
        let gtin = normalize_gtin(q).unwrap_or_default();
        sqlx::query(
            "SELECT * FROM products WHERE gtin = $1 OR LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(ingredients) LIKE $3 ESCAPE '\\' ORDER BY name LIMIT $4",
        )
        .bind(gtin)
        .bind(&pat)
        .bind(&pat)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?
    };
    rows.iter().map(from_row).collect()
}
