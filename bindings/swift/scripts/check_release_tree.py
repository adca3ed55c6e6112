"""Checks of the Swift release tree written by ../release-tree.sh, run by ../test.sh.

There is no Mac here, so the test runs release-tree.sh on a STAND-IN xcframework (made by the
`stand-in` subcommand: an Info.plist of the xcframework format and, for every Apple slice, the
Linux debug library and the generated header); what these checks say about the tree holds for a
real xcframework too, what they cannot say (that the slices are Apple binaries that link and
run) needs a Mac.

Subcommands:
  stand-in --lib L --header H --out DIR.xcframework [--omit-slice ID] [--tamper-header]
      write the stand-in (the two options make broken ones, for release-tree.sh's own guards).
  check --tree T --local-tree LT --zip Z --xcframework X --generated G --layer-dir D
        --dev-package P --dev-readme R --cargo-toml C --url U [--license-dir DIR]
      check the release tree T, its zip Z and the local variant LT; every check also runs on a
      broken copy (negative control) and must fail there.
Prints `ok - NAME` / `not ok - NAME`, details indented; exit status 1 when anything failed.
Checks in this file are written independently of release_tree.py (it is what they check).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import plistlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

FFI = "SteadyWSFFI"
SLICES = [
    # identifier, platform, variant, architectures (as build-xcframework.sh makes them)
    ("ios-arm64", "ios", None, ["arm64"]),
    ("ios-arm64_x86_64-simulator", "ios", "simulator", ["arm64", "x86_64"]),
    ("macos-arm64_x86_64", "macos", None, ["arm64", "x86_64"]),
]
# The module map build-xcframework.sh writes into every slice's Headers/.
MODULE_MAP = 'module SteadyWSFFI {\n    header "SteadyWSFFI.h"\n    export *\n}\n'
STAND_IN_NOTE = ("STAND-IN, not a real xcframework: the Linux debug library ({how}, named "
                 "libsteadyws_ffi.a) and the generated header stand in for the Apple slices.\n"
                 "The real one is built on a Mac: bindings/swift/build-xcframework.sh\n")


# ---------------------------------------------------------------------------------------------
# The stand-in.


def make_stand_in(lib: str, header: str, out: str, omit=None, tamper_header=False) -> None:
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    # The debug library without its debug info (a quarter of the size, so the test's zips are
    # quick); a plain copy where strip is missing.
    stand_in_lib = os.path.join(out, ".stand-in-lib")
    stripped = False
    if shutil.which("strip"):
        command = ["strip", "--strip-debug", "-o", stand_in_lib, lib]
        stripped = subprocess.run(command, capture_output=True).returncode == 0
    if not stripped:
        shutil.copyfile(lib, stand_in_lib)
    libraries = []
    for identifier, platform, variant, archs in SLICES:
        if identifier == omit:
            continue
        headers = os.path.join(out, identifier, "Headers")
        os.makedirs(headers)
        shutil.copyfile(stand_in_lib, os.path.join(out, identifier, "libsteadyws_ffi.a"))
        shutil.copyfile(header, os.path.join(headers, "SteadyWSFFI.h"))
        if tamper_header:
            with open(os.path.join(headers, "SteadyWSFFI.h"), "a", encoding="utf-8") as handle:
                handle.write("\nvoid steadyws_not_in_this_build(void);\n")
        with open(os.path.join(headers, "module.modulemap"), "w", encoding="utf-8") as handle:
            handle.write(MODULE_MAP)
        library = {
            "BinaryPath": "libsteadyws_ffi.a",
            "HeadersPath": "Headers",
            "LibraryIdentifier": identifier,
            "LibraryPath": "libsteadyws_ffi.a",
            "SupportedArchitectures": archs,
            "SupportedPlatform": platform,
        }
        if variant:
            library["SupportedPlatformVariant"] = variant
        libraries.append(library)
    info = {"AvailableLibraries": libraries, "CFBundlePackageType": "XFWK",
            "XCFrameworkFormatVersion": "1.0"}
    os.remove(stand_in_lib)
    with open(os.path.join(out, "Info.plist"), "wb") as handle:
        plistlib.dump(info, handle)
    with open(os.path.join(out, "STAND-IN-NOT-A-REAL-XCFRAMEWORK.txt"), "w",
              encoding="utf-8") as handle:
        handle.write(STAND_IN_NOTE.format(how="ELF, debug info stripped" if stripped else "ELF"))


# ---------------------------------------------------------------------------------------------
# Helpers.


def files_under(root: str) -> dict:
    """relative path -> bytes, for every file under root."""
    found = {}
    for directory, _, files in os.walk(root):
        for file in files:
            full = os.path.join(directory, file)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, root).replace(os.sep, "/")] = handle.read()
    return found


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def binary_target(manifest: str) -> dict:
    """The arguments of the one `.binaryTarget(...)` call (string literals only)."""
    calls = re.findall(r"\.binaryTarget\(([^)]*)\)", manifest)
    if len(calls) != 1:
        return {"_count": str(len(calls))}
    return dict(re.findall(r"(\w+):\s*\"([^\"]*)\"", calls[0]))


def cargo_version(cargo_toml: str) -> str:
    try:
        import tomllib
        with open(cargo_toml, "rb") as handle:
            return tomllib.load(handle)["workspace"]["package"]["version"]
    except ImportError:  # Python < 3.11
        section = read(cargo_toml).split("[workspace.package]", 1)[1].split("\n[", 1)[0]
        return re.search(r'^version\s*=\s*"([^"]+)"', section, re.MULTILINE).group(1)


def platforms_of(manifest: str) -> list:
    block = re.search(r"platforms:\s*\[(.*?)\]\s*,", manifest, re.DOTALL)
    if not block:
        return []
    return [(name, version.replace("_", ".")) for name, version in
            re.findall(r"\.(\w+)\(\.v([0-9_]+)\)", block.group(1))]


def products_of(manifest: str) -> list:
    block = re.search(r"products:\s*\[(.*?)\]\s*,\s*\n\s*(?:targets|dependencies):", manifest,
                      re.DOTALL)
    if not block:
        return []
    return re.findall(r"\.library\(\s*name:\s*\"([^\"]+)\"[^)]*targets:\s*\[\s*\"([^\"]+)\"\s*\]",
                      block.group(1))


def tools_version(manifest: str):
    match = re.match(r"// swift-tools-version:\s*([0-9.]+)", manifest)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------
# The checks: each returns a list of problems (empty: passed).


def check_complete(tree, generated, layer_dir, license_dir, xcframework=None):
    """Every expected file is there, copied byte for byte, and nothing else (no header)."""
    expected = {
        "Package.swift": None,
        "README.md": None,
        ".gitignore": None,
        "Sources/SteadyWS/SteadyWS.swift": generated,
    }
    for file in sorted(os.listdir(layer_dir)):
        if file.endswith(".swift"):
            expected["Sources/SteadyWS/" + file] = os.path.join(layer_dir, file)
    for file in sorted(os.listdir(license_dir)):
        if re.match(r"(LICENSE|LICENCE|COPYING)", file):
            expected[file] = os.path.join(license_dir, file)
    if xcframework:
        for path in files_under(xcframework):
            expected[f"{FFI}.xcframework/" + path] = os.path.join(xcframework, path)
    actual = files_under(tree)
    problems = []
    for path, source in sorted(expected.items()):
        if path not in actual:
            problems.append(f"missing: {path}")
        elif not actual[path]:
            problems.append(f"empty: {path}")
        elif source is not None:
            with open(source, "rb") as handle:
                if handle.read() != actual[path]:
                    problems.append(f"{path} is not a copy of {source}")
    for path in sorted(set(actual) - set(expected)):
        problems.append(f"unexpected: {path}"
                        + (" (the xcframework carries the header and module map)"
                           if path.endswith((".h", ".modulemap")) else ""))
    return problems


def check_checksum(tree, zip_path, sha_file):
    """Package.swift's checksum is the SHA-256 of the zip (and the .sha256 file says the same)."""
    target = binary_target(read(os.path.join(tree, "Package.swift")))
    declared = target.get("checksum")
    if not declared:
        return [f"Package.swift has no .binaryTarget(…, checksum: \"…\") ({target})"]
    actual = sha256(zip_path)
    problems = []
    if declared != actual:
        problems.append(f"Package.swift checksum {declared} != SHA-256 of the zip {actual}")
    recorded = read(sha_file).split()
    if recorded[:2] != [actual, os.path.basename(zip_path)]:
        problems.append(f"{os.path.basename(sha_file)} says {' '.join(recorded)}, "
                        f"expected '{actual}  {os.path.basename(zip_path)}'")
    return problems


