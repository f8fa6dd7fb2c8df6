"""Subscription fan-out load for `cargo bench --bench pool -- fanout N`.

usage: fanout.py WS_URL N

Opens N WebSocket connections (graphql-transport-ws), subscribes each to `stakeFound`, prints
`ready` once all are acknowledged, then waits for the first event on each and prints
`done <count> <latest arrival, Unix microseconds>`. A load generator, not a test client: the
tests use the gql library.
"""

import asyncio
import json
import sys
import time

import websockets

URL, N = sys.argv[1], int(sys.argv[2])
QUERY = "subscription { stakeFound { cursor } }"


async def client(ready, go, arrivals):
    async with websockets.connect(URL, subprotocols=["graphql-transport-ws"], max_queue=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        while json.loads(await ws.recv())["type"] != "connection_ack":
            pass
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
        ready.release()
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "next":
                arrivals.append(time.time())
                return


async def main():
    ready = asyncio.Semaphore(0)
    arrivals = []
    tasks = []
    for i in range(N):
        tasks.append(asyncio.create_task(client(ready, None, arrivals)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    for _ in range(N):
        await ready.acquire()
    print("ready", flush=True)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    print(f"done {len(arrivals)} {int(max(arrivals) * 1e6)}", flush=True)


asyncio.run(main())
