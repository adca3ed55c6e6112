#!/usr/bin/env bash
# The Python benchmark: builds a release wheel and a release reference server, installs the wheel
# with `websockets` into a venv under .cache/, and prints one JSON line.
#   bash bindings/python/bench/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${STEADYWS_CACHE:-$repo/.cache}/venv-bench"
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'maturin==1.16.*' 'websockets==17.4'
(cd "$repo" && cargo build --quiet --release -p steadyws-server)
wheels="$repo/target/wheels-release"
rm -rf "$wheels"
(cd "$here/.." && "$venv/bin/maturin" build --quiet --release --out "$wheels")
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/steadyws-*.whl
cd /tmp && "$venv/bin/python" "$here/inbound.py" "$repo/target/release/steadyws-server"
