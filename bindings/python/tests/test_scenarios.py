"""The host-layer acceptance scenarios (the same list runs in pytest, JUnit and XCTest).

1. a late subscriber gets everything;          2. a slow consumer is pushed back, not dropped;
3. waiting keeps events;                        4. `send` returns at once, `send_and_wait` after
                                                   the ack;
5. close semantics;                             6. states carry their cause;
7. the server restarted mid-stream: 0 lost, 0 duplicated (tests/test_restart.py);
8. the app process killed (tests/test_store.py::test_sigkilled_*);
9. one reader;                                  10. one kind per situation;
11. `send_and_wait` with a `ttl`;               12. a silent server is noticed while sending.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, List

import pytest

import steadyws
from steadyws import (
    ConnectionErrorKind,
    ErrorKind,
    ResumeCursor,
    SendFailureKind,
    SocketEvent,
    SocketState,
    StateCause,
)

from conftest import FAST, Server, fails_with, free_port, next_matching, next_state, publish, run

OPENED = SocketEvent.STATE_CHANGED(state=SocketState.OPEN(), cause=StateCause.OPENED())
CONNECTING_1 = SocketEvent.STATE_CHANGED(
    state=SocketState.CONNECTING(attempt=1), cause=StateCause.APP()
)


def test_scenario_late_subscriber_gets_every_message(server: Server) -> None:
    """Connect, let the server publish N messages, start reading only afterwards: all N arrive,
    in order, and the stats count a message as taken only once the app took it (0 before
    reading, N after)."""
    count = 50

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as late:
            await late.wait_open(5)  # waiting reads nothing from the stream
            ids = await publish(server.url, count)
            for _ in range(250):  # every message has reached the socket...
                if late.stats.messages_received == count:
                    break
                await asyncio.sleep(0.02)
            stats = late.stats
            assert stats.messages_received == count
            # ... but none was taken: nothing is committed, the cursor is still where the socket
            # started (the head of the then empty stream, from the server's `hello`).
            assert stats.messages_in == 0 and stats.last_seq == 0

            seen: List[SocketEvent] = []
            messages: List[SocketEvent.MESSAGE] = []
            while len(messages) < count:
                event = await late.next_event(timeout=5)
                assert event is not None
                seen.append(event)
                if isinstance(event, SocketEvent.MESSAGE):
                    messages.append(event)
                    assert event.cursor == ResumeCursor(last_seq=event.seq, last_ts=event.ts)
            # The state changes from before the publication are still there, first.
            assert seen[:2] == [CONNECTING_1, OPENED]
            assert [m.seq for m in messages] == list(range(1, count + 1))
            assert [m.id for m in messages] == ids
            assert [steadyws.decode(m.data)["n"] for m in messages] == list(range(count))
            with fails_with(ErrorKind.TIMED_OUT):
                await late.next_event(timeout=0.3)  # nothing twice
            stats = late.stats
            assert stats.messages_in == count
            assert (stats.last_seq, stats.last_ts) == (messages[-1].seq, messages[-1].ts)

    run(scenario())


def _rss_bytes() -> int:
    """Resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


