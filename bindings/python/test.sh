#!/usr/bin/env bash
# Build the steadyws wheel, install it into a venv, and run the Python suite against the
# reference server. Idempotent; needs python3 (3.9+) and a Rust toolchain, installs the rest.
#
#   STEADYWS_CACHE   where the venv lives (default: <repo>/.cache)
#   STEADYWS_SERVER  reference server binary (default: <target>/debug/steadyws-server, where
#                    <target> is cargo's target dir, <repo>/target unless CARGO_TARGET_DIR says
#                    otherwise; built with `cargo build -p steadyws-server` if missing)
#   PYTHON           interpreter for the venv (default: python3)
#   extra arguments go to pytest, e.g. `test.sh -k restart -x`
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${STEADYWS_CACHE:-$repo/.cache}"
venv="$cache/venv"
started=$SECONDS
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS

command -v cargo >/dev/null || { echo "cargo is required (rustup toolchain)" >&2; exit 1; }

if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  echo "== creating venv $venv"
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"

echo "== installing test tools (requirements-test.txt)"
"$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt"

# Cargo's target directory (honours CARGO_TARGET_DIR and .cargo/config): <repo>/target by default.
target="$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
  | "$py" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

echo "== building the wheel (maturin build --profile dev)"
wheels="$target/wheels"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
(cd "$here" && "$venv/bin/maturin" build --profile dev --out "$wheels") 2>&1 | tee "$log"
wheel="$(sed -n 's/.*Built wheel to \(.*\.whl\).*/\1/p' "$log" | tail -n 1)"
[ -f "$wheel" ] || { echo "maturin did not report a wheel" >&2; exit 1; }

echo "== installing $(basename "$wheel")"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"

if [ -z "${STEADYWS_SERVER:-}" ]; then
  STEADYWS_SERVER="$target/debug/steadyws-server"
  if ! [ -x "$STEADYWS_SERVER" ]; then
    echo "== building the reference server (cargo build -p steadyws-server)"
    (cd "$repo" && cargo build -p steadyws-server)
  fi
fi
[ -x "$STEADYWS_SERVER" ] || { echo "no reference server at $STEADYWS_SERVER" >&2; exit 1; }
export STEADYWS_SERVER

echo "== pytest (server: $STEADYWS_SERVER)"
status=0
(cd "$here" && "$py" -m pytest "$@") || status=$?
echo "== test.sh finished in $((SECONDS - started)) s (exit $status)"
exit "$status"
