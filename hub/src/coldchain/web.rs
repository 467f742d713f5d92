//! Technician screens: live fridges, alarms with acknowledgement and audit
//! trail, inspector-ready logs (print view and CSV), logger import; and the
//! pharmacist's decision on stock held after an excursion.

use super::service::{log, Msg};
use crate::auth::session::Staff;
use crate::web::{layout, AppError, AppState};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::{html, Markup};
use rxedge_shared::coldchain::{DailyStats, FridgeRules, DEFAULT_DELTA_H_J_PER_MOL};
use serde::Deserialize;
use sqlx::Row as _;

const DAY_MS: i64 = 86_400_000;

use rxedge_shared::clock::system_now_ms as now_ms;

fn fmt(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn minutes(ms: i64) -> String {
    let m = ms / 60_000;
    if m >= 120 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{m} min")
    }
}

/// Routes of this context.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/coldchain", get(fridges_page))
        .route("/coldchain/alarms", get(alarms_page))
        .route("/coldchain/alarms/{id}", get(alarm_page))
        .route("/coldchain/alarms/{id}/ack", post(ack))
        .route("/coldchain/fridges/{id}/log", get(fridge_log))
        .route(
            "/coldchain/fridges/{id}/rules",
            get(rules_page).post(save_rules),
        )
        .route("/coldchain/import", get(import_page).post(import_upload))
        .route("/api/coldchain/alarms", get(alarms_json))
        .route("/inventory/holds", get(holds_page))
}

