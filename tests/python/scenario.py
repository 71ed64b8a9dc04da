"""One roomcast scenario driven by Python clients, to prove the protocol outside Rust: the
`websockets` library on `/ws`, then `httpx` on `/events` (SSE, read by the small WHATWG parser
below) and `/poll` (long-poll), on the same port.

Usage: python scenario.py ws://127.0.0.1:PORT   (the HTTP endpoints are at http://127.0.0.1:PORT)
Exits 0 when every step holds, 1 with the failing step otherwise. Every wait is bounded.
"""
import asyncio
import json
import re
import sys
import time
import traceback

import httpx
import websockets

WAIT = 10  # seconds, for any single message, read or response
TOTAL = 20  # seconds, for the whole scenario


class Failed(Exception):
    """A step that did not hold."""


def check(condition, what):
    if not condition:
        raise Failed(what)


async def connect(base, user):
    ws = await websockets.connect(f"{base}/ws?user={user}", subprotocols=["roomcast.v1"], open_timeout=WAIT)
    assert ws.subprotocol == "roomcast.v1", f"subprotocol {ws.subprotocol!r}"
    welcome = await next_of(ws, "welcome")
    assert welcome["user"] == user and welcome["protocol"] == 1, welcome
    await next_of(ws, "streams")
    return ws


async def next_of(ws, kind):
    while True:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        except asyncio.TimeoutError:
            raise Failed(f"no WebSocket {kind!r} within {WAIT} s") from None
        if message["type"] == kind:
            return message


async def websocket_part(base):
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


# --- SSE: a WHATWG "Server-sent events" parser over the response's bytes --------------------
#
# Not httpx's `aiter_lines()`: it splits like `str.splitlines()`, also on U+2028, U+0085 and
# other characters that SSE does not treat as line ends (only CRLF, LF and CR are).


class Event:
    def __init__(self, kind, data, last_id, has_id, retry):
        self.kind = kind  # the event type: `event:`, else "message"
        self.data = data
        self.id = last_id  # the last event ID when it was dispatched
        self.has_id = has_id  # whether its own block had an `id` field
        self.retry = retry  # the reconnection time (ms) set by then, or None

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return f"Event({self.kind!r}, id={self.id!r}, data={self.data!r})"


class SseParser:
    LINE_END = re.compile(rb"[\r\n]")
    BOM = b"\xef\xbb\xbf"

    def __init__(self):
        self.pending = b""  # bytes of an unfinished line
        self.started = False  # the optional leading BOM is dealt with
        self.after_cr = False  # the last line ended with CR: a LF next is part of that line end
        self.kind = ""
        self.data = []
        self.last_id = ""
        self.has_id = False
        self.retry = None

    def feed(self, chunk):
        """The events dispatched by these bytes, in order."""
        buffer = self.pending + chunk
        if not self.started:
            if len(buffer) < len(self.BOM) and self.BOM.startswith(buffer):
                self.pending = buffer
                return []
            if buffer.startswith(self.BOM):
                buffer = buffer[len(self.BOM):]
            self.started = True
        events, pos = [], 0
        while pos < len(buffer):
            if self.after_cr:
                self.after_cr = False
                if buffer[pos] == 0x0A:
                    pos += 1
                    continue
            end = self.LINE_END.search(buffer, pos)
            if end is None:
                break
            # Line ends are ASCII, so a line's bytes are whole UTF-8; a bad byte is a server bug.
            event = self.line(buffer[pos:end.start()].decode("utf-8"))
            if event is not None:
                events.append(event)
            self.after_cr = buffer[end.start()] == 0x0D
            pos = end.end()
        self.pending = buffer[pos:]
        return events

    def line(self, line):
        if line == "":
            return self.dispatch()
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self.kind = value
        elif field == "data":
            self.data.append(value)
        elif field == "id":
            if "\0" not in value:
                self.last_id = value
                self.has_id = True
        elif field == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
        return None  # other fields are ignored

    def dispatch(self):
        # The last event ID survives a block without data; the type and data do not.
        event = None
        if self.data:
            event = Event(self.kind or "message", "\n".join(self.data), self.last_id, self.has_id, self.retry)
        self.kind, self.data, self.has_id = "", [], False
        return event


