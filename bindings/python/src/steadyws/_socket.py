"""The asyncio layer over the generated ``NativeSocket``: ``async with``, ``async for``, waits."""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import math
import os
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Deque, List, Optional, Union, cast

from ._errors import (
    ConcurrentConsumerError,
    ConnectionFailedError,
    InvalidConfigError,
    NotJsonError,
    OpenTimeoutError,
    SendFailedError,
    SendTimeoutError,
    SocketClosedError,
    SteadyWsError,
    UnknownMessageError,
    WaitTimeoutError,
    refused,
)
from ._ffi.steadyws import (
    AppLifecycle,
    ConnectionProblem,
    MessageData,
    NativeSocket,
    NetworkStatus,
    OpenOutcome,
    PackedEvents,
    PendingMessage,
    ResumePosition,
    SendOutcome,
    SocketEvent,
    SocketOptions,
    SocketState,
    SocketStats,
    StateCause,
)

if TYPE_CHECKING:
    from ._error_types import SteadyError  # how type checkers should see the generated class
else:
    from ._ffi.steadyws import SteadyError

__all__ = ["Socket", "Pending", "decode"]

#: Most events taken from the native queue by one call of an ``async for`` (one FFI call per
#: burst instead of one per event). ``next_event()`` takes one at a time. With a store, every read
#: takes one event: taking the next event is what commits the previous ones, so the events in
#: hand at a crash (delivered again after it, flagged ``redelivered``) are at most one.
_BATCH = 256
#: ``async for`` hands control back to the event loop at least this often (in events), even
#: when every event is already queued and no read has to wait.
_YIELD_EVERY = 256
#: How long ``aclose()`` lets a read in flight end by itself after ``shutdown()`` before
#: cancelling it.
_SHUTDOWN_GRACE = 1.0

#: A ``NetworkStatus`` value. Type checkers see the generated variants as classes of their own,
#: not as subclasses of ``NetworkStatus``; this union accepts them.
NetworkStatusLike = Union[NetworkStatus, NetworkStatus.AVAILABLE, NetworkStatus.UNAVAILABLE]

#: Who consumes: the task of an ``async for`` / ``next_event()``, or the thread of a
#: ``steadyws.sync`` caller.
_Owner = Union["asyncio.Task[Any]", threading.Thread]


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


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


@dataclass(frozen=True)
class Pending:
    """A message sent but not acknowledged yet, as :meth:`Socket.pending` lists it.

    ``data`` is the payload as given to ``send`` (a ``MessageData.JSON``, like the ``data`` of a
    ``SEND_FAILED`` event): ``steadyws.decode(p.data)`` gives the value, ``p.data.json`` the text.
    In raw mode it is a ``MessageData.TEXT`` (a frame not written yet; the native list carries
    text only, so a binary frame shows as its bytes decoded as UTF-8, invalid ones replaced).
    ``created_at`` is when ``send`` queued it (an aware UTC ``datetime``, millisecond precision);
    it survives restarts with a store, so it says how long the message has been waiting.
    """

    id: str
    data: MessageData
    created_at: datetime.datetime

    @classmethod
    def _of(cls, native: PendingMessage, raw_mode: bool) -> "Pending":
        created = _EPOCH + datetime.timedelta(milliseconds=native.created_at_ms)
        text = native.json
        data = MessageData.TEXT(text=text) if raw_mode else MessageData.JSON(json=text)
        return cls(native.id, cast(MessageData, data), created)


