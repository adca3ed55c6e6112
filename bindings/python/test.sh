#!/usr/bin/env bash
# Build and check the steadyws Python package, then run its test suite against the reference
# server. Idempotent; needs python3 (3.9+) and a Rust toolchain, installs the rest (pinned, from
# PyPI, into a venv under the cache). In order:
#   1. the wheel (maturin build --profile dev --compatibility pypi --auditwheel check);
#   2. its tag: py3-none-manylinux_*, confirmed by auditwheel (scripts/check_wheel_tag.py), with
#      negative controls (copies retagged manylinux2010 / manylinux_2_5 / linux must be refused);
#   3. Python 3.9 compatibility of the hand-written modules and of the generated module in the
#      wheel (scripts/check_python_compat.py: ast + vermin), with negative controls;
#   4. the sdist (maturin sdist): its contents (scripts/check_sdist.py, with controls), then a
#      wheel built from it by pip (PEP 517, dev profile) installed and imported in a fresh venv;
#   5. twine check on the wheel and the sdist, their metadata (scripts/check_metadata.py: license,
#      classifiers, Python versions, URLs; with controls); one version everywhere
#      (tests/check-versions.py);
#   6. an import smoke test under every other Python 3.9-3.13 found on this machine (the rest
#      are reported as not run, with the commands to run them);
#   7. pytest on the wheel installed into the venv.
#
#   STEADYWS_CACHE       where the venvs and the sdist build live (default: <repo>/.cache)
#   STEADYWS_SERVER      reference server binary (default: <target>/debug/steadyws-server, where
#                        <target> is cargo's target dir, <repo>/target unless CARGO_TARGET_DIR
#                        says otherwise; built with `cargo build -p steadyws-server` if missing)
#   PYTHON               interpreter for the main venv (default: python3)
#   STEADYWS_SKIP_SDIST_BUILD=1  the faster LOCAL path: skip step 4's build of a wheel from the
#                        sdist, a second debug build of the whole library in its own target dir
#                        (142 s of the 216 s of a first run on an idle 2-core machine; 11 s
#                        once that dir in the cache is built). The sdist is still made and checked,
#                        and the summary says what was skipped. CI (tests/run-all.sh) never
#                        sets it.
#   STEADYWS_OTHER_PYTHONS  versions for step 6 (default: "3.9 3.10 3.12 3.13")
#   extra arguments go to pytest, e.g. `test.sh -k restart -x`
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${STEADYWS_CACHE:-$repo/.cache}"
venv="$cache/venv"
scripts="$here/scripts"
started=$SECONDS
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS
not_run=()

command -v cargo >/dev/null || { echo "cargo is required (rustup toolchain)" >&2; exit 1; }
# Each step line says when it started (seconds since the start), so its time is the difference.
step() { echo "== [$((SECONDS - started)) s] $*"; }
fail() { echo "test.sh: FAILED: $*" >&2; exit 1; }

if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  step "creating venv $venv"
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
tools="$venv/bin"

step "installing test tools (requirements-test.txt)"
"$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt"

# Cargo's target directory (honours CARGO_TARGET_DIR and .cargo/config): <repo>/target by default.
target="$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
  | "$py" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

# --- 1. the wheel -------------------------------------------------------------------------------
step "building the wheel (maturin build --profile dev --compatibility pypi --auditwheel check)"
wheels="$target/wheels"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# --compatibility pypi: only a tag PyPI accepts (manylinux, the lowest the library allows; never
# plain linux). --auditwheel check: fail instead of copying outside libraries into the wheel.
(cd "$here" && "$tools/maturin" build --profile dev --compatibility pypi --auditwheel check \
  --out "$wheels") 2>&1 | tee "$log"
wheel="$(sed -n 's/.*Built wheel to \(.*\.whl\).*/\1/p' "$log" | tail -n 1)"
[ -f "$wheel" ] || fail "maturin did not report a wheel"

