#!/usr/bin/env python3
"""One version everywhere: check every place a steadyws version appears against the Cargo workspace.

The single source is `[workspace.package] version` in the root Cargo.toml. This script reads it
and compares, failing (exit 1) with one line per disagreement that says where and how to fix it:

- every workspace member's Cargo.toml (`version.workspace = true`, or the same literal) and its
  entry in Cargo.lock;
- bindings/python/pyproject.toml (the version is `dynamic`, filled in by maturin from Cargo; a
  literal `version` must agree), and a literal `__version__` in src/steadyws/__init__.py;
- the installed package's `steadyws.__version__`, with `--python PY` (an interpreter with the
  wheel installed);
- built wheels (`--wheel PATH`: file name, .dist-info folder, METADATA `Version`) and sdists
  (`--sdist PATH`: file name, PKG-INFO `Version`);
- the Android module (bindings/kotlin/android: no hard-coded `version = "x.y.z"` /
  `versionName = "x.y.z"` / `version=x.y.z` that differs);
- the Swift release script bindings/swift/release-tree.sh, if present (it must take its default
  from Cargo.toml and hard-code no other version);
- artifact names such as `steadyws-x.y.z-...whl` written in README.md files and docs/;
- the latest released section of CHANGELOG.md (`## [x.y.z]`, the first heading after
  `## [Unreleased]`).

Usage:
    python3 tests/check-versions.py [--repo DIR] [--wheel WHL]... [--sdist TAR.GZ]... [--python PY]
    python3 tests/check-versions.py --self-test   # negative controls on a fake repository

Standard library only; Python 3.9+.
"""

from __future__ import annotations

import argparse
import email.parser
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

VERSION_RE = r"\d+\.\d+\.\d+(?:[-.+]?[0-9A-Za-z][0-9A-Za-z.+-]*)?"


class Report:
    """Collects one line per place checked; `problems` are the disagreements."""

    def __init__(self, expected: str) -> None:
        self.expected = expected
        self.lines: List[str] = []
        self.problems: List[str] = []

    def ok(self, place: str, found: str) -> None:
        self.lines.append(f"  ok        {place}: {found}")

    def note(self, place: str, text: str) -> None:
        self.lines.append(f"  note      {place}: {text}")

    def bad(self, place: str, found: str, fix: str) -> None:
        line = f"{place}: {found}, but the Cargo workspace version is {self.expected}. Fix: {fix}"
        self.lines.append(f"  MISMATCH  {line}")
        self.problems.append(line)

    def compare(self, place: str, found: str, fix: str) -> None:
        if normalise(found) == normalise(self.expected):
            self.ok(place, found)
        else:
            self.bad(place, found, fix)


def normalise(version: str) -> str:
    """Cargo's 0.1.0-rc.1 and Python's 0.1.0rc1 name the same release (PEP 440 normalisation,
    as maturin converts Cargo versions)."""
    v = version.strip().lower()
    v = re.sub(r"[-_.]?(alpha|a)[-_.]?(\d+)", r"a\2", v)
    v = re.sub(r"[-_.]?(beta|b)[-_.]?(\d+)", r"b\2", v)
    v = re.sub(r"[-_.]?(rc|c)[-_.]?(\d+)", r"rc\2", v)
    v = re.sub(r"[-_.]?(dev)[-_.]?(\d+)", r".dev\2", v)
    return v


# --- a small TOML reader: tomllib where it exists (3.11+), otherwise enough regex for our files ---


def read_toml(path: Path) -> Dict:
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib  # type: ignore[import-not-found]

        return tomllib.loads(text)
    except ImportError:
        return _toml_fallback(text)


def _toml_fallback(text: str) -> Dict:
    """Tables, `key = "string"`, `key.workspace = true`, `key = [ "a", "b" ]` (multi-line)."""
    data: Dict = {}
    table = data
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[([A-Za-z0-9_.\-]+)\]", line)
        if header:
            table = data
            for part in header.group(1).split("."):
                table = table.setdefault(part, {})
            continue
        item = re.match(r"([A-Za-z0-9_\-]+)(?:\.([A-Za-z0-9_\-]+))?\s*=\s*(.*)$", line)
        if not item:
            continue
        key, sub, value = item.groups()
        if value.startswith("[") and "]" not in value:
            for more in lines:
                value += more.split("#", 1)[0]
                if "]" in more:
                    break
        if value.startswith('"'):
            parsed: object = value[1 : value.index('"', 1)]
        elif value.startswith("["):
            parsed = re.findall(r'"([^"]*)"', value)
        elif value.startswith("true"):
            parsed = True
        elif value.startswith("false"):
            parsed = False
        else:
            parsed = value
        if sub:
            table.setdefault(key, {})[sub] = parsed
        else:
            table[key] = parsed
    return data


