#!/usr/bin/env python3
"""Reference echo servers for proving the Autobahn harness (not roomcast code).

Implementations (--impl), both from PyPI:

  autobahn    Autobahn|Python, the library the Autobahn test cases were written
              against: passes sections 1-10 in full (the known-good server).
  websockets  the `websockets` package: passes all but 7.1.5 (it fails a close
              that arrives in the middle of a fragmented message with 1002) and
              9.3.1/9.3.2/9.4.1/9.4.2 (it refuses messages of more than 4096
              fragments with 1009) - useful as a realistic "almost" server.

Modes (--mode):

  good         echo every text and binary message unchanged
  no-binary    deliberately broken: binary messages are silently dropped
  mangle-text  deliberately broken: text messages are echoed with "!" appended

Listens only on a loopback address, serves WebSocket only on --path (any other
path gets HTTP 404, so a harness that loses the URL's path is caught), and
exits by itself after --lifetime seconds.

    python echo_server.py --impl autobahn --port 9001 --path /ws/echo --mode good
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--impl", choices=["autobahn", "websockets"], default="autobahn")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--path", default="/ws/echo")
    ap.add_argument("--mode", choices=["good", "no-binary", "mangle-text"], default="good")
    ap.add_argument("--lifetime", type=float, default=1800.0, help="exit after this many seconds")
    args = ap.parse_args()
    if args.host != "localhost" and not ipaddress.ip_address(args.host).is_loopback:
        ap.error("only loopback addresses may be used")
    return args


def transform(mode: str, payload, is_binary: bool):
    """Return what to echo, or None to echo nothing."""
    if is_binary:
        return None if mode == "no-binary" else payload
    if mode == "mangle-text":
        return payload + ("!" if isinstance(payload, str) else b"!")
    return payload


async def run_autobahn(args: argparse.Namespace) -> None:
    import txaio

    txaio.use_asyncio()
    txaio.start_logging(level="error")  # not one line per failed connection
    from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from autobahn.websocket.types import ConnectionDeny

    class Echo(WebSocketServerProtocol):
        def onConnect(self, request):
            if request.path != args.path:
                raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "not found")
            return None

        def onMessage(self, payload, isBinary):
            out = transform(args.mode, payload, isBinary)
            if out is not None:
                self.sendMessage(out, isBinary)

    factory = WebSocketServerFactory(f"ws://{args.host}:{args.port}")
    factory.protocol = Echo
    factory.setProtocolOptions(
        autoPingInterval=0,
        openHandshakeTimeout=10,
        closeHandshakeTimeout=5,
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, args.host, args.port)
    print(f"echo server (autobahn, {args.mode}) on ws://{args.host}:{args.port}{args.path}", file=sys.stderr, flush=True)
    try:
        await asyncio.sleep(args.lifetime)
    finally:
        server.close()


async def run_websockets(args: argparse.Namespace) -> None:
    import http

    from websockets.asyncio.server import serve

    async def handler(ws) -> None:
        async for msg in ws:
            out = transform(args.mode, msg, isinstance(msg, bytes))
            if out is not None:
                await ws.send(out)

    def process_request(connection, request):
        if request.path.split("?", 1)[0] != args.path:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async with serve(
        handler,
        args.host,
        args.port,
        process_request=process_request,
        max_size=None,  # Autobahn 9.x sends messages up to 16 MiB
        max_queue=None,
        compression=None,  # sections 1-10 need no permessage-deflate
        ping_interval=None,
    ):
        print(f"echo server (websockets, {args.mode}) on ws://{args.host}:{args.port}{args.path}", file=sys.stderr, flush=True)
        await asyncio.sleep(args.lifetime)


def main() -> None:
    args = parse_args()
    try:
        asyncio.run(run_autobahn(args) if args.impl == "autobahn" else run_websockets(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
