"""Checks the protocol's JSON Schema (docs/schema/protocol-v1.json) against the reference codec.

Usage: schema_check.py SCHEMA SAMPLES

SAMPLES is a JSON file the Rust test wrote: `server`, the text of every kind of server message
as the codec encodes it (each must be a valid ServerMessage: the schema refuses fields it does
not name, so a field added in code fails here); `client`, frames with whether the codec
accepted each (each must be a valid ClientMessage exactly when the codec accepted it).
Prints `schema: ok` at the end; any disagreement is listed and fails.
"""

import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
samples = json.load(open(sys.argv[2]))
jsonschema.Draft202012Validator.check_schema(schema)


def validator(name):
    root = dict(schema)
    root.pop("anyOf")
    root["$ref"] = f"#/$defs/{name}"
    return jsonschema.Draft202012Validator(root)


server, client = validator("ServerMessage"), validator("ClientMessage")
failures = []
kinds = set()
for text in samples["server"]:
    frame = json.loads(text)
    kinds.add(frame["type"])
    errors = [e.message for e in server.iter_errors(frame)]
    if errors:
        failures.append(f"server {text}: {errors[:3]}")
named = {one["$ref"].rsplit("/", 1)[1] for one in schema["$defs"]["ServerMessage"]["oneOf"]}
if len(kinds) != len(named):
    failures.append(f"the samples have {len(kinds)} kinds of server message, the schema {len(named)}")
for text, accepted in samples["client"]:
    try:
        frame = json.loads(text)
    except json.JSONDecodeError:
        frame = None
    valid = frame is not None and client.is_valid(frame)
    if valid != accepted:
        failures.append(f"client {text}: the codec {'accepts' if accepted else 'refuses'} it, the schema {'accepts' if valid else 'refuses'} it")
if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"schema: ok ({len(samples['server'])} server messages, {len(samples['client'])} client frames)")
