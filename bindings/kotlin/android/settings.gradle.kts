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
    }
}

rootProject.name = "steadyws"
