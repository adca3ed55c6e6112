// swift-tools-version:6.0
// The Swift inbound benchmark (Sources/SwiftInbound; bench/run.sh builds and runs it), a package of
// its own so that the SteadyWS package (..) ships no bench target. Swift 6 language mode, like
// SteadyWS.
//
// SteadyWS finds libsteadyws_ffi.so through STEADYWS_LIB_DIR (read by ../Package.swift); run.sh
// sets it to a private copy of the library under test, and passes the same directory to the
// linker itself too.

import PackageDescription

let package = Package(
    name: "SteadyWSBench",
    // ContinuousClock and Task.sleep(for:) (the bench's timing and time bounds).
    platforms: [.macOS(.v13)],
    dependencies: [
        // Its identity is the folder's name, bindings/swift.
        .package(path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "SwiftInbound",
            dependencies: [.product(name: "SteadyWS", package: "swift")],
            path: "Sources/SwiftInbound"
        ),
    ],
    swiftLanguageModes: [.v6]
)
