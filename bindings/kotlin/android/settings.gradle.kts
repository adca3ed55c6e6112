// Standalone build of the library module (`gradle assembleRelease` here). An app can instead
// include it: include(":steadyws"); project(":steadyws").projectDir = file("<repo>/bindings/kotlin/android")
// (then the app's own plugin versions apply and this file is not read).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
    plugins {
        id("com.android.library") version "8.7.3"
        id("org.jetbrains.kotlin.android") version "2.1.20"
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
        // The Kotlin component of rustls-platform-verifier (TLS with Android's trust store),
        // published by its authors as a Maven repository on GitHub. An app that includes this
        // module needs the same repository in its own settings.
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
        }
    }
}

rootProject.name = "steadyws"
