#!/usr/bin/env python3
"""Check a steadyws wheel's tags: `py3-none-<manylinux platform>`, confirmed by auditwheel.

The wheel holds no CPython extension: the generated module loads libsteadyws_ffi.so with ctypes,
so the Python and ABI tags must be `py3` and `none`, and only the platform tag says where the
library runs. That tag must be a manylinux tag (PyPI refuses `linux_*`), the same in the file
name and in the wheel's `.dist-info/WHEEL`, and no older than what the library's versioned
symbols and libraries need, which `auditwheel show` works out from the ELF files in the wheel.

Usage:
    check_wheel_tag.py WHEEL [--auditwheel PATH]
    check_wheel_tag.py --self-test WHEEL [--auditwheel PATH]
        negative controls: copies of WHEEL retagged manylinux2010 and manylinux_2_5 (older than
        any Rust library allows) and linux_x86_64 must be refused, and WHEEL itself accepted.
Exit status 1 when the tag is wrong (or a control was not caught).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def glibc_of(platform: str) -> Optional[Tuple[int, int]]:
    """The glibc version a manylinux platform tag promises to need at most; None if not manylinux."""
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform)
    if match:
        return LEGACY[match.group(1)]
    return None


def arch_of(platform: str) -> str:
    match = re.fullmatch(r"(?:manylinux_\d+_\d+|manylinux1|manylinux2010|manylinux2014|linux)_(\w+)", platform)
    return match.group(1) if match else "?"


def filename_tags(wheel: Path) -> Tuple[List[str], List[str], List[str]]:
    parts = wheel.name[: -len(".whl")].split("-")
    if not wheel.name.endswith(".whl") or len(parts) not in (5, 6):
        raise SystemExit(f"check_wheel_tag: {wheel.name} is not a wheel file name")
    python, abi, platform = parts[-3:]
    return python.split("."), abi.split("."), platform.split(".")


def wheel_file_tags(wheel: Path) -> List[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/WHEEL", n)]
        if len(names) != 1:
            raise SystemExit(f"check_wheel_tag: {wheel.name} has {len(names)} .dist-info/WHEEL files")
        text = archive.read(names[0]).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def auditwheel_tag(wheel: Path, auditwheel: str) -> Tuple[str, str]:
    """(the most compatible tag auditwheel finds the wheel's contents consistent with, its report)."""
    done = subprocess.run([auditwheel, "show", "--json", str(wheel)], capture_output=True, text=True)
    if done.returncode == 0 and done.stdout.strip().startswith("{"):
        result = json.loads(done.stdout)
        if "overall_tag" not in result:
            raise SystemExit(f"check_wheel_tag: auditwheel show --json gave no tag: {done.stdout}")
        return result["overall_tag"], done.stdout
    # Older auditwheel (the one for Python 3.9) has no --json: read the sentence.
    done = subprocess.run([auditwheel, "show", str(wheel)], capture_output=True, text=True)
    text = " ".join(done.stdout.split())
    match = re.search(r'is consistent with the following platform tag: "([^"]+)"', text)
    if done.returncode != 0 or match is None:
        raise SystemExit(
            f"check_wheel_tag: auditwheel show failed on {wheel.name} (exit {done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    return match.group(1), done.stdout


def check(wheel: Path, auditwheel: str) -> Tuple[List[str], str]:
    """(problems, summary); no problems means the tag is right."""
    problems: List[str] = []
    pythons, abis, platforms = filename_tags(wheel)
    if pythons != ["py3"] or abis != ["none"]:
        problems.append(
            f"tag {'.'.join(pythons)}-{'.'.join(abis)}: expected py3-none (the library is loaded "
            "with ctypes, it is no CPython extension); check [tool.maturin] bindings = \"uniffi\""
        )
    expected = sorted(f"{p}-{a}-{pl}" for p in pythons for a in abis for pl in platforms)
    inside = sorted(wheel_file_tags(wheel))
    if inside != expected:
        problems.append(
            f".dist-info/WHEEL says Tag: {', '.join(inside)} but the file name says {', '.join(expected)}"
        )
    audited, report = auditwheel_tag(wheel, auditwheel)
    needed = glibc_of(audited)
    for platform in platforms:
        promised = glibc_of(platform)
        if promised is None:
            problems.append(
                f"platform tag {platform} is not a manylinux tag: PyPI refuses it; auditwheel says "
                f"the contents allow {audited} (build without --compatibility linux, or run "
                "auditwheel repair)"
            )
        elif needed is None:
            problems.append(
                f"platform tag {platform} claims manylinux, but auditwheel finds the contents consistent "
                f"only with {audited}: it needs libraries or symbols no manylinux policy allows "
                f"(see the report below)"
            )
        elif promised < needed:
            problems.append(
                f"platform tag {platform} promises glibc {promised[0]}.{promised[1]}, but the library "
                f"needs glibc {needed[0]}.{needed[1]} (auditwheel: {audited}): it would install on "
                "systems where it cannot load. Build on an older glibc (a manylinux image, or "
                "maturin --zig --compatibility manylinux_2_17) or tag it honestly"
            )
        elif arch_of(platform) != arch_of(audited):
            problems.append(f"platform tag {platform} names another architecture than {audited}")
    summary = f"{wheel.name}: tag {'.'.join(platforms)}, auditwheel: consistent with {audited}"
    if problems:
        if report.lstrip().startswith("{"):  # the sentences read better than the JSON
            report = subprocess.run([auditwheel, "show", str(wheel)], capture_output=True, text=True).stdout
        problems.append("auditwheel show said:\n" + report.strip())
    return problems, summary


def retag(wheel: Path, platform: str, folder: Path) -> Path:
    """A copy of the wheel whose platform tag (file name, WHEEL, RECORD) is `platform`."""
    pythons, abis, _ = filename_tags(wheel)
    head = wheel.name[: -len(".whl")].split("-")[:-3]
    target = folder / ("-".join([*head, ".".join(pythons), ".".join(abis), platform]) + ".whl")
    # Stored, not deflated: the copy is thrown away, and compressing the debug library is slow.
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out:
        record_name = next(n for n in source.namelist() if n.endswith(".dist-info/RECORD"))
        wheel_name = record_name[: -len("RECORD")] + "WHEEL"
        text = source.read(wheel_name).decode()
        lines = [line for line in text.splitlines() if not line.startswith("Tag:")]
        lines += [f"Tag: {p}-{a}-{platform}" for p in pythons for a in abis]
        new_wheel = ("\n".join(lines) + "\n").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(new_wheel).digest()).rstrip(b"=").decode()
        record = []
        for row in source.read(record_name).decode().splitlines():
            if row.startswith(wheel_name + ","):
                row = f"{wheel_name},sha256={digest},{len(new_wheel)}"
            record.append(row)
        for info in source.infolist():
            if info.filename == wheel_name:
                data = new_wheel
            elif info.filename == record_name:
                data = ("\n".join(record) + "\n").encode()
            else:
                data = source.read(info)
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            out.writestr(copy, data, compress_type=zipfile.ZIP_STORED)
    return target


def self_test(wheel: Path, auditwheel: str) -> int:
    failures: List[str] = []
    problems, summary = check(wheel, auditwheel)
    if problems:
        failures.append(f"the wheel itself was refused: {problems[0]}")
    arch = arch_of(filename_tags(wheel)[2][0])
    with tempfile.TemporaryDirectory() as tmp:
        for platform in (f"manylinux2010_{arch}", f"manylinux_2_5_{arch}", f"linux_{arch}"):
            bad = retag(wheel, platform, Path(tmp))
            problems, _ = check(bad, auditwheel)
            if problems:
                print(f"  control: retagged {platform}: refused ({problems[0][:110]}...)")
            else:
                failures.append(f"a copy retagged {platform} was accepted")
        # The WHEEL metadata must agree with the file name: rename only, WHEEL untouched.
        renamed = Path(tmp) / wheel.name.replace(filename_tags(wheel)[2][0], f"manylinux_2_99_{arch}")
        shutil.copyfile(wheel, renamed)
        problems, _ = check(renamed, auditwheel)
        if any("WHEEL says" in p for p in problems):
            print("  control: renamed without changing WHEEL: refused (file name and WHEEL disagree)")
        else:
            failures.append("a renamed copy whose WHEEL disagrees with its name was accepted")
    if failures:
        print("check_wheel_tag self-test FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"check_wheel_tag self-test: {summary} accepted; retagged and renamed copies refused")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--auditwheel", default=shutil.which("auditwheel") or "auditwheel")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test(args.wheel, args.auditwheel)
    problems, summary = check(args.wheel, args.auditwheel)
    if problems:
        print(f"check_wheel_tag: FAILED for {args.wheel.name}:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    print(f"check_wheel_tag: {summary}: the tag is right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
