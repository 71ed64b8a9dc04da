#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/corpus/ from the repo's own test sources.

    python3 fuzz/seed.py

sse_decode:      one seed per distinct stream in tests/vectors/sse.json (a vector's chunks
                 concatenated; chunk chars U+0000..U+00FF are bytes), behind the 3 header bytes
                 that roomcast_core::fuzzing::sse_decode reads: [0, 0, chunk] for the default
                 limits, chunk = the vector's first chunk length when it is split, else 7. A few
                 vectors (SMALL_LIMITS) get small limits instead, set at or one byte under what
                 the stream needs, so the limit checks start from an edge.
envelope_decode: frames from core/src/envelope/codec/tests.rs (the client-side tests), valid and
                 refused, one per shape, sampled evenly to fit what the SSE seeds leave of
                 MAX_SEEDS, plus a few made here (refs at and over MAX_REF_LEN, non-UTF-8 bytes).

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

# All seeds together, both targets: the corpora stay small enough to commit and to read.
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
        if stream in seen:  # the same bytes split differently: the header's chunk size covers that
            continue
        seen.add(stream)
        chunk = min(255, max(1, len(chunks[0]))) if len(chunks) > 1 else 7
        mode = SMALL_LIMITS.get(name)
        head = sse_header_small(stream, mode) if mode else b"\0\0"
        seeds[f"seed-{name}"] = head + bytes([chunk]) + stream
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


if __name__ == "__main__":
    main()
