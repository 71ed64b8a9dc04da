#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/corpus/ from the repo's own test sources.

    python3 fuzz/seed.py

sse_decode:      one seed per distinct stream in tests/vectors/sse.json (a vector's chunks
                 concatenated; chunk chars U+0000..U+00FF are bytes), behind the header that
                 roomcast_core::fuzzing::sse_decode reads: [0, 0] for the default limits, then
                 the count of split points and each as 2 bytes (the vector's own chunk
                 boundaries, up to 15). A few vectors (SMALL_LIMITS) get small limits instead,
                 set at or one byte under what the stream needs, so the limit checks start from
                 an edge.
envelope_decode: frames from core/src/envelope/codec/tests.rs (the client-side tests), valid and
                 refused, one per shape, sampled evenly to fit what the SSE seeds leave of
                 MAX_SEEDS, plus a few made here (refs at and over MAX_REF_LEN, non-UTF-8 bytes).

stomp_decode:    small STOMP streams written here, one per rule (every command, escapes, CRLF,
                 heart-beats, content-length with NUL, each limit at its edge, errors), behind
                 the header roomcast_core::fuzzing::stomp_decode reads: the mode byte (version,
                 small limits, max_headers), max_line - 1, (max_frame - 1) / 4, then the split
                 points.

session_ops,     programs that replay the session and hub unit tests' scenarios (welcome, every
hub_ops:         request kind, heartbeat, slow consumer, rate limit, shutdown, SSE; chat,
                 resume inside and outside history, outbox, presence grace, broadcast, limits),
                 written in the byte format that fuzzing's `Input` reads (see `Program`).

