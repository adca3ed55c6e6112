#!/usr/bin/env bash
# The one test command: checks that every version agrees with Cargo.toml, installs what the
# suites need (idempotent, cached under .cache/), builds the FFI library once, then runs the
# Rust, Python (with the wheel and sdist checks), Kotlin and Swift suites in turn.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
# Where no crate registry answers, cargo builds from the crates packed beside the project.
if [ -f "$repo/../shared/offline/use-offline-cargo.sh" ]; then
  # shellcheck source=/dev/null
  . "$repo/../shared/offline/use-offline-cargo.sh"
fi
export STEADYWS_CACHE="${STEADYWS_CACHE:-$repo/.cache}"
# The store's SQLite options (core/sqlite-options): the tested library is the shipped one.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS
mkdir -p "$STEADYWS_CACHE"
started=$(date +%s)

results=()
run() {
  local name="$1"; shift
  echo "== $name"
  local t0=$(date +%s)
  "$@"
  results+=("$name: ok ($(( $(date +%s) - t0 )) s)")
}

# Seconds, and first: the version in Cargo.toml, the packages, the docs and CHANGELOG.md agree
# (the built wheel and sdist are checked again by bindings/python/test.sh). Its negative
# controls run first, so a checker that cannot fail does not pass.
run "versions (tests/check-versions.py)" \
  bash -c 'python3 tests/check-versions.py --self-test && python3 tests/check-versions.py'
# Seconds too: no import circle in core/src, and its layers depend one way (with its control).
run "module graph (tests/check-modules.py)" \
  bash -c 'python3 tests/check-modules.py --self-test && python3 tests/check-modules.py'

# System packages from Debian: nginx (reverse-proxy e2e test), JNA and JUnit 5 (Kotlin suite).
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -f /usr/share/java/jna.jar ] || missing+=(libjna-java)
[ -f /usr/share/java/junit-platform-console-standalone.jar ] || missing+=(junit5)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

echo "== building the FFI library, the binding generator and the reference server (debug, once)"
cargo build -q -p steadyws-ffi -p uniffi-bindgen -p steadyws-server
export STEADYWS_LIB="$repo/target/debug/libsteadyws_ffi.so"
export STEADYWS_BINDGEN="$repo/target/debug/uniffi-bindgen"
export STEADYWS_SERVER="$repo/target/debug/steadyws-server"

run "rust (cargo test --workspace)" cargo test --workspace
run "python" bash bindings/python/test.sh
run "kotlin" bash bindings/kotlin/test.sh
if command -v swift >/dev/null; then
  run "swift (build, XCTest, snippets, release tree)" bash bindings/swift/test.sh
else
  echo "== swift: not run: no Swift toolchain on this machine (swift.org/install); the Swift package is untested here"
  results+=("swift: NOT RUN (no swift on PATH)")
fi

echo "== summary"
printf '%s\n' "${results[@]}"
echo "all suites passed in $(( $(date +%s) - started )) s"