def check_zip(tree, zip_path, xcframework, url):
    """The zip holds FFI.xcframework at its root, the input's files unchanged; the manifest's
    binary target has that name and downloads this zip."""
    problems = []
    target = binary_target(read(os.path.join(tree, "Package.swift")))
    if target.get("name") != FFI:
        problems.append(f"the binary target is named {target.get('name')!r}, not {FFI} (SwiftPM "
                        f"looks for <target name>.xcframework in the zip)")
    if target.get("url") != url:
        problems.append(f"the binary target's url is {target.get('url')!r}, expected {url!r}")
    if not url.endswith(f"/{FFI}.xcframework.zip"):
        problems.append(f"the url {url} does not name {FFI}.xcframework.zip")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            bad = archive.testzip()
            if bad:
                problems.append(f"zip: CRC error in {bad}")
            members = {info.filename: info for info in archive.infolist()}
            contents = {name[len(FFI) + len(".xcframework/"):]: archive.read(name)
                        for name in members
                        if not name.endswith("/") and name.startswith(f"{FFI}.xcframework/")}
    except (zipfile.BadZipFile, OSError) as err:
        return problems + [f"zip: cannot read {zip_path} ({err})"]
    outside = sorted(name for name in members if not name.startswith(f"{FFI}.xcframework/"))
    if outside:
        problems.append(f"zip: entries outside {FFI}.xcframework/ at the root: {outside[:3]}")
    if "Info.plist" not in contents:
        problems.append(f"zip: no {FFI}.xcframework/Info.plist at the root")
    expected = files_under(xcframework)
    for path in sorted(set(expected) - set(contents)):
        problems.append(f"zip: missing {path}")
    for path in sorted(set(contents) - set(expected)):
        problems.append(f"zip: unexpected {path}")
    for path in sorted(set(expected) & set(contents)):
        if expected[path] != contents[path]:
            problems.append(f"zip: {path} differs from the xcframework")
    return problems