class Sse:
    """One `/events` stream read with httpx streaming; every read bounded by WAIT."""

    def __init__(self, http, params, headers=None):
        self.request = http.stream("GET", "/events", params=params, headers=headers or {})
        self.parser = SseParser()
        self.ready = []
        self.seen = []  # every event, in order

    async def __aenter__(self):
        self.response = await asyncio.wait_for(self.request.__aenter__(), WAIT)
        status, kind = self.response.status_code, self.response.headers.get("content-type", "")
        if status != 200:
            await self.response.aread()
            raise Failed(f"/events answered {status}: {self.response.text}")
        check(kind.startswith("text/event-stream"), f"/events content-type {kind!r}")
        self.chunks = self.response.aiter_bytes()
        return self

    async def __aexit__(self, *exc):
        await self.chunks.aclose()
        return await self.request.__aexit__(*exc)

    async def next(self):
        while not self.ready:
            try:
                chunk = await asyncio.wait_for(anext(self.chunks), WAIT)
            except StopAsyncIteration:
                raise Failed(f"the SSE stream ended; events so far: {self.seen}") from None
            except asyncio.TimeoutError:
                raise Failed(f"no SSE event within {WAIT} s; events so far: {self.seen}") from None
            self.ready.extend(self.parser.feed(chunk))
        event = self.ready.pop(0)
        check(event.has_id, f"an SSE event without an `id` field: {event}")
        self.seen.append(event)
        return event

    async def expect(self, kind):
        """The next event, which must be of this type."""
        event = await self.next()
        check(event.kind == kind, f"expected an SSE {kind!r} event, got {event}")
        return event

    async def next_message(self):
        """The next room message; `presence` may come in between, nothing else."""
        while True:
            event = await self.next()
            if event.kind == "message":
                return event
            check(event.kind == "presence", f"expected an SSE 'message' event, got {event}")


def cursor_of(text):
    """A cursor's entries: {"room:lobby": "1f.3", "user": "2a.0", ...}."""
    check(text != "", "an empty cursor")
    entries = dict(entry.split("=", 1) for entry in text.split(","))
    check(len(entries) == text.count(",") + 1, f"cursor {text!r} names a stream twice")
    return entries


def stream_entry(streams, name):
    check(streams["type"] == "streams", f"not a streams message: {streams}")
    entries = [entry for entry in streams["streams"] if entry["stream"] == name]
    check(len(entries) == 1, f"streams has no single {name!r}: {streams}")
    return entries[0]


class Publisher:
    """A WebSocket client in `lobby` whose publishes are confirmed by their reply."""

    def __init__(self, ws):
        self.ws = ws
        self.count = 0

    async def publish(self, data, raw=None):
        """Publishes `data` (or the frame text `raw`, which must carry it); returns its id."""
        self.count += 1
        ref = f"p{self.count}"
        frame = raw(ref) if raw else json.dumps({"type": "publish", "ref": ref, "room": "lobby", "data": data})
        await self.ws.send(frame)
        reply = await next_of(self.ws, "reply")
        check(reply["ref"] == ref and reply.get("room") == "lobby" and "id" in reply, f"publish {ref}: {reply}")
        return reply["id"]


def raw_publish(json_text):
    """A publish frame whose `data` is this exact JSON text, relayed byte for byte."""
    return lambda ref: f'{{"type":"publish","ref":"{ref}","room":"lobby","data":{json_text}}}'


