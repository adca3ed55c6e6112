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
            // Steady.kt, Errors.kt and Store.kt (shared with the JVM build) and the generated dev/steadyws/steadyws.kt.
            java.srcDirs("../src/main/kotlin", "generated")
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
}
