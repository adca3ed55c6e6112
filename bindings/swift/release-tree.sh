#!/usr/bin/env bash
# Write the tree of the Swift release repository of steadyws (the repository users add by URL with
# SwiftPM, placeholder name steadyws/steadyws-swift), plus the zipped xcframework to attach to
# its GitHub release:
#
#   bindings/swift/release-tree.sh --xcframework PATH --url-base URL [--version V] [--out DIR]
#                                  [--package-url URL] [--stand-in]
#   bindings/swift/release-tree.sh --xcframework PATH --local [--version V] [--out DIR] [--stand-in]
#
#   --xcframework PATH  SteadyWSFFI.xcframework made on a Mac by build-xcframework.sh
#   --url-base URL      where the release's assets are downloaded from, e.g.
#                       https://github.com/steadyws/steadyws-swift/releases/download/0.1.0/
#                       ("{version}" in it is replaced by the version); https only (SwiftPM)
#   --package-url URL   the release repository, for the README (default: from a GitHub --url-base)
#   --version V         the release version (default: [workspace.package] version of Cargo.toml)
#   --out DIR           output folder (default <repo>/target/swift-release)
#   --local             local variant: the xcframework is copied into the tree and the manifest
#                       says .binaryTarget(path:) (SwiftPM takes a local binary target only by a
#                       relative path inside the package); no zip
#   --stand-in          accept an xcframework whose libraries are not Apple binaries (the test's
#                       stand-in); the tree is then marked STAND-IN everywhere
# Environment: STEADYWS_LIB, the library the Swift is generated from (default: on a Mac the host
# library of build-xcframework.sh's build, target/<host>/${STEADYWS_PROFILE:-ship}/
# libsteadyws_ffi.dylib; elsewhere target/debug/libsteadyws_ffi.so); STEADYWS_BINDGEN, the pinned
# uniffi-bindgen (default target/debug/uniffi-bindgen), as generate.sh; cargo must be on PATH.
#
# Output:
#   DIR/steadyws-swift/                 the release repository's content: Package.swift (binary
#                                       target by URL + checksum), Sources/SteadyWS/ (generated
#                                       SteadyWS.swift + the hand-written layer), README.md,
#                                       .gitignore, the repository's LICENSE* files if any
#   DIR/SteadyWSFFI.xcframework.zip     the asset to attach to the release (not with --local)
#   DIR/SteadyWSFFI.xcframework.zip.sha256
# Products, platforms, tools version, linked frameworks and Swift settings come from the
# development manifest bindings/swift/Package.swift (one source). The tree has no copy of the C
# header or module map: the xcframework carries them in every slice (see the manifest's comment).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
helper="$here/scripts/release_tree.py"
name=SteadyWSFFI
tree_name=steadyws-swift

die() { echo "release-tree.sh: $*" >&2; exit 1; }
usage() { sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

xcframework=""
url_base=""
package_url=""
version=""
out="$repo/target/swift-release"
local_variant=false
stand_in=false
while [ $# -gt 0 ]; do
    case "$1" in
        --xcframework) [ $# -ge 2 ] || die "--xcframework needs a path"; xcframework="$2"; shift 2 ;;
        --url-base) [ $# -ge 2 ] || die "--url-base needs a URL"; url_base="$2"; shift 2 ;;
        --package-url) [ $# -ge 2 ] || die "--package-url needs a URL"; package_url="$2"; shift 2 ;;
        --version) [ $# -ge 2 ] || die "--version needs a value"; version="$2"; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; out="$2"; shift 2 ;;
        --local) local_variant=true; shift ;;
        --stand-in) stand_in=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument $1" ;;
    esac
done

command -v python3 >/dev/null || die "python3 not found (Xcode's command line tools have one)"
[ -n "$xcframework" ] || die "--xcframework PATH is required (build it on a Mac: bindings/swift/build-xcframework.sh)"
[ -d "$xcframework" ] || die "no xcframework at $xcframework (build it on a Mac: bindings/swift/build-xcframework.sh)"
xcframework="$(cd "$xcframework" && pwd)"
if [ "$local_variant" = true ]; then
    [ -z "$url_base" ] || die "--local and --url-base exclude each other"
else
    [ -n "$url_base" ] || die "--url-base URL is required (or --local), e.g. https://github.com/steadyws/steadyws-swift/releases/download/{version}/"
fi

# The version: Cargo's [workspace.package] version unless given.
cargo_version=$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\(.*\)".*/\1/p' "$repo/Cargo.toml" | head -1)
[ -n "$cargo_version" ] || die "no [workspace.package] version in $repo/Cargo.toml"
if [ -z "$version" ]; then
    version="$cargo_version"
