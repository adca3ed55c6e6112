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
    ResumePosition,
    SocketEvent,
    SocketListener,
    SocketOptions,
    SocketState,
    StateCause,
)

from conftest import FAST, Server, next_matching, run, state_names, states

OPENED = SocketEvent.STATE_CHANGED(state=SocketState.OPEN(), cause=StateCause.OPENED())


def test_connect_send_ack_receive(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(timeout=5)
            assert sock.is_open
            message_id = sock.send({"text": "hello", "n": 1})
            acked = received = None
            async for event in sock:
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
            assert received.position == ResumePosition(last_seq=1, last_ts=received.ts)
            assert received.redelivered is False
            assert isinstance(received.data, MessageData.JSON)
            assert steadyws.decode(received.data) == {"text": "hello", "n": 1}
            stats = sock.stats
            assert stats.messages_acked == 1 and stats.messages_in == 1
            assert stats.outbox_len == 0 and stats.last_seq == 1
        assert sock.closed
        assert sock.state == SocketState.CLOSED()

    run(scenario())


def test_state_events_from_connect_to_disconnect(server: Server) -> None:
    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)
        assert sock.state == SocketState.IDLE()
        seen: List[SocketEvent] = []
        sock.connect()
        await next_matching(sock, lambda e: e == OPENED, seen=seen)
        assert seen == [
            SocketEvent.STATE_CHANGED(
                state=SocketState.CONNECTING(attempt=1), cause=StateCause.APP()
            ),
            OPENED,
        ]
        # disconnect(): graceful, and the socket stays usable.
        sock.disconnect()
        closing = await sock.next_event(timeout=5)
        closed = await sock.next_event(timeout=5)
        assert [closing, closed] == [
            SocketEvent.STATE_CHANGED(state=SocketState.CLOSING(), cause=StateCause.APP()),
            SocketEvent.STATE_CHANGED(state=SocketState.CLOSED(), cause=StateCause.APP()),
        ]
        assert sock.state == SocketState.CLOSED() and not sock.closed
        # connect() again after disconnect: a new connection, counted as a reconnect.
        sock.connect()
        await sock.wait_open(timeout=5)
        assert sock.stats.reconnects == 1
        await sock.aclose()
        assert sock.closed
        with pytest.raises(steadyws.SocketClosedError):
            sock.send({"late": True})
        with pytest.raises(steadyws.SocketClosedError):
            sock.connect()
        rest: List[SocketEvent] = []
        while (event := await sock.next_event(timeout=5)) is not None:
            rest.append(event)
        assert states(rest)[-1] == SocketState.CLOSED()
        assert await sock.next_event() is None  # the stream stays ended

    run(scenario())


