"""API checks for the hand-written Swift, run by ../test.sh (no Swift compiler needed).

A parse does not see a call with the wrong argument labels, a pattern with the wrong number of
associated values, or a missing `await`; those are the mistakes a change of the generated API
causes. Without a compiler, these checks catch the common ones, from the tree-sitter trees:

  native calls   every `native.NAME(LABELS…)` call in the hand-written files names a method the
                 generated `NativeSocketProtocol` declares, with the same argument labels in the
                 same order, under `await` when the method is async and `try` when it throws;
  enum cases     every `.CASE(…)` (construction or pattern) whose name is a case of a generated
                 enum or of an enum in the hand-written files has the arity of one such case, and
                 the labels it gives match that case's labels;
  switches       every `switch` without `default` whose patterns all name enum cases (`.CASE…`)
                 names every case of the enum they belong to (the one known enum that has all
                 those names and the fewest others), so a case added to a generated enum
                 (`SteadyError.StoreInUse`, `SendFailureKind.cancelled`, …) is not left out;
  surface        the layer declares the API of spec 8 (`SteadySocket` and its members,
                 `SteadyWSError` and its cases), of spec 10 (the durable store: `pending`,
                 `cancel`, the store errors, `StoreOptions`, `SocketOptions.store`,
                 `PendingMessage.createdAt`, `ReceivedMessage.redelivered`) and of the app
                 adapter (`attachToApp`, `AppAttachment`, `AppLifecycleMachine`, `AppPhase`,
                 `BackgroundTaskRunner`, `disconnectInBackground`, `steadySocketLifecycle`), and
                 none of the names it replaced;
  platform       every name that exists only with UIKit, SwiftUI or Network (theirs, and the
                 layer's own glue: `UIApplication`, `ScenePhase`, `NWPathMonitor`, `attachToApp`,
                 …) is used inside `#if canImport(THAT MODULE)` (not in its `#else`, not under a
                 negation or an `||`), so the package still builds on Linux and macOS;
  main actor     every `UIApplication.shared` is in a `@MainActor` function, type or closure and
                 not in a `nonisolated` one (UIKit is main-actor only; Swift 6 rejects the rest);
  background     every call of UIKit's `beginBackgroundTask` passes an expiration handler (a
  task           closure, trailing or `expirationHandler:`; not nil, not omitted): iOS terminates
                 an app that keeps a task past its time;
  scenarios      the XCTest suite declares `testScenario1…` to `testScenario7…`, once each;
  durable tests  the XCTest suite declares the store tests of spec 10 and the child role the
                 SIGKILL tests run, and the child's selector names a declared class and method;
  lifecycle      the XCTest suite declares the app adapter's tests (`AppLifecycleTests`).
  tests

A `.name(…)` right after a value (`self?.expired(…)`, `app.shared.beginBackgroundTask(…)`: the
dot follows a lower-case name, `)`, `]`, `?` or `!`) is a method call, not an enum case; `.name(…)`
alone and `Type.name(…)` are checked as cases.

Negative controls feed known-bad snippets through the same code and pass only when reported.

Usage: check_api.py --generated FILE --layer FILE… --tests FILE…
Prints `ok - NAME` or `not ok - NAME`, details indented. Exit status 1 on any failure.
"""

import argparse
import re
import sys

import tree_sitter
import tree_sitter_swift

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))
COMMENTS = {"comment", "multiline_comment"}
STRINGS = {"line_string_literal", "multi_line_string_literal", "raw_string_literal"}
SCOPE_ENDS = {"lambda_literal", "function_body", "statements", "computed_property", "source_file"}

