//! Billing screens and API: the price on the review page, invoices (A4) and
//! receipts (80 mm, with the pickup QR), payments, credit notes, insurance
//! plans, and the daily Z report (printable and CSV).

use super::{BillingError, Invoice, Quote, Settings};
use crate::auth::session::Staff;
use crate::web::{fmt_utc, layout, AppError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup, PreEscaped};
use rxedge_shared::billing::{cash_rounded, fmt, Minor, Plan, VatRates};
use rxedge_shared::clock::system_now_ms as now_ms;
use serde::Deserialize;
use serde_json::{json, Value};

impl From<BillingError> for AppError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::NotFound(m) => AppError::NotFound(m),
            BillingError::Invalid(m) => AppError::BadRequest(m),
            BillingError::Maths(m) => AppError::BadRequest(m.to_string()),
            BillingError::Db(e) => AppError::Internal(e.to_string()),
        }
    }
}

/// Routes of this context.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/billing", get(billing_page))
        .route("/billing/z", get(z_page))
        .route("/api/billing/z", get(z_api))
        .route("/api/billing/plans", get(plans_json).post(create_plan))
        .route("/api/patients/{id}/plan", post(set_plan))
        .route("/api/orders/{id}/quote", get(quote_json))
        .route("/api/orders/{id}/invoice", post(finalise))
        .route("/api/invoices/{id}", get(invoice_json))
        .route("/api/invoices/{id}/payments", post(pay))
        .route("/api/invoices/{id}/credit", post(credit))
        .route("/invoices/{id}", get(invoice_page))
        .route("/invoices/{id}/receipt", get(receipt_page))
}

/// Billing settings from the hub's config.
pub fn settings(s: &AppState) -> Settings {
    let b = &s.0.cfg.billing;
    Settings {
        fee: b.dispensing_fee_minor(),
        vat: VatRates {
            standard_bp: b.vat_standard_bp,
            reduced_bp: b.vat_reduced_bp,
        },
    }
}

fn money(s: &str, what: &str) -> Result<Minor, AppError> {
    let t = s.trim();
    let (neg, body) = t.strip_prefix('-').map_or((false, t), |b| (true, b));
    let v = crate::catalog::parse_price(body)
        .map_err(|e| AppError::BadRequest(format!("{what}: {}", e.replace("price ", ""))))?;
    Ok(if neg { -v } else { v })
}

fn plan_label(p: &Plan) -> String {
    match p {
        Plan::NotCovered => "not covered".into(),
        Plan::Copay { per_line } => format!("copay {} per line", fmt(*per_line)),
        Plan::Coinsurance {
            share_bp,
            annual_cap,
        } => format!(
            "{}.{:02} % coinsurance up to {} a year",
            share_bp / 100,
            share_bp % 100,
            fmt(*annual_cap)
        ),
    }
}

async fn quote_json(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Quote>, AppError> {
    Ok(Json(
        super::quote(&s.0.db, settings(&s), &id, now_ms()).await?,
    ))
}

async fn finalise(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
) -> Result<Json<Invoice>, AppError> {
    let inv = super::finalise(
        &s.0.db,
        settings(&s),
        s.0.store.as_str(),
        &id,
        user.name.as_str(),
        now_ms(),
    )
    .await?;
    Ok(Json(inv))
}

async fn invoice_json(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let inv = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no invoice {id}")))?;
    let lines = super::lines(&s.0.db, &id).await?;
    let payments = super::payments(&s.0.db, &id).await?;
    let owed = super::outstanding(&s.0.db, &inv).await?;
    Ok(Json(
        json!({ "invoice": inv, "lines": lines, "payments": payments, "outstanding": owed }),
    ))
}

#[derive(Deserialize)]
struct PayReq {
    method: String,
    amount: String,
}

async fn pay(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(p): Json<PayReq>,
) -> Result<Json<Value>, AppError> {
    let amount = money(&p.amount, "amount")?;
    let owed = super::pay(
        &s.0.db,
        &id,
        p.method.trim(),
        amount,
        user.name.as_str(),
        now_ms(),
    )
    .await?;
    Ok(Json(json!({
        "outstanding": owed,
        "message": format!("Recorded. Still owed: patient {}, insurer {}.", fmt(owed.patient), fmt(owed.insurer)),
    })))
}

#[derive(Deserialize)]
struct CreditReq {
    reason: String,
}

async fn credit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(c): Json<CreditReq>,
) -> Result<Json<Invoice>, AppError> {
    let by = user.name.as_str();
    Ok(Json(
        super::credit(&s.0.db, s.0.store.as_str(), &id, &c.reason, by, now_ms()).await?,
    ))
}

