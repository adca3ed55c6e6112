// steadyws for Android: the UniFFI-generated bindings plus the idiomatic layer (the same Kotlin
// sources as the JVM jar) and the native library for each ABI. Run ./build-android.sh first: it
// fills src/main/jniLibs/ and generated/ (neither is checked in).
//
// Published as dev.steadyws:steadyws-android (the release AAR, a sources jar, a POM and Gradle
// module metadata) by `./gradlew publishToMavenLocal`, at the version of [workspace.package] in
// the root Cargo.toml. check_aar.py checks the AAR and the POM (see ../README.md).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
    `maven-publish`
}

android {
    namespace = "dev.steadyws"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        // The ABIs are the ones build-android.sh builds into src/main/jniLibs/: arm64-v8a,
        // armeabi-v7a, x86_64 and x86, each linked with 16 KB page alignment (bindings/ffi/build.rs).
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

    // The variant maven-publish publishes (components["release"]), with its sources.
    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

// Every dependency is written as configuration("group:artifact:version[@ext]"): check_aar.py reads
// this block to check that the published POM declares exactly these (and derives the expected POM
// from it where Gradle cannot run). maven-publish writes `api` as compile scope, `implementation`
// as runtime scope, and `@aar` as <type>aar</type>.
dependencies {
    // The generated code calls the library through JNA. The AAR (`@aar`) carries JNA's native
    // dispatch library for every Android ABI; the plain jar has none and fails on a device.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    // Flow is part of the public API (Socket.events); Dispatchers.Main for collectors.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    // ProcessLifecycleOwner, the app's visibility for attachToAndroid (Android.kt).
    implementation("androidx.lifecycle:lifecycle-process:2.8.7")
    // The Kotlin half of the TLS verifier the native library uses (AndroidTls). Its version must
    // be the one Cargo.lock pins for the crate `rustls-platform-verifier-android`: read below.
    // The group is org.rustls: its Maven repository (settings.gradle.kts) has 0.1.0 to 0.2.0 there,
    // and only 0.1.0 under the older group `rustls`.
    implementation("org.rustls:rustls-platform-verifier:${rustlsVerifierVersion()}")
}

publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = "dev.steadyws"
            artifactId = "steadyws-android"
            version = cargoWorkspaceVersion()
            // AGP creates the component once the variants exist.
            afterEvaluate {
                from(components["release"])
            }
            pom {
                name.set("steadyws-android")
                description.set(
                    "A WebSocket that stays connected: the steadyws Rust core for Android (UniFFI bindings, " +
                        "idiomatic Kotlin layer, native library for arm64-v8a, armeabi-v7a, x86_64, x86)."
                )
                licenses {
                    license { name.set("MIT OR Apache-2.0") }
                }
            }
        }
    }
}

/** The version of the Rust workspace (`[workspace.package] version` in the root Cargo.toml). */
fun cargoWorkspaceVersion(): String {
    val toml = projectDir.resolve("../../../Cargo.toml").readLines()
    val section = toml.indexOfFirst { it.trim() == "[workspace.package]" }
    check(section >= 0) { "no [workspace.package] in Cargo.toml" }
    return toml.drop(section + 1).takeWhile { !it.trimStart().startsWith("[") }
        .first { it.substringBefore('=').trim() == "version" }
        .substringAfter('"').substringBefore('"')
}

/** The version of `rustls-platform-verifier-android` in the workspace's Cargo.lock. */
fun rustlsVerifierVersion(): String {
    val lock = projectDir.resolve("../../../Cargo.lock").readLines()
    val at = lock.indexOfFirst { it.trim() == "name = \"rustls-platform-verifier-android\"" }
    check(at >= 0) { "rustls-platform-verifier-android is not in Cargo.lock" }
    return lock.drop(at + 1).first { it.trimStart().startsWith("version = ") }
        .substringAfter('"').substringBefore('"')
}
