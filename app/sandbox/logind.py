"""A stand-in for systemd-logind's sleep inhibitors, on a private D-Bus, for tests.

    dbus-run-session -- python -m app.sandbox.logind

prints the private bus's address on its first line, takes the name ``org.freedesktop.login1``
there and answers ``Manager.Inhibit(what, who, why, mode)`` as logind does: with a file
descriptor that holds the inhibitor until its last copy is closed. ``ListInhibitors`` says which
are held (what, who, why, mode, uid, pid), as logind's does.
"""

# No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from them.
import asyncio
import os
import sys

from dbus_fast import BusType
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method


class Manager(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.freedesktop.login1.Manager")
        self.held: dict[int, tuple[str, str, str, str]] = {}  # our read end → what, who, why, mode

    @method()
    def Inhibit(self, what: "s", who: "s", why: "s", mode: "s") -> "h":  # type: ignore[name-defined]  # noqa: F821, N802
        if mode not in ("block", "delay") or not set(what.split(":")) <= {"sleep", "shutdown", "idle"}:
            raise ValueError(f"invalid inhibitor: {what!r} {mode!r}")
        ours, theirs = os.pipe()
        self.held[ours] = (what, who, why, mode)
        loop = asyncio.get_running_loop()
        loop.add_reader(ours, self._released, ours)
        # Our copy of the caller's end goes once the reply has left (the bus sends a duplicate),
        # so the inhibitor lasts exactly as long as the caller keeps its own.
        loop.call_later(0.5, os.close, theirs)
        return theirs

    def _released(self, ours: int) -> None:
        if not os.read(ours, 1):  # every copy of the other end closed: the inhibitor is gone
            asyncio.get_running_loop().remove_reader(ours)
            os.close(ours)
            self.held.pop(ours, None)

    @method()
    def ListInhibitors(self) -> "a(ssssuu)":  # type: ignore[valid-type]  # noqa: F821, N802
        return [[what, who, why, mode, os.getuid(), 0] for what, who, why, mode in self.held.values()]


async def main() -> None:
    address = os.environ["DBUS_SESSION_BUS_ADDRESS"]
    bus = await MessageBus(bus_address=address, bus_type=BusType.SESSION, negotiate_unix_fd=True).connect()
    manager = Manager()
    bus.export("/org/freedesktop/login1", manager)
    await bus.request_name("org.freedesktop.login1")
    print(address, flush=True)
    await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