#[derive(Deserialize)]
struct PlanReq {
    name: String,
    #[serde(default)]
    insurer: String,
    kind: String,
    #[serde(default)]
    per_line: String,
    /// Percent, e.g. `10` or `12.5`.
    #[serde(default)]
    share_percent: String,
    #[serde(default)]
    annual_cap: String,
}

async fn create_plan(
    State(s): State<AppState>,
    Json(p): Json<PlanReq>,
) -> Result<Json<super::PlanRow>, AppError> {
    let plan = match p.kind.trim() {
        "not_covered" => Plan::NotCovered,
        "copay" => Plan::Copay {
            per_line: money(&p.per_line, "copay per line")?,
        },
        "coinsurance" => {
            // A percentage with up to two decimals is basis points / 100.
            let bp = crate::catalog::parse_price(&p.share_percent).map_err(|_| {
                AppError::BadRequest(format!(
                    "share {:?} is not a percentage like 10 or 12.5",
                    p.share_percent
                ))
            })?;
            Plan::Coinsurance {
                share_bp: u32::try_from(bp)
                    .map_err(|_| AppError::BadRequest("share is too large".into()))?,
                annual_cap: money(&p.annual_cap, "annual cap")?,
            }
        }
        other => {
            return Err(AppError::BadRequest(format!(
                "plan kind {other:?} is not one of not_covered, copay, coinsurance"
            )))
        }
    };
    Ok(Json(
        super::create_plan(&s.0.db, &p.name, &p.insurer, &plan, now_ms()).await?,
    ))
}

async fn plans_json(State(s): State<AppState>) -> Result<Json<Vec<super::PlanRow>>, AppError> {
    Ok(Json(super::plans(&s.0.db).await?))
}

#[derive(Deserialize)]
struct SetPlan {
    #[serde(default)]
    plan_id: String,
}

async fn set_plan(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(p): Json<SetPlan>,
) -> Result<Json<Value>, AppError> {
    let by = user.name.as_str();
    let plan = Some(p.plan_id.trim()).filter(|x| !x.is_empty());
    super::set_patient_plan(&s.0.db, &id, plan, by, now_ms()).await?;
    Ok(Json(json!({ "message": "Plan saved." })))
}

#[derive(Deserialize)]
struct ZQ {
    #[serde(default)]
    date: String,
    #[serde(default)]
    format: String,
}

fn day_of(q: &ZQ) -> Result<chrono::NaiveDate, AppError> {
    if q.date.trim().is_empty() {
        return Ok(crate::days::day_of(now_ms()));
    }
    chrono::NaiveDate::parse_from_str(q.date.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::BadRequest(format!("date {:?} is not YYYY-MM-DD", q.date)))
}

async fn z_api(State(s): State<AppState>, Query(q): Query<ZQ>) -> Result<Response, AppError> {
    let z = super::z(&s.0.db, day_of(&q)?).await?;
    if q.format == "csv" {
        let name = format!("attachment; filename=\"z-{}.csv\"", z.day);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, name),
            ],
            super::z_csv(&z),
        )
            .into_response());
    }
    Ok(Json(z).into_response())
}