# The API of specs 8 and 10, as the layer must declare it (extensions count for their type).
SURFACE_TYPES = {
    "SteadySocket": {
        "send", "sendAndWait", "waitAcked", "waitOpen", "events", "messages", "connect",
        "disconnect", "setAppState", "setNetwork", "close", "state", "stats",
        "pending", "cancel", "options", "attachToApp", "observeAppLifecycle", "monitorNetwork",
    },
    "SteadyWSError": {
        "invalid", "outboxFull", "sendFailed", "timedOut", "closed", "connectionFailed",
        "storeInUse", "storeNewerFormat", "storeFailed",
    },
    "ReceivedMessage": {"id", "seq", "ts", "data", "position", "redelivered", "json"},
    "StoreOptions": {"directory", "name", "syncEveryCommit", "file", "defaultName"},
    "SocketOptions": {"store", "disconnectInBackground", "recommendedBackgroundGrace"},
    "PendingMessage": {"createdAt"},
    # The app adapter (issue 11, item 3).
    "AppPhase": {"active", "inactive", "background", "appState"},
    "AppLifecycleMachine": {
        "timing", "reported", "holdsBackgroundTask", "deadline", "isAttached", "attach", "update",
        "observe", "backgroundTaskRefused", "backgroundTaskExpired", "detach", "isFinished",
    },
    "Timing": {"disconnectAfter", "closeAllowance", "flushLimit", "maxHold", "linger", "hold"},
    "Action": {"report", "beginBackgroundTask", "endBackgroundTask"},
    "BackgroundTaskRunner": {"beginTask", "endTask"},
    "AppAttachment": {"machine", "isAttached", "update", "follow", "detach"},
    "UIKitBackgroundTasks": {"beginTask", "endTask"},
    "View": {"steadySocketLifecycle"},
}
# The store tests of spec 10 (class -> methods), the same as pytest's and JUnit's, and the child
# role the SIGKILL tests run in a separate process.
DURABLE_TESTS = {
    "DurableTests": {
        "testSigkilledSenderLosesAndDuplicatesNothing",
        "testSigkilledReaderGetsEverythingAndOnlyTheMessageInHandAgain",
        "testPendingSurviveCloseAndCancelIsDurable",
        "testAStoreHasOneOwner",
    },
    "DurableChild": {"testChildRole"},
}
# The app adapter's tests (class -> methods).
LIFECYCLE_TESTS = {
    "AppLifecycleTests": {
        "testAttachReportsTheCurrentPhaseAtOnce",
        "testInactiveIsTheForeground",
        "testBackgroundBeginsATaskAndTheForegroundEndsIt",
        "testTheTaskEndsAfterTheGracefulCloseAndTheLinger",
        "testClosedFailedOrIdleEndTheTask",
        "testBusyAgainWaitsForTheNextFinish",
        "testTheDeadlineEndsTheTaskWhateverTheSocketDoes",
        "testKeepAliveHoldsTheTaskUntilTheOutboxIsAcknowledged",
        "testTheHoldFitsInWhatIOSGives",
        "testExpirationEndsTheTaskAtOnceAndOnce",
        "testARefusedTaskIsNotEnded",
        "testDetachEndsAHeldTaskAndStopsReporting",
        "testScenePhasesMapInactiveToTheForeground",
        "testAttachedInTheBackgroundTheSocketIsToldSo",
        "testTheTaskIsHeldUntilTheSocketSuspended",
        "testTheForegroundEndsTheTaskAndExpirationEndsItAtOnce",
        "testDetachIsIdempotentAndCloseOrReleaseDetach",
    },
}
# Names that exist only where a module can be imported: the module's own, and the layer's glue
# built on it. Each use must be inside `#if canImport(MODULE)`.
PLATFORM_NAMES = {
    "UIKit": ["UIKit", "UIApplication", "UIBackgroundTaskIdentifier", "UIKitBackgroundTasks",
              "attachToApp", "observeAppLifecycle"],
    "SwiftUI": ["SwiftUI", "ScenePhase", "scenePhase", "ViewModifier", "steadySocketLifecycle",
                "SteadySocketLifecycleModifier"],
    "Network": ["Network", "NWPathMonitor", "NWPath", "NetworkMonitoring", "monitorNetwork"],
}
CHILD_SELECTOR = re.compile(r'"SteadyWSTests\.(\w+)/(\w+)"')
# Names the new API replaced (no aliases are kept).
REMOVED = ["SteadyConnection", "SteadyWaitError", "SendFailure", "EventHub", "backlogLimit",
           "waitUntilOpen", "connectionLost", "enqueue"]
SCENARIOS = 7


def parse(source: str):
    return PARSER.parse(source.encode("utf-8")).root_node


def walk(node):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def text(node) -> str:
    return node.text.decode("utf-8") if node.text else ""


def code_only(source: str) -> str:
    """The source with comments and string literals blanked (same length, same lines)."""
    chars = list(source.encode("utf-8"))
    for node in walk(parse(source)):
        if node.type in COMMENTS or node.type in STRINGS:
            for i in range(node.start_byte, node.end_byte):
                if chars[i] != 0x0A:
                    chars[i] = 0x20
    return bytes(chars).decode("utf-8", "replace")


def line(node) -> int:
    return node.start_point[0] + 1


# --- generated declarations -------------------------------------------------------------------

def parameter_labels(params):
    """Argument labels of `parameter` nodes: the external name (None for `_`)."""
    labels = []
    for param in params:
        names = []
        for child in param.children:
            if child.type == ":":
                break
            if child.type == "simple_identifier" or text(child) == "_":
                names.append(text(child))
        label = names[0] if names else None
        labels.append(None if label == "_" else label)
    return labels


