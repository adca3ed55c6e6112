"""Errors surface as exceptions derived from SteadyWsError, whose messages say what is wrong and
what to do; connection trouble rides on the state changes as their cause."""

from __future__ import annotations

import math
from typing import List

import pytest

import steadyws
from steadyws import (
    ConnectionErrorKind,
    MessageData,
    SendFailureKind,
    SocketEvent,
    SocketState,
    StateCause,
    SteadyError,
)

from conftest import FAST, Server, free_port, next_matching, next_state, run


def test_every_layer_exception_derives_from_the_base() -> None:
    for name in steadyws.__all__:
        value = getattr(steadyws, name)
        if isinstance(value, type) and issubclass(value, BaseException) and name.endswith("Error"):
            if value.__module__.startswith("steadyws._ffi"):
                continue  # the generated classes (SteadyError, InternalError)
            assert issubclass(value, steadyws.SteadyWsError), name


def test_http_url_is_invalid_url_with_ws_suggestion() -> None:
    port = free_port()
    with pytest.raises(steadyws.InvalidUrlError) as caught:
        steadyws.Socket(f"http://127.0.0.1:{port}/ws")
    err = caught.value
    assert isinstance(err, steadyws.SteadyWsError) and isinstance(err, ValueError)
    assert f"use ws://127.0.0.1:{port}/ws" in str(err)
    assert isinstance(err.__cause__, SteadyError.InvalidUrl)  # the native error behind it
    # The generated class raises the native error from the raw constructor.
    with pytest.raises(SteadyError.InvalidUrl, match="wss://"):
        steadyws.NativeSocket(steadyws.SocketOptions(url="https://example.invalid/ws"))


def test_invalid_config_names_the_setting() -> None:
    with pytest.raises(steadyws.InvalidConfigError, match="backoff"):
        steadyws.Socket("ws://127.0.0.1:1/ws", backoff_initial_ms=0)
    with pytest.raises(steadyws.InvalidConfigError, match="header"):
        steadyws.Socket("ws://127.0.0.1:1/ws", headers={"bad header": "x"})
    with pytest.raises(steadyws.InvalidConfigError, match="u64"):  # checked by generated code
        steadyws.Socket("ws://127.0.0.1:1/ws", backoff_max_ms=-1)
    with pytest.raises(steadyws.InvalidConfigError, match="no_such_option"):
        steadyws.Socket("ws://127.0.0.1:1/ws", no_such_option=1)


def test_send_errors() -> None:
    sock = steadyws.Socket("ws://127.0.0.1:1/ws", outbox_max_messages=2, outbox_max_bytes=200)
    with pytest.raises(steadyws.NotJsonError, match="not valid JSON"):
        sock.send_json("{oops")
    with pytest.raises(steadyws.WrongModeError, match="raw"):
        sock.send_text("plain")
    with pytest.raises(steadyws.MessageTooLargeError, match="200 bytes"):
        sock.send("x" * 500)
    with pytest.raises(steadyws.NotJsonError, match="float"):  # refused before the core
        sock.send(math.nan)
    with pytest.raises(steadyws.NotJsonError, match="object"):
        sock.send(object())
    sock.send(1)
    sock.send_json('{"already": "encoded"}')
    with pytest.raises(steadyws.OutboxFullError, match="full") as caught:
        sock.send(3)
    assert isinstance(caught.value, steadyws.SteadyWsError)
    assert isinstance(caught.value.__cause__, SteadyError.OutboxFull)
    assert sock.stats.outbox_len == 2
    sock.close()


def test_refused_port_is_the_cause_of_reconnecting() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", **FAST) as sock:
            first = await next_state(sock)
            assert first.state == SocketState.CONNECTING(attempt=1)
            assert first.cause == StateCause.APP()
            retry = await next_state(sock)
            assert isinstance(retry.state, SocketState.RECONNECTING)
            assert isinstance(retry.cause, StateCause.ATTEMPT_FAILED)
            problem = retry.cause.problem
            assert problem.kind == ConnectionErrorKind.REFUSED
            assert f"127.0.0.1:{port}" in problem.message
            assert problem.http_status is None and problem.close_code is None
            assert sock.last_problem == problem
            # The next attempt is due by schedule.
            again = await next_state(sock)
            assert again.state == SocketState.CONNECTING(attempt=2)
            assert again.cause == StateCause.RETRY_DUE()

    run(scenario())


