#!/usr/bin/env bash
# Autobahn WebSocket conformance, sections 1 to 10, against an echo endpoint.
#
#   tests/autobahn/run.sh ws://127.0.0.1:PORT/ws/echo [CASE_GLOB ...]
#
# A wss:// URL is run through a loopback TLS relay (tls_relay.py: kosoku has no TLS), which
# checks the server's certificate against AUTOBAHN_TLS_CA (a PEM file) for the name
# AUTOBAHN_TLS_NAME (localhost) when the CA is given.
#
# The server must already be listening (the script waits up to
# AUTOBAHN_CONNECT_WAIT=10 s for the port). Only ws:// URLs on a loopback
# address (127.0.0.0/8, localhost, [::1]) are accepted.
#
# What it does:
#   1. makes (or reuses) the venv target/autobahn-venv and installs the pinned
#      kosoku==0.1.0 (PyPI) into it; kosoku runs the original Autobahn
#      TestSuite case files (fuzzingclient mode) from a Rust runner;
#   2. runs every case of sections 1-10 (301 cases: there is no section 8), or
#      only the CASE_GLOBs given (e.g. '7.*' or 6.4.1), one at a time through
#      tests/autobahn/drive.py, each case bounded by AUTOBAHN_CASE_TIMEOUT
#      (15 s; a correct server needs < 2 s for the largest case, and kosoku's
#      own close time-outs give a verdict at ~10 s), the whole run by
#      AUTOBAHN_TIMEOUT (420 s), and the process by a hard `timeout` a minute
#      later;
#   3. writes the Autobahn-format report to target/autobahn/ (index.html,
#      index.json, one .json/.html per case, run.json), replacing the last one;
#   4. tests/autobahn/check.py prints one line per section, every failing case
#      with the report's explanation, and last "N passed, N failed".
#
# What counts as a pass (per case, kosoku's own rule):
#   behavior       OK, NON-STRICT (a SHOULD not met) or INFORMATIONAL
#                  (UNIMPLEMENTED would be accepted only in the compression
#                  sections 12/13, which this does not run)
#   behaviorClose  OK or INFORMATIONAL
# Everything else is a failure: FAILED, ERROR (connection refused, handshake
# not 101, ...), a close verdict of FAILED / WRONG CODE / UNCLEAN / FAILED BY
# CLIENT, a case with no verdict in time, a case not run before the deadline.
# The script exits 0 only when every case passed; non-zero otherwise.
#
# Timing: about 15 s for all 301 cases against a correct server (most of it
# 5.x, 6.x and the 9.x big-message cases), plus ~5 s the first time to make
# the venv. A wrong server costs up to 15 s per failing case (kosoku waits for
# the echo that never comes), never more than 420 s + 60 s in all.
set -euo pipefail

usage() { echo "usage: $0 ws[s]://127.0.0.1:PORT/PATH [CASE_GLOB ...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
URL=$1
shift

if ! [[ $URL =~ ^wss?://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?(/.*)?$ ]]; then
    echo "$0: refusing '$URL': only ws:// or wss:// URLs on a loopback address (127.0.0.1, localhost, [::1]) may be targeted" >&2
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KOSOKU_VERSION=0.1.0
VENV=$ROOT/target/autobahn-venv
OUT=$ROOT/target/autobahn
CASE_TIMEOUT=${AUTOBAHN_CASE_TIMEOUT:-15}
DEADLINE=${AUTOBAHN_TIMEOUT:-420}
PYTHON=${PYTHON:-python3}

has_kosoku() {
    [[ -x $VENV/bin/python ]] &&
        "$VENV/bin/python" -c "import sys, importlib.metadata as m; sys.exit(m.version('kosoku') != '$KOSOKU_VERSION')" 2>/dev/null
}

if ! has_kosoku; then
    echo "== installing kosoku==$KOSOKU_VERSION into $VENV"
    if ! [[ -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    timeout 300 "$VENV/bin/python" -m pip install --disable-pip-version-check -q "kosoku==$KOSOKU_VERSION"
    has_kosoku || { echo "$0: kosoku==$KOSOKU_VERSION did not install" >&2; exit 2; }
fi

rm -rf "$OUT"
mkdir -p "$OUT"

echo "== Autobahn cases ${*:-1.* to 10.*} against $URL"
set +e
timeout --kill-after=10 "$((DEADLINE + 60))" \
    "$VENV/bin/python" "$HERE/drive.py" --case-timeout "$CASE_TIMEOUT" --deadline "$DEADLINE" \
    "$URL" "$OUT" "$@"
drive_rc=$?
set -e
if [[ $drive_rc -ne 0 ]]; then
    case $drive_rc in
        124 | 137) echo "$0: the run was killed by the hard time limit ($((DEADLINE + 60)) s); the report holds what finished" >&2 ;;
        *) echo "$0: drive.py exited with $drive_rc" >&2 ;;
    esac
fi

echo "== verdict (report: $OUT/index.html)"
set +e
"$PYTHON" "$HERE/check.py" "$OUT"
check_rc=$?
set -e
if [[ $check_rc -eq 0 && $drive_rc -ne 0 ]]; then
    exit "$drive_rc"
fi
exit "$check_rc"
