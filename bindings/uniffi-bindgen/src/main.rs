//! `cargo run -p uniffi-bindgen -- generate --library <libsteadyws_ffi.so> --language python …`:
//! the generator at exactly the UniFFI version the FFI crate is built with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
