//! Any scanned text: the parser never panics, and a GS1 result survives a
//! round trip through its own caret element string.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rxedge_shared::payload::{self, gs1, Payload};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Payload::Gs1(g) = payload::parse(text) {
        let again = gs1::parse_element_string(&g.element_string)
            .unwrap_or_else(|e| panic!("{:?} re-parsed from {text:?}: {e}", g.element_string));
        assert_eq!((&again.gtin, &again.batch, &again.expiry, &again.serial), (&g.gtin, &g.batch, &g.expiry, &g.serial));
    }
});
