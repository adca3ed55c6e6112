"""The asyncio layer over the generated ``NativeSocket``: ``async with``, ``async for``, and waits
in seconds. The rules (one reader, how much one take holds, which error is which) are the native
socket's."""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
from typing import Any, AsyncIterator, Deque, List, Optional, Tuple, Union

from ._errors import SteadyWsError, native_errors
from ._ffi.steadyws import (
    AppState,
    ErrorKind,
    MessageData,
    NativeSocket,
    NetworkStatus,
    PackedEvents,
    PendingMessage,
    ResumeCursor,
    SocketConfig,
    SocketEvent,
    SocketState,
    SocketStats,
    SocketStatus,
    WaitCancellation,
    packed_layout,
)

__all__ = ["Socket", "decode"]

#: A ``NetworkStatus`` value. Type checkers see the generated variants as classes of their own,
#: not as subclasses of ``NetworkStatus``; this union accepts them.
NetworkStatusLike = Union[NetworkStatus, NetworkStatus.AVAILABLE, NetworkStatus.UNAVAILABLE]


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


def _encode(data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise SteadyWsError(
            ErrorKind.NOT_JSON,
            f"cannot send {type(data).__name__} as JSON ({err}); send a value json.dumps "
            "accepts, or JSON text with send_json",
        ) from None


def _ms(seconds: Optional[float], name: str) -> Optional[int]:
    """Seconds (None or infinite: no limit) as the native milliseconds."""
    if seconds is None:
        return None
    if not isinstance(seconds, (int, float)) or math.isnan(seconds):
        raise SteadyWsError(
            ErrorKind.INVALID_OPTIONS, f"{name} must be a number of seconds or None, got {seconds!r}"
        )
    if math.isinf(seconds):
        return None
    return max(0, math.ceil(seconds * 1000))


class Socket:
    """A WebSocket that stays connected: it reconnects, resends what the server has not
    acknowledged, drops duplicates and resumes where it left off.

    ``Socket(url, **settings)`` takes the fields of :class:`SocketConfig` as keyword arguments
    (``backoff_initial_ms=100``, ``inbox_max_events=1000`` ...); a setting left out takes the
    native default. ``store_directory=`` (a ``str`` or ``os.PathLike``) keeps the outbox and the
    resume cursor in ``<store_directory>/<store_name>.steadyws``, so a killed process loses
    nothing it sent. Every error is a :class:`SteadyWsError` whose ``kind`` says which.

    ``async with Socket(url) as sock:`` connects on enter and closes on exit; ``async for event
    in sock`` reads the events (one reader at a time). ``timeout=`` and ``ttl=`` are seconds.
    Commands (``send``, ``connect``, ``set_app_state``, ``close`` ...) never wait for the network
    and may be called from any thread; the ``async`` methods run on the caller's event loop.
    """

    def __init__(self, url: str, **settings: Any) -> None:
        directory = settings.get("store_directory")
        if isinstance(directory, os.PathLike):
            settings["store_directory"] = os.fspath(directory)
        try:
            config = SocketConfig(url=url, **settings)
            with native_errors():
                native = NativeSocket(config)
        except (TypeError, ValueError) as err:  # an unknown setting, or a value of the wrong type
            raise SteadyWsError(
                ErrorKind.INVALID_OPTIONS,
                f"invalid socket setting: {err} (the settings are the fields of "
                "steadyws.SocketConfig, durations in milliseconds)",
            ) from None
        self._config = config
        self._native = native
        self._closed = False
        # The rest of the batch the last take brought (the native socket decides its size).
        self._taken: Deque[SocketEvent] = collections.deque()
        # The take of a reader that was cancelled, while it ends (see _take).
        self._abandoned: Optional["asyncio.Future[PackedEvents]"] = None

    # -- what it is ---------------------------------------------------------------------------

    @property
    def native(self) -> NativeSocket:
        """The generated ``NativeSocket`` underneath."""
        return self._native

    @property
    def config(self) -> SocketConfig:
        """The settings this socket was created with (absent ones are ``None``: the defaults)."""
        return self._config

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the ``async with`` block ended)."""
        return self._closed

    @property
    def state(self) -> SocketState:
        """The current state (``SocketState.OPEN()``, ``SocketState.RECONNECTING(...)`` ...)."""
        return self._native.state()

    @property
    def is_open(self) -> bool:
        """True while the state is ``Open``."""
        return isinstance(self.state, SocketState.OPEN)

    @property
    def stats(self) -> SocketStats:
        """Counters: attempts, reconnects, RTT, messages taken and sent, outbox, cursor."""
        return self._native.stats()

    def __repr__(self) -> str:
        return f"<steadyws.Socket {self._config.url} {self.state}>"

    # -- commands (never wait for the network; any thread) ------------------------------------

    def connect(self) -> None:
        """Start connecting, and keep reconnecting (nothing once closed)."""
        self._native.connect()

    def disconnect(self) -> None:
        """Close the connection gracefully and stop reconnecting; ``connect()`` may follow, and
        queued messages wait for it. :meth:`close` ends the socket instead."""
        self._native.disconnect()

    def send(self, data: Any, *, ttl: Optional[float] = None) -> str:
        """Queue ``data`` (any JSON-serialisable value) and return its message id at once.

        It is sent when the socket is open and resent after reconnects until the server
        acknowledges it (an ``ACKED`` event; :meth:`wait_acked` waits for it). With ``ttl``
        (seconds) it is given up if not acknowledged by then (a ``SEND_FAILED`` event, reason
        ``EXPIRED``). A ``str`` is sent as a JSON string; :meth:`send_json` sends text that
        already is JSON. With a store it returns once the message is on disk.
        """
        return self.send_json(_encode(data), ttl=ttl)

    def send_json(self, json_text: str, *, ttl: Optional[float] = None) -> str:
        """Queue an already encoded JSON document, as :meth:`send` does."""
        with native_errors():
            return self._native.send(json_text, _ms(ttl, "ttl"))

    def send_text(self, text: str) -> str:
        """Send a text frame unchanged (raw mode)."""
        with native_errors():
            return self._native.send_text(text)

    def send_binary(self, data: Union[bytes, bytearray, memoryview]) -> str:
        """Send a binary frame unchanged (raw mode)."""
        with native_errors():
            return self._native.send_binary(bytes(data))

    def pending(self) -> List[PendingMessage]:
        """The messages not acknowledged yet, oldest first: ``id``, ``json`` (the content as
        sent; a frame's text in raw mode) and ``created_at_ms``. With a store, a new socket lists
        at once what an earlier run left, and sends it first, with the same ids."""
        return self._native.pending()

    def cancel(self, message_id: str) -> bool:
        """Stop sending ``message_id``: True if it was pending (a ``SEND_FAILED`` event with
        reason ``CANCELLED`` follows, and waits on it fail with kind ``SEND_FAILED``), False if
        not. A copy written to the network before may still reach the server."""
        with native_errors():
            return self._native.cancel(message_id)

    def set_app_state(self, state: AppState) -> None:
        """Report ``AppState.FOREGROUND`` / ``BACKGROUND`` from the app's lifecycle."""
        self._native.set_app_state(state)

    def set_network(self, status: NetworkStatusLike) -> None:
        """Report what the platform says: ``NetworkStatus.AVAILABLE(interface=...)`` (``None``
        when it does not name one) or ``UNAVAILABLE()``."""
        self._native.set_network(status)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close for good (idempotent, any thread, never waits for the network).

        The state becomes ``Closed``; every pending wait fails at once with kind ``CLOSED``, and
        so do every later wait, ``send`` and ``cancel``; the event stream ends after the events
        still queued. With a store, unacknowledged messages stay in it for the next socket on
        the store.
        """
        if not self._closed:
            self._closed = True
            self._native.close()

    async def __aenter__(self) -> "Socket":
        self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- waiting on the side (takes no event) -------------------------------------------------

    async def wait_open(self, timeout: Optional[float] = None) -> None:
        """Wait until the socket is open (at once if it is). Fails with kind
        ``CONNECTION_FAILED`` (it gave up), ``CLOSED`` or ``TIMED_OUT``."""
        with native_errors():
            await self._native.wait_open(_ms(timeout, "timeout"))

    async def send_and_wait(
        self, data: Any, *, ttl: Optional[float] = None, timeout: Optional[float] = None
    ) -> str:
        """Queue ``data`` as :meth:`send` does and return its id once the server acknowledged
        it. Fails as ``send`` does, or with kind ``SEND_FAILED`` (``send_failure`` says why:
        ``EXPIRED`` once ``ttl`` ran out, ...), ``TIMED_OUT`` or ``CLOSED``, with the message's
        ``message_id``; after ``TIMED_OUT`` the message stays queued."""
        text = _encode(data)
        with native_errors():
            return await self._native.send_and_wait(text, _ms(ttl, "ttl"), _ms(timeout, "timeout"))

    async def wait_acked(self, message_id: str, timeout: Optional[float] = None) -> None:
        """Wait until the server acknowledged ``message_id`` (at once if it already was). Fails
        as :meth:`send_and_wait` does, or with kind ``UNKNOWN_MESSAGE`` for an id neither queued
        nor among the native socket's recently settled ones."""
        with native_errors():
            await self._native.wait_acked(message_id, _ms(timeout, "timeout"))

    async def watch(self) -> AsyncIterator[SocketStatus]:
        """The state and the outbox length now, then at each change: ``async for status in
        sock.watch()``. Takes nothing from the event stream, and any number may run; one that
        falls behind gets the latest. Ends after the ``Closed`` status, or with its task."""
        watch = self._native.watch()
        token = WaitCancellation()  # type: ignore[no-untyped-call]
        try:
            while True:
                status = await watch.changed(token)
                if status is None:
                    return
                yield status
        finally:
            # Ends the native wait even where the loop can no longer drop it (shut down mid-wait).
            token.cancel()

    # -- the event stream (one reader) --------------------------------------------------------

    def __aiter__(self) -> "Socket":
        """Every event, in order, until the socket is closed and its events are read.

        One reader at a time: while one waits for events, another read fails with kind
        ``ALREADY_READING``. A reader that stops (``break``, cancellation) loses nothing: the
        next one gets the events it did not take.
        """
        return self

    async def __anext__(self) -> SocketEvent:
        event = await self._next()
        if event is None:
            raise StopAsyncIteration
        return event

    async def next_event(self, timeout: Optional[float] = None) -> Optional[SocketEvent]:
        """The next event, waiting up to ``timeout`` seconds (then kind ``TIMED_OUT``); ``None``
        once the socket is closed and every event was taken. A timeout loses nothing."""
        if _ms(timeout, "timeout") is None:
            return await self._next()
        try:
            return await asyncio.wait_for(self._next(), timeout)
        except asyncio.TimeoutError:
            raise SteadyWsError(
                ErrorKind.TIMED_OUT, f"no event within {timeout:g} s; the next read gets what comes"
            ) from None

    def try_next_event(self) -> Optional[SocketEvent]:
        """The next event if one is ready now, else ``None``; never waits."""
        ending = self._abandoned
        if ending is not None and ending.done():
            self._keep(ending)
        if not self._taken and self._abandoned is None:
            with native_errors():
                self._taken.extend(_unpack(self._native.try_next_events_packed()))
        return self._taken.popleft() if self._taken else None

    async def _next(self) -> Optional[SocketEvent]:
        while not self._taken:
            ending = self._abandoned
            if ending is not None:
                # A cancelled reader's take ends first (its token is cancelled): what it still
                # brings comes before anything newer.
                if not ending.done():
                    await asyncio.wait({ending})
                self._keep(ending)
                continue
            batch = await self._take()
            if not batch:
                return None
            self._taken.extend(batch)
        return self._taken.popleft()

    async def _take(self) -> List[SocketEvent]:
        """One native take, which a cancelled caller ends through a token instead of dropping it:
        UniFFI's Python drops a result that is ready but not yet collected, so dropping a take
        whose batch Rust had just handed over would lose that batch. A batch the ended take
        still brings goes to the next read."""
        token = WaitCancellation()  # type: ignore[no-untyped-call]
        take = asyncio.ensure_future(self._native.next_events_packed(token))
        try:
            with native_errors():
                packed = await asyncio.shield(take)
        except asyncio.CancelledError:
            token.cancel()
            self._abandoned = take
            take.add_done_callback(self._keep)
            raise
        return _unpack(packed)

    def _keep(self, take: "asyncio.Future[PackedEvents]") -> None:
        """Queue what a cancelled reader's finished take brought after all (nothing if it ended
        with kind ``CANCELLED``), once: from its done callback or the next read, which comes
        first."""
        if self._abandoned is not take:
            return
        self._abandoned = None
        if not take.cancelled() and take.exception() is None:
            self._taken.extend(_unpack(take.result()))


def _entry_layout() -> Tuple[Tuple[int, ...], Tuple[Any, ...]]:
    """Where each field of a packed message entry is, and the ``MessageData`` variant of each
    content kind code: read from the native library (``packed_layout``), which states them."""
    layout = packed_layout()
    names = ("id", "seq", "ts", "kind", "content", "last_seq", "last_ts", "redelivered")
    variants = {"json": MessageData.JSON, "text": MessageData.TEXT}
    try:
        fields = tuple(layout.fields.index(name) for name in names)
        content = tuple(variants[kind] for kind in layout.content_kinds)
    except (KeyError, ValueError) as err:
        raise ImportError(
            f"steadyws: the native library packs messages as {layout}, which this Python layer "
            f"cannot read ({err!r}); install the package again, built from one source tree"
        ) from None
    return fields, content


_FIELDS, _CONTENT = _entry_layout()


def _unpack(packed: PackedEvents) -> List[SocketEvent]:
    """The typed events of a packed burst: the messages come from one JSON document decoded in
    one call (UniFFI would read each of their fields in Python), the other events are typed
    already and go back to their places."""
    # Any: type checkers do not see the generated variants as subclasses of their enum.
    message: Any = SocketEvent.MESSAGE
    at_id, at_seq, at_ts, at_kind, at_content, at_last_seq, at_last_ts, at_redelivered = _FIELDS
    content = _CONTENT
    events: List[SocketEvent] = [
        message(
            entry[at_id],
            entry[at_seq],
            entry[at_ts],
            content[entry[at_kind]](entry[at_content]),
            ResumeCursor(last_seq=entry[at_last_seq], last_ts=entry[at_last_ts]),
            entry[at_redelivered],
        )
        for entry in json.loads(packed.messages)
    ]
    # Indices are final positions, in increasing order: inserting in turn puts each in place.
    for placed in packed.others:
        events.insert(placed.index, placed.event)
    return events