PUBLISHER = textwrap.dedent(
    """
    import asyncio, sys
    import steadyws

    async def main(url, count, pad):
        async with steadyws.Socket(
            url, outbox_max_messages=count, outbox_max_bytes=count * (pad + 200)
        ) as publisher:
            await publisher.wait_open(10)
            for n in range(count):
                publisher.send({"n": n, "pad": "x" * pad})
            acked = 0
            async for event in publisher:  # drains its own copy of the stream too
                if isinstance(event, steadyws.SocketEvent.ACKED):
                    acked += 1
                    if acked == count:
                        break
        print("published", acked)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_scenario_slow_consumer_is_pushed_back_not_dropped(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The app stops consuming while the server publishes 5 000 messages (2 KiB each) to it: the
    native inbox stays at its bound (200 messages) instead of growing, the connection is never
    torn down (the heartbeat, 500 ms here, does not count the pause as a dead link), and
    afterwards every message is delivered exactly once, in order."""
    count, pad, inbox = 5000, 2048, 200
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER)

    async def scenario() -> None:
        async with steadyws.Socket(server.url, inbox_max_events=inbox, **FAST) as slow:
            await slow.wait_open(5)
            rss_before = _rss_bytes()
            # The publisher is another process, so this process's memory is the consumer's.
            started = time.monotonic()
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, str(script), server.url, str(count), str(pad)],
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == f"published {count}"
            published_in = time.monotonic() - started
            await asyncio.sleep(3)  # not consuming: time passes, heartbeats are due
            paused = slow.stats
            rss_paused = _rss_bytes()
            assert slow.is_open, slow.state
            assert paused.messages_in == 0
            # Backpressure: the socket stopped reading at the inbox bound; the rest waits in TCP
            # buffers and at the server.
            assert paused.messages_received < count, paused
            assert paused.messages_received <= inbox + 64, paused

            seen_states: List[SocketEvent] = []
            seqs: List[int] = []
            numbers: List[int] = []
            async for event in slow:
                if isinstance(event, SocketEvent.STATE_CHANGED):
                    seen_states.append(event)
                elif isinstance(event, SocketEvent.MESSAGE):
                    assert event.seq is not None
                    seqs.append(event.seq)
                    numbers.append(steadyws.decode(event.data)["n"])
                    if len(seqs) == count:
                        break
            with fails_with(ErrorKind.TIMED_OUT):
                await slow.next_event(timeout=0.5)  # nothing more: no duplicate
            stats = slow.stats
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            with capsys.disabled():
                print(
                    f"\n[slow consumer] published={count} x {pad} B in {published_in:.1f} s, "
                    f"received while paused={paused.messages_received} (inbox {inbox}), "
                    f"delivered={len(seqs)}, RSS growth while paused="
                    f"{(rss_paused - rss_before) / 1024:.0f} KiB, "
                    f"peak RSS of the test process={peak_kib / 1024:.1f} MiB"
                )
            # The state never left Open: the only state changes are the way in.
            assert seen_states == [CONNECTING_1, OPENED]
            assert stats.reconnects == 0 and slow.is_open
            # Exactly once, in order.
            assert seqs == list(range(1, count + 1))
            assert numbers == list(range(count))
            assert stats.messages_in == count and stats.last_seq == count
            # Bounded: the 10 MiB published did not pile up in this process.
            assert rss_paused - rss_before < 6 * 1024 * 1024, (rss_before, rss_paused)

    run(scenario(), timeout=150)


def test_scenario_waiting_keeps_events(server: Server) -> None:
    """`wait_open`, then `send_and_wait` and `wait_acked`: the stream still holds the state
    changes, the ack and the message, in order."""

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await sock.wait_open(5)
            await sock.wait_open(5)  # open already: at once
            message_id = await sock.send_and_wait({"kept": True}, timeout=5)
            await sock.wait_acked(message_id, timeout=5)  # remembered: at once
            seen: List[SocketEvent] = []
            await next_matching(
                sock,
                lambda e: isinstance(e, SocketEvent.MESSAGE) and e.id == message_id,
                seen=seen,
            )
            assert seen[:2] == [CONNECTING_1, OPENED]
            assert seen[2] == SocketEvent.ACKED(id=message_id)
            assert isinstance(seen[3], SocketEvent.MESSAGE)
            assert steadyws.decode(seen[3].data) == {"kept": True}
            assert len(seen) == 4

    run(scenario())


