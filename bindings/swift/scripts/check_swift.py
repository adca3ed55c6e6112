"""Parse checks for the Swift package, run by ../test.sh (no Swift compiler needed).

Each Swift file is parsed with tree-sitter-swift; a file passes when the tree has no ERROR and no
MISSING node. The generated file first gets two rewrites, in memory only, for constructs the
grammar does not know (both keep line numbers):
  1. `#if swift(>=5.8)` / `#endif` around `@_documentation(visibility: private)` resolved as true;
  2. the closure `{ () }` (returns the empty tuple) replaced by the equivalent empty closure `{ }`.
Negative controls parse known-broken snippets and pass only when the checker reports them, so a
checker that accepts everything fails.

Usage: check_swift.py --generated FILE [--handwritten FILE ...]
Prints one line per check: `ok - NAME` or `not ok - NAME`, details indented below.
Exit status: 0 when every check passed, 1 otherwise.
"""

import argparse
import re
import sys

import tree_sitter
import tree_sitter_swift

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))

# 1. `#if swift(>=5.8)` + attribute lines + `#endif` -> blank, attribute lines, blank.
DOC_ATTRIBUTE = re.compile(
    r"^[ \t]*#if swift\(>=5\.8\)[ \t]*\n"
    r"((?:[ \t]*@_documentation\(visibility: *private\)[ \t]*\n)+)"
    r"[ \t]*#endif[ \t]*\n",
    re.MULTILINE,
)
# 2. `{ () }` -> `{    }` (same length).
UNIT_CLOSURE = re.compile(r"\{ \(\) \}")

NEGATIVE_CONTROLS = {
    "an unclosed parameter list": "func broken(_ value: Int {\n    return value\n}\n",
    "a missing closing brace": "struct Open {\n    let value: Int\n",
    "a stray operator": "let x = 1 +\nlet y = = 2\n",
}


def problems(source: str):
    """(line, column, kind, text) of every ERROR and MISSING node, 1-based positions."""
    tree = PARSER.parse(source.encode("utf-8"))
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            found.append((node.start_point[0] + 1, node.start_point[1] + 1, "MISSING", node.type))
            continue
        if node.is_error:
            text = node.text.decode("utf-8", "replace") if node.text else ""
            found.append((node.start_point[0] + 1, node.start_point[1] + 1, "ERROR", text))
            continue
        if node.has_error:
            stack.extend(node.children)
    return sorted(found)


def rewrite_generated(source: str):
    def doc(match):
        return "\n" + match.group(1) + "\n"

    source, docs = DOC_ATTRIBUTE.subn(doc, source)
    source, units = UNIT_CLOSURE.subn("{    }", source)
    return source, docs, units


def report(name: str, source: str, found, shown: int = 8) -> None:
    lines = source.splitlines()
    for line, column, kind, text in found[:shown]:
        snippet = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        detail = f"{kind} {text[:60]!r}" if kind == "ERROR" else f"MISSING {text!r}"
        print(f"    {name}:{line}:{column}: {detail}  | {snippet[:100]}")
    if len(found) > shown:
        print(f"    … and {len(found) - shown} more")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generated", required=True)
    parser.add_argument("--handwritten", nargs="*", default=[])
    args = parser.parse_args()
    failed = 0

    def result(ok: bool, name: str) -> None:
        nonlocal failed
        print(("ok - " if ok else "not ok - ") + name)
        if not ok:
            failed += 1

    # The checker can fail.
    for what, snippet in NEGATIVE_CONTROLS.items():
        found = problems(snippet)
        result(bool(found), f"negative control: {what} is reported ({len(found)} problem(s))")

    # Generated bindings, with the two rewrites.
    with open(args.generated, encoding="utf-8") as handle:
        generated = handle.read()
    raw = problems(generated)
    rewritten, docs, units = rewrite_generated(generated)
    found = problems(rewritten)
    result(
        not found,
        f"parse generated {args.generated} ({len(generated.splitlines())} lines; "
        f"{len(raw)} problem(s) before the rewrites, {docs} #if swift(>=5.8) blocks resolved, "
        f"{units} {{ () }} replaced, {len(found)} after)",
    )
    if found:
        report(args.generated, rewritten, found)

    # Hand-written files, as they are.
    for path in args.handwritten:
        try:
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
        except OSError as err:
            result(False, f"parse {path} ({err.strerror})")
            continue
        found = problems(source)
        result(not found, f"parse {path} ({len(source.splitlines())} lines)")
        if found:
            report(path, source, found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