def documented(dev_readme):
    """Platforms, tools version and product the development README's Install section documents."""
    text = read(dev_readme)
    match = re.search(r"Swift (\d+\.\d+) or later[^;]*; iOS (\d+(?:\.\d+)?), macOS (\d+\.\d+)", text)
    product = re.search(r'\.product\(name: "(\w+)", package: "steadyws-swift"\)', text)
    if not match or not product:
        return None
    return {"tools": match.group(1), "platforms": [("iOS", match.group(2)), ("macOS", match.group(3))],
            "product": product.group(1)}


def check_facts(tree, dev_package, dev_readme):
    """Tools version, platforms and products: the development manifest's and the documented ones."""
    release = read(os.path.join(tree, "Package.swift"))
    dev = read(dev_package)
    docs = documented(dev_readme)
    problems = []
    if docs is None:
        return ["the development README does not document `Swift X.Y or later …; iOS N, macOS N.N` "
                "and `.product(name: …, package: \"steadyws-swift\")`"]
    for what, mine, theirs, doc in (
        ("tools version", tools_version(release), tools_version(dev), docs["tools"]),
        ("platforms", platforms_of(release), platforms_of(dev), docs["platforms"]),
        ("products", products_of(release), products_of(dev), [(docs["product"], docs["product"])]),
    ):
        if not mine:
            problems.append(f"release Package.swift: no {what} found")
        elif mine != theirs:
            problems.append(f"{what}: release {mine} != development manifest {theirs}")
        elif mine != doc:
            problems.append(f"{what}: release {mine} != documented {doc}")
    return problems


def check_version(tree, cargo_toml, url):
    """The version in the manifest, the README and the asset URL is the Cargo workspace's."""
    version = cargo_version(cargo_toml)
    manifest = read(os.path.join(tree, "Package.swift"))
    readme = read(os.path.join(tree, "README.md"))
    problems = []
    said = re.search(r"^// SteadyWS (\S+): ", manifest, re.MULTILINE)
    if not said or said.group(1) != version:
        problems.append(f"Package.swift says SteadyWS {said.group(1) if said else '(nothing)'}, "
                        f"Cargo's workspace version is {version}")
    title = re.match(r"# SteadyWS (\S+) for Swift", readme)
    if not title or title.group(1) != version:
        problems.append(f"README title says {title.group(1) if title else '(nothing)'}, expected {version}")
    froms = re.findall(r'from: "([^"]+)"', readme)
    if not froms or any(value != version for value in froms):
        problems.append(f"README's .package(url:from:) says {froms}, expected {version}")
    if url and f"/{version}/" not in url:
        problems.append(f"the asset URL {url} is not under /{version}/")
    return problems


