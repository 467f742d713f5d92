//! Any uploaded file as an image: the decoding wrapper never panics and never
//! hands back more pixels than its limits allow, whatever the header claims.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rxedge_shared::image_decode::{decode, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 1 << 20, max_side: 1024 };
    if let Ok(img) = decode(data, limits) {
        assert!(img.width() <= 1024 && img.height() <= 1024, "{}x{}", img.width(), img.height());
        assert!(img.width() > 0 && img.height() > 0);
    }
});