elif [ "$version" != "$cargo_version" ]; then
    echo "release-tree.sh: warning: --version $version differs from the Cargo workspace version $cargo_version" >&2
fi
# SwiftPM resolves versions from the release repository's tags, which must be semantic versions.
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]] \
    || die "version '$version' is not a semantic version (X.Y.Z), which SwiftPM needs for tags"
license=$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^license *= *"\(.*\)".*/\1/p' "$repo/Cargo.toml" | head -1)
[ -n "$license" ] || die "no [workspace.package] license in $repo/Cargo.toml"

url=""
if [ "$local_variant" = false ]; then
    url_base="${url_base//\{version\}/$version}"
    case "$url_base" in
        https://*) ;;
        *) die "--url-base must be an https URL (SwiftPM downloads binary targets over https only): $url_base" ;;
    esac
    url="${url_base%/}/$name.xcframework.zip"
    case "$url" in
        */"$version"/*) ;;
        *) echo "release-tree.sh: warning: the asset URL $url does not contain /$version/; a GitHub release asset lives under its tag" >&2 ;;
    esac
    if [ -z "$package_url" ]; then
        if [[ "$url" =~ ^(https://github\.com/[^/]+/[^/]+)/releases/download/ ]]; then
            package_url="${BASH_REMATCH[1]}"
        else
            die "--package-url URL is required when --url-base is not a GitHub release URL"
        fi
    fi
else
    package_url="${package_url:-https://github.com/steadyws/steadyws-swift}"
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
tree="$out/$tree_name"
[ ! -e "$tree/.git" ] || die "$tree is a git repository: write the tree elsewhere (--out) and copy it in (rsync -a --delete --exclude .git)"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/steadyws-release-tree.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

if [ "$stand_in" = true ]; then
    echo "release-tree.sh: STAND-IN mode: the xcframework's libraries need not be Apple binaries; the tree is marked STAND-IN and must never be published" >&2
fi

stand_in_flag=()
[ "$stand_in" = false ] || stand_in_flag=(--stand-in)
echo "== check the xcframework"
python3 "$helper" check-xcframework "$xcframework" --dev-package "$here/Package.swift" \
    ${stand_in_flag[@]+"${stand_in_flag[@]}"} \
    || die "refusing to write a release tree for $xcframework"

echo "== generate the Swift bindings"
# Default: on a Mac the host library of build-xcframework.sh's build (same profile), elsewhere
# the debug build.
if [ "$(uname -s)" = Darwin ]; then
    case "$(uname -m)" in
        arm64) host=aarch64-apple-darwin ;;
        *) host=x86_64-apple-darwin ;;
    esac
    profile="${STEADYWS_PROFILE:-ship}"
    [ "$profile" != dev ] || profile=debug
    default_lib="$repo/target/$host/$profile/libsteadyws_ffi.dylib"
else
    default_lib="$repo/target/debug/libsteadyws_ffi.so"
fi
lib="${STEADYWS_LIB:-$default_lib}"
bindgen="${STEADYWS_BINDGEN:-$repo/target/debug/uniffi-bindgen}"
[ -f "$lib" ] || die "no library at $lib (set STEADYWS_LIB; on a Mac the host dylib of the xcframework's build)"
[ -x "$bindgen" ] || die "no generator at $bindgen (cargo build -p uniffi-bindgen, or set STEADYWS_BINDGEN)"
command -v cargo >/dev/null || die "uniffi-bindgen needs cargo on PATH (it runs cargo metadata)"
mkdir -p "$scratch/generated"
if ! (cd "$repo" && "$bindgen" generate --no-format --library "$lib" --language swift --out-dir "$scratch/generated") >"$scratch/bindgen.log" 2>&1; then
    cat "$scratch/bindgen.log" >&2
    die "uniffi-bindgen failed on $lib"
fi
for file in SteadyWS.swift SteadyWSFFI.h; do
    [ -s "$scratch/generated/$file" ] || die "uniffi-bindgen did not write $file (check uniffi.toml's [bindings.swift])"
done
echo "from $lib"

echo "== compare the xcframework's headers with the generated one"
python3 "$helper" check-xcframework "$xcframework" --dev-package "$here/Package.swift" \
    --header "$scratch/generated/SteadyWSFFI.h" ${stand_in_flag[@]+"${stand_in_flag[@]}"} \
    || die "refusing to write a release tree for $xcframework"

echo "== write the tree"
staging="$scratch/$tree_name"
mkdir -p "$staging/Sources/SteadyWS"
cp "$scratch/generated/SteadyWS.swift" "$staging/Sources/SteadyWS/SteadyWS.swift"
# The hand-written layer, beside the generated file (Generated/ is the development copy of it).
layer_count=0
for file in "$here"/Sources/SteadyWS/*.swift; do
    [ -f "$file" ] || continue
    [ "$(basename "$file")" != SteadyWS.swift ] || die "a hand-written Sources/SteadyWS/SteadyWS.swift would collide with the generated file"
    cp "$file" "$staging/Sources/SteadyWS/"
    layer_count=$((layer_count + 1))
done
[ "$layer_count" -gt 0 ] || die "no hand-written Swift in $here/Sources/SteadyWS"
license_files=()
for file in "$repo"/LICENSE* "$repo"/LICENCE* "$repo"/COPYING*; do
    [ -f "$file" ] || continue
    cp "$file" "$staging/"
    license_files+=(--license-file "$(basename "$file")")
done
if [ "${#license_files[@]}" -eq 0 ]; then
    echo "release-tree.sh: warning: no LICENSE file at the repository root; the tree's README names the licence ($license) only: add the licence texts before publishing" >&2
fi
printf '/.build/\n/.swiftpm/\n/Package.resolved\n*.xcodeproj/\nxcuserdata/\n' >"$staging/.gitignore"

variant_args=()
checksum=""
if [ "$local_variant" = true ]; then
    cp -R "$xcframework" "$staging/$name.xcframework"
    variant_args=(--local-path "$name.xcframework")
else
    echo "== zip the xcframework"
    checksum=$(python3 "$helper" zip "$xcframework" "$scratch/$name.xcframework.zip" --name "$name.xcframework") \
        || die "cannot zip $xcframework"
    variant_args=(--url "$url" --checksum "$checksum")
fi
python3 "$helper" manifest --dev-package "$here/Package.swift" --version "$version" \
    "${variant_args[@]}" ${stand_in_flag[@]+"${stand_in_flag[@]}"} >"$staging/Package.swift"
# Where a Swift toolchain exists, SwiftPM's own checksum must agree (run inside the new package:
# older SwiftPM versions want one for this command).
if [ "$local_variant" = false ] && command -v swift >/dev/null; then
    if swift_checksum=$(cd "$staging" && swift package compute-checksum "$scratch/$name.xcframework.zip" 2>/dev/null); then
        [ "$swift_checksum" = "$checksum" ] || die "swift package compute-checksum says $swift_checksum, the zip's SHA-256 is $checksum"
        echo "swift package compute-checksum agrees: $checksum"
    else
        echo "release-tree.sh: warning: swift package compute-checksum did not run; checksum not cross-checked" >&2
    fi
fi
readme_variant=(--local-path "$name.xcframework")
[ "$local_variant" = true ] || readme_variant=(--url "$url")
python3 "$helper" readme --dev-package "$here/Package.swift" --version "$version" \
    --license "$license" --package-url "$package_url" "${readme_variant[@]}" \
    ${license_files[@]+"${license_files[@]}"} ${stand_in_flag[@]+"${stand_in_flag[@]}"} >"$staging/README.md"

# Replace the previous output only now that everything was written.
rm -rf "$tree" "$out/$name.xcframework.zip" "$out/$name.xcframework.zip.sha256"
mv "$staging" "$tree"
if [ "$local_variant" = false ]; then
    mv "$scratch/$name.xcframework.zip" "$out/$name.xcframework.zip"
    echo "$checksum  $name.xcframework.zip" >"$out/$name.xcframework.zip.sha256"
fi

echo "== done"
[ "$stand_in" = false ] || echo "STAND-IN tree (not Apple binaries): for testing release-tree.sh only, never publish it"
echo "tree:      $tree (SteadyWS $version)"
if [ "$local_variant" = true ]; then
    echo "variant:   local, .binaryTarget(name: \"$name\", path: \"$name.xcframework\")"
    echo "use it:    Xcode > Add Package Dependencies > Add Local > $tree, or .package(path: \"$tree\")"
else
    echo "asset:     $out/$name.xcframework.zip"
    echo "url:       $url"
    echo "checksum:  $checksum"
    echo "publish:   copy the tree into a clone of $package_url (rsync -a --delete --exclude .git $tree/ <clone>/),"
    echo "           commit, tag $version and push the tag, then create the GitHub release $version and"
    echo "           attach $name.xcframework.zip (the URL above must then download it)"
fi
