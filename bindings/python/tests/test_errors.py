"""One error type, SteadyWsError, whose `kind` is the FFI's ErrorKind and whose message says what
is wrong and what to do; connection trouble rides on the state changes as their cause."""

from __future__ import annotations

import math
from typing import List

import pytest

import steadyws
from steadyws import (
    ConnectionErrorKind,
    ErrorKind,
    MessageData,
    NativeError,
    SendFailureKind,
    SocketEvent,
    SocketState,
    StateCause,
)

from conftest import FAST, Server, fails_with, free_port, next_matching, next_state, run


def test_the_layer_has_one_error_type_and_reexports_the_native_kinds() -> None:
    layer_errors = [
        name
        for name in steadyws.__all__
        if isinstance(getattr(steadyws, name), type)
        and issubclass(getattr(steadyws, name), BaseException)
        and not getattr(steadyws, name).__module__.startswith("steadyws._ffi")
    ]
    assert layer_errors == ["SteadyWsError"]
    assert steadyws.ErrorKind is steadyws._ffi.steadyws.ErrorKind  # as is, not a copy
    err = steadyws.SteadyWsError(ErrorKind.TIMED_OUT, "what happened", "an-id")
    assert (str(err), err.kind, err.message_id, err.send_failure) == (
        "what happened",
        ErrorKind.TIMED_OUT,
        "an-id",
        None,
    )
    assert repr(err) == "SteadyWsError(ErrorKind.TIMED_OUT, 'what happened', message_id='an-id')"


def test_a_native_error_becomes_the_layer_error_field_for_field() -> None:
    url = "https://example.invalid/ws"
    with pytest.raises(NativeError.Failure) as native:
        steadyws.NativeSocket(steadyws.SocketConfig(url=url))
    with fails_with(ErrorKind.INVALID_URL) as ours:
        steadyws.Socket(url)
    assert native.value.kind is ErrorKind.INVALID_URL
    assert str(ours.value) == native.value.detail
    assert ours.value.message_id is None and ours.value.send_failure is None
    assert ours.value.__cause__ is None and ours.value.__suppress_context__


def test_http_url_is_invalid_url_with_ws_suggestion() -> None:
    port = free_port()
    with fails_with(ErrorKind.INVALID_URL, f"use ws://127.0.0.1:{port}/ws"):
        steadyws.Socket(f"http://127.0.0.1:{port}/ws")


def test_invalid_settings_name_the_setting() -> None:
    url = "ws://127.0.0.1:1/ws"
    with fails_with(ErrorKind.INVALID_OPTIONS, "backoff"):
        steadyws.Socket(url, backoff_initial_ms=0)
    with fails_with(ErrorKind.INVALID_OPTIONS, "header"):
        steadyws.Socket(url, headers={"bad header": "x"})
    with fails_with(ErrorKind.INVALID_OPTIONS, "u64"):  # checked by the generated code
        steadyws.Socket(url, backoff_max_ms=-1)
    with fails_with(ErrorKind.INVALID_OPTIONS, "no_such_option"):
        steadyws.Socket(url, no_such_option=1)
    with fails_with(ErrorKind.INVALID_OPTIONS, "must be str"):
        steadyws.Socket(url, store_directory=3)


def test_send_refusals_have_their_kinds() -> None:
    sock = steadyws.Socket("ws://127.0.0.1:1/ws", outbox_max_messages=2, outbox_max_bytes=200)
    with fails_with(ErrorKind.NOT_JSON, "not valid JSON"):
        sock.send_json("{oops")
    with fails_with(ErrorKind.WRONG_MODE, "raw"):
        sock.send_text("plain")
    with fails_with(ErrorKind.MESSAGE_TOO_LARGE, "200 bytes"):
        sock.send("x" * 500)
    with fails_with(ErrorKind.NOT_JSON, "float"):  # refused before the core
        sock.send(math.nan)
    with fails_with(ErrorKind.NOT_JSON, "object"):
        sock.send(object())
    with fails_with(ErrorKind.INVALID_OPTIONS, "ttl must be a number of seconds"):
        sock.send(1, ttl="soon")  # type: ignore[arg-type]
    sock.send(1)
    sock.send_json('{"already": "encoded"}')
    with fails_with(ErrorKind.OUTBOX_FULL, "full"):
        sock.send(3)
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
            # The next attempt is due by schedule.
            again = await next_state(sock)
            assert again.state == SocketState.CONNECTING(attempt=2)
            assert again.cause == StateCause.RETRY_DUE()

    run(scenario())