async fn readings(
    s: &AppState,
    fridge: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, Option<f64>)>, AppError> {
    let rows = sqlx::query("SELECT at_ms, celsius FROM fridge_readings WHERE fridge = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms")
        .bind(fridge)
        .bind(from)
        .bind(to)
        .fetch_all(&s.0.db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("at_ms")?, r.try_get::<Option<f64>, _>("celsius")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

/// A 24 h chart as inline SVG: the line, the limits, gaps left as gaps.
fn chart(points: &[(i64, Option<f64>)], from: i64, to: i64, low: f64, high: f64) -> Markup {
    let (w, h) = (600.0, 160.0);
    let vals: Vec<f64> = points.iter().filter_map(|p| p.1).collect();
    let lo = vals.iter().copied().fold(low - 2.0, f64::min);
    let hi = vals.iter().copied().fold(high + 2.0, f64::max);
    let x = |t: i64| (t - from) as f64 / (to - from).max(1) as f64 * w;
    let y = |c: f64| h - (c - lo) / (hi - lo).max(0.1) * h;
    let mut paths = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<i64> = None;
    for (t, c) in points {
        match c {
            Some(c) if prev.is_some_and(|p| t - p <= 15 * 60_000) && !cur.is_empty() => {
                cur.push_str(&format!(" L{:.1},{:.1}", x(*t), y(*c)));
            }
            Some(c) => {
                if !cur.is_empty() {
                    paths.push(std::mem::take(&mut cur));
                }
                cur = format!("M{:.1},{:.1}", x(*t), y(*c));
            }
            None => {
                if !cur.is_empty() {
                    paths.push(std::mem::take(&mut cur));
                }
            }
        }
        prev = Some(*t);
    }
    if !cur.is_empty() {
        paths.push(cur);
    }
    html! {
        svg.chart viewBox=(format!("0 0 {w} {h}")) role="img" aria-label="Temperature, last 24 hours" {
            rect x="0" y=(format!("{:.1}", y(high))) width=(w) height=(format!("{:.1}", (y(low) - y(high)).max(0.0))) class="band" {}
            line x1="0" x2=(w) y1=(format!("{:.1}", y(high))) y2=(format!("{:.1}", y(high))) class="limit" {}
            line x1="0" x2=(w) y1=(format!("{:.1}", y(low))) y2=(format!("{:.1}", y(low))) class="limit" {}
            @for p in &paths { path d=(p) class="temp" {} }
            text x="4" y="12" class="axis" { (format!("{hi:.0} °C")) }
            text x="4" y=(h - 4.0) class="axis" { (format!("{lo:.0} °C")) }
        }
    }
}

fn limits(r: Option<&FridgeRules>) -> (f64, f64) {
    let r = r.cloned().unwrap_or_else(|| FridgeRules::standard_2_8("x"));
    let high = r
        .temp
        .iter()
        .filter(|t| t.direction == rxedge_shared::coldchain::Direction::High)
        .map(|t| t.limit_c)
        .fold(f64::INFINITY, f64::min);
    let low = r
        .temp
        .iter()
        .filter(|t| t.direction == rxedge_shared::coldchain::Direction::Low)
        .map(|t| t.limit_c)
        .fold(f64::NEG_INFINITY, f64::max);
    (
        if low.is_finite() { low } else { 2.0 },
        if high.is_finite() { high } else { 8.0 },
    )
}

async fn fridges_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let now = now_ms();
    let views = s.0.fridges.read().await.clone();
    let mut ids: Vec<&String> = views.keys().collect();
    ids.sort();
    let kiosks = crate::devices::list(&s.0.db).await?;
    let active = sqlx::query("SELECT fridge, kind, onset_ms, state FROM alarms WHERE state <> 'cleared' ORDER BY onset_ms")
        .fetch_all(&s.0.db.pool)
        .await?;
    let mut cards = Vec::new();
    for id in ids {
        let v = &views[id];
        let pts = readings(&s, id, now - DAY_MS, now + 60_000).await?;
        let door_open = v.snapshot.as_ref().and_then(|n| n.door_open_since);
        let last = v.snapshot.as_ref().and_then(|n| n.last_good);
        let kiosk = kiosks.iter().find(|k| k.id == v.kiosk);
        let (low, high) = limits(v.rules.as_ref());
        // USP <1079.2>: MKT over 24 h for cold-chain (2–8 °C) products, 30 days for room temperature.
        let (window, window_label) = if high <= 8.0 {
            (DAY_MS, "24 h")
        } else {
            (30 * DAY_MS, "30 days")
        };
        let hold = v
            .rules
            .as_ref()
            .map_or(300_000, |r| i64::from(r.max_gap_secs) * 1000);
        let mkt_pts = if window == DAY_MS {
            pts.clone()
        } else {
            readings(&s, id, now - window, now + 60_000).await?
        };
        let good: Vec<(i64, f64)> = mkt_pts
            .iter()
            .filter_map(|(t, c)| Some((*t, (*c)?)))
            .collect();
        let mkt = rxedge_shared::coldchain::mean_kinetic_temperature(
            &good,
            DEFAULT_DELTA_H_J_PER_MOL,
            hold,
        );
        let alarms: Vec<String> = active
            .iter()
            .filter(|r| r.try_get::<String, _>("fridge").is_ok_and(|f| &f == id))
            .filter_map(|r| r.try_get::<String, _>("kind").ok())
            .collect();
        cards.push(html! {
            article data-fridge=(id) class=(if alarms.is_empty() { "fridge ok" } else { "fridge alarm" }) {
                h2 { (id) }
                p.now {
                    @match last {
                        Some((t, c)) => { span.temp { (format!("{c:.1} °C")) } " " small { "at " (fmt(t)) } }
                        None => { span.temp { "no reading yet" } }
                    }
                }
                ul.facts {
                    li.door { "Door: " @if let Some(t) = door_open { strong { "open since " (fmt(t)) } } @else { "closed" } }
                    li.sensor { "Sensor: " @match &v.snapshot {
                        Some(n) if n.bad_streak > 0 => strong { (n.bad_streak) " bad reads in a row" },
                        Some(n) if n.active.iter().any(|(k, _)| k.kind == rxedge_shared::coldchain::AlarmKind::SensorOffline) => strong { "offline" },
                        Some(_) => "reading",
                        None => "unknown",
                    } }
                    li.kiosk { "Kiosk: " @match kiosk { Some(k) if k.online => { (k.name) " (connected)" }, Some(k) => strong { (k.name) " (not connected)" }, None => "–" } }
                    li { "Limits: " (format!("{low:.1}–{high:.1} °C")) }
                    li.mkt { "MKT (" (window_label) "): " (mkt.map_or("–".into(), |m| format!("{m:.1} °C"))) }
                    @if let Some(n) = &v.snapshot { @for (k, since) in &n.pending { li.pending { "Out of range since " (fmt(*since)) " (" (k.rule) ", not an alarm yet)" } } }
                }
                @if !alarms.is_empty() { p.alarms { a href="/coldchain/alarms" { strong { "Alarms: " (alarms.join(", ")) } } } }
                (chart(&pts, now - DAY_MS, now, low, high))
                p { a href=(format!("/coldchain/fridges/{id}/log")) { "Temperature log" } " · " a href=(format!("/coldchain/fridges/{id}/rules")) { "Alarm rules" } }
            }
        });
    }
    Ok(layout(
        "Fridges",
        html! {
            h1 { "Fridges" }
            p { a href="/coldchain/alarms" { "Alarms" } " · " a href="/coldchain/import" { "Import a logger file" } " · " a href="/inventory/holds" { "Stock on hold" } }
            div #fridges data-refresh="coldchain alarm" {
                @if cards.is_empty() { p { "No fridge has reported yet." } }
                @for c in cards { (c) }
            }
        },
    ))
}

#[derive(Deserialize)]
struct AlarmFilter {
    #[serde(default)]
    state: Option<String>,
}