def test_fan_out_between_two_clients(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as alice, steadyws.Socket(
            server.url, **FAST
        ) as bob:
            await alice.wait_open(5)
            await bob.wait_open(5)
            sent = [alice.send({"from": "alice", "n": n}) for n in range(5)]
            got: List[SocketEvent.MESSAGE] = []
            async for event in bob:
                if isinstance(event, SocketEvent.MESSAGE):
                    got.append(event)
                    if len(got) == 5:
                        break
            assert [e.id for e in got] == sent
            assert [e.seq for e in got] == [1, 2, 3, 4, 5]
            assert [e.position.last_seq for e in got] == [1, 2, 3, 4, 5]
            assert [steadyws.decode(e.data)["n"] for e in got] == list(range(5))

    run(scenario())


def test_raw_mode_echo(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.raw_url, raw_mode=True, **FAST) as sock:
            await sock.wait_open(5)
            sock.send_text("plain text")
            sock.send_binary(bytearray(b"\x00\x01\xff"))

            def is_message(event: SocketEvent) -> bool:
                return isinstance(event, SocketEvent.MESSAGE)

            first = await next_matching(sock, is_message)
            second = await next_matching(sock, is_message)
            assert isinstance(first, SocketEvent.MESSAGE)
            assert isinstance(second, SocketEvent.MESSAGE)
            assert first.data == MessageData.TEXT(text="plain text")
            assert steadyws.decode(second.data) == b"\x00\x01\xff"
            assert first.seq is None and first.id is None  # raw mode: no envelope
            assert first.position == ResumePosition(last_seq=None, last_ts=None)

    run(scenario())


def test_bursts_keep_every_event_typed_and_in_order(server: Server) -> None:
    """``async for`` takes bursts in packed form (messages in one JSON document, the rest typed):
    text with escapes, binary frames and state events come out as the same typed events, in
    order."""
    texts = ['quote " backslash \\ newline \n tab \t', "é ✓ 😀", "{\"looks\": \"like json\"}", ""]

    async def scenario() -> None:
        async with steadyws.Socket(server.raw_url, raw_mode=True, **FAST) as sock:
            await sock.wait_open(5)
            sock.send_text(texts[0])
            sock.send_binary(bytearray(b"\x00\x01\xff"))
            for text in texts[1:]:
                sock.send_text(text)
            await asyncio.sleep(0.3)  # let all echoes queue up behind the state events
            seen: List[Any] = []
            async for event in sock:
                if isinstance(event, SocketEvent.MESSAGE):
                    seen.append(event.data)
                    if len(seen) - 2 == len(texts) + 1:
                        break
                elif isinstance(event, SocketEvent.STATE_CHANGED):
                    seen.append(event.state)
            # The state events of connecting came first, typed, then every echo in order.
            assert seen[:2] == [SocketState.CONNECTING(attempt=1), SocketState.OPEN()]
            assert seen[2:] == [
                MessageData.TEXT(text=texts[0]),
                MessageData.BINARY(bytes=b"\x00\x01\xff"),
                *[MessageData.TEXT(text=t) for t in texts[1:]],
            ]

    run(scenario())


def test_unpack_puts_typed_events_back_in_place() -> None:
    from steadyws._ffi.steadyws import PackedEvents, PlacedEvent
    from steadyws._socket import _unpack

    acked = SocketEvent.ACKED(id="a")
    binary = SocketEvent.MESSAGE(
        id=None, seq=None, ts=None, data=MessageData.BINARY(bytes=b"\x01"),
        position=ResumePosition(last_seq=None, last_ts=None), redelivered=False,
    )
    packed = PackedEvents(
        messages='[["m1",1,10,0,"{\\"n\\":1}",1,10,false],["m2",2,20,1,"two",2,20,true]]',
        others=[PlacedEvent(index=0, event=acked), PlacedEvent(index=2, event=binary),
                PlacedEvent(index=4, event=acked)],
    )
    events = _unpack(packed)
    assert events == [
        acked,
        SocketEvent.MESSAGE(
            id="m1", seq=1, ts=10, data=MessageData.JSON(json='{"n":1}'),
            position=ResumePosition(last_seq=1, last_ts=10), redelivered=False,
        ),
        binary,
        SocketEvent.MESSAGE(
            id="m2", seq=2, ts=20, data=MessageData.TEXT(text="two"),
            position=ResumePosition(last_seq=2, last_ts=20), redelivered=True,
        ),
        acked,
    ]


def test_socket_options_record_and_defaults(server: Server) -> None:
    options = SocketOptions(url=server.url, backoff_initial_ms=100)
    assert options.backoff_max_ms == 30000 and options.headers == {} and options.heartbeat is None
    assert options.inbox_max_events == 10000 and options.inbox_max_bytes == 8 * 1024 * 1024
    assert options.outbox_max_messages == 100_000 and options.outbox_max_bytes == 16 * 1024 * 1024
    assert options.store_directory is None and options.store_name == "default"
    assert options.store_sync_every_commit is False

    async def scenario() -> None:
        async with steadyws.Socket(options) as sock:
            assert sock.options is options
            await sock.wait_open(5)

    run(scenario())
    with pytest.raises(steadyws.InvalidConfigError, match="not both"):
        steadyws.Socket(options, backoff_max_ms=5)


def test_timeouts_and_cancellation_lose_no_event(server: Server) -> None:
    """A read that times out or is cancelled stays in flight: its event comes with the next read."""

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            ids = [sock.send({"n": n}) for n in range(20)]
            acked: List[str] = []
            seqs: List[int] = []
            rounds = timeouts = 0
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
                except TimeoutError as err:
                    assert isinstance(err, steadyws.WaitTimeoutError)
                    timeouts += 1
                    continue
                if isinstance(event, SocketEvent.ACKED):
                    acked.append(event.id)
                elif isinstance(event, SocketEvent.MESSAGE):
                    assert event.seq is not None
                    seqs.append(event.seq)
            assert acked == ids
            assert seqs == list(range(1, 21))

    run(scenario())


def test_one_consumer_at_a_time(server: Server) -> None:
    """A second concurrent consumer gets a clear error; the first one loses nothing; once the
    first iteration ends, another task may consume."""

    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)
        sock.connect()
        seen: List[SocketEvent] = []
        opened = asyncio.Event()

        async def consume() -> None:
            async for event in sock:
                seen.append(event)
                if event == OPENED:
                    opened.set()

        consumer = asyncio.ensure_future(consume())
        await asyncio.wait_for(opened.wait(), 5)

        async def second_iteration() -> None:
            async for _ in sock:
                raise AssertionError("a second consumer got an event")

        with pytest.raises(steadyws.ConcurrentConsumerError, match="one consumer") as caught:
            await second_iteration()
        assert isinstance(caught.value, RuntimeError)
        assert isinstance(caught.value, steadyws.SteadyWsError)
        with pytest.raises(RuntimeError, match="one consumer"):
            await sock.next_event(timeout=1)
        with pytest.raises(RuntimeError, match="one consumer"):
            sock.try_next_event()

        # The first consumer still gets everything: an ack and the message it stands for.
        message_id = await sock.send_and_wait({"n": 1}, timeout=5)
        for _ in range(100):
            if any(isinstance(e, SocketEvent.MESSAGE) and e.id == message_id for e in seen):
                break
            await asyncio.sleep(0.02)
        assert SocketEvent.ACKED(id=message_id) in seen

        # The consumer ends (its task is done): another task may read now.
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        async def drain_elsewhere() -> None:
            while True:
                try:
                    seen.append(await sock.next_event(timeout=0.2))  # type: ignore[arg-type]
                except steadyws.WaitTimeoutError:
                    return

        await asyncio.ensure_future(drain_elsewhere())
        await sock.aclose()
        rest = [event async for event in sock]
        assert states(rest)[-1] == SocketState.CLOSED()
        assert states(seen)[:2] == [SocketState.CONNECTING(attempt=1), SocketState.OPEN()]

    run(scenario())