fn rate(bp: u32) -> String {
    format!("{}.{:01} %", bp / 100, (bp % 100) / 10)
}

async fn z_page(State(s): State<AppState>, Query(q): Query<ZQ>) -> Result<Markup, AppError> {
    let z = super::z(&s.0.db, day_of(&q)?).await?;
    let r = &z.report;
    Ok(layout(
        &format!("Z report {}", z.day),
        html! {
            h1 { "Z report · " (z.day) " · " (s.0.store_name()) }
            form.noprint method="get" { input type="date" name="date" value=(z.day); button { "Show" } " "
                a href=(format!("/api/billing/z?date={}&format=csv", z.day)) { "Download CSV" } }
            table #z {
                tbody {
                    tr { th colspan="2" { "Payments" } }
                    @for (m, a) in &r.by_method { tr { td { (m) } td.num { (fmt(*a)) } } }
                    tr.total { td { "Payments total" } td.num #z-payments { (fmt(r.payments_total)) } }
                    tr { th colspan="2" { "Sales by VAT rate (VAT included)" } }
                    @for (bp, a) in &r.sales_by_rate { tr { td { (rate(*bp)) } td.num { (fmt(*a)) } } }
                    tr { th colspan="2" { "VAT" } }
                    @for (bp, a) in &r.vat_by_rate { tr { td { (rate(*bp)) } td.num { (fmt(*a)) } } }
                    tr { th colspan="2" { "Insurers' shares" } }
                    @for (i, a) in &z.by_insurer { tr { td { (i) } td.num { (fmt(*a)) } } }
                    tr { td { "Patients' shares" } td.num { (fmt(z.patient_total)) } }
                    tr.total { td { "Invoiced total" } td.num #z-invoiced { (fmt(r.invoiced_total)) } }
                }
            }
            h2 { "Documents" }
            table { tbody { @for (n, k, t) in &z.documents { tr { td { (n) } td { (k.replace('_', " ")) } td.num { (fmt(*t)) } } } } }
        },
    ))
}

async fn billing_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let plans = super::plans(&s.0.db).await?;
    let rows = sqlx::query("SELECT * FROM invoices ORDER BY finalised_ms DESC LIMIT 100")
        .fetch_all(&s.0.db.pool)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let invoices: Vec<Invoice> = rows
        .iter()
        .map(super::invoice_of)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(layout(
        "Billing",
        html! {
            h1 { "Billing" }
            p { a href="/billing/z" { "Today's Z report" } }
            h2 { "Recent invoices" }
            table #invoices {
                thead { tr { th { "Number" } th { "Kind" } th { "Patient" } th { "Insurer" } th { "Total" } th { "Patient" } th { "Insurer" } th { "When (UTC)" } } }
                tbody {
                    @if invoices.is_empty() { tr { td colspan="8" { "No invoices yet." } } }
                    @for i in &invoices {
                        tr { td { a href=(format!("/invoices/{}", i.id)) { (i.number) } } td { (i.kind.replace('_', " ")) } td { (i.patient_name) }
                             td { (i.insurer) } td.num { (fmt(i.total)) } td.num { (fmt(i.patient_share)) } td.num { (fmt(i.insurer_share)) } td { (fmt_utc(i.finalised_ms)) } }
                    }
                }
            }
            h2 { "Insurance plans" }
            table #plans { tbody {
                @for p in &plans { tr { td { (p.name) } td { (p.insurer) } td { (plan_label(&p.plan)) } td { code { (p.id) } } } }
            } }
            form data-api="/api/billing/plans" {
                input name="name" required placeholder="Plan name";
                input name="insurer" placeholder="Insurer";
                select name="kind" { option value="coinsurance" { "coinsurance" } option value="copay" { "copay" } option value="not_covered" { "not covered" } }
                input name="share_percent" placeholder="Share % (coinsurance)";
                input name="annual_cap" placeholder="Annual cap (coinsurance)";
                input name="per_line" placeholder="Copay per line";
                button { "Add plan" } output {}
            }
        },
    ))
}

