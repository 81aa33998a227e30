"""One PostFlow per user: a second launch asks the running one to show its window, then exits.

A local socket (a Unix socket, or a named pipe on Windows) named after the data folder, so a
test or a second profile with its own data folder is its own instance. The engine's lock
file still guards the queue itself; this only makes a double-click on the app behave.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)
SHOW = b"show\n"
CONNECT_MS = 1000


def channel_name(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"postflow-{digest}"


def ask_running_instance(data_dir: Path) -> bool:
    """True if another PostFlow answered (and was asked to show itself)."""
    socket = QLocalSocket()
    socket.connectToServer(channel_name(data_dir))
    if not socket.waitForConnected(CONNECT_MS):
        return False
    socket.write(SHOW)
    socket.waitForBytesWritten(CONNECT_MS)
    socket.disconnectFromServer()
    return True


class InstanceServer(QObject):
    """Listens for later launches; ``show_requested`` fires for each."""

    show_requested = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        name = channel_name(data_dir)
        if not self._server.listen(name):
            QLocalServer.removeServer(name)  # left behind by a crash: nobody answered on it
            if not self._server.listen(name):
                log.warning("single-instance channel unavailable: %s", self._server.errorString())
        self._server.newConnection.connect(self._accept)

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _read(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).startswith(SHOW.strip()):
            self.show_requested.emit()

    def close(self) -> None:
        self._server.close()
