//! Patient notifications end to end: a patient who opted in by e-mail is
//! told in their eMediplan's language when the order is ready (a real SMTP
//! conversation); by SMS through the pharmacy's gateway (a webhook) when the
//! pharmacist asks for a word, retried after the gateway fails once; sends
//! that keep failing end as "failed" with the error on the order, and are
//! sent when retried by hand. A patient who did not opt in is not messaged.

use anyhow::{anyhow, Result};
use rxedge_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_are_told_in_their_language_and_failed_sends_are_retried() -> Result<()> {
    let t = tempdir("notify")?;
    // The pharmacy's SMS gateway: fails while `fail` > 0 (counting down;
    // u32::MAX fails for good).
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let fail = Arc::new(AtomicU32::new(1));
    let (sink, failing) = (got.clone(), fail.clone());
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let (sink, failing) = (sink.clone(), failing.clone());
            async move {
                let f = failing.load(Ordering::SeqCst);
                if f > 0 {
                    if f != u32::MAX {
                        failing.store(f - 1, Ordering::SeqCst);
                    }
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "gateway down",
                    );
                }
                sink.lock().map(|mut g| g.push(v)).ok();
                (axum::http::StatusCode::OK, "queued")
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/sms", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    let smtp = SmtpSink::start().await?;
    let extra = format!(
        "[notify]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nemail_from = \"apotheke@pharmacy.test\"\nwebhook_url = \"{hook}\"\nretry_base_secs = 1\nmax_attempts = 3\n",
        smtp.port
    );
    let hub = Hub::start_with(&t.path().join("hub"), BrokerChoice::Embedded, None, &extra).await?;
    let base = hub.url();
    hub.import_catalog(include_str!("../../hub/data/demo-catalog.csv"))
        .await?;
    let biaxin = "09520000002305";
    ok(post_json(
        format!("{base}/api/inventory/receive"),
        json!({ "gtin": biaxin, "lot": "CLA-1", "expiry": "2030-01-31", "quantity": 5, "location": "shelf" }),
    )
    .await?)?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("k1"), &hub, "k1", "").await?;
    let plan = r#"CHMED16A0{"Id":"n1","MedType":3,"Dt":"2026-11-25T09:00:00+01:00","Patient":{"FName":"Chloé","LName":"Dubois","BDt":"1970-05-06","Lng":"FR"},"Medicaments":[]}"#;
    http_post(format!("{}/api/sim/show", kiosk.url()))
        .json(&json!({ "text": plan, "hold_ms": 800 }))
        .send()
        .await?
        .error_for_status()?;
    let order = wait_for("the order in the queue", WAIT, || async {
        let list = get_json(format!("{base}/api/orders")).await?;
        Ok(list.as_array().and_then(|a| a.first()).cloned())
    })
    .await?;
    let id = order["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let reference = order["reference"].as_str().unwrap_or("").to_owned();
    let pid = order["patient_id"]
        .as_str()
        .ok_or_else(|| anyhow!("no patient"))?
        .to_owned();
    let act = |a: &str| {
        post_json(
            format!("{base}/api/orders/{id}/action"),
            json!({ "action": a }),
        )
    };
    let notify = || {
        post_json(
            format!("{base}/api/orders/{id}/notify"),
            json!({ "kind": "needs_word" }),
        )
    };

    // Not opted in: nothing is sent, and the desk is told why.
    let (st, v) = notify().await?;
    assert_eq!(st, reqwest::StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("has not asked to be notified"),
        "{v}"
    );
    let patient = get_json(format!("{base}/api/patients/{pid}")).await?;
    assert_eq!(
        patient["patient"]["language"], "FR",
        "the plan's language is kept: {patient}"
    );

    // Opted in by e-mail: told when the order is ready, in French.
    let opt_in = |channel: &'static str| {
        post_json(
            format!("{base}/api/patients/{pid}"),
            json!({ "name": "Chloé Dubois", "birth_date": "1970-05-06", "language": "FR",
                    "email": "chloe@example.test", "phone": "+41790000000", "notify_channel": channel }),
        )
    };
    ok(opt_in("email").await?)?;
    ok(act("start_review").await?)?;
    ok(post_json(
        format!("{base}/api/orders/{id}/lines"),
        json!({ "gtin": biaxin, "packs": 1, "sig": "1-0-1-0" }),
    )
    .await?)?;
    for a in ["approve", "start_filling", "mark_ready"] {
        ok(act(a).await?)?;
    }
    let mail = wait_for("the ready e-mail", WAIT, || async {
        Ok(smtp.received().into_iter().find(|m| m.contains(&reference)))
    })
    .await?;
    assert!(mail.contains("chloe@example.test"), "{mail}");
    assert!(mail.contains("\nVotre commande"), "French text: {mail}");
    assert!(
        mail.to_lowercase().contains("charset=utf-8"),
        "declared UTF-8: {mail}"
    );
    assert!(!mail.contains("Biaxin"), "no medicine in a message: {mail}");
    let sent = |n: usize| {
        let url = format!("{base}/api/orders/{id}");
        async move {
            let o = get_json(url).await?;
            let list = o["notifications"].as_array().cloned().unwrap_or_default();
            Ok::<Option<Value>, anyhow::Error>(
                list.get(n).filter(|x| x["state"] != "pending").cloned(),
            )
        }
    };
    let first = wait_for("the e-mail marked sent", WAIT, || sent(0)).await?;
    assert_eq!(
        (
            first["state"].clone(),
            first["channel"].clone(),
            first["attempts"].clone()
        ),
        (json!("sent"), json!("email"), json!(1))
    );

    // By SMS through the gateway, which fails once: retried, then sent.
    ok(opt_in("sms").await?)?;
    ok(notify().await?)?;
    let second = wait_for("the SMS sent after a retry", WAIT, || sent(1)).await?;
    assert_eq!(
        (second["state"].clone(), second["attempts"].clone()),
        (json!("sent"), json!(2)),
        "{second}"
    );
    let hooks = got.lock().map(|g| g.clone()).unwrap_or_default();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(
        (hooks[0]["channel"].clone(), hooks[0]["to"].clone()),
        (json!("sms"), json!("+41790000000"))
    );
    assert!(
        hooks[0]["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("Veuillez contacter"),
        "{hooks:?}"
    );

    // A gateway that stays down: failed after 3 attempts, error shown;
    // retried by hand once it is back.
    fail.store(u32::MAX, Ordering::SeqCst);
    ok(notify().await?)?;
    let third = wait_for("the SMS given up", WAIT, || sent(2)).await?;
    assert_eq!(
        (third["state"].clone(), third["attempts"].clone()),
        (json!("failed"), json!(3)),
        "{third}"
    );
    assert!(
        third["last_error"].as_str().unwrap_or("").contains("500"),
        "{third}"
    );
    let page = get_text(format!("{base}/orders/{id}")).await?;
    assert!(
        page.contains("failed") && page.contains("Try again"),
        "the order page shows it"
    );
    fail.store(0, Ordering::SeqCst);
    let nid = third["id"].as_i64().ok_or_else(|| anyhow!("no id"))?;
    ok(post_json(format!("{base}/api/notifications/{nid}/retry"), json!({})).await?)?;
    wait_for("the retried SMS sent", WAIT, || async {
        let o = get_json(format!("{base}/api/orders/{id}")).await?;
        Ok((o["notifications"][2]["state"] == "sent").then_some(()))
    })
    .await?;
    drop(kiosk);
    Ok(())
}