def test_breaking_out_releases_the_stream(server: Server) -> None:
    """`break` ends an iteration; the events after it wait for the next one, in order."""

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            ids = [sock.send({"n": n}) for n in range(6)]
            acked: List[str] = []
            received: List[str] = []
            while len(acked) < 6 or len(received) < 6:
                async for event in sock:  # a new iteration each round, same task
                    if isinstance(event, SocketEvent.ACKED):
                        acked.append(event.id)
                        break
                    if isinstance(event, SocketEvent.MESSAGE):
                        assert event.id is not None
                        received.append(event.id)
                        break
            assert acked == ids and received == ids

            async def other_task() -> None:
                with pytest.raises(steadyws.WaitTimeoutError):
                    await sock.next_event(timeout=0.1)  # the stream is free for another task

            await asyncio.ensure_future(other_task())

    run(scenario())


def test_iteration_yields_to_the_event_loop(server: Server) -> None:
    """With many events already queued, `async for` still lets other tasks run at least every
    256 events (a replay of 1 000 messages here)."""
    srv = server
    count = 1000

    async def scenario() -> None:
        async with steadyws.Socket(
            srv.url, outbox_max_messages=count, outbox_max_bytes=10_000_000, **FAST
        ) as publisher:
            await publisher.wait_open(5)
            ids = [publisher.send({"n": n}) for n in range(count)]
            await publisher.wait_acked(ids[-1], timeout=20)
        # A late reader replays the whole stream: everything is queued before it reads.
        async with steadyws.Socket(srv.url, resume_last_seq=0, **FAST) as reader:
            for _ in range(200):
                if reader.stats.messages_received >= count:
                    break
                await asyncio.sleep(0.02)
            assert reader.stats.messages_received == count
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            ticking = asyncio.ensure_future(ticker())
            await asyncio.sleep(0)
            ticks_at: List[int] = []
            async for event in reader:
                if isinstance(event, SocketEvent.MESSAGE):
                    ticks_at.append(ticks)
                    if len(ticks_at) == count:
                        break
            ticking.cancel()
            # Between any 257 consecutive messages taken, the other task ran.
            stalls = [n for n in range(count - 256) if ticks_at[n + 256] == ticks_at[n]]
            assert stalls == [], stalls[:5]

    run(scenario(), timeout=60)


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
            if OPENED in events:
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
            if event == OPENED:
                self.opened.set()
                # The declared error: lowered to Rust's ListenerError::Failed { reason }, logged.
                raise ListenerError.Failed(reason="a declared listener error")
            state = event.state if isinstance(event, SocketEvent.STATE_CHANGED) else None
            if state == SocketState.CLOSED():
                self.closed.set()
            if state == SocketState.CONNECTING(attempt=1):
                raise ValueError("a listener bug must not stop delivery")

    raw = steadyws.NativeSocket(SocketOptions(url=server.url, **FAST))
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
    states_set = {SocketState.OPEN(), SocketState.OPEN(), SocketState.CONNECTING(attempt=1)}
    assert states_set == {SocketState.CONNECTING(attempt=1), SocketState.OPEN()}
    assert {SocketState.IDLE(): "idle"}[SocketState.IDLE()] == "idle"
    # Events, causes and outcomes print their data.
    assert "cause=StateCause.OPENED()" in repr(OPENED)


