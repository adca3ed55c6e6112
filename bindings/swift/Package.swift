// swift-tools-version:6.0
// 6.0: the package compiles in the Swift 6 language mode (complete concurrency checking), the
// default of this tools version; Xcode 16 or a Swift 6.0 toolchain on Linux.
//
// The Swift sources of SteadyWS are partly generated: run ./generate.sh (or ./build-xcframework.sh
// on a Mac) before `swift build`; see README.md.

import PackageDescription

// The C side of the bindings (the UniFFI scaffolding of the Rust library `steadyws_ffi`).
#if os(Linux)
// Linux: the generated header plus a hand-written module map that links `libsteadyws_ffi.so`,
// found in STEADYWS_LIB_DIR, or in the workspace's target/debug (what `cargo build -p
// steadyws-ffi` writes) when that is not set. Both are baked into the test binary as its rpath.
// Only this development manifest reads the environment: release-tree.sh writes its own manifest.
let ffiTarget: Target = .systemLibrary(name: "SteadyWSFFI", path: "Sources/SteadyWSFFI")
let libraryDirectory = Context.environment["STEADYWS_LIB_DIR"]
    ?? "\(Context.packageDirectory)/../../target/debug"
let ffiLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-L\(libraryDirectory)", "-Xlinker", "-rpath", "-Xlinker", libraryDirectory]),
]
#else
// Apple platforms: the static library for every platform slice, with its header and module map,
// made by ./build-xcframework.sh. The Rust code calls into Security and CoreFoundation
// (platform certificate verification) and the system's SQLite (the durable store), which a
// static library cannot declare itself.
let ffiTarget: Target = .binaryTarget(name: "SteadyWSFFI", path: "SteadyWSFFI.xcframework")
let ffiLinkerSettings: [LinkerSetting] = [
    .linkedFramework("Security"),
    .linkedFramework("CoreFoundation"),
    .linkedLibrary("sqlite3"),
]
#endif

let package = Package(
    name: "SteadyWS",
    platforms: [
        .iOS(.v13),
        .macOS(.v10_15),
    ],
    products: [
        .library(name: "SteadyWS", targets: ["SteadyWS"]),
    ],
    targets: [
        ffiTarget,
        .target(
            name: "SteadyWS",
            dependencies: ["SteadyWSFFI"],
            path: "Sources/SteadyWS",
            linkerSettings: ffiLinkerSettings
        ),
        .testTarget(
            name: "SteadyWSTests",
            dependencies: ["SteadyWS"],
            path: "Tests/SteadyWSTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