Only files named seed-* are written or removed: libFuzzer's own finds in the same folders (kept
out of git by .gitignore) stay. Stdlib only.
"""

import json
import re
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
CORPUS = FUZZ / "corpus"

# The SSE and envelope seeds together: the corpora stay small enough to commit and to read.
MAX_SEEDS = 200

# name -> "at" (limits exactly what the stream needs) or "under" (the longest line one byte over).
SMALL_LIMITS = {
    "mixed-endings-in-one-block": "at",
    "data-multi-line-joined-lf": "under",
    "event-custom": "under",
    "id-set": "at",
    "comment-keepalives": "under",
    "utf8-split-3-byte-1-2": "at",
    "many-events-split-odd": "at",
}


def sse_header_small(stream: bytes, mode: str) -> bytes:
    """Header bytes a, b with a odd: max_line = (a >> 1) + 1 (1..=128), max_event = b + 1 (1..=256)."""
    lines = re.split(rb"\r\n|\r|\n", stream)
    longest_line = max((len(line) for line in lines), default=0)
    blocks = re.split(rb"(?:\r\n|\r|\n){2,}", stream)
    # A block's bytes, line ends left out, are at least its event's size (data + LFs + type).
    largest_block = max((len(re.sub(rb"[\r\n]", b"", b)) for b in blocks), default=0)
    max_line = min(128, max(1, longest_line - (1 if mode == "under" else 0)))
    max_event = min(256, max(1, largest_block))
    return bytes([((max_line - 1) << 1) | 1, max_event - 1])


def sse_seeds() -> dict[str, bytes]:
    vectors = json.loads((REPO / "tests/vectors/sse.json").read_text(encoding="utf-8"))
    seeds: dict[str, bytes] = {}
    seen: set[bytes] = set()
    names = {v["name"] for v in vectors}
    for name in SMALL_LIMITS.keys() - names:
        print(f"seed.py: warning: no SSE vector named {name!r}", file=sys.stderr)
    for vector in vectors:
        name, chunks = vector["name"], vector["chunks"]
        stream = "".join(chunks).encode("latin-1")  # U+0000..U+00FF are the bytes themselves
        if stream in seen:  # the same bytes split differently: the fuzzer varies the splits
            continue
        seen.add(stream)
        # The vector's own chunk boundaries (up to 15) are the split points.
        points, at = [], 0
        for chunk in chunks[:-1][:15]:
            at += len(chunk)
            points.append(at)
        mode = SMALL_LIMITS.get(name)
        head = sse_header_small(stream, mode) if mode else b"\0\0"
        splits = bytes([len(points)]) + b"".join(p.to_bytes(2, "little") for p in points)
        seeds[f"seed-{name}"] = head + splits + stream
    return seeds


def rust_string(text: str) -> str:
    """Undoes the escapes a plain Rust string literal may hold (the tests use only these)."""
    return re.sub(
        r'\\(["\\nrt0])',
        lambda m: {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}.get(m[1], m[1]),
        text,
    )


def envelope_seeds(budget: int) -> dict[str, bytes]:
    tests = (REPO / "core/src/envelope/codec/tests.rs").read_text(encoding="utf-8")
    # The client-side tests come first; server frames fed to decode_client are all unknown types.
    client = tests[: tests.index("fn server_messages_have_an_exact_wire_form")]
    found: list[str] = []
    for raw, plain in re.findall(
        r'r#"(.*?)"#|\b(?:error|message|decode)\("((?:[^"\\]|\\.)*)"\)', client, re.S
    ):
        if raw:
            # Frames only (not payloads such as {"text":"hi"}), and not format! templates.
            if '"type"' not in raw or "{{" in raw:
                continue
            frame = raw
        else:
            frame = rust_string(plain)
        # libFuzzer runs the empty input by itself and skips empty corpus files.
        if frame and frame not in found:
            found.append(frame)

    frame_rs = (REPO / "core/src/envelope/frame.rs").read_text(encoding="utf-8")
    max_ref = int(re.search(r"const MAX_REF_LEN: usize = (\d+);", frame_rs)[1])
    made = [
        f'{{"type":"ping","ref":"{"r" * max_ref}"}}'.encode(),
        f'{{"type":"ping","ref":"{"r" * (max_ref + 1)}"}}'.encode(),
        b'{"type":"join","ref":"\xff","room":"lob\xc3by","since":"1f.\xe2\x82"}',
    ]
    # One frame per shape (the same keys and kinds of value: "ref":1 and "ref":7 are one shape),
    # then, if still over the budget, evenly spaced so that every test contributes.
    shapes: set[str] = set()
    distinct = []
    for frame in found:
        shape = re.sub(r'(?<!"type":")\b[a-z0-9]+\b(?!":)', "a", frame)
        if shape not in shapes:
            shapes.add(shape)
            distinct.append(frame)
    take = max(0, budget - len(made))
    if take < len(distinct):
        distinct = [distinct[i * len(distinct) // take] for i in range(take)]
    found = distinct
    frames = [f.encode() for f in found] + made

    seeds: dict[str, bytes] = {}
    for i, frame in enumerate(frames):
        kind = re.search(rb'"type":"([a-z]+)"', frame)
        slug = kind[1].decode() if kind else "malformed"
        seeds[f"seed-{i:02}-{slug}"] = frame
    return seeds


class Program:
    """Writes the bytes that roomcast_core::fuzzing's `Input` reads back as choices:
    `byte` is one byte, `below` (a number under some bound) and `millis` two, little-endian."""

    def __init__(self) -> None:
        self.out = bytearray()

    def byte(self, value: int) -> "Program":
        self.out.append(value)
        return self

    def below(self, *values: int) -> "Program":
        for value in values:
            self.out += value.to_bytes(2, "little")
        return self

    def raw(self, data: bytes) -> "Program":
        self.out += data
        return self


# Session programs (core/src/fuzzing/session_ops.rs). The config, in order: max_frame - 16,
# queue_bytes, queue_frames, rate, burst, abuse rate, abuse burst, then in ms: ping interval,
# ping timeout, keep-alive, handshake, close timeout, shutdown grace.
ROOMY = (496, 4000, 31, 0, 19, 9, 9, 1000, 500, 1000, 4000, 1000, 1000)


def session(kind: int, config=ROOMY) -> Program:
    return Program().byte(kind).below(*config)


def accept(p):
    return p.byte(0)


def text(p, template, pad=0):
    p.byte(1).below(template)
    return p.below(pad) if template == 8 else p


def later(p, ms):
    return p.byte(8).byte(1).below(ms)


def drain(p, n=7):
    return p.byte(7).below(n)


def deliver(p, size):
    return p.byte(5).below(size)


def session_seeds() -> dict[str, bytes]:
    ws, sse = 0, 1
    seeds = {}

    p = accept(session(ws))
    for template in range(8):
        text(p, template)
    seeds["every-kind-of-request"] = drain(drain(p))

    p = accept(session(ws))
    later(p, 1000)
    drain(p).byte(4)  # the ping, then a pong
    later(p, 1000)
    later(p, 600)  # a ping unanswered past its timeout: 4001
    seeds["heartbeat"] = drain(p)

    p = accept(session(ws, (496, 300, 4) + ROOMY[3:]))
    for _ in range(6):
        deliver(p, 80)
    seeds["slow-consumer"] = drain(p)

    p = accept(session(ws, (496, 300, 4) + ROOMY[3:]))
    p.byte(6).below(5).below(100, 100, 100, 100, 100)
    deliver(p, 10)
    seeds["batch-over-budget"] = drain(p)

    p = accept(session(ws, ROOMY[:3] + (1, 1, 1, 1) + ROOMY[7:]))
    for _ in range(5):
        text(p, 0)
    seeds["rate-limit-then-abuse"] = drain(p)

    p = accept(session(ws, (48,) + ROOMY[1:]))
    text(p, 8, 100)
    p.byte(3).below(5).raw(b"\x00\x01\x02\x03\x04")
    seeds["oversized-text"] = drain(p)

    p = accept(session(ws))
    p.byte(2).below(9).raw(b'{"type":')
    p.byte(3).below(3).raw(b"bin")
    seeds["malformed-and-binary"] = drain(p)

    p = accept(session(ws))
    deliver(p, 20)
    p.byte(11).below(1000)
    text(p, 0)
    later(p, 1000)
    seeds["shutdown"] = drain(p)

    p = accept(session(sse))
    text(p, 0)
    deliver(p, 20)
    drain(p)
    later(p, 1000)
    seeds["sse-keep-alive"] = drain(p)

    p = accept(session(ws))
    p.byte(10)
    drain(p)
    p.byte(9).byte(1)
    seeds["close-handshake"] = drain(p)

    p = session(ws)
    later(p, 4000)
    accept(p)
    seeds["handshake-timeout"] = drain(p)
    return {f"seed-{name}": bytes(p.out) for name, p in seeds.items()}


# Hub programs (core/src/fuzzing/hub_ops.rs). Each step names a slot (0..8), then an op.
def hub(room=(6, 60_000), outbox=(6, 60_000), broadcast=(6, 60_000), grace=5000, rooms=3,
        offline=4) -> Program:
    return Program().below(*room, *outbox, *broadcast, grace, rooms, offline).byte(7)


def connect(p, slot, user, rooms=(), cursor=(), broadcast=False):
    """cursor: (stream, seen) with stream 0 = user, 1 = all, 2 + r = room r. A `seen` index
    needs a streamed message received before, or the bytes read differently."""
    p.below(slot).byte(0).below(user, len(rooms), *rooms).below(len(cursor))
    for stream, seen in cursor:
        p.below(min(stream, 2))
        if stream >= 2:
            p.below(stream - 2)
        p.below(1, seen)  # the `seen`-th position received so far in the run
    return p.byte(0 if broadcast else 1)


def op(p, slot, code, *args):
    return p.below(slot).byte(code).below(*args)


def join(p, slot, room):
    return op(p, slot, 2, room, 0)


def join_since(p, slot, room, seen):
    """Joins from the `seen`-th position received so far in the run."""
    return op(p, slot, 2, room, 1, seen)


def publish(p, slot, room):
    return op(p, slot, 4, room)


def hub_later(p, ms):
    return p.below(0).byte(10).byte(1).below(ms)


def hub_seeds() -> dict[str, bytes]:
    seeds = {}

    p = hub()
    connect(p, 0, 0)
    connect(p, 1, 1)
    join(p, 0, 0)
    join(p, 1, 0)
    publish(p, 0, 0)
    op(p, 1, 5, 0, 0)  # typing
    op(p, 1, 3, 0)  # leave
    op(p, 0, 11, 1)  # a join without a ref
    seeds["chat-presence-typing"] = p

    p = hub()
    connect(p, 0, 0)
    connect(p, 1, 1)
    join(p, 0, 0)
    join(p, 1, 0)
    publish(p, 0, 0)
    op(p, 1, 1)  # disconnect
    for _ in range(3):
        publish(p, 0, 0)
    connect(p, 1, 1)
    join_since(p, 1, 0, 0)
    seeds["resume"] = p

    p = hub(room=(2, 60_000))
    connect(p, 0, 0, rooms=(0,))
    for _ in range(5):
        op(p, 0, 7, 0)  # server publish
    connect(p, 1, 1, rooms=(0,), cursor=((2, 0),))
    hub_later(p, 60_000)
    seeds["resume-outside-history"] = p

    p = hub()
    connect(p, 0, 0)
    connect(p, 1, 1)
    op(p, 0, 6, 1)  # a direct message, delivered live
    op(p, 1, 1)
    op(p, 0, 6, 1)  # to an offline user
    op(p, 0, 8, 1)  # a notification
    connect(p, 1, 1, cursor=((0, 0),))
    seeds["outbox"] = p

    p = hub(grace=2000)
    connect(p, 0, 0, rooms=(0,))
    connect(p, 1, 1, rooms=(0,))
    op(p, 0, 1)
    hub_later(p, 1000)
    connect(p, 0, 0, rooms=(0,))
    op(p, 0, 1)
    hub_later(p, 2000)
    seeds["presence-grace"] = p

    p = hub()
    connect(p, 0, 0, broadcast=True)
    connect(p, 1, 1)
    op(p, 0, 9)
    op(p, 0, 1)
    op(p, 0, 9)
    connect(p, 0, 0, cursor=((1, 0),), broadcast=True)
    seeds["broadcast"] = p

    p = hub(offline=1)
    for user in range(3):
        op(p, 0, 8, user)
    connect(p, 1, 3)
    op(p, 1, 1)
    seeds["offline-limit"] = p

    p = hub(rooms=1)
    connect(p, 0, 0, rooms=(0, 1))
    connect(p, 0, 0, rooms=(0,))
    join(p, 0, 1)
    seeds["rooms-per-session"] = p

    p = hub()
    connect(p, 0, 0, rooms=(0,))
    connect(p, 2, 2, rooms=(0,))
    publish(p, 0, 0)
    publish(p, 0, 0)
    connect(p, 1, 1, rooms=(0, 0), cursor=((2, 0),))
    seeds["room-named-twice"] = p

    p = hub(outbox=(0, 1000), room=(0, 0), broadcast=(0, 0))
    op(p, 0, 8, 2)
    op(p, 0, 7, 1)
    op(p, 0, 9)
    hub_later(p, 1000)
    seeds["no-history"] = p
    return {f"seed-{name}": bytes(p.out) for name, p in seeds.items()}


def stomp_seeds() -> dict[str, bytes]:
    """Streams for stomp_decode. The mode byte: bits 0-1 the version (0: 1.0, 1: 1.1, 2: 1.2),
    bit 2 small limits, bits 3-7 max_headers; then max_line - 1 and (max_frame - 1) / 4."""

    def seed(stream: bytes, version: int = 2, limits=None, points=()) -> bytes:
        if limits is None:
            head = bytes([version, 0, 0])
        else:
            max_headers, max_line, max_frame = limits
            head = bytes([version | 4 | (max_headers << 3), max_line - 1, (max_frame - 1) // 4])
        splits = bytes([len(points)]) + b"".join(p.to_bytes(2, "little") for p in points)
        return head + splits + stream

    small = b"SEND\nab:cd\n\nbody\0"  # 17 octets; its longest line is 5
    seeds = {
        "connect": seed(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:example\nheart-beat:10000,10000\n\n\0"),
        "connect-literal": seed(b"CONNECT\nlogin:a\\tb\npasscode:x:y\n\n\0"),
        "connected": seed(b"CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:roomcast\n\n\0"),
        "send-content-length-nul": seed(
            b"SEND\ndestination:/topic/chat\ncontent-type:text/plain\ncontent-length:5\n\nhe\0lo\0"
        ),
        "send-to-first-nul": seed(b"SEND\ndestination:/queue/a\n\nhello queue a\n\0", points=(9, 30)),
        "subscribe-crlf": seed(
            b"SUBSCRIBE\r\nid:0\r\ndestination:/queue/foo\r\nack:client\r\n\r\n\0", points=(10, 11)
        ),
        "message-escapes": seed(
            b"MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/topic/a\\cb\nx\\\\y:\\r\\n\n\n\0"
        ),
        "heart-beats-between": seed(b"\n\r\nSEND\n\nx\0\n\n\r\nDISCONNECT\nreceipt:77\n\n\0\n", points=(1, 2)),
        "repeated-headers": seed(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0"),
        "error-with-body": seed(
            b"ERROR\nmessage:malformed frame received\ncontent-type:text/plain\ncontent-length:10\n\nbad frame\n\0"
        ),
        "receipt": seed(b"RECEIPT\nreceipt-id:message-12345\n\n\0"),
        "all-other-commands": seed(
            b"".join(c + b"\n\n\0" for c in [b"STOMP", b"UNSUBSCRIBE", b"ACK", b"NACK", b"BEGIN", b"COMMIT", b"ABORT"])
        ),
        "v1.0-literal": seed(b"SEND\na:\\t:x\n\n\0", version=0),
        "v1.1-escapes": seed(b"SEND\na:\\c\\n\\\\\n\n\0", version=1),
        "bad-escape": seed(b"SEND\na:\\t\n\n\0"),
        "bad-command": seed(b"send\n\n\0"),
        "missing-nul": seed(b"SEND\ncontent-length:1\n\nab\0"),
        "bad-content-length": seed(b"SEND\ncontent-length:-1\n\n\0"),
        "body-not-allowed": seed(b"SUBSCRIBE\nid:0\n\nx\0"),
        "limits-at": seed(small, limits=(1, 5, 17)),
        "limits-frame-under": seed(small, limits=(1, 5, 13)),
        "limits-line-under": seed(small, limits=(1, 4, 17)),
        "limits-headers-under": seed(small, limits=(0, 5, 17)),
    }
    return {f"seed-{name}": data for name, data in seeds.items()}


def write(target: str, seeds: dict[str, bytes]) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (folder / name).write_bytes(data)
    size = sum(len(d) for d in seeds.values())
    print(f"{target}: {len(seeds)} seeds, {size} bytes, largest {max(map(len, seeds.values()))}")


def main() -> None:
    sse = sse_seeds()
    envelope = envelope_seeds(MAX_SEEDS - len(sse))
    if len(envelope) < 12 or len(sse) + len(envelope) > MAX_SEEDS:
        sys.exit(
            f"seed.py: {len(sse)} SSE + {len(envelope)} envelope seeds do not fit {MAX_SEEDS}: "
            "raise MAX_SEEDS or dedupe tests/vectors/sse.json"
        )
    write("sse_decode", sse)
    write("envelope_decode", envelope)
    write("session_ops", session_seeds())
    write("hub_ops", hub_seeds())
    write("stomp_decode", stomp_seeds())


if __name__ == "__main__":
    main()