def test_wait_open_times_out_and_the_socket_keeps_trying() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", **FAST) as sock:
            with fails_with(ErrorKind.TIMED_OUT, "keeps connecting") as caught:
                await sock.wait_open(timeout=0.3)
            assert caught.value.message_id is None
            assert not isinstance(sock.state, (SocketState.OPEN, SocketState.FAILED))

    run(scenario())


def test_attempt_budget_ends_in_connection_failed() -> None:
    port = free_port()

    async def scenario() -> None:
        async with steadyws.Socket(f"ws://127.0.0.1:{port}/ws", max_attempts=2, **FAST) as sock:
            with fails_with(ErrorKind.CONNECTION_FAILED, "2 attempts"):
                await sock.wait_open(timeout=5)
            assert isinstance(sock.state, SocketState.FAILED) and sock.state.retryable
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
            with fails_with(ErrorKind.CONNECTION_FAILED):
                await sock.wait_open(timeout=5)

    run(scenario())


def test_handshake_refusal_is_fatal(make_server: object) -> None:
    """A 401 (wrong token) is retried once with fresh headers, then the socket fails for good."""
    srv: Server = make_server(None, "--require-token", "sesame")  # type: ignore[operator]

    async def scenario() -> None:
        async with steadyws.Socket(srv.url, **FAST) as sock:
            with fails_with(ErrorKind.CONNECTION_FAILED):
                await sock.wait_open(timeout=5)
            assert isinstance(sock.state, SocketState.FAILED) and not sock.state.retryable
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


def test_ttl_expiry_fails_with_send_failed_and_the_event_carries_the_data() -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)  # never connected
        message_id = sock.send({"n": 1}, ttl=0.1)
        with fails_with(ErrorKind.SEND_FAILED) as caught:
            await sock.wait_acked(message_id, timeout=5)
        err = caught.value
        assert err.message_id == message_id and err.send_failure is SendFailureKind.EXPIRED
        assert str(err) == (
            f"message {message_id} will not be acknowledged: not acknowledged within its "
            "time-to-live"
        )
        # The outcome is remembered, so it answers again; the event (with the payload) is still
        # queued.
        with fails_with(ErrorKind.SEND_FAILED):
            await sock.wait_acked(message_id, timeout=1)
        event = await next_matching(sock, lambda e: isinstance(e, SocketEvent.SEND_FAILED))
        assert isinstance(event, SocketEvent.SEND_FAILED)
        assert event.id == message_id and event.reason is SendFailureKind.EXPIRED
        assert event.data == MessageData.JSON(json='{"n":1}')
        sock.close()

    run(scenario())


def test_unknown_id_timeouts_and_bad_durations() -> None:
    async def scenario() -> None:
        sock = steadyws.Socket("ws://127.0.0.1:1/ws", **FAST)  # idle: no events at all
        with fails_with(ErrorKind.UNKNOWN_MESSAGE, "check the id") as caught:
            await sock.wait_acked("not-an-id-of-this-socket", timeout=1)
        assert caught.value.message_id == "not-an-id-of-this-socket"
        with fails_with(ErrorKind.TIMED_OUT, "no event within 0.2 s"):
            await sock.next_event(timeout=0.2)
        with fails_with(ErrorKind.INVALID_OPTIONS, "timeout must be a number of seconds"):
            await sock.wait_open(timeout=math.nan)
        sock.close()

    run(scenario())
