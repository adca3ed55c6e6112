"""The installed wheel: layout, the README's quickstart, typing, clean interpreter exit."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import steadyws

from conftest import Server

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
    assert steadyws.SteadySocket.__module__ == "steadyws._ffi.steadyws"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", steadyws.__version__)
    for name in steadyws.__all__:
        assert hasattr(steadyws, name), name


def test_readme_quickstart_runs(server: Server, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    quickstart = next(b for b in blocks if "asyncio.run(main(" in b)
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart)
    done = run_python(script, server.url)
    assert done.returncode == 0, done.stderr
    assert "SocketEvent.STATE_CHANGED(state=open)" in done.stdout, done.stdout
    assert "received seq 1 {'text': 'hello'}" in done.stdout, done.stdout


def test_readme_sync_example_runs(server: Server, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "from steadyws.sync import Socket" in b)
    script = tmp_path / "sync_example.py"
    script.write_text(example.replace("ws://127.0.0.1:8080/ws", server.url))
    done = run_python(script)
    assert done.returncode == 0, done.stderr


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
                reader = asyncio.ensure_future(sock.next_event())  # a read left in flight
                await asyncio.sleep(0.05)

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
            from typing import Any, List, Optional, Set

            import steadyws
            from steadyws import (
                AppLifecycle,
                BackgroundMode,
                ConnectionErrorKind,
                SendFailureKind,
                SocketEvent,
                SocketState,
                SteadyError,
            )


            async def main(url: str) -> List[Any]:
                received: List[Any] = []
                try:
                    async with steadyws.Socket(
                        url,
                        backoff_initial_ms=100,
                        background=BackgroundMode.DISCONNECT_AFTER_GRACE,
                    ) as sock:
                        await sock.wait_open(timeout=5.0, fail_fast=True)
                        message_id: str = sock.send({"text": "hi"})
                        await sock.wait_acked(message_id, timeout=5.0)
                        sock.set_app_state(AppLifecycle.FOREGROUND)
                        state: SocketState = sock.state
                        print(str(state), sock.is_open)
                        async for event in sock.events():
                            if isinstance(event, SocketEvent.MESSAGE):
                                seq: Optional[int] = event.seq
                                received.append((seq, steadyws.decode(event.data)))
                                break
                except SteadyError.InvalidUrl as err:
                    print(str(err))
                except steadyws.ConnectionLostError as err:
                    kind: ConnectionErrorKind = err.kind
                    print(kind is ConnectionErrorKind.REFUSED, err.problem.kind.name)
                except steadyws.SendFailedError as err:
                    reason: SendFailureKind = err.reason
                    print(reason is SendFailureKind.EXPIRED, err.detail)
                return received


            def states_seen(states: List[SocketState]) -> Set[SocketState]:
                return set(states)  # SocketState is hashable


            def script(url: str) -> None:
                with steadyws.sync.Socket(url) as sock:
                    sock.wait_open(timeout=5.0)
                    event = sock.wait_for(SocketEvent.ACKED, timeout=1.0)
                    print(event, sock.stats.messages_acked)


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


def test_error_type_stub_matches_the_generated_classes() -> None:
    """_error_types.pyi declares the variants type checkers see; they must be the real ones."""
    stub = (Path(steadyws.__file__).parent / "_error_types.pyi").read_text()

    def declared(base: str) -> set[str]:
        return set(re.findall(rf"^    class (\w+)\({base}\):", stub, re.M))

    def generated(cls: type) -> set[str]:
        return {
            name
            for name, value in vars(cls).items()
            if isinstance(value, type) and issubclass(value, cls) and value is not cls
        }

    assert declared("SteadyError") == generated(steadyws.SteadyError)
    assert declared("ListenerError") == generated(steadyws.ListenerError)
