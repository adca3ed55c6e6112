"""The blocking helpers in steadyws.sync."""

from __future__ import annotations

import pytest

import steadyws
from steadyws import SocketEvent, SocketState
from steadyws.sync import Socket

from conftest import FAST, Server, free_port


def test_sync_socket_round_trip(server: Server) -> None:
    with Socket(server.url, **FAST) as sock:
        sock.wait_open(timeout=5)
        message_id = sock.send({"text": "from a script"})
        sock.wait_acked(message_id, timeout=5)
        message = sock.wait_for(lambda e: isinstance(e, SocketEvent.MESSAGE) and e.id == message_id, 5)
        assert isinstance(message, SocketEvent.MESSAGE)
        assert steadyws.decode(message.data) == {"text": "from a script"}
        assert sock.stats.messages_acked == 1
        assert "steadyws.sync.Socket" in repr(sock)
    assert sock.closed
    assert sock.next_event() is None
    sock.close()  # idempotent


def test_sync_events_iteration_and_errors(server: Server) -> None:
    sock = Socket(server.url, **FAST)
    sock.connect()
    seen = []
    for event in sock.events():
        seen.append(event)
        if event == SocketEvent.STATE_CHANGED(state=SocketState.OPEN()):
            break
    assert seen[0] == SocketEvent.STATE_CHANGED(state=SocketState.CONNECTING(attempt=1))
    with pytest.raises(TimeoutError):
        sock.next_event(timeout=0.2)
    assert sock.try_next_event() is None
    sock.close()

    port = free_port()
    with Socket(f"ws://127.0.0.1:{port}/ws", **FAST) as down:
        with pytest.raises(steadyws.ConnectionLostError, match=f"127.0.0.1:{port}"):
            down.wait_open(timeout=5, fail_fast=True)
    with pytest.raises(steadyws.SteadyError.InvalidUrl):
        Socket("http://127.0.0.1/ws")


def test_sync_run_helper(server: Server) -> None:
    async def open_and_close() -> str:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            return str(sock.state)

    assert steadyws.sync.run(open_and_close()) == "open"  # SocketState's Display
