//! Patient pages and API: find, create, edit allergies and insurance, merge.

use super::{Fields, Patient, PatientError};
use crate::auth::session::Staff;
use crate::web::{fmt_utc, layout, AppError, AppState};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup};
use rxedge_shared::clinical::Allergy;
use rxedge_shared::clock::system_now_ms as now_ms;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row as _;

impl From<PatientError> for AppError {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::NotFound(m) => AppError::NotFound(format!("no patient {m}")),
            PatientError::Invalid(m) => AppError::BadRequest(m),
            PatientError::Db(e) => AppError::Internal(e.to_string()),
        }
    }
}

/// Routes of this context.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/patients", get(list_page))
        .route("/patients/{id}", get(patient_page))
        .route("/api/patients", get(list_json).post(create))
        .route("/api/patients/{id}", get(get_json).post(update))
        .route("/api/patients/{id}/merge", post(merge))
}

#[derive(Deserialize)]
struct ListQ {
    #[serde(default)]
    q: String,
}

async fn list_json(
    State(s): State<AppState>,
    Query(q): Query<ListQ>,
) -> Result<Json<Vec<Patient>>, AppError> {
    if q.q.len() > 200 {
        return Err(AppError::BadRequest(
            "search text is limited to 200 characters".into(),
        ));
    }
    Ok(Json(super::list(&s.0.db, &q.q, 200).await?))
}

#[derive(Deserialize)]
struct Form {
    name: String,
    // A field left out keeps its value on an edit (an API client that sets
    // the e-mail must not wipe the allergies).
    birth_date: Option<String>,
    insurance: Option<String>,
    /// One allergy per line: `penicillins = atc:J01C, amoxicillin`.
    allergies: Option<String>,
    language: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    notify_channel: Option<String>,
}

impl Form {
    fn fields(&self, was: Option<&Patient>) -> Result<Fields, AppError> {
        let pick = |new: &Option<String>, old: Option<&String>| {
            new.clone().or_else(|| old.cloned()).unwrap_or_default()
        };
        let allergies = match (&self.allergies, was) {
            (Some(text), _) => {
                if text.len() > 20_000 {
                    return Err(AppError::BadRequest("the allergy list is too long".into()));
                }
                super::parse_allergies(text)?
            }
            (None, Some(p)) => p.allergies.clone(),
            (None, None) => Vec::new(),
        };
        let f = Fields {
            name: self.name.clone(),
            birth_date: pick(&self.birth_date, was.map(|p| &p.birth_date)),
            insurance: pick(&self.insurance, was.map(|p| &p.insurance)),
            allergies,
            language: pick(&self.language, was.map(|p| &p.language)),
            email: pick(&self.email, was.map(|p| &p.email)),
            phone: pick(&self.phone, was.map(|p| &p.phone)),
            notify_channel: pick(&self.notify_channel, was.map(|p| &p.notify_channel)),
        };
        let texts = [
            &f.name,
            &f.birth_date,
            &f.insurance,
            &f.language,
            &f.email,
            &f.phone,
            &f.notify_channel,
        ];
        if texts.iter().any(|t| t.contains('\0'))
            || self.allergies.as_deref().is_some_and(|a| a.contains('\0'))
        {
            return Err(AppError::BadRequest(
                "text cannot contain NUL characters".into(),
            ));
        }
        if f.insurance.len() > 200 {
            return Err(AppError::BadRequest(
                "insurance is limited to 200 characters".into(),
            ));
        }
        Ok(f)
    }
}

async fn create(
    State(s): State<AppState>,
    user: Staff,
    Json(f): Json<Form>,
) -> Result<Json<Patient>, AppError> {
    Ok(Json(
        super::create(&s.0.db, &f.fields(None)?, &user.name, now_ms()).await?,
    ))
}

async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(f): Json<Form>,
) -> Result<Json<Patient>, AppError> {
    let was = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no patient {id}")))?;
    Ok(Json(
        super::update(&s.0.db, &id, &f.fields(Some(&was))?, &user.name, now_ms()).await?,
    ))
}

#[derive(Deserialize)]
struct MergeReq {
    into: String,
}

async fn merge(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Json(m): Json<MergeReq>,
) -> Result<Json<Patient>, AppError> {
    let by = user.name.as_str();
    Ok(Json(
        super::merge(&s.0.db, &id, m.into.trim(), by, now_ms()).await?,
    ))
}

/// A patient's orders: (id, reference, state, created).
async fn orders_of(s: &AppState, id: &str) -> Result<Vec<(String, String, String, i64)>, AppError> {
    let rows = sqlx::query("SELECT id, reference, state, created_ms FROM orders WHERE patient_id = $1 ORDER BY created_ms DESC LIMIT 200")
        .bind(id)
        .fetch_all(&s.0.db.pool)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| AppError::Internal(e.to_string()))
}

