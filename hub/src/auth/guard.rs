//! The web guard: every matched route passes through here. It applies the
//! role matrix ([`super::policy`]), checks the session and, on every change,
//! the CSRF token; hands the signed-in [`Staff`] to the handler; and records
//! each change and each refusal in the audit trail. A second layer adds the
//! security headers to every answer.

use super::policy::{self, Access};
use super::session::{self, Limits, Staff};
use crate::audit;
use crate::web::{AppError, AppState};
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rxedge_shared::clock::system_now_ms as now_ms;
use std::net::SocketAddr;

/// The header that says why the guard refused (the security tests read it).
pub const DENIED: &str = "x-rxedge-denied";

/// Request bodies up to this size are kept (secrets removed) in the audit trail.
const AUDIT_BODY: usize = 16 * 1024;

/// The client's address (the TCP peer; behind a reverse proxy, the proxy's).
pub fn client_ip<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// Session lifetimes from the config.
pub fn limits(s: &AppState) -> Limits {
    let a = &s.0.cfg.auth;
    Limits {
        idle_ms: i64::from(a.idle_minutes.max(1)) * 60_000,
        max_ms: i64::from(a.session_hours.max(1)) * 3_600_000,
    }
}

fn is_change(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A page (not an API call or a live stream): refusals are shown as pages.
fn wants_page(req: &Request) -> bool {
    req.method() == Method::GET
        && !req.uri().path().starts_with("/api/")
        && !req.uri().path().starts_with("/events/")
        && !req.uri().path().starts_with("/fragments/")
}

fn refuse(status: StatusCode, why: &'static str, msg: String, page: bool) -> Response {
    let mut r = if page {
        let body = crate::web::layout(
            "Not allowed",
            maud::html! { h1 { "Not allowed" } p { (msg) } p { a href="/" { "Back to the start" } } },
        );
        (status, body).into_response()
    } else {
        (status, axum::Json(serde_json::json!({ "error": msg }))).into_response()
    };
    r.headers_mut()
        .insert(DENIED, HeaderValue::from_static(why));
    r
}

/// The guard itself (a `route_layer`, so the matched route is known).
pub async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let ip = client_ip(&req);
    let page = wants_page(&req);
    let roles = match policy::access(method.as_str(), &pattern) {
        Some(Access::Public | Access::Kiosk) => return next.run(req).await,
        Some(Access::Staff(roles)) => roles,
        None => {
            tracing::warn!(%method, route = %pattern, "refused: route missing from the role matrix");
            return refuse(
                StatusCode::FORBIDDEN,
                "unlisted",
                "This page is not open to anyone yet.".into(),
                page,
            );
        }
    };
    let touch = !req.headers().contains_key(session::BACKGROUND_HEADER);
    let found = match session::token_of(req.headers()) {
        Some(t) => session::lookup(&s.0.db, &s.0.sessions, t, limits(&s), touch, now_ms()).await,
        None => Ok(None),
    };
    let sess = match found {
        Ok(Some(x)) => x,
        Ok(None) if page => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let next_q: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
            return Redirect::to(&format!("/login?next={next_q}")).into_response();
        }
        Ok(None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "signin",
                "Please sign in: your session has ended or you have not signed in.".into(),
                false,
            )
        }
        Err(e) => return AppError::from(e).into_response(),
    };
    let path = req.uri().path().to_owned();
    let action = format!("{method} {pattern}");
    let refused = |detail: serde_json::Value| {
        let (db, who, action, path, ip) = (
            s.0.db.clone(),
            sess.staff.username.clone(),
            format!("refused {action}"),
            path.clone(),
            ip.clone(),
        );
        async move {
            let e = audit::NewEntry {
                actor: &who,
                action: &action,
                subject: &path,
                detail: &detail.to_string(),
                ip: &ip,
                at_ms: now_ms(),
            };
            audit::record(&db, &e).await;
        }
    };
    if !roles.contains(&sess.staff.role) {
        refused(serde_json::json!({ "why": "role", "role": sess.staff.role })).await;
        return refuse(
            StatusCode::FORBIDDEN,
            "role",
            format!(
                "Your role ({}) cannot do this. Ask a colleague whose role can.",
                sess.staff.role
            ),
            page,
        );
    }
    if !is_change(&method) {
        let mut req = req;
        req.extensions_mut().insert(sess.staff);
        return next.run(req).await;
    }
    let sent = req
        .headers()
        .get(session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !session::same(sent, &sess.csrf) {
        refused(serde_json::json!({ "why": "csrf", "token_sent": !sent.is_empty() })).await;
        return refuse(
            StatusCode::FORBIDDEN,
            "csrf",
            "This page is out of date. Reload it and try again.".into(),
            false,
        );
    }
    let (mut req, fields) = capture(req).await;
    let who = sess.staff.username.clone();
    req.extensions_mut().insert(sess.staff);
    let resp = next.run(req).await;
    audit::record(
        &s.0.db,
        &audit::NewEntry {
            actor: &who,
            action: &action,
            subject: &path,
            detail: &format!(
                "{{\"status\":{},\"request\":{}}}",
                resp.status().as_u16(),
                fields
            ),
            ip: &ip,
            at_ms: now_ms(),
        },
    )
    .await;
    resp
}

/// Keep a small textual body for the audit trail and hand it on unchanged;
/// larger or binary bodies are described by type and size only.
async fn capture(req: Request) -> (Request, String) {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let textual = ctype.starts_with("application/json")
        || ctype.starts_with("application/x-www-form-urlencoded");
    match len {
        Some(n) if textual && n <= AUDIT_BODY => {
            let (parts, body) = req.into_parts();
            match axum::body::to_bytes(body, AUDIT_BODY).await {
                Ok(bytes) => {
                    let fields = audit::redact(&bytes, 2000);
                    (Request::from_parts(parts, Body::from(bytes)), fields)
                }
                Err(_) => (
                    Request::from_parts(parts, Body::empty()),
                    "\"(the body could not be read)\"".into(),
                ),
            }
        }
        Some(0) | None if !textual => (req, "null".into()),
        _ => (
            req,
            serde_json::json!({ "content_type": ctype, "bytes": len }).to_string(),
        ),
    }
}

/// Headers on every answer: a strict CSP (no inline script or style at
/// all), no framing, no sniffing, no referrer, and no caching of screens
/// that show patient data on a shared PC.
pub async fn security_headers(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    if s.0.cfg.http.public_url.starts_with("https://") {
        set(h, "strict-transport-security", "max-age=31536000");
    }
    r
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Staff>()
            .cloned()
            .ok_or_else(|| AppError::Forbidden("Please sign in.".into()))
    }
}
