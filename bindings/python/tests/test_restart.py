"""Scenario 7: the server process is SIGKILLed and restarted (same port, same --data-dir) while
two clients send and receive: nothing is lost, nothing is duplicated, in either direction."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import steadyws
from steadyws import SocketEvent, SocketState, StateCause

from conftest import FAST, Server, run

PER_CLIENT = 40  # messages each client sends
TOTAL = 2 * PER_CLIENT
KILLS = 2


class Tracker:
    """Reads one socket's events until it has every ack it expects and the whole stream."""

    def __init__(self, name: str, sock: steadyws.Socket) -> None:
        self.name = name
        self.sock = sock
        self.sent: List[str] = []
        self.acked: List[str] = []
        self.failed: List[Tuple[str, steadyws.SendFailureKind, str]] = []
        self.stream: List[Tuple[int, Optional[str], Any]] = []  # (seq, id, data)
        self.dropped: List[steadyws.ConnectionErrorKind] = []  # open connections that ended
        self.failed_attempts = 0
        self.opens = 0

    def complete(self) -> bool:
        return len(self.acked) >= PER_CLIENT and len(self.stream) >= TOTAL

    def take(self, event: SocketEvent) -> None:
        if isinstance(event, SocketEvent.ACKED):
            self.acked.append(event.id)
        elif isinstance(event, SocketEvent.SEND_FAILED):
            self.failed.append((event.id, event.reason, event.message))
        elif isinstance(event, SocketEvent.MESSAGE):
            assert event.seq is not None
            self.stream.append((event.seq, event.id, steadyws.decode(event.data)))
        elif isinstance(event, SocketEvent.STATE_CHANGED):
            if isinstance(event.cause, StateCause.CONNECTION_DROPPED):
                self.dropped.append(event.cause.problem.kind)
            elif isinstance(event.cause, StateCause.ATTEMPT_FAILED):
                self.failed_attempts += 1
            if event.state == SocketState.OPEN():
                assert event.cause == StateCause.OPENED()
                self.opens += 1

    async def follow(self, linger: float) -> None:
        """Read until complete, then `linger` seconds more to catch late duplicates."""
        while not self.complete():
            event = await self.sock.next_event(timeout=20)
            assert event is not None
            self.take(event)
        while True:
            try:
                event = await self.sock.next_event(timeout=linger)
            except steadyws.SteadyWsError as err:
                assert err.kind is steadyws.ErrorKind.TIMED_OUT, err
                return
            assert event is not None
            self.take(event)


def test_scenario_server_restarted_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, make_server: Any
) -> None:
    server: Server = make_server(tmp_path / "data")
    # Sends (one per client per round, 30 ms apart) go on before, during, between and after
    # the kills. Each kill comes right after a send, so messages are in flight when it hits.
    kill_at = {10: 1, 24: 2}
    restart_at = {16: 1, 30: 2}
    chaos: List[str] = []

    async def scenario() -> None:
        async with steadyws.Socket(server.url, **FAST) as alice, steadyws.Socket(
            server.url, **FAST
        ) as bob:
            await alice.wait_open(timeout=5)
            await bob.wait_open(timeout=5)
            trackers = [Tracker("alice", alice), Tracker("bob", bob)]

            async def send_all() -> None:
                for n in range(PER_CLIENT):
                    if n in kill_at:
                        # Both clients are back from the previous kill (or never left).
                        await reconnected(kill_at[n] - 1)
                    for tracker in trackers:
                        data = {"from": tracker.name, "n": n}
                        tracker.sent.append(tracker.sock.send(data))
                    if n in kill_at:
                        await asyncio.to_thread(server.kill)
                        chaos.append(f"kill {kill_at[n]}")
                    if n in restart_at:
                        await asyncio.to_thread(server.start)
                        chaos.append(f"restart {restart_at[n]}")
                    await asyncio.sleep(0.03)

            async def reconnected(times: int) -> None:
                for _ in range(500):
                    if all(t.sock.stats.reconnects >= times and t.sock.is_open for t in trackers):
                        return
                    await asyncio.sleep(0.02)
                raise AssertionError(f"clients did not reconnect after kill {times}")

            followers = [asyncio.ensure_future(t.follow(linger=0.5)) for t in trackers]
            await send_all()
            await asyncio.wait_for(asyncio.gather(*followers), timeout=30)

            sent_by_id: Dict[str, Tuple[str, int]] = {}
            for tracker in trackers:
                for n, message_id in enumerate(tracker.sent):
                    sent_by_id[message_id] = (tracker.name, n)
            assert len(sent_by_id) == TOTAL

            for tracker in trackers:
                name = tracker.name
                # Upstream: every message acknowledged exactly once, none given up.
                assert tracker.failed == [], (name, tracker.failed)
                assert Counter(tracker.acked) == Counter(tracker.sent), name
                assert tracker.sock.stats.outbox_len == 0, name
                # Downstream: the stream is seq 1..TOTAL, each exactly once and in order ...
                seqs = [seq for seq, _, _ in tracker.stream]
                assert seqs == list(range(1, TOTAL + 1)), (name, seqs)
                # ... and holds every client message exactly once (server-side dedup of resends),
                ids = [message_id or "" for _, message_id, _ in tracker.stream]
                assert Counter(ids) == Counter(sent_by_id.keys()), name
                for message_id, (_, _, data) in zip(ids, tracker.stream):
                    author, n = sent_by_id[message_id]
                    assert data == {"from": author, "n": n}
                # ... with each sender's messages in the order they were sent.
                for sender in trackers:
                    order = [sent_by_id[i][1] for i in ids if sent_by_id[i][0] == sender.name]
                    assert order == list(range(PER_CLIENT)), (name, sender.name, order)
                # The kills were real: the client's open connection dropped (the state change
                # says so, with the problem) and it came back each time.
                stats = tracker.sock.stats
                print(f"{name}: {stats}; dropped: {tracker.dropped}")
                assert stats.reconnects >= KILLS, (name, stats, tracker.dropped)
                assert len(tracker.dropped) >= KILLS, (name, tracker.dropped)
                assert tracker.opens == 1 + stats.reconnects, (name, tracker.opens, stats)
                assert stats.messages_in == TOTAL and stats.last_seq == TOTAL, (name, stats)
                assert tracker.sock.is_open, (name, tracker.sock.state)

        # The history survived both SIGKILLs: a client resuming from seq 0 gets all of it once.
        async with steadyws.Socket(server.url, resume_last_seq=0, **FAST) as carol:
            replay: List[int] = []
            async for event in carol:
                if isinstance(event, SocketEvent.MESSAGE):
                    assert event.seq is not None
                    replay.append(event.seq)
                    if len(replay) == TOTAL:
                        break
            assert replay == list(range(1, TOTAL + 1))

    run(scenario(), timeout=60)
    assert chaos == ["kill 1", "restart 1", "kill 2", "restart 2"]
