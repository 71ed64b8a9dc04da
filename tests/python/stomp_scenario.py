"""stomp.py (PyPI stomp-py) over WebSocket against roomcast's /stomp.

    python stomp_scenario.py ws://127.0.0.1:PORT

Two users connect with STOMP 1.2: both subscribe to a room whose name holds a `:` (a namespace,
escaped `\\c` in headers both ways), one sends with a receipt, the other gets the message with
its headers unescaped; a direct message reaches a `/user/queue/...` subscription; a frame
roomcast refuses gets an ERROR. Every wait is bounded (5 s). Prints one line per step, then
`scenario: ok`; exits nonzero at the first failure.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from urllib.parse import urlsplit

import stomp

WAIT = 5.0


class Listener(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.messages: queue.Queue = queue.Queue()
        self.receipts: queue.Queue = queue.Queue()
        self.errors: queue.Queue = queue.Queue()
        self.disconnected = False

    def on_message(self, frame) -> None:
        self.messages.put(frame)

    def on_receipt(self, frame) -> None:
        self.receipts.put(frame)

    def on_error(self, frame) -> None:
        self.errors.put(frame)

    def on_disconnected(self) -> None:
        self.disconnected = True


def take(q: queue.Queue, what: str):
    try:
        return q.get(timeout=WAIT)
    except queue.Empty:
        sys.exit(f"stomp scenario: no {what} within {WAIT:g} s")


def check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f"stomp scenario: {what}")


def connect(host: str, port: int, user: str) -> tuple[stomp.WSConnection, Listener]:
    conn = stomp.WSConnection([(host, port)], ws_path=f"/stomp?user={user}", heartbeats=(10000, 10000))
    listener = Listener()
    conn.set_listener("scenario", listener)
    conn.connect(wait=True, headers={"accept-version": "1.2"})
    return conn, listener


def main() -> None:
    parts = urlsplit(sys.argv[1])
    host, port = parts.hostname, parts.port
    alice, alice_in = connect(host, port, "alice")
    bob, bob_in = connect(host, port, "bob")
    print("connect: ok")

    room = "/topic/chat:42"
    bob.subscribe(room, id="room", ack="auto", headers={"receipt": "sub-1"})
    check(take(bob_in.receipts, "SUBSCRIBE receipt").headers.get("receipt-id") == "sub-1", "receipt-id")
    bob.subscribe("/user/queue/messages", id="mine")
    alice.subscribe(room, id="room", headers={"receipt": "sub-2"})
    take(alice_in.receipts, "alice's SUBSCRIBE receipt")
    print("subscribe: ok")

    alice.send(room, json.dumps({"text": "hi: there"}), content_type="application/json",
               headers={"receipt": "send-1"})
    receipt = take(alice_in.receipts, "SEND receipt")
    check(receipt.headers.get("receipt-id") == "send-1", f"receipt {receipt.headers}")
    message = take(bob_in.messages, "bob's message")
    check(message.headers.get("destination") == room, f"destination unescaped: {message.headers}")
    check(message.headers.get("subscription") == "room", f"subscription {message.headers}")
    check(message.headers.get("message-id") == receipt.headers.get("x-roomcast-id"),
          f"message-id {message.headers} against {receipt.headers}")
    check(json.loads(message.body) == {"text": "hi: there"}, f"body {message.body!r}")
    print("send, receipt, message (escaped headers): ok")

    alice.send("/user/bob/queue/messages", "psst")
    direct = take(bob_in.messages, "bob's direct message")
    check(direct.headers.get("destination") == "/user/queue/messages", f"{direct.headers}")
    check(direct.headers.get("x-roomcast-from") == "alice", f"{direct.headers}")
    check(json.loads(direct.body) == "psst", f"body {direct.body!r}")
    print("direct: ok")

    alice.send("/queue/jobs", "x")
    error = take(alice_in.errors, "ERROR")
    check("competing consumers" in error.body, f"ERROR body {error.body!r}")
    deadline = time.monotonic() + WAIT
    while not alice_in.disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    check(alice_in.disconnected, "the connection did not end after ERROR")
    print("error: ok")

    bob.disconnect(receipt="bye")
    many_frames_in_one_message(sys.argv[1])
    print("scenario: ok")


def many_frames_in_one_message(url: str) -> None:
    """Several frames in one WebSocket message each get their answer, in order."""
    import asyncio

    import websockets

    async def run() -> list[str]:
        async with websockets.connect(f"{url}/stomp?user=carol", subprotocols=["v12.stomp"]) as ws:
            await ws.send("CONNECT\naccept-version:1.2\nhost:x\n\n\0")
            connected = await asyncio.wait_for(ws.recv(), WAIT)
            check(connected.startswith("CONNECTED\n"), f"{connected!r}")
            await ws.send(
                "SUBSCRIBE\nid:s\ndestination:/topic/lobby\nreceipt:r1\n\n\0"
                "SEND\ndestination:/topic/lobby\nreceipt:r2\n\n1\0"
                "SEND\ndestination:/topic/lobby\nreceipt:r3\n\n2\0"
            )
            seen = []
            while len([f for f in seen if f.startswith("RECEIPT")]) < 3:
                frame = await asyncio.wait_for(ws.recv(), WAIT)
                seen.append(frame)
            return seen

    frames = asyncio.run(run())
    receipts = [f.split("\n")[1] for f in frames if f.startswith("RECEIPT")]
    check(receipts[:3] == ["receipt-id:r1", "receipt-id:r2", "receipt-id:r3"], f"{frames!r}")
    print("many frames in one message: ok")


if __name__ == "__main__":
    main()
