//! Any catalog CSV: the import parser never panics, every refusal names a
//! line in the file, and every accepted product is well formed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rxedge_shared::catalog::parse_csv;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count() as u64 + 1;
    match parse_csv(text, &HashSet::new()) {
        Ok(products) => {
            for p in products {
                assert_eq!(p.gtin.len(), 14, "{p:?}");
                assert!(p.price_minor >= 0 && p.pack_size > 0 && !p.name.is_empty(), "{p:?}");
                assert!(p.generics.iter().all(|g| g.len() == 14), "{p:?}");
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.line <= lines, "line {} of {lines}: {}", e.line, e.message);
                assert!(!e.message.is_empty());
            }
        }
    }
});
