#!/usr/bin/env python3
"""Check what a steadyws sdist (from `maturin sdist`) holds: what a build needs, and nothing silly.

Needed: PKG-INFO, the pyproject.toml, the package README, the hand-written Python package, the
Cargo workspace manifest (whose members must all be present, the generator among them) and
lock, the crates the FFI crate builds from (core, bindings/ffi), the pinned generator crate
maturin runs (bindings/uniffi-bindgen), uniffi.toml as a regular file at the FFI crate's root
(the repository has it as a symlink to the root uniffi.toml, which an sdist must not depend
on), and LICENSE files when the repository has any. (examples/server comes along as a
dev-dependency of core: cargo needs it to load the workspace.)
Refused: build output and caches (target/, .cache/, __pycache__, *.pyc, *.so, wheels), VCS
folders, the workspace's test crate and fuzz targets, other bindings, docs and CI, symlinks
pointing out of the archive, and any file over 2 MiB.

Usage:
    check_sdist.py SDIST [--repo DIR] [--list]   # DIR: the repository (for its LICENSE files)
    check_sdist.py --self-test           # negative controls on fake sdists
Prints the sdist's files with their sizes and exits 1 when something is missing or refused.
"""

from __future__ import annotations

import argparse
import io
import posixpath
import re
import sys
import tarfile
import tempfile
from contextlib import redirect_stdout
from pathlib import Path, PurePosixPath
from typing import List, Optional

# The layout maturin gives it: pyproject.toml, the package README and python-source at the top,
# the crates at their workspace paths.
REQUIRED = [
    "PKG-INFO",
    "pyproject.toml",
    "README.md",
    "src/steadyws/__init__.py",
    "src/steadyws/py.typed",
    "src/steadyws/_error_types.pyi",
    "Cargo.toml",
    "Cargo.lock",
    "core/Cargo.toml",
    "core/src/lib.rs",
    "bindings/ffi/Cargo.toml",
    "bindings/ffi/src/lib.rs",
    "bindings/ffi/uniffi.toml",
    "bindings/uniffi-bindgen/Cargo.toml",
    "bindings/uniffi-bindgen/src/main.rs",
]

# Workspace members the sdist's Cargo.toml must keep: maturin runs the generator's binary from
# the workspace (`cargo run --bin uniffi-bindgen`); without it, it looks for `uniffi-bindgen` on
# PATH and a pip install from the sdist fails.
REQUIRED_MEMBERS = ["bindings/ffi", "core", "bindings/uniffi-bindgen"]

REFUSED = [
    (r"(^|/)target/", "cargo build output"),
    (r"(^|/)\.cache/", "the test cache"),
    (r"(^|/)__pycache__/|\.pyc$", "Python bytecode"),
    (r"(^|/)\.(git|hg|svn)(/|$)", "a version-control folder"),
    (r"(^|/)\.venv/|(^|/)venv/", "a virtualenv"),
    (r"\.(so|dylib|dll|a|whl|rlib)$", "a binary or a built package"),
    (r"^tests/", "the workspace's test crate, which the library does not build from"),
    (r"(^|/)fuzz/", "fuzz targets and data"),
    (r"^bindings/(kotlin|swift)/|^bindings/python/", "another package's files"),
    (r"^docs/|^\.ci/", "repository docs and CI"),
]

MAX_BYTES = 2 * 1024 * 1024


def check(sdist: Path, license_files: List[str], listing: bool = False) -> List[str]:
    problems: List[str] = []
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
        tops = {PurePosixPath(m.name).parts[0] for m in members}
        if len(tops) != 1:
            return [f"expected one top folder, found {sorted(tops)}"]
        top = tops.pop()
        expected_top = sdist.name[: -len(".tar.gz")]
        if top != expected_top:
            problems.append(f"top folder {top!r} is not {expected_top!r}")
        files = {}
        for member in members:
            relative = member.name[len(top) + 1 :] if member.name != top else ""
            if not relative:
                continue
            files[relative] = member
            if member.issym() or member.islnk():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(relative), member.linkname))
                if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                    problems.append(f"{relative}: a link to {member.linkname}, outside the sdist")
            if member.isfile() and member.size > MAX_BYTES:
                problems.append(f"{relative}: {member.size} bytes, over {MAX_BYTES} (what is it?)")
            for pattern, why in REFUSED:
                if re.search(pattern, relative):
                    problems.append(f"{relative}: {why} has no place in an sdist")
                    break
        for needed in REQUIRED + license_files:
            member = files.get(needed)
            if member is None and needed in license_files:
                problems.append(
                    f"{needed}: missing, though the repository has it (the sdist must carry the "
                    "license texts: for example a copy or symlink in bindings/python named in "
                    "pyproject.toml's license-files)"
                )
            elif member is None:
                problems.append(f"{needed}: missing")
            elif not member.isfile():
                problems.append(f"{needed}: not a regular file ({'symlink' if member.issym() else 'other'})")
        uniffi = files.get("bindings/ffi/uniffi.toml")
        if uniffi is not None and uniffi.isfile():
            text = archive.extractfile(uniffi).read().decode()  # type: ignore[union-attr]
            if "[bindings.python]" not in text:
                problems.append("bindings/ffi/uniffi.toml: has no [bindings.python] table")
        cargo = files.get("Cargo.toml")
        if cargo is not None and cargo.isfile():
            text = archive.extractfile(cargo).read().decode()  # type: ignore[union-attr]
            listed = re.search(r"^members\s*=\s*\[([^\]]*)\]", text, re.M)
            members = re.findall(r'"([^"]+)"', listed.group(1)) if listed else []
            for member in REQUIRED_MEMBERS:
                if member not in members:
                    problems.append(f"Cargo.toml: workspace member {member} missing (members: {members})")
            for member in members:
                if f"{member}/Cargo.toml" not in files:
                    problems.append(f"Cargo.toml: member {member} is not in the sdist")
        pyproject = files.get("pyproject.toml")
        if pyproject is not None and pyproject.isfile():
            text = archive.extractfile(pyproject).read().decode()  # type: ignore[union-attr]
            if "build-backend" not in text or "maturin" not in text:
                problems.append("pyproject.toml: does not build with maturin")
        total = sum(m.size for m in files.values() if m.isfile())
        print(f"  {sdist.name}: {len(files)} entries, {total // 1024} KiB unpacked")
        for name in sorted(files) if listing or problems else []:
            member = files[name]
            if member.isfile():
                print(f"    {member.size:>9}  {name}")
    return problems


