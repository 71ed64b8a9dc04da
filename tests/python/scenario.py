"""One roomcast scenario driven by Python's `websockets` library, to prove the protocol outside Rust.

Usage: python scenario.py ws://127.0.0.1:PORT
Exits 0 when every step holds, 1 with the failing step otherwise. Every wait is bounded.
"""
import asyncio
import json
import sys

import websockets

WAIT = 10  # seconds, for any single message


async def connect(base, user):
    ws = await websockets.connect(f"{base}/ws?user={user}", subprotocols=["roomcast.v1"], open_timeout=WAIT)
    assert ws.subprotocol == "roomcast.v1", f"subprotocol {ws.subprotocol!r}"
    welcome = await next_of(ws, "welcome")
    assert welcome["user"] == user and welcome["protocol"] == 1, welcome
    await next_of(ws, "streams")
    return ws


async def next_of(ws, kind):
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if message["type"] == kind:
            return message


async def main(base):
    alice = await connect(base, "alice")
    bob = await connect(base, "bob")

    await alice.send(json.dumps({"type": "join", "ref": "a1", "room": "lobby"}))
    reply = await next_of(alice, "reply")
    assert reply["ref"] == "a1" and reply["members"] == ["alice"], reply

    await bob.send(json.dumps({"type": "join", "ref": 1, "room": "lobby"}))
    assert (await next_of(bob, "reply"))["members"] == ["alice", "bob"]
    assert (await next_of(alice, "presence"))["joins"] == ["bob"]

    # Data is relayed as sent: unicode, nesting and numbers unchanged.
    data = {"text": "héllo ☃", "n": [1, 2.5, {"deep": True}]}
    await bob.send(json.dumps({"type": "publish", "ref": 2, "room": "lobby", "data": data}))
    published = await next_of(bob, "reply")
    message = await next_of(alice, "message")
    assert message["id"] == published["id"] and message["from"] == "bob" and message["data"] == data, message

    await alice.send(json.dumps({"type": "direct", "ref": "d", "to": "bob", "data": "psst"}))
    receipt = await next_of(alice, "reply")
    assert receipt["delivered"] is True, receipt
    direct = await next_of(bob, "direct")
    assert direct["from"] == "alice" and direct["data"] == "psst" and direct["id"] == receipt["id"], direct

    # A malformed frame is answered, not fatal.
    await alice.send('{"type": "join", "ref": 9}')
    error = await next_of(alice, "error")
    assert error["ref"] == 9 and error["code"] == "bad_frame", error

    await bob.close()
    await alice.close()
    print("python websockets scenario: ok")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1].rstrip("/")))
    except Exception as error:  # noqa: BLE001 - report any failure with its step
        print(f"python websockets scenario failed: {error!r}", file=sys.stderr)
        sys.exit(1)
