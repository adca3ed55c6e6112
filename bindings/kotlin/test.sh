#!/usr/bin/env bash
# Kotlin/JVM bindings: install the tools if missing (kotlinc from the published package kept in
# ../shared/offline/npm/kotlin-compiler-<version>.tgz when it exists, else from the npm registry),
# generate the UniFFI bindings, compile them with the idiomatic layer into
# target/kotlin/steadyws.jar (native library inside), check a
# stand-in of the Android AAR and its POM with android/check_aar.py (with negative controls), run
# the JUnit 5 suite against the reference server, compile and run the README quickstarts, and
# run the inbound benchmark (bench/Inbound.kt) with the debug library (a smoke run; its figure is
# the debug build's: bench/run.sh measures the release library).
#
# Inputs (defaults in the repo's target/debug; built with cargo only when a default is missing):
#   STEADYWS_LIB      libsteadyws_ffi.so              STEADYWS_BINDGEN  uniffi-bindgen
#   STEADYWS_SERVER   steadyws-server                 STEADYWS_CACHE    tool cache (<repo>/.cache)
# Idempotent: reruns reuse the installed tools and skip compiling unchanged sources.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${STEADYWS_CACHE:-$repo/.cache}"
lib="${STEADYWS_LIB:-$repo/target/debug/libsteadyws_ffi.so}"
bindgen="${STEADYWS_BINDGEN:-$repo/target/debug/uniffi-bindgen}"
server="${STEADYWS_SERVER:-$repo/target/debug/steadyws-server}"
out="$repo/target/kotlin"
kotlin_version=2.4.20
started=$SECONDS
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' "$repo/core/sqlite-options" | tr '\n' ' ')"
export LIBSQLITE3_FLAGS

say() { echo "== kotlin: $*"; }

# ---- tools ------------------------------------------------------------------------------------
kotlin_home="$cache/npm/node_modules/kotlin-compiler"
# The package as published, kept next to the repo for machines without the npm registry (see
# ../shared/offline/README.md); the registry otherwise. Either way the same files land in $cache/npm.
kotlin_tgz="$repo/../shared/offline/npm/kotlin-compiler-$kotlin_version.tgz"
if [ "$(cat "$kotlin_home/build.txt" 2>/dev/null)" != "$kotlin_version" ]; then
  command -v npm >/dev/null || { echo "npm is required (apt-get install npm)" >&2; exit 1; }
  mkdir -p "$cache/npm"
  if [ -f "$kotlin_tgz" ]; then
    kotlin_tgz="$(cd "$(dirname "$kotlin_tgz")" && pwd)/$(basename "$kotlin_tgz")"
    say "installing kotlin-compiler@$kotlin_version from $kotlin_tgz (npm, offline) into $cache/npm"
    # --offline: the package has no dependencies, so npm must not wait on an unreachable registry.
    npm install --prefix "$cache/npm" --offline --no-save --no-audit --no-fund --loglevel=error \
      "$kotlin_tgz" >/dev/null
  else
    say "installing kotlin-compiler@$kotlin_version (npm registry) into $cache/npm"
    npm install --prefix "$cache/npm" --no-save --no-audit --no-fund --loglevel=error \
      "kotlin-compiler@$kotlin_version" >/dev/null
  fi
  [ "$(cat "$kotlin_home/build.txt" 2>/dev/null)" = "$kotlin_version" ] \
    || { echo "npm installed no kotlin-compiler $kotlin_version in $kotlin_home" >&2; exit 1; }
fi
kotlinc="$kotlin_home/bin/kotlinc"
stdlib="$kotlin_home/lib/kotlin-stdlib.jar"
coroutines="$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"
jna=/usr/share/java/jna.jar
junit=/usr/share/java/junit-platform-console-standalone.jar
missing=()
[ -f "$jna" ] || missing+=(libjna-java)
[ -f "$junit" ] || missing+=(junit5)
command -v jar >/dev/null || missing+=(openjdk-17-jdk-headless)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
for f in "$kotlinc" "$stdlib" "$coroutines" "$jna" "$junit"; do
  [ -e "$f" ] || { echo "missing $f" >&2; exit 1; }
done

# ---- Rust artifacts ---------------------------------------------------------------------------
if [ -z "${STEADYWS_LIB:-}${STEADYWS_BINDGEN:-}${STEADYWS_SERVER:-}" ] \
   && { [ ! -f "$lib" ] || [ ! -x "$bindgen" ] || [ ! -x "$server" ]; }; then
  say "building the FFI library, uniffi-bindgen and the reference server (cargo)"
  (cd "$repo" && cargo build -q -p steadyws-ffi -p uniffi-bindgen -p steadyws-server)