def _fake_sdist(folder: Path, name: str, entries: dict, links: Optional[dict] = None) -> Path:
    path = folder / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for relative, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{relative}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for relative, target in (links or {}).items():
            info = tarfile.TarInfo(f"{name}/{relative}")
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


def self_test() -> int:
    good = {name: "x" for name in REQUIRED}
    good["bindings/ffi/uniffi.toml"] = "[bindings.python]\ncdylib_name = 'steadyws_ffi'\n"
    good["pyproject.toml"] = '[build-system]\nbuild-backend = "maturin"\n'
    members = ", ".join(f'"{m}"' for m in REQUIRED_MEMBERS)
    good["Cargo.toml"] = f"[workspace]\nmembers = [{members}]\n"
    for member in REQUIRED_MEMBERS:
        good.setdefault(f"{member}/Cargo.toml", "x")
    controls = {
        "a complete sdist (must pass)": (good, None, []),
        "target/ inside": ({**good, "target/debug/libsteadyws_ffi.so": "x"}, None, ["target/"]),
        ".cache inside": ({**good, ".cache/venv/bin/python": "x"}, None, [".cache/"]),
        "uniffi.toml missing": ({k: v for k, v in good.items() if "uniffi.toml" not in k}, None, ["uniffi.toml: missing"]),
        "uniffi.toml a symlink out": (
            {k: v for k, v in good.items() if "uniffi.toml" not in k},
            {"bindings/ffi/uniffi.toml": "../../../uniffi.toml"},
            ["uniffi.toml"],
        ),
        "generator not a workspace member": (
            {**good, "Cargo.toml": '[workspace]\nmembers = ["core", "bindings/ffi"]\n'},
            None,
            ["member bindings/uniffi-bindgen missing"],
        ),
        "core missing": ({k: v for k, v in good.items() if not k.startswith("core/")}, None, ["core/Cargo.toml: missing"]),
        "a LICENSE file not carried": (good, None, ["LICENSE-MIT: missing"]),
    }
    failures: List[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (label, (entries, links, expected)) in enumerate(controls.items()):
            folder = Path(tmp) / str(index)
            folder.mkdir()
            sdist = _fake_sdist(folder, "steadyws-9.9.9", entries, links)
            licenses = ["LICENSE-MIT"] if "LICENSE" in label else []
            with redirect_stdout(io.StringIO()):
                problems = check(sdist, licenses)
            if not expected and problems:
                failures.append(f"{label}: refused: {problems}")
            for needle in expected:
                if not any(needle in p for p in problems):
                    failures.append(f"{label}: no problem mentioning {needle!r} (got {problems})")
            print(f"  control: {label}: {'refused' if problems else 'accepted'}")
    if failures:
        print("check_sdist self-test FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("check_sdist self-test: a complete fake sdist passes; each broken one is refused")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sdist", type=Path, nargs="?")
    parser.add_argument("--repo", type=Path, help="the repository (its LICENSE* files are required)")
    parser.add_argument("--list", action="store_true", help="print every file (always on failure)")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if args.sdist is None:
        parser.error("give the sdist to check")
    licenses: List[str] = []
    if args.repo:
        licenses = sorted(p.name for p in args.repo.iterdir() if re.match(r"(LICEN[CS]E|COPYING)", p.name))
    problems = check(args.sdist, licenses, args.list)
    if not licenses:
        print("  note: the repository has no LICENSE files, so the sdist carries none (the license is "
              "named in the metadata only)")
    if problems:
        print(f"check_sdist: FAILED for {args.sdist.name}:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    print(f"check_sdist: {args.sdist.name} holds what a build needs and nothing it should not")
    return 0


if __name__ == "__main__":
    sys.exit(main())
