//! The envelope decoder on arbitrary text: it returns a frame or a `Malformed`, never panics,
//! and a preview never exceeds 61 characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steadyws::engine::envelope;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(malformed) = envelope::decode_server_frame(&text) {
        assert!(malformed.preview.chars().count() <= 61);
    }
    let _ = envelope::validate_json(&text);
});
