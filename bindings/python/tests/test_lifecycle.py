"""Lifecycle hints: background with DisconnectAfterGrace suspends; foreground reconnects."""

from __future__ import annotations

import time
from typing import List

import steadyws
from steadyws import AppLifecycle, BackgroundMode, SocketEvent, SocketState

from conftest import FAST, Server, run


def test_background_suspends_and_foreground_reopens(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(
            server.url,
            background=BackgroundMode.DISCONNECT_AFTER_GRACE,
            background_grace_ms=200,
            **FAST,
        ) as sock:
            await sock.wait_open(timeout=5)
            started = time.monotonic()
            sock.set_app_state(AppLifecycle.BACKGROUND)
            suspended = await sock.wait_for(SocketEvent.STATE_CHANGED, timeout=5)
            assert suspended == SocketEvent.STATE_CHANGED(state=SocketState.SUSPENDED())
            assert time.monotonic() - started >= 0.15  # after the grace period, not before
            assert sock.state == SocketState.SUSPENDED()

            # Sent while suspended: queued, delivered once the app is back.
            message_id = sock.send({"text": "written in the background"})
            assert sock.stats.outbox_len == 1

            sock.set_app_state(AppLifecycle.FOREGROUND)
            states: List[SocketState] = []
            while not states or states[-1] != SocketState.OPEN():
                event = await sock.wait_for(SocketEvent.STATE_CHANGED, timeout=5)
                assert isinstance(event, SocketEvent.STATE_CHANGED)
                states.append(event.state)
            assert states == [SocketState.CONNECTING(attempt=1), SocketState.OPEN()]
            await sock.wait_acked(message_id, timeout=5)
            assert sock.stats.outbox_len == 0

    run(scenario())


def test_background_keep_alive_stays_open(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:  # default: KeepAlive
            await sock.wait_open(timeout=5)
            sock.set_app_state(AppLifecycle.BACKGROUND)
            try:
                event = await sock.wait_for(SocketEvent.STATE_CHANGED, timeout=1.0)
            except TimeoutError:
                event = None
            assert event is None and sock.is_open
            sock.set_app_state(AppLifecycle.FOREGROUND)  # probes the open socket
            message_id = sock.send({"still": "here"})
            await sock.wait_acked(message_id, timeout=5)
            assert sock.is_open

    run(scenario())
