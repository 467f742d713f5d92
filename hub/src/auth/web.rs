//! The first-run wizard: `/setup` creates the administrator, names the store
//! and issues the first kiosk's enrollment code. It closes for good once an
//! administrator exists.

use super::session::{self, Staff};
use super::throttle::Key;
use super::{create_user, has_admin, set_setting, AuthError, NewUser, STORE_NAME};
use crate::devices;
use crate::web::{layout, AppError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{html, Markup};
use rxedge_shared::clock::system_now_ms as now_ms;
use rxedge_shared::KioskId;
use serde::Deserialize;
use sqlx::Row as _;

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

/// The wizard's, sign-in's and accounts' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/setup", get(page))
        .route("/api/setup", post(setup))
        .route("/login", get(login_page))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/admin/users", get(users_page))
        .route("/api/users", post(add_user))
        .route("/api/users/{username}/disable", post(disable_user))
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
    let enroll = devices::enroll_command(
        &s.0.cfg.http.public_url,
        kiosk.as_str(),
        s.0.tls.as_ref().map(|t| t.ca_fingerprint.as_str()),
        &code,
    );
    tracing::info!(admin = user.username, kiosk = %kiosk, "first-run setup done");
    Ok(Json(serde_json::json!({
        "message": format!("Done. {} can now sign in and manage this hub. On the kiosk, run within 30 minutes: {enroll}", user.display_name.trim()),
        "enroll": enroll,
    })))
}

/// Where a sign-in may send the browser next: a path on this hub only.
fn safe_next(next: &str) -> &str {
    // Browsers drop tabs and newlines in URLs ("/\t/evil" is "//evil"), so
    // any whitespace or control character disqualifies, as does a backslash.
    let plain = !next
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if plain && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/"
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

async fn login_page(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Result<Response, AppError> {
    if !has_admin(&s.0.db).await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    Ok(layout(
        "Sign in",
        html! {
            h1 { "Sign in to " (s.0.store_name()) }
            form #login data-api="/api/login" data-follow {
                input type="hidden" name="next" value=(safe_next(&q.next));
                label { "User name " input name="username" required autocomplete="username" autofocus; }
                label { "Password " input type="password" name="password" required autocomplete="current-password"; }
                button type="submit" { "Sign in" }
                output {}
            }
            p.hint { "Forgot your password? An administrator can give you a new account." }
        },
    )
    .into_response())
}

/// `POST /api/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Where to go after (a path on this hub).
    #[serde(default)]
    pub next: String,
}

/// A hash to check wrong names against, so an unknown name takes as long
/// to refuse as a wrong password.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| super::hash_password("no account has this password").unwrap_or_default())
}

fn cookie_header(
    name: &str,
    value: &str,
    http_only: bool,
    secure: bool,
    clear: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if clear {
        c.push_str("; Max-Age=0");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn secure(s: &AppState) -> bool {
    s.0.cfg.http.public_url.starts_with("https://")
}

async fn login(
    State(s): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, AppError> {
    let ip = super::guard::client_ip(&req);
    let old = session::token_of(req.headers()).map(session::hash_token);
    let bytes = axum::body::to_bytes(req.into_body(), 16 * 1024)
        .await
        .map_err(|_| AppError::BadRequest("sign-in request too large".into()))?;
    let r: LoginRequest = serde_json::from_slice(&bytes)
        .map_err(|e| AppError::BadRequest(format!("sign-in request: {e}")))?;
    let now = now_ms();
    let name: String = r.username.trim().to_lowercase().chars().take(64).collect();
    let keys = [Key::Account(name.clone()), Key::Ip(ip.clone())];
    let audit = |action: &'static str, detail: serde_json::Value| {
        let (db, name, ip) = (s.0.db.clone(), name.clone(), ip.clone());
        async move {
            crate::audit::record(
                &db,
                &crate::audit::NewEntry {
                    actor: &name,
                    action,
                    subject: &name,
                    detail: &detail.to_string(),
                    ip: &ip,
                    at_ms: now,
                },
            )
            .await;
        }
    };
    let locked =
        s.0.throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(&keys, now);
    if let Err(wait_ms) = locked {
        audit("login.locked", serde_json::json!({ "wait_ms": wait_ms })).await;
        let minutes = (wait_ms + 59_999) / 60_000;
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(serde_json::json!({ "error": format!("Too many failed sign-ins. Try again in {minutes} minute{}.", if minutes == 1 { "" } else { "s" }) })),
        )
            .into_response();
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from((wait_ms + 999) / 1000),
        );
        return Ok(resp);
    }
    let row = sqlx::query("SELECT password_hash, disabled FROM users WHERE username = $1")
        .bind(&name)
        .fetch_optional(&s.0.db.pool)
        .await?;
    let (hash, usable) = match &row {
        Some(r) => (
            r.try_get::<String, _>("password_hash")?,
            r.try_get::<i64, _>("disabled")? == 0,
        ),
        None => (dummy_hash().to_owned(), false),
    };
    let password = r.password;
    let matches = tokio::task::spawn_blocking(move || super::verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    if !(matches && usable) {
        s.0.throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fail(&keys, now);
        let why = if row.is_none() {
            "no such account"
        } else if !usable {
            "account disabled"
        } else {
            "wrong password"
        };
        audit("login.failed", serde_json::json!({ "why": why })).await;
        return Err(AppError::Unauthorized(
            "Wrong user name or password.".into(),
        ));
    }
    s.0.throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .succeed(&keys[0]);
    // A new session at every sign-in: a session id planted before sign-in is worthless.
    if let Some(old) = old {
        s.0.sessions.forget(&old);
        session::end(&s.0.db, &old).await?;
    }
    let limits = super::guard::limits(&s);
    session::sweep(&s.0.db, limits, now).await?;
    let (token, csrf) = session::create(&s.0.db, &name, &ip, now).await?;
    audit("login", serde_json::json!({})).await;
    let mut resp = Json(serde_json::json!({
        "message": "Signed in.",
        "next": safe_next(&r.next),
    }))
    .into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie_header(session::COOKIE, &token, true, secure(&s), false),
    );
    h.append(
        header::SET_COOKIE,
        cookie_header(session::CSRF_COOKIE, &csrf, false, secure(&s), false),
    );
    Ok(resp)
}

