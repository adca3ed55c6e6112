"""Compile every Swift snippet of the docs against the SteadyWS package. Run by ../test.sh.

Which blocks: every ```swift block of README.md (the repository's root), bindings/README.md,
bindings/swift/README.md and docs/*.md.

How each block is checked, by kind:

  code        Compiled. Each block becomes a function of its own (`async throws`, so that `try`,
              `await` and `for try await` work as at the top level of an app's code, and two
              blocks' `let socket` do not clash) in its own file of a scratch SwiftPM package that
              depends on the SteadyWS package by path; `import` lines move to the top of the file.
              A prelude declares the few placeholder names the snippets use (`url`, `db`,
              `process(_:)`, ...) as real types and functions, so the snippets type-check for real.
              One `swift build` compiles them all, in the Swift 6 language mode.
              `#sourceLocation` maps every diagnostic to the markdown file and line. An error fails
              the block, and so does a warning, but for a value that is never used (a snippet
              shows `let id = try socket.send(...)` for the name).
  manifest    A Package.swift fragment (`dependencies: [...]`, `targets: [...]`, `.package(...)`):
              embedded in a complete manifest and loaded with `swift package dump-package`, which
              evaluates the manifest and resolves nothing (no network). A fragment with a
              `.package(path:)` dependency also has its dependency graph loaded (`swift package
              show-dependencies`, the path pointing at this package, offline), which checks the
              package and product names. A `.package(url:)` dependency is not resolved: the
              release repository is not published.
  apple-only  A block marked, on a line before it, with `<!-- snippet: apple-only (UIKit) -->`
              (or `(SwiftUI)`, `(Network)`, several separated by commas): it needs a framework that
              exists on Apple platforms only, so it cannot be compiled here. Listed as "not compiled
              here: needs ...", and parsed (`swiftc -parse`: syntax only). The marker is refused on
              a block that uses no name of the frameworks it gives.

Negative controls show that each check can fail: broken snippets compiled the same way (the
old docs' `for await` over `events`, which throws now, an undeclared name, a non-Sendable capture, UIKit glue
unmarked), broken manifest fragments, a misplaced marker.

The scratch package (--scratch) is reused between runs: files are rewritten only when their
content changes, the package's build is incremental (the first run compiles SteadyWS, later runs
only the snippets). On Linux, SteadyWS's manifest finds the native library with STEADYWS_LIB_DIR
(test.sh exports it; default <repo>/target/debug); the snippets are compiled, not linked or run.

Usage: check_snippets.py [--package DIR] [--scratch DIR] [--repo DIR] [--swift SWIFT]
Prints `ok - ...` / `not ok - ...` per check, details indented with `#`; exit 1 on any failure.
Python 3.9+, standard library only.
"""

import argparse
import dataclasses
import glob
import os
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

