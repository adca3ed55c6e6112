#!/usr/bin/env bash
# Build what the Android library module needs and does not check in:
#   src/main/jniLibs/<abi>/libsteadyws_ffi.so   for arm64-v8a, armeabi-v7a, x86_64, x86 (cargo ndk)
#   generated/dev/steadyws/steadyws.kt          the UniFFI Kotlin bindings of that library
# Needs: cargo-ndk (cargo install cargo-ndk), the Android NDK (ANDROID_NDK_HOME, or an NDK under
# ANDROID_HOME/ndk/), and the four Rust targets (added here through rustup when missing).
#
# 16 KB pages: bindings/ffi/build.rs links the library with -Wl,-z,max-page-size=16384 for every
# android (and linux) target, whatever the NDK's default, so each PT_LOAD segment has
# p_align = 16384, as Android 15 devices with 16 KB pages and Google Play require. check_aar.py
# verifies it in the AAR; for one library: readelf -lW <lib>.so | grep LOAD (last column 0x4000).
#
# Env: STEADYWS_PROFILE  cargo profile (default ship: size-optimised, LTO, not stripped; the
#                        Android Gradle plugin strips the copy packaged into an app)
#      ANDROID_MIN_SDK   API level to link against (default 24, the module's minSdk)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
profile="${STEADYWS_PROFILE:-ship}"
min_sdk="${ANDROID_MIN_SDK:-24}"
outdir="$profile"
[ "$profile" = dev ] && outdir=debug  # cargo's folder for the dev profile

# ABI -> Rust target triple.
abis=(arm64-v8a armeabi-v7a x86_64 x86)
declare -A triple=(
  [arm64-v8a]=aarch64-linux-android
  [armeabi-v7a]=armv7-linux-androideabi
  [x86_64]=x86_64-linux-android
  [x86]=i686-linux-android
)

command -v cargo-ndk >/dev/null || { echo "cargo-ndk is required: cargo install cargo-ndk" >&2; exit 1; }
if command -v rustup >/dev/null; then
  installed="$(rustup target list --installed)"
  for abi in "${abis[@]}"; do
    grep -qx "${triple[$abi]}" <<<"$installed" || rustup target add "${triple[$abi]}"
  done
fi

cd "$repo"
# The store's SQLite options (core/sqlite-options), as every build of the library uses.
LIBSQLITE3_FLAGS="$(sed '/^#/d' core/sqlite-options | tr '\n' ' ')"
export LIBSQLITE3_FLAGS
targets=()
for abi in "${abis[@]}"; do targets+=(-t "$abi"); done
echo "== cargo ndk (${abis[*]}), profile $profile, API $min_sdk"
cargo ndk "${targets[@]}" --platform "$min_sdk" build --profile "$profile" -p steadyws-ffi

# Copy from cargo's output ourselves (works the same for every cargo-ndk version and profile).
rm -rf "$here/src/main/jniLibs"
for abi in "${abis[@]}"; do
  built="target/${triple[$abi]}/$outdir/libsteadyws_ffi.so"
  mkdir -p "$here/src/main/jniLibs/$abi"
  cp "$built" "$here/src/main/jniLibs/$abi/libsteadyws_ffi.so"
done

# The bindings come from the library itself (UniFFI metadata is the same for every ABI), generated
# the same way as for the JVM build (names from the crate's uniffi.toml).
echo "== uniffi-bindgen (Kotlin)"
rm -rf "$here/generated"
cargo run -q -p uniffi-bindgen -- generate --no-format --metadata-no-deps --language kotlin \
  --out-dir "$here/generated" "target/${triple[arm64-v8a]}/$outdir/libsteadyws_ffi.so"

echo "== done: $(find "$here/src/main/jniLibs" -name '*.so' | wc -l) libraries, $here/generated"
echo "   next: cd $here && ./gradlew :assembleRelease  (or include the module from your app; no"
echo "         ./gradlew yet: gradle wrapper --gradle-version 8.11.1, see gradle/wrapper/gradle-wrapper.properties)"
echo "   then: python3 $here/check_aar.py $here/build/outputs/aar/steadyws-release.aar --abis $(IFS=,; echo "${abis[*]}")"
