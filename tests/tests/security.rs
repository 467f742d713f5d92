//! The security suite: each attempt is refused, and the hub keeps working.
//!
//! - every role (and no one) against every route of the role matrix;
//! - sign-in: throttling, session cookies, rotation, idle expiry, sign-out,
//!   disabled accounts, missing or wrong CSRF tokens, security headers;
//! - a revoked kiosk and an event dated in the future;
//! - SQL metacharacters in names, searches and paths;
//! - oversize bodies and a decompression-bomb image;
//! - a tampered audit row, named by `rxedge-hub audit verify`.
//!
//! Forged signatures, unknown kiosks and replayed event ids are refused in
//! `sync_and_dead_letters.rs`; an XSS payload in a patient name is shown in
//! real Chromium in `browser.rs`.

use anyhow::{anyhow, bail, Result};
use reqwest::{header, Method, StatusCode};
use rxedge_hub::auth::policy::{Access, ROUTES};
use rxedge_tests::*;
use serde_json::{json, Value};
use sqlx::Row as _;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A client that does not follow redirects, so a sign-in redirect is seen as one.
fn raw() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()?)
}

fn denied(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("x-rxedge-denied")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_meets_the_role_matrix_on_every_route() -> Result<()> {
    let t = tempdir("sec-matrix")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let c = raw()?;
    let people: [(&str, Option<Role>); 4] = [
        ("anonymous", None),
        ("ada", Some(Role::Admin)),
        ("pia", Some(Role::Pharmacist)),
        ("tess", Some(Role::Technician)),
    ];
    let mut wrong = Vec::new();
    let mut checked = 0;
    for &(method, pattern, access) in ROUTES {
        // Signing out ends the session the rest of the table needs; it is tested below.
        if pattern == "/api/logout" {
            continue;
        }
        let path = pattern
            .replace("{id}", "0")
            .replace("{sha}", &"0".repeat(64))
            .replace("{gtin}", "0")
            .replace("{username}", "nobody");
        for (user, role) in people {
            let m = Method::from_bytes(method.as_bytes())?;
            let mut rb = c.request(m.clone(), format!("{}{path}", hub.url()));
            if role.is_some() {
                let s = session_for(&hub.url(), user)
                    .ok_or_else(|| anyhow!("no session for {user}"))?;
                rb = rb
                    .header(header::COOKIE, s.cookie)
                    .header("x-csrf-token", s.csrf);
            }
            if m != Method::GET && m != Method::HEAD {
                rb = rb
                    .header(header::CONTENT_TYPE, "application/json")
                    .body("{}");
            }
            let r = rb.send().await?;
            let (st, why) = (r.status(), denied(&r));
            let to_login = r
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|l| l.starts_with("/login"));
            // The router's own 404/405 (empty body) means the table names a route that does not exist.
            let missing = st == StatusCode::METHOD_NOT_ALLOWED
                || (st == StatusCode::NOT_FOUND && r.content_length() == Some(0));
            let ok = match (access, role) {
                (Access::Public, _) => why.is_none() && !missing,
                (Access::Kiosk, _) => !st.is_success() && !missing,
                (Access::Staff(_), None) => {
                    (st == StatusCode::UNAUTHORIZED && why.as_deref() == Some("signin"))
                        || (st == StatusCode::SEE_OTHER && to_login)
                }
                (Access::Staff(roles), Some(r)) if roles.contains(&r) => why.is_none() && !missing,
                (Access::Staff(_), Some(_)) => {
                    st == StatusCode::FORBIDDEN && why.as_deref() == Some("role")
                }
            };
            checked += 1;
            if !ok {
                wrong.push(format!("{method} {path} as {user}: {st} {why:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 400, "{checked}");
    // A route nobody listed is closed to everyone, administrators included.
    assert!(rxedge_hub::auth::policy::access("GET", "/not/in/the/table").is_none());
    // Every refusal by role is in the audit trail, with the name on it.
    let audit = get_as(
        Role::Admin,
        format!("{}/admin/audit.csv?q=refused&limit=5000", hub.url()),
    )
    .send()
    .await?
    .error_for_status()?
    .text()
    .await?;
    assert!(
        audit.contains("tess,refused POST /api/orders/{id}/action"),
        "{}",
        &audit[..audit.len().min(2000)]
    );
    // With the hub's session cache on (the default), disabling an account and
    // signing out still end those sessions at once.
    let me = |user: &'static str| get_user(user, format!("{}/api/me", hub.url())).send();
    assert_eq!(me("tess").await?.status(), StatusCode::OK);
    let r = post_as(Role::Admin, format!("{}/api/users/tess/disable", hub.url()))
        .send()
        .await?;
    assert!(r.status().is_success());
    assert_eq!(
        me("tess").await?.status(),
        StatusCode::UNAUTHORIZED,
        "disabled"
    );
    assert_eq!(me("pia").await?.status(), StatusCode::OK);
    let r = post_user("pia", format!("{}/api/logout", hub.url()))
        .send()
        .await?;
    assert!(r.status().is_success());
    assert_eq!(
        me("pia").await?.status(),
        StatusCode::UNAUTHORIZED,
        "signed out"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_throttled_sessions_end_and_changes_need_the_csrf_token() -> Result<()> {
    let t = tempdir("sec-session")?;
    // This test moves session times in the store, so every request must read it.
    let hub = Hub::start_with(
        &t.path().join("hub"),
        BrokerChoice::Embedded,
        None,
        "[auth]\nsession_cache_secs = 0\n",
    )
    .await?;
    let base = hub.url();
    let c = raw()?;

    // Security headers on a page.
    let r = get_as(Role::Pharmacist, format!("{base}/orders"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let h = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let csp = h("content-security-policy");
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("cache-control"), "no-store");

    // Cookies: the session is HttpOnly and SameSite=Strict; the CSRF cookie is readable by the page.
    let r = c
        .post(format!("{base}/api/login"))
        .json(&json!({ "username": "max", "password": TEST_PASSWORD }))
        .send()
        .await?;
    let cookies: Vec<String> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("rxedge_session="))
        .ok_or_else(|| anyhow!("{cookies:?}"))?;
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict"),
        "{session_cookie}"
    );
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("rxedge_csrf=") && !c.contains("HttpOnly")));

    // A new session at every sign-in; the browser's old one ends.
    let first = login(&base, "max", TEST_PASSWORD).await?;
    let r = c
        .post(format!("{base}/api/login"))
        .header(header::COOKIE, &first.cookie)
        .json(&json!({ "username": "max", "password": TEST_PASSWORD }))
        .send()
        .await?;
    assert!(r.status().is_success());
    let me = |s: &Session| {
        c.get(format!("{base}/api/me"))
            .header(header::COOKIE, s.cookie.clone())
            .send()
    };
    assert_eq!(
        me(&first).await?.status(),
        StatusCode::UNAUTHORIZED,
        "rotated away"
    );

    // A screen's own background refresh does not count as activity; a request the person makes does.
    let bg = login(&base, "max", TEST_PASSWORD).await?;
    let pool = hub.db().await?;
    let seen = || async {
        let v: i64 = sqlx::query("SELECT last_seen_ms FROM sessions WHERE username = 'max' ORDER BY last_seen_ms DESC LIMIT 1")
            .fetch_one(&pool)
            .await?
            .try_get("last_seen_ms")?;
        Ok::<i64, anyhow::Error>(v)
    };
    sqlx::query("UPDATE sessions SET last_seen_ms = last_seen_ms - 600000 WHERE username = 'max'")
        .execute(&pool)
        .await?;
    let before = seen().await?;
    let r = c
        .get(format!("{base}/api/me"))
        .header(header::COOKIE, &bg.cookie)
        .header("x-rxedge-background", "1")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK, "still inside the idle window");
    assert_eq!(
        seen().await?,
        before,
        "a background refresh does not extend the session"
    );
    assert_eq!(me(&bg).await?.status(), StatusCode::OK);
    assert!(seen().await? > before + 500_000, "a real request does");

    // Idle too long: the session ends.
    let idle = login(&base, "max", TEST_PASSWORD).await?;
    assert_eq!(me(&idle).await?.status(), StatusCode::OK);
    sqlx::query("UPDATE sessions SET last_seen_ms = last_seen_ms - 3600000 WHERE username = 'max'")
        .execute(&pool)
        .await?;
    assert_eq!(me(&idle).await?.status(), StatusCode::UNAUTHORIZED, "idle");

    // Sign-out ends the session.
    let out = login(&base, "max", TEST_PASSWORD).await?;
    let r = c
        .post(format!("{base}/api/logout"))
        .header(header::COOKIE, &out.cookie)
        .header("x-csrf-token", &out.csrf)
        .send()
        .await?;
    assert!(r.status().is_success());
    assert_eq!(
        me(&out).await?.status(),
        StatusCode::UNAUTHORIZED,
        "signed out"
    );

    // A change without the CSRF token, or with another session's, is refused and changes nothing.
    let pia = session_for(&base, "pia").ok_or_else(|| anyhow!("no session"))?;
    let other = login(&base, "max", TEST_PASSWORD).await?;
    for token in [None, Some(other.csrf.as_str()), Some("")] {
        let mut rb = c
            .post(format!("{base}/api/patients"))
            .header(header::COOKIE, &pia.cookie)
            .json(&json!({ "name": "Cross Site" }));
        if let Some(t) = token {
            rb = rb.header("x-csrf-token", t);
        }
        let r = rb.send().await?;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(denied(&r).as_deref(), Some("csrf"));
    }
    let list = get_json(format!("{base}/api/patients")).await?;
    assert_eq!(list, json!([]), "nothing was created");
    let (st, _) = post_json(
        format!("{base}/api/patients"),
        json!({ "name": "Real Person" }),
    )
    .await?;
    assert!(st.is_success(), "the right token works");

    // Throttling: five wrong passwords lock the account, even against the right one.
    for _ in 0..5 {
        let e = login(&base, "tess", "not her password").await;
        assert!(e.is_err_and(|e| e.to_string().contains("401")));
    }
    let locked = login(&base, "tess", TEST_PASSWORD).await;
    let msg = locked.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("429") && msg.contains("Too many failed sign-ins"),
        "{msg}"
    );
    // Another account signs in as usual; the locked one's existing session still works.
    login(&base, "ada", TEST_PASSWORD).await?;
    let r = get_as(Role::Technician, format!("{base}/api/me"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);

    // An administrator disables an account: its sessions end and it cannot sign in.
    let r = post_as(Role::Admin, format!("{base}/api/users/tess/disable"))
        .send()
        .await?;
    assert!(r.status().is_success(), "{}", r.text().await?);
    let r = get_as(Role::Technician, format!("{base}/api/me"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A pharmacist cannot create accounts.
    let r = post_as(Role::Pharmacist, format!("{base}/api/users"))
        .json(&json!({ "username": "eve", "display_name": "Eve", "role": "admin", "password": "a long password here" }))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The audit trail has the failed, locked and good sign-ins, with no password in it.
    let audit = get_as(
        Role::Admin,
        format!("{base}/admin/audit.csv?q=login&limit=5000"),
    )
    .send()
    .await?
    .error_for_status()?
    .text()
    .await?;
    assert_eq!(audit.matches("tess,login.failed").count(), 5, "{audit}");
    assert!(audit.contains("tess,login.locked"), "{audit}");
    assert!(audit.contains("max,login,"), "{audit}");
    let all = get_as(Role::Admin, format!("{base}/admin/audit.csv?limit=5000"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!all.contains(TEST_PASSWORD) && !all.contains("not her password"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_kiosk_and_a_future_dated_event_are_refused() -> Result<()> {
    let t = tempdir("sec-kiosk")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    assert_eq!(kiosk.burst("before", 5).await?, 5);
    wait_committed(&hub, "k1", "before", 5, WAIT).await?;
    let pool = hub.db().await?;
    let key = rxedge_shared::sign::decode_secret(&kiosk.key_text()?)?;

    // The kiosk's own key, but dated two hours ahead of the hub's clock.
    let mut env = test_envelope("k1", uuid::Uuid::now_v7(), 1_000_000, "from-the-future")?;
    env.created_ms = rxedge_shared::clock::system_now_ms() + 2 * 3_600_000;
    let client = mqtt_as_new_kiosk(&hub, "attacker").await?;
    // k1's key signs, the attacker's connection sends, under k1's topic.
    let send_as_k1 = |env: rxedge_shared::protocol::Envelope| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let signed =
                rxedge_shared::sign::Signed::sign(&key, rxedge_shared::sign::Context::Event, &env)?;
            client
                .publish(
                    "rxedge/v1/test-store/k1/events",
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    event_frame(&signed, 0),
                )
                .await?;
            Ok::<(), anyhow::Error>(())
        }
    };
    send_as_k1(env).await?;
    let dead = |reason: &'static str| {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM dead_letters WHERE reason = $1",
            )
            .bind(reason)
            .fetch_one(&pool)
            .await?
            .try_get("n")?;
            Ok::<i64, anyhow::Error>(n)
        }
    };
    wait_for("the future-dated event refused", WAIT, || async {
        Ok((dead("out_of_window").await? == 1).then_some(()))
    })
    .await?;

    // Nobody gets into the broker without a kiosk's own login.
    let k1_client = rxedge_shared::topics::kiosk_client_id("test-store", "k1");
    let k1_password = rxedge_shared::sign::mqtt_password(&key, "test-store", "k1");
    assert!(
        mqtt_connect(hub.mqtt_port, "nobody", None).await?.is_none(),
        "anonymous"
    );
    assert!(
        mqtt_connect(hub.mqtt_port, &k1_client, Some(("k1", "not-the-password")))
            .await?
            .is_none(),
        "wrong password"
    );
    assert!(
        mqtt_connect(
            hub.mqtt_port,
            "rxedge-kiosk-test-store-attacker",
            Some(("k1", &k1_password))
        )
        .await?
        .is_none(),
        "k1's login under another client id"
    );
    assert!(kiosk.status().await?["connected"] == true);
    // The login an external broker's password file needs, as the kiosk prints it.
    let out = std::process::Command::new(bin("rxedge-kiosk")?)
        .arg("--config")
        .arg(&kiosk.config)
        .arg("mqtt-login")
        .output()?;
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("password = {k1_password}"))
            && printed.contains(&format!("client_id = {k1_client}"))
            && printed.contains("username = k1"),
        "{printed}"
    );

    // A technician cannot revoke; an administrator can.
    let url = format!("{}/api/kiosks/k1/revoke", hub.url());
    let r = post_as(Role::Technician, &url).send().await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_as(Role::Admin, &url).send().await?;
    assert!(r.status().is_success(), "{}", r.text().await?);

    // Its connection is closed and its login refused from now on.
    wait_for("the revoked kiosk disconnected", WAIT, || async {
        Ok((kiosk.status().await?["connected"] == false).then_some(()))
    })
    .await?;
    assert!(
        mqtt_connect(hub.mqtt_port, &k1_client, Some(("k1", &k1_password)))
            .await?
            .is_none(),
        "the revoked kiosk's login"
    );
    // What it records meanwhile stays in its own outbox, never committed.
    assert_eq!(kiosk.burst("after", 5).await?, 5);
    // And an event in its name from a connection still open is refused by ingest.
    send_as_k1(test_envelope(
        "k1",
        uuid::Uuid::now_v7(),
        2_000_000,
        "after-revocation",
    )?)
    .await?;
    wait_for("the revoked kiosk's event refused", WAIT, || async {
        Ok((dead("revoked_kiosk").await? >= 1).then_some(()))
    })
    .await?;
    let rows = committed(&pool, "k1").await?;
    assert!(rows
        .iter()
        .all(|(_, t)| !t.starts_with("after") && t != "from-the-future"));
    let st = kiosk.status().await?;
    let waiting = st["outbox"]["queued"].as_u64().unwrap_or(0)
        + st["outbox"]["inflight"].as_u64().unwrap_or(0);
    assert!(waiting >= 5, "{st}");
    let (_, st) = put_blob(&hub, "k1", &key, b"not really a jpeg".to_vec()).await?;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let home = get_text(hub.url()).await?;
    assert!(home.contains("revoked"), "the screen says so");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_metacharacters_are_only_ever_data() -> Result<()> {
    let t = tempdir("sec-sql")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    let names = [
        "Robert'); DROP TABLE patients;--",
        "O'Brien \" OR \"1\"=\"1",
        "x' UNION SELECT password_hash, 1 FROM users --",
        "%_\\ 100% sure; --",
    ];
    for n in names {
        let (st, v) = post_json(
            format!("{base}/api/patients"),
            json!({ "name": n, "allergies": "penicillins = atc:J01C' OR 1=1 --" }),
        )
        .await?;
        assert!(st.is_success(), "{n}: {st} {v}");
        assert_eq!(v["name"], n, "stored exactly as typed");
    }
    // A NUL byte (which PostgreSQL cannot keep in text) is refused in words.
    for body in [
        json!({ "name": "Nul\u{0}Byte" }),
        json!({ "name": "Plain", "insurance": "Kasse\u{0}" }),
    ] {
        let (st, v) = post_json(format!("{base}/api/patients"), body).await?;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    // Searches with quotes and wildcards match literally, not everything.
    for (q, expect) in [
        ("' OR '1'='1", 0usize),
        ("Robert');", 1),
        ("UNION SELECT", 1),
        ("%", 1),
    ] {
        let q_enc: String = form_urlencoded_encode(q);
        let list = get_json(format!("{base}/api/patients?q={q_enc}")).await?;
        let n = list.as_array().map(Vec::len).unwrap_or(usize::MAX);
        assert_eq!(n, expect, "search {q:?}: {list}");
    }
    // Quotes in paths and other searches: a plain answer, never a store error.
    for path in [
        "/api/orders/'%20OR%201=1--",
        "/api/patients/1'%3B%20DROP%20TABLE%20users--",
        "/api/catalog?q=%27%20OR%201%3D1--",
        "/api/ocr/search?q=%27)%20OR%20(%271",
    ] {
        let r = http_get(format!("{base}{path}")).send().await?;
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            r.status()
        );
    }
    let r = get_as(
        Role::Admin,
        format!("{base}/admin/audit?q=%25%27%20OR%201%3D1%20--"),
    )
    .send()
    .await?;
    assert_eq!(r.status(), StatusCode::OK);
    // The tables are all still there and whole.
    let pool = hub.db().await?;
    let n: i64 = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM users")
        .fetch_one(&pool)
        .await?
        .try_get("n")?;
    assert_eq!(n, TEST_ACCOUNTS.len() as i64);
    assert!(get_json(format!("{base}/api/patients"))
        .await?
        .as_array()
        .is_some_and(|a| a.len() >= 3));
    hub.cli(&["audit", "verify"])?;
    Ok(())
}

fn form_urlencoded_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A PNG whose header claims `w` × `h` pixels, with almost no data behind it.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // One compressed block of zeros: tiny on the wire, gigabytes once inflated.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    use std::io::Write as _;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..8 {
        let _ = z.write_all(&zeros);
    }
    let data = z.finish().unwrap_or_default();
    chunk(&mut out, b"IDAT", &data);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_bomb_uploads_are_refused_in_words_and_the_hub_goes_on() -> Result<()> {
    let t = tempdir("sec-upload")?;
    let hub = Hub::start_with(
        &t.path().join("hub"),
        BrokerChoice::Embedded,
        None,
        "[ingest]\nmax_image_bytes = 300000\n",
    )
    .await?;
    let base = hub.url();
    // Over the size limit: refused before it is stored.
    let r = http_post(format!("{base}/api/ocr/jobs?filename=big.png"))
        .body(vec![0u8; 600_000])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A decompression bomb: 60000 × 60000 pixels claimed by a small file.
    let bomb = png_claiming(60_000, 60_000);
    assert!(bomb.len() < 300_000, "{}", bomb.len());
    let r = http_post(format!("{base}/api/ocr/jobs?filename=bomb.png"))
        .body(bomb)
        .send()
        .await?;
    let st = r.status();
    let v: Value = r.json().await?;
    let reason = if st.is_client_error() {
        v["error"].as_str().unwrap_or("").to_owned()
    } else {
        let id = v["id"].as_str().ok_or_else(|| anyhow!("{v}"))?.to_owned();
        wait_for("the bomb's job fails", WAIT, || async {
            let j = get_json(format!("{base}/api/ocr/jobs/{id}")).await?;
            Ok((j["state"] == "failed").then(|| j["error"].as_str().unwrap_or("").to_owned()))
        })
        .await?
    };
    assert!(reason.contains("pixels"), "{reason}");
    // A JSON body far over any form's size.
    let r = http_post(format!("{base}/api/patients"))
        .json(&json!({ "name": "x".repeat(3 << 20) }))
        .send()
        .await?;
    assert!(r.status().is_client_error(), "{}", r.status());
    // A sign-in with a huge body is refused too, before any password work.
    let r = raw()?
        .post(format!("{base}/api/login"))
        .json(&json!({ "username": "pia", "password": "p".repeat(1 << 20) }))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // And the hub goes on.
    let (st, v) = post_json(
        format!("{base}/api/patients"),
        json!({ "name": "Still Here" }),
    )
    .await?;
    assert!(st.is_success(), "{v}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_audit_row_is_named_by_audit_verify() -> Result<()> {
    let t = tempdir("sec-audit")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let base = hub.url();
    for name in ["A", "B", "C"] {
        let (st, _) = post_json(format!("{base}/api/patients"), json!({ "name": name })).await?;
        assert!(st.is_success());
    }
    let ok = hub.cli(&["audit", "verify"])?;
    assert!(ok.contains("chain intact"), "{ok}");
    let pool = hub.db().await?;
    let target: i64 = sqlx::query(
        "SELECT seq FROM audit_log WHERE action = 'POST /api/patients' ORDER BY seq LIMIT 1 OFFSET 1",
    )
    .fetch_one(&pool)
    .await?
    .try_get("seq")?;
    // The database itself refuses an edit...
    let refused = sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE seq = $1")
        .bind(target)
        .execute(&pool)
        .await;
    assert!(refused.is_err(), "the append-only trigger refused the edit");
    // ...so a tamperer drops the trigger first; the chain still tells.
    if hub.db_url.starts_with("postgres") {
        sqlx::query("DROP TRIGGER audit_log_no_change ON audit_log")
            .execute(&pool)
            .await?;
    } else {
        sqlx::query("DROP TRIGGER audit_log_no_update")
            .execute(&pool)
            .await?;
    }
    sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE seq = $1")
        .bind(target)
        .execute(&pool)
        .await?;
    let e = match hub.cli(&["audit", "verify"]) {
        Ok(out) => bail!("verify passed a tampered chain: {out}"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains(&format!("broken at entry {target}")) && e.contains("edited"),
        "{e}"
    );
    let page = get_as(Role::Admin, format!("{base}/admin/audit"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        page.contains("Tampering detected"),
        "the admin screen says so too"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_between_starts_is_in_the_audit_trail_with_secrets_masked() -> Result<()> {
    let t = tempdir("sec-config")?;
    let mut hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let db_url = hub.db_url.clone();
    let rows = |action: &'static str| {
        let url = db_url.clone();
        async move {
            let pool = rxedge_hub::store::Db::connect(&url, 1).await?;
            let r: Vec<String> =
                sqlx::query("SELECT detail FROM audit_log WHERE action = $1 ORDER BY seq")
                    .bind(action)
                    .fetch_all(&pool.pool)
                    .await?
                    .iter()
                    .map(|r| r.try_get("detail"))
                    .collect::<Result<_, _>>()?;
            pool.pool.close().await;
            Ok::<_, anyhow::Error>(r)
        }
    };
    let first = rows("config.initial").await?;
    assert_eq!(first.len(), 1, "the first start records the whole config");
    // A restart with the same file records nothing new.
    hub.stop();
    hub.spawn().await?;
    assert!(rows("config.changed").await?.is_empty());
    // Someone edits hub.toml: a threshold and a secret.
    hub.stop();
    let text = std::fs::read_to_string(&hub.config)?;
    std::fs::write(
        &hub.config,
        format!("{text}\n[notify]\nsmtp_url = \"smtp://desk:Pa55word-9@mail.example:587\"\n[coldchain]\nescalate_after_secs = 1200\n"),
    )?;
    hub.spawn().await?;
    let changed = rows("config.changed").await?;
    assert_eq!(changed.len(), 1, "{changed:?}");
    let d: Value = serde_json::from_str(&changed[0])?;
    assert_eq!(d["coldchain.escalate_after_secs"]["after"], "1200", "{d}");
    let smtp = d["notify.smtp_url"]["after"].as_str().unwrap_or("");
    assert!(
        smtp.contains("mail.example:587") && !smtp.contains("Pa55word"),
        "{smtp}"
    );
    assert_eq!(
        d.as_object().map(|m| m.len()),
        Some(2),
        "only what changed: {d}"
    );
    let ok = hub.cli(&["audit", "verify"])?;
    assert!(ok.contains("chain intact"), "{ok}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_past_their_retention_are_removed_and_needed_ones_kept() -> Result<()> {
    let t = tempdir("sec-retention")?;
    // Keep nothing beyond need, and OCR off so an uploaded page stays queued (needed).
    let mut hub = Hub::start_with(
        &t.path().join("hub"),
        BrokerChoice::Embedded,
        None,
        "[blobs]\nkeep_days = 0\norphan_days = 0\n[ocr]\nenabled = false\n",
    )
    .await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let key = rxedge_shared::sign::decode_secret(&kiosk.key_text()?)?;
    // An image whose event never came: an orphan.
    let (orphan, st) = put_blob(&hub, "k1", &key, b"an orphaned page".to_vec()).await?;
    assert_eq!(st, StatusCode::CREATED);
    // A page waiting for OCR: needed.
    let png = png_claiming(4, 4);
    let r = http_post(format!("{}/api/ocr/jobs?filename=wait.png", hub.url()))
        .body(png.clone())
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await?);
    let kept = {
        use sha2::Digest as _;
        format!("{:x}", sha2::Sha256::digest(&png))
    };
    let store = hub.dir.join("state/blobs");
    let blob = |sha: &str| store.join(&sha[..2]).join(sha);
    assert!(blob(&orphan).exists() && blob(&kept).exists());
    // The sweep runs at start (and hourly).
    hub.stop();
    hub.spawn().await?;
    wait_for("the orphan removed", WAIT, || async {
        Ok((!blob(&orphan).exists()).then_some(()))
    })
    .await?;
    assert!(blob(&kept).exists(), "the queued page's image stays");
    let audit = get_as(
        Role::Admin,
        format!("{}/admin/audit.csv?q=blobs.removed", hub.url()),
    )
    .send()
    .await?
    .text()
    .await?;
    assert!(audit.contains(&orphan), "{audit}");
    Ok(())
}

/// The ACL exactly as `docs/security.md` documents it, for this store.
fn documented_acl(store: &str) -> Result<String> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/security.md"),
    )?;
    let start = doc
        .find("```acl\n")
        .ok_or_else(|| anyhow!("no ```acl block in docs/security.md"))?
        + "```acl\n".len();
    let len = doc[start..]
        .find("```")
        .ok_or_else(|| anyhow!("unterminated acl block"))?;
    Ok(doc[start..start + len].replace("STORE", store))
}

fn mosquitto_passwd(file: &std::path::Path, create: bool, user: &str, pass: &str) -> Result<()> {
    let mut c = std::process::Command::new("mosquitto_passwd");
    if create {
        c.arg("-c");
    }
    let out = c.arg("-b").arg(file).arg(user).arg(pass).output()?;
    if !out.status.success() {
        bail!("mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mosquitto_the_documented_acl_keeps_each_kiosk_in_its_own_topics() -> Result<()> {
    let t = tempdir("sec-mosquitto")?;
    let dir = t.path().join("mosquitto");
    std::fs::create_dir_all(&dir)?;
    // Mosquitto drops root for its own user before it reads these files.
    use std::os::unix::fs::PermissionsExt as _;
    for d in [t.path(), dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    let (acl, passwd) = (dir.join("rxedge.acl"), dir.join("rxedge.passwd"));
    std::fs::write(&acl, documented_acl("test-store")?)?;
    let hub_secret = uuid::Uuid::now_v7().simple().to_string();
    if which("mosquitto_passwd").is_none() {
        return skip_or_fail("mosquitto_passwd missing (Debian package mosquitto)");
    }
    mosquitto_passwd(&passwd, true, "rxedge-hub", &hub_secret)?;
    mosquitto_passwd(&passwd, false, "k2", "k2 password")?;
    for f in [&acl, &passwd] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644))?;
    }
    let conf = format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwd.display(),
        acl.display()
    );
    let Some(m) = Mosquitto::start_with(&dir, &conf).await? else {
        return skip_or_fail("mosquitto missing (Debian package mosquitto)");
    };
    let mut hub = Hub::prepare(
        &t.path().join("hub"),
        BrokerChoice::External(m.port),
        None,
        "",
    )
    .await?;
    hub.env
        .push(("RXEDGE_HUB__BROKER__USERNAME".into(), "rxedge-hub".into()));
    hub.env
        .push(("RXEDGE_HUB__BROKER__PASSWORD".into(), hub_secret));
    hub.spawn().await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("k1"), &hub, "k1", "").await?;
    // The kiosk's login, as it prints it, into the password file.
    let out = std::process::Command::new(bin("rxedge-kiosk")?)
        .arg("--config")
        .arg(&kiosk.config)
        .arg("mqtt-login")
        .output()?;
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let password = printed
        .lines()
        .find_map(|l| l.strip_prefix("password = "))
        .ok_or_else(|| anyhow!("no password in {printed:?}"))?;
    mosquitto_passwd(&passwd, false, "k1", password)?;
    m.reload()?;

    // Events flow end to end through the confined broker.
    assert_eq!(kiosk.burst("acl", 20).await?, 20);
    let d = wait_committed(&hub, "k1", "acl", 20, WAIT).await?;
    assert_eq!((d.lost, d.duplicated), (0, 0));

    // Nobody anonymous; k2 may publish in its own tree only.
    assert!(mqtt_connect(m.port, "anon", None).await?.is_none());
    let k2 = mqtt_connect(m.port, "k2-client", Some(("k2", "k2 password")))
        .await?
        .ok_or_else(|| anyhow!("k2 could not log in"))?;
    let qos = rumqttc::QoS::AtLeastOnce;
    k2.publish(
        "rxedge/v1/test-store/k1/events",
        qos,
        false,
        b"into k1".to_vec(),
    )
    .await?;
    k2.publish(
        "rxedge/v1/test-store/k2/events",
        qos,
        false,
        b"into k2".to_vec(),
    )
    .await?;
    // Same publisher, same hub subscription: had k1's arrived, it would be first.
    let pool = hub.db().await?;
    wait_for("k2's own message at the hub", WAIT, || async {
        let n: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM dead_letters WHERE kiosk_id = 'k2'",
        )
        .fetch_one(&pool)
        .await?
        .try_get("n")?;
        Ok((n == 1).then_some(()))
    })
    .await?;
    let into_k1: i64 =
        sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM dead_letters WHERE kiosk_id = 'k1'")
            .fetch_one(&pool)
            .await?
            .try_get("n")?;
    assert_eq!(into_k1, 0, "the ACL kept k2 out of k1's topics");
    Ok(())
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(cmd))
            .find(|p| p.exists())
    })
}
