"""A loopback relay that lets kosoku (which has no TLS) test a wss:// server.

kosoku speaks plain ws:// to this relay; for each connection the relay opens a TLS connection to
the server under test (verifying its certificate against a CA file when one is given) and copies
bytes both ways, unchanged. The TLS and the WebSocket over it are the server's own, so the cases
test the server's TLS path; only the client side's TLS is Python's `ssl`.

Either side's end closes the other at once, so Autobahn's closing-handshake verdicts (who
dropped TCP first) still describe the server.
"""

from __future__ import annotations

import asyncio
import ssl
import threading


class TlsRelay:
    """Runs in a thread of its own with its own event loop; `port` is where kosoku connects."""

    def __init__(self, host: str, port: int, server_name: str, ca_file: str | None) -> None:
        self.target = (host, port)
        self.server_name = server_name
        if ca_file:
            self.context = ssl.create_default_context(cafile=ca_file)
        else:
            # Only loopback targets reach here (drive.py checks), so an unverified certificate
            # costs nothing; a CA file makes the run check the certificate too.
            self.context = ssl.create_default_context()
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        self.context.set_alpn_protocols(["http/1.1"])
        self.port = 0
        self.failures: list[str] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="tls-relay", daemon=True)

    def start(self) -> "TlsRelay":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the TLS relay did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.close()

    async def _relay(self, plain_r: asyncio.StreamReader, plain_w: asyncio.StreamWriter) -> None:
        try:
            tls_r, tls_w = await asyncio.open_connection(
                *self.target, ssl=self.context, server_hostname=self.server_name
            )
        except (OSError, ssl.SSLError) as err:
            self.failures.append(f"TLS connection to {self.target[0]}:{self.target[1]} failed: {err}")
            plain_w.close()
            return
        await asyncio.gather(self._copy(plain_r, tls_w), self._copy(tls_r, plain_w))

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            # A TLS transport cannot half-close; a full close of both sides is what a direct
            # connection's end would look like to each peer.
            writer.close()
