"""Exceptions raised by the idiomatic layer.

Call errors (a refused URL, a payload that is not JSON, a full outbox ...) come from the Rust
core as the generated :class:`steadyws.SteadyError` subclasses (``SteadyError.InvalidUrl`` and
so on). The classes here are for the waiting helpers (``wait_open``, ``wait_acked``), which turn
the events that the core reports into exceptions.
"""

from __future__ import annotations

from typing import Optional

from ._ffi.steadyws import ConnectionErrorKind, ConnectionProblem, SendFailureKind

__all__ = [
    "SocketError",
    "ConnectionLostError",
    "SocketFailedError",
    "SendFailedError",
    "SocketClosedError",
]


class SocketError(Exception):
    """Base class of the exceptions raised by steadyws's Python helpers."""


class ConnectionLostError(SocketError):
    """A connection attempt failed or an open connection dropped.

    Raised by ``wait_open(fail_fast=True)``. The socket itself keeps retrying (unless the problem
    was fatal); this only reports why it is not open yet. ``str(err)`` is the core's message,
    which names the cause and the fix (e.g. ``connection refused by 127.0.0.1:8080: ...``).
    """

    problem: ConnectionProblem

    def __init__(self, problem: ConnectionProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem

    @property
    def kind(self) -> ConnectionErrorKind:
        """``ConnectionErrorKind.REFUSED``, ``DNS``, ``TLS``, ``PROXY``, ``HANDSHAKE``,
        ``CONNECT_TIMEOUT``, ``HEARTBEAT_TIMEOUT``, ``CLOSED``, ``MESSAGE_TOO_LARGE`` or ``IO``."""
        return self.problem.kind

    @property
    def http_status(self) -> Optional[int]:
        """The HTTP status of a refused upgrade."""
        return self.problem.http_status

    @property
    def close_code(self) -> Optional[int]:
        """The WebSocket close code (1006 when the connection dropped without one)."""
        return self.problem.close_code


class SocketFailedError(SocketError):
    """The socket gave up (state ``Failed``); ``connect()`` starts over."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        #: True when retrying later may help (the attempt budget ran out), False when the server
        #: refused this client.
        self.retryable = retryable


class SendFailedError(SocketError):
    """A sent message will not be acknowledged.

    ``reason`` is ``SendFailureKind.EXPIRED``, ``DROPPED`` or ``REJECTED``; ``detail`` says more
    (the server's explanation for ``REJECTED``). ``str(err)`` reads like
    ``message 4c0f… expired: not acknowledged within its time-to-live``.
    """

    def __init__(self, id: str, reason: SendFailureKind, message: str) -> None:
        super().__init__(f"message {id} {reason.name.lower()}: {message}")
        self.id = id
        self.reason = reason
        self.detail = message


class SocketClosedError(SocketError, RuntimeError):
    """The :class:`steadyws.Socket` wrapper was closed; create a new one."""
