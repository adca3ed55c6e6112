"""Helpers of ../release-tree.sh, which writes the tree of the Swift release repository.

Standard library only, and Python 3.9 compatible (the python3 that comes with Xcode's command
line tools), because release-tree.sh runs on a Mac.

Subcommands:
  package-facts DEV_PACKAGE
      what the release manifest takes from the development manifest (bindings/swift/Package.swift),
      printed as JSON: tools version, platforms, products, linked frameworks, upcoming features.
  check-xcframework XCFRAMEWORK --dev-package P [--header H] [--stand-in]
      the xcframework is what build-xcframework.sh makes: an Info.plist of the xcframework format,
      a slice for every platform the manifest declares (iOS: device and simulator; macOS), each
      with its library and, in Headers/, SteadyWSFFI.h (identical to H when given: the header
      generated from the library the Swift is generated from) and a module map declaring module
      SteadyWSFFI; the libraries are Apple binaries (a lipo'd universal file, or a static archive
      of Mach-O objects), unless --stand-in. Prints the slices.
  zip XCFRAMEWORK ZIP --name NAME
      a zip with NAME.xcframework at its root (what SwiftPM expects of a binary target's archive),
      reproducible: entries sorted, fixed timestamps and permissions, so the same xcframework
      always gives the same bytes and the same checksum. Prints the SHA-256 of the zip, which is
      what `swift package compute-checksum` prints.
  manifest --dev-package P --version V (--url U --checksum C | --local-path PATH) [--stand-in]
      the release Package.swift, on stdout.
  readme --dev-package P --version V --license L --package-url U (--url U | --local-path PATH)
         [--stand-in] [--license-file F ...]
      the release tree's README.md, on stdout.
Errors go to stderr as `release_tree.py: …` with what to do, exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import plistlib
import re
import stat
import sys
import zipfile

FFI_MODULE = "SteadyWSFFI"
SWIFT_MODULE = "SteadyWS"
HEADER = "SteadyWSFFI.h"
MODULE_MAP = "module.modulemap"

# Which xcframework slices a platform of the manifest needs: (SupportedPlatform, variant).
SLICES_FOR_PLATFORM = {
    "iOS": [("ios", None), ("ios", "simulator")],
    "macOS": [("macos", None)],
    "tvOS": [("tvos", None), ("tvos", "simulator")],
    "watchOS": [("watchos", None), ("watchos", "simulator")],
    "visionOS": [("xros", None), ("xros", "simulator")],
    "macCatalyst": [("ios", "maccatalyst")],
}
PLATFORM_NAMES = {"iOS": "iOS", "macOS": "macOS", "tvOS": "tvOS", "watchOS": "watchOS",
                  "visionOS": "visionOS", "macCatalyst": "Mac Catalyst"}

# 1980-01-01 00:00:00, the earliest time a zip entry can carry.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class Failure(Exception):
    pass


def fail(message: str) -> None:
    raise Failure(message)


# ---------------------------------------------------------------------------------------------
# The development manifest: the one source of tools version, platforms and products.


def bracketed(text: str, label: str) -> str:
    """The `[...]` after `label:` (brackets balanced; the manifest has none inside strings)."""
    match = re.search(r"\b" + re.escape(label) + r"\s*:\s*\[", text)
    if not match:
        fail(f"the development manifest has no `{label}: [...]`")
    start = match.end() - 1
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "[":
            depth += 1
        elif text[index] == "]":
            depth -= 1
            if depth == 0:
                return text[start:index + 1]
    fail(f"the development manifest's `{label}: [` is never closed")
    return ""


def package_facts(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    tools = re.match(r"// swift-tools-version:\s*([0-9]+(?:\.[0-9]+)*)", text)
    if not tools:
        fail(f"{path} does not start with `// swift-tools-version:X.Y`")
    platforms_block = bracketed(text, "platforms")
    platforms = []
    for name, version in re.findall(r"\.(\w+)\(\s*\.v([0-9_]+)\s*\)", platforms_block):
        if name not in SLICES_FOR_PLATFORM:
            fail(f"{path} declares platform .{name}, which release_tree.py has no slice rule for "
                 f"(add it to SLICES_FOR_PLATFORM)")
        platforms.append({"name": name, "version": version.replace("_", "."),
                          "swift": f".{name}(.v{version})"})
    if not platforms:
        fail(f"{path}: no platform found in `platforms: [...]`")
    products_block = bracketed(text, "products")
    products = []
    for match in re.finditer(r"\.library\(\s*name:\s*\"([^\"]+)\"\s*,(?:\s*type:\s*\.(\w+)\s*,)?"
                             r"\s*targets:\s*\[([^\]]*)\]\s*\)", products_block):
        targets = re.findall(r"\"([^\"]+)\"", match.group(3))
        products.append({"name": match.group(1), "type": match.group(2), "targets": targets,
                         "swift": match.group(0)})
    if not products:
        fail(f"{path}: no `.library(name:targets:)` found in `products: [...]`")
    for product in products:
        for target in product["targets"]:
            if target != SWIFT_MODULE:
                fail(f"{path}: product {product['name']} names target {target}; the release "
                     f"package has only the target {SWIFT_MODULE} (and the binary {FFI_MODULE})")
    return {
        "tools_version": tools.group(1),
        "platforms": platforms,
        "products": products,
        "linked_frameworks": sorted(set(re.findall(r"\.linkedFramework\(\"([^\"]+)\"\)", text))),
        "linked_libraries": sorted(set(re.findall(r"\.linkedLibrary\(\"([^\"]+)\"\)", text))),
        "upcoming_features": sorted(set(re.findall(r"\.enableUpcomingFeature\(\"([^\"]+)\"\)",
                                                   text))),
    }


def platforms_prose(facts: dict) -> str:
    return ", ".join(f"{PLATFORM_NAMES[p['name']]} {p['version']}" for p in facts["platforms"])


# ---------------------------------------------------------------------------------------------
# The xcframework.

MACHO_MAGICS = {b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe"}
FAT_MAGICS = {b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"}
AR_SYMBOL_TABLES = {"/", "//", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED", "__.SYMDEF_64",
                    "__.SYMDEF_64 SORTED"}


def first_archive_object(data: bytes):
    """The first bytes of the first object member of an ar archive (skipping symbol tables)."""
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset:offset + 60]
        name = header[:16].decode("ascii", "replace").rstrip()
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            return None
        body = offset + 60
        content = data[body:body + size]
        if name.startswith("#1/"):  # BSD: the name is the first N bytes of the member
            length = int(name[3:])
            name = content[:length].rstrip(b"\0").decode("ascii", "replace")
            content = content[length:]
        if name.rstrip("/") and name not in AR_SYMBOL_TABLES and name.rstrip("/") not in AR_SYMBOL_TABLES:
            return content[:4]
        offset = body + size + (size % 2)
    return None


def binary_kind(path: str):
    """(is an Apple binary, description)."""
    if os.path.isdir(path):  # a framework: its binary has the framework's name
        path = os.path.join(path, os.path.splitext(os.path.basename(path))[0])
        if not os.path.isfile(path):
            return False, "a framework without its binary"
    with open(path, "rb") as handle:
        data = handle.read()
    head = data[:8]
    if head[:4] in FAT_MAGICS:
        return True, "universal (lipo) binary"
    if head[:4] in MACHO_MAGICS:
        return True, "Mach-O binary"
    if head == b"!<arch>\n":
        magic = first_archive_object(data)
        if magic in MACHO_MAGICS:
            return True, "static library of Mach-O objects"
        if magic == b"\x7fELF":
            return False, "static library of ELF objects (Linux)"
        return False, "static library of unknown objects"
    if head[:4] == b"\x7fELF":
        return False, "ELF binary (Linux)"
    return False, "not a binary format known here"


def check_xcframework(path: str, dev_package: str, header: str, stand_in: bool) -> None:
    facts = package_facts(dev_package)
    problems = []
    if not os.path.isdir(path) or not path.rstrip("/").endswith(".xcframework"):
        fail(f"{path} is not a directory named *.xcframework (build it on a Mac with "
             f"bindings/swift/build-xcframework.sh)")
    plist_path = os.path.join(path, "Info.plist")
    try:
        with open(plist_path, "rb") as handle:
            info = plistlib.load(handle)
    except (OSError, plistlib.InvalidFileException, ValueError) as err:
        fail(f"{plist_path}: cannot read the xcframework's Info.plist ({err})")
    if not isinstance(info, dict) or info.get("CFBundlePackageType") != "XFWK":
        problems.append("Info.plist: CFBundlePackageType is not XFWK")
    if not info.get("XCFrameworkFormatVersion"):
        problems.append("Info.plist: no XCFrameworkFormatVersion")
    libraries = info.get("AvailableLibraries") if isinstance(info, dict) else None
    if not isinstance(libraries, list) or not libraries:
        fail(f"{plist_path}: no AvailableLibraries")
    expected_header = None
    if header:
        with open(header, "rb") as handle:
            expected_header = handle.read()
    seen = {}
    for library in libraries:
        identifier = library.get("LibraryIdentifier")
        library_path = library.get("LibraryPath")
        headers_path = library.get("HeadersPath")
        platform = library.get("SupportedPlatform")
        variant = library.get("SupportedPlatformVariant")
        archs = library.get("SupportedArchitectures")
        if not identifier or not library_path or not platform or not archs:
            problems.append(f"Info.plist: a library without LibraryIdentifier, LibraryPath, "
                            f"SupportedPlatform or SupportedArchitectures: {library}")
            continue
        seen[(platform, variant)] = identifier
        slice_dir = os.path.join(path, identifier)
        binary = os.path.join(slice_dir, library_path)
        if not os.path.exists(binary):
            problems.append(f"{identifier}: no {library_path}")
        else:
            apple, kind = binary_kind(binary)
            if not apple and not stand_in:
                problems.append(f"{identifier}/{library_path}: {kind}, not an Apple binary (a "
                                f"stand-in? build the real xcframework on a Mac)")
        if not headers_path:
            problems.append(f"{identifier}: no HeadersPath (the slice must carry {HEADER} and "
                            f"{MODULE_MAP}, as build-xcframework.sh makes it)")
            continue
        headers_dir = os.path.join(slice_dir, headers_path)
        try:
            with open(os.path.join(headers_dir, HEADER), "rb") as handle:
                if expected_header is not None and handle.read() != expected_header:
                    problems.append(f"{identifier}/{headers_path}/{HEADER} differs from the header "
                                    f"generated from the library: the xcframework was built from "
                                    f"other sources than the Swift being generated")
        except OSError:
            problems.append(f"{identifier}: no {headers_path}/{HEADER}")
        try:
            with open(os.path.join(headers_dir, MODULE_MAP), encoding="utf-8") as handle:
                module_map = handle.read()
            if not re.search(r"^\s*module\s+" + FFI_MODULE + r"\b", module_map, re.MULTILINE) \
                    or f'header "{HEADER}"' not in module_map:
                problems.append(f"{identifier}/{headers_path}/{MODULE_MAP} does not declare "
                                f"module {FFI_MODULE} with header \"{HEADER}\"")
        except OSError:
            problems.append(f"{identifier}: no {headers_path}/{MODULE_MAP}")
    for platform in facts["platforms"]:
        for wanted in SLICES_FOR_PLATFORM[platform["name"]]:
            if wanted not in seen:
                name = wanted[0] + (f" ({wanted[1]})" if wanted[1] else "")
                problems.append(f"no slice for {name}, which the manifest's "
                                f"{platform['swift']} needs")
    if problems:
        fail(f"{path} is not the xcframework the release needs:\n  " + "\n  ".join(problems))
    if expected_header is None:
        for (platform, variant), identifier in sorted(seen.items(), key=lambda item: item[1]):
            print(f"  slice {identifier} ({platform}{' ' + variant if variant else ''})")
    else:
        print(f"  {HEADER} of every slice ({len(seen)}) is the generated one")


# ---------------------------------------------------------------------------------------------
# The zip.


def write_zip(xcframework: str, zip_path: str, name: str) -> str:
    root = os.path.abspath(xcframework)
    entries = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        relative = os.path.relpath(directory, root)
        prefix = name if relative == "." else name + "/" + relative.replace(os.sep, "/")
        entries.append((prefix + "/", directory, "dir"))
        for file in sorted(files):
            if file == ".DS_Store":
                continue
            full = os.path.join(directory, file)
            entries.append((prefix + "/" + file, full, "link" if os.path.islink(full) else "file"))
        for subdir in subdirs:
            full = os.path.join(directory, subdir)
            if os.path.islink(full):
                entries.append((prefix + "/" + subdir, full, "link"))
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
    entries.sort(key=lambda entry: entry[0])
    tmp = zip_path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, full, kind in entries:
            info = zipfile.ZipInfo(arcname, date_time=ZIP_TIME)
            info.create_system = 3  # Unix, so external_attr carries the mode
            if kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
                archive.writestr(info, b"")
            elif kind == "link":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, os.readlink(full).encode("utf-8"))
            else:
                executable = os.stat(full).st_mode & 0o111
                info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(full, "rb") as handle:
                    archive.writestr(info, handle.read())
    os.replace(tmp, zip_path)
    digest = hashlib.sha256()
    with open(zip_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The release manifest and README.

STAND_IN_LINE = ("STAND-IN: made from a stand-in xcframework (Linux library, not Apple binaries) "
                 "to test release-tree.sh. Never publish this tree.")


def manifest(facts: dict, version: str, url, checksum, local_path, stand_in: bool) -> str:
    if local_path:
        binary = f'.binaryTarget(name: "{FFI_MODULE}", path: "{local_path}")'
        variant = ("Local variant, for development: the binary target is the xcframework in this "
                   "folder.\n// Not for publishing: SwiftPM takes a binary target by path only "
                   "inside the package.")
    else:
        binary = f'.binaryTarget(name: "{FFI_MODULE}", url: "{url}", checksum: "{checksum}")'
        variant = ("The binary target is the zipped xcframework attached to the GitHub release "
                   "of this version;\n// its checksum is the SHA-256 of that zip "
                   "(`swift package compute-checksum`).")
    platforms = ",\n".join(f"        {p['swift']}" for p in facts["platforms"])
    products = ",\n".join(f"        {p['swift']}" for p in facts["products"])
    settings = ""
    if facts["upcoming_features"]:
        features = ", ".join(f'.enableUpcomingFeature("{f}")' for f in facts["upcoming_features"])
        settings += f"\n            swiftSettings: [{features}],"
    linked = [f'.linkedFramework("{f}")' for f in facts["linked_frameworks"]]
    linked += [f'.linkedLibrary("{lib}")' for lib in facts["linked_libraries"]]
    if linked:
        settings += f"\n            linkerSettings: [{', '.join(linked)}],"
    settings = settings.rstrip(",")
    stand_in_comment = f"// {STAND_IN_LINE}\n" if stand_in else ""
    return f"""// swift-tools-version:{facts['tools_version']}
{stand_in_comment}// SteadyWS {version}: the Swift package of steadyws, for Apple platforms.
//
// Written by bindings/swift/release-tree.sh of the steadyws repository; do not edit it here,
// make the next release with that script. Tools version, platforms, products, linked frameworks
// and Swift settings are those of the development manifest, bindings/swift/Package.swift.
// {variant}
//
// The C module {FFI_MODULE} comes from the binary target alone: every slice of the xcframework
// carries the static library with {HEADER} and {MODULE_MAP} in its Headers/, and SwiftPM
// makes the module from them. So this package has no copy of the header or of a module map: a
// second module map declaring {FFI_MODULE} would define the same Clang module twice.
// Sources/{SWIFT_MODULE}: {SWIFT_MODULE}.swift is generated by uniffi-bindgen from the same build
// as the xcframework; the other files are the hand-written layer.

