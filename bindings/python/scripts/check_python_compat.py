#!/usr/bin/env python3
"""Check that the package's Python code runs on the oldest Python it declares (3.9 by default).

Inputs: files (.py), folders (every .py below) and wheels (.whl: every .py inside, which includes
the UniFFI-generated module steadyws/_ffi/steadyws.py). Two checks per file:

1. `ast.parse(source, feature_version=(3, 9))`: syntax newer than 3.9 (`match`, `except*`,
   ...) is a SyntaxError.
2. vermin (`--target=3.9- --no-tips --violations --feature union-types`): library and language
   features newer than 3.9 (`zip(strict=...)`, `int | str` at run time, new modules and
   functions, ...). A module with `from __future__ import annotations` never evaluates its
   annotations, so they become `None` before vermin reads it (`X | None` there is fine on 3.9);
   annotations of other modules are evaluated at definition time and stay.

This checks the code, not an interpreter: running the package on 3.9 is still the real test.

Usage:
    check_python_compat.py [--min 3.9] [--vermin PATH] [--expect NAME]... PATH...
    check_python_compat.py --self-test [--vermin PATH]   # negative controls: must all be flagged
Exit status 1 when something newer than the minimum is used (or a control was not caught).
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple


def collect(paths: List[Path], scratch: Path) -> List[Tuple[str, Path]]:
    """(label, file) for every .py in the inputs; wheels are unpacked under scratch."""
    found: List[Tuple[str, Path]] = []
    for path in paths:
        if path.suffix == ".whl":
            target = scratch / "wheels" / path.name
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith(".py"):
                        archive.extract(name, target)
                        found.append((f"{path.name}:{name}", target / name))
        elif path.is_dir():
            found.extend((str(p), p) for p in sorted(path.rglob("*.py")))
        elif path.is_file():
            found.append((str(path), path))
        else:
            raise SystemExit(f"check_python_compat: no such file or folder: {path}")
    return found


def _without_annotations(source: str, tree: ast.Module) -> str:
    """The source with every annotation replaced by `None` (for a module whose annotations are
    postponed by `from __future__ import annotations`, so never evaluated).

    The text is edited in place rather than regenerated with ast.unparse: on Python 3.12+
    unparse writes f-strings in the 3.12 syntax (PEP 701), which vermin then rightly reports."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    spans.append(arg.annotation)
            if node.returns is not None:
                spans.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            spans.append(node.annotation)
    lines = source.encode("utf-8").splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    data = b"".join(lines)
    # ast offsets are UTF-8 byte columns; replace from the end so earlier offsets stay valid.
    for node in sorted(spans, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        begin = starts[node.lineno - 1] + node.col_offset
        finish = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[operator]
        data = data[:begin] + b"None" + data[finish:]
    result = data.decode("utf-8")
    ast.parse(result)  # the edit must leave valid Python
    return result


def _postpones_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(stmt, ast.ImportFrom)
        and stmt.module == "__future__"
        and any(alias.name == "annotations" for alias in stmt.names)
        for stmt in tree.body
    )


def check(files: List[Tuple[str, Path]], minimum: Tuple[int, int], vermin: str, scratch: Path) -> List[str]:
    """Problems found, one per line; empty when everything runs on `minimum`."""
    problems: List[str] = []
    staged = scratch / "vermin"
    staged.mkdir(parents=True, exist_ok=True)
    labels = {}
    for index, (label, path) in enumerate(files):
        source = path.read_text(encoding="utf-8")
        try:
            ast.parse(source, filename=label, feature_version=minimum)
        except SyntaxError as err:
            problems.append(
                f"{label}:{err.lineno}: syntax newer than Python {minimum[0]}.{minimum[1]}: {err.msg}"
            )
        try:
            tree = ast.parse(source, filename=label)  # the running interpreter's grammar
        except SyntaxError as err:
            problems.append(f"{label}:{err.lineno}: not valid Python here either: {err.msg}")
            continue
        copy = staged / f"f{index}.py"
        if _postpones_annotations(tree):
            copy.write_text(_without_annotations(source, tree), encoding="utf-8")
        else:
            shutil.copyfile(path, copy)
        labels[str(copy)] = label
    if not files:
        return problems
    target = f"--target={minimum[0]}.{minimum[1]}-"
    done = subprocess.run(
        [vermin, target, "--no-tips", "--violations", "--feature", "union-types", "--no-make-paths-absolute", str(staged)],
        capture_output=True,
        text=True,
    )
    report = done.stdout
    for copy, label in labels.items():
        report = report.replace(copy, label)
    if done.returncode not in (0, 1) or "Minimum required versions" not in report:
        problems.append(f"vermin did not run ({vermin}, exit {done.returncode}): {done.stderr.strip()}")
    elif done.returncode == 1 or "Target versions not met" in report:
        lines = [
            line for line in report.splitlines()
            if line.strip() and not line.startswith(("Detecting python files", "Analyzing using"))
        ]
        problems.append("vermin: features newer than the minimum:\n    " + "\n    ".join(lines))
    return problems


