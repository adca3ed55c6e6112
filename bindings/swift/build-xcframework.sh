#!/usr/bin/env bash
# Build SteadyWSFFI.xcframework for Apple platforms and generate the Swift sources, on a Mac with
# Xcode (xcodebuild, lipo) and rustup:
#
#   bindings/swift/build-xcframework.sh [--zip]
#
# Slices, each the static library libsteadyws_ffi.a with SteadyWSFFI.h and a module map:
#   ios-arm64                   aarch64-apple-ios
#   ios-arm64_x86_64-simulator  aarch64-apple-ios-sim + x86_64-apple-ios       (lipo)
#   macos-arm64_x86_64          aarch64-apple-darwin + x86_64-apple-darwin     (lipo)
# Output: bindings/swift/SteadyWSFFI.xcframework (git-ignored), which Package.swift uses on Apple
# platforms, and the generated Sources/SteadyWS/Generated/SteadyWS.swift. With --zip, also
# SteadyWSFFI.xcframework.zip and its checksum, for a `.binaryTarget(url:checksum:)`.
#
# Environment:
#   STEADYWS_PROFILE   cargo profile (default: ship, the workspace's size-optimised profile)
#   STEADYWS_BINDGEN   the pinned uniffi-bindgen (default: built with cargo build -p uniffi-bindgen)
#   IPHONEOS_DEPLOYMENT_TARGET / MACOSX_DEPLOYMENT_TARGET  (default 13.0 / 10.15, as Package.swift)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
profile="${STEADYWS_PROFILE:-ship}"
zip=false
for arg in "$@"; do
    case "$arg" in
        --zip) zip=true ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-xcframework.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

die() { echo "build-xcframework.sh: $*" >&2; exit 1; }

[ "$(uname -s)" = Darwin ] || die "needs macOS with Xcode (xcodebuild, lipo); on Linux use generate.sh and the systemLibrary target"
for tool in cargo rustup xcodebuild lipo; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# cargo puts the dev profile in target/<triple>/debug and any other profile in a folder of its name.
profile_dir="$profile"
[ "$profile" = dev ] && profile_dir=debug

device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)
macs=(aarch64-apple-darwin x86_64-apple-darwin)
triples=("$device" "${simulators[@]}" "${macs[@]}")

export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-13.0}"
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-10.15}"
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS

echo "== rustup targets"
rustup target add "${triples[@]}"

lib=libsteadyws_ffi.a
for triple in "${triples[@]}"; do
    echo "== cargo build --profile $profile --target $triple"
    # The store on the system's libsqlite3: every Apple OS ships it, and apps already link it
    # (about 1.1 MB less than the bundled copy; docs/benchmarks.md).
    (cd "$repo" && cargo build -p steadyws-ffi --lib --profile "$profile" --target "$triple" \
        --no-default-features --features store)
    [ -f "$repo/target/$triple/$profile_dir/$lib" ] || die "no $lib for $triple in target/$triple/$profile_dir"
done

work="$repo/target/xcframework"
rm -rf "$work"
mkdir -p "$work/ios" "$work/ios-simulator" "$work/macos" "$work/headers"

echo "== lipo"
cp "$repo/target/$device/$profile_dir/$lib" "$work/ios/$lib"
simulator_libs=()
for triple in "${simulators[@]}"; do
    simulator_libs+=("$repo/target/$triple/$profile_dir/$lib")
done
lipo -create "${simulator_libs[@]}" -output "$work/ios-simulator/$lib"
mac_libs=()
for triple in "${macs[@]}"; do
    mac_libs+=("$repo/target/$triple/$profile_dir/$lib")
done
lipo -create "${mac_libs[@]}" -output "$work/macos/$lib"
lipo -info "$work/ios-simulator/$lib" "$work/macos/$lib"

echo "== Swift bindings"
# The generator reads the metadata from a library built for this Mac.
case "$(uname -m)" in
    arm64) host=aarch64-apple-darwin ;;
    *) host=x86_64-apple-darwin ;;
esac
host_dylib="$repo/target/$host/$profile_dir/libsteadyws_ffi.dylib"
[ -f "$host_dylib" ] || die "no $host_dylib (the cdylib of the $host build)"
bindgen="${STEADYWS_BINDGEN:-$repo/target/debug/uniffi-bindgen}"
if [ -z "${STEADYWS_BINDGEN:-}" ] && [ ! -x "$bindgen" ]; then
    (cd "$repo" && cargo build -p uniffi-bindgen)
fi
STEADYWS_LIB="$host_dylib" STEADYWS_BINDGEN="$bindgen" "$here/generate.sh"

# The header from generate.sh, and a module map written here rather than uniffi-bindgen's: its
# `use "_Builtin_stdbool"` / `use "_Builtin_stdint"` lines break the module on recent Xcode
# (the builtin headers are no separate modules there), and a static library needs no `link`.
# The module map sits at the root of Headers/, where Xcode's explicit-module scanner looks.
cp "$here/Sources/SteadyWSFFI/SteadyWSFFI.h" "$work/headers/SteadyWSFFI.h"
cat >"$work/headers/module.modulemap" <<'MODULEMAP'
module SteadyWSFFI {
    header "SteadyWSFFI.h"
    export *
}
MODULEMAP

echo "== xcodebuild -create-xcframework"
out="$here/SteadyWSFFI.xcframework"
rm -rf "$out"
xcodebuild -create-xcframework \
    -library "$work/ios/$lib" -headers "$work/headers" \
    -library "$work/ios-simulator/$lib" -headers "$work/headers" \
    -library "$work/macos/$lib" -headers "$work/headers" \
    -output "$out"

if [ "$zip" = true ]; then
    echo "== zip"
    rm -f "$out.zip"
    (cd "$here" && ditto -c -k --sequesterRsrc --keepParent SteadyWSFFI.xcframework SteadyWSFFI.xcframework.zip)
    checksum="$(cd "$here" && swift package compute-checksum SteadyWSFFI.xcframework.zip)"
    echo "SteadyWSFFI.xcframework.zip checksum: $checksum"
    echo "  .binaryTarget(name: \"SteadyWSFFI\", url: \"https://…/SteadyWSFFI.xcframework.zip\", checksum: \"$checksum\")"
fi

echo "built ${out#"$repo"/}: swift build / swift test in bindings/swift now use it"