import PackageDescription

let package = Package(
    name: "{SWIFT_MODULE}",
    platforms: [
{platforms},
    ],
    products: [
{products},
    ],
    targets: [
        {binary},
        .target(
            name: "{SWIFT_MODULE}",
            dependencies: ["{FFI_MODULE}"],
            path: "Sources/{SWIFT_MODULE}",{settings}
        ),
    ]
)
"""


def readme(facts: dict, version: str, license_expression: str, package_url: str, url,
           local_path, stand_in: bool, license_files) -> str:
    product = facts["products"][0]["name"]
    repo_name = package_url.rstrip("/").rsplit("/", 1)[-1]
    stand_in_text = f"**{STAND_IN_LINE}**\n\n" if stand_in else ""
    if local_path:
        binary = (f"This is the **local variant** (`release-tree.sh --local`): `Package.swift` "
                  f"takes the xcframework from `{local_path}` in this folder. Add it with "
                  f"*Add Local…* in Xcode or `.package(path: …)`; do not publish it.")
    else:
        binary = (f"`Package.swift` downloads the C library as `{url}` and checks it against "
                  f"the SHA-256 in the manifest.")
    if license_files:
        licence = (f"`{license_expression}` (see " + ", ".join(f"`{f}`" for f in license_files)
                   + ").")
    else:
        licence = (f"`{license_expression}`, the licence of the steadyws repository this package "
                   f"is built from.")
    return f"""# SteadyWS {version} for Swift

