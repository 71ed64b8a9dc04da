#!/usr/bin/env bash
# Proves tests/autobahn/run.sh itself, with no roomcast code involved:
#   1. against a known-good echo server (Autobahn|Python, the library the cases
#      were written against) it must exit 0 with "301 passed, 0 failed";
#   2. against a deliberately broken echo server (text echoed with "!"
#      appended) on a few cases it must exit non-zero and list the failures.
# The reference servers (tests/autobahn/echo_server.py) run from their own
# venv, target/autobahn-selftest-venv, with pinned autobahn and websockets.
# Takes about 40 s (plus ~20 s the first time, to make the venvs).
#
#   tests/autobahn/selftest.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=$ROOT/target/autobahn-selftest-venv
PYTHON=${PYTHON:-python3}
SERVER_PKGS=(autobahn==26.10.2 websockets==17.4)

if ! [[ -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import autobahn, websockets' 2>/dev/null; then
    echo "== installing ${SERVER_PKGS[*]} into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    timeout 300 "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${SERVER_PKGS[@]}"
fi

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

LOG=$(mktemp -d)
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

start_server() { # MODE -> sets PORT, SERVER_PID
    PORT=$(free_port)
    "$VENV/bin/python" "$HERE/echo_server.py" --impl autobahn --mode "$1" \
        --host 127.0.0.1 --port "$PORT" --path /ws/echo --lifetime 900 >>"$LOG/servers.log" 2>&1 &
    SERVER_PID=$!
}

failures=0

echo "== 1/2: known-good echo server, sections 1-10"
start_server good
start=$SECONDS
set +e
"$HERE/run.sh" "ws://127.0.0.1:$PORT/ws/echo" | tee "$LOG/good.txt"
rc=${PIPESTATUS[0]}
set -e
stop_server
echo "-- good server: exit $rc in $((SECONDS - start)) s"
if [[ $rc -ne 0 ]] || ! grep -qx '301 passed, 0 failed' "$LOG/good.txt"; then
    echo "SELFTEST FAILED: the known-good server did not pass all 301 cases" >&2
    failures=$((failures + 1))
fi

echo "== 2/2: broken echo server (mangles text), cases 1.1.*, 1.2.*, 9.1.*"
start_server mangle-text
start=$SECONDS
set +e
"$HERE/run.sh" "ws://127.0.0.1:$PORT/ws/echo" '1.1.*' '1.2.*' '9.1.*' | tee "$LOG/broken.txt"
rc=${PIPESTATUS[0]}
set -e
stop_server
echo "-- broken server: exit $rc in $((SECONDS - start)) s"
if [[ $rc -eq 0 ]] || ! grep -qx '8 passed, 14 failed' "$LOG/broken.txt" || ! grep -q '^  1\.1\.1: behavior=FAILED' "$LOG/broken.txt"; then
    echo "SELFTEST FAILED: the broken server was not reported as 14 failing cases (1.1.x, 9.1.x)" >&2
    failures=$((failures + 1))
fi

rm -rf "$LOG"
if [[ $failures -ne 0 ]]; then
    exit 1
fi
echo "selftest: the harness passes a good server and fails a broken one"
