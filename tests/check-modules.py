#!/usr/bin/env python3
"""The module graph of core/src: no import circle between its files, and the layers depend one
way (`net` on the engine only; `store` may use `net`'s hook, never the reverse; the engine on
nothing else in the crate).

A module depends on another when its code (doc comments and `#[cfg(test)]` modules aside)
names it through `crate::`, `super::` or `self::`. `--self-test` runs the checker on small trees
with a circle and a wrong-way dependency, and fails unless it reports both.
"""

import os
import re
import sys
import tempfile

# Which top-level modules each one may use; a top-level module absent here may use any.
ALLOWED = {
    "engine": set(),
    "net": {"engine"},
    "store": {"engine", "net"},
}


def modules(root):
    """Module path (`engine::outbox`, `crate` for lib.rs) -> source without comments and tests."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)[: -len(".rs")]
            parts = relative.split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            module = "::".join(parts) if parts != ["lib"] else "crate"
            with open(path, encoding="utf-8") as source:
                text = source.read()
            text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
            text = re.sub(r"//[^\n]*", "", text)
            found[module] = text
    return found


def resolve(module, path, known):
    """The module a `crate::`/`super::`/`self::` path lands in (its longest known prefix)."""
    parts = path.split("::")
    base = [] if module == "crate" else module.split("::")
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    elif parts[0] == "self":
        parts = parts[1:]
    else:
        while parts and parts[0] == "super":
            base, parts = base[:-1], parts[1:]
    for length in range(len(parts), -1, -1):
        candidate = "::".join(base + parts[:length])
        if candidate in known:
            return candidate
    return None


def dependencies(found):
    edges = {module: set() for module in found}
    for module, text in found.items():
        paths = re.findall(r"\b((?:crate|super|self)(?:::[A-Za-z_]\w*)+)", text)
        for prefix, group in re.findall(r"\b(crate|super|self(?:::\w+)*)::\{([^}]*)\}", text):
            paths += [f"{prefix}::{item.strip().split(' as ')[0]}" for item in group.split(",") if item.strip()]
        for path in paths:
            target = resolve(module, path, found)
            # A parent's own items (`super::Engine`) are not a dependency on the parent's
            # children; a module using its parent is normal nesting, not a circle.
            if target and target not in ("crate", module) and not module.startswith(target + "::"):
                edges[module].add(target)
    return edges


def problems(root):
    found = modules(root)
    edges = dependencies(found)

    def reach(start):
        seen, stack = set(), [start]
        while stack:
            for nxt in edges[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    report = [f"import circle: {a} -> {b} -> ... -> {a}" for a in sorted(edges) for b in sorted(edges[a]) if a in reach(b)]
    for a in sorted(edges):
        for b in sorted(edges[a]):
            top_a, top_b = a.split("::")[0], b.split("::")[0]
            if top_a != top_b and top_a in ALLOWED and top_b not in ALLOWED[top_a]:
                report.append(f"wrong-way dependency: {a} uses {b} ({top_a} may use only {sorted(ALLOWED[top_a]) or 'nothing else'})")
    return report


def self_test():
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "engine"))
        os.makedirs(os.path.join(root, "net"))
        files = {
            "lib.rs": "mod engine; mod net;",
            "engine/mod.rs": "mod a; mod b;",
            "engine/a.rs": "use super::b::B;",
            "engine/b.rs": "/// see super::a\nuse super::a::A;",
            "net/mod.rs": "use crate::store::Writer;",
            "store.rs": "use crate::engine::a::A;",
        }
        for name, text in files.items():
            with open(os.path.join(root, name), "w", encoding="utf-8") as out:
                out.write(text)
        report = problems(root)
    circle = any("import circle: engine::a -> engine::b" in line for line in report)
    wrong = any("wrong-way dependency: net uses store" in line for line in report)
    if not (circle and wrong):
        print("check-modules self-test FAILED: it missed a planted problem:", report)
        return 1
    print("check-modules self-test: the planted circle and wrong-way dependency are reported")
    return 0


def main():
    if "--self-test" in sys.argv:
        return self_test()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "src")
    report = problems(root)
    for line in report:
        print(line)
    if report:
        return 1
    print(f"core/src module graph: no import circle among {len(modules(root))} modules; engine, net and store depend one way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