def protocol_methods(root, protocol: str):
    """name -> list of (labels, is_async, throws) for the protocol's functions."""
    methods = {}
    for node in walk(root):
        if node.type != "protocol_declaration":
            continue
        name = node.child_by_field_name("name")
        if name is None or text(name) != protocol:
            continue
        for member in walk(node):
            if member.type != "protocol_function_declaration":
                continue
            fname = text(member.child_by_field_name("name"))
            params = [c for c in member.children if c.type == "parameter"]
            kinds = {c.type for c in member.children}
            methods.setdefault(fname, []).append(
                (parameter_labels(params), "async" in kinds, "throws" in kinds)
            )
    return methods


def enum_cases(root):
    """case name -> list of (enum, labels) over every enum in the tree (labels: None = unlabelled)."""
    cases = {}
    for node in walk(root):
        if node.type != "class_declaration":
            continue
        kind = node.child_by_field_name("declaration_kind")
        if kind is None or text(kind) != "enum":
            continue
        enum = text(node.child_by_field_name("name"))
        body = node.child_by_field_name("body")
        if body is None:
            continue
        for entry in body.children:
            if entry.type != "enum_entry":
                continue
            current = None
            for child in entry.children:
                if child.type == "simple_identifier":
                    # `open` is declared with backticks; uses write `.open`.
                    current = text(child).strip("`")
                    cases.setdefault(current, []).append((enum, []))
                elif child.type == "enum_type_parameters" and current is not None:
                    labels = []
                    group = []
                    parts = [c for c in child.children if c.type not in COMMENTS]
                    for part in parts[1:-1] + [None]:
                        if part is None or part.type == ",":
                            has_label = (
                                len(group) >= 2
                                and group[0].type == "simple_identifier"
                                and group[1].type == ":"
                            )
                            labels.append(text(group[0]) if has_label else None)
                            group = []
                        else:
                            group.append(part)
                    cases[current][-1] = (enum, labels)
    return cases


# --- uses in the hand-written files -----------------------------------------------------------

def covered_by(node, kind: str) -> bool:
    """True when an ancestor of `node` within its closure or statement list is of type `kind`."""
    parent = node.parent
    while parent is not None and parent.type not in SCOPE_ENDS:
        if parent.type == kind:
            return True
        parent = parent.parent
    return False


def native_calls(root):
    """(line, method, labels, node) of every `native.NAME(…)` call."""
    calls = []
    for node in walk(root):
        if node.type != "call_expression" or not node.children:
            continue
        callee = node.children[0]
        if callee.type != "navigation_expression":
            continue
        target = callee.child_by_field_name("target")
        suffix = callee.child_by_field_name("suffix")
        if target is None or suffix is None or text(target) not in ("native", "self.native"):
            continue
        method = text(suffix).lstrip(".")
        arguments = [c for c in walk(node.children[-1]) if c.type == "value_arguments"][:1]
        labels = []
        for argument_list in arguments:
            for argument in argument_list.children:
                if argument.type != "value_argument":
                    continue
                label = argument.child_by_field_name("name")
                labels.append(text(label).strip() if label is not None else None)
        calls.append((line(node), method, labels, node))
    return calls


CASE_USE = re.compile(r"\.([a-z]\w*)\(")
LABEL = re.compile(r"^\s*(?:let\s+|var\s+)?([A-Za-z_]\w*)\s*:(?!:)")