async fn logout(
    State(s): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, AppError> {
    if let Some(t) = session::token_of(req.headers()) {
        let id_hash = session::hash_token(t);
        s.0.sessions.forget(&id_hash);
        session::end(&s.0.db, &id_hash).await?;
    }
    let mut resp =
        Json(serde_json::json!({ "message": "Signed out.", "next": "/login" })).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie_header(session::COOKIE, "", true, secure(&s), true),
    );
    h.append(
        header::SET_COOKIE,
        cookie_header(session::CSRF_COOKIE, "", false, secure(&s), true),
    );
    Ok(resp)
}

async fn me(user: Staff) -> Json<Staff> {
    Json(user)
}

/// An account as the administrator's list shows it.
#[derive(Debug, serde::Serialize)]
struct Account {
    username: String,
    display_name: String,
    role: String,
    disabled: bool,
    created_ms: i64,
    created_by: String,
}

async fn accounts(s: &AppState) -> Result<Vec<Account>, AppError> {
    let rows = sqlx::query(
        "SELECT username, display_name, role, disabled, created_ms, created_by FROM users ORDER BY username",
    )
    .fetch_all(&s.0.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Account {
                username: r.try_get("username")?,
                display_name: r.try_get("display_name")?,
                role: r.try_get("role")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
                created_ms: r.try_get("created_ms")?,
                created_by: r.try_get("created_by")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

async fn users_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let list = accounts(&s).await?;
    Ok(layout(
        "Accounts",
        html! {
            h1 { "Accounts" }
            table #users data-refresh="" {
                thead { tr { th { "User name" } th { "Name" } th { "Role" } th { "Since" } th { "By" } th {} } }
                tbody {
                    @for a in &list {
                        tr.disabled[a.disabled] {
                            td { (a.username) } td { (a.display_name) } td { (a.role) }
                            td { (crate::web::fmt_utc(a.created_ms)) } td { (a.created_by) }
                            td {
                                @if a.disabled { "disabled" } @else {
                                    form data-api=(format!("/api/users/{}/disable", a.username)) data-next="/admin/users" {
                                        button type="submit" { "Disable" } output {}
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "New account" }
            form #add-user data-api="/api/users" data-next="/admin/users" {
                label { "Full name " input name="display_name" required; }
                label { "User name " input name="username" required pattern="[a-z0-9._\\-]{1,64}"; }
                label { "Role " select name="role" { @for r in super::ROLES { option value=(r) { (r) } } } }
                label { "Password (at least " (super::MIN_PASSWORD) " characters) " input type="password" name="password" required minlength=(super::MIN_PASSWORD) autocomplete="new-password"; }
                button type="submit" { "Create" }
                output {}
            }
        },
    ))
}

/// `POST /api/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    /// Login name.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Role.
    pub role: String,
    /// Password.
    pub password: String,
}

async fn add_user(
    State(s): State<AppState>,
    by: Staff,
    Json(r): Json<AddUser>,
) -> Result<Json<serde_json::Value>, AppError> {
    let u = NewUser {
        username: r.username.trim(),
        display_name: &r.display_name,
        role: r.role.trim(),
        password: &r.password,
    };
    create_user(&s.0.db, &u, &by.username, now_ms()).await?;
    Ok(Json(serde_json::json!({
        "message": format!("{} ({}) can now sign in as {}.", u.display_name.trim(), u.role, u.username),
    })))
}

async fn disable_user(
    State(s): State<AppState>,
    Path(username): Path<String>,
    by: Staff,
) -> Result<Json<serde_json::Value>, AppError> {
    if username == by.username {
        return Err(AppError::BadRequest(
            "you cannot disable your own account".into(),
        ));
    }
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM users WHERE username = $1 AND disabled = 0")
            .bind(&username)
            .fetch_optional(&s.0.db.pool)
            .await?;
    let Some(role) = role else {
        return Err(AppError::NotFound(format!("no enabled account {username}")));
    };
    sqlx::query("UPDATE users SET disabled = 1 WHERE username = $1")
        .bind(&username)
        .execute(&s.0.db.pool)
        .await?;
    s.0.sessions.forget_user(&username);
    let ended = session::end_all(&s.0.db, &username).await?;
    tracing::info!(%username, %role, by = %by.username, ended, "account disabled");
    Ok(Json(serde_json::json!({
        "message": format!("{username} is disabled and signed out ({ended} session(s) ended)."),
    })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sign_in_only_ever_sends_the_browser_to_a_path_on_this_hub() {
        for ok in ["/", "/orders", "/orders/1?x=%2F%2Fy"] {
            assert_eq!(super::safe_next(ok), ok);
        }
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /orders",
            "orders",
            "",
        ] {
            assert_eq!(super::safe_next(bad), "/", "{bad:?}");
        }
    }
}
