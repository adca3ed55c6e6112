"""The blocking helpers in steadyws.sync."""

from __future__ import annotations

import threading
import time
from typing import List

import steadyws
from steadyws import ErrorKind, SocketEvent, SocketState, StateCause
from steadyws.sync import Socket

from conftest import FAST, Server, fails_with, free_port

OPENED = SocketEvent.STATE_CHANGED(state=SocketState.OPEN(), cause=StateCause.OPENED())


def test_sync_socket_round_trip(server: Server) -> None:
    with Socket(server.url, **FAST) as sock:
        sock.wait_open(timeout=5)
        message_id = sock.send_and_wait({"text": "from a script"}, timeout=5)
        other_id = sock.send({"text": "second"})
        sock.wait_acked(other_id, timeout=5)
        assert sock.stats.messages_acked == 2
        # Waiting took nothing from the stream: every event is there, in order.
        seen: List[SocketEvent] = []
        for event in sock.events():
            seen.append(event)
            if isinstance(event, SocketEvent.MESSAGE) and event.id == other_id:
                break
        assert seen[:2] == [
            SocketEvent.STATE_CHANGED(
                state=SocketState.CONNECTING(attempt=1), cause=StateCause.APP()
            ),
            OPENED,
        ]
        acks = [e.id for e in seen if isinstance(e, SocketEvent.ACKED)]
        messages = [e for e in seen if isinstance(e, SocketEvent.MESSAGE)]
        assert acks == [message_id, other_id]
        assert [m.id for m in messages] == [message_id, other_id]
        assert steadyws.decode(messages[0].data) == {"text": "from a script"}
        assert "steadyws.sync.Socket" in repr(sock)
    assert sock.closed and sock.state == SocketState.CLOSED()
    rest = list(sock.events())  # what was left, then the end
    assert rest and rest[-1] == SocketEvent.STATE_CHANGED(
        state=SocketState.CLOSED(), cause=StateCause.APP()
    )
    assert sock.next_event() is None
    sock.close()  # idempotent
    with fails_with(ErrorKind.CLOSED):
        sock.send_and_wait({"late": True}, timeout=1)
    with fails_with(ErrorKind.CLOSED):
        sock.wait_open(timeout=1)


def test_sync_events_iteration_and_errors(server: Server) -> None:
    sock = Socket(server.url, **FAST)
    sock.connect()
    seen = []
    for event in sock:
        seen.append(event)
        if event == OPENED:
            break
    assert seen[0] == SocketEvent.STATE_CHANGED(
        state=SocketState.CONNECTING(attempt=1), cause=StateCause.APP()
    )
    with fails_with(ErrorKind.TIMED_OUT):
        sock.next_event(timeout=0.2)
    assert sock.try_next_event() is None
    sock.close()

    port = free_port()
    with Socket(f"ws://127.0.0.1:{port}/ws", max_attempts=1, **FAST) as down:
        with fails_with(ErrorKind.CONNECTION_FAILED, f"127.0.0.1:{port}"):
            down.wait_open(timeout=5)
    with fails_with(ErrorKind.INVALID_URL):
        Socket("http://127.0.0.1/ws")


def test_sync_one_reader(server: Server) -> None:
    """While one thread waits in events(), another thread's read is refused; the reading thread
    gets every event."""
    sock = Socket(server.url, **FAST)
    got: List[SocketEvent] = []
    opened = threading.Event()

    def consume() -> None:
        for event in sock.events():
            got.append(event)
            if event == OPENED:
                opened.set()

    consumer = threading.Thread(target=consume, name="consumer")
    consumer.start()
    try:
        sock.connect()
        assert opened.wait(5)
        time.sleep(0.1)  # it took the way in and now waits for more
        with fails_with(ErrorKind.ALREADY_READING):
            sock.next_event(timeout=1)
        with fails_with(ErrorKind.ALREADY_READING):
            next(iter(sock.events()))
        message_id = sock.send_and_wait({"n": 1}, timeout=5)
    finally:
        sock.close()
        consumer.join(timeout=5)
    assert not consumer.is_alive()  # the iteration ended with the stream
    assert SocketEvent.ACKED(id=message_id) in got
    assert got[-1] == SocketEvent.STATE_CHANGED(state=SocketState.CLOSED(), cause=StateCause.APP())


def test_sync_run_helper(server: Server) -> None:
    async def open_and_close() -> str:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            return str(sock.state)

    assert steadyws.sync.run(open_and_close()) == "open"  # SocketState's Display
