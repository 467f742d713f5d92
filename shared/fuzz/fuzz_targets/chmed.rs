//! eMediplan decoding on arbitrary compressed bytes (gzip bombs, broken JSON)
//! and chunk sets in any order: errors, never panics, never unbounded memory.
#![no_main]
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use rxedge_shared::payload::{chmed, posology};

fuzz_target!(|data: &[u8]| {
    // The same bytes as a posology object: any nesting reads in bounded depth.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = posology::describe(&v);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let _ = chmed::parse_16a(&format!("CHMED16A1{b64}"));
    let _ = chmed::parse_23a(&format!("CHMED23A.{b64}"));
    // The same bytes cut into a chunk set, fed to the assembler in order.
    let n = (data.first().copied().unwrap_or(1) % 5).max(1) as usize;
    let part = b64.len().div_ceil(n).max(1);
    let mut asm = chmed::Assembler::default();
    for (i, c) in b64.as_bytes().chunks(part).enumerate() {
        let text = format!("CHMED23A.{}/{n}.{}", i + 1, String::from_utf8_lossy(c));
        if let Ok(Some(chunk)) = chmed::parse_chunk(&text) {
            let _ = asm.add(chunk);
        }
    }
});
