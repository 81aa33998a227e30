"""A proxy script run in a child process, with a time limit.

The JavaScript engine holds Python's global lock for as long as a script runs, so a slow or
endless ``FindProxyForURL`` (a studio's script is anyone's code) would freeze every thread of
PostFlow: the event loop, the window, the uploads. In a child process it freezes only the child,
which is killed after ``TIME_LIMIT`` seconds: the script counts as broken and the fixed settings
decide. The child is ``postflow --pac-worker`` when frozen, ``python -m app.proxy.pac_worker``
otherwise; it speaks one JSON line per request on its stdin and stdout, and ends when its
stdin closes (PostFlow quit or forgot the script).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from typing import IO, Any

from app.proxy.pac_script import PacAnswer, PacError, PacScript

TIME_LIMIT = 5.0  # seconds for loading the script, and for each answer


def worker_command() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, "--pac-worker"]
    return [sys.executable, "-m", "app.proxy.pac_worker"]


class IsolatedPacScript:
    """``PacScript``'s interface, run in a child process; ``close()`` ends the child."""

    def __init__(self, source: str, origin: str, *, time_limit: float = TIME_LIMIT) -> None:
        self.origin = origin
        self._limit = time_limit
        self._lock = threading.Lock()
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console flashes up
        self._child = subprocess.Popen(
            worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", creationflags=flags,
        )  # fmt: skip
        self._answers: queue.Queue[str | None] = queue.Queue()
        assert self._child.stdout is not None
        threading.Thread(target=_pump, args=(self._child.stdout, self._answers), daemon=True).start()
        self._ask({"load": source, "origin": origin}, "reading")

    def find(self, url: str, host: str) -> PacAnswer:
        """Blocking, at most the time limit. Raises ``PacError`` (the child is then ended)."""
        answer = self._ask({"find": url, "host": host}, f"answering for {host}")
        return PacAnswer(tuple(answer["routes"]), tuple(answer["skipped"]))

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        for stream in (self._child.stdin, self._child.stdout):
            if stream is not None:
                stream.close()

    def _ask(self, request: dict[str, Any], doing: str) -> dict[str, Any]:
        with self._lock:
            if self._child.poll() is not None:
                raise PacError(f"the proxy script {self.origin} was stopped earlier (it took too long)")
            try:
                assert self._child.stdin is not None
                self._child.stdin.write(json.dumps(request) + "\n")
                self._child.stdin.flush()
                line = self._answers.get(timeout=self._limit)
            except queue.Empty:
                self.close()
                words = f"took more than {self._limit:.0f} s {doing} (an endless loop, or a slow name lookup)"
                raise PacError(f"the proxy script {self.origin} {words}: stopped") from None
            except OSError as exc:
                self.close()
                raise PacError(f"the proxy script {self.origin} cannot be run: {exc}") from None
        if line is None:
            self.close()
            raise PacError(f"the proxy script {self.origin} stopped while {doing}")
        try:
            answer: dict[str, Any] = json.loads(line)
        except ValueError:
            raise PacError(f"the proxy script {self.origin} answered something unreadable") from None
        if "error" in answer:
            raise PacError(str(answer["error"]))
        return answer


def _pump(stream: IO[str], answers: queue.Queue[str | None]) -> None:
    """The child's answers, a line each; None when it ends."""
    for line in stream:
        answers.put(line)
    answers.put(None)


def main() -> int:
    """The child: one script, answers until stdin closes."""
    protocol = sys.stdout
    sys.stdout = sys.stderr  # what the script prints (console.log) stays out of the answers
    script: PacScript | None = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if "load" in request:
                script = PacScript(request["load"], request["origin"])
                reply: dict[str, Any] = {"ok": True}
            elif script is None:
                reply = {"error": "no proxy script loaded"}
            else:
                found = script.find(request["find"], request["host"])
                reply = {"routes": list(found.routes), "skipped": list(found.skipped)}
        except PacError as exc:
            reply = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - said to PostFlow, which goes on without the script
            reply = {"error": f"the proxy script {request.get('origin', '')} cannot be run here: {exc}"}
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
