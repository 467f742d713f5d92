//! Any file uploaded as a Berlinger Fridge-tag / Q-tag export: the parser
//! never panics, and what it accepts is consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The hub reads uploads as UTF-8 with replacement, as this does.
    let text = String::from_utf8_lossy(data);
    if let Ok(export) = rxedge_shared::berlinger::parse(&text) {
        let _ = serde_json::to_string(&export).expect("an accepted export serialises");
    }
});