def check_local(tree, xcframework):
    """The local variant: `.binaryTarget(name:path:)`, a relative path inside the package, to a
    copy of the input xcframework."""
    target = binary_target(read(os.path.join(tree, "Package.swift")))
    problems = []
    if "url" in target or "checksum" in target:
        problems.append(f"the local variant's binary target has url/checksum: {target}")
    path = target.get("path")
    if target.get("name") != FFI or not path:
        return problems + [f"no .binaryTarget(name: \"{FFI}\", path: …) ({target})"]
    if os.path.isabs(path) or ".." in path.split("/"):
        problems.append(f"path {path!r} is not relative inside the package (SwiftPM rejects it)")
    full = os.path.join(tree, path)
    if not os.path.isdir(full):
        problems.append(f"path {path!r}: no xcframework there")
    elif files_under(full) != files_under(xcframework):
        problems.append(f"{path} is not a copy of {xcframework}")
    return problems


def check_stand_in_marked(tree):
    """A tree made from a stand-in says so in its manifest and README."""
    problems = []
    for file in ("Package.swift", "README.md"):
        if "STAND-IN" not in read(os.path.join(tree, file)):
            problems.append(f"{file} does not say STAND-IN")
    return problems


# ---------------------------------------------------------------------------------------------
# Negative controls: the same checks on broken copies.


def broken_copy(scratch, tree, label):
    copy = os.path.join(scratch, label)
    shutil.copytree(tree, copy)
    return copy


