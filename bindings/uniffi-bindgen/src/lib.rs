//! No code: this library target only lets `bindings/ffi` list this crate as a dev-dependency.
//! maturin's sdist keeps the path dependencies of the FFI crate and drops every other workspace
//! member, and building from the sdist runs this crate's `uniffi-bindgen` binary (maturin looks
//! for it in the workspace), so without that edge the sdist could not generate its bindings.
