"""An app with a durable store, run as a child process by tests/test_store.py, which SIGKILLs it
at random moments and starts it again on the same store.

    store_child.py send URL STORE_DIR FIRST COUNT
        sends {"n": FIRST} .. {"n": COUNT-1}, printing "sent <id> <n>" once each send returned
        (the message is on disk then); then waits until pending() is empty, prints "all acked"
    store_child.py read URL STORE_DIR LAST_N PROCESSING_S
        prints "open" once connected, then takes messages one at a time, printing
        "got <id> <redelivered 0|1>" for each and spending PROCESSING_S seconds on it; ends
        after the message {"n": LAST_N}
    store_child.py hold URL STORE_DIR
        opens the store, prints "holding", and keeps it open for 60 s

Every line is flushed at once, so what the test reads after a kill is what the app had done.
"""

from __future__ import annotations

import asyncio
import sys
import time

import steadyws

FAST = dict(
    backoff_initial_ms=100,
    backoff_max_ms=500,
    heartbeat_interval_ms=500,
    heartbeat_timeout_ms=500,
    connect_timeout_ms=2000,
)


def say(line: str) -> None:
    print(line, flush=True)


async def send(url: str, store: str, first: int, count: int) -> None:
    async with steadyws.Socket(url, store_directory=store, **FAST) as sock:
        for n in range(first, count):
            say(f"sent {sock.send({'n': n})} {n}")
            await asyncio.sleep(0.002)  # an app producing messages over time
        deadline = time.monotonic() + 20
        while sock.pending():
            if time.monotonic() > deadline:
                sys.exit(f"still pending after 20 s: {sock.pending()}")
            await asyncio.sleep(0.02)
    say("all acked")


async def read(url: str, store: str, last_n: int, processing: float) -> None:
    async with steadyws.Socket(url, store_directory=store, **FAST) as sock:
        await sock.wait_open(10)
        say("open")
        async for event in sock:
            if isinstance(event, steadyws.SocketEvent.MESSAGE):
                say(f"got {event.id} {int(event.redelivered)}")
                if steadyws.decode(event.data)["n"] == last_n:
                    return
                await asyncio.sleep(processing)  # a kill now finds it in hand


async def hold(url: str, store: str) -> None:
    async with steadyws.Socket(url, store_directory=store):
        say("holding")
        await asyncio.sleep(60)


if __name__ == "__main__":
    mode, url, store, *numbers = sys.argv[1:]
    if mode == "send":
        main = send(url, store, int(numbers[0]), int(numbers[1]))
    elif mode == "read":
        main = read(url, store, int(numbers[0]), float(numbers[1]))
    else:
        main = hold(url, store)
    asyncio.run(asyncio.wait_for(main, 60))