/// The mark of a line no insurance plan pays for, whatever the patient's plan.
fn not_covered(l: &rxedge_shared::billing::Line) -> maud::Markup {
    maud::html! { @if !l.covered { " " small.badge { "not covered" } } }
}

/// The review page's price section: the quote, and the invoice once final.
pub async fn price_section(s: &AppState, order: &crate::orders::Order) -> Result<Markup, AppError> {
    let inv = super::invoice_of_order(&s.0.db, &order.id).await?;
    let q = match super::quote(&s.0.db, settings(s), &order.id, now_ms()).await {
        Ok(q) => q,
        Err(BillingError::Invalid(m)) => {
            return Ok(html! { section #price { h2 { "Price" } p.error { (m) } } })
        }
        Err(e) => return Err(e.into()),
    };
    let open = matches!(
        order.state.as_str(),
        "approved" | "filling" | "ready" | "picked_up"
    );
    Ok(html! {
        section #price {
            h2 { "Price" }
            p { "Plan: " @match &q.plan { Some(p) => { (p.name) " (" (p.insurer) ", " (plan_label(&p.plan)) ")" }, None => { "none: the patient pays all" } } }
            table {
                thead { tr { th { "Line" } th { "Packs" } th { "Total" } th { "VAT" } th { "Patient" } th { "Insurer" } } }
                tbody {
                    @for l in &q.priced.lines { tr { td { (l.label) (not_covered(l)) } td.num { (l.packs) } td.num { (fmt(l.total)) } td.num { (fmt(l.vat)) " (" (rate(l.vat_bp)) ")" } td.num { (fmt(l.patient)) } td.num { (fmt(l.insurer)) } } }
                    tr.total { td { "Total" } td {} td.num { (fmt(q.priced.total)) } td.num { (fmt(q.priced.vat)) } td.num #patient-share { (fmt(q.priced.patient)) } td.num { (fmt(q.priced.insurer)) } }
                }
            }
            @match &inv {
                Some(i) => { p { "Invoice " a href=(format!("/invoices/{}", i.id)) { (i.number) } " · " a href=(format!("/invoices/{}/receipt", i.id)) { "receipt" } } }
                None => {
                    @if open {
                        form data-api=(format!("/api/orders/{}/invoice", order.id)) data-next="/invoices/{id}" {
                            button { "Finalise the invoice" } output {}
                        }
                    } @else { p { "Invoiced once approved (final at pick-up at the latest)." } }
                }
            }
        }
    })
}

fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build(),
    )
}

async fn invoice_parts(
    s: &AppState,
    id: &str,
) -> Result<
    (
        Invoice,
        Vec<rxedge_shared::billing::Line>,
        Vec<super::PaymentRow>,
        super::Outstanding,
    ),
    AppError,
