#!/usr/bin/env bash
# Every benchmark, RUNS times in a row (default 3), as docs/benchmarks.md reports them:
#   bash tests/bench.sh [RUNS]
# Builds the shipping-profile FFI library with the store (bundled SQLite), without it, and with
# the store on the system's libsqlite3 (as Apple builds; needs libsqlite3-dev) for cdylib_size, and the
# release bench binary, then per run prints the JSON lines of `bench --json`, of the Python
# inbound bench (bindings/python/bench/run.sh, which builds a release wheel), of the Kotlin one
# (bindings/kotlin/bench/run.sh, release library; needs bindings/kotlin/test.sh to have run once)
# and of the Swift one (bindings/swift/bench/run.sh, release library; where swift is on PATH).
# Machine noise moves absolute figures by tens of percent: compare the ratios, each measured
# against its baseline in the same run.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
runs="${1:-3}"
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' core/sqlite-options | tr '\n' ' ')"
export LIBSQLITE3_FLAGS

echo "== building (ship library: bundled SQLite, no store, system SQLite; release bench)" >&2
cargo build -q --profile ship -p steadyws-ffi
cargo build -q --profile ship -p steadyws-ffi --no-default-features --target-dir target/no-store
cargo build -q --profile ship -p steadyws-ffi --no-default-features --features store \
  --target-dir target/system-sqlite
cargo build -q --release -p steadyws-tests --bin bench

for run in $(seq 1 "$runs"); do
  echo "== run $run of $runs ($(date -u +%FT%TZ))" >&2
  target/release/bench --json
  bash bindings/python/bench/run.sh
  bash bindings/kotlin/bench/run.sh
  if command -v swift >/dev/null; then
    # The release bench built above is its baseline reader.
    STEADYWS_BENCH="$repo/target/release/bench" bash bindings/swift/bench/run.sh
  else
    echo "swift_inbound: NOT RUN (no swift on PATH)" >&2
  fi
done