def edit(path, old, new):
    text = read(path)
    if old not in text:
        raise SystemExit(f"check_release_tree.py: negative control cannot find {old!r} in {path}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.replace(old, new, 1))


def main() -> int:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    stand_in = commands.add_parser("stand-in")
    stand_in.add_argument("--lib", required=True)
    stand_in.add_argument("--header", required=True)
    stand_in.add_argument("--out", required=True)
    stand_in.add_argument("--omit-slice")
    stand_in.add_argument("--tamper-header", action="store_true")
    check = commands.add_parser("check")
    for option in ("tree", "local-tree", "zip", "xcframework", "generated", "layer-dir",
                   "dev-package", "dev-readme", "cargo-toml", "url", "license-dir"):
        check.add_argument("--" + option, required=True)
    args = parser.parse_args()
    if args.command == "stand-in":
        make_stand_in(args.lib, args.header, args.out, args.omit_slice, args.tamper_header)
        return 0

    failed = 0

    def result(problems, name, expect=None):
        """A check (expect None: passes without problems) or a negative control (passes when a
        problem containing `expect` is reported, so it is caught for the right reason)."""
        nonlocal failed
        if expect is None:
            good = not problems
        else:
            caught = [problem for problem in problems if expect in problem]
            good = bool(caught)
            name = (f"negative control: {name} is caught ({caught[0]})" if caught else
                    f"negative control: {name} is not caught (no problem mentioning {expect!r})")
        print(("ok - " if good else "not ok - ") + name)
        if expect is None or not good:
            for line in problems[:10]:
                print(f"    {line}")
        if not good:
            failed += 1

    tree, local, zip_path = args.tree, args.local_tree, args.zip
    sha_file = zip_path + ".sha256"
    scratch = tempfile.mkdtemp(prefix="steadyws-release-check.")
    try:
        # complete
        result(check_complete(tree, args.generated, args.layer_dir, args.license_dir),
               "release tree complete: Package.swift, README.md, .gitignore, generated "
               "SteadyWS.swift and the hand-written layer (byte copies), nothing else (no header "
               "or module map)")
        result(check_complete(local, args.generated, args.layer_dir, args.license_dir,
                              args.xcframework),
               "local tree complete: the same, plus the copied xcframework")
        copy = broken_copy(scratch, tree, "missing-file")
        victim = sorted(f for f in os.listdir(args.layer_dir) if f.endswith(".swift"))[0]
        os.remove(os.path.join(copy, "Sources/SteadyWS", victim))
        result(check_complete(copy, args.generated, args.layer_dir, args.license_dir),
               f"a tree without {victim}", expect=f"missing: Sources/SteadyWS/{victim}")
        copy = broken_copy(scratch, tree, "stray-header")
        os.makedirs(os.path.join(copy, "Sources/SteadyWSFFI"))
        shutil.copyfile(args.generated, os.path.join(copy, "Sources/SteadyWSFFI/SteadyWSFFI.h"))
        result(check_complete(copy, args.generated, args.layer_dir, args.license_dir),
               "a duplicated header in the tree",
               expect="unexpected: Sources/SteadyWSFFI/SteadyWSFFI.h")
        copy = broken_copy(scratch, tree, "stale-generated")
        with open(os.path.join(copy, "Sources/SteadyWS/SteadyWS.swift"), "a") as handle:
            handle.write("\n// stale\n")
        result(check_complete(copy, args.generated, args.layer_dir, args.license_dir),
               "a generated file that is not this build's",
               expect="SteadyWS.swift is not a copy")

        # checksum
        result(check_checksum(tree, zip_path, sha_file),
               f"checksum: Package.swift's checksum is the SHA-256 of the zip ({sha256(zip_path)})")
        tampered = os.path.join(scratch, os.path.basename(zip_path))
        shutil.copyfile(zip_path, tampered)
        with open(tampered, "ab") as handle:
            handle.write(b"\0")
        shutil.copyfile(sha_file, tampered + ".sha256")
        result(check_checksum(tree, tampered, tampered + ".sha256"), "a tampered zip",
               expect="!= SHA-256 of the zip")

        # zip layout
        result(check_zip(tree, zip_path, args.xcframework, args.url),
               f"zip: {FFI}.xcframework/ at its root with the input's files unchanged; the binary "
               f"target is named {FFI} and downloads {args.url.rsplit('/', 1)[-1]}")
        nested = os.path.join(scratch, "nested.zip")
        with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(nested, "w") as target:
            for info in source.infolist():
                target.writestr("build/" + info.filename, source.read(info),
                                compress_type=zipfile.ZIP_STORED)
        result(check_zip(tree, nested, args.xcframework, args.url),
               "a zip with the xcframework in a subfolder", expect="entries outside")
        partial = os.path.join(scratch, "partial.zip")
        with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(partial, "w") as target:
            for info in source.infolist():
                if not info.filename.endswith("Info.plist"):
                    target.writestr(info.filename, source.read(info),
                                    compress_type=zipfile.ZIP_STORED)
        result(check_zip(tree, partial, args.xcframework, args.url),
               "a zip without Info.plist", expect="no SteadyWSFFI.xcframework/Info.plist")

        # products, platforms, tools version
        result(check_facts(tree, args.dev_package, args.dev_readme),
               "manifest: tools version, platforms and products are the development manifest's "
               "and the documented ones")
        result(check_facts(local, args.dev_package, args.dev_readme),
               "local manifest: the same")
        copy = broken_copy(scratch, tree, "platform")
        edit(os.path.join(copy, "Package.swift"), ".iOS(.v13)", ".iOS(.v14)")
        result(check_facts(copy, args.dev_package, args.dev_readme), "iOS 14 instead of 13",
               expect="platforms: release")
        copy = broken_copy(scratch, tree, "product")
        edit(os.path.join(copy, "Package.swift"), '.library(name: "SteadyWS"',
             '.library(name: "SteadyWSKit"')
        result(check_facts(copy, args.dev_package, args.dev_readme), "a renamed product",
               expect="products: release")

        # version
        result(check_version(tree, args.cargo_toml, args.url),
               f"version: manifest, README and asset URL say {cargo_version(args.cargo_toml)}, "
               f"the Cargo workspace version")
        result(check_version(local, args.cargo_toml, None), "local version: the same")
        copy = broken_copy(scratch, tree, "version")
        edit(os.path.join(copy, "README.md"), "from: \"", "from: \"9")
        result(check_version(copy, args.cargo_toml, args.url), "a README with another version",
               expect="README's .package(url:from:)")

        # local variant
        result(check_local(local, args.xcframework),
               f"local variant: .binaryTarget(name: \"{FFI}\", path: \"{FFI}.xcframework\"), a "
               f"copy of the input inside the package")
        result(check_local(tree, args.xcframework), "the release manifest checked as local",
               expect="has url/checksum")
        copy = broken_copy(scratch, local, "local-path")
        edit(os.path.join(copy, "Package.swift"), f'path: "{FFI}.xcframework"',
             f'path: "{os.path.abspath(args.xcframework)}"')
        result(check_local(copy, args.xcframework), "an absolute binary target path",
               expect="is not relative inside the package")

        # stand-in marker
        result(check_stand_in_marked(tree) + check_stand_in_marked(local),
               "both trees made from the stand-in say STAND-IN in Package.swift and README.md")
        copy = broken_copy(scratch, tree, "unmarked")
        edit(os.path.join(copy, "README.md"), "STAND-IN", "stand in")
        result(check_stand_in_marked(copy), "an unmarked README",
               expect="README.md does not say STAND-IN")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
