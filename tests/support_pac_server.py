"""A real HTTP server on loopback serving one proxy auto-config (PAC) file."""

from __future__ import annotations

import http.server
import threading


class ScriptServer:
    """A real HTTP server on loopback serving one PAC file, counting its downloads."""

    def __init__(self) -> None:
        self.body = b"function FindProxyForURL(url, host) { return 'DIRECT'; }"
        self.status = 200
        self.hits = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                owner.hits += 1
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/x-ns-proxy-autoconfig")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/proxy.pac"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def serve(self, body: str) -> None:
        self.body = f"function FindProxyForURL(url, host) {{ {body} }}".encode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
