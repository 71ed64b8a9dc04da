"""Checks the server API against its OpenAPI document, both ways round.

Usage: openapi_check.py http://127.0.0.1:PORT API_KEY

The document at /api/openapi.json must be a valid OpenAPI 3.1 document
(openapi-spec-validator). Then every documented call is made, with good input and bad, and
each answer must have a status the document lists for that call and a body that validates
against the schema it gives (JSON Schema 2020-12, jsonschema). The schemas refuse properties
they do not name, so a field the server adds without the document fails here.
Prints `openapi: ok` at the end; any failure raises.
"""

import json
import sys
import time
import urllib.error
import urllib.request

import jsonschema
from openapi_spec_validator import validate
from websockets.sync.client import connect

BASE, KEY = sys.argv[1], sys.argv[2]
SEEN = set()


def call(method, path, template, body=None, key=True, accept=None):
    """Makes a call; checks its answer against the document; returns (status, body text)."""
    headers = {}
    if key:
        headers["Authorization"] = f"Bearer {KEY}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
            media = response.headers.get("Content-Type", "").split(";")[0]
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
        media = error.headers.get("Content-Type", "").split(";")[0]
    operation = SPEC["paths"][template][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path}: {status} is not documented: {text}"
    answer = responses[str(status)]
    if "$ref" in answer:
        answer = SPEC["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    content = answer.get("content", {})
    assert media in content, f"{method} {path}: {status} as {media} is not documented"
    schema = content[media].get("schema")
    if schema is not None:
        lines = text.splitlines() if media == "application/x-ndjson" else [text]
        for line in lines:
            instance = json.loads(line)
            if media == "application/x-ndjson" and instance.get("type") == "error":
                check(instance, {"$ref": "#/components/schemas/Error"})
            else:
                check(instance, schema)
    SEEN.add((template, method.lower(), str(status)))
    return status, text


def check(instance, schema):
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": SPEC["components"]}
    root.update(schema)
    jsonschema.Draft202012Validator(root).validate(instance)


# The document itself, served without a key.
with urllib.request.urlopen(BASE + "/api/openapi.json", timeout=10) as response:
    assert response.status == 200
    SPEC = json.loads(response.read())
validate(SPEC)
SEEN.add(("/api/openapi.json", "get", "200"))

PUBLISH = "/api/rooms/{room}/publish"
HISTORY = "/api/rooms/{room}/history"
PRESENCE = "/api/rooms/{room}/presence"
STATS = "/api/rooms/{room}/presence/stats"

with connect(BASE.replace("http", "ws", 1) + "/ws?user=ann") as ann:
    json.loads(ann.recv(timeout=5))  # welcome
    json.loads(ann.recv(timeout=5))  # streams
    ann.send(json.dumps({"type": "join", "ref": 1, "room": "lobby"}))
    while json.loads(ann.recv(timeout=5))["type"] != "reply":
        pass

    status, text = call("POST", "/api/rooms/lobby/publish", PUBLISH, {"event": "tick", "data": {"n": 1}})
    assert status == 200 and json.loads(text)["sessions"] == 1, text
    ann.send(json.dumps({"type": "publish", "ref": 2, "room": "lobby", "data": "from ann"}))
    call("POST", "/api/notify", "/api/notify", {"user": "bob", "event": "invoice", "data": [1]})
    call("POST", "/api/broadcast", "/api/broadcast", {"data": None})
    status, text = call("POST", "/api/batch", "/api/batch", {"messages": [
        {"room": "lobby", "data": 2},
        {"user": "bob", "data": 3},
        {"broadcast": True, "event": "news", "data": 4},
        {"room": "secret:plans", "data": 5},
    ]})
    results = json.loads(text)["results"]
    assert "id" in results[0] and results[3]["status"] == 403, text

    status, text = call("GET", "/api/rooms/lobby/presence", PRESENCE)
    assert json.loads(text)["members"][0]["user"] == "ann", text
    call("GET", "/api/rooms/lobby/presence/stats", STATS)

    # Ann's own publish is in the history, with `from`, once stored.
    for _ in range(50):
        status, text = call("GET", "/api/rooms/lobby/history?order=desc", HISTORY)
        if any(m.get("from") == "ann" for m in json.loads(text)["messages"]):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"ann's message is not in the history: {text}")
    page = json.loads(call("GET", "/api/rooms/lobby/history?limit=1", HISTORY)[1])
    call("GET", f"/api/rooms/lobby/history?since={page['next']}", HISTORY)
    call("GET", "/api/rooms/lobby/history", HISTORY, accept="application/x-ndjson")
    call("GET", "/api/rooms/lobby/history?format=ndjson", HISTORY)
    assert call("GET", "/api/rooms/lobby/history?since=ffff.1", HISTORY)[0] == 410

    status, text = call("GET", "/api/rooms?limit=1", "/api/rooms")
    assert json.loads(text)["rooms"][0]["room"] == "lobby", text
    status, text = call("GET", "/api/users/ann", "/api/users/{user}")
    assert json.loads(text)["online"] is True, text

