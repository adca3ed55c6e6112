"""Connect, send, ack, receive, state events and the asyncio layer, against the reference server."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any, List

import pytest

import steadyws
from steadyws import (
    ErrorKind,
    MessageData,
    ResumeCursor,
    SocketConfig,
    SocketEvent,
    SocketState,
    SocketStatus,
    StateCause,
)

from conftest import FAST, Server, fails_with, next_matching, publish, run, state_names, states

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
            assert received.cursor == ResumeCursor(last_seq=1, last_ts=received.ts)
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
        sock.close()
        assert sock.closed
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
            assert [e.cursor.last_seq for e in got] == [1, 2, 3, 4, 5]
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
            assert first.cursor == ResumeCursor(last_seq=None, last_ts=None)

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


def test_unpack_reads_the_native_layout_and_puts_typed_events_back_in_place() -> None:
    from steadyws._ffi.steadyws import PackedEvents, PlacedEvent, packed_layout
    from steadyws._socket import _unpack

    layout = packed_layout()

    def entry(content_kind: str, **fields: Any) -> List[Any]:  # as the native library lays it out
        fields["kind"] = layout.content_kinds.index(content_kind)
        return [fields[name] for name in layout.fields]

    acked = SocketEvent.ACKED(id="a")
    binary = SocketEvent.MESSAGE(
        id=None, seq=None, ts=None, data=MessageData.BINARY(bytes=b"\x01"),
        cursor=ResumeCursor(last_seq=None, last_ts=None), redelivered=False,
    )
    entries = [
        entry(id="m1", seq=1, ts=10, content_kind="json", content='{"n":1}', last_seq=1,
              last_ts=10, redelivered=False),
        entry(id="m2", seq=2, ts=20, content_kind="text", content="two", last_seq=2,
              last_ts=20, redelivered=True),
    ]
    packed = PackedEvents(
        messages=json.dumps(entries),
        others=[PlacedEvent(index=0, event=acked), PlacedEvent(index=2, event=binary),
                PlacedEvent(index=4, event=acked)],
    )
    events = _unpack(packed)
    assert events == [
        acked,
        SocketEvent.MESSAGE(
            id="m1", seq=1, ts=10, data=MessageData.JSON(json='{"n":1}'),
            cursor=ResumeCursor(last_seq=1, last_ts=10), redelivered=False,
        ),
        binary,
        SocketEvent.MESSAGE(
            id="m2", seq=2, ts=20, data=MessageData.TEXT(text="two"),
            cursor=ResumeCursor(last_seq=2, last_ts=20), redelivered=True,
        ),
        acked,
    ]


def test_settings_are_the_config_fields_and_absent_ones_take_the_native_defaults(
    server: Server,
) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, backoff_initial_ms=150, max_attempts=3) as sock:
            config = sock.config
            assert isinstance(config, SocketConfig) and config.url == server.url
            assert config.backoff_initial_ms == 150 and config.max_attempts == 3
            # Not restated here: the native socket fills in what was left out.
            assert config.inbox_max_events is None and config.outbox_max_messages is None
            assert config.store_directory is None and config.store_name == "default"
            await sock.wait_open(5)
            assert sock.is_open

    run(scenario())


def test_timeouts_and_cancellation_lose_no_event(server: Server) -> None:
    """Reads that time out or are cancelled at every moment lose no event and take none twice."""

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
                        for _ in range(rounds % 4):  # cancelled at each step of a read
                            await asyncio.sleep(0)
                        reader.cancel()
                        try:
                            event = await reader
                        except asyncio.CancelledError:
                            continue
                    else:
                        event = await sock.next_event(timeout=0.0005)
                except steadyws.SteadyWsError as err:
                    assert err.kind is ErrorKind.TIMED_OUT, err
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


def test_a_reader_cancelled_once_its_batch_was_taken_loses_nothing(server: Server) -> None:
    """The native take completes at once when events are queued; a reader cancelled right then
    (before its task resumes) leaves the whole batch to the next read."""

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            ids = [await sock.send_and_wait({"n": n}, timeout=5) for n in range(5)]
            await asyncio.sleep(0.3)  # the 2 state changes, 5 acks and 5 messages are queued
            reader = asyncio.ensure_future(sock.next_event())
            await asyncio.sleep(0)  # the reader starts its take
            await asyncio.sleep(0)  # the take runs: Rust hands the batch over
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            seen: List[SocketEvent] = []
            while len(seen) < 12:
                event = await sock.next_event(timeout=5)
                assert event is not None
                seen.append(event)
            assert seen[:2] == [
                SocketEvent.STATE_CHANGED(
                    state=SocketState.CONNECTING(attempt=1), cause=StateCause.APP()
                ),
                OPENED,
            ]
            assert [e.id for e in seen if isinstance(e, SocketEvent.ACKED)] == ids
            assert [e.id for e in seen if isinstance(e, SocketEvent.MESSAGE)] == ids
            assert sock.stats.messages_in == 5

    run(scenario())


def test_breaking_out_hands_the_rest_to_the_next_reader(server: Server) -> None:
    """`break` ends an iteration; the events after it wait for the next one, in order, also the
    rest of a batch already taken, and another task may read next."""

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
                with fails_with(ErrorKind.TIMED_OUT):
                    await sock.next_event(timeout=0.1)  # the stream is free for another task

            await asyncio.ensure_future(other_task())

    run(scenario())


def test_iteration_yields_to_the_event_loop(server: Server) -> None:
    """With many events already queued, `async for` still lets other tasks run between the
    native takes (a replay of 1 000 messages here; one take holds at most 256 events, BATCH in
    bindings/ffi/src/reading.rs)."""
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
        sock.close()

    run(scenario())


def test_watch_follows_state_and_outbox_and_takes_no_event(server: Server) -> None:
    """watch() gives the status now, then each change, to any number of watchers, ends after
    Closed, and leaves every event to the reader."""

    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)
        first: List[SocketStatus] = []
        second: List[SocketStatus] = []

        async def follow(into: List[SocketStatus]) -> None:
            async for status in sock.watch():
                into.append(status)

        watchers = [asyncio.ensure_future(follow(first)), asyncio.ensure_future(follow(second))]
        await asyncio.sleep(0.1)
        assert first == [SocketStatus(state=SocketState.IDLE(), outbox_len=0)]
        message_id = sock.send({"n": 1})  # queued while idle
        await asyncio.sleep(0.1)  # seen before it goes (a watcher that falls behind skips)
        sock.connect()
        await sock.wait_acked(message_id, timeout=5)
        await asyncio.sleep(0.1)
        sock.close()
        await asyncio.wait_for(asyncio.gather(*watchers), 5)  # both ended with the close
        for seen in (first, second):
            assert seen[0] == SocketStatus(state=SocketState.IDLE(), outbox_len=0)
            assert seen[-1].state == SocketState.CLOSED()
            assert SocketStatus(state=SocketState.OPEN(), outbox_len=0) in seen
            assert any(s.outbox_len == 1 for s in seen)
        # The stream still has every event, the way in first.
        events = [event async for event in sock]
        assert state_names(events)[:2] == ["CONNECTING", "OPEN"]
        assert SocketEvent.ACKED(id=message_id) in events

    run(scenario())


def test_a_watch_ends_with_its_task(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            seen: List[SocketStatus] = []

            async def follow() -> None:
                async for status in sock.watch():
                    seen.append(status)

            watcher = asyncio.ensure_future(follow())
            await sock.wait_open(5)
            await asyncio.sleep(0.1)
            assert seen and seen[-1].state == SocketState.OPEN()
            watcher.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(watcher, 2)
            # Another watch starts with the status now.
            async for status in sock.watch():
                assert status == SocketStatus(state=SocketState.OPEN(), outbox_len=0)
                break

    run(scenario())


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
    # Events, causes and statuses print their data.
    assert "cause=StateCause.OPENED()" in repr(OPENED)
    assert repr(SocketStatus(state=SocketState.OPEN(), outbox_len=2)) == (
        "SocketStatus(state=open, outbox_len=2)"
    )


def test_native_close_ends_pending_native_reads(server: Server) -> None:
    async def scenario() -> None:
        # Idle, so no event will ever come: only close() can end the read.
        idle = steadyws.NativeSocket(SocketConfig(url=server.url, **FAST))
        pending = asyncio.ensure_future(idle.next_events())
        await asyncio.sleep(0.2)
        assert not pending.done()
        idle.close()
        rest = await asyncio.wait_for(pending, 5)
        # What is left (at most the change to Closed), then the end.
        assert all(isinstance(e, SocketEvent.STATE_CHANGED) for e in rest), rest
        while rest:
            rest = await asyncio.wait_for(idle.next_events(), 5)
        assert await asyncio.wait_for(idle.next_events(), 5) == []  # the stream stays ended
        assert idle.try_next_events() == []
        assert idle.state() == SocketState.CLOSED()

        # Open, every event read, a read waiting: close() ends it at once, so the read gets
        # the final state change (cause: the app), and the next one the end.
        raw = steadyws.NativeSocket(SocketConfig(url=server.url, **FAST))
        raw.connect()
        await raw.wait_open(5000)
        taken: List[SocketEvent] = []
        while OPENED not in taken:
            taken += await asyncio.wait_for(raw.next_events(), 5)
        pending = asyncio.ensure_future(raw.next_events())
        await asyncio.sleep(0.2)
        assert not pending.done()
        raw.close()
        closed = SocketEvent.STATE_CHANGED(state=SocketState.CLOSED(), cause=StateCause.APP())
        assert await asyncio.wait_for(pending, 5) == [closed]
        assert await asyncio.wait_for(raw.next_events(), 5) == []
        assert raw.state() == SocketState.CLOSED()

    run(scenario())


def test_close_ends_a_blocked_reader(server: Server) -> None:
    async def scenario() -> None:
        sock = steadyws.Socket(server.url, **FAST)  # idle: no event will come
        reader = asyncio.ensure_future(sock.next_event())
        await asyncio.sleep(0.1)
        assert not reader.done()
        sock.close()
        first = await asyncio.wait_for(reader, 5)
        rest = [first] if first is not None else []
        while (event := await sock.next_event(timeout=5)) is not None:
            rest.append(event)
        assert all(isinstance(e, SocketEvent.STATE_CHANGED) for e in rest), rest

    run(scenario())


def test_native_sockets_are_released(server: Server) -> None:
    """A socket the app drops, closed or not, read from or not, frees its native socket."""
    gc.collect()  # sockets earlier tests dropped
    before = steadyws.live_native_sockets()

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            await publish(server.url, 3)
            assert await sock.next_event(timeout=5) is not None
            assert steadyws.live_native_sockets() == before + 1
        steadyws.Socket(server.url, **FAST)  # never used

    run(scenario())
    gc.collect()
    assert steadyws.live_native_sockets() == before
