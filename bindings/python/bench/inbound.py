"""Inbound throughput into Python: small messages delivered through the steadyws bindings vs the
`websockets` library, from the same reference server, in the same run.

Both clients ask the server to replay the same N stored messages (`?last_seq=0`) and are timed
from the start of the connection to the N-th message in hand, parsed: steadyws hands over events
whose envelope the Rust core already decoded; the `websockets` client decodes each frame with
`json.loads`. Runs alternate; one JSON line reports the median rate of each and the median and spread
(min-max) of the per-run ratios.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import websockets

import steadyws

COUNT = int(os.environ.get("BENCH_MESSAGES", "20000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def start_server(binary: str) -> "tuple[subprocess.Popen[str], str]":
    server = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--history", str(COUNT + 10)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("listening on "):
        server.kill()
        raise SystemExit(f"the reference server did not start: {line!r}")
    return server, line.split()[-1]


async def publish(url: str) -> None:
    """Store COUNT small messages in the server's stream."""
    async with websockets.connect(url, max_size=None) as ws:
        for n in range(COUNT):
            await ws.send(json.dumps({"type": "msg", "id": f"bench-{n}", "data": {"n": n, "text": "hello"}}))
        acked = 0
        while acked < COUNT:
            if json.loads(await ws.recv())["type"] == "ack":
                acked += 1


async def with_websockets(url: str) -> float:
    started = time.perf_counter()
    received = 0
    async with websockets.connect(url + "?last_seq=0", max_size=None) as ws:
        while received < COUNT:
            frame = json.loads(await ws.recv())
            if frame["type"] == "msg":
                received += 1
    return COUNT / (time.perf_counter() - started)


async def with_steadyws(url: str) -> float:
    started = time.perf_counter()
    received = 0
    async with steadyws.Socket(url, resume_last_seq=0) as sock:
        async for event in sock:
            if isinstance(event, steadyws.SocketEvent.MESSAGE):
                received += 1
                if received == COUNT:
                    break
    return COUNT / (time.perf_counter() - started)


async def main(binary: str) -> None:
    server, url = start_server(binary)
    try:
        await publish(url)
        ours, theirs = [], []
        for _ in range(RUNS):
            ours.append(await with_steadyws(url))
            theirs.append(await with_websockets(url))
        # Each run's ratio pairs the two clients measured back to back; their median and spread
        # tell a change from the machine's noise.
        ratios = [o / t for o, t in zip(ours, theirs)]
        print(json.dumps({
            "bench": "python_inbound",
            "messages": COUNT,
            "runs": RUNS,
            "steadyws_msgs_per_s": round(statistics.median(ours)),
            "websockets_msgs_per_s": round(statistics.median(theirs)),
            "ratio": {
                "median": round(statistics.median(ratios), 3),
                "min": round(min(ratios), 3),
                "max": round(max(ratios), 3),
            },
            "websockets_version": websockets.__version__,
        }))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