# --- 2. its tag -----------------------------------------------------------------------------------
step "wheel tag: $(basename "$wheel") (auditwheel show)"
"$py" "$scripts/check_wheel_tag.py" "$wheel" --auditwheel "$tools/auditwheel" \
  || fail "the wheel's platform tag is wrong (see above)"
step "wheel tag negative controls (retagged copies must be refused)"
"$py" "$scripts/check_wheel_tag.py" --self-test "$wheel" --auditwheel "$tools/auditwheel" \
  || fail "the wheel tag check does not catch a wrong tag"

# --- 3. Python 3.9 compatibility ------------------------------------------------------------------
step "Python 3.9 compatibility of src/steadyws and of every module in the wheel (ast + vermin)"
"$py" "$scripts/check_python_compat.py" --vermin "$tools/vermin" --min 3.9 \
  --expect steadyws/_ffi/steadyws.py "$here/src/steadyws" "$wheel" \
  || fail "the package uses Python newer than its requires-python (>=3.9)"
"$py" "$scripts/check_python_compat.py" --vermin "$tools/vermin" --min 3.9 --self-test \
  || fail "the Python 3.9 check does not catch newer code"

# --- 4. the sdist ---------------------------------------------------------------------------------
step "building the sdist (maturin sdist)"
# maturin first prints "error: manifest path `Cargo.toml` does not exist" (a probe for a
# Cargo.toml beside pyproject.toml, before it reads manifest-path): harmless.
sdists="$target/sdist"
rm -f "$sdists"/steadyws-*.tar.gz
(cd "$here" && "$tools/maturin" sdist --out "$sdists") 2>&1 | tee "$log"
sdist="$(sed -n 's/.*Built source distribution to \(.*\.tar\.gz\).*/\1/p' "$log" | tail -n 1)"
[ -f "$sdist" ] || fail "maturin did not report an sdist"
step "sdist contents: $(basename "$sdist")"
"$py" "$scripts/check_sdist.py" "$sdist" --repo "$repo" || fail "the sdist lacks or carries files (see above)"
"$py" "$scripts/check_sdist.py" --self-test || fail "the sdist check does not catch a broken sdist"

if [ "${STEADYWS_SKIP_SDIST_BUILD:-0}" = 1 ]; then
  not_run+=("building a wheel from the sdist (STEADYWS_SKIP_SDIST_BUILD=1)")
  step "SKIPPED: building a wheel from the sdist (STEADYWS_SKIP_SDIST_BUILD=1)"
else
  # Unpacked at a fixed path with a kept target dir, so a re-run recompiles only the project's
  # crates, not their dependencies.
  build="$cache/sdist-build"
  step "building a wheel from the sdist with pip (PEP 517, MATURIN_PEP517_ARGS=--profile dev, target $build/target)"
  t0=$SECONDS
  rm -rf "$build/src" "$build/wheels"
  mkdir -p "$build/src" "$build/wheels"
  # -m: the files get the time of unpacking. maturin writes every sdist entry with one fixed
  # old time (for reproducible archives), and cargo, which compares times, would otherwise take
  # the kept artifacts of earlier sources for up to date and build the wheel from them.
  tar -xzmf "$sdist" -C "$build/src"
  unpacked="$build/src/$(basename "$sdist" .tar.gz)"
  CARGO_TARGET_DIR="$build/target" MATURIN_PEP517_ARGS="--profile dev" \
    "$py" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$build/wheels" "$unpacked" \
    || fail "pip could not build a wheel from $(basename "$sdist")"
  from_sdist="$(ls "$build/wheels"/steadyws-*.whl)"
  step "installing $(basename "$from_sdist") into a fresh venv and importing it"
  rm -rf "$cache/venv-sdist"
  "$py" -m venv "$cache/venv-sdist"
  "$cache/venv-sdist/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$from_sdist"
  (cd / && "$cache/venv-sdist/bin/python" - "$here/src" <<'EOF') || fail "the wheel built from the sdist does not work"
