"""Connect, send, ack, receive, state events and the asyncio layer, against the reference server."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List

import pytest

import steadyws
from steadyws import (
    ListenerError,
    MessageData,
    SocketEvent,
    SocketListener,
    SocketOptions,
    SocketState,
)

from conftest import FAST, Server, run


def state_names(events: List[SocketEvent]) -> List[str]:
    return [
        type(e.state).__name__.split(".")[-1]
        for e in events
        if isinstance(e, SocketEvent.STATE_CHANGED)
    ]


def test_connect_send_ack_receive(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(timeout=5)
            assert sock.is_open
            message_id = sock.send({"text": "hello", "n": 1})
            acked = received = None
            async for event in sock.events():
                if isinstance(event, SocketEvent.ACKED):
                    acked = event
                elif isinstance(event, SocketEvent.MESSAGE):
                    received = event
                if acked and received:
                    break
            assert acked is not None and acked.id == message_id
            # The reference server fans a stored message out to every client, sender included,
            # keeping the client's id and giving it the next stream position.
            assert received is not None and received.id == message_id
            assert received.seq == 1 and received.ts is not None
            assert isinstance(received.data, MessageData.JSON)
            assert steadyws.decode(received.data) == {"text": "hello", "n": 1}
            stats = sock.stats
            assert stats.messages_acked == 1 and stats.messages_in == 1
            assert stats.outbox_len == 0 and stats.last_seq == 1
        assert sock.closed

    run(scenario())


def test_state_events_from_connect_to_disconnect(server: Server) -> None:
    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)
        assert sock.state == SocketState.IDLE()
        opened = SocketEvent.STATE_CHANGED(state=SocketState.OPEN())
        seen: List[SocketEvent] = []
        sock.connect()
        while opened not in seen:
            event = await sock.next_event(timeout=5)
            assert event is not None
            seen.append(event)
        assert state_names(seen) == ["CONNECTING", "OPEN"]
        assert seen[0] == SocketEvent.STATE_CHANGED(state=SocketState.CONNECTING(attempt=1))
        sock.disconnect()
        closing = await sock.next_event(timeout=5)
        closed = await sock.next_event(timeout=5)
        assert [closing, closed] == [
            SocketEvent.STATE_CHANGED(state=SocketState.CLOSING()),
            SocketEvent.STATE_CHANGED(state=SocketState.CLOSED()),
        ]
        assert sock.state == SocketState.CLOSED()
        # connect() again after disconnect: a new connection, counted as a reconnect.
        sock.connect()
        await sock.wait_open(timeout=5)
        assert sock.stats.reconnects == 1
        await sock.aclose()
        assert sock.closed
        with pytest.raises(steadyws.SocketClosedError):
            sock.send({"late": True})
        assert await sock.next_event() is None

    run(scenario())


def test_fan_out_between_two_clients(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as alice, steadyws.Socket(
            server.url, **FAST
        ) as bob:
            await alice.wait_open(5)
            await bob.wait_open(5)
            sent = [alice.send({"from": "alice", "n": n}) for n in range(5)]
            got: List[SocketEvent] = []
            while len(got) < 5:
                event = await bob.wait_for(SocketEvent.MESSAGE, timeout=5)
                assert isinstance(event, SocketEvent.MESSAGE)
                got.append(event)
            assert [e.id for e in got] == sent
            assert [e.seq for e in got] == [1, 2, 3, 4, 5]
            assert [steadyws.decode(e.data)["n"] for e in got] == list(range(5))

    run(scenario())


def test_raw_mode_echo(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.raw_url, raw_mode=True, **FAST) as sock:
            await sock.wait_open(5)
            sock.send_text("plain text")
            sock.send_binary(bytearray(b"\x00\x01\xff"))
            first = await sock.wait_for(SocketEvent.MESSAGE, 5)
            second = await sock.wait_for(SocketEvent.MESSAGE, 5)
            assert isinstance(first, SocketEvent.MESSAGE)
            assert isinstance(second, SocketEvent.MESSAGE)
            assert first.data == MessageData.TEXT(text="plain text")
            assert steadyws.decode(second.data) == b"\x00\x01\xff"
            assert first.seq is None and first.id is None  # raw mode: no envelope

    run(scenario())


def test_socket_options_record_and_defaults(server: Server) -> None:
    options = SocketOptions(url=server.url, backoff_initial_ms=100)
    assert options.backoff_max_ms == 30000 and options.headers == {} and options.heartbeat is None

    async def scenario() -> None:
        async with steadyws.Socket(options) as sock:
            assert sock.options is options
            await sock.wait_open(5)

    run(scenario())
    with pytest.raises(TypeError):
        steadyws.Socket(options, backoff_max_ms=5)


def test_timeouts_and_cancellation_lose_no_event(server: Server) -> None:
    """A read that times out or is cancelled stays in flight: its event comes with the next read."""

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            ids = [sock.send({"n": n}) for n in range(20)]
            acked: List[str] = []
            seqs: List[int] = []
            rounds = 0
            while len(acked) < 20 or len(seqs) < 20:
                rounds += 1
                assert rounds < 20000
                try:
                    if rounds % 3 == 0:
                        reader = asyncio.ensure_future(sock.next_event())
                        await asyncio.sleep(0)
                        reader.cancel()
                        try:
                            event = await reader
                        except asyncio.CancelledError:
                            continue
                    else:
                        event = await sock.next_event(timeout=0.0005)
                except TimeoutError:
                    continue
                if isinstance(event, SocketEvent.ACKED):
                    acked.append(event.id)
                elif isinstance(event, SocketEvent.MESSAGE):
                    assert event.seq is not None
                    seqs.append(event.seq)
            assert acked == ids
            assert seqs == list(range(1, 21))

    run(scenario())


def test_one_reader_at_a_time_and_events_end_on_close(server: Server) -> None:
    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)
        sock.connect()
        seen: List[SocketEvent] = []

        async def consume() -> None:
            async for event in sock:
                seen.append(event)

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0.3)
        with pytest.raises(RuntimeError, match="another task"):
            await sock.next_event()
        await sock.aclose()
        await asyncio.wait_for(consumer, 5)  # the iteration ended by itself
        assert SocketEvent.STATE_CHANGED(state=SocketState.OPEN()) in seen
        assert SocketEvent.STATE_CHANGED(state=SocketState.CLOSED()) in seen

    run(scenario())


def test_try_next_event(server: Server) -> None:
    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)
        assert sock.try_next_event() is None
        sock.connect()
        events: List[Any] = []
        for _ in range(200):
            event = sock.try_next_event()
            if event is not None:
                events.append(event)
            if SocketEvent.STATE_CHANGED(state=SocketState.OPEN()) in events:
                break
            await asyncio.sleep(0.01)
        assert state_names(events) == ["CONNECTING", "OPEN"]
        await sock.aclose()

    run(scenario())


def test_foreign_listener_receives_events(server: Server) -> None:
    """The push-style alternative of the generated API: a SocketListener on a steadyws thread."""

    class Collect(SocketListener):
        def __init__(self) -> None:
            self.events: List[SocketEvent] = []
            self.opened = threading.Event()
            self.closed = threading.Event()

        def on_event(self, event: SocketEvent) -> None:
            self.events.append(event)
            if event == SocketEvent.STATE_CHANGED(state=SocketState.OPEN()):
                self.opened.set()
                # The declared error: lowered to Rust's ListenerError::Failed { reason }, logged.
                raise ListenerError.Failed(reason="a declared listener error")
            if event == SocketEvent.STATE_CHANGED(state=SocketState.CLOSED()):
                self.closed.set()
            raise_on = SocketEvent.STATE_CHANGED(state=SocketState.CONNECTING(attempt=1))
            if event == raise_on:
                raise ValueError("a listener bug must not stop delivery")

    raw = steadyws.SteadySocket(SocketOptions(url=server.url, **FAST))
    listener = Collect()
    raw.set_listener(listener)
    raw.connect()
    try:
        assert listener.opened.wait(5)
        assert state_names(listener.events) == ["CONNECTING", "OPEN"]
        raw.disconnect()  # delivery went on after both errors
        assert listener.closed.wait(5)
        assert state_names(listener.events) == ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]
    finally:
        raw.set_listener(None)
        raw.shutdown()


def test_socket_state_display_eq_hash() -> None:
    """SocketState exports Rust's Display, Eq and Hash: a sentence as str, usable in sets."""
    assert str(SocketState.OPEN()) == "open"
    assert str(SocketState.CONNECTING(attempt=2)) == "connecting (attempt 2)"
    assert str(SocketState.RECONNECTING(attempt=3, retry_in_ms=250)) == (
        "reconnecting (attempt 3 in 250 ms)"
    )
    assert str(SocketState.FAILED(reason="gave up", retryable=True)) == "gave up"
    # The repr names the variant and its fields (the str is the sentence).
    assert repr(SocketState.CONNECTING(attempt=2)) == "SocketState.CONNECTING(attempt=2)"
    assert repr(SocketState.OPEN()) == "SocketState.OPEN()"
    assert SocketState.CONNECTING(attempt=2) == SocketState.CONNECTING(attempt=2)
    assert SocketState.CONNECTING(attempt=2) != SocketState.CONNECTING(attempt=3)
    assert SocketState.OPEN() != SocketState.CLOSED()
    assert hash(SocketState.OPEN()) == hash(SocketState.OPEN())
    states = {SocketState.OPEN(), SocketState.OPEN(), SocketState.CONNECTING(attempt=1)}
    assert states == {SocketState.CONNECTING(attempt=1), SocketState.OPEN()}
    assert {SocketState.IDLE(): "idle"}[SocketState.IDLE()] == "idle"


