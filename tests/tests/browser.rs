//! The hub's screens in Debian's real Chromium (playwright-core), against real processes.

use anyhow::{bail, Result};
use rxedge_tests::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_screen_shows_presence_and_live_events() -> Result<()> {
    let t = tempdir("browser")?;
    let hub = Hub::start(&t.path().join("hub"), BrokerChoice::Embedded, None).await?;
    let mut kiosk = Kiosk::enroll_and_start(&t.path().join("kiosk"), &hub, "k1", "").await?;
    let (hub_url, kiosk_url) = (hub.url(), kiosk.url());
    let Some(mut b) = BrowserScript::start("first_screen.mjs", &[&hub_url, &kiosk_url, "k1"])?
    else {
        return skip_or_fail(
            "chromium or tests/browser/node_modules missing (scripts/test installs them)",
        );
    };
    let wait = Duration::from_secs(60);
    while let Some(need) = b.next_need(wait).await? {
        match need.as_str() {
            "kill-kiosk" => kiosk.kill9(),
            other => bail!("unknown request {other}"),
        }
        b.done(&need).await?;
    }
    let transcript = b.finish(wait).await?;
    for step in [
        "step: kiosk shown online",
        "step: live feed updated over SSE",
        "step: kiosk shown offline after its Last Will",
    ] {
        assert!(
            transcript.iter().any(|l| l == step),
            "missing {step:?}: {transcript:?}"
        );
    }
    Ok(())
}