fi
for f in "$lib" "$bindgen" "$server"; do
  [ -e "$f" ] || { echo "missing $f (cargo build -p steadyws-ffi -p uniffi-bindgen -p steadyws-server)" >&2; exit 1; }
done

# ---- generate, compile, package ---------------------------------------------------------------
case "$(uname -m)" in
  x86_64 | amd64) jna_prefix=linux-x86-64 ;;
  aarch64 | arm64) jna_prefix=linux-aarch64 ;;
  *) jna_prefix="linux-$(uname -m)" ;;
esac
mkdir -p "$out"
# A private copy, so a cargo build running meanwhile cannot swap the library between the
# generation and the packaging (the generated code checks the library's checksums).
cp "$lib" "$out/libsteadyws_ffi.so.tmp" && mv "$out/libsteadyws_ffi.so.tmp" "$out/libsteadyws_ffi.so"
lib="$out/libsteadyws_ffi.so"

say "generating bindings from $lib"
rm -rf "$out/generated"
# uniffi-bindgen reads uniffi.toml through `cargo metadata` (no compilation).
(cd "$repo" && "$bindgen" generate --no-format --metadata-no-deps --language kotlin \
  --out-dir "$out/generated" "$lib" >/dev/null)
generated="$out/generated/dev/steadyws/steadyws.kt"
[ -f "$generated" ] || { echo "uniffi-bindgen wrote no $generated" >&2; exit 1; }

# Compile only when the inputs changed (a stamp of their hashes next to the output).
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
compile() { # compile NAME CLASSPATH SOURCES...
  local name=$1 cp=$2; shift 2
  local dest="$out/classes/$name" stamp
  stamp="$(stamp_of <(echo "$kotlin_version $cp") $(find "$@" -name '*.kt' | sort) \
    $(tr ':' '\n' <<<"$cp" | grep -E '\.jar$' | sort))"
  if [ -d "$dest" ] && [ -f "$dest.stamp" ] && [ "$(cat "$dest.stamp")" = "$stamp" ]; then
    say "compile $name: up to date"
    return
  fi
  say "compile $name"
  rm -rf "$dest" "$dest.stamp"
  JAVA_OPTS="${JAVA_OPTS:--Xmx1g}" "$kotlinc" -nowarn -cp "$cp" -d "$dest" "$@"
  echo "$stamp" >"$dest.stamp"
}

compile main "$jna:$coroutines" "$generated" "$here/src/main/kotlin"

say "packaging $out/steadyws.jar (native library at $jna_prefix/libsteadyws_ffi.so)"
rm -rf "$out/native" && mkdir -p "$out/native/$jna_prefix"
cp "$lib" "$out/native/$jna_prefix/libsteadyws_ffi.so"
rm -f "$out/steadyws.jar"
# A fixed date keeps the jar byte-identical for identical inputs (so the test compile can be skipped).
jar --create --date 2000-01-01T00:00:00Z --file "$out/steadyws.jar" -C "$out/classes/main" . -C "$out/native" .
# What the jar needs at run time, in one folder: java -cp 'steadyws.jar:lib/*'.
mkdir -p "$out/lib" && cp "$jna" "$stdlib" "$coroutines" "$out/lib/"
runtime="$out/steadyws.jar:$out/lib/jna.jar:$out/lib/kotlin-stdlib.jar:$out/lib/kotlinx-coroutines-core-jvm.jar"

