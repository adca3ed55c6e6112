"""The one exception of the Python layer, :class:`SteadyWsError`, and the one place a native
error becomes it."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator, Optional

from ._ffi.steadyws import ErrorKind, SendFailureKind

if TYPE_CHECKING:
    from ._error_types import NativeError  # how type checkers should see the generated class
else:
    from ._ffi.steadyws import NativeError

__all__ = ["SteadyWsError", "native_errors"]


class SteadyWsError(Exception):
    """Everything steadyws raises: ``kind`` says which situation (an :class:`ErrorKind`, the same
    in Rust, Kotlin and Swift), ``str(err)`` what is wrong and what to do.

    ``message_id`` is the message a wait was about (``send_and_wait``, ``wait_acked``), and
    ``send_failure`` why it will not be acknowledged when ``kind`` is ``ErrorKind.SEND_FAILED``
    (a :class:`SendFailureKind`: ``EXPIRED``, ``DROPPED``, ``CANCELLED`` or ``REJECTED``).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        message_id: Optional[str] = None,
        send_failure: Optional[SendFailureKind] = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message_id = message_id
        self.send_failure = send_failure

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (("message_id", self.message_id), ("send_failure", self.send_failure))
            if value is not None
        )
        return f"SteadyWsError({self.kind}, {str(self)!r}{extra})"


@contextlib.contextmanager
def native_errors() -> Iterator[None]:
    """Re-raise a native error as the :class:`SteadyWsError` with the same kind and fields."""
    try:
        yield
    except NativeError.Failure as err:
        # `from None`: the native error says the same again, in UniFFI's field dump.
        raise SteadyWsError(err.kind, err.detail, err.message_id, err.send_failure) from None