> {
    let inv = super::get(&s.0.db, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no invoice {id}")))?;
    let lines = super::lines(&s.0.db, id).await?;
    let pays = super::payments(&s.0.db, id).await?;
    let owed = super::outstanding(&s.0.db, &inv).await?;
    Ok((inv, lines, pays, owed))
}

async fn invoice_page(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Markup, AppError> {
    let (inv, lines, pays, owed) = invoice_parts(&s, &id).await?;
    let title = if inv.kind == "credit_note" {
        "Credit note"
    } else {
        "Invoice"
    };
    Ok(layout(
        &format!("{title} {}", inv.number),
        html! {
            article.invoice {
                h1 { (title) " " span #number { (inv.number) } }
                p { strong { (s.0.store_name()) } br; "Date: " (fmt_utc(inv.finalised_ms)) " UTC" }
                p { "Patient: " (inv.patient_name) @if !inv.insurer.is_empty() { br; "Insurer: " (inv.insurer) } }
                @if let Some(c) = &inv.credits { p { "Cancels invoice " a href=(format!("/invoices/{c}")) { (c) } ". Reason: " (inv.reason) } }
                table #invoice-lines {
                    thead { tr { th { "Item" } th { "Packs" } th { "Amount" } th { "VAT rate" } th { "VAT" } th { "Patient" } th { "Insurer" } } }
                    tbody {
                        @for l in &lines { tr { td { (l.label) (not_covered(l)) } td.num { (l.packs) } td.num { (fmt(l.total)) } td.num { (rate(l.vat_bp)) } td.num { (fmt(l.vat)) } td.num { (fmt(l.patient)) } td.num { (fmt(l.insurer)) } } }
                        tr.total { td { "Total" } td {} td.num #total { (fmt(inv.total)) } td {} td.num #vat { (fmt(inv.vat)) } td.num #patient { (fmt(inv.patient_share)) } td.num #insurer { (fmt(inv.insurer_share)) } }
                    }
                }
                p { "Prices include VAT and the dispensing fee per pack." }
                h2 { "Payments" }
                table #payments { tbody {
                    @if pays.is_empty() { tr { td { "None yet." } } }
                    @for p in &pays { tr { td { (fmt_utc(p.at_ms)) } td { (p.method) } td.num { (fmt(p.amount)) } td { (p.actor) } } }
                } }
                p #outstanding { "Outstanding: patient " (fmt(owed.patient)) " (cash " (fmt(cash_rounded(owed.patient))) "), insurer " (fmt(owed.insurer)) }
            }
            section.noprint {
                p { a href=(format!("/invoices/{}/receipt", inv.id)) { "Receipt (80 mm)" } " · " a href=(format!("/orders/{}", inv.order_id)) { "Order" } }
                form data-api=(format!("/api/invoices/{}/payments", inv.id)) data-next=(format!("/invoices/{}", inv.id)) {
                    select name="method" { option value="cash" { "cash" } option value="card" { "card" } option value="insurer" { "insurer" } }
                    input name="amount" required placeholder="Amount, e.g. 12.50 (negative: refund)";
                    button { "Record payment" } output {}
                }
                @if inv.kind == "invoice" {
                    form data-api=(format!("/api/invoices/{}/credit", inv.id)) data-next="/invoices/{id}" {
                        input name="reason" required placeholder="Reason for the credit note";
                        button { "Issue credit note" } output {}
                    }
                }
            }
        },
    ))
}

async fn receipt_page(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Markup, AppError> {
    let (inv, lines, pays, owed) = invoice_parts(&s, &id).await?;
    let ticket = crate::orders::get(&s.0.db, &inv.order_id)
        .await?
        .and_then(|o| o.ticket);
    let qr = ticket.as_deref().and_then(qr_svg);
    Ok(html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Receipt " (inv.number) }
                link rel="stylesheet" href="/static/app.css";
            }
            body.receipt {
                p.center { strong { (s.0.store_name()) } }
                p { (inv.number) br; (fmt_utc(inv.finalised_ms)) " UTC" br; (inv.patient_name) }
                table {
                    @for l in &lines { tr { td { (l.packs) " × " (l.label) (not_covered(l)) } td.num { (fmt(l.total)) } } }
                    tr.total { td { "Total" } td.num { (fmt(inv.total)) } }
                    tr { td { "Insurer" } td.num { (fmt(inv.insurer_share)) } }
                    tr.total { td { "You pay" } td.num #you-pay { (fmt(inv.patient_share)) } }
                    tr { td { "incl. VAT" } td.num { (fmt(inv.vat)) } }
                    @for p in &pays { tr { td { "Paid (" (p.method) ")" } td.num { (fmt(p.amount)) } } }
                    tr { td { "Still owed" } td.num { (fmt(owed.patient)) } }
                }
                @if let Some(svg) = qr {
                    div.qr #pickup-qr { (PreEscaped(svg)) }
                    p.center { "Pickup code: show it at the kiosk or the desk." }
                }
            }
        }
    })
}