def split_arguments(source: str, open_at: int):
    """The top-level comma-separated arguments of the parenthesis at `open_at`; None if unclosed."""
    depth = 0
    start = open_at + 1
    parts = []
    for i in range(open_at, len(source)):
        char = source[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                last = source[start:i]
                if parts or last.strip():
                    parts.append(last)
                return parts
        elif char == "," and depth == 1:
            parts.append(source[start:i])
            start = i + 1
    return None


BEFORE_DOT = re.compile(r"([A-Za-z_]\w*|[)\]?!])$")


def member_call(code: str, dot: int) -> bool:
    """True when the `.` at `dot` follows a value (a lower-case name, `)`, `]`, `?`, `!`): a method
    call such as `self?.expired(…)`, not an enum case. `.name(…)` and `Type.name(…)` are cases."""
    found = BEFORE_DOT.search(code[max(0, dot - 120):dot])
    if not found:
        return False
    token = found.group(1)
    return token in (")", "]", "?", "!") or token[0].islower() or token[0] == "_"


def case_uses(code: str, names):
    """(line, name, arity, labels) of every `.name(…)` with a known case name."""
    uses = []
    for match in CASE_USE.finditer(code):
        name = match.group(1)
        if name not in names or member_call(code, match.start()):
            continue
        arguments = split_arguments(code, match.end() - 1)
        if arguments is None:
            continue
        labels = []
        for argument in arguments:
            found = LABEL.match(argument)
            # `let x: T` is not a label; `label: value` is.
            labels.append(found.group(1) if found and not argument.strip().startswith(("let ", "var ")) else None)
        uses.append((code.count("\n", 0, match.start()) + 1, name, len(arguments), labels))
    return uses


def case_problems(code: str, cases):
    problems = []
    for number, name, arity, labels in case_uses(code, cases):
        candidates = cases[name]
        fits = [
            (enum, declared) for enum, declared in candidates
            if len(declared) == arity
            and all(given is None or given == want for given, want in zip(labels, declared))
        ]
        if not fits:
            shapes = ", ".join(
                f"{enum}.{name}({', '.join((l or '_') + ':' for l in declared)})"
                for enum, declared in candidates
            )
            given = ", ".join((l + ":") if l else "_" for l in labels)
            problems.append(f"line {number}: .{name}({given}) fits none of {shapes}")
    return problems


def pattern_case_name(switch_pattern):
    """`NAME` of a pattern `.NAME`, `.NAME(…)`, `let .NAME(…)`; None for any other pattern."""
    patterns = [c for c in switch_pattern.children if c.type == "pattern"]
    if len(patterns) != 1:
        return None
    parts = [c for c in patterns[0].children if c.type not in COMMENTS]
    for i, part in enumerate(parts[:-1]):
        if part.type == "." and parts[i + 1].type == "simple_identifier":
            return text(parts[i + 1]).strip("`")
        if part.type != "value_binding_pattern":
            return None
    return None


def enums_by_name(cases):
    """enum -> set of its case names, from `enum_cases`' case -> [(enum, labels)]."""
    enums = {}
    for name, shapes in cases.items():
        for enum, _ in shapes:
            enums.setdefault(enum, set()).add(name)
    return enums


def switch_problems(root, enums):
    """Each `switch` with no `default` whose every pattern is `.CASE…` must name every case of
    its enum: the known enum that has all the names given, with the fewest others. A switch over
    something else (strings, tuples, optionals, an enum we do not know) is not judged."""
    problems = []
    for node in walk(root):
        if node.type != "switch_statement":
            continue
        entries = [c for c in node.children if c.type == "switch_entry"]
        if any(any(c.type == "default_keyword" for c in walk(entry)) for entry in entries):
            continue
        names = set()
        understood = bool(entries)
        for entry in entries:
            for pattern in (c for c in entry.children if c.type == "switch_pattern"):
                name = pattern_case_name(pattern)
                if name is None:
                    understood = False
                else:
                    names.add(name)
        if not understood or not names:
            continue
        candidates = [(enum, all_cases) for enum, all_cases in enums.items() if names <= all_cases]
        if not candidates or any(all_cases <= names for _, all_cases in candidates):
            continue
        enum, all_cases = min(candidates, key=lambda c: (len(c[1] - names), c[0]))
        missing = ", ".join("." + name for name in sorted(all_cases - names))
        problems.append(f"line {line(node)}: switch over {enum} without default misses {missing}")
    return problems


def call_problems(root, methods):
    problems = []
    calls = native_calls(root)
    for number, method, labels, node in calls:
        overloads = methods.get(method)
        if not overloads:
            problems.append(f"line {number}: native.{method}(…): NativeSocket declares no {method}")
            continue
        matching = [o for o in overloads if o[0] == labels]
        if not matching:
            wanted = " or ".join(
                f"{method}({''.join((l or '_') + ':' for l in o[0])})" for o in overloads
            )
            given = "".join((l or "_") + ":" for l in labels)
            problems.append(f"line {number}: native.{method}({given}) but the generated API has {wanted}")
            continue
        _, is_async, throws = matching[0]
        if is_async and not covered_by(node, "await_expression"):
            problems.append(f"line {number}: native.{method} is async but is not awaited")
        if throws and not covered_by(node, "try_expression"):
            problems.append(f"line {number}: native.{method} throws but has no try")
    return problems, len(calls)


# --- surface and scenarios --------------------------------------------------------------------

def declared_members(root):
    """type name -> names declared in its body (functions, properties, enum cases, inits)."""
    members = {}
    for node in walk(root):
        if node.type not in ("class_declaration", "protocol_declaration"):
            continue
        name = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        if name is None or body is None:
            continue
        found = members.setdefault(text(name), set())
        for child in body.children:
            if child.type in ("function_declaration", "protocol_function_declaration"):
                found.add(text(child.child_by_field_name("name")))
            elif child.type == "property_declaration":
                for part in walk(child):
                    if part.type == "pattern":
                        found.add(text(part).strip())
                        break
            elif child.type == "enum_entry":
                found.update(text(c).strip("`") for c in child.children if c.type == "simple_identifier")
    return members


def durable_test_problems(roots, sources):
    """The spec 10 store tests and the child role are declared; the child selector resolves."""
    declared = {}
    for root in roots:
        for name, found in declared_members(root).items():
            declared.setdefault(name, set()).update(found)
    problems = []
    for class_name, methods in DURABLE_TESTS.items():
        missing = sorted(methods - declared.get(class_name, set()))
        problems += [f"{class_name}.{m} is not declared" for m in missing]
    selectors = [m for source in sources for m in CHILD_SELECTOR.finditer(source)]
    if not selectors:
        problems.append("no child selector \"SteadyWSTests.CLASS/METHOD\" in the tests")
    for found in selectors:
        class_name, method = found.group(1), found.group(2)
        if method not in declared.get(class_name, set()):
            problems.append(f"child selector {found.group(0)}: no {class_name}.{method} declared")
    return problems


def scenario_problems(roots):
    numbers = {}
    for root in roots:
        for node in walk(root):
            if node.type != "function_declaration":
                continue
            name = text(node.child_by_field_name("name"))
            found = re.match(r"testScenario(\d+)[A-Z]", name)
            if found:
                numbers.setdefault(int(found.group(1)), []).append(name)
    problems = []
    for number in range(1, SCENARIOS + 1):
        names = numbers.get(number, [])
        if len(names) != 1:
            problems.append(f"scenario {number}: {len(names)} test method(s) {names}")
    for number in sorted(set(numbers) - set(range(1, SCENARIOS + 1))):
        problems.append(f"scenario {number} is not in the list of {SCENARIOS}: {numbers[number]}")
    return problems, sum(len(v) for v in numbers.values())


def surface_problems(layer_roots, sources):
    """Types of SURFACE_TYPES the layer lacks, members they lack, replaced names still used."""
    layer_members = {}
    for root in layer_roots:
        for name, found in declared_members(root).items():
            layer_members.setdefault(name, set()).update(found)
    missing = []
    for type_name, wanted in SURFACE_TYPES.items():
        if type_name not in layer_members:
            missing.append(f"no type {type_name}")
            continue
        missing += [f"{type_name}.{m} is not declared" for m in sorted(wanted - layer_members[type_name])]
    leftovers = []
    for path, source in sources.items():
        code = code_only(source)
        for name in REMOVED:
            for found in re.finditer(rf"\b{name}\b", code):
                leftovers.append(f"{path}:{code.count(chr(10), 0, found.start()) + 1}: {name}")
    return missing + leftovers


def declared_test_problems(roots, required):
    """The test methods of `required` (class -> methods) that are not declared."""
    declared = {}
    for root in roots:
        for name, found in declared_members(root).items():
            declared.setdefault(name, set()).update(found)
    problems = []
    for class_name, methods in required.items():
        missing = sorted(methods - declared.get(class_name, set()))
        problems += [f"{class_name}.{m} is not declared" for m in missing]
    return problems


# --- platform guards, main actor, background tasks --------------------------------------------

DIRECTIVE = re.compile(r"^\s*#(if|elseif|else|endif)\b(.*)$")
CAN_IMPORT = re.compile(r"(?<![!\w])canImport\(\s*(\w+)\s*\)")


def guaranteed_modules(condition: str):
    """The modules a `#if` condition guarantees: `canImport(M)` not negated, in a conjunction."""
    if "||" in condition:
        return set()
    return set(CAN_IMPORT.findall(condition))


def guarded_lines(code: str):
    """(line -> modules every enclosing branch guarantees, with None for a directive line;
    problems with the nesting)."""
    stack = []
    lines = {}
    problems = []
    for number, content in enumerate(code.split("\n"), 1):
        directive = DIRECTIVE.match(content)
        if directive is None:
            lines[number] = set().union(*stack) if stack else set()
            continue
        lines[number] = None
        kind, condition = directive.groups()
        if kind == "if":
            stack.append(guaranteed_modules(condition))
        elif not stack:
            problems.append(f"line {number}: #{kind} without #if")
        elif kind == "elseif":
            stack[-1] = guaranteed_modules(condition)
        elif kind == "else":
            stack[-1] = set()
        else:
            stack.pop()
    if stack:
        problems.append(f"{len(stack)} #if without #endif")
    return lines, problems


def platform_problems(source: str):
    """Uses of PLATFORM_NAMES outside a `#if canImport(MODULE)` branch."""
    code = code_only(source)
    lines, problems = guarded_lines(code)
    for module, names in PLATFORM_NAMES.items():
        for name in names:
            for found in re.finditer(rf"(?<![\w.\\])\b{name}\b|(?<=[.\\]){name}\b", code):
                number = code.count("\n", 0, found.start()) + 1
                guaranteed = lines.get(number)
                if guaranteed is not None and module not in guaranteed:
                    problems.append(f"line {number}: {name} outside #if canImport({module})")
    return problems


ISOLATION_SCOPES = {"function_declaration", "class_declaration", "protocol_declaration",
                    "init_declaration", "property_declaration", "subscript_declaration"}


def main_actor_problems(root):
    """Each `UIApplication.shared` not inside a `@MainActor` declaration or closure (or inside a
    `nonisolated` one before reaching it)."""
    problems = []
    for node in walk(root):
        if node.type != "navigation_expression" or re.sub(r"\s", "", text(node)) != "UIApplication.shared":
            continue
        isolated = False
        scope = node.parent
        while scope is not None:
            if scope.type in ISOLATION_SCOPES:
                modifiers = " ".join(text(c) for c in scope.children if c.type == "modifiers")
                if "nonisolated" in modifiers:
                    break
                if "@MainActor" in modifiers:
                    isolated = True
                    break
            elif scope.type == "lambda_literal":
                if any(c.type == "attribute" and "MainActor" in text(c) for c in scope.children):
                    isolated = True
                    break
            scope = scope.parent
        if not isolated:
            problems.append(f"line {line(node)}: UIApplication.shared outside a @MainActor function, type or closure")
    return problems


def background_task_problems(root):
    """Each call of `beginBackgroundTask` without an expiration handler (a closure argument)."""
    problems = []
    for node in walk(root):
        if node.type != "call_expression" or not node.children:
            continue
        callee = node.children[0]
        if callee.type == "navigation_expression":
            suffix = callee.child_by_field_name("suffix")
            name = text(suffix).lstrip(".") if suffix is not None else ""
        else:
            name = text(callee)
        if name != "beginBackgroundTask":
            continue
        suffixes = [c for c in node.children if c.type == "call_suffix"]
        # A trailing closure after the parentheses makes an outer call_expression.
        outer = node.parent
        if outer is not None and outer.type == "call_expression" and outer.children[0] == node:
            suffixes += [c for c in outer.children if c.type == "call_suffix"]
        handled = False
        for suffix in suffixes:
            for child in suffix.children:
                if child.type == "lambda_literal":
                    handled = True
                elif child.type == "value_arguments":
                    for argument in (a for a in child.children if a.type == "value_argument"):
                        label = [c for c in argument.children if c.type == "value_argument_label"]
                        value = argument.children[-1]
                        if label and text(label[0]) == "expirationHandler" and value.type != "nil_literal":
                            handled = True
        if not handled:
            problems.append(f"line {line(node)}: beginBackgroundTask without an expiration handler")
    return problems


# --- negative controls ------------------------------------------------------------------------

CONTROL_GENERATED = """
public protocol NativeSocketProtocol: AnyObject, Sendable {
    func nextEvents(max: UInt32) async -> [SocketEvent]
    func send(json: String) throws -> String
    func cancel(id: String) throws -> Bool
    func pending() -> [PendingMessage]
}
public enum SocketEvent: Equatable {
    case stateChanged(state: SocketState, cause: StateCause)
    case acked(id: String)
    case storeRecovered(problem: String, recoveredMessages: UInt32, movedTo: String?)
}
public enum SteadyError: Swift.Error {
    case InvalidUrl(message: String)
    case StoreInUse(message: String)
}
public enum OpenOutcome: Equatable {
    case `open`
    case failed(reason: String, retryable: Bool)
    case closed
}
"""
CONTROLS = {
    "a call with an old label": ("func f() async { _ = await native.nextEvents(count: 4) }", "calls"),
    "an async call without await": ("func f() { _ = native.nextEvents(max: 4) }", "calls"),
    "a throwing call without try": ("func f() { _ = native.send(json: j) }", "calls"),
    "a method the generated API lacks": ("func f() { native.sendAll() }", "calls"),
    "a pattern with an old arity": (
        "func f(e: SocketEvent) { if case let .stateChanged(state) = e { print(state) } }", "cases"),
    "a case with a wrong label": ("let e = SocketEvent.acked(identifier: \"x\")", "cases"),
    "cancel without its argument label": ("func f() throws { _ = try native.cancel(i) }", "calls"),
    "cancel without try": ("func f() { _ = native.cancel(id: i) }", "calls"),
    "pending with an argument": ("func f() { _ = native.pending(limit: 3) }", "calls"),
    "a new event case with the old arity": (
        "func f(e: SocketEvent) { if case let .storeRecovered(p, n) = e { print(p, n) } }", "cases"),
    "a switch that misses a new error case": (
        "func f(e: SteadyError) -> Int { switch e { case .InvalidUrl: return 1 } }", "switches"),
    "a switch that misses a new event case": (
        "func f(e: SocketEvent) { switch e { case .stateChanged: break\n case .acked: break } }",
        "switches"),
    "a switch that misses a case declared with backticks (`open`)": (
        "func f(o: OpenOutcome) { switch o { case .failed: break\n case .closed: break } }",
        "switches"),
}


LIFECYCLE_CONTROLS = {
    "UIApplication outside a canImport(UIKit) guard": (
        "import Foundation\n@MainActor func f() -> Bool { UIApplication.shared.isIdleTimerDisabled }\n",
        platform_problems),
    "a SwiftUI name in the #else branch of its guard": (
        "#if canImport(SwiftUI)\nimport SwiftUI\n#else\nlet phase: ScenePhase? = nil\n#endif\n",
        platform_problems),
    "a UIKit name under a negated guard": (
        "#if !canImport(UIKit)\nlet s = UIApplication.State.active\n#endif\n", platform_problems),
    "the layer's UIKit glue used unguarded": (
        "func f(s: SteadySocket) { _ = s.attachToApp() }\n", platform_problems),
    "an NWPathMonitor under `canImport(Network) || os(Linux)`": (
        "#if canImport(Network) || os(Linux)\nlet m = NWPathMonitor()\n#endif\n", platform_problems),
    "UIApplication.shared in a nonisolated function": (
        "func f() -> Int { UIApplication.shared.applicationIconBadgeNumber }\n",
        lambda s: main_actor_problems(parse(s))),
    "UIApplication.shared in a nonisolated method of a @MainActor class": (
        "@MainActor final class A { nonisolated func f() { _ = UIApplication.shared } }\n",
        lambda s: main_actor_problems(parse(s))),
    "beginBackgroundTask without an expiration handler": (
        "@MainActor func f() { _ = UIApplication.shared.beginBackgroundTask(withName: \"x\") }\n",
        lambda s: background_task_problems(parse(s))),
    "beginBackgroundTask with a nil expiration handler": (
        "@MainActor func f() { _ = app.beginBackgroundTask(withName: \"x\", expirationHandler: nil) }\n",
        lambda s: background_task_problems(parse(s))),
}
LIFECYCLE_GOOD = """
#if canImport(UIKit) && !os(watchOS)
import UIKit
@MainActor func a() -> Int {
    let id = UIApplication.shared.beginBackgroundTask(withName: "x") { end() }
    return id.rawValue
}
@MainActor final class B {
    func b() { _ = UIApplication.shared.beginBackgroundTask(expirationHandler: { end() }) }
}
func c() { Task { @MainActor in _ = UIApplication.shared.applicationState } }
#if canImport(SwiftUI)
import SwiftUI
let phase: ScenePhase? = nil
#endif
#elseif canImport(Network)
let monitor = NWPathMonitor()
#endif
"""


def control_reported(snippet: str, kind: str, methods, cases) -> bool:
    if kind == "calls":
        problems, _ = call_problems(parse(snippet), methods)
    elif kind == "switches":
        problems = switch_problems(parse(snippet), enums_by_name(cases))
    else:
        problems = case_problems(code_only(snippet), cases)
    return bool(problems)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generated", required=True)
    parser.add_argument("--layer", nargs="+", required=True, help="hand-written layer files")
    parser.add_argument("--tests", nargs="+", required=True, help="hand-written test files")
    args = parser.parse_args()
    failed = 0

    def result(ok: bool, name: str, details=()) -> None:
        nonlocal failed
        print(("ok - " if ok else "not ok - ") + name)
        for detail in list(details)[:12]:
            print(f"    {detail}")
        if not ok:
            failed += 1

    generated = parse(open(args.generated, encoding="utf-8").read())
    methods = protocol_methods(generated, "NativeSocketProtocol")
    sources = {path: open(path, encoding="utf-8").read() for path in args.layer + args.tests}
    trees = {path: parse(source) for path, source in sources.items()}

    cases = enum_cases(generated)
    for tree in trees.values():
        for name, shapes in enum_cases(tree).items():
            cases.setdefault(name, []).extend(shapes)

    # Negative controls, against a small generated API of their own.
    control_root = parse(CONTROL_GENERATED)
    control_methods = protocol_methods(control_root, "NativeSocketProtocol")
    control_cases = enum_cases(control_root)
    for what, (snippet, kind) in CONTROLS.items():
        result(control_reported(snippet, kind, control_methods, control_cases),
               f"negative control: {what} is reported")
    good = ("func f() async throws { _ = await native.nextEvents(max: 4); _ = try native.send(json: j);"
            " _ = try native.cancel(id: j); _ = native.pending(); self?.acked(1, 2); x.acked() }")
    good_switches = (
        "func f(e: SteadyError, v: SocketEvent, o: OpenOutcome) -> Int {\n"
        "    switch v { case .stateChanged, .acked: break\n case let .storeRecovered(p, _, _): print(p) }\n"
        "    switch o { case .open, .closed: break\n case let .failed(reason, _): print(reason) }\n"
        "    switch e { case let .InvalidUrl(message: m), let .StoreInUse(message: m): return m.count }\n"
        "}\n"
        "func g(s: String) -> Int { switch s { case \"a\": return 1\n default: return 0 } }"
    )
    result(not call_problems(parse(good), control_methods)[0]
           and not case_problems(code_only("if case let .stateChanged(s, _) = e {}"), control_cases)
           and not case_problems(code_only(good), control_cases)
           and not case_problems(code_only(good_switches), control_cases)
           and not switch_problems(parse(good_switches), enums_by_name(control_cases)),
           "control: correct calls, patterns and exhaustive switches pass")

    result(bool(methods), f"generated NativeSocketProtocol: {len(methods)} methods",
           [] if methods else ["no protocol NativeSocketProtocol in the generated Swift"])

    # native calls, enum cases and switches, per file
    total_calls = 0
    enums = enums_by_name(cases)
    for path, tree in trees.items():
        problems, count = call_problems(tree, methods)
        total_calls += count
        problems += case_problems(code_only(sources[path]), cases)
        problems += switch_problems(tree, enums)
        result(not problems, f"api {path}: {count} native call(s), case shapes, exhaustive switches", problems)

    # surface
    problems = surface_problems([trees[p] for p in args.layer], sources)
    result(not problems,
           "surface: SteadySocket, SteadyWSError, the store types and the app adapter as specs 8"
           " and 10 and issue 11 name them; no replaced names left",
           problems)
    partial = "extension SteadySocket { func attachToApp() {} }\npublic enum AppPhase { case active }\n"
    found = surface_problems([parse(partial)], {"partial.swift": partial + "let c: SteadyConnection"})
    result(any("SteadySocket.options is not declared" in p for p in found)
           and any("AppPhase.inactive is not declared" in p for p in found)
           and "no type AppAttachment" in found
           and any("SteadyConnection" in p for p in found),
           "negative control: a missing type, missing members and a replaced name are reported")

    # the app adapter: platform guards, main actor, background tasks
    for what, (snippet, check) in LIFECYCLE_CONTROLS.items():
        result(bool(check(snippet)), f"negative control: {what} is reported")
    good_problems = (platform_problems(LIFECYCLE_GOOD) + main_actor_problems(parse(LIFECYCLE_GOOD))
                     + background_task_problems(parse(LIFECYCLE_GOOD)))
    result(not good_problems, "control: guarded, main-actor code with expiration handlers passes", good_problems)
    guarded = {}
    for path, source in sources.items():
        problems = [f"{path}: {p}" for p in platform_problems(source)]
        problems += [f"{path}: {p}" for p in main_actor_problems(trees[path])]
        problems += [f"{path}: {p}" for p in background_task_problems(trees[path])]
        guarded[path] = problems
    problems = [p for found in guarded.values() for p in found]
    uses = sum(len(re.findall(r"\bUIApplication\.shared\b", code_only(s))) for s in sources.values())
    result(not problems,
           f"platform: UIKit / SwiftUI / Network names inside #if canImport in {len(sources)} files;"
           f" {uses} UIApplication.shared on the main actor; beginBackgroundTask with a handler",
           problems)

    # scenarios
    problems, count = scenario_problems([trees[p] for p in args.tests])
    result(not problems, f"scenarios: testScenario1…{SCENARIOS}, one method each ({count} found)", problems)
    broken = parse("final class T: XCTestCase { func testScenario1A() {} func testScenario1B() {} }")
    result(bool(scenario_problems([broken])[0]), "negative control: a missing or doubled scenario is reported")

    # durable tests
    problems = durable_test_problems([trees[p] for p in args.tests], [sources[p] for p in args.tests])
    wanted = sum(len(m) for m in DURABLE_TESTS.values())
    result(not problems, f"durable tests: the {wanted} store tests and child role of spec 10, child selector", problems)
    half = ("final class DurableTests: XCTestCase { func testAStoreHasOneOwner() {} }\n"
            "final class DurableChild: XCTestCase { func testChildRole() {} }\n"
            'let selector = "SteadyWSTests.DurableChild/testChildRol"')
    result(len(durable_test_problems([parse(half)], [half])) == 4,
           "negative control: missing store tests and a selector naming no method are reported")

    # lifecycle tests
    problems = declared_test_problems([trees[p] for p in args.tests], LIFECYCLE_TESTS)
    wanted = sum(len(m) for m in LIFECYCLE_TESTS.values())
    result(not problems, f"lifecycle tests: the {wanted} tests of the app adapter", problems)
    one = "final class AppLifecycleTests: XCTestCase { func testInactiveIsTheForeground() {} }"
    result(len(declared_test_problems([parse(one)], LIFECYCLE_TESTS)) == wanted - 1,
           "negative control: missing lifecycle tests are reported")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
