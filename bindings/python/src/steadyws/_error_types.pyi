# Type-checker view of the generated exception class (stub only; never imported at runtime).
#
# UniFFI's Python generator defines `NativeError` twice (a plain base class, then a namespace
# class carrying the variant, marked `# type: ignore`), so type checkers only see the first and
# reject `except NativeError.Failure`. This declaration describes what the runtime has: the
# variant is a nested class that subclasses its error class.
# tests/test_packaging.py checks that the variants and fields here match the generated module.

from typing import Optional

from ._ffi.steadyws import ErrorKind, SendFailureKind

class NativeError(Exception):
    """The FFI's error: the layer raises it as `SteadyWsError`."""

    class Failure(NativeError):
        """A refused call or a wait that ended without success."""

        kind: ErrorKind
        detail: str
        message_id: Optional[str]
        send_failure: Optional[SendFailureKind]
        def __init__(
            self,
            kind: ErrorKind,
            detail: str,
            message_id: Optional[str],
            send_failure: Optional[SendFailureKind],
        ) -> None: ...
