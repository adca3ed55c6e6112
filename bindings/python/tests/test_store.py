"""The durable store (`store_directory=`): what a SIGKILLed app loses (nothing it sent, at most
the one message in hand it read), pending()/cancel(), restoring a store, and its errors.

The kill tests drive the real bindings in a child process (tests/store_child.py) and kill it
with SIGKILL at random moments: no shutdown, no flush, only what the store committed survives.
"""

from __future__ import annotations

import asyncio
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest

import steadyws
from steadyws import ErrorKind, SendFailureKind, SocketEvent

from conftest import FAST, Server, fails_with, free_port, next_matching, publish, read_stream, run

CHILD = Path(__file__).resolve().parent / "store_child.py"


class Child:
    """One run of store_child.py; its stdout lines arrive in a queue as they are printed, its
    stderr goes to a file (`stderr`, for failure messages)."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with log.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, deadline: float) -> Optional[str]:
        """The next line printed (None once the child exited), failing at `deadline`."""
        try:
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the child printed nothing in time; stderr: {self.stderr}")

    def rest(self, timeout: float = 30) -> List[str]:
        """Every line not read yet, up to the child's exit."""
        deadline = time.monotonic() + timeout
        lines = []
        while (line := self.next_line(deadline)) is not None:
            lines.append(line)
        return lines

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def finish(self, timeout: float = 30) -> int:
        """Wait for the exit; returns the exit status."""
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_sigkilled_sender_loses_and_duplicates_nothing(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A child sends {"n": 0..199} through a store and is SIGKILLed at 5 random moments, then
    started again on the same store from the last n it printed + 1; the last run waits until
    pending() is empty. The server's stream holds every id the child printed (a `send` that
    returned) exactly once, in printed order. A kill between writing a message to disk and
    printing its id can leave that message in the stream unprinted (the child then sends the same
    n again with a new id): at most one per kill."""
    count, kills = 200, 5
    store = str(tmp_path / "store")
    printed: List[Tuple[str, int]] = []
    starts: List[int] = []  # the first n of each run
    run_lengths: List[int] = []
    child: Optional[Child] = None
    try:
        for run_number in range(kills + 1):
            first = printed[-1][1] + 1 if printed else 0
            starts.append(first)
            log = tmp_path / f"run{run_number}.log"
            child = Child(log, "send", server.url, store, str(first), str(count))
            lines: List[str] = []
            if run_number < kills:
                deadline = time.monotonic() + 20
                # Killed at a random moment while it sends (the previous run's leftovers go out
                # meanwhile).
                line = child.next_line(deadline)
                assert line is not None, child.rest()
                lines.append(line)
                time.sleep(random.uniform(0.0, 0.08))
                child.kill()
            lines += child.rest()
            if run_number == kills:
                assert child.finish() == 0, child.stderr
                assert lines[-1] == "all acked", lines
            for line in lines:
                if line.startswith("sent "):
                    _, message_id, n = line.split()
                    printed.append((message_id, int(n)))
            run_lengths.append(sum(line.startswith("sent ") for line in lines))
            child = None
    finally:
        if child is not None:
            child.stop()

    assert [n for _, n in printed] == list(range(count))
    stream = read_stream(server)
    ids = [frame["id"] for frame in stream]
    printed_ids = [message_id for message_id, _ in printed]
    printed_set = set(printed_ids)
    # The server dedups resends: nothing is stored twice.
    assert [i for i, c in Counter(ids).items() if c > 1] == []
    # Every message whose send returned is there, once, in the order it was sent, as sent.
    assert [i for i in ids if i in printed_set] == printed_ids
    data = {frame["id"]: frame["data"] for frame in stream}
    assert all(data[message_id] == {"n": n} for message_id, n in printed)
    # Unprinted: written before a kill, the id never reached the app. One per kill at most,
    # each an n the next run sent again.
    unprinted = [data[i]["n"] for i in ids if i not in printed_set]
    assert len(unprinted) <= kills, unprinted
    assert set(unprinted) <= set(starts[1:]), (unprinted, starts)
    with capsys.disabled():
        print(
            f"\n[sigkilled sender] sends per run {run_lengths}, stream "
            f"{len(ids)} messages, {len(unprinted)} written but unprinted at a kill"
        )


def test_sigkilled_reader_gets_everything_and_only_the_message_in_hand_again(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server publishes 100 messages while a child reads them one at a time through a store,
    processing each for 10 ms; the child is SIGKILLed 3 times at random moments and started again.
    Every message is printed; one printed twice was in hand at a kill: its second print is the
    first of the next run and says `redelivered`; at most one per kill."""
    count, kills = 100, 3
    store = str(tmp_path / "store")
    runs: List[List[Tuple[str, bool]]] = []
    published: List[str] = []
    child: Optional[Child] = None
    try:
        for run_number in range(kills + 1):
            log = tmp_path / f"run{run_number}.log"
            child = Child(log, "read", server.url, store, str(count - 1), "0.01")
            deadline = time.monotonic() + 20
            assert child.next_line(deadline) == "open", child.rest()
            if run_number == 0:
                published = asyncio.run(asyncio.wait_for(publish(server.url, count), 30))
            lines: List[str] = []
            if run_number < kills:
                for _ in range(random.randint(1, 12)):
                    line = child.next_line(deadline)
                    assert line is not None, (lines, child.rest())
                    lines.append(line)
                time.sleep(random.uniform(0.0, 0.012))
                child.kill()
            lines += child.rest()
            if run_number == kills:
                assert child.finish() == 0, child.stderr
            got = []
            for line in lines:
                assert line.startswith("got "), line
                _, message_id, flag = line.split()
                got.append((message_id, flag == "1"))
            runs.append(got)
            child = None
    finally:
        if child is not None:
            child.stop()

    printed = [message_id for got in runs for message_id, _ in got]
    assert set(printed) == set(published)
    first_prints = list(dict.fromkeys(printed))
    assert first_prints == published  # in order
    repeats = len(printed) - len(first_prints)
    assert repeats <= kills, runs
    seen: set[str] = set()
    for run_number, got in enumerate(runs):
        for position, (message_id, redelivered) in enumerate(got):
            if message_id in seen:  # a second print: the one in hand at the kill
                assert redelivered, (run_number, message_id)
            if redelivered:  # only ever the first message after a restart
                assert run_number > 0 and position == 0, (run_number, position)
            seen.add(message_id)
    with capsys.disabled():
        print(
            f"\n[sigkilled reader] messages per run {[len(g) for g in runs]}, "
            f"{repeats} delivered again (flagged redelivered)"
        )