# --- the places ---


def workspace_version(repo: Path) -> str:
    cargo = repo / "Cargo.toml"
    version = read_toml(cargo).get("workspace", {}).get("package", {}).get("version")
    if not isinstance(version, str) or not re.fullmatch(VERSION_RE, version):
        sys.exit(
            f"check-versions: no usable [workspace.package] version in {cargo} (found {version!r}); "
            "it is the one source of the version: set it to x.y.z"
        )
    return version


def check_cargo_members(repo: Path, report: Report) -> None:
    workspace = read_toml(repo / "Cargo.toml").get("workspace", {})
    lock_path = repo / "Cargo.lock"
    lock = lock_path.read_text(encoding="utf-8") if lock_path.exists() else ""
    for member in workspace.get("members", []):
        manifest = repo / member / "Cargo.toml"
        if not manifest.exists():
            report.bad(f"{member}/Cargo.toml", "missing", f"fix `members` in {repo / 'Cargo.toml'}")
            continue
        package = read_toml(manifest).get("package", {})
        name = package.get("name", member)
        version = package.get("version")
        place = f"{member}/Cargo.toml [package] version"
        if isinstance(version, dict) and version.get("workspace") is True:
            report.ok(place, "version.workspace = true")
        elif isinstance(version, str):
            report.compare(place, version, f"write `version.workspace = true` in {manifest}")
        else:
            report.bad(place, f"{version!r}", f"write `version.workspace = true` in {manifest}")
            continue
        if lock:
            found = re.search(
                rf'\[\[package\]\]\nname = "{re.escape(name)}"\nversion = "([^"]+)"', lock
            )
            if found is None:
                report.note(f"Cargo.lock {name}", "not listed (run cargo once to update the lock)")
            else:
                report.compare(
                    f"Cargo.lock {name}",
                    found.group(1),
                    "run `cargo update --workspace` (or any cargo build) and commit Cargo.lock",
                )


