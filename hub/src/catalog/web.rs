//! Catalog screens and API: browse and search, CSV import with per-line errors.

use super::CatalogError;
use crate::web::{layout, AppError, AppState};
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use maud::{html, Markup};
use rxedge_shared::billing::fmt as fmt_price;
use serde::Deserialize;
use serde_json::{json, Value};

use rxedge_shared::clock::system_now_ms as now_ms;

impl From<CatalogError> for AppError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid(_) => AppError::BadRequest(e.to_string()),
            CatalogError::Db(e) => AppError::Internal(e.to_string()),
        }
    }
}

/// Routes of this context.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalog", get(catalog_page))
        .route("/catalog/import", get(import_page).post(import_upload))
        .route("/api/catalog", get(search_json))
        .route("/api/catalog/import", axum::routing::post(import_json))
        .route("/api/catalog/{gtin}", get(product_json))
}

#[derive(Deserialize)]
struct SearchQ {
    #[serde(default)]
    q: String,
}

async fn search_json(
    State(s): State<AppState>,
    Query(q): Query<SearchQ>,
) -> Result<Json<Value>, AppError> {
    let items = super::search(&s.0.db, &q.q, 50).await?;
    Ok(Json(json!({ "items": items })))
}

async fn product_json(
    State(s): State<AppState>,
    Path(gtin): Path<String>,
) -> Result<Json<super::Product>, AppError> {
    super::get(&s.0.db, &gtin)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no product with GTIN {gtin}")))
}

/// `POST /api/catalog/import` with the CSV as the body. A bad file answers
/// 400 with every problem and its line, and imports nothing.
async fn import_json(State(s): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| AppError::BadRequest("the file is not UTF-8 text".into()))?;
    match super::import_csv(&s.0.db, text, now_ms()).await {
        Ok(r) => Ok(Json(json!({ "added": r.added, "updated": r.updated })).into_response()),
        Err(CatalogError::Invalid(errs)) => Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": format!("Nothing imported: {} problem(s) in the file.", errs.len()),
                "problems": errs,
            })),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

async fn catalog_page(
    State(s): State<AppState>,
    Query(q): Query<SearchQ>,
) -> Result<Markup, AppError> {
    let items = super::search(&s.0.db, &q.q, 500).await?;
    Ok(layout(
        "Catalog",
        html! {
            h1 { "Catalog" }
            nav.sub { a href="/inventory" { "Stock" } " · " a href="/catalog/import" { "Import CSV" } }
            form method="get" { input name="q" value=(q.q) placeholder="Name, ingredient or GTIN"; button { "Search" } }
            p { (items.len()) " product(s)" @if items.len() == 500 { " (first 500; search to narrow)" } }
            table #catalog {
                thead { tr { th { "Name" } th { "Ingredients" } th { "Strength" } th { "Form" } th { "Pack" } th { "ATC" } th { "Storage" } th { "Price" } th { "VAT" } th { "GTIN" } } }
                tbody {
                    @for p in &items {
                        tr {
                            td { (p.name) @if p.controlled { " " span.badge title="Controlled substance" { "BtM" } } @if !p.covered { " " span.badge title="Not covered by insurance: the patient pays it all" { "not covered" } } }
                            td { (p.ingredients.join(", ")) } td { (p.strength) } td { (p.form) } td.num { (p.pack_size) }
                            td { (p.atc.clone().unwrap_or_default()) } td { (p.storage.label()) } td.num { (fmt_price(p.price_minor)) }
                            td { (p.vat_class) } td { (p.gtin) }
                        }
                    }
                }
            }
        },
    ))
}

async fn import_page() -> Markup {
    layout(
        "Import catalog",
        html! {
            h1 { "Import the catalog from CSV" }
            p { "The header must be: " code { (super::CSV_HEADER.join(",")) } ", optionally followed by " code { (super::CSV_OPTIONAL.join(",")) } ". See docs/inventory.md for each column. A file with any bad row imports nothing and lists every problem with its line." }
            form method="post" enctype="multipart/form-data" {
                input type="file" name="file" accept=".csv,text/csv" required;
                button { "Import" }
            }
        },
    )
}

async fn import_upload(State(s): State<AppState>, mut mp: Multipart) -> Result<Markup, AppError> {
    let mut text = None;
    while let Some(f) = mp
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?
    {
        let b = f
            .bytes()
            .await
            .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?;
        text = Some(
            String::from_utf8(b.to_vec())
                .map_err(|_| AppError::BadRequest("the file is not UTF-8 text".into()))?,
        );
    }
    let text = text.ok_or_else(|| AppError::BadRequest("no file in the upload".into()))?;
    let body = match super::import_csv(&s.0.db, &text, now_ms()).await {
        Ok(r) => html! { p #result { (r.added) " product(s) added, " (r.updated) " updated." } },
        Err(CatalogError::Invalid(errs)) => html! {
            p #result.error { "Nothing was imported. Fix these lines and import the file again:" }
            ul #problems { @for e in &errs { li { "line " (e.line) ": " (e.message) } } }
        },
        Err(e) => return Err(e.into()),
    };
    Ok(layout(
        "Import catalog",
        html! { h1 { "Catalog import" } (body) p { a href="/catalog" { "Back to the catalog" } } },
    ))
}
