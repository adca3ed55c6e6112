//! Build script of the FFI crate: links the shared library (`libsteadyws_ffi.so`) with 16 KB
//! page alignment on Android and Linux.
//!
//! Android 15 runs on devices with 16 KB memory pages, where a native library whose loadable
//! segments are aligned to 4 KB fails to load, and Google Play requires 16 KB-aligned libraries
//! for apps that target Android 15 or later. The linker aligns segments to its maximum page
//! size, so raising it to 16 KB gives every PT_LOAD segment `p_align` = 16384. A 16 KB-aligned
//! library still loads on 4 KB-page systems: the alignment is a multiple of their page size.
//!
//! Linux builds get the same flag, so the library this machine builds (the one the JVM jar, the
//! Python wheel and the test suites use) is aligned the same way and
//! `bindings/kotlin/android/check_aar.py` checks a real library, not only an Android one. Only
//! the cdylib is affected (`rustc-cdylib-link-arg`); the rlib and the staticlib are not linked.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The target's OS, not the host's: `cargo ndk` builds for android from a Linux or macOS host.
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "android" || target_os == "linux" {
        // GNU ld, lld (the NDK's linker) and mold all accept `-z max-page-size`.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,max-page-size=16384");
    }
}
