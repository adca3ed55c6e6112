"""Lifecycle commands: background with DisconnectAfterGrace suspends, foreground reconnects;
the network going away and coming back. Each state change says it came from a lifecycle hint."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import List

import steadyws
from steadyws import (
    AppState,
    ErrorKind,
    BackgroundMode,
    NetworkStatus,
    SocketEvent,
    SocketState,
    StateCause,
)

from conftest import FAST, Server, fails_with, free_port, next_matching, next_state, run

OPENED = SocketEvent.STATE_CHANGED(state=SocketState.OPEN(), cause=StateCause.OPENED())


def test_background_suspends_and_foreground_reopens(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(
            server.url,
            background=BackgroundMode.DISCONNECT_AFTER_GRACE,
            background_grace_ms=200,
            **FAST,
        ) as sock:
            await next_matching(sock, lambda e: e == OPENED)
            started = time.monotonic()
            sock.set_app_state(AppState.BACKGROUND)
            suspended = await next_state(sock)
            assert suspended == SocketEvent.STATE_CHANGED(
                state=SocketState.SUSPENDED(), cause=StateCause.LIFECYCLE()
            )
            assert time.monotonic() - started >= 0.15  # after the grace period, not before
            assert sock.state == SocketState.SUSPENDED()

            # Sent while suspended: queued, delivered once the app is back.
            message_id = sock.send({"text": "written in the background"})
            assert sock.stats.outbox_len == 1

            sock.set_app_state(AppState.FOREGROUND)
            changes: List[SocketEvent] = []
            while not changes or changes[-1] != OPENED:
                changes.append(await next_state(sock))
            assert changes == [
                SocketEvent.STATE_CHANGED(
                    state=SocketState.CONNECTING(attempt=1), cause=StateCause.LIFECYCLE()
                ),
                OPENED,
            ]
            await sock.wait_acked(message_id, timeout=5)
            assert sock.stats.outbox_len == 0

    run(scenario())


def test_background_keep_alive_stays_open(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:  # default: KeepAlive
            await next_matching(sock, lambda e: e == OPENED)
            sock.set_app_state(AppState.BACKGROUND)
            with fails_with(ErrorKind.TIMED_OUT):
                await next_state(sock, timeout=1.0)
            assert sock.is_open
            sock.set_app_state(AppState.FOREGROUND)  # probes the open socket
            await sock.send_and_wait({"still": "here"}, timeout=5)
            assert sock.is_open

    run(scenario())


def test_network_lost_waits_and_network_back_reconnects(server_binary: Path) -> None:
    """No network: no attempts (state WaitingForNetwork), even once the server is up; the network
    back: an attempt at once. Both changes have the cause Lifecycle."""
    srv = Server(server_binary)
    srv.port = free_port()  # nothing listens there yet

    async def scenario() -> None:
        async with steadyws.Socket(srv.url, **FAST) as sock:
            seen: List[SocketEvent] = []
            await next_matching(
                sock, lambda e: isinstance(getattr(e, "cause", None), StateCause.ATTEMPT_FAILED)
            )
            sock.set_network(NetworkStatus.UNAVAILABLE())
            waiting = await next_matching(
                sock,
                lambda e: isinstance(e, SocketEvent.STATE_CHANGED)
                and e.state == SocketState.WAITING_FOR_NETWORK(),
                seen=seen,
            )
            assert isinstance(waiting, SocketEvent.STATE_CHANGED)
            assert waiting.cause == StateCause.LIFECYCLE()
            message_id = sock.send({"offline": True})  # queued while there is no network
            await asyncio.to_thread(srv.start)
            await asyncio.sleep(0.5)
            assert sock.state == SocketState.WAITING_FOR_NETWORK()  # no attempt without network
            sock.set_network(NetworkStatus.AVAILABLE(interface="wifi"))
            back = await next_state(sock)
            assert isinstance(back.state, SocketState.CONNECTING)
            assert back.cause == StateCause.LIFECYCLE()
            assert await next_state(sock) == OPENED
            await sock.wait_acked(message_id, timeout=5)

    try:
        run(scenario())
    finally:
        srv.stop()