async fn get_json(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let p = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no patient {id}")))?;
    let orders = orders_of(&s, &id).await?;
    let log = super::history(&s.0.db, &id).await?;
    Ok(Json(json!({ "patient": p, "orders": orders, "log": log })))
}

fn allergy_text(a: &[Allergy]) -> String {
    a.iter()
        .map(Allergy::to_line)
        .collect::<Vec<_>>()
        .join("\n")
}

async fn list_page(State(s): State<AppState>, Query(q): Query<ListQ>) -> Result<Markup, AppError> {
    let q = q.q.chars().take(200).collect::<String>();
    let list = super::list(&s.0.db, &q, 200).await?;
    Ok(layout(
        "Patients",
        html! {
            h1 { "Patients" }
            form method="get" { input name="q" value=(q) placeholder="Name or date of birth"; button { "Find" } }
            table #patients {
                thead { tr { th { "Name" } th { "Born" } th { "Allergies" } th { "Insurance" } th { "Id" } } }
                tbody {
                    @if list.is_empty() { tr { td colspan="5" { "No patients found." } } }
                    @for p in &list {
                        tr { td { a href=(format!("/patients/{}", p.id)) { (p.name) } } td { (p.birth_date) }
                             td { (p.allergies.len()) } td { (p.insurance) } td { code { (p.id) } } }
                    }
                }
            }
            section {
                h2 { "New patient" }
                form data-api="/api/patients" data-next="/patients/{id}" {
                    input name="name" required placeholder="Full name";
                    input name="birth_date" type="date";
                    input name="insurance" placeholder="Insurer and card number";
                    textarea name="allergies" rows="2" placeholder="Allergies, one per line (ingredient, or label = atc:J01C, amoxicillin)" {}
                    button { "Create" } output {}
                }
            }
        },
    ))
}

async fn patient_page(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Markup, AppError> {
    let p = super::get(&s.0.db, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no patient {id}")))?;
    let orders = orders_of(&s, &id).await?;
    let log = super::history(&s.0.db, &id).await?;
    let next = format!("/patients/{}", p.id);
    Ok(layout(
        &format!("Patient {}", p.name),
        html! {
            h1 { (p.name) @if !p.birth_date.is_empty() { " · born " (p.birth_date) } }
            p { a href="/patients" { "All patients" } " · id " code { (p.id) } }
            @if let Some(m) = &p.merged_into {
                p.held { "Merged into " a href=(format!("/patients/{m}")) { (m) } ": change that record." }
            } @else {
                section {
                    h2 { "Record" }
                    form #edit data-api=(format!("/api/patients/{}", p.id)) data-next=(next) {
                        label { "Name " input name="name" required value=(p.name); }
                        label { "Born " input name="birth_date" type="date" value=(p.birth_date); }
                        label { "Insurance " input name="insurance" value=(p.insurance); }
                        label { "Language " input name="language" value=(p.language) placeholder="DE, FR, IT, EN" size="4"; }
                        label { "E-mail " input name="email" type="email" value=(p.email); }
                        label { "Mobile " input name="phone" type="tel" value=(p.phone); }
                        label { "Tell the patient (opt-in) "
                            select name="notify_channel" {
                                @for (v, l) in [("", "no messages"), ("email", "by e-mail"), ("sms", "by SMS"), ("whatsapp", "by WhatsApp")] {
                                    option value=(v) selected[p.notify_channel == v] { (l) }
                                }
                            } }
                        label { "Allergies (one per line: an ingredient, or label = atc:J01C, amoxicillin)"
                            textarea name="allergies" rows="4" { (allergy_text(&p.allergies)) } }
                        button { "Save" } output {}
                    }
                }
                section {
                    h2 { "Merge a duplicate" }
                    p { "This record goes; its orders and allergies move to the one you name." }
                    form #merge data-api=(format!("/api/patients/{}/merge", p.id)) data-next="/patients/{id}" {
                        input name="into" required placeholder="Id of the record to keep";
                        button { "Merge into it" } output {}
                    }
                }
            }
            section {
                h2 { "Orders" }
                table { tbody {
                    @if orders.is_empty() { tr { td { "None." } } }
                    @for (oid, r, st, at) in &orders { tr { td { a href=(format!("/orders/{oid}")) { (r) } } td { (st.replace('_', " ")) } td { (fmt_utc(*at)) } } }
                } }
            }
            section {
                h2 { "Changes" }
                table #log { tbody {
                    @for (at, actor, action, detail) in &log { tr { td { (fmt_utc(*at)) } td { (actor) } td { (action) } td { (detail) } } }
                } }
            }
        },
    ))
}