CONTROLS = {
    # name: (source, must be flagged?)
    "match statement": ("def f(v):\n    match v:\n        case 1:\n            return 2\n", True),
    "runtime union in isinstance": ("def f(x):\n    return isinstance(x, int | str)\n", True),
    "union type alias": ("Maybe = int | None\n", True),
    "zip(strict=...)": ("def f(a, b):\n    return list(zip(a, b, strict=True))\n", True),
    "except* (3.11)": ("try:\n    pass\nexcept* ValueError:\n    pass\n", True),
    "a module new in 3.11": ("import tomllib\n", True),
    "postponed annotations (allowed)": (
        "from __future__ import annotations\n"
        "def f(a: int | None, b: list[int]) -> dict[str, int] | None:\n"
        "    value: int | None = None\n"
        "    return {'k': f\"{a!r} {b['x']} {'y'}\"}  # 3.9 f-string with inner quotes\n",
        False,
    ),
    "plain 3.9 code (allowed)": (
        "import asyncio\nfrom typing import Optional\n"
        "def f(a: Optional[int], b: list) -> dict:\n    return {'a': a, 'b': 'x'.removeprefix('y')}\n",
        False,
    ),
}


def self_test(minimum: Tuple[int, int], vermin: str) -> int:
    failures: List[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, (source, must_flag)) in enumerate(CONTROLS.items()):
            folder = Path(tmp) / f"control{index}"
            folder.mkdir()
            snippet = folder / "snippet.py"
            snippet.write_text(source)
            problems = check([(f"[{name}]", snippet)], minimum, vermin, folder / "scratch")
            if must_flag and not problems:
                failures.append(f"{name}: not flagged")
            if not must_flag and problems:
                failures.append(f"{name}: flagged although it runs on {minimum}: {problems}")
            verdict = "flagged" if problems else "passes"
            print(f"  control: {name}: {verdict}")
    if failures:
        print("check_python_compat self-test FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"check_python_compat self-test: every newer-than-{minimum[0]}.{minimum[1]} control flagged, allowed ones pass")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--min", default="3.9", help="oldest Python supported (default 3.9)")
    parser.add_argument("--vermin", default=shutil.which("vermin") or "vermin")
    parser.add_argument(
        "--expect", action="append", default=[], metavar="NAME",
        help="a file whose path ends with NAME must be among those checked (e.g. the generated module)",
    )
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args(argv)
    major, minor = (int(part) for part in args.min.split("."))
    minimum = (major, minor)
    if args.self_test:
        return self_test(minimum, args.vermin)
    if not args.paths:
        parser.error("give files, folders or wheels to check")
    with tempfile.TemporaryDirectory() as tmp:
        files = collect(args.paths, Path(tmp))
        if not files:
            print("check_python_compat: no .py files in the inputs: nothing was checked", file=sys.stderr)
            return 1
        problems = check(files, minimum, args.vermin, Path(tmp))
        for label, _ in files:
            print(f"  checked {label}")
        for name in args.expect:
            if not any(label.endswith(name) for label, _ in files):
                problems.append(f"{name} was not among the files checked (is it still in the wheel?)")
    if problems:
        print(f"check_python_compat: FAILED, code that needs a Python newer than {args.min}:")
        print("\n".join(f"  - {p}" for p in problems))
        print(f"Fix: rewrite it for {args.min} (Optional[X] for X | None at run time, no match, ...),")
        print("or raise requires-python and the classifiers in pyproject.toml.")
        return 1
    print(f"check_python_compat: {len(files)} file(s) use nothing newer than Python {args.min}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
