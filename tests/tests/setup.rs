//! First-run setup and accounts through the API and the command line: every
//! refusal in words, one administrator even when two browsers finish at once,
//! and the wizard closed afterwards.

use anyhow::Result;
use rxedge_tests::*;
use serde_json::{json, Value};

async fn post(url: &str, body: Value) -> Result<(reqwest::StatusCode, Value)> {
    let r = http_post(url).json(&body).send().await?;
    let st = r.status();
    Ok((st, r.json().await.unwrap_or(Value::Null)))
}

fn form(username: &str) -> Value {
    json!({
        "username": username, "display_name": "Anna Muster",
        "password": "lake view pharmacy", "password_again": "lake view pharmacy",
        "store_name": "Apotheke am See", "kiosk_id": "entrance", "kiosk_name": "Entrance"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_refuses_bad_input_creates_one_admin_and_then_closes() -> Result<()> {
    let t = tempdir("setup")?;
    let mut hub = Hub::prepare(&t.path().join("hub"), BrokerChoice::Embedded, None, "").await?;
    hub.accounts = false;
    hub.spawn().await?;
    let url = format!("{}/api/setup", hub.url());
    for (patch, says) in [
        (
            json!({ "password": "short", "password_again": "short" }),
            "password: at least 12",
        ),
        (
            json!({ "password_again": "something else entirely" }),
            "the two passwords differ",
        ),
        (json!({ "username": "Anna M" }), "user name"),
        (json!({ "kiosk_id": "Front Desk!" }), "kiosk id"),
        (json!({ "store_name": " " }), "store name"),
    ] {
        let mut body = form("anna.m");
        for (k, v) in patch.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let (st, v) = post(&url, body).await?;
        assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"].as_str().unwrap_or("").contains(says), "{v}");
    }
    // Two browsers finish at once: one administrator.
    let (a, b) = tokio::join!(post(&url, form("anna.m")), post(&url, form("max.m")));
    let (a, b) = (a?, b?);
    let won: Vec<_> = [&a, &b].into_iter().filter(|r| r.0.is_success()).collect();
    assert_eq!(won.len(), 1, "{a:?} {b:?}");
    assert!(
        won[0].1["enroll"]
            .as_str()
            .unwrap_or("")
            .contains("--id entrance --code "),
        "{won:?}"
    );
    let lost = if a.0.is_success() { &b } else { &a };
    assert_eq!(lost.0, reqwest::StatusCode::CONFLICT, "{lost:?}");
    let db = hub.db().await?;
    let admins: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE role = 'admin'")
            .fetch_one(&db)
            .await?;
    assert_eq!(admins, 1);
    let (st, v) = post(&url, form("eve")).await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT, "{v}");
    let home = http_get(hub.url()).send().await?.text().await?;
    // Set up: every screen now asks for a sign-in, under the store's new name.
    assert!(home.contains("Sign in to Apotheke am See"), "{home}");

    // Accounts from the command line: the password from the environment.
    let add = |name: &str, role: &str, pw: &str| {
        std::process::Command::new(bin("rxedge-hub").expect("binary"))
            .args([
                "--config",
                &hub.config.to_string_lossy(),
                "user",
                "add",
                name,
                "--role",
                role,
            ])
            .env("RXEDGE_PASSWORD", pw)
            .output()
    };
    let out = add("tom", "technician", "fridge checks daily")?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = add("tom", "technician", "fridge checks daily")?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("user name tom is taken"));
    let out = add("zoe", "cashier", "fridge checks daily")?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("role: admin, pharmacist or technician"));
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE username = 'tom'")
        .fetch_one(&db)
        .await?;
    assert_eq!(role, "technician");
    Ok(())
}
