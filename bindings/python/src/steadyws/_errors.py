"""The exceptions of the Python layer: one base class, :class:`SteadyWsError`, for all of them.

Three families:

* **refused calls**: the native core refused a URL, a setting or a payload (it raises the
  generated ``SteadyError.*``; the layer re-raises it as one of the classes below, with the
  native error as ``__cause__``). ``str(err)`` is the core's message, which says what to do;
* **outcomes of waits**: ``send_and_wait`` / ``wait_acked`` / ``wait_open`` get an outcome from the
  core and raise these when it is not the success they wait for;
* **misuse of the event stream**: a second concurrent consumer.

The durable store (``store_directory=``) adds three refused calls: :class:`StoreInUseError`,
:class:`StoreNewerFormatError` and :class:`StoreFailedError`.

Several classes also derive from the built-in exception a Python programmer would reach for
(``ValueError`` for bad input, ``TimeoutError`` for timeouts, ``RuntimeError`` for a closed socket
or a second consumer), so ``except TimeoutError`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Type

from ._ffi.steadyws import ConnectionProblem, SendFailureKind, SocketState

if TYPE_CHECKING:
    from ._error_types import SteadyError  # how type checkers should see the generated class
else:
    from ._ffi.steadyws import SteadyError

__all__ = [
    "SteadyWsError",
    "InvalidUrlError",
    "InvalidConfigError",
    "NotJsonError",
    "WrongModeError",
    "MessageTooLargeError",
    "OutboxFullError",
    "StoreInUseError",
    "StoreNewerFormatError",
    "StoreFailedError",
    "SendFailedError",
    "UnknownMessageError",
    "ConnectionFailedError",
    "SocketClosedError",
    "WaitTimeoutError",
    "SendTimeoutError",
    "OpenTimeoutError",
    "ConcurrentConsumerError",
]


class SteadyWsError(Exception):
    """Base class of every exception steadyws's Python layer raises."""


# -- refused calls ----------------------------------------------------------------------------


class InvalidUrlError(SteadyWsError, ValueError):
    """The URL is not a usable ``ws://`` or ``wss://`` URL (an ``http://`` URL says which ``ws://``
    URL to use)."""


class InvalidConfigError(SteadyWsError, ValueError):
    """A setting is out of range, unknown, or of the wrong type; the message names it."""


class NotJsonError(SteadyWsError, ValueError):
    """The payload is not JSON: ``send`` got a value ``json.dumps`` cannot encode (or NaN), or
    ``send_json`` got text that does not parse."""


class WrongModeError(SteadyWsError, ValueError):
    """The call needs the other mode: ``send_text`` / ``send_binary`` need ``raw_mode=True``,
    ``send`` / ``send_json`` need envelope mode."""


class MessageTooLargeError(SteadyWsError, ValueError):
    """The message alone is larger than the outbox accepts (``outbox_max_message_bytes``, 1 MiB)."""


class OutboxFullError(SteadyWsError):
    """The outbox is full (``outbox_max_messages`` / ``outbox_max_bytes``, reject-new policy).

    Nothing was queued; retry once acks have drained the outbox, or configure
    ``outbox_drop_oldest=True``.
    """


class StoreInUseError(SteadyWsError):
    """Another socket, in this process or another one, has this store open: a store has one
    owner at a time.

    Close the other socket first (``close()`` releases the store), or give this one its own
    ``store_name``.
    """


class StoreNewerFormatError(SteadyWsError):
    """The store file was written by a newer steadyws. It was left unchanged; open it with that
    version (or point this socket at another ``store_directory`` / ``store_name``)."""


class StoreFailedError(SteadyWsError, OSError):
    """The store could not be opened or written (I/O error, permission, disk full); the message
    says which file and why.

    From the constructor: no socket was created. From ``send``: the message was **not** queued
    and will not be resent (a copy may have gone out once already). From ``cancel``: the message
    is cancelled in this process, but the store still holds it, so it comes back after a restart.
    """


_REFUSED: Dict[Type[BaseException], Type[SteadyWsError]] = {
    SteadyError.InvalidUrl: InvalidUrlError,
    SteadyError.InvalidConfig: InvalidConfigError,
    SteadyError.NotJson: NotJsonError,
    SteadyError.WrongMode: WrongModeError,
    SteadyError.MessageTooLarge: MessageTooLargeError,
    SteadyError.OutboxFull: OutboxFullError,
    SteadyError.StoreInUse: StoreInUseError,
    SteadyError.StoreNewerFormat: StoreNewerFormatError,
    SteadyError.StoreFailed: StoreFailedError,
}