def _encode(data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise NotJsonError(f"cannot send {type(data).__name__} as JSON: {err}") from err


def _ms(timeout: Optional[float]) -> Optional[int]:
    """Seconds (float, None = forever) as the native milliseconds."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or math.isnan(timeout):
        raise InvalidConfigError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if math.isinf(timeout):
        return None
    return max(0, math.ceil(timeout * 1000))


def _current_owner() -> _Owner:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        task = None
    return task if task is not None else threading.current_thread()


def _alive(owner: _Owner) -> bool:
    if isinstance(owner, threading.Thread):
        return owner.is_alive()
    return not owner.done()


def _problem_of(cause: StateCause) -> Optional[ConnectionProblem]:
    if isinstance(cause, (StateCause.ATTEMPT_FAILED, StateCause.CONNECTION_DROPPED)):
        return cause.problem
    return None


class Socket:
    """A WebSocket that stays connected: it reconnects, resends what the server has not
    acknowledged, drops duplicates and resumes where it left off.

    ``Socket(url, **options)`` takes the fields of :class:`SocketOptions` as keyword arguments
    (``backoff_initial_ms=100``, ``inbox_max_events=1000`` ...), or one ready ``SocketOptions``.
    An unusable URL or setting raises :class:`InvalidUrlError` / :class:`InvalidConfigError`.

    ``store_directory=`` (a ``str`` or ``os.PathLike``) makes the socket durable: its outbox,
    resume cursor, dedup window and client id live in ``<store_directory>/<store_name>.steadyws``
    (``store_name="default"``), so a process killed at any moment loses no sent message and takes
    up where it left off; ``store_sync_every_commit=True`` also survives power loss. One socket
    owns a store at a time (:class:`StoreInUseError`); a store needs envelope mode.

    ``async with Socket(url) as sock:`` connects on enter and closes on exit. Events are read by
    one consumer: ``async for event in sock`` (or ``sock.events()``, or ``next_event()``); they
    wait in a bounded native queue until that consumer takes them, and a full queue pauses
    reading from the network (backpressure) instead of dropping anything. The waits
    (``wait_open``, ``wait_acked``, ``send_and_wait``) watch the socket on the side and never take
    events from the stream. Commands (``send``, ``connect``, ``set_app_state``, ``close`` ...)
    never wait for the network and may be called from any thread (with a store, ``send``,
    ``cancel`` and ``close`` wait for their write to the store file); the ``async`` methods run on
    the caller's event loop.
    """

    def __init__(self, url_or_options: Union[str, SocketOptions], /, **options: Any) -> None:
        if isinstance(url_or_options, SocketOptions):
            if options:
                raise InvalidConfigError(
                    "pass either a SocketOptions or a URL with keyword options, not both "
                    f"(got {', '.join(sorted(options))})"
                )
            opts = url_or_options
        else:
            directory = options.get("store_directory")
            if directory is not None:
                if not isinstance(directory, (str, os.PathLike)):
                    raise InvalidConfigError(
                        "store_directory must be a str or a path (pathlib.Path), got "
                        f"{type(directory).__name__}"
                    )
                options["store_directory"] = os.fspath(directory)
            try:
                opts = SocketOptions(url=url_or_options, **options)
            except (TypeError, ValueError) as err:  # unknown option, wrong type, out of range
                raise InvalidConfigError(f"invalid socket option: {err}") from err
        try:
            native = NativeSocket(opts)
        except SteadyError as err:
            raise refused(err) from err
        except (TypeError, ValueError) as err:  # a field the generated code could not lower
            raise InvalidConfigError(f"invalid socket option: {err}") from err
        self._options = opts
        self._native: NativeSocket = native
        self._batch = _BATCH if opts.store_directory is None else 1
        self._closed = False
        # The one native read in flight. Callers await it through asyncio.shield, so a caller's
        # timeout or cancellation never drops events Rust already handed over: the next read
        # picks the same read up.
        self._pending: Optional["asyncio.Task[List[SocketEvent]]"] = None
        # The rest of the last batch the consumer asked for (at most _batch - 1 events).
        self._taken: Deque[SocketEvent] = collections.deque()
        self._reading = False  # a caller is awaiting the read in flight
        self._consumer: Optional["weakref.ReferenceType[_Events]"] = None
        self._last_problem: Optional[ConnectionProblem] = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def native(self) -> NativeSocket:
        """The generated ``NativeSocket`` underneath."""
        return self._native

    @property
    def options(self) -> SocketOptions:
        """The options this socket was created with."""
        return self._options

    @property
    def closed(self) -> bool:
        """True once :meth:`close` / :meth:`aclose` ran (or the ``async with`` block ended)."""
        return self._closed

    @property
    def state(self) -> SocketState:
        """The current state (``SocketState.OPEN()``, ``SocketState.RECONNECTING(...)`` ...);
        always current, also after close (``SocketState.CLOSED()``)."""
        return self._native.state()

    @property
    def is_open(self) -> bool:
        """True while the state is ``Open``."""
        return isinstance(self.state, SocketState.OPEN)

    @property
    def stats(self) -> SocketStats:
        """Counters: attempts, reconnects, RTT, messages taken and sent, outbox, cursor.

        ``messages_in`` counts the messages the consumer took from the stream, and
        ``last_seq`` / ``last_ts`` are the position after the last one taken.
        """
        return self._native.stats()

    @property
    def last_problem(self) -> Optional[ConnectionProblem]:
        """The ``ConnectionProblem`` behind the latest failed attempt or dropped connection, as
        carried by the state changes read from the stream; ``None`` while the socket is open and
        after the stream reported it open again."""
        if self._last_problem is not None and self.is_open:
            return None
        return self._last_problem

    def __repr__(self) -> str:
        return f"<steadyws.Socket {self._options.url} {self.state}>"

    # -- commands (never block, any thread) ---------------------------------------------------

    def _usable(self) -> NativeSocket:
        if self._closed:
            raise SocketClosedError("this steadyws.Socket is closed; create a new one")
        return self._native

    def connect(self) -> None:
        """Start connecting, and keep reconnecting. Does nothing if already connecting or open."""
        self._usable().connect()

    def disconnect(self) -> None:
        """Close the connection gracefully and stop reconnecting; the socket stays usable
        (``connect()`` again) and queued messages wait for the next connection. Use
        :meth:`close` to end the socket."""
        if not self._closed:
            self._native.disconnect()

    def send(self, data: Any, *, ttl_ms: Optional[int] = None) -> str:
        """Queue ``data`` (any JSON-serialisable value) and return its message id at once.

        It is sent when the socket is open and resent after reconnects until the server
        acknowledges it (an ``ACKED`` event with this id; :meth:`wait_acked` waits for it).
        ``ttl_ms`` gives up after that long (a ``SEND_FAILED`` event, reason ``EXPIRED``). A
        ``str`` is sent as a JSON string; use :meth:`send_json` for text that already is JSON.
        Raises :class:`NotJsonError`, :class:`MessageTooLargeError`, :class:`OutboxFullError` ...
        when nothing could be queued.

        With a store it returns once the message is on disk: from then on a crash does not lose
        it, and the next socket on the store sends it with this id. :class:`StoreFailedError`
        means it was not queued.
        """
        return self.send_json(_encode(data), ttl_ms=ttl_ms)

    def send_json(self, json_text: str, *, ttl_ms: Optional[int] = None) -> str:
        """Queue an already encoded JSON document; :class:`NotJsonError` if it is not JSON."""
        native = self._usable()
        try:
            if ttl_ms is None:
                return native.send(json_text)
            return native.send_with_ttl(json_text, ttl_ms)
        except SteadyError as err:
            raise refused(err) from err

    def send_text(self, text: str) -> str:
        """Send a text frame unchanged (raw mode; :class:`WrongModeError` otherwise)."""
        try:
            return self._usable().send_text(text)
        except SteadyError as err:
            raise refused(err) from err

    def send_binary(self, data: Union[bytes, bytearray, memoryview]) -> str:
        """Send a binary frame unchanged (raw mode; :class:`WrongModeError` otherwise)."""
        try:
            return self._usable().send_binary(bytes(data))
        except SteadyError as err:
            raise refused(err) from err

    def pending(self) -> List[Pending]:
        """The messages sent and not acknowledged yet, oldest first (also without a store).

        With a store, a new socket lists at once, before connecting, what the previous run left
        unacknowledged; it sends those first, in order, with their original ids.
        """
        raw_mode = self._options.raw_mode
        return [Pending._of(message, raw_mode) for message in self._usable().pending()]

    def cancel(self, message_id: str) -> bool:
        """Stop sending ``message_id``; True if it was pending, False if it is unknown or already
        settled (acknowledged, failed, cancelled).

        A cancelled message gets a ``SEND_FAILED`` event with reason ``CANCELLED``, and waits on
        it raise :class:`SendFailedError`. With a store its removal is on disk when ``cancel``
        returns. Cancelling stops resending, not what was already written: a message sent before
        may still have reached the server. Raises :class:`StoreFailedError` if the store could
        not record the removal (cancelled here, it would come back after a restart).
        """
        native = self._usable()
        try:
            return native.cancel(message_id)
        except SteadyError as err:
            raise refused(err) from err

    def set_app_state(self, state: AppLifecycle) -> None:
        """Report ``AppLifecycle.FOREGROUND`` / ``BACKGROUND`` from the app's lifecycle.

        With a store, the background closes the store file between writes (iOS ends suspended
        apps that hold file locks); the foreground keeps it open again.
        """
        if not self._closed:
            self._native.set_app_state(state)

    def set_network(self, status: NetworkStatusLike) -> None:
        """Report reachability: ``NetworkStatus.AVAILABLE(interface=...)`` or ``UNAVAILABLE()``."""
        if not self._closed:
            self._native.set_network(cast(NetworkStatus, status))

    def close(self) -> None:
        """Close now (idempotent, any thread; never waits for the network).

        The state becomes ``Closed`` (a ``STATE_CHANGED`` with cause ``StateCause.APP()``), every
        pending ``wait_open`` / ``wait_acked`` / ``send_and_wait`` raises
        :class:`SocketClosedError` at once, later ones too, and the event stream ends after the
        events still queued (``async for`` stops, ``next_event()`` returns ``None``). Reconnecting
        stops; unacknowledged messages are given up, except with a store: they stay in it, and
        the next socket on the store sends them. Closing commits the messages taken and releases
        the store. In async code prefer ``await aclose()``, which also lets the read in flight
        finish.
        """
        if self._closed:
            return
        self._closed = True
        self._native.shutdown()

    async def aclose(self) -> None:
        """:meth:`close`, then wait (up to 1 s) for the native read in flight to end, so no Rust
        future outlives the socket. Idempotent."""
        self.close()
        pending = self._pending
        if pending is None or pending.done():
            return
        if pending.get_loop() is not asyncio.get_running_loop():
            return  # shutdown() ends it on its own loop
        await asyncio.wait({pending}, timeout=_SHUTDOWN_GRACE)
        if not pending.done():
            pending.cancel()  # frees the Rust future
            await asyncio.wait({pending})

    async def __aenter__(self) -> "Socket":
        self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- waiting on the side (never takes events) ---------------------------------------------

    async def wait_open(self, timeout: Optional[float] = None) -> None:
        """Wait until the socket is open (call ``connect()`` first, or use ``async with``);
        returns at once if it is.

        Raises :class:`ConnectionFailedError` (``reason``, ``retryable``) if the socket gives up,
        :class:`SocketClosedError` if it is or gets closed, and :class:`OpenTimeoutError` after
        ``timeout`` seconds (the socket keeps trying). The event stream is left alone: the
        consumer still sees every state change.
        """
        native = self._native
        outcome = await native.wait_open(_ms(timeout))
        if isinstance(outcome, OpenOutcome.OPEN):
            return
        if isinstance(outcome, OpenOutcome.FAILED):
            raise ConnectionFailedError(outcome.reason, outcome.retryable)
        if isinstance(outcome, OpenOutcome.CLOSED):
            raise SocketClosedError("the socket was closed before it opened")
        if isinstance(outcome, OpenOutcome.TIMED_OUT):
            raise OpenTimeoutError(timeout, native.state(), self.last_problem)
        raise SteadyWsError(f"unexpected outcome of wait_open: {outcome}")

    async def send_and_wait(self, data: Any, timeout: Optional[float] = None) -> str:
        """Queue ``data`` like :meth:`send`, wait until the server acknowledged it, and return
        its id.

        Raises what ``send`` raises if nothing could be queued; :class:`SendFailedError` (``id``,
        ``reason``, ``detail``) if it will not be acknowledged; :class:`SendTimeoutError` (``id``)
        after ``timeout`` seconds, the message still queued; :class:`SocketClosedError` (``id``)
        if the socket is closed first. Its ``ACKED`` event still comes through the stream.
        """
        text = _encode(data)
        native = self._usable()
        ms = _ms(timeout)
        try:
            outcome = await native.send_and_wait(text, ms)
        except SteadyError as err:
            raise refused(err) from err
        return _settled(outcome, timeout)

    async def wait_acked(self, message_id: str, timeout: Optional[float] = None) -> None:
        """Wait until the server acknowledged ``message_id`` (an id from :meth:`send`); returns
        at once if it already was (the last 4096 outcomes are remembered).

        Raises :class:`SendFailedError`, :class:`SendTimeoutError` (the message stays queued),
        :class:`SocketClosedError`, or :class:`UnknownMessageError` for an id this socket does not
        know. The ``ACKED`` event still comes through the stream.
        """
        outcome = await self._native.wait_acked(message_id, _ms(timeout))
        _settled(outcome, timeout)

    # -- the event stream (one consumer) ------------------------------------------------------

    def events(self) -> AsyncIterator[SocketEvent]:
        """Every event, in order, until the socket is closed: ``async for e in sock.events()``.

        Events are taken from the native queue in batches of up to 256 (one at a time with a
        store) only when the loop asks for the next one, and the iteration yields to the event
        loop at least every 256 events. Asking for the next event commits the ones taken before
        (with a store, on disk): after a crash, only the event in hand is delivered again.
        One consumer at a time: while this iteration is running, reading from another task (or
        thread) raises :class:`ConcurrentConsumerError`. Leaving the loop (``break``) releases it;
        events not taken yet stay queued for the next consumer.
        """
        return _Events(self, None)

    def __aiter__(self) -> AsyncIterator[SocketEvent]:
        return self.events()

    async def next_event(self, timeout: Optional[float] = None) -> Optional[SocketEvent]:
        """The next event, waiting up to ``timeout`` seconds (:class:`WaitTimeoutError` after
        that); ``None`` once the socket is closed and every event was taken.

        A timeout or a cancellation loses nothing: the read stays in flight and the next call
        returns its event. Takes one event at a time (``stats.messages_in`` counts exactly what
        was taken).
        """
        return await self._next(_current_owner(), timeout, 1)

    def try_next_event(self) -> Optional[SocketEvent]:
        """The next event if one is ready now, else ``None``; never waits."""
        return self._try_next(_current_owner())

    # -- plumbing -----------------------------------------------------------------------------

    def _try_next(self, owner: _Owner) -> Optional[SocketEvent]:
        self._check_consumer(owner)
        if self._taken:
            return self._observe(self._taken.popleft())
        pending = self._pending
        if pending is not None:
            if not pending.done():
                return None
            self._pending = None
            if not pending.cancelled():
                return self._take(pending.result())
        return self._take(self._native.try_next_events(1))

    def _check_consumer(self, owner: _Owner) -> None:
        """Refuse a read while another owner's iteration is running."""
        current = self._consumer() if self._consumer is not None else None
        if current is None or current._owner is owner or current._finished:
            return
        if current._owner is not None and _alive(current._owner):
            raise ConcurrentConsumerError(
                f"this socket's events are already being consumed by {_describe(current._owner)}; "
                "a socket has one consumer at a time: read events in one task and hand them on, "
                "or end that iteration first"
            )

    def _claim(self, events: "_Events") -> None:
        assert events._owner is not None
        self._check_consumer(events._owner)
        self._consumer = weakref.ref(events)

    def _release(self, events: "_Events") -> None:
        if self._consumer is not None and self._consumer() is events:
            self._consumer = None

    def _observe(self, event: SocketEvent) -> SocketEvent:
        if isinstance(event, SocketEvent.STATE_CHANGED):
            if isinstance(event.state, SocketState.OPEN):
                self._last_problem = None
            else:
                problem = _problem_of(event.cause)
                if problem is not None:
                    self._last_problem = problem
        return event

    def _try_native(self, batch: int) -> List[SocketEvent]:
        if batch == 1:
            return self._native.try_next_events(1)
        return _unpack(self._native.try_next_events_packed(batch))

    async def _wait_native(self, batch: int) -> List[SocketEvent]:
        if batch == 1:
            return await self._native.next_events(1)
        return _unpack(await self._native.next_events_packed(batch))

    def _take(self, batch: List[SocketEvent]) -> Optional[SocketEvent]:
        """Hand out the first event of a batch and keep the rest; an empty batch is the end."""
        if not batch:
            return None
        self._taken.extend(batch[1:])
        return self._observe(batch[0])

    async def _next(
        self, owner: _Owner, timeout: Optional[float], batch: int
    ) -> Optional[SocketEvent]:
        self._check_consumer(owner)
        if self._taken:
            return self._observe(self._taken.popleft())
        if self._reading:
            raise ConcurrentConsumerError(
                "another task is already waiting for this socket's next event; a socket has one "
                "consumer at a time: read events in one task and hand them on"
            )
        loop = asyncio.get_running_loop()
        pending = self._pending
        if pending is not None and pending.get_loop() is not loop and not pending.done():
            raise ConcurrentConsumerError(
                "this socket's events are being read on another event loop"
            )
        if pending is not None and pending.cancelled():
            # Its loop was shut down (or aclose() had to stop it): nothing was handed over, so
            # start a fresh read (after close, it returns what is left, then the end).
            pending = self._pending = None
        if pending is None:
            # Fast path: events already queued cost one plain call, no task.
            ready = self._try_native(batch)
            if ready:
                return self._take(ready)
            pending = self._pending = loop.create_task(self._wait_native(batch))
        self._reading = True
        try:
            if timeout is None:
                await asyncio.shield(pending)
            else:
                await asyncio.wait_for(asyncio.shield(pending), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeoutError(f"no event within {timeout:g} s", timeout) from None
        except asyncio.CancelledError:
            if self._closed and pending.cancelled():
                return None  # aclose() had to cancel the read: the stream is over
            raise
        finally:
            self._reading = False
        if self._pending is pending:
            self._pending = None
        if pending.cancelled():
            return None
        return self._take(pending.result())


def _unpack(packed: PackedEvents) -> List[SocketEvent]:
    """The typed events of a packed burst: the messages come from one JSON document decoded in
    one call (UniFFI would read each of their fields in Python), the other events are typed
    already and go back to their places."""
    message, json_data, text_data = SocketEvent.MESSAGE, MessageData.JSON, MessageData.TEXT
    events: List[SocketEvent] = [
        message(
            id,
            seq,
            ts,
            json_data(content) if kind == 0 else text_data(content),
            ResumePosition(last_seq=last_seq, last_ts=last_ts),
            redelivered,
        )
        for id, seq, ts, kind, content, last_seq, last_ts, redelivered in json.loads(
            packed.messages
        )
    ]
    # Indices are final positions, in increasing order: inserting in turn puts each in place.
    for placed in packed.others:
        events.insert(placed.index, placed.event)
    return events


def _settled(outcome: SendOutcome, timeout: Optional[float]) -> str:
    """The id of an acknowledged message, or the exception for any other outcome."""
    if isinstance(outcome, SendOutcome.ACKED):
        return outcome.id
    if isinstance(outcome, SendOutcome.FAILED):
        raise SendFailedError(outcome.id, outcome.reason, outcome.message)
    if isinstance(outcome, SendOutcome.TIMED_OUT):
        raise SendTimeoutError(outcome.id, timeout)
    if isinstance(outcome, SendOutcome.CLOSED):
        raise SocketClosedError(
            f"the socket was closed before message {outcome.id} was acknowledged", outcome.id
        )
    if isinstance(outcome, SendOutcome.UNKNOWN):
        raise UnknownMessageError(outcome.id)
    raise SteadyWsError(f"unexpected send outcome: {outcome}")


def _describe(owner: _Owner) -> str:
    if isinstance(owner, threading.Thread):
        return f"thread {owner.name!r}"
    return f"task {owner.get_name()!r}"


class _Events:
    """``async for`` over a socket's events: pulls a native batch only when the loop asks for an
    event and none is left from the previous batch; holds the socket's one consumer slot while
    it runs."""

    def __init__(self, sock: Socket, owner: Optional[_Owner]) -> None:
        self._sock = sock
        self._owner = owner
        self._finished = False
        self._since_yield = 0

    def __aiter__(self) -> "_Events":
        return self

    async def __anext__(self) -> SocketEvent:
        if self._finished:
            raise StopAsyncIteration
        sock = self._sock
        # Fast path for the rest of a batch this iteration already took: it holds the consumer
        # slot, so no check can fail, and a burst costs a few operations per event.
        if (
            sock._taken
            and self._since_yield < _YIELD_EVERY
            and sock._consumer is not None
            and sock._consumer() is self
        ):
            self._since_yield += 1
            return sock._observe(sock._taken.popleft())
        if self._owner is None:
            self._owner = _current_owner()
        self._sock._claim(self)
        self._since_yield += 1
        if self._since_yield > _YIELD_EVERY:
            self._since_yield = 1
            await asyncio.sleep(0)  # let the loop run other tasks during a long burst
        event = await self._sock._next(self._owner, None, sock._batch)
        if event is None:
            self._finish()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """End the iteration and free the consumer slot."""
        self._finish()

    def _finish(self) -> None:
        self._finished = True
        self._sock._release(self)
