"""Blocking helpers for scripts: the async API, run on a private event loop.

::

    from steadyws.sync import Socket

    with Socket("ws://127.0.0.1:8080/ws") as sock:      # connects; closes on exit
        sock.wait_open(timeout=5)
        message_id = sock.send({"text": "hello"})
        sock.wait_acked(message_id, timeout=5)

The private loop runs in one daemon thread shared by every ``steadyws.sync.Socket`` of the
process, so these helpers also work where an event loop is already running (a notebook). Do not
call the blocking methods from ``async`` code: use :class:`steadyws.Socket` there.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from typing import Any, Awaitable, Iterator, Optional, TypeVar, Union

from ._ffi.steadyws import (
    AppLifecycle,
    ConnectionProblem,
    NetworkStatus,
    SocketEvent,
    SocketOptions,
    SocketState,
    SocketStats,
    SteadySocket,
)
from ._socket import EventMatch
from ._socket import Socket as AsyncSocket

__all__ = ["Socket", "run"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: Optional[asyncio.AbstractEventLoop] = None
_thread: Optional[threading.Thread] = None
_sockets: "weakref.WeakSet[Socket]" = weakref.WeakSet()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_serve, args=(loop,), name="steadyws-sync", daemon=True
            )
            thread.start()
            _loop, _thread = loop, thread
            atexit.register(_shutdown)
        return _loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def _shutdown() -> None:
    """At exit: close the sockets still open, so no Rust future calls into a dying interpreter."""
    loop, thread = _loop, _thread
    if loop is None or thread is None:
        return
    for sock in list(_sockets):
        try:
            sock.close()
        except Exception:  # exiting anyway
            pass
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=2)


def run(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` on the private loop and return its result (blocking the caller).

    Interrupting the wait (Ctrl-C) cancels it.
    """
    loop = _private_loop()
    if threading.current_thread() is _thread:
        raise RuntimeError("steadyws.sync.run() cannot be called from the steadyws loop thread")

    async def call() -> T:
        return await awaitable

    future = asyncio.run_coroutine_threadsafe(call(), loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


class Socket:
    """The blocking twin of :class:`steadyws.Socket`: same constructor and methods, with
    ``with`` instead of ``async with`` and plain iteration over ``events()``.
    """

    def __init__(
        self,
        url_or_options: Union[str, SocketOptions],
        /,
        *,
        close_timeout: float = 1.0,
        **options: Any,
    ) -> None:
        self._async = AsyncSocket(url_or_options, close_timeout=close_timeout, **options)
        _private_loop()
        _sockets.add(self)

    def __repr__(self) -> str:
        return repr(self._async).replace("steadyws.Socket", "steadyws.sync.Socket", 1)

    @property
    def aio(self) -> AsyncSocket:
        """The async socket underneath (use it only through :func:`run`)."""
        return self._async

    @property
    def raw(self) -> SteadySocket:
        """The generated ``SteadySocket``."""
        return self._async.raw

    @property
    def options(self) -> SocketOptions:
        """The options this socket was created with."""
        return self._async.options

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._async.closed

    # Non-blocking commands go straight to the native socket, which is thread-safe.

    def connect(self) -> None:
        """Start connecting, and keep reconnecting."""
        self._async.connect()

    def disconnect(self) -> None:
        """Close gracefully and stop reconnecting; queued messages wait for the next connect."""
        self._async.disconnect()

    def send(self, data: Any, *, ttl_ms: Optional[int] = None) -> str:
        """Queue a JSON-serialisable value; returns its message id."""
        return self._async.send(data, ttl_ms=ttl_ms)

    def send_json(self, json_text: str, *, ttl_ms: Optional[int] = None) -> str:
        """Queue an already encoded JSON document; returns its message id."""
        return self._async.send_json(json_text, ttl_ms=ttl_ms)

    def send_text(self, text: str) -> str:
        """Send a text frame unchanged (raw mode)."""
        return self._async.send_text(text)

    def send_binary(self, data: Union[bytes, bytearray, memoryview]) -> str:
        """Send a binary frame unchanged (raw mode)."""
        return self._async.send_binary(data)

    def set_app_state(self, state: AppLifecycle) -> None:
        """Report ``AppLifecycle.FOREGROUND`` / ``BACKGROUND``."""
        self._async.set_app_state(state)

    def set_network(self, status: NetworkStatus) -> None:
        """Report reachability."""
        self._async.set_network(status)

    @property
    def state(self) -> SocketState:
        """The current state."""
        return self._async.state

    @property
    def is_open(self) -> bool:
        """True while the state is ``Open``."""
        return self._async.is_open

    @property
    def stats(self) -> SocketStats:
        """Counters."""
        return self._async.stats

    @property
    def last_problem(self) -> Optional[ConnectionProblem]:
        """The most recent ``ConnectionProblem`` among the events read so far."""
        return self._async.last_problem

    # Waiting runs on the private loop.

    def next_event(self, timeout: Optional[float] = None) -> Optional[SocketEvent]:
        """The next event, waiting up to ``timeout`` s (``TimeoutError``); ``None`` once closed."""
        return run(self._async.next_event(timeout))

    def try_next_event(self) -> Optional[SocketEvent]:
        """The next event if one is ready now, else ``None``."""

        async def take() -> Optional[SocketEvent]:
            return self._async.try_next_event()

        return run(take())

    def events(self) -> Iterator[SocketEvent]:
        """Every event, in order, until the socket is closed."""
        while True:
            event = self.next_event()
            if event is None:
                return
            yield event

    def __iter__(self) -> Iterator[SocketEvent]:
        return self.events()

    def wait_for(self, match: EventMatch, timeout: Optional[float] = None) -> SocketEvent:
        """Read events until one matches (a class such as ``SocketEvent.ACKED``, a tuple of
        classes, or a predicate) and return it; earlier events are consumed."""
        return run(self._async.wait_for(match, timeout))

    def wait_open(self, timeout: Optional[float] = None, *, fail_fast: bool = False) -> None:
        """Wait until open; see :meth:`steadyws.Socket.wait_open`."""
        run(self._async.wait_open(timeout, fail_fast=fail_fast))

    def wait_acked(self, message_id: str, timeout: Optional[float] = None) -> None:
        """Wait until the server acknowledged ``message_id``; ``SendFailedError`` if it won't."""
        run(self._async.wait_acked(message_id, timeout))

    def close(self) -> None:
        """Disconnect gracefully, shut the socket down and release it (idempotent)."""
        if self._async.closed:
            return
        run(self._async.aclose())
        _sockets.discard(self)

    def __enter__(self) -> "Socket":
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