async def sse_part(base, http, erin):
    # 1. carol's stream of `lobby`: the retry, the open event, the streams event.
    async with Sse(http, {"user": "carol", "rooms": "lobby"}) as sse:
        opened = await sse.next()
        check(opened.kind == "open", f"the first SSE event is not 'open': {opened}")
        check(opened.retry == 3000, f"no 'retry: 3000' before the open event: retry {opened.retry!r}")
        welcome = opened.json()
        check(welcome["type"] == "welcome" and welcome["user"] == "carol" and welcome["protocol"] == 1,
              f"open data {welcome}")
        # Its id is the cursor after it: empty, as a fresh stream has no position before `streams`.
        check(opened.id == "", f"the open event of a fresh stream: {opened}")
        streams = (await sse.expect("streams")).json()
        lobby = stream_entry(streams, "room:lobby")
        check("recovered" not in lobby and lobby["replayed"] == 0, f"a fresh stream's lobby entry: {lobby}")
        stream_entry(streams, "user")
        check(cursor_of(sse.seen[-1].id)["room:lobby"] == lobby["id"], f"streams id vs {lobby}: {sse.seen[-1]}")

        # Three messages, the second and third in forms a line-splitting reader would break:
        # U+2028 and U+0085 sent unescaped, and a line feed in the JSON's whitespace.
        sent = [
            ({"n": 1, "text": "héllo ☃"}, None),
            ({"n": 2, "text": "line\u2028sep\u0085nel"}, raw_publish('{"n":2,"text":"line\u2028sep\u0085nel"}')),
            ({"n": 3, "text": "multi"}, raw_publish('{\n"n": 3,\n"text": "multi"\n}')),
        ]
        last_id = sse.seen[-1].id
        for data, raw in sent:
            message_id = await erin.publish(data, raw)
            event = await sse.next_message()
            message = event.json()
            check(message == {"type": "message", "room": "lobby", "id": message_id, "from": "erin", "data": data},
                  f"SSE message {message}, expected id {message_id} data {data}")
            check(event.id != last_id, f"an event without a new id: {event}")
            check(cursor_of(event.id)["room:lobby"] == message_id, f"the event id's lobby is not {message_id}: {event}")
            last_id = event.id
        check(sse.parser.last_id == last_id, "the last event id")
        seen_third = message_id

    # 2. Two messages while carol is away, then a resume with Last-Event-ID.
    missed = [await erin.publish({"n": n}) for n in (4, 5)]
    async with Sse(http, {"user": "carol", "rooms": "lobby"}, {"Last-Event-ID": last_id}) as sse:
        opened = await sse.expect("open")
        check(opened.json()["user"] == "carol", f"open data {opened}")
        check(opened.id == last_id, f"the open event of a resumed stream has not its cursor: {opened}")
        streams = (await sse.expect("streams")).json()
        lobby = stream_entry(streams, "room:lobby")
        check(lobby.get("recovered") is True and lobby["replayed"] == 2 and lobby["id"] == seen_third,
              f"resumed lobby entry {lobby}, expected recovered, 2 replayed from {seen_third}")
        for n, message_id in zip((4, 5), missed):
            event = await sse.next_message()
            message = event.json()
            check(message["id"] == message_id and message["data"] == {"n": n}, f"replayed {message}, expected {n}")
            check(cursor_of(event.id)["room:lobby"] == message_id, f"replayed event id {event}")
        # Nothing else was replayed: the next message is a new one.
        marker = await erin.publish({"n": 6})
        event = await sse.next_message()
        check(event.json()["id"] == marker and event.json()["data"] == {"n": 6},
              f"after the replay, expected the live message {marker}, got {event}")
        after_marker = event.id

    # The `lastEventId` query parameter resumes the same way.
    last = await erin.publish({"n": 7})
    async with Sse(http, {"user": "carol", "rooms": "lobby", "lastEventId": after_marker}) as sse:
        await sse.expect("open")
        lobby = stream_entry((await sse.expect("streams")).json(), "room:lobby")
        check(lobby.get("recovered") is True and lobby["replayed"] == 1 and lobby["id"] == marker,
              f"lastEventId: lobby entry {lobby}")
        event = await sse.next_message()
        check(event.json()["id"] == last, f"lastEventId: replayed {event}, expected {last}")
    print("python httpx SSE scenario: ok")