def test_killed_before_the_first_commit_loses_nothing(server: Server, tmp_path: Path) -> None:
    """The app's first run takes its first message and is killed while processing it (nothing
    committed yet). The next run gets that message again, flagged `redelivered`, then the rest."""
    store = str(tmp_path / "store")
    child = Child(tmp_path / "run0.log", "read", server.url, store, "4", "30")
    try:
        assert child.next_line(time.monotonic() + 20) == "open", child.rest()
        ids = asyncio.run(asyncio.wait_for(publish(server.url, 5), 30))
        assert child.next_line(time.monotonic() + 20) == f"got {ids[0]} 0"
        child.kill()  # 30 s into processing it
        child = Child(tmp_path / "run1.log", "read", server.url, store, "4", "0")
        assert child.next_line(time.monotonic() + 20) == "open", child.rest()
        lines = []
        deadline = time.monotonic() + 3
        while len(lines) < 5 and (line := child.next_line(deadline)) is not None:
            lines.append(line)
        assert lines == [f"got {ids[0]} 1"] + [f"got {i} 0" for i in ids[1:]], child.stderr
        assert child.finish() == 0, child.stderr
    finally:
        child.stop()


def test_pending_survive_close_and_cancel_is_durable(tmp_path: Path, server_binary: Path) -> None:
    """Three messages sent while no server listens stay in the store after close; a new socket
    on it lists them at once, in order, with their ids, contents and times; cancelling the middle one
    removes it for good; once the server is up, the other two are acknowledged and only they
    reach its stream."""
    srv = Server(server_binary)
    srv.port = free_port()  # nothing listens there yet
    store = tmp_path / "store"  # a Path works as well as a str

    async def scenario() -> None:
        before = time.time() * 1000
        first = steadyws.Socket(srv.url, store_directory=store, **FAST)
        first.connect()
        ids = [first.send({"n": n}) for n in range(3)]
        assert [p.id for p in first.pending()] == ids
        first.close()
        after = time.time() * 1000

        sock = steadyws.Socket(srv.url, store_directory=store, **FAST)
        pending = sock.pending()  # before connecting
        assert [p.id for p in pending] == ids
        assert [p.json for p in pending] == ['{"n":0}', '{"n":1}', '{"n":2}']
        for p in pending:  # whole milliseconds since the epoch, across a restart
            assert before - 5 <= p.created_at_ms <= after + 5
        assert sock.cancel(ids[1]) is True
        assert sock.cancel(ids[1]) is False  # already settled
        assert sock.cancel("no-such-id") is False
        assert [p.id for p in sock.pending()] == [ids[0], ids[2]]
        cancelled = await next_matching(sock, lambda e: isinstance(e, SocketEvent.SEND_FAILED))
        assert isinstance(cancelled, SocketEvent.SEND_FAILED)
        assert cancelled.id == ids[1] and cancelled.reason is SendFailureKind.CANCELLED
        sock.close()

        # The removal was on disk: a third socket does not see it either.
        async with steadyws.Socket(srv.url, store_directory=store, **FAST) as third:
            assert [p.id for p in third.pending()] == [ids[0], ids[2]]
            await asyncio.to_thread(srv.start)
            await third.wait_acked(ids[0], timeout=10)
            await third.wait_acked(ids[2], timeout=10)
            assert third.pending() == []
        assert [frame["id"] for frame in read_stream(srv)] == [ids[0], ids[2]]

    try:
        run(scenario())
    finally:
        srv.stop()