status, text = call("POST", "/api/users/ann/disconnect", "/api/users/{user}/disconnect", {"reconnect": False, "reason": "done"})
assert json.loads(text)["sessions"] in (0, 1), text
call("GET", "/api/status", "/api/status")

# The admin page's stream: endless, so only its first event is read.
request = urllib.request.Request(BASE + "/api/admin/stream", headers={"Authorization": f"Bearer {KEY}"})
with urllib.request.urlopen(request, timeout=10) as response:
    assert response.headers.get("Content-Type") == "text/event-stream"
    lines = []
    while not lines or lines[-1] != "":
        lines.append(response.readline().decode().rstrip("\n"))
    assert lines[0] == "event: figures", lines
    data = json.loads(lines[1].removeprefix("data: "))
    schema = SPEC["paths"]["/api/admin/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    check(data, schema)
    SEEN.add(("/api/admin/stream", "get", "200"))

# Refusals, each as documented.
assert call("POST", "/api/rooms/lobby/publish", PUBLISH, {"data": 1}, key=False)[0] == 401
assert call("POST", "/api/rooms/lobby/publish", PUBLISH, {"dat": 1})[0] == 400
assert call("POST", "/api/rooms/secret:x/publish", PUBLISH, {"data": 1})[0] == 403
assert call("POST", "/api/notify", "/api/notify", {"user": "", "data": 1})[0] == 400
assert call("POST", "/api/notify", "/api/notify", {"data": 1}, key=False)[0] == 401
assert call("POST", "/api/broadcast", "/api/broadcast", {"data": 1, "x": 2})[0] == 400
assert call("POST", "/api/broadcast", "/api/broadcast", {"data": 1}, key=False)[0] == 401
assert call("POST", "/api/batch", "/api/batch", {"messages": []})[0] == 400
assert call("POST", "/api/batch", "/api/batch", {"messages": []}, key=False)[0] == 401
assert call("GET", "/api/rooms/lobby/history?limit=0", HISTORY)[0] == 400
assert call("GET", "/api/rooms/lobby/history", HISTORY, key=False)[0] == 401
assert call("GET", "/api/rooms/bad%20room/presence", PRESENCE)[0] == 400
assert call("GET", "/api/rooms/lobby/presence", PRESENCE, key=False)[0] == 401
assert call("GET", "/api/rooms/bad%20room/presence/stats", STATS)[0] == 400
assert call("GET", "/api/rooms/lobby/presence/stats", STATS, key=False)[0] == 401
assert call("GET", "/api/status", "/api/status", key=False)[0] == 401
assert call("GET", "/api/admin/stream", "/api/admin/stream", key=False)[0] == 401
assert call("GET", "/api/rooms?limit=0", "/api/rooms")[0] == 400
assert call("GET", "/api/rooms", "/api/rooms", key=False)[0] == 401
assert call("GET", "/api/users/%01", "/api/users/{user}")[0] == 400
assert call("GET", "/api/users/ann", "/api/users/{user}", key=False)[0] == 401
assert call("POST", "/api/users/ann/disconnect", "/api/users/{user}/disconnect", {"code": 1}, )[0] == 400
assert call("POST", "/api/users/ann/disconnect", "/api/users/{user}/disconnect", {}, key=False)[0] == 401

# Every documented answer was met, but those a test server cannot be made to give here
# (a full store, an engine that cannot keep up).
untested = {("503",), ("507",)}
missing = [
    (template, method, status)
    for template, operations in SPEC["paths"].items()
    for method, operation in operations.items()
    for status in operation["responses"]
    if (template, method, status) not in SEEN and (status,) not in untested
]
assert not missing, f"documented and never met: {missing}"
print("openapi: ok")
