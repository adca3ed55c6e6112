//! Android only: gives the platform certificate verifier the app's `Context`. On Android,
//! rustls-platform-verifier asks the system's TrustManager through the JVM, so it needs the
//! JVM and a `Context` before the first `wss` handshake. The Android package calls this once
//! (`dev.steadyws.AndroidTls.init`) from its one-call setup. Compiled only for Android targets,
//! which this repository's machine cannot build: see the Kotlin README.

use jni::EnvUnowned;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::jni_mangle;
use jni::objects::{JClass, JObject};

/// `AndroidTls.init(context)`: idempotent; a failure is thrown into Kotlin as a
/// `RuntimeException` rather than aborting the process.
#[jni_mangle("dev.steadyws.AndroidTls")]
pub fn init<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) {
    unowned_env
        .with_env(|env| rustls_platform_verifier::android::init_with_env(env, context))
        .resolve::<ThrowRuntimeExAndDefault>();
}
