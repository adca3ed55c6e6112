#!/usr/bin/env bash
# Generate the Swift bindings of steadyws from a built library and put them where the package
# expects them (both paths are git-ignored build output):
#   Sources/SteadyWS/Generated/SteadyWS.swift   the UniFFI Swift API
#   Sources/SteadyWSFFI/SteadyWSFFI.h           the C header (used by the Linux system library)
# The generated SteadyWSFFI.modulemap is not used: Sources/SteadyWSFFI/module.modulemap (Linux)
# and build-xcframework.sh (Apple) write their own.
#
# Environment:
#   STEADYWS_LIB      the library to read (default <repo>/target/debug/libsteadyws_ffi.so)
#   STEADYWS_BINDGEN  the generator (default <repo>/target/debug/uniffi-bindgen, the pinned
#                     bindings/uniffi-bindgen crate: cargo build -p uniffi-bindgen)
# The generator runs `cargo metadata` in the repository to find uniffi.toml, so cargo must be on
# PATH (nothing is compiled). Idempotent: files are replaced only when their content changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
lib="${STEADYWS_LIB:-$repo/target/debug/libsteadyws_ffi.so}"
bindgen="${STEADYWS_BINDGEN:-$repo/target/debug/uniffi-bindgen}"

[ -f "$lib" ] || { echo "generate.sh: no library at $lib (cargo build -p steadyws-ffi, or set STEADYWS_LIB)" >&2; exit 1; }
[ -x "$bindgen" ] || { echo "generate.sh: no generator at $bindgen (cargo build -p uniffi-bindgen, or set STEADYWS_BINDGEN)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "generate.sh: uniffi-bindgen needs cargo on PATH (it runs cargo metadata)" >&2; exit 1; }

scratch="$(mktemp -d "${TMPDIR:-/tmp}/steadyws-swift-gen.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# cargo metadata runs in the current directory: run the generator from the workspace.
mkdir -p "$scratch/out"
if ! (cd "$repo" && "$bindgen" generate --no-format --library "$lib" --language swift --out-dir "$scratch/out") >"$scratch/bindgen.log" 2>&1; then
    cat "$scratch/bindgen.log" >&2
    echo "generate.sh: uniffi-bindgen failed" >&2
    exit 1
fi

for file in SteadyWS.swift SteadyWSFFI.h SteadyWSFFI.modulemap; do
    [ -s "$scratch/out/$file" ] || { echo "generate.sh: uniffi-bindgen did not write $file (check uniffi.toml's [bindings.swift])" >&2; exit 1; }
done

# Copy only on change, so SwiftPM does not rebuild for nothing.
install_if_changed() {
    local from="$1" to="$2"
    mkdir -p "$(dirname "$to")"
    if ! cmp -s "$from" "$to"; then
        cp "$from" "$to"
        echo "generate.sh: wrote ${to#"$here"/}"
    fi
}
install_if_changed "$scratch/out/SteadyWS.swift" "$here/Sources/SteadyWS/Generated/SteadyWS.swift"
install_if_changed "$scratch/out/SteadyWSFFI.h" "$here/Sources/SteadyWSFFI/SteadyWSFFI.h"