{stand_in_text}The Swift package of steadyws: WebSocket connections that survive flaky networks and
app suspension (a Rust core, through UniFFI), with a Swift-concurrency API, `Socket`.
{platforms_prose(facts)}; Swift {facts['tools_version']} or later.

## Install

In Xcode: *File → Add Package Dependencies…*, enter `{package_url}`, pick version {version}
(up to next major), add the library **{product}** to your app target.

In a `Package.swift`:

```swift
dependencies: [
    .package(url: "{package_url}", from: "{version}"),
],
// and in your target:
.target(name: "MyApp", dependencies: [.product(name: "{product}", package: "{repo_name}")]),
```

Then `import {SWIFT_MODULE}`. The full documentation (quickstart, API, app lifecycle, durable
outbox) is `bindings/swift/README.md` of the steadyws repository.

## What is in this package

{binary}

- `Sources/{SWIFT_MODULE}/{SWIFT_MODULE}.swift`: the bindings generated by uniffi-bindgen from the
  build of the xcframework (do not edit);
- the other `Sources/{SWIFT_MODULE}/*.swift`: the hand-written layer (`Socket`, the app
  lifecycle adapter);
- `{FFI_MODULE}` (binary target): `libsteadyws_ffi.a` for iOS devices, the iOS simulator and macOS,
  each slice with its C header and module map (which is why the header is not in this tree).

