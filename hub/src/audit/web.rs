//! The administrator's audit screen: search, the chain's state, CSV export.

use super::{search, verify, Query, VerifyError};
use crate::web::{fmt_utc, layout, AppError, AppState};
use axum::extract::{Query as Q, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

/// This context's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(page))
        .route("/admin/audit.csv", get(csv_export))
}

async fn page(State(s): State<AppState>, Q(q): Q<Query>) -> Result<Markup, AppError> {
    let chain = match verify(&s.0.db).await {
        Ok(n) => Ok(n),
        Err(VerifyError::Broken(b)) => Err(b.to_string()),
        Err(VerifyError::Db(e)) => return Err(e.into()),
    };
    let rows = search(&s.0.db, &q).await?;
    let export = format!(
        "/admin/audit.csv?q={}&actor={}&limit=5000",
        form_urlencoded::byte_serialize(q.q.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(q.actor.as_bytes()).collect::<String>()
    );
    Ok(layout(
        "Audit trail",
        html! {
            h1 { "Audit trail" }
            @match &chain {
                Ok(n) => p.ok #chain { "Chain intact: " (n) " entries, each sealed by the one before." }
                Err(m) => p.error #chain { "Tampering detected — " (m) }
            }
            form method="get" action="/admin/audit" {
                label { "Words " input name="q" value=(q.q) placeholder="e.g. approve, anna.m, login.failed"; }
                label { "Account " input name="actor" value=(q.actor); }
                button { "Search" }
                " " a href=(export) { "Export CSV" }
            }
            table #audit {
                thead { tr { th { "#" } th { "When (UTC)" } th { "Who" } th { "What" } th { "On" } th { "Details" } th { "From" } } }
                tbody {
                    @for e in &rows {
                        tr { td { (e.seq) } td { (fmt_utc(e.at_ms)) } td { (e.actor) } td { (e.action) } td { (e.subject) } td.detail { (e.detail) } td { (e.ip) } }
                    }
                }
            }
        },
    ))
}

async fn csv_export(State(s): State<AppState>, Q(q): Q<Query>) -> Result<Response, AppError> {
    let rows = search(&s.0.db, &q).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AppError::Internal(e.to_string());
    w.write_record([
        "seq",
        "at_utc",
        "at_ms",
        "actor",
        "action",
        "subject",
        "detail",
        "ip",
        "prev_hash",
        "hash",
    ])
    .map_err(err)?;
    for e in &rows {
        w.write_record([
            e.seq.to_string(),
            fmt_utc(e.at_ms),
            e.at_ms.to_string(),
            e.actor.clone(),
            e.action.clone(),
            e.subject.clone(),
            e.detail.clone(),
            e.ip.clone(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ])
        .map_err(err)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rxedge-audit.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}