async fn alarm_rows(s: &AppState, state: Option<&str>) -> Result<Vec<sqlx::any::AnyRow>, AppError> {
    let q = match state {
        Some(_) => "SELECT * FROM alarms WHERE state = $1 ORDER BY onset_ms DESC LIMIT 500",
        None => "SELECT * FROM alarms ORDER BY CASE WHEN state = 'cleared' THEN 1 ELSE 0 END, onset_ms DESC LIMIT 500",
    };
    let mut q = sqlx::query(q);
    if let Some(st) = state {
        q = q.bind(st.to_owned());
    }
    Ok(q.fetch_all(&s.0.db.pool).await?)
}

fn state_label(state: &str, ended: bool) -> &'static str {
    match (state, ended) {
        ("active", false) => "active",
        ("active", true) => "ended, not acknowledged",
        ("acknowledged", _) => "acknowledged",
        _ => "cleared",
    }
}

async fn alarms_page(
    State(s): State<AppState>,
    Query(f): Query<AlarmFilter>,
) -> Result<Markup, AppError> {
    let rows = alarm_rows(&s, f.state.as_deref()).await?;
    Ok(layout(
        "Alarms",
        html! {
            h1 { "Cold-chain alarms" }
            table #alarms data-refresh="alarm" {
                thead { tr { th { "Fridge" } th { "Alarm" } th { "Since" } th { "Ended" } th { "Peak" } th { "State" } th {} } }
                tbody {
                    @if rows.is_empty() { tr { td colspan="7" { "No alarms." } } }
                    @for r in &rows {
                        @let id: String = r.try_get("id").unwrap_or_default();
                        @let state: String = r.try_get("state").unwrap_or_default();
                        @let end: Option<i64> = r.try_get("end_ms").ok().flatten();
                        tr data-alarm=(id) class=(state) {
                            td { (r.try_get::<String, _>("fridge").unwrap_or_default()) }
                            td { (r.try_get::<String, _>("kind").unwrap_or_default()) " (" (r.try_get::<String, _>("rule").unwrap_or_default()) ")" }
                            td { (fmt(r.try_get("onset_ms").unwrap_or_default())) }
                            td { @if let Some(e) = end { (fmt(e)) } @else { "–" } }
                            td { @if let Some(p) = r.try_get::<Option<f64>, _>("peak_c").ok().flatten() { (format!("{p:.1} °C")) } @else { "–" } }
                            td.state { (state_label(&state, end.is_some())) }
                            td { a href=(format!("/coldchain/alarms/{id}")) { @if state == "active" { "Acknowledge" } @else { "Details" } } }
                        }
                    }
                }
            }
        },
    ))
}