Apple platforms only: on Linux, build the package from the steadyws repository
(`bindings/swift`, with the shared library).

This tree is written by `bindings/swift/release-tree.sh` of the steadyws repository, for every
release; changes made here are lost at the next one.

## Licence

{licence}
"""


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    facts_cmd = commands.add_parser("package-facts")
    facts_cmd.add_argument("dev_package")
    check = commands.add_parser("check-xcframework")
    check.add_argument("xcframework")
    check.add_argument("--dev-package", required=True)
    check.add_argument("--header", help="the generated header every slice's must equal")
    check.add_argument("--stand-in", action="store_true")
    zipping = commands.add_parser("zip")
    zipping.add_argument("xcframework")
    zipping.add_argument("zip")
    zipping.add_argument("--name", required=True)
    for name in ("manifest", "readme"):
        sub = commands.add_parser(name)
        sub.add_argument("--dev-package", required=True)
        sub.add_argument("--version", required=True)
        sub.add_argument("--url")
        sub.add_argument("--checksum")
        sub.add_argument("--local-path")
        sub.add_argument("--stand-in", action="store_true")
        if name == "readme":
            sub.add_argument("--license", required=True)
            sub.add_argument("--package-url", required=True)
            sub.add_argument("--license-file", action="append", default=[])
    args = parser.parse_args()
    try:
        if args.command == "package-facts":
            print(json.dumps(package_facts(args.dev_package), indent=2))
        elif args.command == "check-xcframework":
            check_xcframework(args.xcframework, args.dev_package, args.header, args.stand_in)
        elif args.command == "zip":
            print(write_zip(args.xcframework, args.zip, args.name))
        else:
            if bool(args.local_path) == bool(args.url):
                fail("give either --url (release) or --local-path (local variant)")
            if args.command == "manifest":
                if args.url and not re.fullmatch(r"[0-9a-f]{64}", args.checksum or ""):
                    fail("--checksum must be the 64 hex digits of a SHA-256")
                sys.stdout.write(manifest(package_facts(args.dev_package), args.version,
                                          args.url, args.checksum, args.local_path,
                                          args.stand_in))
            else:
                sys.stdout.write(readme(package_facts(args.dev_package), args.version,
                                        args.license, args.package_url, args.url,
                                        args.local_path, args.stand_in, args.license_file))
    except Failure as err:
        print(f"release_tree.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