# ---- Android AAR: a stand-in, checked with check_aar.py ---------------------------------------
# No Android SDK or NDK here, so no real AAR. The stand-in is laid out as the Android Gradle plugin
# lays out the module's AAR, from what this machine builds: the JVM classes compiled above as
# classes.jar, the module's manifest (with the package and minSdk AGP writes into it), its
# consumer-rules.pro as proguard.txt, and the Linux x86-64 library as jni/x86_64/ (the same ELF
# machine as Android's x86_64, linked by bindings/ffi/build.rs with the same 16 KB alignment).
# The POM is the one maven-publish would write, derived from android/build.gradle.kts.
android="$here/android"
checker=(python3 "$android/check_aar.py")
aar_dir="$out/aar"
say "Android AAR: STAND-IN, not an Android build (JVM classes, Linux x86-64 library as jni/x86_64)"
say "  the real one: $android/build-android.sh && cd $android && ./gradlew :assembleRelease && \\"
say "  python3 check_aar.py build/outputs/aar/steadyws-release.aar --abis arm64-v8a,armeabi-v7a,x86_64,x86 \\"
say "    --pom build/publications/release/pom-default.xml   (needs the Android SDK and NDK)"
aar_status=0
(
  set -euo pipefail
  "${checker[@]}" --self-test  # the ELF reader on 32/64-bit, little/big-endian synthetic libraries
  rm -rf "$aar_dir" && mkdir -p "$aar_dir/stand-in/jni/x86_64"
  layout="$aar_dir/stand-in"
  min_sdk="$(sed -nE 's/^ *minSdk = ([0-9]+).*/\1/p' "$android/build.gradle.kts")"
  [ -n "$min_sdk" ] || { echo "no minSdk in $android/build.gradle.kts" >&2; exit 1; }
  sed -e 's|<manifest |<manifest package="dev.steadyws" |' \
      -e "s|^</manifest>|    <uses-sdk android:minSdkVersion=\"$min_sdk\" />\n</manifest>|" \
      "$android/src/main/AndroidManifest.xml" >"$layout/AndroidManifest.xml"
  cp "$android/consumer-rules.pro" "$layout/proguard.txt"
  jar --create --date 2000-01-01T00:00:00Z --no-manifest --file "$layout/classes.jar" -C "$out/classes/main" .
  cp "$lib" "$layout/jni/x86_64/libsteadyws_ffi.so"
  pack() { rm -f "$2" && jar --create --date 2000-01-01T00:00:00Z --no-manifest --file "$2" -C "$1" .; }
  pack "$layout" "$aar_dir/steadyws-stand-in.aar"
  "${checker[@]}" --write-pom "$aar_dir/steadyws-android.pom"

  # readelf, an independent reader, must see the same: every LOAD segment aligned to 0x4000.
  if command -v readelf >/dev/null; then
    aligns="$(readelf -lW "$lib" | awk '$1 == "LOAD" {print $NF}' | sort -u | tr '\n' ' ')"
    say "  readelf: LOAD p_align of $(basename "$lib"): $aligns"
    [ "$aligns" = "0x4000 " ] || { echo "readelf finds LOAD alignments '$aligns' in $lib, expected only 0x4000 (is bindings/ffi/build.rs in the build?)" >&2; exit 1; }
  fi

  "${checker[@]}" "$aar_dir/steadyws-stand-in.aar" --abis x86_64 --stand-in --pom "$aar_dir/steadyws-android.pom"

  # Negative controls: each broken input must fail, for the reason given.
  expect_fail() { # expect_fail WHAT PATTERN CMD...: CMD must exit 1 and print PATTERN
    local what=$1 pattern=$2 log="$aar_dir/negative.log" rc=0; shift 2
    "$@" >"$log" 2>&1 || rc=$?
    if [ $rc -ne 1 ] || ! grep -q -- "$pattern" "$log"; then
      cat "$log" >&2
      echo "negative control '$what': expected exit 1 and '$pattern', got exit $rc" >&2
      exit 1
    fi
    say "  negative control ok: $what -> $(grep -m1 -- "$pattern" "$log" | cut -c1-150)"
  }
  variant() { # variant NAME: a copy of the stand-in layout to break
    rm -rf "$aar_dir/$1" && cp -r "$layout" "$aar_dir/$1" && echo "$aar_dir/$1"
  }
  # A 4 KB-aligned library: a system one, whose LOAD alignment readelf confirms is below 16 KB.
  small=""
  for candidate in /usr/lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6; do
    [ -f "$candidate" ] || continue
    if ! command -v readelf >/dev/null || readelf -lW "$candidate" | awk '$1 == "LOAD"' | grep -q ' 0x1000$'; then
      small="$candidate"; break
    fi
  done
  if [ "$(uname -m)" = x86_64 ] && [ -n "$small" ]; then
    v="$(variant small-pages)"; cp "$small" "$v/jni/x86_64/libsteadyws_ffi.so"; pack "$v" "$v.aar"
    expect_fail "4 KB-aligned library ($small)" "p_align < 0x4000" \
      "${checker[@]}" "$v.aar" --abis x86_64 --stand-in
  else
    echo "no 4 KB-aligned x86-64 system library found for the negative control" >&2; exit 1
  fi
  expect_fail "ABI missing (arm64-v8a asked for)" "no jni/arm64-v8a/libsteadyws_ffi.so" \
    "${checker[@]}" "$aar_dir/steadyws-stand-in.aar" --abis x86_64,arm64-v8a --stand-in
  expect_fail "real AAR expected, stand-in given (no JNI entry point, no Android classes)" \
    "Java_dev_steadyws_AndroidTls_init" "${checker[@]}" "$aar_dir/steadyws-stand-in.aar" --abis x86_64
  v="$(variant no-jna-rule)"; grep -v 'com.sun.jna' "$layout/proguard.txt" >"$v/proguard.txt"; pack "$v" "$v.aar"
  expect_fail "proguard.txt without the JNA keep rules" "lacks \`-keep class com.sun.jna" \
    "${checker[@]}" "$v.aar" --abis x86_64 --stand-in
  v="$(variant no-socket)"; rm "$v/classes.jar"
  jar --create --no-manifest --file "$v/classes.jar" -C "$out/classes/main" dev/steadyws/NativeSocket.class
  pack "$v" "$v.aar"
  expect_fail "classes.jar without Socket" "dev/steadyws/Socket," \
    "${checker[@]}" "$v.aar" --abis x86_64 --stand-in
  v="$(variant wrong-package)"; sed -i 's|package="dev.steadyws"|package="dev.other"|' "$v/AndroidManifest.xml"; pack "$v" "$v.aar"
  expect_fail "manifest of another package" "package is 'dev.other'" \
    "${checker[@]}" "$v.aar" --abis x86_64 --stand-in
  # POMs: JNA declared without @aar (from a build.gradle.kts that says so), a dependency that
  # build.gradle.kts declares but the POM lacks, and a version other than Cargo.toml's.
  mkdir -p "$aar_dir/no-aar" && cp "$android/settings.gradle.kts" "$aar_dir/no-aar/"
  sed 's|jna:\([0-9.]*\)@aar|jna:\1|' "$android/build.gradle.kts" >"$aar_dir/no-aar/build.gradle.kts"
  ! grep -q 'jna:[0-9.]*@aar' "$aar_dir/no-aar/build.gradle.kts" || { echo "could not remove @aar from JNA in a copy of build.gradle.kts" >&2; exit 1; }
  "${checker[@]}" --gradle-build "$aar_dir/no-aar/build.gradle.kts" --write-pom "$aar_dir/no-aar.pom" >/dev/null
  expect_fail "POM with JNA as a jar (no @aar)" "JNA is a jar dependency, not <type>aar</type>" \
    "${checker[@]}" --pom "$aar_dir/no-aar.pom"
  python3 - "$aar_dir/steadyws-android.pom" "$aar_dir/drift.pom" <<'PY'
import re, sys
pom = open(sys.argv[1]).read()
pom, n = re.subn(r"\s*<dependency>\s*<groupId>androidx.lifecycle</groupId>.*?</dependency>", "", pom, flags=re.S)
assert n == 1, "lifecycle-process not found in the expected POM"
open(sys.argv[2], "w").write(pom)
PY
  expect_fail "POM missing a dependency build.gradle.kts declares" "lifecycle-process:.* is declared in build.gradle.kts but missing" \
    "${checker[@]}" --pom "$aar_dir/drift.pom"
  sed '0,/<version>/s|<version>[^<]*</version>|<version>9.9.9</version>|' "$aar_dir/steadyws-android.pom" >"$aar_dir/version.pom"
  expect_fail "POM at a version other than Cargo.toml's" "version '9.9.9'" \
    "${checker[@]}" --pom "$aar_dir/version.pom"
) || aar_status=$?
[ $aar_status -eq 0 ] && say "Android AAR stand-in: ok (checker and 9 negative controls)" \
  || say "Android AAR stand-in: FAILED ($aar_status)"

