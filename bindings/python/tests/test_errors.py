"""Errors surface as Python exceptions whose messages say what is wrong and what to do."""

from __future__ import annotations

import pytest

import steadyws
from steadyws import ConnectionErrorKind, SendFailureKind, SocketEvent, SteadyError

from conftest import FAST, Server, free_port, run


def test_http_url_is_invalid_url_with_ws_suggestion() -> None:
    port = free_port()
    with pytest.raises(SteadyError.InvalidUrl) as caught:
        steadyws.Socket(f"http://127.0.0.1:{port}/ws")
    err = caught.value
    assert isinstance(err, SteadyError)
    assert f"use ws://127.0.0.1:{port}/ws" in str(err)
    # A flat error: no fields, the core's message is the exception text (not a field repr).
    assert err.args == (str(err),) and not str(err).startswith("message=")
    assert repr(err) == f"SteadyError.InvalidUrl({str(err)!r})"
    # The generated class raises the same from the raw constructor.
    with pytest.raises(SteadyError.InvalidUrl, match="wss://"):
        steadyws.SteadySocket(steadyws.SocketOptions(url="https://example.invalid/ws"))


def test_invalid_config_names_the_setting() -> None:
    with pytest.raises(SteadyError.InvalidConfig, match="backoff"):
        steadyws.Socket("ws://127.0.0.1:1/ws", backoff_initial_ms=0)
    with pytest.raises(SteadyError.InvalidConfig, match="header"):
        steadyws.Socket("ws://127.0.0.1:1/ws", headers={"bad header": "x"})
    with pytest.raises(ValueError, match="u64"):  # checked by the generated code
        steadyws.Socket("ws://127.0.0.1:1/ws", backoff_max_ms=-1)


def test_send_errors() -> None:
    sock = steadyws.Socket("ws://127.0.0.1:1/ws", outbox_max_messages=2, outbox_max_bytes=200)
    with pytest.raises(SteadyError.NotJson, match="not valid JSON"):
        sock.send_json("{oops")
    with pytest.raises(SteadyError.WrongMode, match="raw"):
        sock.send_text("plain")
    with pytest.raises(SteadyError.MessageTooLarge, match="200 bytes"):
        sock.send("x" * 500)
    with pytest.raises(ValueError):  # not JSON-serialisable: refused before the core
        sock.send(float("nan"))
    sock.send(1)
    sock.send_json('{"already": "encoded"}')
    with pytest.raises(SteadyError.OutboxFull, match="full"):
        sock.send(3)
    assert sock.stats.outbox_len == 2


def test_refused_port_reports_connection_lost_naming_host_port() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", **FAST) as sock:
            event = await sock.wait_for(SocketEvent.CONNECTION_LOST, timeout=5)
            assert isinstance(event, SocketEvent.CONNECTION_LOST)
            assert event.problem.kind == ConnectionErrorKind.REFUSED
            assert f"127.0.0.1:{port}" in event.problem.message
            assert event.problem.http_status is None and event.problem.close_code is None
            # It keeps retrying with backoff.
            retry = await sock.wait_for(SocketEvent.STATE_CHANGED, timeout=5)
            assert isinstance(retry, SocketEvent.STATE_CHANGED)
            assert isinstance(retry.state, steadyws.SocketState.RECONNECTING)
            assert sock.last_problem == event.problem

    run(scenario())


def test_refused_port_raises_connection_lost_error() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", **FAST) as sock:
            with pytest.raises(steadyws.ConnectionLostError) as caught:
                await sock.wait_open(timeout=5, fail_fast=True)
            assert caught.value.kind is ConnectionErrorKind.REFUSED
            assert f"connection refused by 127.0.0.1:{port}" in str(caught.value)
            # Without fail_fast the wait runs to its timeout, quoting the last problem.
            with pytest.raises(TimeoutError, match=f"did not open.*refused by 127.0.0.1:{port}"):
                await sock.wait_open(timeout=0.5)

    run(scenario())


def test_attempt_budget_ends_in_failed() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", max_attempts=2, **FAST) as sock:
            with pytest.raises(steadyws.SocketFailedError) as caught:
                await sock.wait_open(timeout=5)
            assert caught.value.retryable
            assert "2 attempts" in str(caught.value)
            assert isinstance(sock.state, steadyws.SocketState.FAILED)

    run(scenario())


def test_handshake_refusal_is_fatal(make_server: object) -> None:
    """A 401 (wrong token) is retried once with fresh headers, then the socket fails for good."""
    srv: Server = make_server(None, "--require-token", "sesame")  # type: ignore[operator]

    async def scenario() -> None:
        async with steadyws.Socket(srv.url, **FAST) as sock:
            problem = await sock.wait_for(SocketEvent.CONNECTION_LOST, timeout=5)
            assert isinstance(problem, SocketEvent.CONNECTION_LOST)
            assert problem.problem.kind == ConnectionErrorKind.HANDSHAKE
            assert problem.problem.http_status == 401
            with pytest.raises(steadyws.SocketFailedError) as caught:
                await sock.wait_open(timeout=5)
            assert not caught.value.retryable
        # The right token, as a header on the upgrade, opens.
        async with steadyws.Socket(
            srv.url, headers={"Authorization": "Bearer sesame"}, **FAST
        ) as sock:
            await sock.wait_open(timeout=5, fail_fast=True)

    run(scenario())


def test_ttl_expiry_raises_send_failed() -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)  # never connected
        message_id = sock.send({"n": 1}, ttl_ms=100)
        with pytest.raises(steadyws.SendFailedError) as caught:
            await sock.wait_acked(message_id, timeout=5)
        assert caught.value.id == message_id
        assert caught.value.reason is SendFailureKind.EXPIRED
        assert str(caught.value) == (
            f"message {message_id} expired: not acknowledged within its time-to-live"
        )
        await sock.aclose()

    run(scenario())


def test_wait_for_timeout() -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)  # idle: no events at all
        with pytest.raises(TimeoutError, match="ACKED"):
            await sock.wait_for(SocketEvent.ACKED, timeout=0.2)
        with pytest.raises(TypeError):
            await sock.wait_for("ACKED", timeout=0.2)  # type: ignore[arg-type]
        await sock.aclose()

    run(scenario())
