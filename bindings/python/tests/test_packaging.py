"""The installed wheel: layout, the README's quickstart, typing, clean interpreter exit."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest

import steadyws

from conftest import Server, free_port, publish

README = Path(__file__).resolve().parents[1] / "README.md"
SOURCE_TREE = Path(__file__).resolve().parents[1] / "src"


def run_python(script: Path, *args: str, timeout: float = 30) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=script.parent,
    )


def test_tests_import_the_installed_wheel() -> None:
    package = Path(steadyws.__file__).resolve().parent
    assert SOURCE_TREE not in package.parents, f"testing the source tree, not the wheel: {package}"
    assert (package / "py.typed").is_file()
    ffi = package / "_ffi"
    assert (ffi / "steadyws.py").is_file()
    assert (ffi / "libsteadyws_ffi.so").is_file()
    assert steadyws.NativeSocket.__module__ == "steadyws._ffi.steadyws"
    # Renamed or removed with the one host surface (issue 19), and before.
    for gone in (
        "SteadySocket", "SocketOptions", "ResumePosition", "AppLifecycle", "SendOutcome",
        "OpenOutcome", "SteadyError", "SocketListener", "ListenerError", "Pending",
        "InvalidUrlError", "SendTimeoutError", "ConcurrentConsumerError", "SocketClosedError",
    ):
        assert not hasattr(steadyws, gone), gone
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", steadyws.__version__)
    for name in steadyws.__all__:
        assert hasattr(steadyws, name), name


def test_readme_python_blocks_compile_and_use_names_the_package_has() -> None:
    """Every Python block of the README compiles (snippets may await at top level), and every
    `steadyws.X` / `sock.X` it uses exists, so a renamed or removed name fails here."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        compile(block, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        for name in re.findall(r"\bsteadyws\.(\w+)", block):
            assert hasattr(steadyws, name), name
        for name in re.findall(r"\bsock\.(\w+)", block):
            assert hasattr(steadyws.Socket, name) or hasattr(steadyws.sync.Socket, name), name


def test_readme_quickstart_runs(server: Server, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    quickstart = next(b for b in blocks if "asyncio.run(main(" in b)
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart)
    done = run_python(script, server.url)
    assert done.returncode == 0, done.stderr
    assert "SocketEvent.STATE_CHANGED(state=open, cause=StateCause.OPENED())" in done.stdout, (
        done.stdout
    )
    assert "received seq 1 {'text': 'hello'}" in done.stdout, done.stdout


def test_readme_sync_example_runs(server: Server, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "from steadyws.sync import Socket" in b)
    script = tmp_path / "sync_example.py"
    script.write_text(example.replace("ws://127.0.0.1:8080/ws", server.url))
    done = run_python(script)
    assert done.returncode == 0, done.stderr