def check_pyproject(repo: Path, report: Report) -> None:
    pyproject = repo / "bindings/python/pyproject.toml"
    if not pyproject.exists():
        report.note("bindings/python/pyproject.toml", "absent")
        return
    project = read_toml(pyproject).get("project", {})
    place = "bindings/python/pyproject.toml [project] version"
    if "version" in project:
        report.compare(
            place,
            str(project["version"]),
            f'remove `version` from {pyproject} and list it in `dynamic = ["version"]` '
            "(maturin takes the Cargo version)",
        )
    elif "version" in project.get("dynamic", []):
        report.ok(place, "dynamic (maturin fills in the Cargo version of bindings/ffi)")
    else:
        report.bad(place, "neither set nor dynamic", f'add `dynamic = ["version"]` to {pyproject}')
    init = repo / "bindings/python/src/steadyws/__init__.py"
    if init.exists():
        text = init.read_text(encoding="utf-8")
        literal = re.search(r"""^__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", text, re.M)
        if literal:
            report.compare(
                "src/steadyws/__init__.py __version__",
                literal.group(1),
                "read it from the installed distribution: importlib.metadata.version('steadyws')",
            )
        elif re.search(r"^__version__\s*(?::[^=]*)?=", text, re.M) and "importlib.metadata" in text:
            report.ok(
                "src/steadyws/__init__.py __version__",
                "read from the installed distribution (importlib.metadata)",
            )
        else:
            report.bad(
                "src/steadyws/__init__.py __version__",
                "not defined",
                "define __version__ = importlib.metadata.version('steadyws') in __init__.py",
            )


def check_installed(python: str, report: Report) -> None:
    done = subprocess.run(
        [python, "-c", "import steadyws; print(steadyws.__version__)"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # never the source tree
    )
    place = f"steadyws.__version__ under {python}"
    if done.returncode != 0:
        report.bad(place, "import failed: " + done.stderr.strip()[-300:], "install the wheel first")
    else:
        report.compare(place, done.stdout.strip(), "reinstall the wheel built from this tree")


def check_wheel(wheel: Path, report: Report) -> None:
    parts = wheel.name[: -len(".whl")].split("-")
    if not wheel.name.endswith(".whl") or len(parts) not in (5, 6):
        report.bad(f"wheel {wheel.name}", "not a wheel file name", "pass a .whl built by maturin")
        return
    report.compare(f"wheel file name {wheel.name}", parts[1], "rebuild the wheel from this tree")
    with zipfile.ZipFile(wheel) as archive:
        dist_infos = {n.split("/", 1)[0] for n in archive.namelist() if ".dist-info/" in n}
        if len(dist_infos) != 1:
            report.bad(f"wheel {wheel.name}", f"dist-info folders {sorted(dist_infos)}", "rebuild it")
            return
        dist_info = dist_infos.pop()
        report.compare(
            f"wheel {dist_info}/", dist_info[: -len(".dist-info")].split("-", 1)[-1], "rebuild it"
        )
        metadata = email.parser.Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        report.compare(f"wheel {dist_info}/METADATA Version", metadata["Version"], "rebuild it")


def check_sdist(sdist: Path, report: Report) -> None:
    match = re.fullmatch(r"(.+?)-(" + VERSION_RE + r")\.tar\.gz", sdist.name)
    if match is None:
        report.bad(f"sdist {sdist.name}", "not an sdist file name", "pass a .tar.gz from maturin sdist")
        return
    report.compare(f"sdist file name {sdist.name}", match.group(2), "rebuild the sdist")
    top = sdist.name[: -len(".tar.gz")]
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(f"{top}/PKG-INFO")
        if member is None:
            report.bad(f"sdist {sdist.name}", "no PKG-INFO", "rebuild it with maturin sdist")
            return
        metadata = email.parser.Parser().parsestr(member.read().decode())
    report.compare(f"sdist {top}/PKG-INFO Version", metadata["Version"], "rebuild the sdist")


def check_android(repo: Path, report: Report) -> None:
    folder = repo / "bindings/kotlin/android"
    if not folder.exists():
        report.note("bindings/kotlin/android", "absent")
        return
    patterns = [
        # Kotlin DSL: version = "1.2.3", versionName = "1.2.3" (not plugin `version "x"` lines)
        re.compile(r'^\s*(?:project\.)?(version|versionName)\s*=\s*"(' + VERSION_RE + r')"', re.M),
        # gradle.properties: version=1.2.3, VERSION_NAME=1.2.3
        re.compile(r"^\s*(version|VERSION_NAME|versionName)\s*=\s*(" + VERSION_RE + r")\s*$", re.M),
    ]
    found_any = False
    for path in sorted(folder.glob("*.gradle.kts")) + sorted(folder.glob("gradle.properties")):
        text = path.read_text(encoding="utf-8")
        for pattern in patterns:
            for hit in pattern.finditer(text):
                found_any = True
                report.compare(
                    f"{path.relative_to(repo)} {hit.group(1)}",
                    hit.group(2),
                    "read it from Cargo.toml's [workspace.package] version instead of a literal",
                )
    if not found_any:
        report.ok("bindings/kotlin/android", "no hard-coded project version (derived or unset)")


def check_swift(repo: Path, report: Report) -> None:
    script = repo / "bindings/swift/release-tree.sh"
    if not script.exists():
        report.note("bindings/swift/release-tree.sh", "absent: nothing to check")
        return
    code = "\n".join(
        line for line in script.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    )
    if "[workspace" not in code or "Cargo.toml" not in code:
        report.bad(
            "bindings/swift/release-tree.sh",
            "does not read Cargo.toml's [workspace.package] version",
            "default --version to the Cargo workspace version",
        )
    else:
        report.ok("bindings/swift/release-tree.sh", "default version read from Cargo.toml")
    for hit in re.finditer(
        r"""(?i)\bversion\w*\s*[:=]\s*["']?(""" + VERSION_RE + r""")["']?""", code
    ):
        report.compare(
            "bindings/swift/release-tree.sh hard-coded version",
            hit.group(1),
            "remove the literal; take the Cargo workspace version",
        )


def check_docs(repo: Path, report: Report) -> None:
    files = [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    files += sorted((repo / "bindings").glob("*/README.md"))
    # Artifact names carry the PEP 440 spelling: 1.2.3, 1.2.3rc1, 1.2.3.dev4.
    pattern = re.compile(r"\bsteadyws[-_](\d+\.\d+\.\d+(?:(?:a|b|rc|\.dev)\d+)?)(?=[-.])")
    seen = False
    for path in files:
        if not path.exists():
            continue
        for hit in pattern.finditer(path.read_text(encoding="utf-8")):
            seen = True
            report.compare(
                f"{path.relative_to(repo)} artifact name {hit.group(0)}",
                hit.group(1),
                "write the artifact name with a wildcard (steadyws-*.whl) or the new version",
            )
    if not seen:
        report.ok("README.md, docs/, bindings/*/README.md", "no versioned artifact names")


def check_changelog(repo: Path, report: Report) -> None:
    changelog = repo / "CHANGELOG.md"
    if not changelog.exists():
        report.bad("CHANGELOG.md", "missing", "add CHANGELOG.md with a section for this version")
        return
    headings = re.findall(r"^## \[([^\]]+)\]", changelog.read_text(encoding="utf-8"), re.M)
    released = [h for h in headings if h.strip().lower() != "unreleased"]
    if not released:
        report.bad("CHANGELOG.md", "no released section", f"add `## [{report.expected}]`")
        return
    report.compare(
        "CHANGELOG.md latest released section",
        released[0],
        f"add a `## [{report.expected}]` section above the older ones (or fix the Cargo version)",
    )


def run(repo: Path, wheels: List[Path], sdists: List[Path], python: Optional[str]) -> Report:
    report = Report(workspace_version(repo))
    check_cargo_members(repo, report)
    check_pyproject(repo, report)
    if python:
        check_installed(python, report)
    for wheel in wheels:
        check_wheel(wheel, report)
    for sdist in sdists:
        check_sdist(sdist, report)
    check_android(repo, report)
    check_swift(repo, report)
    check_docs(repo, report)
    check_changelog(repo, report)
    return report


# --- negative controls ---


def _fake_repo(root: Path, version: str, bad: bool) -> Tuple[Path, Path, Path]:
    """A repository shaped like ours. With bad=True every place but Cargo's says 0.0.9."""
    other = "0.0.9" if bad else version
    (root / "crate").mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        f'[workspace]\nmembers = ["crate", "pinned"]\n\n[workspace.package]\nversion = "{version}"\n'
    )
    (root / "crate/Cargo.toml").write_text('[package]\nname = "fake"\nversion.workspace = true\n')
    (root / "pinned").mkdir()
    (root / "pinned/Cargo.toml").write_text(f'[package]\nname = "pinned"\nversion = "{other}"\n')
    (root / "Cargo.lock").write_text(
        f'version = 4\n\n[[package]]\nname = "fake"\nversion = "{other}"\n\n'
        f'[[package]]\nname = "pinned"\nversion = "{other}"\n'
    )
    py = root / "bindings/python"
    (py / "src/steadyws").mkdir(parents=True)
    (py / "pyproject.toml").write_text(f'[project]\nname = "steadyws"\nversion = "{other}"\n')
    (py / "src/steadyws/__init__.py").write_text(f'__version__ = "{other}"\n')
    (py / "README.md").write_text(f"pip install steadyws-{other}-py3-none-any.whl\n")
    android = root / "bindings/kotlin/android"
    android.mkdir(parents=True)
    (android / "build.gradle.kts").write_text(
        'plugins {\n    id("com.android.library") version "8.7.3"\n}\n'
        f'group = "dev.steadyws"\nversion = "{other}"\n'
    )
    (android / "gradle.properties").write_text(f"android.useAndroidX=true\nVERSION_NAME={other}\n")
    swift = root / "bindings/swift"
    swift.mkdir(parents=True)
    (swift / "release-tree.sh").write_text(
        "# --version V (default: [workspace.package] version of Cargo.toml), e.g. 0.1.0\n"
        + (f'version="{other}"\n' if bad else "")
        + "v=$(sed -n '/^\\[workspace\\.package\\]/,/^\\[/ p' Cargo.toml)\n"
    )
    (root / "CHANGELOG.md").write_text(
        f"# Changelog\n\n## [Unreleased]\n\n## [{other}] - 2000-01-01\n\n## [0.0.1] - 1999-01-01\n"
    )
    wheel = root / f"steadyws-{other}-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(
            f"steadyws-{other}.dist-info/METADATA",
            f"Metadata-Version: 2.4\nName: steadyws\nVersion: {other}\n",
        )
    sdist = root / f"steadyws-{other}.tar.gz"
    pkg_info = root / "PKG-INFO"
    pkg_info.write_text(f"Metadata-Version: 2.4\nName: steadyws\nVersion: {other}\n")
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(pkg_info, arcname=f"steadyws-{other}/PKG-INFO")
    fake_python = root / "fake-python"
    fake_python.write_text(f"#!/bin/sh\necho {other}\n")
    fake_python.chmod(0o755)
    return wheel, sdist, fake_python


