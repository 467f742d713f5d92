//! Pickup-ticket verification on arbitrary text: refused cleanly, and nothing
//! but the hub's own signature is ever accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rxedge_shared::sign::SigningKey;
use rxedge_shared::ticket;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let hub = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let t = format!("{}{text}", ticket::PREFIX);
    assert!(
        ticket::verify(&t, &hub, "store", 0).is_err(),
        "a ticket nobody signed verified: {t:?}"
    );
});