def test_scenario_send_returns_at_once_and_send_and_wait_after_the_ack(server: Server) -> None:
    async def scenario() -> None:
        # Not connected at all: send still returns the id at once (queued).
        sock = steadyws.Socket(server.url, **FAST)
        started = time.monotonic()
        first = sock.send({"n": 1})
        assert time.monotonic() - started < 0.1
        assert isinstance(first, str) and len(first) == 36  # a UUID
        assert sock.stats.outbox_len == 1 and sock.stats.messages_acked == 0
        sock.connect()
        await sock.wait_acked(first, timeout=5)
        assert sock.stats.outbox_len == 0

        # send_and_wait returns only once the server acknowledged the message.
        second = await sock.send_and_wait({"n": 2}, timeout=5)
        stats = sock.stats
        assert stats.messages_acked == 2 and stats.outbox_len == 0
        acked = [
            e.id
            async for e in _take_until(sock, lambda e: e == SocketEvent.ACKED(id=second))
            if isinstance(e, SocketEvent.ACKED)
        ]
        assert acked == [first, second]
        sock.close()

        # A server that is not there: send_and_wait times out, the message stays queued.
        down = steadyws.Socket(f"ws://127.0.0.1:{free_port()}/ws", **FAST)
        down.connect()
        started = time.monotonic()
        with fails_with(ErrorKind.TIMED_OUT, "still sent") as caught:
            await down.send_and_wait({"n": 3}, timeout=0.3)
        assert 0.25 <= time.monotonic() - started < 3
        message_id = caught.value.message_id
        assert message_id is not None and len(message_id) == 36
        assert down.stats.outbox_len == 1
        with fails_with(ErrorKind.TIMED_OUT):
            await down.wait_acked(message_id, timeout=0.1)
        down.close()

    run(scenario())


async def _take_until(sock: steadyws.Socket, last: Any, timeout: float = 5.0) -> Any:
    """Events up to and including the first for which `last(event)` is true."""
    while True:
        event = await sock.next_event(timeout=timeout)
        assert event is not None
        yield event
        if last(event):
            return


def test_scenario_close_fails_every_wait_at_once_and_ends_the_stream() -> None:
    async def scenario() -> None:
        port = free_port()  # nothing listens: nothing can open or be acknowledged
        sock = steadyws.Socket(f"ws://127.0.0.1:{port}/ws", **FAST)
        sock.connect()
        queued = sock.send({"n": 0})
        seen: List[SocketEvent] = []

        async def consume() -> None:
            async for event in sock:
                seen.append(event)

        consumer = asyncio.ensure_future(consume())
        waits = [
            asyncio.ensure_future(sock.wait_open()),  # no timeout: only close can end these
            asyncio.ensure_future(sock.send_and_wait({"n": 1})),
            asyncio.ensure_future(sock.wait_acked(queued)),
        ]
        await asyncio.sleep(0.5)
        assert not any(w.done() for w in waits) and not consumer.done()

        started = time.monotonic()
        sock.close()
        assert sock.state == SocketState.CLOSED() and sock.closed  # at once
        results = await asyncio.wait_for(
            asyncio.gather(*waits, return_exceptions=True), timeout=2
        )
        await asyncio.wait_for(consumer, timeout=2)  # the stream ended by itself
        assert time.monotonic() - started < 2
        assert all(
            isinstance(r, steadyws.SteadyWsError) and r.kind is ErrorKind.CLOSED for r in results
        ), results
        assert results[0].message_id is None  # type: ignore[union-attr]
        assert results[1].message_id not in (None, queued)  # type: ignore[union-attr]
        assert results[2].message_id == queued  # type: ignore[union-attr]
        # The last event is the change to Closed, caused by the app.
        assert seen[-1] == SocketEvent.STATE_CHANGED(
            state=SocketState.CLOSED(), cause=StateCause.APP()
        )

        # After close: every wait, send and cancel answers at once.
        with fails_with(ErrorKind.CLOSED):
            await asyncio.wait_for(sock.wait_open(), timeout=1)
        with fails_with(ErrorKind.CLOSED):
            await asyncio.wait_for(sock.send_and_wait({"late": True}), timeout=1)
        with fails_with(ErrorKind.CLOSED):
            sock.send({"late": True})
        with fails_with(ErrorKind.CLOSED):
            sock.cancel(queued)
        sock.connect()  # a closed socket stays closed
        assert sock.state == SocketState.CLOSED()
        with fails_with(ErrorKind.CLOSED):
            await asyncio.wait_for(sock.wait_acked(queued), timeout=1)
        assert await asyncio.wait_for(sock.next_event(), timeout=1) is None
        assert [e async for e in sock] == []
        sock.close()  # idempotent

    run(scenario())