def test_wait_open_times_out_naming_state_and_problem() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", **FAST) as sock:
            # Nothing read yet: the timeout names the state only.
            with pytest.raises(steadyws.OpenTimeoutError) as caught:
                await sock.wait_open(timeout=0.3)
            assert isinstance(caught.value, TimeoutError)
            assert caught.value.timeout == 0.3
            assert "did not open within 0.3 s" in str(caught.value)
            assert not isinstance(caught.value.state, SocketState.OPEN)
            # Once the consumer has read a failed attempt, the timeout quotes its problem.
            await next_matching(
                sock,
                lambda e: isinstance(e, SocketEvent.STATE_CHANGED)
                and isinstance(e.cause, StateCause.ATTEMPT_FAILED),
            )
            with pytest.raises(steadyws.OpenTimeoutError) as caught:
                await sock.wait_open(timeout=0.3)
            last = caught.value.last_problem
            assert last is not None and last.kind is ConnectionErrorKind.REFUSED
            assert f"refused by 127.0.0.1:{port}" in str(caught.value)

    run(scenario())


def test_attempt_budget_ends_in_failed() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", max_attempts=2, **FAST) as sock:
            with pytest.raises(steadyws.ConnectionFailedError) as caught:
                await sock.wait_open(timeout=5)
            assert caught.value.retryable
            assert "2 attempts" in str(caught.value) and caught.value.reason == str(caught.value)
            assert isinstance(sock.state, SocketState.FAILED)
            # The stream still has every state change, the last one with its cause.
            seen: List[SocketEvent] = []
            failed = await next_matching(
                sock,
                lambda e: isinstance(e, SocketEvent.STATE_CHANGED)
                and isinstance(e.state, SocketState.FAILED),
                seen=seen,
            )
            assert isinstance(failed, SocketEvent.STATE_CHANGED)
            assert isinstance(failed.cause, StateCause.ATTEMPT_FAILED)
            assert failed.cause.problem.kind is ConnectionErrorKind.REFUSED
            # Waiting again on a failed socket answers at once.
            with pytest.raises(steadyws.ConnectionFailedError):
                await sock.wait_open(timeout=5)

    run(scenario())


def test_handshake_refusal_is_fatal(make_server: object) -> None:
    """A 401 (wrong token) is retried once with fresh headers, then the socket fails for good."""
    srv: Server = make_server(None, "--require-token", "sesame")  # type: ignore[operator]

    async def scenario() -> None:
        async with steadyws.Socket(srv.url, **FAST) as sock:
            with pytest.raises(steadyws.ConnectionFailedError) as caught:
                await sock.wait_open(timeout=5)
            assert not caught.value.retryable
            failed = await next_matching(
                sock,
                lambda e: isinstance(e, SocketEvent.STATE_CHANGED)
                and isinstance(e.state, SocketState.FAILED),
            )
            assert isinstance(failed, SocketEvent.STATE_CHANGED)
            assert isinstance(failed.cause, StateCause.ATTEMPT_FAILED)
            assert failed.cause.problem.kind == ConnectionErrorKind.HANDSHAKE
            assert failed.cause.problem.http_status == 401
        # The right token, as a header on the upgrade, opens.
        async with steadyws.Socket(
            srv.url, headers={"Authorization": "Bearer sesame"}, **FAST
        ) as sock:
            await sock.wait_open(timeout=5)

    run(scenario())


def test_ttl_expiry_raises_send_failed_and_the_event_carries_the_data() -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)  # never connected
        message_id = sock.send({"n": 1}, ttl_ms=100)
        with pytest.raises(steadyws.SendFailedError) as caught:
            await sock.wait_acked(message_id, timeout=5)
        err = caught.value
        assert err.id == message_id and err.reason is SendFailureKind.EXPIRED and err.retryable
        assert str(err) == f"message {message_id} expired: not acknowledged within its time-to-live"
        # The remembered outcome answers again; the event (with the payload) is still queued.
        with pytest.raises(steadyws.SendFailedError):
            await sock.wait_acked(message_id, timeout=1)
        event = await next_matching(sock, lambda e: isinstance(e, SocketEvent.SEND_FAILED))
        assert isinstance(event, SocketEvent.SEND_FAILED)
        assert event.id == message_id and event.reason is SendFailureKind.EXPIRED
        assert event.data == MessageData.JSON(json='{"n":1}')
        await sock.aclose()

    run(scenario())


def test_wait_acked_unknown_id_and_next_event_timeout() -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)  # idle: no events at all
        with pytest.raises(steadyws.UnknownMessageError) as caught:
            await sock.wait_acked("not-an-id-of-this-socket", timeout=1)
        assert caught.value.id == "not-an-id-of-this-socket"
        with pytest.raises(steadyws.WaitTimeoutError, match="no event within 0.2 s"):
            await sock.next_event(timeout=0.2)
        with pytest.raises(steadyws.InvalidConfigError, match="timeout"):
            await sock.wait_open(timeout=math.nan)
        await sock.aclose()

    run(scenario())
