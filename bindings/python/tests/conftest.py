"""Fixtures: the reference server as a child process (path from $STEADYWS_SERVER)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import (
    Any,
    BinaryIO,
    Callable,
    Coroutine,
    Dict,
    Iterator,
    List,
    Optional,
    TypeVar,
)

import pytest

import steadyws
from steadyws import ErrorKind, SocketEvent, SocketState

REPO = Path(__file__).resolve().parents[3]
DEFAULT_SERVER = REPO / "target" / "debug" / "steadyws-server"

# Short timings so reconnects and failures happen within a second or two.
FAST: dict[str, Any] = dict(
    backoff_initial_ms=100,
    backoff_max_ms=1000,
    heartbeat_interval_ms=500,
    heartbeat_timeout_ms=500,
    probe_timeout_ms=500,
    connect_timeout_ms=2000,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run one test scenario on a fresh event loop, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def free_port() -> int:
    """A port nobody listens on right now (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One reference-server process; `start()` again after `kill()` reuses the same port."""

    def __init__(self, binary: Path, data_dir: Optional[Path] = None, *extra: str) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.extra = list(extra)
        self.port = 0
        self.proc: Optional[subprocess.Popen[str]] = None
        self.output: List[str] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def raw_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/raw"

    def start(self, timeout: float = 10.0) -> "Server":
        assert self.proc is None, "already running"
        deadline = time.monotonic() + timeout
        while True:
            line = self._spawn(deadline)
            if line is not None:
                break
            # The port may still be held for a moment after a kill: retry until the deadline.
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {''.join(self.output[-20:])}")
            time.sleep(0.1)
        match = re.search(r"ws://127\.0\.0\.1:(\d+)/ws", line)
        assert match, line
        self.port = int(match.group(1))
        return self

    def _spawn(self, deadline: float) -> Optional[str]:
        args = [str(self.binary), "--listen", f"127.0.0.1:{self.port}"]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        args += self.extra
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for text in proc.stdout:
                self.output.append(text)
                lines.put(text)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            try:
                text = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                text = None
            if text is None:  # exited (e.g. address in use) or too slow
                self._reap(proc)
                return None
            if text.startswith("listening on "):
                self.proc = proc
                return text

    @staticmethod
    def _reap(proc: "subprocess.Popen[str]") -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; only what SQLite committed survives."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope="session")
def server_binary() -> Path:
    path = Path(os.environ.get("STEADYWS_SERVER", DEFAULT_SERVER))
    if not path.is_file():
        pytest.fail(
            f"reference server not found at {path}: build it with "
            "`cargo build -p steadyws-server` or set STEADYWS_SERVER"
        )
    return path


@pytest.fixture
def server(server_binary: Path) -> Iterator[Server]:
    """A fresh in-memory reference server on a free port."""
    srv = Server(server_binary).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server(server_binary: Path) -> Iterator[Any]:
    """Factory for servers with options (data dir, extra flags); all are stopped at teardown."""
    started: List[Server] = []

    def make(data_dir: Optional[Path] = None, *extra: str) -> Server:
        srv = Server(server_binary, data_dir, *extra)
        started.append(srv)
        return srv.start()

    try:
        yield make
    finally:
        for srv in started:
            srv.stop()


@contextlib.contextmanager
def fails_with(
    kind: ErrorKind, match: Optional[str] = None
) -> Iterator["pytest.ExceptionInfo[steadyws.SteadyWsError]"]:
    """`pytest.raises(SteadyWsError, match=...)` that also requires the error's `kind`."""
    with pytest.raises(steadyws.SteadyWsError, match=match) as caught:
        yield caught
    assert caught.value.kind is kind, repr(caught.value)


# -- reading events in tests ------------------------------------------------------------------
# The layer has no consuming `wait_for` any more; tests that want "the next event like this"
# take events from the stream themselves, on purpose, with these helpers.


async def next_matching(
    sock: steadyws.Socket,
    matches: Callable[[SocketEvent], bool],
    timeout: float = 5.0,
    seen: Optional[List[SocketEvent]] = None,
) -> SocketEvent:
    """Take events until one matches (appending every event taken to `seen`); fail after
    `timeout` seconds or at the end of the stream."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching event within {timeout} s; saw {seen}")
        event = await sock.next_event(timeout=remaining)
        assert event is not None, f"the stream ended; saw {seen}"
        if seen is not None:
            seen.append(event)
        if matches(event):
            return event


async def next_state(sock: steadyws.Socket, timeout: float = 5.0) -> SocketEvent.STATE_CHANGED:
    """Take events up to the next state change and return it."""
    event = await next_matching(
        sock, lambda e: isinstance(e, SocketEvent.STATE_CHANGED), timeout
    )
    assert isinstance(event, SocketEvent.STATE_CHANGED)
    return event


def states(events: List[SocketEvent]) -> List[SocketState]:
    """The states of the state changes among `events`, in order."""
    return [e.state for e in events if isinstance(e, SocketEvent.STATE_CHANGED)]


def state_names(events: List[SocketEvent]) -> List[str]:
    """`["CONNECTING", "OPEN", ...]` for the state changes among `events`."""
    return [type(state).__name__.split(".")[-1] for state in states(events)]


async def publish(url: str, count: int, pad: int = 0, first: int = 0) -> List[str]:
    """Store `count` messages `{"n": first + i, "pad": ...}` in the server's stream from a socket
    of its own, and return their ids once all are acknowledged (the publisher drains its own copy
    of the stream meanwhile)."""
    async with steadyws.Socket(
        url, outbox_max_messages=max(count, 1), outbox_max_bytes=count * (pad + 200) + 1000, **FAST
    ) as publisher:
        await publisher.wait_open(10)
        ids = [publisher.send({"n": first + i, "pad": "x" * pad}) for i in range(count)]
        acked = 0
        async for event in publisher:
            if isinstance(event, SocketEvent.ACKED):
                acked += 1
                if acked == count:
                    break
        return ids


# -- reading the server's stream without steadyws ---------------------------------------------


def read_stream(srv: Server, timeout: float = 10.0) -> List[Dict[str, Any]]:
    """Every `msg` frame of the server's stream, seq 1 to the head, as parsed JSON.

    A plain WebSocket client (no steadyws: no dedup, no cursor of its own) connects with
    `last_seq=0`, so the server replays its whole history; the `hello` frame says where the head
    is. What this returns is exactly what the server stored, duplicates included."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /ws?last_seq=0 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{srv.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as conn:
        conn.sendall(request.encode())
        reader = conn.makefile("rb")
        status = reader.readline()
        assert b" 101 " in status, status
        while reader.readline() not in (b"\r\n", b""):
            pass  # the rest of the upgrade response
        head: Optional[int] = None
        messages: List[Dict[str, Any]] = []
        while head is None or len(messages) < head:
            opcode, payload = _read_frame(reader)
            if opcode != 0x1:
                assert opcode in (0x9, 0xA), f"unexpected frame, opcode {opcode}: {payload!r}"
                continue  # a ping or pong: the read is over long before an idle timeout
            frame = json.loads(payload)
            if frame["type"] == "hello":
                head = int(frame["seq"])
            elif frame["type"] == "msg":
                messages.append(frame)
        return messages


def _read_frame(reader: BinaryIO) -> tuple[int, bytes]:
    """(opcode, payload) of one unfragmented, unmasked frame (server frames are never masked)."""

    def exactly(count: int) -> bytes:
        data = reader.read(count)
        assert data is not None and len(data) == count, "the server closed the connection"
        return data

    first, second = exactly(2)
    assert first & 0x80, "fragmented frame"
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", exactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", exactly(8))[0]
    return first & 0x0F, exactly(length)
