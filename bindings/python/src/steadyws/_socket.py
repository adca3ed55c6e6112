"""The asyncio layer over the generated ``SteadySocket``: ``async with``, ``async for``, waits."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Deque,
    List,
    Optional,
    Tuple,
    Type,
    Union,
)

from ._errors import (
    ConnectionLostError,
    SendFailedError,
    SocketClosedError,
    SocketFailedError,
)
from ._ffi.steadyws import (
    AppLifecycle,
    ConnectionProblem,
    MessageData,
    NetworkStatus,
    SocketEvent,
    SocketOptions,
    SocketState,
    SocketStats,
    SteadySocket,
)

__all__ = ["Socket", "EventMatch", "decode"]

#: What ``wait_for`` accepts: an event class such as ``SocketEvent.ACKED`` (or a tuple of them),
#: or a predicate called with each event.
EventMatch = Union[
    Type[Any],
    Tuple[Type[Any], ...],
    Callable[[SocketEvent], bool],
]

# States in which a disconnected socket has nothing left to do.
_AT_REST = (SocketState.IDLE, SocketState.CLOSED, SocketState.FAILED)

# How long aclose() lets a read in flight end by itself after shutdown() before cancelling it.
_SHUTDOWN_GRACE = 1.0
# Most events taken from Rust in one call: one call per burst instead of one per event.
_BATCH = 256


def decode(data: MessageData) -> Any:
    """The content of a message as a Python value.

    JSON (envelope mode) is parsed with :func:`json.loads`; a text frame (raw mode) is returned as
    ``str`` and a binary frame as ``bytes``.
    """
    if isinstance(data, MessageData.JSON):
        return json.loads(data.json)
    if isinstance(data, MessageData.TEXT):
        return data.text
    if isinstance(data, MessageData.BINARY):
        return data.bytes
    raise TypeError(f"expected a MessageData, got {type(data).__name__}")


def _matcher(match: EventMatch) -> Callable[[SocketEvent], bool]:
    if isinstance(match, type) or isinstance(match, tuple):
        classes = match
        return lambda event: isinstance(event, classes)
    if callable(match):
        return match
    raise TypeError(
        "wait_for() takes an event class such as SocketEvent.ACKED, a tuple of them, "
        f"or a predicate; got {match!r}"
    )


def _timeout_message(what: str, timeout: Optional[float]) -> str:
    return f"{what} within {timeout:g} s" if timeout is not None else what


class Socket:
    """A WebSocket that stays connected: it reconnects, resends what the server has not
    acknowledged, drops duplicates and resumes where it left off.

    ``Socket(url, **options)`` takes the fields of :class:`SocketOptions` as keyword arguments
    (``backoff_initial_ms=100``, ``heartbeat_interval_ms=500`` ...), or one ready
    ``SocketOptions``. An unusable URL or setting raises ``SteadyError.InvalidUrl`` /
    ``SteadyError.InvalidConfig`` here.

    Use it as an async context manager: ``async with Socket(url) as sock:`` connects on enter, and
    on exit disconnects (gracefully, waiting up to ``close_timeout`` seconds), shuts the native
    socket down and releases it. Read events with ``async for event in sock.events()`` (or
    ``async for event in sock``). One task reads events at a time; the send and state methods may
    be called from anywhere and never block.
    """

    def __init__(
        self,
        url_or_options: Union[str, SocketOptions],
        /,
        *,
        close_timeout: float = 1.0,
        **options: Any,
    ) -> None:
        if isinstance(url_or_options, SocketOptions):
            if options:
                raise TypeError(
                    "pass either a SocketOptions or a URL with keyword options, not both "
                    f"(got {', '.join(sorted(options))})"
                )
            opts = url_or_options
        else:
            opts = SocketOptions(url=url_or_options, **options)
        self._options = opts
        self._raw: Optional[SteadySocket] = SteadySocket(opts)
        self._close_timeout = close_timeout
        # The one read in flight. Callers await it through asyncio.shield, so a caller's timeout
        # or cancellation never drops an event that Rust already handed over: the next call
        # picks the same read up.
        self._pending: Optional[asyncio.Task[List[SocketEvent]]] = None
        # Events already taken from Rust in one batch, not yet handed out.
        self._batch: Deque[SocketEvent] = collections.deque()
        self._reading = False
        self._closed = False
        self._last_problem: Optional[ConnectionProblem] = None
        self._seen_state: SocketState = self._raw.state()  # as of the last event read

    # -- plumbing ---------------------------------------------------------------------------

    def _socket(self) -> SteadySocket:
        raw = self._raw
        if raw is None:
            raise SocketClosedError("this steadyws.Socket is closed; create a new one")
        return raw

    @property
    def raw(self) -> SteadySocket:
        """The generated ``SteadySocket`` (e.g. for ``set_listener``)."""
        return self._socket()

    @property
    def options(self) -> SocketOptions:
        """The options this socket was created with."""
        return self._options

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran (or the ``async with`` block ended)."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._raw is None else str(self._raw.state())
        return f"<steadyws.Socket {self._options.url} {state}>"

    # -- commands (non-blocking) --------------------------------------------------------------

    def connect(self) -> None:
        """Start connecting, and keep reconnecting. Does nothing if already connecting or open."""
        self._socket().connect()

    def disconnect(self) -> None:
        """Close gracefully and stop reconnecting; queued messages wait for the next connect."""
        self._socket().disconnect()

    def send(self, data: Any, *, ttl_ms: Optional[int] = None) -> str:
        """Queue ``data`` (any JSON-serialisable value) and return its message id.

        It is sent when the socket is open and resent after reconnects until the server
        acknowledges it (an ``Acked`` event with this id). ``ttl_ms`` gives up after that long (a
        ``SendFailed`` event with reason ``SendFailureKind.EXPIRED``). A ``str`` is sent as a JSON
        string; use :meth:`send_json` for text that already is a JSON document.
        """
        return self.send_json(
            json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")),
            ttl_ms=ttl_ms,
        )

    def send_json(self, json_text: str, *, ttl_ms: Optional[int] = None) -> str:
        """Queue an already encoded JSON document; ``SteadyError.NotJson`` if it is not JSON."""
        raw = self._socket()
        if ttl_ms is None:
            return raw.send(json_text)
        return raw.send_with_ttl(json_text, ttl_ms)

    def send_text(self, text: str) -> str:
        """Send a text frame unchanged (raw mode; ``SteadyError.WrongMode`` otherwise)."""
        return self._socket().send_text(text)

    def send_binary(self, data: Union[bytes, bytearray, memoryview]) -> str:
        """Send a binary frame unchanged (raw mode; ``SteadyError.WrongMode`` otherwise)."""
        return self._socket().send_binary(bytes(data))

    def set_app_state(self, state: AppLifecycle) -> None:
        """Report ``AppLifecycle.FOREGROUND`` / ``BACKGROUND`` from the app's lifecycle."""
        self._socket().set_app_state(state)

    def set_network(self, status: NetworkStatus) -> None:
        """Report reachability: ``NetworkStatus.AVAILABLE(interface=...)`` or ``UNAVAILABLE()``."""
        self._socket().set_network(status)

    @property
    def state(self) -> SocketState:
        """The current state (``SocketState.OPEN()``, ``SocketState.RECONNECTING(...)`` ...)."""
        return self._socket().state()

    @property
    def is_open(self) -> bool:
        """True while the state is ``Open``."""
        return isinstance(self.state, SocketState.OPEN)

    @property
    def stats(self) -> SocketStats:
        """Counters: attempts, reconnects, RTT, messages in and out, outbox size, cursor."""
        return self._socket().stats()

    @property
    def last_problem(self) -> Optional[ConnectionProblem]:
        """The most recent ``ConnectionProblem`` among the events read through this wrapper."""
        return self._last_problem

    # -- events -------------------------------------------------------------------------------

    def _observe(self, event: Optional[SocketEvent]) -> Optional[SocketEvent]:
        if isinstance(event, SocketEvent.CONNECTION_LOST):
            self._last_problem = event.problem
        elif isinstance(event, SocketEvent.STATE_CHANGED):
            self._seen_state = event.state
        return event

    async def next_event(self, timeout: Optional[float] = None) -> Optional[SocketEvent]:
        """The next event, waiting up to ``timeout`` seconds (``TimeoutError`` after that).

        Returns ``None`` once the socket is closed. A timeout or a cancellation loses nothing:
        the read stays in flight and the next call returns its event.
        """
        raw = self._raw
        if raw is None:
            return None
        if self._batch:
            return self._observe(self._batch.popleft())
        if self._reading:
            raise RuntimeError(
                "another task is already waiting for the next event of this socket; "
                "read events from one task and hand them on"
            )
        loop = asyncio.get_running_loop()
        pending = self._pending
        if pending is not None and pending.get_loop() is not loop:
            if not pending.done():
                raise RuntimeError("this socket's events are being read on another event loop")
            if pending.cancelled():  # its loop was shut down: start a fresh read
                pending = None
        if pending is None:
            # Fast path: events already queued cost one plain call for a whole batch, no task.
            ready = raw.try_next_events(_BATCH)
            if ready:
                return self._take(ready)
            pending = self._pending = loop.create_task(raw.next_events(_BATCH))
        self._reading = True
        try:
            if timeout is None:
                await asyncio.shield(pending)
            else:
                await asyncio.wait_for(asyncio.shield(pending), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(_timeout_message("no event", timeout)) from None
        except asyncio.CancelledError:
            if self._closed and pending.cancelled():
                return None  # aclose() ended the read
            raise
        finally:
            self._reading = False
        if self._pending is pending:
            self._pending = None
        return self._take(pending.result())

    def _take(self, batch: List[SocketEvent]) -> Optional[SocketEvent]:
        """Hand out the first event of a batch and keep the rest; an empty batch is the end."""
        if not batch:
            return None
        self._batch.extend(batch[1:])
        return self._observe(batch[0])

    def try_next_event(self) -> Optional[SocketEvent]:
        """The next event if one is ready now, else ``None``; never waits."""
        raw = self._raw
        if raw is None:
            return None
        if self._batch:
            return self._observe(self._batch.popleft())
        pending = self._pending
        if pending is not None:
            if not pending.done():
                return None
            self._pending = None
            if not pending.cancelled():
                return self._take(pending.result())
        ready = raw.try_next_events(_BATCH)
        return self._take(ready) if ready else None

    async def events(self) -> AsyncIterator[SocketEvent]:
        """Every event, in order, until the socket is closed: ``async for event in sock.events()``."""
        while True:
            event = await self.next_event()
            if event is None:
                return
            yield event

    def __aiter__(self) -> AsyncIterator[SocketEvent]:
        return self.events()

    async def wait_for(self, match: EventMatch, timeout: Optional[float] = None) -> SocketEvent:
        """Read events until one matches; return it.

        ``match`` is an event class (``SocketEvent.ACKED``), a tuple of classes, or a predicate.
        Like pexpect's ``expect``, the events read before the match are consumed (dropped).
        Raises ``TimeoutError`` after ``timeout`` seconds and ``SocketClosedError`` if the
        socket is closed meanwhile.
        """
        matches = _matcher(match)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = await self.next_event(remaining)
            except TimeoutError:
                raise TimeoutError(_timeout_message(f"no event matching {match!r}", timeout)) from None
            if event is None:
                raise SocketClosedError("the socket was closed while waiting for an event")
            if matches(event):
                return event

    async def wait_open(self, timeout: Optional[float] = None, *, fail_fast: bool = False) -> None:
        """Wait until the socket is open (call ``connect()`` first, or use ``async with``).

        Returns at once if the socket is open and the events read so far end in ``Open``;
        otherwise it reads events up to the next ``Open`` state change (so later waits do not
        trip over stale state events). Events read while waiting are consumed. Raises
        ``SocketFailedError`` if the socket gives up, ``TimeoutError`` after ``timeout`` seconds
        (its message quotes the last connection problem), and with ``fail_fast=True``
        ``ConnectionLostError`` at the first failed attempt (the socket keeps retrying).
        """
        if self.is_open and isinstance(self._seen_state, SocketState.OPEN):
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = await self.next_event(remaining)
            except TimeoutError:
                last = self._last_problem
                detail = f"; last problem: {last.message}" if last is not None else ""
                raise TimeoutError(
                    _timeout_message("the socket did not open", timeout) + detail
                ) from None
            if event is None:
                raise SocketClosedError("the socket was closed while waiting for it to open")
            if isinstance(event, SocketEvent.STATE_CHANGED):
                state = event.state
                if isinstance(state, SocketState.OPEN):
                    return
                if isinstance(state, SocketState.FAILED):
                    raise SocketFailedError(state.reason, state.retryable)
            elif isinstance(event, SocketEvent.CONNECTION_LOST) and fail_fast:
                raise ConnectionLostError(event.problem)

    async def wait_acked(self, message_id: str, timeout: Optional[float] = None) -> None:
        """Wait for the ``Acked`` event of ``message_id`` (the server stored it).

        Raises ``SendFailedError`` if it was rejected, expired or dropped instead, and
        ``TimeoutError`` after ``timeout`` seconds. Events read while waiting are consumed.
        """

        def settles(event: SocketEvent) -> bool:
            return (
                isinstance(event, (SocketEvent.ACKED, SocketEvent.SEND_FAILED))
                and event.id == message_id
            )

        event = await self.wait_for(settles, timeout)
        if isinstance(event, SocketEvent.SEND_FAILED):
            raise SendFailedError(event.id, event.reason, event.message)

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> "Socket":
        self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect gracefully (waiting up to ``close_timeout`` s), shut the socket down and
        release it.

        Idempotent. A task iterating ``events()`` meanwhile still gets the events up to the
        final state change (``Closed``), then the iteration ends; a task blocked in
        ``next_event`` gets ``None``. Events nobody has read by then are dropped.
        """
        raw = self._raw
        if raw is None:
            return
        self._closed = True
        try:
            raw.disconnect()
            deadline = time.monotonic() + self._close_timeout
            while time.monotonic() < deadline:
                state = raw.state()
                settled = isinstance(state, _AT_REST)
                # A reader still waiting on the way to the final state: let it catch up.
                caught_up = not self._reading or self._seen_state == state
                if settled and caught_up:
                    break
                await asyncio.sleep(0.01)
        finally:
            # Ends the event stream: the read in flight returns what is left, then None, and no
            # Rust future keeps the native socket alive any more.
            raw.shutdown()
            pending, self._pending = self._pending, None
            self._raw = None
            if pending is not None and not pending.done():
                if pending.get_loop() is asyncio.get_running_loop():
                    await asyncio.wait({pending}, timeout=_SHUTDOWN_GRACE)
                if not pending.done():
                    pending.cancel()  # frees the Rust future, which holds a handle to the socket
                    if pending.get_loop() is asyncio.get_running_loop():
                        await asyncio.wait({pending})
        # The last Python reference to the native socket goes here.
        del raw
