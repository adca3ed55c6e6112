#!/usr/bin/env python3
"""Check the package metadata PyPI would see, in the wheel (METADATA) and the sdist (PKG-INFO).

`twine check` validates the format and the README rendering; this checks what twine does not:

- `License-Expression` is the Cargo workspace's `license` (SPDX), and no `License ::` classifier
  comes with it (PEP 639 deprecates them; PyPI refuses an upload that has both);
- every classifier is a known, non-deprecated trove classifier (PyPI refuses unknown ones);
- `Requires-Python` is `>=3.9` and the `Programming Language :: Python :: 3.X` classifiers are
  exactly 3.9 to 3.13, the versions the package claims;
- Development Status, Operating System and Topic classifiers are present; keywords, a summary
  and the project URLs (Homepage, Source, Issues, Changelog under one repository URL) are set;
- the long description is the package README (markdown), starting with its Install section;
- the wheel and the sdist say the same thing.

Usage:
    check_metadata.py --wheel WHL --sdist TAR.GZ --cargo-toml Cargo.toml
    check_metadata.py --self-test    # negative controls on altered metadata
Needs the `trove-classifiers` package (test.sh installs it).
"""

from __future__ import annotations

import argparse
import email.message
import email.parser
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

from trove_classifiers import classifiers as KNOWN
from trove_classifiers import deprecated_classifiers as DEPRECATED

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
REPOSITORY = "https://github.com/steadyws/steadyws"
URL_LABELS = ["Homepage", "Source", "Issues", "Changelog"]


def read_wheel(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def read_sdist(sdist: Path) -> email.message.Message:
    top = sdist.name[: -len(".tar.gz")]
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(f"{top}/PKG-INFO")
        if member is None:
            raise SystemExit(f"check_metadata: no {top}/PKG-INFO in {sdist.name}")
        return email.parser.Parser().parsestr(member.read().decode())


def cargo_license(cargo_toml: Path) -> str:
    text = cargo_toml.read_text(encoding="utf-8")
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = re.search(r'^license\s*=\s*"([^"]+)"', section.group(1), re.M) if section else None
    if found is None:
        raise SystemExit(f"check_metadata: no [workspace.package] license in {cargo_toml}")
    return found.group(1)


def check(meta: email.message.Message, license_expression: str, where: str) -> List[str]:
    problems: List[str] = []

    def bad(text: str) -> None:
        problems.append(f"{where}: {text}")

    if meta.get("License-Expression") != license_expression:
        bad(f"License-Expression is {meta.get('License-Expression')!r}, Cargo says {license_expression!r} "
            "(pyproject.toml: license = \"<the Cargo expression>\")")
    if meta.get("License"):
        bad("a legacy License field besides License-Expression (use only `license = \"SPDX\"`)")
    classifiers = meta.get_all("Classifier") or []
    for classifier in classifiers:
        if classifier.startswith("License ::"):
            bad(f"classifier {classifier!r}: PyPI refuses License classifiers with License-Expression")
        elif classifier in DEPRECATED:
            bad(f"classifier {classifier!r} is deprecated (use {DEPRECATED[classifier]})")
        elif classifier not in KNOWN:
            bad(f"classifier {classifier!r} is not a trove classifier: PyPI would refuse the upload")
    if meta.get("Requires-Python") != ">=" + PYTHONS[0]:
        bad(f"Requires-Python is {meta.get('Requires-Python')!r}, expected '>={PYTHONS[0]}'")
    versions = sorted(
        (c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)),
        key=lambda v: tuple(map(int, v.split("."))),
    )
    if versions != PYTHONS:
        bad(f"Python version classifiers {versions}, expected {PYTHONS}")
    for prefix in ("Development Status ::", "Operating System ::", "Topic ::", "Intended Audience ::"):
        if not any(c.startswith(prefix) for c in classifiers):
            bad(f"no {prefix.rstrip(' :')} classifier")
    if not meta.get("Keywords"):
        bad("no keywords")
    if not meta.get("Summary"):
        bad("no summary (description in pyproject.toml)")
    urls: Dict[str, str] = {}
    for value in meta.get_all("Project-URL") or []:
        label, _, url = value.partition(",")
        urls[label.strip()] = url.strip()
    for label in URL_LABELS:
        if label not in urls:
            bad(f"no project URL {label!r}")
        elif not urls[label].startswith(REPOSITORY):
            bad(f"project URL {label} = {urls[label]} is not under {REPOSITORY}")
    if not (meta.get("Description-Content-Type") or "").startswith("text/markdown"):
        bad(f"Description-Content-Type is {meta.get('Description-Content-Type')!r}, not markdown")
    body = meta.get_payload()
    headings = re.findall(r"^## (.+)$", body if isinstance(body, str) else "", re.M)
    if not headings or headings[0].strip() != "Install":
        bad(f"the long description's first section is {headings[:1]}, expected 'Install' (the README)")
    return problems


