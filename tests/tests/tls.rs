//! TLS end to end: a hub with its own CA (`tls.mode = "auto"`) serves HTTPS
//! and MQTTS; a kiosk enrolls by the CA's fingerprint, pins it, and its
//! events and paper images travel encrypted. Plain-text clients, an
//! impostor hub and stalled handshakes get nowhere.

use anyhow::{anyhow, bail, Context as _, Result};
use rustls_pki_types::pem::PemObject as _;
use rxedge_tests::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// What a broker answers an MQTT CONNECT on `port` over `transport`:
/// Ok(accepted?) on a CONNACK, Err(why) when the connection itself failed.
async fn connect_answer(
    port: u16,
    transport: rumqttc::Transport,
    login: (&str, &str),
    client_id: &str,
) -> std::result::Result<bool, String> {
    let mut o = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_credentials(login.0, login.1);
    o.set_transport(transport);
    let (_client, mut el) = rumqttc::AsyncClient::new(o, 10);
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => {
                    return Ok(a.code == rumqttc::ConnectReturnCode::Success)
                }
                Ok(_) => {}
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await;
    answer.unwrap_or_else(|_| Err("no answer within 10 s".into()))
}

fn fingerprint_of(pem: &str) -> Result<String> {
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| anyhow!("ca.pem: {e}"))?;
    Ok(rxedge_shared::tls::fingerprint(&der))
}

fn kiosk_enroll(
    state: &std::path::Path,
    hub_url: &str,
    id: &str,
    fp: &str,
    code: &str,
) -> Result<std::process::Output> {
    std::fs::create_dir_all(state)?;
    let config = state.join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nstate_dir = \"{}\"\n",
            state.join("state").display()
        ),
    )?;
    Ok(std::process::Command::new(bin("rxedge-kiosk")?)
        .arg("--config")
        .arg(&config)
        .args([
            "enroll",
            "--hub",
            hub_url,
            "--id",
            id,
            "--ca-fingerprint",
            fp,
            "--code",
            code,
        ])
        .output()?)
}

