#!/usr/bin/env bash
# Compile the package and run the XCTest suite, where a Swift toolchain exists (5.10 or later):
#
#   bindings/swift/xctest.sh [extra swift test arguments]
#
# Linux: generates the bindings from $STEADYWS_LIB (default <repo>/target/debug/libsteadyws_ffi.so)
#        and links that library by directory.
# macOS: uses SteadyWSFFI.xcframework; run build-xcframework.sh first.
# The tests start the reference server $STEADYWS_SERVER (default
# <repo>/target/debug/steadyws-server: cargo build -p steadyws-server).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
command -v swift >/dev/null || { echo "xctest.sh: no swift on PATH (a Swift 5.10+ toolchain is needed)" >&2; exit 1; }

export STEADYWS_SERVER="${STEADYWS_SERVER:-$repo/target/debug/steadyws-server}"
[ -x "$STEADYWS_SERVER" ] || { echo "xctest.sh: no reference server at $STEADYWS_SERVER (cargo build -p steadyws-server)" >&2; exit 1; }

case "$(uname -s)" in
    Linux)
        lib="${STEADYWS_LIB:-$repo/target/debug/libsteadyws_ffi.so}"
        STEADYWS_LIB="$lib" "$here/generate.sh"
        libdir="$(cd "$(dirname "$lib")" && pwd)"
        swift test --package-path "$here" \
            -Xlinker -L"$libdir" -Xlinker -rpath -Xlinker "$libdir" "$@"
        ;;
    Darwin)
        [ -d "$here/SteadyWSFFI.xcframework" ] && [ -f "$here/Sources/SteadyWS/Generated/SteadyWS.swift" ] \
            || { echo "xctest.sh: run build-xcframework.sh first" >&2; exit 1; }
        swift test --package-path "$here" "$@"
        ;;
    *)
        echo "xctest.sh: unsupported system $(uname -s)" >&2
        exit 1
        ;;
esac
