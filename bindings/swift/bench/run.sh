#!/usr/bin/env bash
# The Swift inbound benchmark (bench/Sources/SwiftInbound) with the RELEASE library and reference
# server: builds both with `cargo build --release`, and the baseline reader (the tests crate's
# `bench`, release), copies the library to target/swift-bench/lib, generates the Swift bindings
# from that copy (../generate.sh, into the SteadyWS package), builds the bench package with
# `swift build -c release` into target/swift-bench/build, and runs it: one JSON line on stdout,
# progress on stderr.
#   bash bindings/swift/bench/run.sh [MESSAGES [RUNS]]        (defaults: 20000 messages, 5 runs)
# Inputs:
#   STEADYWS_BINDGEN  uniffi-bindgen (default target/debug/uniffi-bindgen, built when missing)
#   STEADYWS_BENCH    the baseline reader, a `bench` binary of the tests crate (default: built,
#                     target/release/bench)
#   STEADYWS_LIB, STEADYWS_SERVER  both set: measure these instead, without building them; the
#                     JSON line's "library" then names the library file instead of "release"
# Where no crate registry answers, source ../shared/offline/use-offline-cargo.sh first (as
# tests/run-all.sh does).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
swift_package="$(cd "$here/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="$repo/target/swift-bench"
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS

command -v swift >/dev/null || { echo "no swift on PATH: a Swift 6.0+ toolchain is needed" >&2; exit 1; }

if [ -n "${STEADYWS_LIB:-}" ] && [ -n "${STEADYWS_SERVER:-}" ]; then
  lib="$STEADYWS_LIB" server="$STEADYWS_SERVER" label="STEADYWS_LIB=$STEADYWS_LIB"
else
  echo "== building the release library and reference server (cargo build --release)" >&2
  (cd "$repo" && cargo build --release -p steadyws-ffi -p steadyws-server)
  lib="$repo/target/release/libsteadyws_ffi.so" server="$repo/target/release/steadyws-server" label=release
fi
reader="${STEADYWS_BENCH:-}"
if [ -z "$reader" ]; then
  echo "== building the baseline reader (cargo build --release -p steadyws-tests --bin bench)" >&2
  (cd "$repo" && cargo build --release -p steadyws-tests --bin bench)
  reader="$repo/target/release/bench"
fi
bindgen="${STEADYWS_BINDGEN:-$repo/target/debug/uniffi-bindgen}"
if [ ! -x "$bindgen" ] && [ -z "${STEADYWS_BINDGEN:-}" ]; then
  (cd "$repo" && cargo build -p uniffi-bindgen)
fi
for f in "$lib" "$server" "$reader" "$bindgen"; do
  [ -e "$f" ] || { echo "missing $f" >&2; exit 1; }
done

# A private copy of the library (a later cargo build cannot swap it under the bench), replaced
# whole (never rewritten in place), and the bindings generated from that very file, so that the
# Swift side's checksums match the library it loads.
lib_dir="$out/lib"
mkdir -p "$lib_dir"
cp "$lib" "$lib_dir/libsteadyws_ffi.so.new"
mv -f "$lib_dir/libsteadyws_ffi.so.new" "$lib_dir/libsteadyws_ffi.so"
STEADYWS_LIB="$lib_dir/libsteadyws_ffi.so" STEADYWS_BINDGEN="$bindgen" "$swift_package/generate.sh" >&2

# The SteadyWS manifest links the library found in STEADYWS_LIB_DIR; the same directory goes to
# the linker directly too, for a manifest that does not read it. The build directory is kept
# between runs (SwiftPM rebuilds what changed).
echo "== building the bench (swift build -c release)" >&2
build=(swift build -c release --package-path "$here" --scratch-path "$out/build")
STEADYWS_LIB_DIR="$lib_dir" "${build[@]}" \
  -Xlinker -L"$lib_dir" -Xlinker -rpath -Xlinker "$lib_dir" >&2
bin="$(STEADYWS_LIB_DIR="$lib_dir" "${build[@]}" --show-bin-path)/SwiftInbound"

# LD_LIBRARY_PATH comes before any rpath, so the copy is what loads whatever rpath the link
# recorded; the bench checks that it did (STEADYWS_BENCH_LIB).
STEADYWS_BENCH_LIB="$lib_dir/libsteadyws_ffi.so" \
  STEADYWS_BENCH_SWIFT="$(swift --version 2>/dev/null | head -1)" \
  LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  timeout --kill-after=30 900 "$bin" "$server" "$reader" "$label" "${1:-20000}" "${2:-5}"