fn code_in(out: &str) -> Result<String> {
    out.split("--code ")
        .nth(1)
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| anyhow!("no code in {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_pins_the_hub_ca_and_its_events_and_images_travel_over_tls() -> Result<()> {
    let t = tempdir("tls")?;
    let hub = Hub::start_tls(&t.path().join("hub"), BrokerChoice::Embedded).await?;
    let other = Hub::start_tls(&t.path().join("impostor"), BrokerChoice::Embedded).await?;
    let ca = hub.ca_pem().context("the hub made no CA")?;
    let other_ca = other.ca_pem().context("the second hub made no CA")?;
    let fp = fingerprint_of(&ca)?;
    assert_ne!(fp, fingerprint_of(&other_ca)?, "each hub has its own CA");

    // The enrollment instructions name the CA by its fingerprint.
    let out = hub.cli(&["kiosk", "add", "k2"])?;
    assert!(out.contains(&format!("--ca-fingerprint {fp}")), "{out}");
    let code = code_in(&out)?;
    // An impostor at another address: the kiosk sees a CA that is not the
    // one it was told, refuses, and sends nothing (the code still works).
    let refused = kiosk_enroll(&t.path().join("k2"), &other.url(), "k2", &fp, &code)?;
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("not the hub that issued the code"), "{err}");
    let k2 = t.path().join("k2-real");
    let ok = kiosk_enroll(&k2, &hub.url(), "k2", &fp.to_uppercase(), &code)?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let identity = std::fs::read_to_string(k2.join("state/identity.toml"))?;
    assert!(
        identity.contains("BEGIN CERTIFICATE"),
        "the CA is pinned: {identity}"
    );
    assert!(identity.contains("mqtts://"), "{identity}");

    // Clients that stall mid-handshake hold up nobody: these stay open while
    // a kiosk enrolls, connects and delivers.
    let _stalled_https = tokio::net::TcpStream::connect(("127.0.0.1", hub.http_port)).await?;
    let _stalled_mqtts = tokio::net::TcpStream::connect(("127.0.0.1", hub.mqtt_port)).await?;

    let kiosk = Kiosk::enroll_and_start(&t.path().join("k1"), &hub, "k1", "").await?;
    let sent = kiosk.burst("tls", 40).await?;
    // Drained means the hub acknowledged every event after committing it.
    kiosk.wait_drained(WAIT).await?;
    let d = wait_committed(&hub, "k1", "tls", sent, WAIT).await?;
    assert_eq!((d.stored, d.lost, d.duplicated), (sent, 0, 0), "{d:?}");

    // A paper image goes up over HTTPS, through the pinned client.
    if let Some(fx) = fixtures_dir() {
        photograph_page(&kiosk, &fx.join("chmed/emediplan_print_example1.png")).await?;
        wait_for(
            "the image uploaded and gone from the kiosk",
            WAIT,
            || async {
                let s: Value = reqwest::get(format!("{}/api/scanner", kiosk.url()))
                    .await?
                    .json()
                    .await?;
                Ok((s["last"]["kind"] == "paper" && s["paper_waiting"] == 0).then_some(()))
            },
        )
        .await
        .with_context(|| kiosk.log_tail())?;
        // Content-addressed on the hub: blobs/ab/abcd…
        let stored = std::fs::read_dir(hub.dir.join("state/blobs"))?
            .filter_map(|d| d.ok())
            .filter_map(|d| std::fs::read_dir(d.path()).ok())
            .flatten()
            .count();
        assert!(stored >= 1, "the hub stored the image");
    } else {
        println!("skipped the paper upload: ../shared/fixtures is absent (no printed page)");
    }

    // HTTPS answers with HSTS and a Secure session cookie.
    let r = client_for(&hub.url())
        .post(format!("{}/api/login", hub.url()))
        .json(&serde_json::json!({ "username": "pia", "password": TEST_PASSWORD }))
        .send()
        .await?;
    assert!(r.status().is_success(), "{}", r.status());
    assert!(r.headers().contains_key("strict-transport-security"));
    let cookies: Vec<String> = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("rxedge_session="))
        .ok_or_else(|| anyhow!("no session cookie: {cookies:?}"))?;
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );

    // Plain HTTP on the HTTPS port gets no page.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", hub.http_port))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served: {plain:?}"
    );

    // A kiosk pinned to this hub trusts no other, on HTTPS or MQTTS.
    let pinned = rxedge_kiosk::identity::pinned_client(Some(&ca))?;
    pinned
        .get(format!("{}/healthz", hub.url()))
        .send()
        .await?
        .error_for_status()?;
    let wrong = pinned.get(format!("{}/healthz", other.url())).send().await;
    assert!(
        wrong.is_err(),
        "the impostor's certificate was accepted: {wrong:?}"
    );

    let key = rxedge_shared::sign::decode_secret(&kiosk.key_text()?)?;
    let password = rxedge_shared::sign::mqtt_password(&key, "test-store", "k1");
    let client_id = rxedge_shared::topics::kiosk_client_id("test-store", "k1");
    let to_impostor = connect_answer(
        other.mqtt_port,
        rxedge_kiosk::link::pinned_tls(&ca),
        ("k1", &password),
        &client_id,
    )
    .await;
    match &to_impostor {
        Err(e) if e.contains("Tls") => {}
        other => bail!("an impostor broker got a kiosk's login: {other:?}"),
    }
    // Plain MQTT on the MQTTS port gets no CONNACK.
    let plain_mqtt = connect_answer(
        hub.mqtt_port,
        rumqttc::Transport::Tcp,
        ("k1", &password),
        "plain-probe",
    )
    .await;
    assert!(
        plain_mqtt.is_err(),
        "plain MQTT was answered: {plain_mqtt:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_over_https_needs_the_fingerprint_and_refuses_a_wrong_one() -> Result<()> {
    let t = tempdir("tls-enroll")?;
    let hub = Hub::start_tls(&t.path().join("hub"), BrokerChoice::Embedded).await?;
    let out = hub.cli(&["kiosk", "add", "k9"])?;
    let code = code_in(&out)?;
    let state = t.path().join("k9");
    let bad = kiosk_enroll(&state, &hub.url(), "k9", &"0".repeat(64), &code)?;
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("Nothing was sent"), "{err}");
    // A mistyped fingerprint is named as such.
    let short = kiosk_enroll(&state, &hub.url(), "k9", "abc", &code)?;
    let err = String::from_utf8_lossy(&short.stderr);
    assert!(err.contains("not a SHA-256 fingerprint"), "{err}");
    // No fingerprint at all, against an https:// hub.
    let config = state.join("kiosk.toml");
    let none = std::process::Command::new(bin("rxedge-kiosk")?)
        .arg("--config")
        .arg(&config)
        .args(["enroll", "--hub", &hub.url(), "--id", "k9", "--code", &code])
        .output()?;
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("needs --ca-fingerprint"), "{err}");
    assert!(!state.join("state/identity.toml").exists());
    Ok(())
}