# ---- JUnit 5 ----------------------------------------------------------------------------------
compile test "$runtime:$junit" "$here/src/test/kotlin"

say "running JUnit 5 (console launcher) against $server"
status=0
# No -Djna.library.path: JNA must find the library inside steadyws.jar.
STEADYWS_SERVER="$server" java -jar "$junit" \
  --class-path "$runtime:$out/classes/test" \
  --scan-class-path "$out/classes/test" \
  --include-classname '^dev\.steadyws\..*$' \
  --fail-if-no-tests --disable-banner --details=tree \
  --reports-dir "$out/junit-reports" 2>&1 | tee "$out/junit.log" || status=$?
passed="$(sed -nE 's/.*\[ *([0-9]+) tests successful *\].*/\1/p' "$out/junit.log" | tail -1)"
failed="$(sed -nE 's/.*\[ *([0-9]+) tests failed *\].*/\1/p' "$out/junit.log" | tail -1)"

# ---- README quickstarts -----------------------------------------------------------------------
# The README's snippets themselves (the ```kotlin block after `<!-- quickstart -->`, and the one
# after `<!-- durable-quickstart -->`), compiled and run with the documented `java -cp` against a
# reference server.
snippet() { # snippet MARKER NAME: README's block after <!-- MARKER --> as $out/NAME/src/NAME.kt, compiled
  local marker=$1 name=$2
  mkdir -p "$out/$name/src"
  awk -v marker="<!-- $marker -->" 'index($0, marker) {armed=1} armed && /^```kotlin/ {inside=1; next} inside && /^```/ {exit} inside' \
    "$here/README.md" >"$out/$name/src/$name.kt"
  [ -s "$out/$name/src/$name.kt" ] || { echo "no $marker block in README.md" >&2; exit 1; }
  # The README's kotlinc line: steadyws.jar and kotlinx-coroutines only.
  compile "$name" "$out/steadyws.jar:$out/lib/kotlinx-coroutines-core-jvm.jar" "$out/$name/src"
}
say "README quickstarts"
snippet quickstart Quickstart
snippet durable-quickstart DurableOutbox
quick_status=0
(
  server_log="$out/Quickstart/server.log"
  rm -f "$server_log" && touch "$server_log" # not the last run's address (the redirect below is async)
  RUST_LOG=warn "$server" --listen 127.0.0.1:0 >"$server_log" 2>&1 &
  server_pid=$!
  trap 'kill -9 $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
  url=""
  for _ in $(seq 1 200); do
    url="$(sed -n 's/^listening on //p' "$server_log" | head -1)"
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "reference server did not start" >&2; exit 1; }
  cd "$out"
  timeout 60 java -cp "steadyws.jar:lib/*:classes/Quickstart" QuickstartKt "$url" | tee Quickstart/output.log
  grep -q '^acked ' Quickstart/output.log && grep -q '^received seq=1 ' Quickstart/output.log
  # Twice on one store (./steadyws-store): the second run finds nothing pending and resumes right
  # after the message the first one read (closing committed it), so it is not delivered again.
  rm -rf steadyws-store
  for run in 1 2; do
    timeout 60 java -cp "steadyws.jar:lib/*:classes/DurableOutbox" DurableOutboxKt "$url" | tee DurableOutbox/output$run.log
    grep -q '^cancelled true$' DurableOutbox/output$run.log && grep -q '^acked ' DurableOutbox/output$run.log
    # The draft's cancellation reached the app through `messages`, as an exception.
    grep -q '^not sent .*: CANCELLED$' DurableOutbox/output$run.log
    ! grep -q '^pending ' DurableOutbox/output$run.log
  done
  received() { sed -n 's/^received seq=\([0-9]*\) redelivered=false {"text":"kept"}$/\1/p' "DurableOutbox/output$1.log"; }
  [ -n "$(received 1)" ] && [ "$(received 2)" = "$(( $(received 1) + 1 ))" ]
) || quick_status=$?
[ $quick_status -eq 0 ] && say "quickstarts: ok" || say "quickstarts: FAILED ($quick_status)"

