//! Analytics: dispensing and sales per day and week, the top products, and
//! the pharmacist's real service figure, the time from a patient's scan to
//! "ready". The sums are pure ([`rxedge_shared::analytics`]); this module
//! reads the rows (stock ledger, invoices, order trail) and shows them.

use crate::web::{layout, AppError, AppState};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use maud::{html, Markup};
use rxedge_shared::analytics::{self as sums, ServiceTime};
use rxedge_shared::billing::fmt;
use rxedge_shared::clock::system_now_ms as now_ms;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;

/// Routes of this context.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/analytics", get(page))
        .route("/api/analytics", get(api))
}

#[derive(Deserialize)]
struct Q {
    #[serde(default)]
    days: Option<u32>,
}

/// The figures of a window of days.
#[derive(Debug, Serialize)]
pub struct Figures {
    /// Days in the window, ending today (the store's local day).
    pub days: u32,
    /// Packs dispensed per day.
    pub dispensed_per_day: Vec<(String, i64)>,
    /// Packs dispensed per ISO week.
    pub dispensed_per_week: Vec<(String, i64)>,
    /// Invoiced (credit notes negative), minor units, per day.
    pub sales_per_day: Vec<(String, i64)>,
    /// Invoiced per ISO week.
    pub sales_per_week: Vec<(String, i64)>,
    /// Top products: (name, packs invoiced, amount).
    pub top_products: Vec<(String, i64, i64)>,
    /// Scan to ready.
    pub service_time: Option<ServiceTime>,
}

/// Two-number rows of a query with one bound time.
async fn pairs(
    db: &crate::store::Db,
    sql: &str,
    from: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query(sql)
        .bind(from)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Work the figures out for the `days` days ending today.
pub async fn figures(db: &crate::store::Db, days: u32, now: i64) -> Result<Figures, sqlx::Error> {
    let today = crate::days::day_of(now);
    let (from, _) = crate::days::bounds(today - chrono::Duration::days(i64::from(days) - 1));
    let disp: Vec<(i64, i64)> = pairs(
        db,
        "SELECT at_ms, qty_delta FROM stock_moves WHERE kind IN ('dispense', 'dispense_unreserved') AND at_ms >= $1",
        from,
    )
    .await?
    .into_iter()
    .map(|(t, q)| (t, q.abs()))
    .collect();
    let sales = pairs(
        db,
        "SELECT finalised_ms, total FROM invoices WHERE finalised_ms >= $1",
        from,
    )
    .await?;
    let lines: Vec<(String, i64, i64)> = sqlx::query(
        "SELECT l.label, l.packs, l.total FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.finalised_ms >= $1",
    )
    .bind(from)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| {
        // A credit note's lines are labelled "credit: <item>"; they net
        // against the item.
        let label: String = r.try_get(0)?;
        let label = label.strip_prefix("credit: ").map(str::to_owned).unwrap_or(label);
        Ok((label, r.try_get(1)?, r.try_get(2)?))
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let ready = pairs(
        db,
        "SELECT o.created_ms, MIN(g.at_ms) FROM orders o JOIN order_log g ON g.order_id = o.id \
         WHERE g.to_state = 'ready' AND g.at_ms >= $1 GROUP BY o.id, o.created_ms",
        from,
    )
    .await?;
    let dispensed_per_day = sums::per_day(&disp, today, days, crate::days::day_of);
    let sales_per_day = sums::per_day(&sales, today, days, crate::days::day_of);
    let named = |d: &[(chrono::NaiveDate, i64)]| -> Vec<(String, i64)> {
        d.iter()
            .map(|(k, v)| (k.format("%Y-%m-%d").to_string(), *v))
            .collect()
    };
    Ok(Figures {
        days,
        dispensed_per_week: sums::per_week(&dispensed_per_day),
        sales_per_week: sums::per_week(&sales_per_day),
        dispensed_per_day: named(&dispensed_per_day),
        sales_per_day: named(&sales_per_day),
        top_products: sums::top(&lines, 10),
        service_time: sums::service_time(&ready),
    })
}

fn days_of(q: &Q) -> Result<u32, AppError> {
    let d = q.days.unwrap_or(30);
    if !(1..=366).contains(&d) {
        return Err(AppError::BadRequest("days is between 1 and 366".into()));
    }
    Ok(d)
}

async fn api(State(s): State<AppState>, Query(q): Query<Q>) -> Result<Json<Figures>, AppError> {
    Ok(Json(figures(&s.0.db, days_of(&q)?, now_ms()).await?))
}

fn bars<K: std::fmt::Display>(rows: &[(K, i64)], show: impl Fn(i64) -> String) -> Markup {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    html! {
        table.bars { tbody { @for (k, v) in rows {
            tr { td { (k) } td.num { (show(*v)) }
                 td.bar { span data-css=(format!("width:{}%", (v.max(&0) * 100) / max)) {} } }
        } } }
    }
}

async fn page(State(s): State<AppState>, Query(q): Query<Q>) -> Result<Markup, AppError> {
    let f = figures(&s.0.db, days_of(&q)?, now_ms()).await?;
    let packs = |v: i64| v.to_string();
    Ok(layout(
        "Analytics",
        html! {
            h1 { "Analytics · last " (f.days) " days" }
            form method="get" { label { "Days " input name="days" type="number" min="1" max="366" value=(f.days); } button { "Show" } }
            section #service {
                h2 { "Scan to ready" }
                @match &f.service_time {
                    Some(t) => p { strong #service-mean { (format!("{:.0} min", t.mean_min)) } " on average over " (t.orders) " order(s); median "
                                   (format!("{:.0} min", t.median_min)) ", 90 % within " (format!("{:.0} min", t.p90_min)) "." },
                    None => p { "No order became ready in this window." },
                }
            }
            section { h2 { "Packs dispensed per week" } (bars(&f.dispensed_per_week, packs)) }
            section { h2 { "Sales per week (VAT incl.)" } (bars(&f.sales_per_week, fmt)) }
            section { h2 { "Packs dispensed per day" } (bars(&f.dispensed_per_day, packs)) }
            section { h2 { "Sales per day" } (bars(&f.sales_per_day, fmt)) }
            section {
                h2 { "Top products" }
                table #top { thead { tr { th { "Product" } th { "Packs" } th { "Sales" } } }
                    tbody { @for (n, p, a) in &f.top_products { tr { td { (n) } td.num { (p) } td.num { (fmt(*a)) } } } } }
            }
        },
    ))
}