def test_scenario_close_of_an_open_socket(server: Server) -> None:
    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            await next_matching(sock, lambda e: e == OPENED)
            # A consumer blocked on the next state change, in another task.
            reader = asyncio.ensure_future(next_state(sock, timeout=5))
            await asyncio.sleep(0.1)
            assert not reader.done()
        # `async with` closed it: at once, and the blocked consumer saw why.
        assert sock.state == SocketState.CLOSED()
        assert await asyncio.wait_for(reader, 2) == SocketEvent.STATE_CHANGED(
            state=SocketState.CLOSED(), cause=StateCause.APP()
        )
        assert await sock.next_event(timeout=2) is None  # then the stream ends
        with fails_with(ErrorKind.CLOSED):
            await sock.wait_open(timeout=5)

    run(scenario())


def test_scenario_states_carry_their_cause(make_server: Any) -> None:
    """A refused attempt: Reconnecting caused by AttemptFailed(problem); an open connection
    dropped (the server killed): Reconnecting caused by ConnectionDropped(problem); close():
    Closed caused by App."""
    srv: Server = make_server(None)

    async def scenario() -> None:
        # A port nobody listens on.
        port = free_port()
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", **FAST) as refused:
            assert await next_state(refused) == CONNECTING_1
            retry = await next_state(refused)
            assert isinstance(retry.state, SocketState.RECONNECTING)
            assert isinstance(retry.cause, StateCause.ATTEMPT_FAILED)
            assert retry.cause.problem.kind is ConnectionErrorKind.REFUSED
            assert f"127.0.0.1:{port}" in retry.cause.problem.message

        # A live server, then killed under the open connection, then back.
        async with steadyws.Socket(srv.url, **FAST) as sock:
            assert await next_state(sock) == CONNECTING_1
            assert await next_state(sock) == OPENED
            await asyncio.to_thread(srv.kill)
            dropped = await next_state(sock)
            assert isinstance(dropped.state, SocketState.RECONNECTING), dropped
            assert isinstance(dropped.cause, StateCause.CONNECTION_DROPPED), dropped
            assert dropped.cause.problem.message
            # While it is down, attempts fail (and say so); then it comes back.
            causes: List[Any] = []
            await asyncio.to_thread(srv.start)
            while True:
                change = await next_state(sock, timeout=10)
                causes.append(change.cause)
                if change == OPENED:
                    break
            assert all(
                isinstance(c, (StateCause.RETRY_DUE, StateCause.ATTEMPT_FAILED, StateCause.OPENED))
                for c in causes
            ), causes
            sock.close()
            closed = await next_state(sock)
            assert closed == SocketEvent.STATE_CHANGED(
                state=SocketState.CLOSED(), cause=StateCause.APP()
            )

    run(scenario())


def test_scenario_one_reader(server: Server) -> None:
    """While a reader waits for events, a second read fails at once with ALREADY_READING, in
    every form; once the first reader is cancelled, a new reader starts at once and receives the
    next message the server publishes."""

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as sock:
            seen: List[SocketEvent] = []

            async def first_reader() -> None:
                async for event in sock:
                    seen.append(event)

            reader = asyncio.ensure_future(first_reader())
            for _ in range(250):  # it took the way in and now waits for more
                if OPENED in seen:
                    break
                await asyncio.sleep(0.02)
            assert seen == [CONNECTING_1, OPENED]
            await asyncio.sleep(0.1)

            started = time.monotonic()
            with fails_with(ErrorKind.ALREADY_READING, "one reader at a time"):
                await sock.next_event(timeout=5)
            with fails_with(ErrorKind.ALREADY_READING):
                sock.try_next_event()
            with fails_with(ErrorKind.ALREADY_READING):
                async for _ in sock:
                    raise AssertionError("a second reader got an event")
            assert time.monotonic() - started < 1  # at once, not after the 5 s
            assert not reader.done()

            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            assert sock.try_next_event() is None  # a new reader is not refused

            async def second_reader() -> SocketEvent:
                async for event in sock:
                    if isinstance(event, SocketEvent.MESSAGE):
                        return event
                raise AssertionError("the stream ended")

            taking = asyncio.ensure_future(second_reader())
            ids = await publish(server.url, 1)
            message = await asyncio.wait_for(taking, 5)
            assert isinstance(message, SocketEvent.MESSAGE) and message.id == ids[0]
            assert seen == [CONNECTING_1, OPENED]  # the first reader took nothing more

    run(scenario())


