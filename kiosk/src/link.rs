//! The MQTT link: polls rumqttc, renews subscriptions on every ConnAck, and
//! forwards what arrives to the driver.

use crate::driver::LinkEvent;
use crate::identity::Identity;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use rxedge_shared::protocol::{Presence, MAX_MESSAGE_BYTES};
use rxedge_shared::topics::{self, Leaf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Build MQTT options for this kiosk: its own client id and credentials,
/// and a retained Last Will that marks it offline.
pub fn options(id: &Identity, host: &str, port: u16, keep_alive: Duration) -> MqttOptions {
    let mut o = MqttOptions::new(
        topics::kiosk_client_id(id.store.as_str(), id.kiosk.as_str()),
        host,
        port,
    );
    // Its own credentials: the kiosk id and a password its key makes.
    o.set_credentials(
        id.kiosk.as_str(),
        rxedge_shared::sign::mqtt_password(&id.key, id.store.as_str(), id.kiosk.as_str()),
    );
    o.set_keep_alive(keep_alive);
    o.set_clean_session(true);
    o.set_max_packet_size(MAX_MESSAGE_BYTES + 4096, MAX_MESSAGE_BYTES + 4096);
    o.set_inflight(500);
    let offline = serde_json::to_vec(&Presence {
        online: false,
        at_ms: 0,
    })
    .unwrap_or_default();
    o.set_last_will(LastWill::new(
        topics::kiosk(&id.store, &id.kiosk, Leaf::State),
        offline,
        QoS::AtLeastOnce,
        true,
    ));
    o
}

/// MQTT over TLS trusting only the hub's CA (PEM). rumqttc's `Simple`
/// configuration builds its root store from this certificate alone.
pub fn pinned_tls(ca_pem: &str) -> rumqttc::Transport {
    rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
        ca: ca_pem.as_bytes().to_vec(),
        alpn: None,
        client_auth: None,
    })
}

/// Poll the connection until shutdown.
pub async fn run(
    mut el: EventLoop,
    client: AsyncClient,
    id: Identity,
    tx: mpsc::Sender<LinkEvent>,
    asker: crate::availability::Asker,
    reconnect_max: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let answer = asker.answer_topic();
    let ack = topics::kiosk(&id.store, &id.kiosk, Leaf::Ack);
    let cfg = topics::kiosk(&id.store, &id.kiosk, Leaf::Config);
    let hub = topics::hub_state(&id.store);
    let state = topics::kiosk(&id.store, &id.kiosk, Leaf::State);
    let mut backoff = Duration::from_millis(100);
    loop {
        let ev = tokio::select! {
            ev = el.poll() => ev,
            _ = shutdown.changed() => break,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(100);
                // rumqttc does not resubscribe after a reconnect: do it on every ConnAck.
                for t in [&ack, &cfg, &hub] {
                    if let Err(e) = client.try_subscribe(t.as_str(), QoS::AtLeastOnce) {
                        tracing::error!(error = %e, topic = %t, "subscribe not queued");
                    }
                }
                if let Err(e) = client.try_subscribe(answer.as_str(), QoS::AtMostOnce) {
                    tracing::error!(error = %e, topic = %answer, "subscribe not queued");
                }
                asker.set_connected(true);
                let online = serde_json::to_vec(&Presence {
                    online: true,
                    at_ms: 0,
                })
                .unwrap_or_default();
                let _ = client.try_publish(state.as_str(), QoS::AtLeastOnce, true, online);
                tracing::info!("connected to broker");
                if tx.send(LinkEvent::Connected).await.is_err() {
                    break;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.topic == answer {
                    asker.on_answer(&p.payload);
                    continue;
                }
                let payload = p.payload.to_vec();
                let ev = if p.topic == ack {
                    LinkEvent::Ack(payload)
                } else if p.topic == cfg {
                    LinkEvent::Config(payload)
                } else if p.topic == hub {
                    LinkEvent::HubState(payload)
                } else {
                    continue;
                };
                if tx.send(ev).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                // rumqttc re-queues unacked publishes for the next session; the outbox
                // resends them itself in order, so drop rumqttc's copies.
                el.pending.clear();
                asker.set_connected(false);
                tracing::warn!(error = %e, "broker unreachable; events wait in the outbox");
                if tx.send(LinkEvent::Disconnected).await.is_err() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => break,
                }
                backoff = (backoff * 2).min(reconnect_max);
            }
        }
    }
    // A clean goodbye: say offline ourselves (the Last Will is not sent on DISCONNECT).
    let offline = serde_json::to_vec(&Presence {
        online: false,
        at_ms: 0,
    })
    .unwrap_or_default();
    let _ = client.try_publish(state.as_str(), QoS::AtLeastOnce, true, offline);
    let _ = client.try_disconnect();
    // Give the eventloop a moment to write the goodbye.
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        while let Ok(ev) = el.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}