async fn alarm_page(State(s): State<AppState>, Path(id): Path<String>) -> Result<Markup, AppError> {
    let r = sqlx::query("SELECT * FROM alarms WHERE id = $1")
        .bind(&id)
        .fetch_optional(&s.0.db.pool)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no alarm {id}")))?;
    let trail = sqlx::query(
        "SELECT at_ms, action, actor, detail FROM alarm_log WHERE alarm_id = $1 ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&s.0.db.pool)
    .await?;
    let state: String = r.try_get("state")?;
    let end: Option<i64> = r.try_get("end_ms")?;
    let onset: i64 = r.try_get("onset_ms")?;
    let start: i64 = r.try_get("start_ms")?;
    let kind: String = r.try_get("kind")?;
    Ok(layout(
        "Alarm",
        html! {
            h1 { "Alarm: " (kind) " on " (r.try_get::<String, _>("fridge")?) }
            dl.alarm {
                dt { "State" } dd #state { (state_label(&state, end.is_some())) }
                dt { "Condition began" } dd { (fmt(start)) }
                dt { "Alarm since" } dd { (fmt(onset)) }
                dt { "Ended" } dd { @if let Some(e) = end { (fmt(e)) " (" (minutes(e - start)) ")" } @else { "not yet" } }
                dt { "Rules in force" } dd { code { (r.try_get::<String, _>("rules_json")?) } }
                @if let Some(by) = r.try_get::<Option<String>, _>("ack_by")? {
                    dt { "Acknowledged" } dd { (by) ", " (r.try_get::<Option<String>, _>("ack_reason")?.unwrap_or_default()) ": " (r.try_get::<Option<String>, _>("ack_comment")?.unwrap_or_default()) }
                }
            }
            @if state == "active" {
                form.ack method="post" action=(format!("/coldchain/alarms/{id}/ack")) {
                    h2 { "Acknowledge" }
                    label { "Reason "
                        select name="reason" {
                            option value="investigated" { "Investigated, cause found" }
                            option value="product_assessed" { "Product assessed" }
                            option value="sensor_malfunction" { "Sensor malfunction (closes the alarm)" }
                            option value="other" { "Other" }
                        }
                    }
                    label { "Comment (required) " textarea name="comment" required minlength="3" rows="3" {} }
                    button type="submit" { "Acknowledge" }
                }
            }
            h2 { "Audit trail" }
            table #trail {
                thead { tr { th { "When" } th { "What" } th { "Who" } th { "Detail" } } }
                tbody {
                    @for t in &trail {
                        tr { td { (fmt(t.try_get("at_ms")?)) } td { (t.try_get::<String, _>("action")?) } td { (t.try_get::<String, _>("actor")?) } td { (t.try_get::<String, _>("detail")?) } }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct AckForm {
    reason: String,
    comment: String,
}

async fn ack(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Form(f): Form<AckForm>,
) -> Result<Response, AppError> {
    let by = user.name.as_str();
    let comment = f.comment.trim();
    if comment.chars().count() < 3 {
        return Err(AppError::BadRequest(
            "An acknowledgement needs a comment: what did you find, what did you do?".into(),
        ));
    }
    if ![
        "investigated",
        "product_assessed",
        "sensor_malfunction",
        "other",
    ]
    .contains(&f.reason.as_str())
    {
        return Err(AppError::BadRequest(format!(
            "unknown reason {:?}",
            f.reason
        )));
    }
    let now = now_ms();
    let r = sqlx::query("SELECT state, end_ms, kind, fridge, rule FROM alarms WHERE id = $1")
        .bind(&id)
        .fetch_optional(&s.0.db.pool)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no alarm {id}")))?;
    let state: String = r.try_get("state")?;
    if state != "active" {
        return Err(AppError::BadRequest(format!(
            "This alarm is already {state}."
        )));
    }
    let ended = r.try_get::<Option<i64>, _>("end_ms")?.is_some();
    let kind: String = r.try_get("kind")?;
    let malfunction = f.reason == "sensor_malfunction";
    // A malfunctioning sensor's breach would never end by itself: the ack closes it.
    let new_state = if ended || malfunction {
        "cleared"
    } else {
        "acknowledged"
    };
    let mut tx = s.0.db.pool.begin().await?;
    sqlx::query(
        "UPDATE alarms SET state = $1, ack_by = $2, ack_reason = $3, ack_comment = $4, ack_ms = $5, \
         end_ms = CASE WHEN end_ms IS NULL AND $6 = 1 THEN $7 ELSE end_ms END WHERE id = $8 AND state = 'active'",
    )
    .bind(new_state)
    .bind(by)
    .bind(&f.reason)
    .bind(comment)
    .bind(now)
    .bind(i64::from(malfunction))
    .bind(now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    log(
        &mut tx,
        &id,
        now,
        "acknowledged",
        by,
        &format!("{}: {comment}", f.reason),
    )
    .await?;
    if malfunction {
        log(&mut tx, &id, now, "closed", by, "sensor malfunction").await?;
    }
    tx.commit().await?;
    if kind.ends_with("_cumulative") {
        // Acknowledging a spent budget starts it again.
        let (reply, done) = tokio::sync::oneshot::channel();
        let _ =
            s.0.coldchain
                .send(Msg::Reset {
                    fridge: r.try_get("fridge")?,
                    rule: r.try_get("rule")?,
                    at_ms: now,
                    reply,
                })
                .await;
        let _ = done.await;
    }
    let _ =
        s.0.feed
            .send(crate::web::FeedItem::Alarm { id: id.clone() });
    Ok(Redirect::to(&format!("/coldchain/alarms/{id}")).into_response())
}

async fn alarms_json(
    State(s): State<AppState>,
    Query(f): Query<AlarmFilter>,
) -> Result<Json<Vec<serde_json::Value>>, AppError> {
    let rows = alarm_rows(&s, f.state.as_deref()).await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let trail =
            sqlx::query("SELECT action, actor FROM alarm_log WHERE alarm_id = $1 ORDER BY id")
                .bind(&id)
                .fetch_all(&s.0.db.pool)
                .await?;
        let trail: Vec<String> = trail
            .iter()
            .filter_map(|t| t.try_get::<String, _>("action").ok())
            .collect();
        out.push(serde_json::json!({
            "id": id,
            "fridge": r.try_get::<String, _>("fridge")?,
            "rule": r.try_get::<String, _>("rule")?,
            "kind": r.try_get::<String, _>("kind")?,
            "state": r.try_get::<String, _>("state")?,
            "start_ms": r.try_get::<i64, _>("start_ms")?,
            "onset_ms": r.try_get::<i64, _>("onset_ms")?,
            "end_ms": r.try_get::<Option<i64>, _>("end_ms")?,
            "peak_c": r.try_get::<Option<f64>, _>("peak_c")?,
            "ack_by": r.try_get::<Option<String>, _>("ack_by")?,
            "ack_reason": r.try_get::<Option<String>, _>("ack_reason")?,
            "escalated_ms": r.try_get::<Option<i64>, _>("escalated_ms")?,
            "trail": trail,
        }));
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct LogQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

fn day_start(d: &str) -> Result<i64, AppError> {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| AppError::BadRequest(format!("date {d:?}: use YYYY-MM-DD")))
}

/// Temperature log of one fridge: per day, morning and afternoon min/max (as
/// inspectors ask), average, minutes out of range, MKT; then the alarms.
async fn fridge_log(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, AppError> {
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let to_day = q.to.clone().unwrap_or_else(|| today.clone());
    let to = day_start(&to_day)? + DAY_MS;
    let from = match &q.from {
        Some(f) => day_start(f)?,
        None => to - 7 * DAY_MS,
    };
    if to <= from || to - from > 400 * DAY_MS {
        return Err(AppError::BadRequest(
            "Pick a period of 1 to 400 days.".into(),
        ));
    }
    let rules =
        s.0.fridges
            .read()
            .await
            .get(&id)
            .and_then(|v| v.rules.clone());
    let (low, high) = limits(rules.as_ref());
    let max_hold = rules
        .as_ref()
        .map_or(300_000, |r| i64::from(r.max_gap_secs) * 1000);
    let pts = readings(&s, &id, from, to).await?;
    let good: Vec<(i64, f64)> = pts.iter().filter_map(|(t, c)| Some((*t, (*c)?))).collect();
    let mut days = Vec::new();
    let mut d = from;
    while d < to {
        let half = |a: i64, b: i64| {
            DailyStats::of(&good, a, b, low, high, max_hold, DEFAULT_DELTA_H_J_PER_MOL)
        };
        days.push((
            d,
            half(d, d + DAY_MS / 2),
            half(d + DAY_MS / 2, d + DAY_MS),
            half(d, d + DAY_MS),
        ));
        d += DAY_MS;
    }
    let history = sqlx::query("SELECT serial, day, min_c, max_c, avg_c, minutes_out, alarms FROM logger_days WHERE fridge = $1 AND day >= $2 AND day <= $3 ORDER BY day")
        .bind(&id)
        .bind(&fmt(from)[..10])
        .bind(&fmt(to - 1)[..10])
        .fetch_all(&s.0.db.pool)
        .await?;
    let alarms = sqlx::query("SELECT id, kind, start_ms, onset_ms, end_ms, peak_c, state, ack_by, ack_comment FROM alarms WHERE fridge = $1 AND onset_ms >= $2 AND onset_ms < $3 ORDER BY onset_ms")
        .bind(&id)
        .bind(from)
        .bind(to)
        .fetch_all(&s.0.db.pool)
        .await?;
    let c = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
    if q.format.as_deref() == Some("csv") {
        let mut out = String::from(
            "date,am_min_c,am_max_c,pm_min_c,pm_max_c,avg_c,minutes_out_of_range,mkt_c,readings\n",
        );
        for (d, am, pm, all) in &days {
            out.push_str(&format!(
                "{},{},{},{},{},{},{:.0},{},{}\n",
                &fmt(*d)[..10],
                c(am.min.map(|m| m.1)),
                c(am.max.map(|m| m.1)),
                c(pm.min.map(|m| m.1)),
                c(pm.max.map(|m| m.1)),
                c(all.avg_c),
                all.minutes_out_of_range,
                c(all.mkt_c),
                all.readings
            ));
        }
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}-temperature-log.csv\""),
                ),
            ],
            out,
        )
            .into_response());
    }
    let period_mkt = rxedge_shared::coldchain::mean_kinetic_temperature(
        &good,
        DEFAULT_DELTA_H_J_PER_MOL,
        max_hold,
    );
    Ok(layout(
        "Temperature log",
        html! {
            div.print-log {
                h1 { "Temperature log: " (id) }
                p { (s.0.store_name()) " · " (fmt(from)) " to " (fmt(to - 1)) " · limits " (format!("{low:.1}–{high:.1} °C")) " · MKT over the period " (c(period_mkt)) " °C" }
                p.noprint { a href=(format!("/coldchain/fridges/{id}/log?from={}&to={}&format=csv", &fmt(from)[..10], &fmt(to - 1)[..10])) { "Download CSV" } }
                table #log {
                    thead { tr { th { "Date" } th { "AM min" } th { "AM max" } th { "PM min" } th { "PM max" } th { "Average" } th { "Out of range" } th { "MKT" } th { "Readings" } } }
                    tbody {
                        @for (d, am, pm, all) in &days {
                            tr class=(if all.minutes_out_of_range > 0.0 { "out" } else { "" }) {
                                td { (&fmt(*d)[..10]) }
                                td { (c(am.min.map(|m| m.1))) } td { (c(am.max.map(|m| m.1))) }
                                td { (c(pm.min.map(|m| m.1))) } td { (c(pm.max.map(|m| m.1))) }
                                td { (c(all.avg_c)) } td { (format!("{:.0} min", all.minutes_out_of_range)) } td { (c(all.mkt_c)) } td { (all.readings) }
                            }
                        }
                    }
                }
                h2 { "Alarms in this period" }
                table {
                    thead { tr { th { "Alarm" } th { "Since" } th { "Ended" } th { "Peak" } th { "Acknowledged" } } }
                    tbody {
                        @if alarms.is_empty() { tr { td colspan="5" { "None." } } }
                        @for a in &alarms {
                            tr {
                                td { (a.try_get::<String, _>("kind").unwrap_or_default()) }
                                td { (fmt(a.try_get("onset_ms").unwrap_or_default())) }
                                td { @if let Some(e) = a.try_get::<Option<i64>, _>("end_ms").ok().flatten() { (fmt(e)) } @else { "ongoing" } }
                                td { (c(a.try_get::<Option<f64>, _>("peak_c").ok().flatten())) }
                                td { (a.try_get::<Option<String>, _>("ack_by").ok().flatten().unwrap_or_default()) " " (a.try_get::<Option<String>, _>("ack_comment").ok().flatten().unwrap_or_default()) }
                            }
                        }
                    }
                }
                @if !history.is_empty() {
                    h2 { "Data-logger history (imported)" }
                    table #logger-history {
                        thead { tr { th { "Date" } th { "Logger" } th { "Min" } th { "Max" } th { "Average" } th { "Minutes out (per alarm)" } th { "Logger alarms" } } }
                        tbody {
                            @for h in &history {
                                tr {
                                    td { (h.try_get::<String, _>("day").unwrap_or_default()) }
                                    td { (h.try_get::<String, _>("serial").unwrap_or_default()) }
                                    td { (c(h.try_get::<Option<f64>, _>("min_c").ok().flatten())) }
                                    td { (c(h.try_get::<Option<f64>, _>("max_c").ok().flatten())) }
                                    td { (c(h.try_get::<Option<f64>, _>("avg_c").ok().flatten())) }
                                    td { (h.try_get::<String, _>("minutes_out").unwrap_or_default()) }
                                    td { (h.try_get::<String, _>("alarms").unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
                p.signature { "Checked by: ____________________   Date: ____________" }
            }
        },
    )
    .into_response())
}

/// Which kiosk's config holds this fridge's rules.
async fn owner_of(
    s: &AppState,
    fridge: &str,
) -> Result<(String, rxedge_shared::protocol::KioskConfig), AppError> {
    for k in crate::devices::list(&s.0.db).await? {
        if let Some(cfg) = crate::devices::config(&s.0.db, &k.id).await? {
            if cfg.fridges.iter().any(|f| f.fridge == fridge) {
                return Ok((k.id, cfg));
            }
        }
    }
    Err(AppError::NotFound(format!(
        "no kiosk watches fridge {fridge}"
    )))
}

async fn rules_page(State(s): State<AppState>, Path(id): Path<String>) -> Result<Markup, AppError> {
    let (kiosk, cfg) = owner_of(&s, &id).await?;
    let Some(r) = cfg.fridges.iter().find(|f| f.fridge == id) else {
        return Err(AppError::NotFound(format!("no rules for {id}")));
    };
    let num = |name: &str, label: &str, v: String| html! { label { (label) " " input type="number" step="any" name=(name) value=(v) required; } };
    Ok(layout(
        "Alarm rules",
        html! {
            h1 { "Alarm rules: " (id) }
            p { "Watched by kiosk " (kiosk) ", config version " (cfg.version) ". Changes reach the kiosk within seconds, or when it reconnects." }
            form.rules method="post" action=(format!("/coldchain/fridges/{id}/rules")) {
                fieldset {
                    legend { "Sampling and equipment" }
                    (num("sample_secs", "Sample every (s)", r.sample_secs.to_string()))
                    (num("max_gap_secs", "A gap longer than this breaks an excursion (s)", r.max_gap_secs.to_string()))
                    (num("hysteresis_c", "Clear only this far back inside the limit (°C)", r.hysteresis_c.to_string()))
                    (num("offline_after_secs", "Sensor offline after (s, 0 off)", r.offline_after_secs.to_string()))
                    (num("door_open_max_secs", "Door open alarm after (s, 0 off)", r.door_open_max_secs.to_string()))
                    (num("bad_read_streak", "Bad reads in a row (0 off)", r.bad_read_streak.to_string()))
                }
                @for (i, t) in r.temp.iter().enumerate() {
                    fieldset {
                        legend { (t.id) ": " (format!("{:?}", t.direction).to_lowercase()) }
                        input type="hidden" name=(format!("t{i}_id")) value=(t.id);
                        input type="hidden" name=(format!("t{i}_direction")) value=(format!("{:?}", t.direction).to_lowercase());
                        (num(&format!("t{i}_limit_c"), "Limit (°C)", t.limit_c.to_string()))
                        label { "Counting " select name=(format!("t{i}_mode")) {
                            option value="single" selected[t.mode == rxedge_shared::coldchain::Mode::Single] { "single continuous event" }
                            option value="cumulative" selected[t.mode == rxedge_shared::coldchain::Mode::Cumulative] { "cumulative" }
                        } }
                        (num(&format!("t{i}_delay_secs"), "Alarm delay (s)", t.delay_secs.to_string()))
                    }
                }
                button type="submit" { "Save and send to the kiosk" }
            }
        },
    ))
}

async fn save_rules(
    State(s): State<AppState>,
    Path(id): Path<String>,
    user: Staff,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    let bad = |k: &str| AppError::BadRequest(format!("{k}: please enter a number"));
    let int = |k: &str| {
        get(k)
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| bad(k))
    };
    let float = |k: &str| {
        get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| bad(k))
    };
    let by = &user.username;
    let (kiosk, cfg) = owner_of(&s, &id).await?;
    let mut temp = Vec::new();
    for i in 0.. {
        let Some(rule_id) = get(&format!("t{i}_id")) else {
            break;
        };
        let direction = match get(&format!("t{i}_direction")).as_deref() {
            Some("low") => rxedge_shared::coldchain::Direction::Low,
            _ => rxedge_shared::coldchain::Direction::High,
        };
        let mode = match get(&format!("t{i}_mode")).as_deref() {
            Some("cumulative") => rxedge_shared::coldchain::Mode::Cumulative,
            _ => rxedge_shared::coldchain::Mode::Single,
        };
        temp.push(rxedge_shared::coldchain::TempRule {
            id: rule_id,
            direction,
            limit_c: float(&format!("t{i}_limit_c"))?,
            mode,
            delay_secs: int(&format!("t{i}_delay_secs"))?,
        });
    }
    let rules = FridgeRules {
        fridge: id.clone(),
        sample_secs: int("sample_secs")?,
        temp,
        hysteresis_c: float("hysteresis_c")?,
        max_gap_secs: int("max_gap_secs")?,
        offline_after_secs: int("offline_after_secs")?,
        door_open_max_secs: int("door_open_max_secs")?,
        bad_read_streak: int("bad_read_streak")?,
        missing_is_excursion: cfg
            .fridges
            .iter()
            .find(|f| f.fridge == id)
            .is_some_and(|f| f.missing_is_excursion),
    };
    rules
        .validate()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let fridges: Vec<FridgeRules> = cfg
        .fridges
        .iter()
        .map(|f| {
            if f.fridge == id {
                rules.clone()
            } else {
                f.clone()
            }
        })
        .collect();
    let edit = crate::devices::ConfigEdit {
        store_name: None,
        languages: None,
        features: None,
        heartbeat_secs: None,
        fridges: Some(fridges),
    };
    let new = crate::web::apply_config_edit(&s, &kiosk, edit).await?;
    tracing::info!(fridge = %id, by = %by, version = new.version, "fridge rules changed");
    Ok(Redirect::to(&format!("/coldchain/fridges/{id}/rules")).into_response())
}

async fn import_page() -> Markup {
    layout(
        "Import logger file",
        html! {
            h1 { "Import a Berlinger logger file" }
            p { "Fridge-tag 2 / 2L / UL or Q-tag CLm doc export (.txt). Interval readings are replayed through our alarm engine with the logger's own settings; daily records become this fridge's history." }
            form method="post" action="/coldchain/import" enctype="multipart/form-data" {
                label { "Fridge " input name="fridge" required placeholder="fridge-1"; }
                label { "File " input type="file" name="file" accept=".txt,text/plain" required; }
                button type="submit" { "Import" }
            }
        },
    )
}

async fn import_upload(State(s): State<AppState>, mut mp: Multipart) -> Result<Markup, AppError> {
    let mut fridge = String::new();
    let mut text = None;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?
    {
        match field.name() {
            Some("fridge") => {
                fridge = field
                    .text()
                    .await
                    .map_err(|e| AppError::BadRequest(e.to_string()))?
            }
            Some("file") => {
                let b = field
                    .bytes()
                    .await
                    .map_err(|e| AppError::BadRequest(format!("upload: {e}")))?;
                text = Some(String::from_utf8_lossy(&b).into_owned());
            }
            _ => {}
        }
    }
    let fridge = fridge.trim().to_owned();
    if fridge.is_empty() {
        return Err(AppError::BadRequest(
            "Say which fridge this logger was in.".into(),
        ));
    }
    let text = text.ok_or_else(|| AppError::BadRequest("No file was attached.".into()))?;
    let export = super::berlinger::parse(&text)
        .map_err(|e| AppError::BadRequest(format!("This file could not be read: {e}")))?;
    let report = super::import::replay(&export);
    super::import::store_history(&s.0.db, &fridge, &report, now_ms()).await?;
    Ok(layout(
        "Import",
        html! {
            h1 { "Imported " (report.device) " " (report.serial) }
            p #summary { (report.readings) " readings, " (report.days.len()) " daily records stored for " (fridge) "." }
            @if let (Some(m), Some(d)) = (report.mkt, report.device_mkt) { p { "MKT: ours " (format!("{m:.2}")) " °C, logger " (format!("{d:.1}")) " °C." } }
            h2 { "Alarms: ours and the logger's" }
            ul {
                @for a in &report.alarms { @for e in &a.episodes { li { "ours: alarm " (a.id) " at " (e.alarm_at) } } }
                @for d in report.device_alarms.iter().filter(|d| !d.carried_over) { li { "logger: alarm " (d.id) " at " (d.alarm_at.clone().unwrap_or_default()) } }
            }
        },
    ))
}

async fn holds_page(State(s): State<AppState>) -> Result<Markup, AppError> {
    let rows = crate::inventory::lots(&s.0.db, Some("on_hold")).await?;
    let mut items = Vec::new();
    for r in &rows {
        let lot_id = r.id;
        let alarm = r.hold_alarm_id.clone();
        let reason = r
            .hold_reason
            .as_deref()
            .and_then(rxedge_shared::inventory::HoldReason::parse)
            .map_or("reason not recorded", |h| h.label());
        let mut facts = html! { (reason) @if let Some(n) = &r.hold_note { ": " (n) } };
        if let Some(a) = &alarm {
            if let Some(ar) =
                sqlx::query("SELECT fridge, start_ms, end_ms, peak_c FROM alarms WHERE id = $1")
                    .bind(a)
                    .fetch_optional(&s.0.db.pool)
                    .await?
            {
                let start: i64 = ar.try_get("start_ms")?;
                let end: Option<i64> = ar.try_get("end_ms")?;
                let fridge: String = ar.try_get("fridge")?;
                let until = end.unwrap_or_else(now_ms);
                let pts = readings(&s, &fridge, start, until + 1).await?;
                let good: Vec<(i64, f64)> =
                    pts.iter().filter_map(|(t, c)| Some((*t, (*c)?))).collect();
                let mkt = rxedge_shared::coldchain::mean_kinetic_temperature(
                    &good,
                    DEFAULT_DELTA_H_J_PER_MOL,
                    300_000,
                );
                let peak = ar
                    .try_get::<Option<f64>, _>("peak_c")?
                    .or_else(|| good.iter().map(|g| g.1).reduce(f64::max));
                facts = html! {
                    a href=(format!("/coldchain/alarms/{a}")) { "excursion" } " from " (fmt(start)) ", "
                    (minutes(until - start)) @if end.is_none() { " so far" } ", peak " (peak.map_or("–".into(), |p| format!("{p:.1} °C")))
                    ", MKT " (mkt.map_or("–".into(), |m| format!("{m:.1} °C")))
                };
            }
        }
        items.push(html! {
            tr data-lot=(lot_id) {
                td { (r.product) } td { (r.lot) } td { (r.expiry) }
                td { (r.quantity) } td { (r.location) } td.excursion { (facts) }
                td {
                    form method="post" action=(format!("/inventory/lots/{lot_id}/decision")) {
                        input name="note" required placeholder="Why";
                        button name="decision" value="release" { "Release" }
                        button name="decision" value="discard" { "Discard" }
                    }
                }
            }
        });
    }
    Ok(layout(
        "Stock on hold",
        html! {
            h1 { "Stock on hold" }
            p { "Lots in a fridge with an excursion alarm are held automatically; damaged stock and stock under investigation is held from its lot page. Held lots cannot be dispensed or reserved until a pharmacist releases them. Discarding writes the remaining packs off." }
            table #holds {
                thead { tr { th { "Product" } th { "Lot" } th { "Expiry" } th { "Qty" } th { "Location" } th { "Why held" } th { "Decision" } } }
                tbody { @if items.is_empty() { tr { td colspan="7" { "Nothing is on hold." } } } @for i in items { (i) } }
            }
        },
    ))
}
