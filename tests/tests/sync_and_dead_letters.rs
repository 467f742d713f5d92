//! Hub → kiosk config sync, and hostile or broken traffic landing in dead letters.

use anyhow::{anyhow, Result};
use rumqttc::QoS;
use rxedge_shared::sign::{self, Context, Signed, SigningKey};
use rxedge_tests::*;
use sqlx::Row as _;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn edit(hub: &Hub, body: serde_json::Value) -> Result<serde_json::Value> {
    Ok(post_as(
        Role::Technician,
        format!("{}/api/kiosks/k1/config", hub.url()),
    )
    .json(&body)
    .send()
    .await?
    .error_for_status()?
    .json()
    .await?)
}

async fn kiosk_config(k: &Kiosk) -> Result<Option<(u64, String)>> {
    let s = k.status().await?;
    Ok(s["config"]["version"].as_u64().map(|v| {
        (
            v,
            s["config"]["store_name"].as_str().unwrap_or("").to_owned(),
        )
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reaches_online_and_offline_kiosks_and_survives_without_hub() -> Result<()> {
    let t = tempdir("config")?;
    let mut hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let mut kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    wait_for("initial config v1", WAIT, || async {
        Ok(kiosk_config(&kiosk).await?.filter(|c| c.0 == 1))
    })
    .await?;

    // Online: a change arrives within seconds.
    let started = std::time::Instant::now();
    let v = edit(
        &hub,
        serde_json::json!({ "store_name": "Apotheke am Markt" }),
    )
    .await?;
    assert_eq!(v["version"], 2);
    wait_for(
        "config v2 at the kiosk",
        Duration::from_secs(10),
        || async {
            Ok(kiosk_config(&kiosk)
                .await?
                .filter(|c| c == &(2, "Apotheke am Markt".to_owned())))
        },
    )
    .await?;
    assert!(started.elapsed() < Duration::from_secs(10));
    // The hub learns the running version from the heartbeat.
    wait_for("hub sees v2 running", WAIT, || async {
        let ks: serde_json::Value = http_get(format!("{}/api/kiosks", hub.url()))
            .send()
            .await?
            .json()
            .await?;
        Ok((ks[0]["running_version"] == 2).then_some(()))
    })
    .await?;

    // Offline: published while the kiosk is down, shown as lagging, applied on reconnect.
    kiosk.stop();
    edit(
        &hub,
        serde_json::json!({ "store_name": "Pharmacie du Lac", "languages": ["fr", "de"] }),
    )
    .await?;
    let frag = http_get(format!("{}/fragments/kiosks", hub.url()))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        frag.contains("lagging"),
        "hub screen should flag the lagging kiosk: {frag}"
    );
    kiosk.spawn().await?;
    wait_for("config v3 after reconnect", WAIT, || async {
        Ok(kiosk_config(&kiosk)
            .await?
            .filter(|c| c == &(3, "Pharmacie du Lac".to_owned())))
    })
    .await?;

    // No hub: a restarted kiosk runs on its last good config.
    hub.stop();
    kiosk.stop();
    kiosk.spawn().await?;
    let s = kiosk.status().await?;
    assert_eq!(s["connected"], false);
    assert_eq!(s["config"]["version"], 3);
    assert_eq!(s["config"]["languages"], serde_json::json!(["fr", "de"]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unknown_replayed_and_garbage_go_to_dead_letters_while_traffic_flows() -> Result<()>
{
    let t = tempdir("dead")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    assert_eq!(kiosk.burst("ok1", 50).await?, 50);
    wait_committed(&hub, "k1", "ok1", 50, WAIT).await?;
    let pool = hub.db().await?;
    let first_id: String =
        sqlx::query("SELECT event_id FROM events WHERE kiosk_id = 'k1' ORDER BY commit_id LIMIT 1")
            .fetch_one(&pool)
            .await?
            .try_get("event_id")?;
    let first_id = uuid::Uuid::parse_str(&first_id)?;

    // The attacker is another enrolled kiosk (the broker lets nobody else in),
    // publishing under k1's and a ghost's topics.
    let client = mqtt_as_new_kiosk(&hub, "attacker").await?;
    let topic = |k: &str| format!("rxedge/v1/test-store/{k}/events");

    // Forged: right kiosk, wrong key.
    let stranger = SigningKey::from_bytes(&[42; 32]);
    let forged = Signed::sign(
        &stranger,
        Context::Event,
        &test_envelope("k1", uuid::Uuid::now_v7(), 999_999, "forged")?,
    )?;
    client
        .publish(
            topic("k1"),
            QoS::AtLeastOnce,
            false,
            event_frame(&forged, 0),
        )
        .await?;
    // Unknown kiosk.
    let ghost = Signed::sign(
        &stranger,
        Context::Event,
        &test_envelope("ghost", uuid::Uuid::now_v7(), 1, "ghost")?,
    )?;
    client
        .publish(
            topic("ghost"),
            QoS::AtLeastOnce,
            false,
            event_frame(&ghost, 0),
        )
        .await?;
    // Replayed id: the kiosk's own key (as if stolen from a kiosk), an id already committed, new content.
    let key = sign::decode_secret(&kiosk.key_text()?)?;
    let replay = Signed::sign(
        &key,
        Context::Event,
        &test_envelope("k1", first_id, 1_000_000, "replayed")?,
    )?;
    client
        .publish(
            topic("k1"),
            QoS::AtLeastOnce,
            false,
            event_frame(&replay, 0),
        )
        .await?;
    // Garbage.
    client
        .publish(
            topic("k1"),
            QoS::AtLeastOnce,
            false,
            b"\x00\xffnot json {".to_vec(),
        )
        .await?;

    // Valid traffic keeps flowing meanwhile.
    assert_eq!(kiosk.burst("ok2", 200).await?, 200);
    let d = wait_committed(&hub, "k1", "ok2", 200, WAIT).await?;
    assert_eq!((d.lost, d.duplicated), (0, 0));

    let reasons = wait_for("four dead letters", WAIT, || {
        let pool = pool.clone();
        async move {
            let rows = sqlx::query("SELECT reason, kiosk_id, detail FROM dead_letters ORDER BY id")
                .fetch_all(&pool)
                .await?;
            let v: Vec<(String, Option<String>)> = rows
                .iter()
                .map(|r| Ok::<_, sqlx::Error>((r.try_get("reason")?, r.try_get("kiosk_id")?)))
                .collect::<Result<_, _>>()?;
            Ok((v.len() >= 4).then_some(v))
        }
    })
    .await?;
    let has = |reason: &str, kiosk: &str| {
        reasons
            .iter()
            .any(|(r, k)| r == reason && k.as_deref() == Some(kiosk))
    };
    assert!(has("bad_signature", "k1"), "{reasons:?}");
    assert!(has("unknown_kiosk", "ghost"), "{reasons:?}");
    assert!(has("replayed_id", "k1"), "{reasons:?}");
    assert!(has("malformed", "k1"), "{reasons:?}");
    assert_eq!(reasons.len(), 4, "nothing else was refused: {reasons:?}");
    // None of the hostile texts were committed.
    let rows = committed(&pool, "k1").await?;
    assert!(rows.iter().all(|(_, t)| t != "forged" && t != "replayed"));
    // The counters say the same.
    let m = http_get(format!("{}/metrics", hub.url()))
        .send()
        .await?
        .text()
        .await?;
    for r in ["bad_signature", "unknown_kiosk", "replayed_id", "malformed"] {
        let line = m
            .lines()
            .find(|l| l.starts_with(&format!("rxedge_hub_dead_letters_total{{reason=\"{r}\"}}")))
            .ok_or_else(|| anyhow!("no metric for {r}"))?;
        assert!(line.ends_with(" 1"), "{line}");
    }
    Ok(())
}
