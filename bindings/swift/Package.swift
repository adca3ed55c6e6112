// swift-tools-version:5.10
// 5.10: the generated bindings use `nonisolated(unsafe)` (SE-0412).
//
// The Swift sources of SteadyWS are partly generated: run ./generate.sh (or ./build-xcframework.sh
// on a Mac) before `swift build`; see README.md.

import PackageDescription

// The C side of the bindings (the UniFFI scaffolding of the Rust library `steadyws_ffi`).
#if os(Linux)
// Linux: the generated header plus a hand-written module map that links `libsteadyws_ffi.so`.
// Pass the library's directory when building:
//   swift build -Xlinker -L<dir> -Xlinker -rpath -Xlinker <dir>
let ffiTarget: Target = .systemLibrary(name: "SteadyWSFFI", path: "Sources/SteadyWSFFI")
let ffiLinkerSettings: [LinkerSetting] = []
#else
// Apple platforms: the static library for every platform slice, with its header and module map,
// made by ./build-xcframework.sh. The Rust code calls into Security and CoreFoundation
// (platform certificate verification), which a static library cannot declare itself.
let ffiTarget: Target = .binaryTarget(name: "SteadyWSFFI", path: "SteadyWSFFI.xcframework")
let ffiLinkerSettings: [LinkerSetting] = [
    .linkedFramework("Security"),
    .linkedFramework("CoreFoundation"),
]
#endif

// Full Sendable and isolation checking (what the Swift 6 language mode enforces), reported as
// warnings in the Swift 5 mode this manifest selects. Swift 6 compilers know the upcoming feature;
// 5.10 ignores it.
let strictConcurrency: [SwiftSetting] = [.enableUpcomingFeature("StrictConcurrency")]

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
            swiftSettings: strictConcurrency,
            linkerSettings: ffiLinkerSettings
        ),
        .testTarget(
            name: "SteadyWSTests",
            dependencies: ["SteadyWS"],
            path: "Tests/SteadyWSTests",
            swiftSettings: strictConcurrency
        ),
    ]
)
