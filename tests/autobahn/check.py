#!/usr/bin/env python3
"""Verdict on an Autobahn report written by kosoku (stdlib only).

    python3 tests/autobahn/check.py target/autobahn

A case passes when both of its verdicts are acceptable, the rule kosoku uses
for its own exit code:
  behavior       OK, NON-STRICT or INFORMATIONAL
                 (UNIMPLEMENTED only in the compression sections 12 and 13)
  behaviorClose  OK or INFORMATIONAL
Anything else fails: FAILED, ERROR (no verdict: connection refused, handshake
not 101, crash), a close verdict of FAILED / WRONG CODE / UNCLEAN / FAILED BY
CLIENT, a case that gave no verdict within its time limit, and a case that was
asked for (OUTDIR/run.json) but is missing from the report.

Prints one line per section, the failing cases with the report's own
explanation, any UNIMPLEMENTED / NON-STRICT cases, and last, alone on a line,
"N passed, N failed". Exit status: 0 when nothing failed, 1 when something
failed, 2 when there is no report to read.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict

PASS_BEHAVIOR = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASS_CLOSE = {"OK", "INFORMATIONAL"}
COMPRESSION_SECTIONS = {"12", "13"}


def case_key(cid: str) -> list[int]:
    return [int(p) if p.isdigit() else 0 for p in cid.split(".")]


def one_line(text, limit: int = 240) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load(path: str):
    with open(path) as f:
        return json.load(f)


def main() -> int:
    outdir = sys.argv[1] if len(sys.argv) > 1 else "target/autobahn"
    index_path = os.path.join(outdir, "index.json")
    run_path = os.path.join(outdir, "run.json")
    run = load(run_path) if os.path.exists(run_path) else {}
    index = load(index_path) if os.path.exists(index_path) else {}
    if not index and not run:
        print(f"check.py: no report in {outdir} (neither index.json nor run.json)")
        print("0 passed, 1 failed")
        return 2

    # case id -> (behavior, behaviorClose, index entry); the report is keyed by agent first
    verdicts: dict[str, tuple[str, str, dict]] = {}
    agents = sorted(index)
    for agent in agents:
        for cid, entry in index[agent].items():
            verdicts[cid] = (entry.get("behavior", "?"), entry.get("behaviorClose", "?"), entry)
    for cid in run.get("timed_out", []):
        verdicts.setdefault(cid, ("TIMEOUT", "TIMEOUT", {}))
    for cid in run.get("expected", []):
        verdicts.setdefault(cid, ("NOT RUN", "NOT RUN", {}))

    if run:
        print(f"kosoku {run.get('kosoku', '?')} against {run.get('url', '?')}"
              f" ({'finished' if run.get('finished') else 'DID NOT FINISH: killed by the hard time limit?'},"
              f" {run.get('elapsed_s', 0):.1f} s)")
    if agents:
        print(f"server agent: {', '.join(agents)}")

    by_section: dict[str, list[str]] = defaultdict(list)
    for cid in verdicts:
        by_section[cid.split(".", 1)[0]].append(cid)

    failed: list[str] = []
    unimplemented: list[str] = []
    non_strict: list[str] = []
    passed = 0
    for sec in sorted(by_section, key=int):
        ids = sorted(by_section[sec], key=case_key)
        kinds: Counter[str] = Counter()
        sec_fail = 0
        for cid in ids:
            behavior, close, _ = verdicts[cid]
            kinds[behavior if close in PASS_CLOSE or behavior not in PASS_BEHAVIOR else f"close {close}"] += 1
            ok = behavior in PASS_BEHAVIOR and close in PASS_CLOSE
            if behavior == "UNIMPLEMENTED":
                unimplemented.append(cid)
                ok = sec in COMPRESSION_SECTIONS
            if behavior == "NON-STRICT":
                non_strict.append(cid)
            if ok:
                passed += 1
            else:
                failed.append(cid)
                sec_fail += 1
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"section {sec:>2}: {len(ids):3} cases, {len(ids) - sec_fail:3} pass, {sec_fail:3} fail  ({detail})")

    if failed:
        print(f"\nFAILED cases ({len(failed)}):")
        for cid in sorted(failed, key=case_key):
            behavior, close, entry = verdicts[cid]
            line = f"  {cid}: behavior={behavior} close={close}"
            if entry:
                line += f" remoteCloseCode={entry.get('remoteCloseCode')}"
            print(line)
            report = entry.get("reportfile")
            if report and os.path.exists(os.path.join(outdir, report)):
                case = load(os.path.join(outdir, report))
                print(f"      case:     {one_line(case.get('description'))}")
                print(f"      expected: {one_line(case.get('expectation'))}")
                print(f"      result:   {one_line(case.get('result'))} / {one_line(case.get('resultClose'))}")
                if case.get("remoteCloseReason"):
                    print(f"      server's close reason: {case['remoteCloseReason']!r}")
                print(f"      details:  {os.path.join(outdir, report[:-len('.json')] + '.html')}")
            elif behavior == "TIMEOUT":
                print("      no verdict within the per-case time limit (AUTOBAHN_CASE_TIMEOUT)")
            elif behavior == "NOT RUN":
                print("      not run: the overall time limit (AUTOBAHN_TIMEOUT) was reached first")
    if unimplemented:
        print(f"\nUNIMPLEMENTED cases ({len(unimplemented)}): {', '.join(sorted(unimplemented, key=case_key))}")
    if non_strict:
        print(f"\nNON-STRICT cases (pass; a SHOULD of RFC 6455 is not met): {', '.join(sorted(non_strict, key=case_key))}")

    print()
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