def refused(err: BaseException) -> SteadyWsError:
    """The layer's exception for a native ``SteadyError`` (raise it ``from err``)."""
    for native, ours in _REFUSED.items():
        if isinstance(err, native):
            return ours(str(err))
    return SteadyWsError(str(err))  # a variant added natively and not mapped yet


# -- outcomes of waits ------------------------------------------------------------------------


class SendFailedError(SteadyWsError):
    """A sent message will not be acknowledged.

    ``reason`` is ``SendFailureKind.EXPIRED`` (its ``ttl_ms`` ran out), ``DROPPED`` (evicted from
    a full outbox, drop-oldest policy), ``REJECTED`` (the server refused it) or ``CANCELLED``
    (the app called ``cancel(id)``); ``detail`` says more (the server's code and explanation for
    ``REJECTED``). ``retryable`` is True when sending the same data again may succeed (expired or
    dropped), False when the server refused it or the app cancelled it.
    ``str(err)`` reads like ``message 4c0f… expired: not acknowledged within its time-to-live``.
    """

    def __init__(self, id: str, reason: SendFailureKind, detail: str) -> None:
        super().__init__(f"message {id} {reason.name.lower()}: {detail}")
        self.id = id
        self.reason = reason
        self.detail = detail

    @property
    def retryable(self) -> bool:
        return self.reason in (SendFailureKind.EXPIRED, SendFailureKind.DROPPED)


class UnknownMessageError(SteadyWsError, LookupError):
    """``wait_acked`` got an id that is neither queued nor among the remembered outcomes (the
    last 4096): not an id ``send`` returned on this socket, or one settled long ago."""

    def __init__(self, id: str) -> None:
        super().__init__(
            f"message {id} is unknown to this socket: not queued, and no outcome is remembered "
            "for it (ids come from send() on the same socket; the last 4096 outcomes are kept)"
        )
        self.id = id


class ConnectionFailedError(SteadyWsError):
    """The socket gave up (state ``Failed``): ``wait_open`` cannot succeed until ``connect()``.

    ``reason`` says why and what to do; ``retryable`` is True when trying again later may help
    (the attempt budget ran out) and False when the server refused this client (401/403/404,
    close 1008 or 4400-4499).
    """

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class SocketClosedError(SteadyWsError, RuntimeError):
    """The socket was closed (``close()`` / ``aclose()`` / the end of ``async with``).

    Raised by calls made after closing, and by waits that were pending when it closed. ``id`` is
    the message a ``send_and_wait`` / ``wait_acked`` was waiting for (None otherwise).
    """

    def __init__(self, message: str, id: Optional[str] = None) -> None:
        super().__init__(message)
        self.id = id


class WaitTimeoutError(SteadyWsError, TimeoutError):
    """A wait ran out of time (``next_event(timeout=...)``; base of the timeouts below).

    Nothing is lost by a timeout: an event read in flight comes with the next read.
    """

    def __init__(self, message: str, timeout: Optional[float] = None) -> None:
        super().__init__(message)
        self.timeout = timeout


class SendTimeoutError(WaitTimeoutError):
    """``send_and_wait`` / ``wait_acked`` timed out. The message is **still queued** and still
    sent (and resent) until acknowledged; its ``ACKED`` (or ``SEND_FAILED``) event comes later,
    and ``wait_acked(err.id)`` can wait again."""

    def __init__(self, id: str, timeout: Optional[float]) -> None:
        within = f" within {timeout:g} s" if timeout is not None else ""
        super().__init__(
            f"message {id} was not acknowledged{within}; it stays queued and is still sent",
            timeout,
        )
        self.id = id


class OpenTimeoutError(WaitTimeoutError):
    """``wait_open`` timed out. The socket keeps trying: ``state`` is where it was at the timeout;
    ``last_problem`` the latest ``ConnectionProblem`` among the events read so far (None when no
    event with a problem has been read since the socket was last open)."""

    def __init__(
        self,
        timeout: Optional[float],
        state: SocketState,
        last_problem: Optional[ConnectionProblem],
    ) -> None:
        within = f" within {timeout:g} s" if timeout is not None else ""
        detail = f"; last problem: {last_problem.message}" if last_problem is not None else ""
        super().__init__(f"the socket did not open{within} (now {state}){detail}", timeout)
        self.state = state
        self.last_problem = last_problem


# -- misuse -----------------------------------------------------------------------------------


class ConcurrentConsumerError(SteadyWsError, RuntimeError):
    """A socket's event stream has one consumer at a time; another task (or thread) tried to read
    it while that consumer was iterating or reading. Read events in one task and hand them on
    (e.g. through an ``asyncio.Queue``)."""