def test_readme_durable_outbox_block_runs(server: Server, tmp_path: Path) -> None:
    """The durable-outbox example, run twice on one store: the first run leaves a message
    unacknowledged (no server); the second lists it from the last run and receives its own."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    script = tmp_path / "durable.py"
    script.write_text(next(b for b in blocks if "store_directory=directory" in b))
    store = str(tmp_path / "store")
    offline = f"ws://127.0.0.1:{free_port()}/ws"
    with pytest.raises(subprocess.TimeoutExpired):  # waits for its message, nobody answers
        run_python(script, offline, store, timeout=2)
    done = run_python(script, server.url, store)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("from the last run: ") and "{'text': 'kept on disk'}" in lines[0]
    assert lines[-1] == "received {'text': 'kept on disk'}", done.stdout


def test_readme_exactly_once_block(server: Server, tmp_path: Path) -> None:
    """The README's exactly-once pattern: the app stops partway, more is published while it is
    down, it starts again from its stored position: every message stored once, in order."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    block = next(b for b in blocks if "async def follow(" in b)
    namespace: Dict[str, Any] = {}
    exec(compile(block, "README.md (exactly once)", "exec"), namespace)
    open_store, follow = namespace["open_store"], namespace["follow"]
    path = str(tmp_path / "app.db")

    def stored(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    async def run_app_until(expected_at_least: int, linger: float) -> int:
        db = open_store(path)
        app = asyncio.ensure_future(follow(server.url, db))
        try:
            for _ in range(1000):
                if stored(db) >= expected_at_least or app.done():
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(linger)
            assert not app.done(), app.exception()  # a duplicate would end it (PRIMARY KEY)
            return stored(db)
        finally:
            app.cancel()  # the app stops (between two messages)
            await asyncio.gather(app, return_exceptions=True)
            db.close()

    async def scenario() -> None:
        await publish(server.url, 300)
        first = await run_app_until(1, 0)
        assert 0 < first <= 300
        await publish(server.url, 50, first=300)  # while the app is down
        second = await run_app_until(350, 0.5)
        assert second == 350
        db = open_store(path)
        rows = db.execute("SELECT seq, data FROM messages ORDER BY seq").fetchall()
        position = db.execute("SELECT last_seq FROM position").fetchone()
        db.close()
        assert [seq for seq, _ in rows] == list(range(1, 351))
        assert [json.loads(data)["n"] for _, data in rows] == list(range(350))
        assert position == (350,)
        print(f"first run stored {first}, the second the remaining {350 - first}")

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_interpreter_exits_cleanly_with_sockets_left_open(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "leave_open.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            import steadyws
            from steadyws.sync import Socket

            kept = Socket({server.url!r})          # never closed: closed at exit
            kept.connect()
            kept.wait_open(timeout=5)
            kept.send({{"bye": True}})

            async def main():
                sock = steadyws.Socket({server.url!r})   # never closed either
                sock.connect()
                await sock.wait_open(timeout=5)
                async for event in sock:                  # a batch taken, the rest left
                    break
                reader = asyncio.ensure_future(sock.next_event())
                waiter = asyncio.ensure_future(sock.send_and_wait({{"n": 1}}))
                watcher = asyncio.ensure_future(sock.watch().__anext__())
                await asyncio.sleep(0.05)               # reads and waits left in flight

            asyncio.run(main())
            print("done")
            """
        )
    )
    done = run_python(script, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert "Exception ignored" not in done.stderr and "Fatal" not in done.stderr, done.stderr


def test_public_api_type_checks(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    sample = tmp_path / "typed_usage.py"
    sample.write_text(
        textwrap.dedent(
            """
            import asyncio
            from pathlib import Path
            from typing import Any, List, Optional, Set

            import steadyws
            from steadyws import (
                AppState,
                BackgroundMode,
                ErrorKind,
                NetworkStatus,
                PendingMessage,
                ResumeCursor,
                SendFailureKind,
                SocketEvent,
                SocketState,
                SocketStatus,
                StateCause,
            )


            async def main(url: str) -> List[Any]:
                received: List[Any] = []
                try:
                    async with steadyws.Socket(
                        url,
                        backoff_initial_ms=100,
                        inbox_max_events=500,
                        background=BackgroundMode.DISCONNECT_AFTER_GRACE,
                    ) as sock:
                        await sock.wait_open(timeout=5.0)
                        message_id: str = sock.send({"text": "hi"}, ttl=30.0)
                        await sock.wait_acked(message_id, timeout=5.0)
                        other: str = await sock.send_and_wait([1, 2], ttl=None, timeout=None)
                        sock.set_app_state(AppState.FOREGROUND)
                        sock.set_network(NetworkStatus.AVAILABLE(interface="wifi"))
                        state: SocketState = sock.state
                        print(str(state), sock.is_open, other)
                        async for status in sock.watch():
                            current: SocketStatus = status
                            print(current.state, current.outbox_len)
                            break
                        async for event in sock:
                            if isinstance(event, SocketEvent.MESSAGE):
                                seq: Optional[int] = event.seq
                                cursor: ResumeCursor = event.cursor
                                value = steadyws.decode(event.data)
                                received.append((seq, cursor.last_seq, value))
                                break
                            if isinstance(event, SocketEvent.STATE_CHANGED):
                                cause: StateCause = event.cause
                                if isinstance(cause, StateCause.CONNECTION_DROPPED):
                                    print(cause.problem.kind.name)
                        sock.close()
                except steadyws.SteadyWsError as err:
                    kind: ErrorKind = err.kind
                    failure: Optional[SendFailureKind] = err.send_failure
                    concerned: Optional[str] = err.message_id
                    if kind is ErrorKind.SEND_FAILED:
                        print(failure is SendFailureKind.EXPIRED, concerned, str(err))
                return received


            def states_seen(states: List[SocketState]) -> Set[SocketState]:
                return set(states)  # SocketState is hashable


            async def durable(url: str, directory: Path) -> None:
                try:
                    sock = steadyws.Socket(url, store_directory=directory, store_name="chat")
                except steadyws.SteadyWsError as err:
                    if err.kind is ErrorKind.STORE_IN_USE:
                        print("another instance runs:", err)
                    return
                pending: List[PendingMessage] = sock.pending()
                for message in pending:
                    created_ms: int = message.created_at_ms
                    print(message.id, message.json, created_ms)
                cancelled: bool = sock.cancel(pending[0].id) if pending else False
                print(cancelled)
                async for event in sock:
                    if isinstance(event, SocketEvent.MESSAGE):
                        redelivered: bool = event.redelivered
                        print(redelivered)
                    elif isinstance(event, SocketEvent.STORE_RECOVERED):
                        moved_to: Optional[str] = event.moved_to
                        print(event.problem, event.recovered_messages, moved_to)
                    elif isinstance(event, SocketEvent.SEND_FAILED):
                        print(event.reason is SendFailureKind.CANCELLED)
                sock.close()


            def script(url: str) -> None:
                with steadyws.sync.Socket(url) as sock:
                    sock.wait_open(timeout=5.0)
                    message_id: str = sock.send_and_wait({"n": 1}, ttl=2.0, timeout=1.0)
                    left: List[PendingMessage] = sock.pending()
                    print(sock.cancel(left[0].id) if left else None)
                    for event in sock.events():
                        print(event, message_id, sock.stats.messages_acked)
                        break


            asyncio.run(main("ws://127.0.0.1:1/ws"))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy_cache"), str(sample)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_error_type_stub_matches_the_generated_class() -> None:
    """_error_types.pyi declares the variant and fields type checkers see; they must be the real
    ones."""
    stub = (Path(steadyws.__file__).parent / "_error_types.pyi").read_text()
    declared = set(re.findall(r"^    class (\w+)\(NativeError\):", stub, re.M))
    generated = {
        name
        for name, value in vars(steadyws.NativeError).items()
        if isinstance(value, type) and issubclass(value, steadyws.NativeError)
    }
    assert declared == generated == {"Failure"}
    fields = re.findall(r"^        (\w+): ", stub, re.M)
    failure = steadyws.NativeError.Failure(steadyws.ErrorKind.CLOSED, "detail", None, None)
    assert fields == list(vars(failure)) == ["kind", "detail", "message_id", "send_failure"]
