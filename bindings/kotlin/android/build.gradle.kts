// steadyws for Android: the UniFFI-generated bindings plus the idiomatic layer (the same Kotlin
// sources as the JVM jar) and the native library for each ABI. Run ./build-android.sh first: it
// fills src/main/jniLibs/ and generated/ (neither is checked in).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.steadyws"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        // Keep rules for JNA's reflection and the generated bindings, applied to apps that shrink.
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets {
        getByName("main") {
            // Steady.kt, Errors.kt, Store.kt and Lifecycle.kt (shared with the JVM build), the
            // generated dev/steadyws/steadyws.kt, and this module's own Android.kt (the lifecycle
            // and network glue, which only this build compiles).
            java.srcDirs("../src/main/kotlin", "generated", "src/main/kotlin")
            // jniLibs: the default src/main/jniLibs/<abi>/libsteadyws_ffi.so.
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    // The generated code calls the library through JNA; the AAR carries JNA's native dispatch
    // library for every ABI (the plain jar does not work on Android).
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    // Flow is part of the public API (SteadySocket.events); Dispatchers.Main for collectors.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    // ProcessLifecycleOwner, the app's visibility for attachToAndroid (Android.kt).
    implementation("androidx.lifecycle:lifecycle-process:2.8.7")
    // The Kotlin half of the TLS verifier the native library uses (AndroidTls). Its version must
    // be the one Cargo.lock pins for the crate `rustls-platform-verifier-android`: read below.
    implementation("rustls:rustls-platform-verifier:${rustlsVerifierVersion()}")
}

/** The version of `rustls-platform-verifier-android` in the workspace's Cargo.lock. */
fun rustlsVerifierVersion(): String {
    val lock = projectDir.resolve("../../../Cargo.lock").readLines()
    val at = lock.indexOfFirst { it.trim() == "name = \"rustls-platform-verifier-android\"" }
    check(at >= 0) { "rustls-platform-verifier-android is not in Cargo.lock" }
    return lock.drop(at + 1).first { it.trimStart().startsWith("version = ") }
        .substringAfter('"').substringBefore('"')
}