def self_test() -> int:
    expected_places = [
        "pinned/Cargo.toml",
        "Cargo.lock fake",
        "Cargo.lock pinned",
        "pyproject.toml",
        "__init__.py",
        "steadyws.__version__",
        "wheel file name",
        "dist-info/",
        "METADATA",
        "sdist file name",
        "PKG-INFO",
        "build.gradle.kts version",
        "gradle.properties VERSION_NAME",
        "release-tree.sh hard-coded",
        "README.md artifact name",
        "CHANGELOG.md",
    ]
    failures: List[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for bad in (False, True):
            root = Path(tmp) / ("bad" if bad else "good")
            wheel, sdist, python = _fake_repo(root, "0.2.0", bad)
            report = run(root, [wheel], [sdist], str(python))
            if not bad:
                if report.problems:
                    failures.append("a consistent fake repository was reported: " + "; ".join(report.problems))
                continue
            for place in expected_places:
                if not any(place in p for p in report.problems):
                    failures.append(f"a mismatch in {place} was not reported")
            if len(report.problems) != len(expected_places):
                failures.append(
                    f"expected {len(expected_places)} mismatches, got {len(report.problems)}:\n    "
                    + "\n    ".join(report.problems)
                )
        # Two spellings of one pre-release must agree; two different releases must not.
        if normalise("0.2.0-rc.1") != normalise("0.2.0rc1") or normalise("0.2.0") == normalise("0.2.1"):
            failures.append("version normalisation is wrong")
        # The script itself must exit 1 on the bad repository.
        done = subprocess.run(
            [sys.executable, __file__, "--repo", str(Path(tmp) / "bad")], capture_output=True, text=True
        )
        if done.returncode != 1 or "MISMATCH" not in done.stdout:
            failures.append(f"the bad repository did not make the script exit 1 (exit {done.returncode})")
        shutil.rmtree(Path(tmp) / "bad", ignore_errors=True)
    if failures:
        print("check-versions self-test FAILED (a checker that cannot fail is a defect):")
        for failure in failures:
            print("  -", failure)
        return 1
    print(
        f"check-versions self-test: a fake repository with {len(expected_places)} places "
        "disagreeing with Cargo is caught place by place, and a consistent one passes"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--wheel", type=Path, action="append", default=[], help="a built wheel")
    parser.add_argument("--sdist", type=Path, action="append", default=[], help="a built sdist")
    parser.add_argument("--python", help="an interpreter with the steadyws wheel installed")
    parser.add_argument("--self-test", action="store_true", help="run the negative controls")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    report = run(args.repo.resolve(), args.wheel, args.sdist, args.python)
    print(f"check-versions: Cargo workspace version {report.expected} ({args.repo / 'Cargo.toml'})")
    print("\n".join(report.lines))
    if report.problems:
        print(f"check-versions: FAILED, {len(report.problems)} place(s) disagree with Cargo.toml:")
        for problem in report.problems:
            print("  -", problem)
        return 1
    print("check-versions: every version agrees")
    return 0


if __name__ == "__main__":
    sys.exit(main())
