#!/usr/bin/env python3
"""Drive the Autobahn fuzzingclient cases against a WebSocket server with kosoku.

Runs inside the venv that tests/autobahn/run.sh makes (it needs `kosoku`).
Unlike `kosoku URL -i ...`, which writes its report only when the whole run
ends (so a hung server leaves nothing), this runs one case at a time through
kosoku's Python API, with a per-case and an overall time limit, and rewrites
the report after every section:

  OUTDIR/index.json, OUTDIR/index.html   kosoku's Autobahn-format report
  OUTDIR/<agent>_case_<id>.json/.html    one per case (the details of a failure)
  OUTDIR/run.json                        what was asked for: cases, time-outs, cases not run

tests/autobahn/check.py reads these and gives the verdict.

    python drive.py ws://127.0.0.1:9001/ws/echo OUTDIR [CASE_GLOB ...]
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import ipaddress
import json
import os
import socket
import sys
import time
from importlib.metadata import version
from urllib.parse import urlsplit

from kosoku import FailureError, run_fuzzingclient
from kosoku._report import write_reports  # pinned kosoku version: private API is stable here
from kosoku.cases import CASES
from tls_relay import TlsRelay

DEFAULT_GLOBS = [f"{n}.*" for n in range(1, 11)]  # sections 1 to 10 (there is no section 8)


def loopback_target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        sys.exit(f"drive.py: only ws:// and wss:// URLs are supported, got {url!r}")
    host = parts.hostname or ""
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError
        except ValueError:
            sys.exit(f"drive.py: refusing {url!r}: only loopback addresses (127.0.0.1, localhost, [::1]) may be targeted")
    return host, parts.port or (443 if parts.scheme == "wss" else 80)


def wait_for_listener(host: str, port: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            if time.monotonic() >= end:
                return False
            time.sleep(0.2)


def select(globs: list[str]) -> list[str]:
    chosen = [cid for cid in CASES if any(fnmatch.fnmatchcase(cid, g) for g in globs)]
    if not chosen:
        sys.exit(f"drive.py: no case matches {globs}")
    return chosen  # CASES is in numeric case order


def section(cid: str) -> str:
    return cid.split(".", 1)[0]


async def drive(args: argparse.Namespace) -> int:
    host, port = loopback_target(args.url)
    if not wait_for_listener(host, port, args.connect_wait):
        print(f"drive.py: nothing accepts TCP connections on {host}:{port} (waited {args.connect_wait:g} s)", file=sys.stderr)
        return 2

    cases = select(args.globs)
    target = args.url
    relay = None
    if urlsplit(args.url).scheme == "wss":
        # kosoku has no TLS: it speaks ws:// to a loopback relay that carries the bytes over TLS.
        relay = TlsRelay(host, port, os.environ.get("AUTOBAHN_TLS_NAME", "localhost"),
                         os.environ.get("AUTOBAHN_TLS_CA") or None).start()
        parts = urlsplit(args.url)
        target = parts._replace(scheme="ws", netloc=f"127.0.0.1:{relay.port}").geturl()
        print(f"wss: kosoku -> ws://127.0.0.1:{relay.port} -> TLS -> {host}:{port} "
              f"(CA: {os.environ.get('AUTOBAHN_TLS_CA') or 'not verified'})", flush=True)
    os.makedirs(args.outdir, exist_ok=True)
    run = {
        "url": args.url,
        "kosoku": version("kosoku"),
        "globs": args.globs,
        "case_timeout_s": args.case_timeout,
        "deadline_s": args.deadline,
        "expected": cases,
        "timed_out": [],
        "not_run": [],
        "finished": False,
        "elapsed_s": 0.0,
    }
    run_path = os.path.join(args.outdir, "run.json")

    def save(results) -> None:
        if results:
            write_reports(results, args.outdir)
        run["elapsed_s"] = round(time.monotonic() - start, 2)
        tmp = run_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(run, f, indent=1)
        os.replace(tmp, run_path)

    start = time.monotonic()
    deadline = start + args.deadline
    results = []
    save(results)
    print(f"kosoku {run['kosoku']}: {len(cases)} cases against {args.url} "
          f"(per case <= {args.case_timeout:g} s, all <= {args.deadline:g} s)", flush=True)

    current, section_start, section_count = None, start, 0
    for i, cid in enumerate(cases):
        if section(cid) != current:
            if current is not None:
                print(f"  section {current}: {section_count} cases in {time.monotonic() - section_start:.1f} s", flush=True)
                save(results)
            current, section_start, section_count = section(cid), time.monotonic(), 0
        section_count += 1
        left = deadline - time.monotonic()
        if left <= 0:
            run["not_run"] = cases[i:]
            print(f"  overall time limit of {args.deadline:g} s reached: {len(cases) - i} cases not run", flush=True)
            current = None
            break
        try:
            got = await asyncio.wait_for(
                run_fuzzingclient(target, [cid]), timeout=min(args.case_timeout, left)
            )
        except FailureError as failure:
            got = failure.results
        except asyncio.TimeoutError:
            got = []
            run["timed_out"].append(cid)
            print(f"  case {cid}: no verdict within {min(args.case_timeout, left):.0f} s", flush=True)
        results.extend(r for r in got if r.case_id == cid)
    if current is not None:
        print(f"  section {current}: {section_count} cases in {time.monotonic() - section_start:.1f} s", flush=True)
    run["finished"] = True
    if relay is not None:
        relay.stop()
        run["tls_failures"] = relay.failures[:20]
        for failure in relay.failures[:5]:
            print(f"  {failure}", flush=True)
    save(results)
    print(f"ran {len(cases) - len(run['not_run'])} of {len(cases)} cases in {run['elapsed_s']:.1f} s; "
          f"report: {os.path.join(args.outdir, 'index.html')}", flush=True)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description="Run Autobahn cases against a loopback WebSocket server with kosoku.")
    ap.add_argument("url", help="ws:// or wss://127.0.0.1:PORT/PATH of the echo endpoint")
    ap.add_argument("outdir")
    ap.add_argument("globs", nargs="*", default=DEFAULT_GLOBS, help="case ids or globs (default: 1.* ... 10.*)")
    ap.add_argument("--case-timeout", type=float, default=float(os.environ.get("AUTOBAHN_CASE_TIMEOUT", 15)))
    ap.add_argument("--deadline", type=float, default=float(os.environ.get("AUTOBAHN_TIMEOUT", 420)))
    ap.add_argument("--connect-wait", type=float, default=float(os.environ.get("AUTOBAHN_CONNECT_WAIT", 10)))
    args = ap.parse_args()
    sys.exit(asyncio.run(drive(args)))


if __name__ == "__main__":
    main()
