"""FFI consistency checks for the Swift package, run by ../test.sh (no Swift compiler needed).

  symbols    every C function the generated Swift calls is declared in the generated header, and
             every function the header declares is exported by the library;
  checksums  the library answers the contract version and every API checksum that the generated
             Swift compares at start-up (`uniffiEnsure…Initialized`) with the expected value;
             a mismatch would make every call fail with `apiChecksumMismatch` at run time.

Usage: check_ffi.py --swift FILE --header FILE --library FILE
Prints `ok - NAME` or `not ok - NAME` per check, details indented. Exit 1 on any failure.
"""

import argparse
import ctypes
import re
import subprocess
import sys

PREFIX = r"(?:uniffi|ffi)_steadyws_ffi_\w+"


def exported(library: str) -> set:
    """Names of the functions the library exports (ELF; Mach-O names lose their leading _)."""
    darwin = sys.platform == "darwin"
    command = ["nm", "-gU", library] if darwin else ["nm", "-D", "--defined-only", library]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.split()}
    return {name[1:] for name in names if name.startswith("_")} if darwin else names


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--swift", required=True)
    parser.add_argument("--header", required=True)
    parser.add_argument("--library", required=True)
    args = parser.parse_args()
    swift = open(args.swift, encoding="utf-8").read()
    header = open(args.header, encoding="utf-8").read()
    failed = 0

    def result(ok: bool, name: str, details=()) -> None:
        nonlocal failed
        print(("ok - " if ok else "not ok - ") + name)
        for line in list(details)[:10]:
            print(f"    {line}")
        if not ok:
            failed += 1

    # symbols
    called = set(re.findall(rf"\b({PREFIX})\b", swift))
    declared = set(re.findall(rf"\b({PREFIX})\s*\(", header))
    library = exported(args.library)
    undeclared = sorted(called - declared)
    unexported = sorted(declared - library)
    result(
        bool(called) and not undeclared and not unexported,
        f"symbols: {len(called)} called by the Swift, {len(declared)} declared in the header, "
        f"all exported by {args.library.rsplit('/', 1)[-1]}",
        [f"called but not declared: {name}" for name in undeclared]
        + [f"declared but not exported: {name}" for name in unexported],
    )

    # checksums and contract version, as the generated initialisation compares them
    lib = ctypes.CDLL(args.library)
    problems = []
    contract = re.search(r"let bindings_contract_version = (\d+)", swift)
    contract_fn = re.search(r"let scaffolding_contract_version = (" + PREFIX + r")\(\)", swift)
    if not contract or not contract_fn:
        problems.append("no contract version comparison found in the Swift")
    else:
        function = getattr(lib, contract_fn.group(1))
        function.restype = ctypes.c_uint32
        function.argtypes = []
        if function() != int(contract.group(1)):
            problems.append(
                f"contract version: library {function()}, bindings {contract.group(1)} "
                "(uniffi-bindgen and the library come from different UniFFI versions)"
            )
    checks = re.findall(r"if \((" + PREFIX + r")\(\) != (\d+)\)", swift)
    for name, expected in checks:
        function = getattr(lib, name)
        function.restype = ctypes.c_uint16
        function.argtypes = []
        actual = function()
        if actual != int(expected):
            problems.append(f"{name}: library {actual}, bindings {expected}")
    result(
        bool(checks) and not problems,
        f"checksums: contract version and {len(checks)} API checksums match the library",
        problems,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
