//! The first-run wizard: `/setup` creates the administrator, names the store
//! and issues the first kiosk's enrollment code. It closes for good once an
//! administrator exists.

use super::{create_user, has_admin, set_setting, AuthError, NewUser, STORE_NAME};
use crate::devices;
use crate::web::{layout, AppError, AppState};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup};
use rxedge_shared::clock::system_now_ms as now_ms;
use rxedge_shared::KioskId;
use serde::Deserialize;

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(m) => AppError::BadRequest(m),
            AuthError::Conflict(m) => AppError::Conflict(m),
            AuthError::Hash(m) => AppError::Internal(m),
            AuthError::Db(e) => e.into(),
        }
    }
}

/// The wizard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/setup", get(page))
        .route("/api/setup", post(setup))
}

async fn page(State(s): State<AppState>) -> Result<Markup, AppError> {
    if has_admin(&s.0.db).await? {
        return Ok(layout(
            "Set up",
            html! { h1 { "This hub is set up" } p { "It has an administrator. " a href="/" { "Go to the kiosks" } "." } },
        ));
    }
    let name = s.0.store_name();
    Ok(layout(
        "Set up",
        html! {
            h1 { "Set up this hub" }
            p { "Three things, once: the administrator's account, the store's name, and the first kiosk." }
            form #setup data-api="/api/setup" {
                fieldset {
                    legend { "Administrator" }
                    label { "Full name " input name="display_name" required autocomplete="name"; }
                    label { "User name " input name="username" required pattern="[a-z0-9._\\-]{1,64}" autocomplete="username" placeholder="e.g. anna.m"; }
                    label { "Password (at least " (super::MIN_PASSWORD) " characters) " input type="password" name="password" required minlength=(super::MIN_PASSWORD) autocomplete="new-password"; }
                    label { "Password again " input type="password" name="password_again" required autocomplete="new-password"; }
                }
                fieldset {
                    legend { "Store" }
                    label { "Name shown to staff and patients " input name="store_name" required value=(name); }
                }
                fieldset {
                    legend { "First kiosk" }
                    label { "Kiosk id " input name="kiosk_id" required value="front-desk" pattern="[a-z0-9_\\-]{1,64}"; }
                    label { "Display name " input name="kiosk_name" value="Front desk"; }
                }
                button type="submit" { "Set up" }
                output {}
            }
        },
    ))
}

/// `POST /api/setup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// Administrator's login.
    pub username: String,
    /// Administrator's name.
    pub display_name: String,
    /// Password.
    pub password: String,
    /// The same again.
    pub password_again: String,
    /// Store name.
    pub store_name: String,
    /// First kiosk's id.
    pub kiosk_id: String,
    /// Its display name.
    #[serde(default)]
    pub kiosk_name: String,
}

async fn setup(
    State(s): State<AppState>,
    Json(r): Json<SetupRequest>,
) -> Result<Json<serde_json::Value>, AppError> {
    if has_admin(&s.0.db).await? {
        return Err(AppError::Conflict("this hub is already set up".into()));
    }
    let user = NewUser {
        username: r.username.trim(),
        display_name: &r.display_name,
        role: "admin",
        password: &r.password,
    };
    super::validate(&user)?;
    if r.password != r.password_again {
        return Err(AppError::BadRequest("the two passwords differ".into()));
    }
    let store_name = r.store_name.trim();
    if store_name.is_empty() || store_name.chars().count() > 120 {
        return Err(AppError::BadRequest(
            "store name: 1 to 120 characters".into(),
        ));
    }
    let kiosk = KioskId::new(r.kiosk_id.trim())
        .map_err(|e| AppError::BadRequest(format!("kiosk id: {e}")))?;
    let kiosk_name = if r.kiosk_name.trim().is_empty() {
        kiosk.as_str()
    } else {
        r.kiosk_name.trim()
    };
    let now = now_ms();
    // Two browsers finishing at once: the settings row is the claim, so only
    // one of them creates an administrator.
    let claimed = sqlx::query(
        "INSERT INTO settings (key, value, updated_ms, updated_by) VALUES ('setup', 'done', $1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(now)
    .bind(user.username)
    .execute(&s.0.db.pool)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Err(AppError::Conflict("this hub is already set up".into()));
    }
    if let Err(e) = create_user(&s.0.db, &user, "setup", now).await {
        let _ = sqlx::query("DELETE FROM settings WHERE key = 'setup'")
            .execute(&s.0.db.pool)
            .await;
        return Err(e.into());
    }
    set_setting(&s.0.db, STORE_NAME, store_name, user.username, now).await?;
    s.0.set_store_name(store_name);
    let code = devices::add(&s.0.db, &kiosk, kiosk_name, false, now)
        .await
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let enroll = format!(
        "rxedge-kiosk enroll --hub {} --id {} --code {code}",
        s.0.cfg.http.public_url, kiosk
    );
    tracing::info!(admin = user.username, kiosk = %kiosk, "first-run setup done");
    Ok(Json(serde_json::json!({
        "message": format!("Done. {} can now manage this hub. On the kiosk, run within 30 minutes: {enroll}", user.display_name.trim()),
        "enroll": enroll,
    })))
}