def test_shutdown_ends_pending_native_reads(server: Server) -> None:
    async def scenario() -> None:
        # Idle, so no event will ever come: only shutdown() can end the read.
        idle = steadyws.NativeSocket(SocketOptions(url=server.url, **FAST))
        pending = asyncio.ensure_future(idle.next_events(16))
        await asyncio.sleep(0.2)
        assert not pending.done()
        idle.shutdown()
        rest = await asyncio.wait_for(pending, 5)
        # What is left (at most the change to Closed), then the end.
        assert all(isinstance(e, SocketEvent.STATE_CHANGED) for e in rest), rest
        while rest:
            rest = await asyncio.wait_for(idle.next_events(16), 5)
        assert await asyncio.wait_for(idle.next_event(), 5) is None  # the stream stays ended
        assert idle.try_next_event() is None and idle.try_next_events(4) == []
        assert idle.state() == SocketState.CLOSED()

        # Open, every event read, a read waiting: shutdown() closes at once, so the read gets
        # the final state change (cause: the app), and the next one the end.
        raw = steadyws.NativeSocket(SocketOptions(url=server.url, **FAST))
        raw.connect()
        while True:
            event = await asyncio.wait_for(raw.next_event(), 5)
            if event == OPENED:
                break
        pending = asyncio.ensure_future(raw.next_events(16))
        await asyncio.sleep(0.2)
        assert not pending.done()
        raw.shutdown()
        closed = SocketEvent.STATE_CHANGED(state=SocketState.CLOSED(), cause=StateCause.APP())
        assert await asyncio.wait_for(pending, 5) == [closed]
        assert await asyncio.wait_for(raw.next_events(16), 5) == []
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
        assert inflight.done() and not inflight.cancelled()  # ended by shutdown(), not cancelled
        first = await asyncio.wait_for(reader, 5)
        rest = [first] if first is not None else []
        while (event := await sock.next_event(timeout=5)) is not None:
            rest.append(event)
        assert all(isinstance(e, SocketEvent.STATE_CHANGED) for e in rest), rest

    run(scenario())
