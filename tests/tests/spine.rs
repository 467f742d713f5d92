//! The spine's must-show scenarios, against real processes, brokers and databases.

use anyhow::{bail, Result};
use rxedge_tests::*;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(180);

async fn thousand(broker: BrokerChoice, db: Option<String>, dir: &std::path::Path) -> Result<()> {
    let hub = Hub::start(&dir.join("hub"), broker, db).await?;
    let kiosk = Kiosk::enroll_and_start(&dir.join("kiosk"), &hub, "k1", "").await?;
    assert_eq!(kiosk.burst("A", 1000).await?, 1000);
    let d = wait_committed(&hub, "k1", "A", 1000, LONG).await?;
    assert_eq!((d.stored, d.lost, d.duplicated), (1000, 0, 0), "{d:?}");
    assert!(d.in_order, "per-kiosk order broken");
    kiosk.wait_drained(LONG).await?;
    let rows = committed(&hub.db().await?, "k1").await?;
    assert_eq!(rows.len(), 1000, "exactly once: no extra rows");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_exactly_once_in_order_embedded_broker() -> Result<()> {
    let t = tempdir("embedded")?;
    thousand(BrokerChoice::Embedded, None, t.path()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_exactly_once_in_order_mosquitto() -> Result<()> {
    let t = tempdir("mosquitto")?;
    let Some(m) = Mosquitto::start(&t.path().join("mosq")).await? else {
        return skip_or_fail("mosquitto is not installed (apt-get install mosquitto)");
    };
    thousand(BrokerChoice::External(m.port), None, t.path()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_exactly_once_in_order_postgres() -> Result<()> {
    let t = tempdir("postgres")?;
    let Some(url) = fresh_pg_database("thousand").await? else {
        return skip_or_fail(
            "RXEDGE_TEST_PG_URL is not set (scripts/test starts PostgreSQL and sets it)",
        );
    };
    thousand(BrokerChoice::Embedded, Some(url), t.path()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_stopped_while_kiosk_produces_2000_events() -> Result<()> {
    let t = tempdir("hubdown")?;
    let mut hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    // Something flows first, so the kiosk is known to be linked.
    assert_eq!(kiosk.burst("warm", 10).await?, 10);
    wait_committed(&hub, "k1", "warm", 10, LONG).await?;
    // Committed is not yet acked at the kiosk: let the acks land before the stop.
    kiosk.wait_drained(LONG).await?;
    hub.stop();
    wait_for("kiosk sees the hub gone", LONG, || async {
        Ok((kiosk.status().await?["connected"] == false).then_some(()))
    })
    .await?;
    assert_eq!(
        kiosk.burst("B", 2000).await?,
        2000,
        "the kiosk keeps storing offline"
    );
    let st = kiosk.status().await?;
    assert_eq!(
        st["outbox"]["queued"].as_u64().unwrap_or(0)
            + st["outbox"]["inflight"].as_u64().unwrap_or(0),
        2000
    );
    hub.spawn().await?;
    let d = wait_committed(&hub, "k1", "B", 2000, LONG).await?;
    assert_eq!((d.lost, d.duplicated), (0, 0), "{d:?}");
    assert!(d.in_order);
    kiosk.wait_drained(LONG).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_killed_at_random_points_loses_and_duplicates_nothing() -> Result<()> {
    let t = tempdir("kill9hub")?;
    let mut hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let d =
        rxedge_tests::faults::kill_hub_during_stream(&mut hub, &kiosk, "C", 10_000, 3, 7).await?;
    assert_eq!(
        (d.sent, d.stored, d.lost, d.duplicated),
        (10_000, 10_000, 0, 0),
        "{d:?}"
    );
    assert!(d.in_order);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_killed_during_burst_keeps_its_outbox() -> Result<()> {
    let t = tempdir("kill9kiosk")?;
    let mut hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let mut kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    // Hold delivery back so the outbox is full when the kiosk dies.
    hub.stop();
    let confirmed = rxedge_tests::faults::kill_kiosk_during_burst(&mut kiosk, "D", 3000).await?;
    if confirmed.is_empty() {
        bail!("no event was acknowledged as stored before the kill");
    }
    let st = kiosk.status().await?;
    let held = st["outbox"]["queued"].as_u64().unwrap_or(0)
        + st["outbox"]["inflight"].as_u64().unwrap_or(0);
    assert!(
        held >= confirmed.len() as u64,
        "outbox after restart holds {held}, but {} were reported stored",
        confirmed.len()
    );
    hub.spawn().await?;
    kiosk.wait_drained(LONG).await?;
    let rows = committed(&hub.db().await?, "k1").await?;
    for text in &confirmed {
        assert!(
            rows.iter().any(|(_, t)| t == text),
            "{text} was reported stored but never arrived"
        );
    }
    let got = delivery(&rows, "D", 3000);
    assert_eq!(got.duplicated, 0);
    assert!(got.in_order);
    Ok(())
}