import sys
import steadyws
import steadyws.sync
assert sys.argv[1] not in steadyws.__file__, steadyws.__file__   # the installed copy
with steadyws.sync.Socket("ws://127.0.0.1:9/ws") as sock:        # nothing listens: stays queued
    message_id = sock.send({"hello": "from the sdist"})
    assert [p.id for p in sock.pending()] == [message_id]
print(f"steadyws {steadyws.__version__} from the sdist: imported, native library loaded, send/pending work")
EOF
  step "wheel from the sdist: built, installed and imported in $((SECONDS - t0)) s"
fi

# --- 5. metadata and versions ---------------------------------------------------------------------
step "twine check --strict (wheel and sdist)"
"$tools/twine" check --strict "$wheel" "$sdist" || fail "twine check: metadata PyPI would refuse"
step "metadata: license, classifiers, Python versions, URLs, README (scripts/check_metadata.py)"
"$py" "$scripts/check_metadata.py" --wheel "$wheel" --sdist "$sdist" --cargo-toml "$repo/Cargo.toml" \
  || fail "the package metadata is wrong (see above)"
"$py" "$scripts/check_metadata.py" --self-test || fail "the metadata check does not catch bad metadata"

step "installing $(basename "$wheel") into $venv"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"

step "one version everywhere (tests/check-versions.py)"
"$py" "$repo/tests/check-versions.py" --wheel "$wheel" --sdist "$sdist" --python "$py" \
  || fail "a version disagrees with Cargo.toml's [workspace.package] version"

# --- 6. other Pythons -----------------------------------------------------------------------------
# The wheel is py3-none (ctypes, no CPython ABI), so the same file serves every Python 3.9+.
find_python() {
  local want="$1" candidate
  for candidate in "python$want" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*/bin/python"$want"; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}
for version in ${STEADYWS_OTHER_PYTHONS-3.9 3.10 3.12 3.13}; do
  if ! interpreter="$(find_python "$version")"; then
    not_run+=("Python $version: no interpreter on this machine; run: uv python install $version && uv venv -p $version /tmp/v$version && uv pip install -p /tmp/v$version $wheel && /tmp/v$version/bin/python -c 'import steadyws; print(steadyws.__version__)'")
    step "NOT RUN: Python $version (no python$version on this machine)"
    continue
  fi
  other="$cache/venv-py$version"
  step "Python $version ($interpreter): install the wheel into $other, import, send"
  [ -x "$other/bin/python" ] || "$interpreter" -m venv "$other"
  "$other/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
  (cd / && "$other/bin/python" - <<'EOF') || fail "the wheel does not work under Python $version"
import sys
import steadyws
import steadyws.sync
with steadyws.sync.Socket("ws://127.0.0.1:9/ws") as sock:
    message_id = sock.send({"n": 1})
    assert [p.id for p in sock.pending()] == [message_id]
print(f"Python {sys.version.split()[0]}: steadyws {steadyws.__version__} imported, send/pending work")
EOF
done

# --- 7. the suite ---------------------------------------------------------------------------------
if [ -z "${STEADYWS_SERVER:-}" ]; then
  STEADYWS_SERVER="$target/debug/steadyws-server"
  if ! [ -x "$STEADYWS_SERVER" ]; then
    step "building the reference server (cargo build -p steadyws-server)"
    (cd "$repo" && cargo build -p steadyws-server)
  fi
fi
[ -x "$STEADYWS_SERVER" ] || fail "no reference server at $STEADYWS_SERVER"
export STEADYWS_SERVER

step "pytest (server: $STEADYWS_SERVER)"
status=0
(cd "$here" && "$py" -m pytest "$@") || status=$?

echo "== packaging checked: $(basename "$wheel") (tag confirmed by auditwheel), $(basename "$sdist")"
platform_tag="${wheel##*-}"
echo "== one wheel is built here, for this machine (${platform_tag%.whl}); wheels for other platforms are not built or tested"
for line in ${not_run[@]+"${not_run[@]}"}; do
  echo "== NOT RUN: $line"
done
echo "== test.sh finished in $((SECONDS - started)) s (exit $status)"
exit "$status"
