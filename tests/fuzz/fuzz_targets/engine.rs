//! libFuzzer entry for [`targets::engine`].
#![no_main]

#[path = "../src/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::engine(data));
