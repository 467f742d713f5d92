//! Any MQTT payload as the hub's ingest reads it: a frame, its signature
//! and the envelope or heartbeat inside never panic; an unsigned or
//! wrongly signed frame never verifies; and any envelope that parses
//! survives signing, framing and reading back unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rxedge_shared::protocol::{Envelope, Frame, FrameKind, Heartbeat};
use rxedge_shared::sign::{Context, Signed, SigningKey};

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let vk = key.verifying_key();
    if let Ok(frame) = serde_json::from_slice::<Frame>(data) {
        // Nothing the fuzzer writes is signed by this key.
        assert!(frame.msg.verify(Context::Event, &vk).is_err(), "forged frame verified");
        let _ = frame.msg.decode::<Envelope>();
        let _ = frame.msg.decode::<Heartbeat>();
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(data) {
        let signed = Signed::sign(&key, Context::Event, &env).expect("sign");
        let wire = serde_json::to_vec(&Frame { kind: FrameKind::Event, after: 0, msg: signed }).expect("frame");
        let back: Frame = serde_json::from_slice(&wire).expect("re-read frame");
        back.msg.verify(Context::Event, &vk).expect("own signature verifies");
        assert!(back.msg.verify(Context::Heartbeat, &vk).is_err(), "context not bound");
        let again: Envelope = back.msg.decode().expect("re-read envelope");
        assert_eq!(again, env);
    }
    if let Ok(topic) = std::str::from_utf8(data) {
        let _ = rxedge_shared::topics::parse(topic);
    }
});