def test_shutdown_ends_a_pending_next_event(server: Server) -> None:
    async def scenario() -> None:
        # Idle, so no event will ever come: only shutdown() can end the read.
        idle = steadyws.SteadySocket(SocketOptions(url=server.url, **FAST))
        pending = asyncio.ensure_future(idle.next_event())
        await asyncio.sleep(0.2)
        assert not pending.done()
        idle.shutdown()
        assert await asyncio.wait_for(pending, 5) is None
        assert await asyncio.wait_for(idle.next_event(), 5) is None  # the stream stays ended
        assert idle.try_next_event() is None

        # Open, every event read, a read waiting: shutdown() closes at once, so the read gets
        # the final state change, and the next one None.
        raw = steadyws.SteadySocket(SocketOptions(url=server.url, **FAST))
        raw.connect()
        while True:
            event = await asyncio.wait_for(raw.next_event(), 5)
            if event == SocketEvent.STATE_CHANGED(state=SocketState.OPEN()):
                break
        pending = asyncio.ensure_future(raw.next_event())
        await asyncio.sleep(0.2)
        assert not pending.done()
        raw.shutdown()
        closed = SocketEvent.STATE_CHANGED(state=SocketState.CLOSED())
        assert await asyncio.wait_for(pending, 5) == closed
        assert await asyncio.wait_for(raw.next_event(), 5) is None
        assert raw.state() == SocketState.CLOSED()

    run(scenario())


def test_aclose_ends_a_blocked_read_through_shutdown(server: Server) -> None:
    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)  # idle: no event will come
        reader = asyncio.ensure_future(sock.next_event())
        await asyncio.sleep(0.1)
        inflight = sock._pending  # the read handed to Rust
        assert inflight is not None and not inflight.done()
        await sock.aclose()
        assert await asyncio.wait_for(reader, 5) is None
        # The read in flight was ended by shutdown(), not cancelled.
        assert inflight.done() and not inflight.cancelled() and inflight.result() == []  # the end

    run(scenario())
