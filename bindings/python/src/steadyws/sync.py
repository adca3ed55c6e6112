"""Blocking helpers for scripts: the async API, run on a private event loop.

::

    from steadyws.sync import Socket

    with Socket("ws://127.0.0.1:8080/ws") as sock:      # connects; closes on exit
        sock.wait_open(timeout=5)
        message_id = sock.send_and_wait({"text": "hello"}, timeout=5)   # returns after the ack
        for event in sock.events():                      # the socket's one reader
            ...

The private loop runs in one daemon thread shared by every ``steadyws.sync.Socket`` of the
process, so these helpers also work where an event loop is already running (a notebook). Do not
call the blocking methods from ``async`` code: use :class:`steadyws.Socket` there. One reader at
a time: while one thread waits in ``events()``, a read from another thread fails with kind
``ALREADY_READING``.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from typing import Any, Awaitable, Iterator, List, Optional, TypeVar, Union

from ._ffi.steadyws import (
    AppState,
    NativeSocket,
    PendingMessage,
    SocketConfig,
    SocketEvent,
    SocketState,
    SocketStats,
)
from ._socket import NetworkStatusLike
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

    def __init__(self, url: str, **settings: Any) -> None:
        self._async = AsyncSocket(url, **settings)
        _private_loop()
        _sockets.add(self)

    def __repr__(self) -> str:
        return repr(self._async).replace("steadyws.Socket", "steadyws.sync.Socket", 1)

    @property
    def aio(self) -> AsyncSocket:
        """The async socket underneath (use it only through :func:`run`)."""
        return self._async

    @property
    def native(self) -> NativeSocket:
        """The generated ``NativeSocket``."""
        return self._async.native

    @property
    def config(self) -> SocketConfig:
        """The settings this socket was created with."""
        return self._async.config

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._async.closed

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

    # Commands never block on the network: they go straight to the async socket.

    def connect(self) -> None:
        """Start connecting, and keep reconnecting."""
        self._async.connect()

    def disconnect(self) -> None:
        """Close the connection gracefully and stop reconnecting; ``connect()`` may follow."""
        self._async.disconnect()

    def send(self, data: Any, *, ttl: Optional[float] = None) -> str:
        """Queue a JSON-serialisable value; returns its message id at once."""
        return self._async.send(data, ttl=ttl)

    def send_json(self, json_text: str, *, ttl: Optional[float] = None) -> str:
        """Queue an already encoded JSON document; returns its message id."""
        return self._async.send_json(json_text, ttl=ttl)

    def send_text(self, text: str) -> str:
        """Send a text frame unchanged (raw mode)."""
        return self._async.send_text(text)

    def send_binary(self, data: Union[bytes, bytearray, memoryview]) -> str:
        """Send a binary frame unchanged (raw mode)."""
        return self._async.send_binary(data)

    def pending(self) -> List[PendingMessage]:
        """The messages not acknowledged yet, oldest first."""
        return self._async.pending()

    def cancel(self, message_id: str) -> bool:
        """Stop sending ``message_id``; True if it was pending."""
        return self._async.cancel(message_id)

    def set_app_state(self, state: AppState) -> None:
        """Report ``AppState.FOREGROUND`` / ``BACKGROUND``."""
        self._async.set_app_state(state)

    def set_network(self, status: NetworkStatusLike) -> None:
        """Report reachability."""
        self._async.set_network(status)

    def close(self) -> None:
        """Close for good (see :meth:`steadyws.Socket.close`); idempotent."""
        self._async.close()
        _sockets.discard(self)

    def __enter__(self) -> "Socket":
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Waits run on the private loop; see steadyws.Socket for how each fails.

    def wait_open(self, timeout: Optional[float] = None) -> None:
        """Wait until open (takes no event)."""
        run(self._async.wait_open(timeout))

    def send_and_wait(
        self, data: Any, *, ttl: Optional[float] = None, timeout: Optional[float] = None
    ) -> str:
        """Queue ``data``, wait until the server acknowledged it, return its id."""
        return run(self._async.send_and_wait(data, ttl=ttl, timeout=timeout))

    def wait_acked(self, message_id: str, timeout: Optional[float] = None) -> None:
        """Wait until the server acknowledged ``message_id``."""
        run(self._async.wait_acked(message_id, timeout))

    def next_event(self, timeout: Optional[float] = None) -> Optional[SocketEvent]:
        """The next event, waiting up to ``timeout`` s (then kind ``TIMED_OUT``); ``None`` once
        the socket is closed and every event was taken."""
        return run(self._async.next_event(timeout))

    def try_next_event(self) -> Optional[SocketEvent]:
        """The next event if one is ready now, else ``None``."""

        async def take() -> Optional[SocketEvent]:
            return self._async.try_next_event()

        return run(take())

    def events(self) -> Iterator[SocketEvent]:
        """Every event, in order, until the socket is closed and its events are read."""
        while (event := self.next_event()) is not None:
            yield event

    def __iter__(self) -> Iterator[SocketEvent]:
        return self.events()
