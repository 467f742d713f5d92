//! `scripts/faults/spine`: kill -9 scenarios against release binaries, on loopback only.
//! Ends with `spine faults: sent=N stored=N lost=0 duplicated=0`; exits 1 on any loss or duplicate.

use anyhow::Result;
use rxedge_tests::*;
use std::time::Duration;

#[derive(Default)]
struct Tally {
    sent: u64,
    stored: u64,
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
}

impl Tally {
    fn add(&mut self, name: &str, d: Delivery) {
        eprintln!(
            "  {name}: sent={} stored={} lost={} duplicated={} in_order={}",
            d.sent, d.stored, d.lost, d.duplicated, d.in_order
        );
        self.sent += d.sent;
        self.stored += d.stored;
        self.lost += d.lost;
        self.duplicated += d.duplicated;
        self.out_of_order += u64::from(!d.in_order);
    }
}

async fn hub_kills(t: &mut Tally, broker: BrokerChoice, label: &str, rounds: u64) -> Result<()> {
    let tmp = tempdir("faults")?;
    let mut hub = Hub::start(&tmp.path().join("hub"), broker, None).await?;
    let kiosk = Kiosk::enroll_and_start(&tmp.path().join("kiosk"), &hub, "k1", "").await?;
    for round in 0..rounds {
        let prefix = format!("{label}{round}");
        let d = faults::kill_hub_during_stream(&mut hub, &kiosk, &prefix, 10_000, 5, 1000 + round)
            .await?;
        t.add(
            &format!("{label} round {round}: 10000 events, hub SIGKILLed 5 times"),
            d,
        );
    }
    Ok(())
}

async fn kiosk_kill(t: &mut Tally) -> Result<()> {
    let tmp = tempdir("faults-kiosk")?;
    let mut hub = Hub::start(&tmp.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let mut kiosk = Kiosk::enroll_and_start(&tmp.path().join("kiosk"), &hub, "k1", "").await?;
    hub.stop();
    let confirmed = faults::kill_kiosk_during_burst(&mut kiosk, "K", 4000).await?;
    hub.spawn().await?;
    kiosk.wait_drained(Duration::from_secs(120)).await?;
    let rows = committed(&hub.db().await?, "k1").await?;
    let got: std::collections::HashSet<&str> = rows.iter().map(|(_, s)| s.as_str()).collect();
    let stored = confirmed
        .iter()
        .filter(|c| got.contains(c.as_str()))
        .count() as u64;
    let all = delivery(&rows, "K", 4000);
    let d = Delivery {
        sent: confirmed.len() as u64,
        stored,
        lost: confirmed.len() as u64 - stored,
        duplicated: all.duplicated,
        in_order: all.in_order,
    };
    t.add("kiosk SIGKILLed mid-burst (events confirmed stored)", d);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut t = Tally::default();
    let run = async {
        hub_kills(&mut t, BrokerChoice::Embedded, "embedded", 2).await?;
        let tmp = tempdir("faults-mosq")?;
        match Mosquitto::start(tmp.path()).await? {
            Some(m) => hub_kills(&mut t, BrokerChoice::External(m.port), "mosquitto", 1).await?,
            None => skip_or_fail("mosquitto is not installed")?,
        }
        kiosk_kill(&mut t).await
    };
    tokio::time::timeout(Duration::from_secs(290), run)
        .await
        .map_err(|_| anyhow::anyhow!("fault run exceeded its time bound"))??;
    println!(
        "spine faults: sent={} stored={} lost={} duplicated={}",
        t.sent, t.stored, t.lost, t.duplicated
    );
    if t.lost > 0 || t.duplicated > 0 || t.out_of_order > 0 {
        std::process::exit(1);
    }
    Ok(())
}