def test_cancel_without_a_store_ends_waits_with_cancelled() -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)  # never connected
        message_id = sock.send({"n": 1})
        kept = sock.send({"n": 2})
        age_ms = time.time() * 1000 - sock.pending()[0].created_at_ms
        assert -5 <= age_ms < 5000
        waiter = asyncio.ensure_future(sock.wait_acked(message_id))
        await asyncio.sleep(0.05)
        assert sock.cancel(message_id) is True
        with fails_with(ErrorKind.SEND_FAILED, "cancelled by the app") as caught:
            await asyncio.wait_for(waiter, 5)
        err = caught.value
        assert err.message_id == message_id and err.send_failure is SendFailureKind.CANCELLED
        assert [p.id for p in sock.pending()] == [kept]
        event = await next_matching(sock, lambda e: isinstance(e, SocketEvent.SEND_FAILED))
        assert isinstance(event, SocketEvent.SEND_FAILED)
        assert event.data == steadyws.MessageData.JSON(json='{"n":1}')
        sock.close()

    run(scenario())


def test_pending_in_raw_mode_lists_text_frames() -> None:
    sock = steadyws.Socket("ws://127.0.0.1:1/raw", raw_mode=True)  # never connected
    message_id = sock.send_text("not JSON")
    assert [(p.id, p.json) for p in sock.pending()] == [(message_id, "not JSON")]
    sock.close()


def test_a_store_has_one_owner(tmp_path: Path) -> None:
    """A second socket on an open store is refused, in the same process or another one; closing
    the owner, or killing its process, releases the store."""
    store = tmp_path / "store"
    owner = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=store)
    with fails_with(ErrorKind.STORE_IN_USE, "in use") as caught:
        steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=store)
    assert "one owner at a time" in str(caught.value)
    # Another name in the same directory is another store.
    steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=store, store_name="other").close()
    owner.close()  # releases it

    holder = Child(tmp_path / "holder.log", "hold", "ws://127.0.0.1:1/ws", str(store))
    try:
        assert holder.next_line(time.monotonic() + 20) == "holding", holder.stderr
        with fails_with(ErrorKind.STORE_IN_USE):
            steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=store)
    finally:
        holder.stop()  # SIGKILL: the OS releases its lock
    steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=store).close()


def test_store_errors(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with fails_with(ErrorKind.STORE_FAILED, re.escape(str(not_a_directory))):
        steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=not_a_directory)
    with fails_with(ErrorKind.INVALID_OPTIONS, "raw"):
        steadyws.Socket("ws://127.0.0.1:1/raw", raw_mode=True, store_directory=tmp_path)
    with fails_with(ErrorKind.INVALID_OPTIONS, "store name"):
        steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path, store_name="../up")


def test_a_store_from_a_newer_steadyws_is_refused_and_left_alone(tmp_path: Path) -> None:
    sock = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
    sock.send({"n": 1})
    sock.close()
    path = tmp_path / "default.steadyws"
    with closing(sqlite3.connect(path)) as db:
        (format_version,) = db.execute("PRAGMA user_version").fetchone()
        db.execute(f"PRAGMA user_version = {format_version + 1}")
    before = path.read_bytes()
    with fails_with(ErrorKind.STORE_NEWER_FORMAT, "newer steadyws") as caught:
        steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (format_version + 1,)


