"""Catch the OAuth redirect on 127.0.0.1: one request, then the listener is gone.

For ``postflow login`` and users who prefer their own browser. The socket closes as soon as the
redirect arrives, so a second request (or anyone else on the machine) is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>PostFlow</title></head>"
    "<body style='font-family:sans-serif;margin:3em'><h2>PostFlow</h2>"
    "<p>{message}</p><p>You can close this tab.</p></body></html>"
)


class LoopbackReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, path: str = "/callback") -> None:
        self._host, self._port, self._path = host, port, path
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[str] | None = None
        self.redirect_uri = ""

    async def start(self) -> str:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        port = self._server.sockets[0].getsockname()[1]
        self.redirect_uri = f"http://{self._host}:{port}{self._path}"
        return self.redirect_uri

    async def wait(self) -> str:
        assert self._result is not None, "start() first"
        return await self._result

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = (request_line.split(" ") + ["", ""])[:3]
            if method != "GET" or urlsplit(target).path != self._path:
                await self._reply(writer, 404, "Not the PostFlow sign-in address.")
                return
            if self._server is not None:
                self._server.close()  # one redirect only: nobody else gets in
            await self._reply(writer, 200, "Sign-in received. PostFlow is finishing it.")
            if self._result is not None and not self._result.done():
                self._result.set_result(self.redirect_uri.split(self._path)[0] + target)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, message: str) -> None:
        body = PAGE.format(message=message).encode()
        reason = "OK" if status == 200 else "Not Found"
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n".encode()
            + body
        )
        await writer.drain()