async def poll(http, **params):
    response = await http.get("/poll", params={"user": "dave", "rooms": "lobby", **params})
    check(response.status_code == 200, f"/poll {params} answered {response.status_code}: {response.text}")
    kind = response.headers.get("content-type", "")
    check(kind.startswith("application/json"), f"/poll content-type {kind!r}")
    return response.json()


async def poll_part(http, erin):
    # 3. A starting cursor, then exactly the messages after it.
    start = await poll(http, timeout=0)
    check(start["events"] == [] and start["cursor"], f"the first poll: {start}")
    check("room:lobby" in cursor_of(start["cursor"]), f"the first poll's cursor: {start}")
    ids = [await erin.publish({"poll": n}) for n in (1, 2)]
    answer = await poll(http, cursor=start["cursor"], timeout=5)
    expected = [{"type": "message", "room": "lobby", "id": i, "from": "erin", "data": {"poll": n}}
                for n, i in zip((1, 2), ids)]
    check(answer["events"] == expected and answer.get("recovered") is True,
          f"the poll after {start['cursor']}: {answer}, expected {expected}")
    check(cursor_of(answer["cursor"])["room:lobby"] == ids[-1], f"the poll's next cursor: {answer}")

    # 4. A poll that waits is answered by the next message, well before its timeout.
    began = time.monotonic()
    waiting = asyncio.create_task(poll(http, cursor=answer["cursor"], timeout=5))
    await asyncio.sleep(0.3)
    check(not waiting.done(), f"the poll did not wait: {waiting.done() and waiting.result()}")
    late = await erin.publish({"poll": 3})
    waited = await asyncio.wait_for(waiting, WAIT)
    elapsed = time.monotonic() - began
    check([event["id"] for event in waited["events"]] == [late], f"the waiting poll: {waited}, expected {late}")
    check(0.3 <= elapsed < 4, f"the waiting poll took {elapsed:.2f} s")

    # A bad cursor is refused.
    response = await http.get("/poll", params={"user": "dave", "cursor": "not a cursor"})
    check(response.status_code == 400 and response.json().get("code") == "bad_request",
          f"a bad cursor: {response.status_code} {response.text}")
    print("python httpx long-poll scenario: ok")


async def unauthorized_part(http):
    # 5. No user, no stream.
    response = await http.get("/events", params={"rooms": "lobby"})
    check(response.status_code == 401, f"/events without user: {response.status_code} {response.text}")
    kind = response.headers.get("content-type", "")
    check(kind.startswith("application/json"), f"/events 401 content-type {kind!r}")
    body = response.json()
    check(body.get("type") == "error" and body.get("code") == "unauthorized", f"/events 401 body {body}")


async def http_part(base):
    origin = "http" + base[len("ws"):]
    async with httpx.AsyncClient(base_url=origin, timeout=WAIT) as http:
        erin = await connect(base, "erin")
        await erin.send(json.dumps({"type": "join", "ref": "j", "room": "lobby"}))
        joined = await next_of(erin, "reply")
        check(joined["ref"] == "j" and "erin" in joined["members"], f"erin's join: {joined}")
        publisher = Publisher(erin)
        await sse_part(base, http, publisher)
        await poll_part(http, publisher)
        await unauthorized_part(http)
        await erin.close()


async def main(base):
    await websocket_part(base)
    await http_part(base)
    print("scenario: ok")


if __name__ == "__main__":
    try:
        url = sys.argv[1].rstrip("/")
        if not url.startswith("ws://"):
            raise Failed(f"usage: scenario.py ws://HOST:PORT (got {url!r})")
        asyncio.run(asyncio.wait_for(main(url), TOTAL))
    except asyncio.TimeoutError:
        traceback.print_exc()
        print(f"python scenario failed: not done within {TOTAL} s", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 - report any failure with its step
        traceback.print_exc()
        print(f"python scenario failed: {error!r}", file=sys.stderr)
        sys.exit(1)
