"""A GraphQL subscription client for the integration tests, built on the `gql` library.

usage: subscribe.py URL PROTOCOL SUBSCRIPTIONS_JSON [INIT_PAYLOAD_JSON]

PROTOCOL is `graphql-transport-ws` or the legacy `graphql-ws`. SUBSCRIPTIONS_JSON is a list of
{"label": ..., "query": ..., "variables": {...}, "execute": false}, all run at once on one
connection ("execute": true runs a query or mutation once instead of subscribing). Every
result is printed as one JSON line: {"label": ..., "data": ...} or {"label": ..., "error": ...};
{"label": ..., "done": true} when a subscription ends. Runs until every subscription ends or
the process is killed.
"""

import asyncio
import json
import sys

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def run_one(session, sub):
    try:
        if sub.get("execute"):
            # A query or mutation over the same connection, once.
            result = await session.execute(
                gql(sub["query"]), variable_values=sub.get("variables") or {}
            )
            emit({"label": sub["label"], "data": result})
            emit({"label": sub["label"], "done": True})
            return
        async for result in session.subscribe(
            gql(sub["query"]), variable_values=sub.get("variables") or {}
        ):
            emit({"label": sub["label"], "data": result})
    except Exception as e:  # the test reads the error text
        emit({"label": sub["label"], "error": str(e)})
    emit({"label": sub["label"], "done": True})


async def main():
    url, protocol, subs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    init_payload = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    transport = WebsocketsTransport(
        url=url,
        subprotocols=[protocol],
        init_payload=init_payload,
        connect_timeout=30,
        ack_timeout=30,
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        emit({"connected": protocol})
        await asyncio.gather(*(run_one(session, s) for s in subs))


asyncio.run(main())