def test_a_damaged_store_is_rebuilt_with_its_pending_messages(tmp_path: Path) -> None:
    """A page of the store file is overwritten (its `in_hand` table): the next socket moves the
    file aside, rebuilds it with the pending messages it could read, and says so first."""

    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
        ids = [sock.send({"n": n}) for n in range(2)]
        sock.close()
        path = tmp_path / "default.steadyws"
        with closing(sqlite3.connect(path)) as db:
            (page_size,) = db.execute("PRAGMA page_size").fetchone()
            (root,) = db.execute(
                "SELECT rootpage FROM sqlite_master WHERE name = 'in_hand'"
            ).fetchone()
        with path.open("r+b") as file:
            file.seek((root - 1) * page_size)
            file.write(b"\xff" * page_size)

        sock = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
        recovered = await sock.next_event(timeout=1)
        assert isinstance(recovered, SocketEvent.STORE_RECOVERED), recovered
        assert recovered.problem and recovered.recovered_messages == 2
        assert recovered.moved_to is not None and Path(recovered.moved_to).is_file()
        assert Path(recovered.moved_to).parent == tmp_path
        assert [p.id for p in sock.pending()] == ids
        sock.close()
        # Rebuilt: the next socket finds it intact.
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
        assert [p.id for p in sock.pending()] == ids
        with fails_with(ErrorKind.TIMED_OUT):
            await sock.next_event(timeout=0.2)  # no second STORE_RECOVERED
        sock.close()

    run(scenario())


def test_in_the_background_the_store_holds_no_lock(tmp_path: Path) -> None:
    """iOS ends a suspended app that holds a file lock: in the background the store file is
    closed between writes (another process can lock it), and sends still reach it."""
    path = tmp_path / "default.steadyws"

    def lockable() -> bool:
        # From another process: POSIX file locks never conflict within one process.
        probe = (
            "import sqlite3, sys; "
            "sqlite3.connect(sys.argv[1], timeout=0).execute('BEGIN EXCLUSIVE')"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=10
        )
        assert done.returncode == 0 or "database is locked" in done.stderr, done.stderr
        return done.returncode == 0

    sock = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
    try:
        assert not lockable()
        sock.set_app_state(steadyws.AppState.BACKGROUND)
        assert _eventually(lockable), "the store is still locked in the background"
        message_id = sock.send({"written": "in the background"})
        assert lockable()
        sock.set_app_state(steadyws.AppState.FOREGROUND)
        assert _eventually(lambda: not lockable()), "the store was not reopened"
    finally:
        sock.close()
    with steadyws.sync.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path) as again:
        assert [p.id for p in again.pending()] == [message_id]


def _eventually(condition: Any, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_ttl_that_ran_out_while_the_app_was_dead_fails_at_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
        expiring = sock.send({"n": 1}, ttl=0.3)
        lasting = sock.send({"n": 2})
        sock.close()
        await asyncio.sleep(0.5)
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", store_directory=tmp_path)
        assert [p.id for p in sock.pending()] == [lasting]
        failed = await next_matching(sock, lambda e: isinstance(e, SocketEvent.SEND_FAILED))
        assert isinstance(failed, SocketEvent.SEND_FAILED)
        assert failed.id == expiring and failed.reason is SendFailureKind.EXPIRED
        sock.close()

    run(scenario())


def test_with_a_store_async_for_takes_one_event_at_a_time(server: Server, tmp_path: Path) -> None:
    """Without a store `async for` takes a burst of queued messages in one native call; with one
    it takes them one by one (so at most one is in hand at a crash): `messages_in`, the count of
    messages taken from the native queue, is exactly what the loop has seen. Nothing is flagged
    `redelivered` in a run without a crash."""

    async def taken_counts(**store: Any) -> List[int]:
        async with steadyws.Socket(server.url, **store, **FAST) as sock:
            await sock.wait_open(5)
            ids = await publish(server.url, 5)
            for _ in range(250):  # all five are waiting in the native queue
                if sock.stats.messages_received - sock.stats.messages_in >= 5:
                    break
                await asyncio.sleep(0.02)
            counts: List[int] = []
            seen: List[SocketEvent.MESSAGE] = []
            async for event in sock:
                if isinstance(event, SocketEvent.MESSAGE):
                    seen.append(event)
                    counts.append(sock.stats.messages_in)
                    if len(seen) == 5:
                        break
            assert [m.id for m in seen] == ids
            assert not any(m.redelivered for m in seen)
            return counts

    async def scenario() -> None:
        first_batch = await taken_counts()
        assert first_batch[0] > 1, first_batch  # the batch was taken at once
        assert await taken_counts(store_directory=tmp_path) == [1, 2, 3, 4, 5]

    run(scenario())