FIELDS = ["Name", "Version", "Summary", "License-Expression", "Requires-Python", "Keywords"]


def compare(wheel: email.message.Message, sdist: email.message.Message) -> List[str]:
    problems = []
    for field in FIELDS:
        if wheel.get(field) != sdist.get(field):
            problems.append(f"{field}: wheel {wheel.get(field)!r}, sdist {sdist.get(field)!r}")
    for field in ("Classifier", "Project-URL"):
        if sorted(wheel.get_all(field) or []) != sorted(sdist.get_all(field) or []):
            problems.append(f"{field}s differ between the wheel and the sdist")
    return problems


def self_test(license_expression: str = "MIT OR Apache-2.0") -> int:
    lines = [
        "Metadata-Version: 2.4",
        "Name: steadyws",
        "Version: 0.1.0",
        "Classifier: Development Status :: 3 - Alpha",
        "Classifier: Intended Audience :: Developers",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Topic :: Internet",
        *(f"Classifier: Programming Language :: Python :: {v}" for v in PYTHONS),
        "Summary: s",
        "Keywords: websocket",
        f"License-Expression: {license_expression}",
        "Requires-Python: >=3.9",
        "Description-Content-Type: text/markdown",
        *(f"Project-URL: {label}, {REPOSITORY}/x" for label in URL_LABELS),
        "",
        "# steadyws\n\n## Install\n\npip install steadyws\n",
    ]
    good = "\n".join(lines)
    controls = {
        "complete metadata (must pass)": (good, None),
        "a License :: classifier too": (
            good.replace("Summary: s", "Classifier: License :: OSI Approved :: MIT License\nSummary: s"),
            "PyPI refuses License classifiers",
        ),
        "a classifier that does not exist": (
            good.replace("Summary: s", "Classifier: Topic :: Websockets :: Reliable\nSummary: s"),
            "not a trove classifier",
        ),
        "another license than Cargo's": (good.replace(license_expression, "MIT"), "Cargo says"),
        "Python 3.13 classifier missing": (
            good.replace("Classifier: Programming Language :: Python :: 3.13\n", ""),
            "Python version classifiers",
        ),
        "no Changelog URL": (good.replace(f"Project-URL: Changelog, {REPOSITORY}/x\n", ""), "Changelog"),
        "README without Install first": (good.replace("## Install", "## Quickstart"), "first section"),
    }
    failures = []
    for label, (text, needle) in controls.items():
        problems = check(email.parser.Parser().parsestr(text), license_expression, "fake")
        if needle is None and problems:
            failures.append(f"{label}: refused: {problems}")
        elif needle is not None and not any(needle in p for p in problems):
            failures.append(f"{label}: not caught (problems: {problems})")
        print(f"  control: {label}: {'refused' if problems else 'accepted'}")
    other = email.parser.Parser().parsestr(good.replace("Summary: s", "Summary: t"))
    if not compare(email.parser.Parser().parsestr(good), other):
        failures.append("a wheel and an sdist with different summaries were not told apart")
    if failures:
        print("check_metadata self-test FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("check_metadata self-test: complete metadata passes; each altered field is caught")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path)
    parser.add_argument("--sdist", type=Path)
    parser.add_argument("--cargo-toml", type=Path)
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if not (args.wheel and args.sdist and args.cargo_toml):
        parser.error("--wheel, --sdist and --cargo-toml are required")
    license_expression = cargo_license(args.cargo_toml)
    wheel, sdist = read_wheel(args.wheel), read_sdist(args.sdist)
    problems = check(wheel, license_expression, args.wheel.name)
    problems += check(sdist, license_expression, args.sdist.name)
    problems += compare(wheel, sdist)
    if problems:
        print("check_metadata: FAILED:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    classifiers = wheel.get_all("Classifier") or []
    print(
        f"check_metadata: {args.wheel.name} and {args.sdist.name} agree: License-Expression "
        f"{license_expression}, Requires-Python {wheel.get('Requires-Python')}, "
        f"{len(classifiers)} known classifiers (Python {', '.join(PYTHONS)}), "
        f"{len(wheel.get_all('Project-URL') or [])} project URLs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