def test_scenario_one_kind_per_situation() -> None:
    """An http:// URL: INVALID_URL; `not json`, and JSON nested 65 levels deep: NOT_JSON; the
    ack of an id never sent: UNKNOWN_MESSAGE; waiting for the connection after close: CLOSED."""

    async def scenario() -> None:
        with fails_with(ErrorKind.INVALID_URL, "ws://"):
            steadyws.Socket("http://127.0.0.1:1/ws")
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)
        with fails_with(ErrorKind.NOT_JSON):
            sock.send_json("not json")  # send() would send the str as a JSON string
        with fails_with(ErrorKind.NOT_JSON, "nested deeper than 64 levels"):
            sock.send_json("[" * 65 + "]" * 65)
        assert sock.pending() == []
        with fails_with(ErrorKind.UNKNOWN_MESSAGE) as caught:
            await sock.wait_acked("never-sent", timeout=5)
        assert caught.value.message_id == "never-sent"
        sock.close()
        with fails_with(ErrorKind.CLOSED):
            await sock.wait_open(timeout=5)

    run(scenario())


def test_scenario_send_and_wait_with_a_ttl() -> None:
    """Nothing listening: with a ttl of 0.3 s and a timeout of 10 s, send_and_wait fails with
    SEND_FAILED (EXPIRED) for that message, well before the timeout; without a ttl and with a
    timeout of 0.3 s, it fails with TIMED_OUT and the message is still pending."""

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{free_port()}/ws", **FAST) as sock:
            started = time.monotonic()
            with fails_with(ErrorKind.SEND_FAILED, "time-to-live") as expired:
                await sock.send_and_wait({"n": 1}, ttl=0.3, timeout=10)
            elapsed = time.monotonic() - started
            assert 0.25 <= elapsed < 3, elapsed
            assert expired.value.send_failure is SendFailureKind.EXPIRED
            expired_id = expired.value.message_id
            assert expired_id is not None and len(expired_id) == 36
            assert sock.pending() == []

            started = time.monotonic()
            with fails_with(ErrorKind.TIMED_OUT) as timed_out:
                await sock.send_and_wait({"n": 2}, timeout=0.3)
            assert 0.25 <= time.monotonic() - started < 3
            assert timed_out.value.send_failure is None
            assert [p.id for p in sock.pending()] == [timed_out.value.message_id]
            assert timed_out.value.message_id != expired_id

    run(scenario())


def test_scenario_12_a_silent_server_is_noticed_while_sending(server: Server) -> None:
    """The server process stopped (SIGSTOP: its connections stay open, nothing answers) while the
    app sends every 50 ms: the socket leaves OPEN, caused by ConnectionDropped, within 2 s
    (the 2 s default would take about 2.5 s),
    although its idle heartbeat (10 s + 5 s) would take 15 s; once the server runs again, every
    message sent is acknowledged and nothing is left pending."""
    settings = dict(
        FAST,
        heartbeat_interval_ms=10_000,
        heartbeat_timeout_ms=5_000,
        ack_probe_after_ms=500,
        probe_timeout_ms=500,
    )

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **settings) as sock:
            assert await next_state(sock) == CONNECTING_1
            assert await next_state(sock) == OPENED
            sent: List[str] = [sock.send({"n": 0})]
            await sock.wait_acked(sent[0], timeout=5)
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                dropped = None
                while dropped is None and time.monotonic() - stopped < 5:
                    sent.append(sock.send({"n": len(sent)}))
                    await asyncio.sleep(0.05)
                    while dropped is None and (event := sock.try_next_event()) is not None:
                        if isinstance(event, SocketEvent.STATE_CHANGED):
                            dropped = event
                noticed = time.monotonic() - stopped
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            assert dropped is not None, "the silent server was never noticed"
            assert isinstance(dropped.cause, StateCause.CONNECTION_DROPPED), dropped
            assert noticed < 2, noticed
            print(f"noticed after {noticed:.2f} s")
            for message_id in sent:
                await sock.wait_acked(message_id, timeout=15)
            assert sock.pending() == []

    run(scenario())