# ---- inbound benchmark (bench/Inbound.kt) ------------------------------------------------------
# steadyws vs the JDK's java.net.http.WebSocket receiving small messages replayed by a reference
# server that the bench starts (--history above the count) and stops. It fails if a client does
# not get exactly the messages 1..N in order. This runs test.sh's library, the DEBUG build, with
# 10 000 messages to stay short: its figure mostly measures unoptimised Rust, and the JSON line
# says so. bench/run.sh measures the release build (20 000 messages).
compile bench "$runtime" "$here/bench"
say "inbound benchmark (debug library, 10000 messages; bench/run.sh for release figures)"
bench_status=0
timeout 300 java -cp "$runtime:$out/classes/bench" dev.steadyws.bench.InboundKt "$server" debug 10000 5 \
  | tee "$out/bench-inbound.json" || bench_status=$?
[ $bench_status -ne 0 ] || grep -q '^{"bench":"kotlin_inbound"' "$out/bench-inbound.json" || bench_status=1
[ $bench_status -eq 0 ] && say "inbound benchmark: ok" || say "inbound benchmark: FAILED ($bench_status)"
[ $bench_status -eq 0 ] || status=$bench_status # the script's exit status (checked on the last line)
# ---- end of inbound benchmark -------------------------------------------------------------------

echo "kotlin: ${passed:-0} passed, ${failed:-0} failed ($((SECONDS - started)) s)"
[ $status -eq 0 ] && [ $quick_status -eq 0 ] && [ $aar_status -eq 0 ]
