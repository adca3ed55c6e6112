#!/usr/bin/env bash
# The Kotlin/JVM inbound benchmark (bench/Inbound.kt) with the RELEASE library and reference
# server: builds both with `cargo build --release`, generates the Kotlin bindings from that
# library, compiles them with the Kotlin layer (src/main/kotlin) and the bench into
# target/kotlin-bench/, and runs it: one JSON line on stdout, progress on stderr.
#   bash bindings/kotlin/bench/run.sh [MESSAGES [RUNS]]        (defaults: 20000 messages, 5 runs)
# Inputs:
#   STEADYWS_CACHE    tool cache (<repo>/.cache) where bindings/kotlin/test.sh installed kotlinc;
#                     run test.sh once first
#   STEADYWS_BINDGEN  uniffi-bindgen (default target/debug/uniffi-bindgen, built when missing)
#   STEADYWS_LIB, STEADYWS_SERVER  both set: measure these instead, without building anything; the
#                     JSON line's "library" then names the library file instead of "release"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kotlin="$(cd "$here/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${STEADYWS_CACHE:-$repo/.cache}"
out="$repo/target/kotlin-bench"
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS

kotlin_version="$(sed -n 's/^kotlin_version=//p' "$kotlin/test.sh")"
kotlin_home="$cache/npm/node_modules/kotlin-compiler"
jna=/usr/share/java/jna.jar
if [ "$(cat "$kotlin_home/build.txt" 2>/dev/null)" != "$kotlin_version" ] || [ ! -f "$jna" ]; then
  echo "no kotlinc $kotlin_version in $cache or no $jna: run bindings/kotlin/test.sh once first (it installs them)" >&2
  exit 1
fi
stdlib="$kotlin_home/lib/kotlin-stdlib.jar"
coroutines="$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"

if [ -n "${STEADYWS_LIB:-}" ] && [ -n "${STEADYWS_SERVER:-}" ]; then
  lib="$STEADYWS_LIB" server="$STEADYWS_SERVER" label="STEADYWS_LIB=$STEADYWS_LIB"
else
  echo "== building the release library and reference server (cargo build --release)" >&2
  (cd "$repo" && cargo build --release -p steadyws-ffi -p steadyws-server)
  lib="$repo/target/release/libsteadyws_ffi.so" server="$repo/target/release/steadyws-server" label=release
fi
bindgen="${STEADYWS_BINDGEN:-$repo/target/debug/uniffi-bindgen}"
if [ ! -x "$bindgen" ] && [ -z "${STEADYWS_BINDGEN:-}" ]; then
  (cd "$repo" && cargo build -p uniffi-bindgen)
fi
for f in "$lib" "$server" "$bindgen"; do
  [ -e "$f" ] || { echo "missing $f" >&2; exit 1; }
done

# A private copy of the library (a later cargo build cannot swap it), the bindings generated from
# it, and everything compiled together; JNA loads the copy through jna.library.path.
rm -rf "$out" && mkdir -p "$out"
cp "$lib" "$out/libsteadyws_ffi.so"
(cd "$repo" && "$bindgen" generate --no-format --metadata-no-deps --language kotlin \
  --out-dir "$out/generated" "$out/libsteadyws_ffi.so" >/dev/null)
echo "== compiling the bindings, the Kotlin layer and the bench (kotlinc)" >&2
JAVA_OPTS="${JAVA_OPTS:--Xmx1g}" "$kotlin_home/bin/kotlinc" -nowarn -cp "$jna:$coroutines" -d "$out/classes" \
  "$out/generated" "$kotlin/src/main/kotlin" "$here/Inbound.kt"
timeout 900 java -Djna.library.path="$out" -cp "$out/classes:$jna:$stdlib:$coroutines" \
  dev.steadyws.bench.InboundKt "$server" "$label" "${1:-20000}" "${2:-5}"