# The frameworks a block may be marked with, and names that show a block really needs them.
APPLE_ONLY = {
    "UIKit": [
        "attachToApp", "UIKitBackgroundTasks", "UIApplication", "observeAppLifecycle",
        "didFinishLaunchingWithOptions",
    ],
    "SwiftUI": [
        "WindowGroup", "ScenePhase", "scenePhase", "steadySocketLifecycle", "some View",
        "@Observable", "@State", "@Environment",
    ],
    "Network": ["monitorNetwork", "NWPathMonitor", "NWPath"],
}
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<body>.*?)\s*-->\s*$")
APPLE_MARKER = re.compile(r"^apple-only\s*\((?P<frameworks>[^)]*)\)$")
FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)[^`]*$")
# A diagnostic of swiftc or SwiftPM: `path:line:col: error: text`.
DIAGNOSTIC = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<kind>error|warning): (?P<text>.*)$")
# Warnings a doc snippet may have: a value shown for its name and not used afterwards.
TOLERATED_WARNINGS = re.compile(
    r"was never used|was never mutated|is unused|never used; consider replacing"
)

# The placeholder names the snippets use, as real declarations. Keep them few: each one is a
# name a reader of the docs has to imagine.
PRELUDE = '''\
// The placeholder names of the doc snippets, as real types and functions, so that the snippets
// type-check for real. Written by check_snippets.py; rewritten on every run.
import Foundation
import SteadyWS

/// The server of the examples.
let url = "wss://chat.example.com/ws"

/// The app's own database ("Exactly once across restarts"): a message and its resume cursor
/// are stored in one transaction.
let db = AppDatabase()

final class AppDatabase: Sendable {
    /// The cursor stored with the last message, nil before the first one.
    func lastCursor() throws -> ResumeCursor? { nil }
    /// Run `body` in one transaction.
    func transaction(_ body: (AppTransaction) throws -> Void) throws { try body(AppTransaction()) }
}

struct AppTransaction {
    func insert(_ message: ReceivedMessage) throws {}
    func saveCursor(_ cursor: ResumeCursor) throws {}
}

/// The app's handling of a message.
func process(_ message: ReceivedMessage) throws {}

/// Shows a message to the user.
func show(_ message: ReceivedMessage) {}

/// Marks a message the app sent as not delivered (`SteadyWSError.messageId`, `.sendFailure`).
func markUnsent(_ id: String?, _ reason: SendFailureKind?) {}
'''
PLACEHOLDERS = ["url", "db", "process", "show", "markUnsent"]

# Broken snippets that must fail to compile, each at its own line (every one in a file of its
# own, all in one build: an error in one file must not hide the errors of another).
CONTROLS = [
    (
        "stale-for-await",
        "the old docs' `for await` over `events`, whose iterator throws now",
        'let socket = try Socket(url: url)\n'
        'socket.connect()\n'
        'for await event in socket.events { print(event) }\n',
        3,
    ),
    (
        "undeclared-name",
        "a name that is neither in SteadyWS nor among the placeholders",
        'let socket = try Socket(url: url)\n'
        'for try await message in socket.messages {\n'
        '    try store(message)\n'
        '}\n',
        3,
    ),
    (
        "non-sendable-capture",
        "a non-Sendable value captured by a @Sendable closure (an error in the Swift 6 mode only)",
        'final class Box { var value = 0 }\n'
        'let box = Box()\n'
        'let read: @Sendable () -> Int = { box.value }\n'
        'print(read())\n',
        3,
    ),
    (
        "unmarked-uikit",
        "UIKit glue in a block without the apple-only marker (on Linux it does not exist)",
        'let socket = try Socket(url: url)\n'
        'let attachment = socket.attachToApp()\n'
        'print(attachment)\n',
        2,
    ),
]
# Manifest fragments that must be refused.
MANIFEST_CONTROLS = [
    (
        "misspelled-argument",
        "a misspelled argument (dump-package)",
        'dependencies: [\n'
        '    .package(url: "https://github.com/steadyws/steadyws-swift", frum: "0.1.0"),\n'
        '],\n'
        'targets: [\n'
        '    .target(name: "MyApp", dependencies: [\n'
        '        .product(name: "SteadyWS", package: "steadyws-swift"),\n'
        '    ]),\n'
        ']\n',
    ),
    (
        "wrong-product",
        "a product the package does not have (show-dependencies)",
        'dependencies: [\n'
        '    .package(path: "../steadyws/bindings/swift"),\n'
        '],\n'
        'targets: [\n'
        '    .target(name: "MyApp", dependencies: [\n'
        '        .product(name: "SteadyWSKit", package: "swift"),\n'
        '    ]),\n'
        ']\n',
    ),
]


@dataclasses.dataclass
class Block:
    path: str  # repository-relative markdown file
    line: int  # line of the block's first code line (1-based)
    code: str
    marker: Optional[str]  # the marker's body, e.g. "apple-only (UIKit)"
    marker_line: Optional[int]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def end(self) -> int:
        return self.line + max(len(self.code.splitlines()), 1) - 1

    @property
    def slug(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", self.path.rsplit(".", 1)[0]).strip("_")
        return f"{stem}_L{self.line}"


class Report:
    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def ok(self, text: str) -> None:
        self.passed += 1
        print(f"ok - {text}", flush=True)

    def not_ok(self, text: str, details: Sequence[str] = ()) -> None:
        self.failed += 1
        print(f"not ok - {text}", flush=True)
        self.detail(details)

    @staticmethod
    def detail(lines: Sequence[str], limit: int = 25) -> None:
        for line in list(lines)[:limit]:
            print(f"#   {line}")
        if len(lines) > limit:
            print(f"#   ... {len(lines) - limit} more")


# MARK: - Extraction


def extract(path: str, text: str) -> Tuple[List[Block], List[str]]:
    """The ```swift blocks of a markdown text, and the problems found (unclosed fence, marker
    without a block, unknown marker)."""
    lines = text.splitlines()
    blocks: List[Block] = []
    problems: List[str] = []
    pending: Optional[Tuple[str, int]] = None  # a marker waiting for its block
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.match(line)
        if marker:
            if pending:
                problems.append(f"{path}:{pending[1]}: marker `{pending[0]}` is not followed by a swift block")
            pending = (marker.group("body"), index + 1)
            index += 1
            continue
        opening = FENCE_OPEN.match(line)
        if not opening:
            if line.strip() and pending:
                problems.append(f"{path}:{pending[1]}: marker `{pending[0]}` is not followed by a swift block")
                pending = None
            index += 1
            continue
        fence, indent = opening.group("fence"), opening.group("indent")
        closing = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            problems.append(f"{path}:{index + 1}: code fence never closed")
        body = [strip_indent(code, indent) for code in lines[index + 1:end]]
        if opening.group("info").lower() == "swift":
            blocks.append(Block(path, index + 2, "\n".join(body) + "\n",
                                pending[0] if pending else None, pending[1] if pending else None))
        elif pending:
            problems.append(f"{path}:{pending[1]}: marker `{pending[0]}` is followed by a "
                            f"`{opening.group('info') or 'plain'}` block, not a swift one")
        pending = None
        index = end + 1
    if pending:
        problems.append(f"{path}:{pending[1]}: marker `{pending[0]}` is not followed by a swift block")
    return blocks, problems


def strip_indent(line: str, indent: str) -> str:
    return line[len(indent):] if line.startswith(indent) else line.lstrip(" \t")


def without_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return "\n".join(re.sub(r"//.*$", "", line) for line in code.splitlines())


def kind_of(block: Block) -> Tuple[str, List[str]]:
    """("code" | "manifest" | "apple-only" | "bad-marker", frameworks or problems)."""
    if block.marker is not None:
        marked = APPLE_MARKER.match(block.marker)
        if not marked:
            return "bad-marker", [f"unknown marker `{block.marker}` (known: "
                                  f"`apple-only (UIKit)`, `(SwiftUI)`, `(Network)`, or several: "
                                  f"`apple-only (UIKit, SwiftUI)`)"]
        frameworks = [name.strip() for name in marked.group("frameworks").split(",") if name.strip()]
        unknown = [name for name in frameworks if name not in APPLE_ONLY]
        if unknown or not frameworks:
            return "bad-marker", [f"marker `{block.marker}`: unknown framework(s) {unknown or '(none)'}; "
                                  f"known: {', '.join(APPLE_ONLY)}"]
        code = without_comments(block.code)
        unused = [name for name in frameworks if not apple_names(code, name)]
        if unused:
            return "bad-marker", [f"marked apple-only ({', '.join(unused)}) but uses none of "
                                  f"{', '.join(n for f in unused for n in APPLE_ONLY[f])}: "
                                  f"a block that can be compiled here must not be marked"]
        return "apple-only", frameworks
    first = next((line.strip() for line in without_comments(block.code).splitlines() if line.strip()), "")
    if first.startswith(("dependencies:", "targets:", "products:", ".package(", "// swift-tools-version")) \
            or block.code.lstrip().startswith("// swift-tools-version"):
        return "manifest", []
    return "code", []


def apple_names(code: str, framework: str) -> List[str]:
    return [name for name in APPLE_ONLY[framework]
            if re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", code)]


# MARK: - Code blocks


def wrap(code: str, function: str, source: str, line: int) -> str:
    """A Swift file with `code` as the body of `function`, diagnostics mapped to source:line."""
    imports = ["import Foundation", "import SteadyWS"]
    body = []
    for text in code.splitlines():
        if re.match(r"^import\s+\w+\s*$", text):
            if text.strip() not in imports:
                imports.append(text.strip())
            body.append("")  # keep the line numbers
        else:
            body.append(text)
    return (
        f"// Generated by check_snippets.py from {source}:{line}; rewritten on every run.\n"
        + "\n".join(imports) + "\n\n"
        + f"func {function}() async throws {{\n"
        + f'#sourceLocation(file: "{source}", line: {line})\n'
        + "\n".join(body) + "\n"
        + "#sourceLocation()\n"
        + "}\n"
    )


def write_if_changed(path: str, content: str) -> None:
    try:
        with open(path, encoding="utf-8") as existing:
            if existing.read() == content:
                return
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(content)


def sync_directory(directory: str, files: Dict[str, str], keep: Sequence[str] = ()) -> None:
    """Make `directory` hold exactly `files` (name -> content) and `keep`, touching only what
    changed."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name not in files and name not in keep:
            target = os.path.join(directory, name)
            shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
    for name, content in files.items():
        write_if_changed(os.path.join(directory, name), content)


def scratch_manifest(package: str) -> str:
    identity = os.path.basename(os.path.normpath(package))
    return f'''\
// swift-tools-version:6.0
// Written by check_snippets.py: the doc snippets (DocSnippets) and the broken ones that must
// fail (SnippetControls), compiled against the SteadyWS package in the Swift 6 language mode.
import PackageDescription

let steadyWS: Target.Dependency = .product(name: "SteadyWS", package: "{identity}")

let package = Package(
    name: "DocSnippets",
    platforms: [.iOS(.v13), .macOS(.v10_15)],
    dependencies: [.package(path: "{package}")],
    targets: [
        .target(name: "DocSnippets", dependencies: [steadyWS], path: "Sources/DocSnippets"),
        .target(name: "SnippetControls", dependencies: [steadyWS], path: "Sources/SnippetControls"),
    ],
    swiftLanguageModes: [.v6]
)
'''


def diagnostics(output: str) -> List[Tuple[str, int, str, str]]:
    """(file, line, kind, full text) of every error and warning, deduplicated, in order."""
    seen, found = set(), []
    for text in output.splitlines():
        match = DIAGNOSTIC.match(text.strip())
        if match and text not in seen:
            seen.add(text)
            found.append((match.group("file"), int(match.group("line")), match.group("kind"), text.strip()))
    return found


def at(found, path: str, first: int, last: int):
    """The diagnostics of `path` (as given to `#sourceLocation`) between two lines."""
    return [d for d in found if d[0] == path and first <= d[1] <= last]


def swift_build(swift: str, scratch: str, target: str) -> Tuple[int, str]:
    # -continue-building-after-errors: every file is compiled even when another one fails, so
    # that one broken snippet does not hide the errors of the others. The same flags for both
    # targets, so that SteadyWS is built once.
    command = [swift, "build", "--package-path", scratch, "--target", target,
               "-Xswiftc", "-continue-building-after-errors"]
    run = subprocess.run(command, capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def check_code(report: Report, swift: str, scratch: str, package: str, blocks: List[Block]) -> None:
    sources = {"Prelude.swift": PRELUDE}
    for block in blocks:
        sources[f"{block.slug}.swift"] = wrap(block.code, f"snippet_{block.slug}", block.path, block.line)
    controls = {
        f"{name}.swift": wrap(code, "control_" + name.replace("-", "_"), f"control/{name}.md", 1)
        for name, _, code, _ in CONTROLS
    }
    controls["Prelude.swift"] = PRELUDE
    write_if_changed(os.path.join(scratch, "Package.swift"), scratch_manifest(package))
    sync_directory(os.path.join(scratch, "Sources", "DocSnippets"), sources)
    sync_directory(os.path.join(scratch, "Sources", "SnippetControls"), controls)
    # Compile the snippets every time (SteadyWS stays built): a file that is up to date is not
    # compiled, and its warnings would not be seen.
    for name in sources:
        os.utime(os.path.join(scratch, "Sources", "DocSnippets", name))

    status, output = swift_build(swift, scratch, "DocSnippets")
    found = diagnostics(output)
    judged = set()
    for block in blocks:
        mine = at(found, block.path, block.line, block.end)
        errors = [d[3] for d in mine if d[2] == "error"]
        warnings = [d[3] for d in mine if d[2] == "warning"]
        bad_warnings = [w for w in warnings if not TOLERATED_WARNINGS.search(w)]
        if errors or bad_warnings:
            judged.add(block.where)
            hint = []
            for framework, names in APPLE_ONLY.items():
                used = apple_names(without_comments(block.code), framework)
                if used:
                    hint.append(f"it uses {', '.join(used)}: if it needs {framework}, mark it "
                                f"`<!-- snippet: apple-only ({framework}) -->` on the line before the block")
            report.not_ok(f"{block.where}: does not compile cleanly ({len(errors)} error(s), "
                          f"{len(bad_warnings)} warning(s))", errors + bad_warnings + hint)
    outside = [d[3] for d in found if d[2] == "error"
               and not any(at([d], b.path, b.line, b.end) for b in blocks)]
    if status != 0 and not outside and not judged:
        outside = [line for line in output.splitlines() if "error" in line.lower()][:20] \
            or output.splitlines()[-20:]
    if outside:
        report.not_ok(f"swift build of the snippet package: errors outside the snippets "
                      f"(log: swift build --package-path {scratch} --target DocSnippets)", outside)
    for block in blocks:
        if block.where in judged:
            continue
        if status == 0:
            mine = at(found, block.path, block.line, block.end)
            note = f"; {len(mine)} unused-value warning(s), tolerated" if mine else ""
            report.ok(f"{block.where}: compiles (Swift 6 mode, against SteadyWS){note}")
            report.detail([d[3].split(": warning: ", 1)[-1] + f" (line {d[1]})" for d in mine])
        else:
            print(f"# {block.where}: not judged (the build failed; fix the errors above and run again)")

    # Negative controls: each broken snippet is reported, at its own line.
    status, output = swift_build(swift, scratch, "SnippetControls")
    found = diagnostics(output)
    for name, what, _, line in CONTROLS:
        errors = [d for d in at(found, f"control/{name}.md", 1, 1000) if d[2] == "error"]
        if status != 0 and errors and all(d[1] == line for d in errors):
            report.ok(f"negative control: a broken snippet is caught: {what} "
                      f"({errors[0][3].split(': error: ', 1)[-1]})")
        else:
            report.not_ok(f"negative control: {what} was not reported at control/{name}.md:{line}",
                          [d[3] for d in errors] or output.splitlines()[-15:])


# MARK: - Manifest fragments


def manifest_for(fragment: str) -> Tuple[str, int]:
    """A complete Package.swift around `fragment`, and the line of the manifest where the
    fragment's first line is."""
    if fragment.lstrip().startswith("// swift-tools-version"):
        return fragment, 1
    body = fragment.rstrip("\n")
    if without_comments(body).strip().startswith(".package("):
        head = ("// swift-tools-version:6.0\nimport PackageDescription\n\nlet package = Package(\n"
                '    name: "MyApp",\n    platforms: [.iOS(.v13), .macOS(.v10_15)],\n    dependencies: [\n')
        return head + body + "\n    ]\n)\n", head.count("\n") + 1
    head = ("// swift-tools-version:6.0\nimport PackageDescription\n\nlet package = Package(\n"
            '    name: "MyApp",\n    platforms: [.iOS(.v13), .macOS(.v10_15)],\n')
    return head + body + "\n)\n", head.count("\n") + 1


def load_manifest(swift: str, directory: str, fragment: str, package: str,
                  links: Optional[set] = None) -> Tuple[bool, List[str], str]:
    """Load the fragment as a manifest in `directory`: (passed, problems, what was checked).
    The first folder of each symlink made for a `.package(path:)` is added to `links`."""
    manifest, first = manifest_for(fragment)
    sync_directory(directory, {"Package.swift": manifest}, keep=[".build"])
    # A target without sources is left out of the graph, its dependencies unchecked: give each
    # one an empty file.
    for kind, target in re.findall(r'\.(target|executableTarget|testTarget)\(\s*name:\s*"([^"]+)"', fragment):
        folder = "Tests" if kind == "testTarget" else "Sources"
        write_if_changed(os.path.join(directory, folder, target, "Empty.swift"), "")
    checked = "swift package dump-package"
    run = subprocess.run([swift, "package", "--package-path", directory, "dump-package"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        return False, remap(run.stdout + run.stderr, first), checked
    paths = re.findall(r'\.package\(\s*path:\s*"([^"]+)"', without_comments(fragment))
    for path in paths:
        # The path as the docs give it, pointing at this package (a symlink in the scratch).
        target = os.path.normpath(os.path.join(directory, path))
        if not target.startswith(os.path.dirname(directory)):
            return False, [f"path {path} leaves the scratch folder; give it as ../<clone>/bindings/swift"], checked
        if links is not None:
            links.add(os.path.relpath(target, os.path.dirname(directory)).split(os.sep)[0])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)
        os.symlink(package, target)
    if paths:
        checked += " and swift package show-dependencies (the path pointing at this package)"
        run = subprocess.run([swift, "package", "--package-path", directory, "show-dependencies"],
                             capture_output=True, text=True)
        # A warning fails it too ("dependency 'swift' is not used by any target", say).
        if run.returncode != 0 or re.search(r"^(warning|error):|: (warning|error):", run.stderr, re.M):
            return False, remap(run.stdout + run.stderr, first), checked
    return True, [], checked


def remap(output: str, first: int) -> List[str]:
    """Compiler output with `Package.swift:L` given as the fragment's own line (L - first + 1)."""
    def fix(match):
        return f"fragment line {int(match.group(1)) - first + 1}"
    lines = [re.sub(r"\S*Package\.swift:(\d+)", fix, line) for line in output.splitlines()]
    return [line for line in lines if line.strip()][:20]


def check_manifests(report: Report, swift: str, scratch: str, package: str, blocks: List[Block]) -> None:
    root = os.path.join(scratch, "manifests")
    os.makedirs(root, exist_ok=True)
    used = {block.slug for block in blocks} | {f"control_{name}" for name, _, _ in MANIFEST_CONTROLS}
    for block in blocks:
        passed, problems, checked = load_manifest(swift, os.path.join(root, block.slug), block.code,
                                                  package, used)
        if passed:
            remote = " (a .package(url:) is not resolved: the release repository is not published)" \
                if ".package(url:" in block.code else ""
            report.ok(f"{block.where}: manifest fragment loads in a complete Package.swift ({checked}){remote}")
        else:
            report.not_ok(f"{block.where}: manifest fragment does not load ({checked}); lines are the block's",
                          problems)
    for name, what, fragment in MANIFEST_CONTROLS:
        passed, problems, _ = load_manifest(swift, os.path.join(root, f"control_{name}"), fragment,
                                            package, used)
        if not passed and problems:
            report.ok(f"negative control: a broken manifest fragment is caught: {what}")
        else:
            report.not_ok(f"negative control: {what} was accepted")
    # What earlier runs left for blocks that are gone.
    for name in os.listdir(root):
        if name not in used:
            target = os.path.join(root, name)
            shutil.rmtree(target) if os.path.isdir(target) and not os.path.islink(target) else os.remove(target)


# MARK: - Apple-only blocks


def check_apple_only(report: Report, swift: str, scratch: str, blocks: List[Tuple[Block, List[str]]]) -> None:
    if not blocks:
        return
    directory = os.path.join(scratch, "apple-only")
    files = {f"{b.slug}.swift": wrap(b.code, f"snippet_{b.slug}", b.path, b.line) for b, _ in blocks}
    sync_directory(directory, files)
    swiftc = os.path.join(os.path.dirname(swift), "swiftc") if os.path.dirname(swift) else "swiftc"
    run = subprocess.run([swiftc, "-parse"] + [os.path.join(directory, name) for name in sorted(files)],
                         capture_output=True, text=True)
    found = diagnostics(run.stdout + run.stderr)
    for block, frameworks in blocks:
        mine = [d[3] for d in at(found, block.path, block.line, block.end) if d[2] == "error"]
        names = sorted({n for f in frameworks for n in apple_names(without_comments(block.code), f)})
        if mine:
            report.not_ok(f"{block.where}: apple-only block does not even parse (swiftc -parse)", mine)
        else:
            report.ok(f"{block.where}: parses (swiftc -parse, syntax only); not compiled here: needs "
                      f"{'/'.join(frameworks)} ({', '.join(names)})")
    if run.returncode != 0 and not any(d[2] == "error" for d in found):
        report.not_ok("swiftc -parse failed", (run.stdout + run.stderr).splitlines()[-15:])


# MARK: - Main


def markdown_files(repo: str) -> List[str]:
    fixed = ["README.md", "bindings/README.md", "bindings/swift/README.md"]
    docs = sorted(os.path.relpath(p, repo) for p in glob.glob(os.path.join(repo, "docs", "*.md")))
    return fixed + docs


def self_test(report: Report) -> None:
    """The extraction and the marker rules on a small document."""
    sample = (
        "text\n\n```swift\nlet a = 1\n```\n\n"
        "<!-- snippet: apple-only (UIKit) -->\n\n  ~~~swift\n  let b = socket.attachToApp()\n  ~~~\n"
        "<!-- snippet: apple-only (SwiftUI) -->\n```swift\nlet c = 3\n```\n"
        "```sh\nls\n```\n<!-- snippet: apple-only (UIKit) -->\nsome text\n"
    )
    blocks, problems = extract("sample.md", sample)
    kinds = [kind_of(b)[0] for b in blocks]
    expected = (
        [b.line for b in blocks] == [4, 10, 14]
        and kinds == ["code", "apple-only", "bad-marker"]
        and blocks[1].code == "let b = socket.attachToApp()\n"
        and len(problems) == 1 and "sample.md:19" in problems[0]
    )
    if expected:
        report.ok("negative control: extraction finds indented and ~~~ blocks, refuses an apple-only "
                  "marker on a block that needs no Apple framework, and a marker without its block")
    else:
        report.not_ok("extraction self-test", [f"lines {[b.line for b in blocks]}", f"kinds {kinds}",
                                               f"problems {problems}"])


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--package", default=os.path.dirname(here), help="the SteadyWS package (bindings/swift)")
    parser.add_argument("--scratch", help="the scratch package, reused between runs (default <repo>/.cache/swift-snippets)")
    parser.add_argument("--repo", help="the repository root (default: two levels above --package)")
    parser.add_argument("--swift", default=shutil.which("swift") or "swift")
    args = parser.parse_args()
    if not shutil.which(args.swift):
        print(f"not ok - no {args.swift} on PATH: a Swift 6.0+ toolchain is needed (swift.org/install)")
        return 1
    package = os.path.abspath(args.package)
    repo = os.path.abspath(args.repo or os.path.join(package, "..", ".."))
    scratch = os.path.abspath(args.scratch or os.path.join(repo, ".cache", "swift-snippets"))
    os.makedirs(scratch, exist_ok=True)
    report = Report()

    blocks: List[Block] = []
    counts = []
    for path in markdown_files(repo):
        full = os.path.join(repo, path)
        if not os.path.isfile(full):
            report.not_ok(f"{path}: missing")
            continue
        with open(full, encoding="utf-8") as source:
            found, problems = extract(path, source.read())
        for problem in problems:
            report.not_ok(problem)
        blocks += found
        if found:
            counts.append(f"{path} {len(found)}")

    code, manifests, apple = [], [], []
    for block in blocks:
        kind, extra = kind_of(block)
        if kind == "code":
            code.append(block)
        elif kind == "manifest":
            manifests.append(block)
        elif kind == "apple-only":
            apple.append((block, extra))
        else:
            report.not_ok(f"{block.where}: {extra[0]}", extra[1:])
    print(f"# {len(blocks)} swift blocks ({', '.join(counts) or 'none'}): {len(code)} compiled, "
          f"{len(manifests)} manifest fragments, {len(apple)} apple-only")
    used = [name for name in PLACEHOLDERS
            if any(re.search(r"\b" + name + r"\b", without_comments(b.code)) for b in code)]
    print(f"# placeholders (the prelude): {', '.join(PLACEHOLDERS)}; used: {', '.join(used) or 'none'}")

    self_test(report)
    check_code(report, args.swift, scratch, package, code)
    check_manifests(report, args.swift, scratch, package, manifests)
    check_apple_only(report, args.swift, scratch, apple)
    if apple:
        needed = "/".join(name for name in APPLE_ONLY if any(name in f for _, f in apple))
        listed = ", ".join(f"{b.where} ({'/'.join(f)})" for b, f in apple)
        print(f"not compiled here: needs {needed} (Apple platforms only): {len(apple)} block(s): {listed}")
    print(f"# snippets: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
