"""Is the frozen PostFlow lean and quick to start, next to the smallest frozen PySide6 tray app?

    .venv/bin/python bench/frozen_bundle.py [--app dist/PostFlow/postflow] [--runs 5]

Freezes the reference (bench/frozen_tray: a QSystemTrayIcon with an SVG icon) with the same
lean filter as build.spec, in this run, then starts each frozen app in turn on a real X desktop
(Xvfb, a D-Bus session, dunst, trayer: tests/support_desktop.py) and times process start → its
icon embedded in the tray, median of the runs, alternating the two so both see the same
machine. Prints both bundles' sizes and the ratios. Target: start-up ≤ 1.5× the reference.
Build PostFlow first (installers/linux/build.sh); .ci/run does both and prints this report.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "installers"))

from smoke_test import isolated_env  # noqa: E402
from support_desktop import Desktop, missing_tools  # noqa: E402

TARGET = 1.5


def build_reference(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "ERROR",
                    "--distpath", str(out / "dist"), "--workpath", str(out / "build"),
                    str(REPO / "bench" / "frozen_tray" / "minimal_tray.spec")], check=True)  # fmt: skip
    return out / "dist" / "MinimalTray" / "minimal_tray"


def size(bundle: Path) -> int:
    return sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())


def start_to_icon(desktop: Desktop, command: list[str], name: str, home: Path) -> float:
    """Seconds from starting the program to its icon in trayer's panel (a fresh user each time)."""
    session = {k: v for k, v in desktop.env.items() if k in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
    desktop.env = {**isolated_env(home), **session, "POSTFLOW_TRAY_WAIT": "20"}
    started = time.monotonic()
    proc = desktop.start(*command, log=f"{name}-{home.name}")
    try:
        while desktop.embedded_icon(name) is None:
            if proc.poll() is not None:
                raise SystemExit(f"{name} stopped before showing its icon (see {desktop.tmp})")
            if time.monotonic() - started > 60:
                raise SystemExit(f"{name}: no icon in the tray after 60 s")
            time.sleep(0.01)
        return time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(30)
        desktop.procs.remove(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", type=Path, default=REPO / "dist" / "PostFlow" / "postflow")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.app.is_file():
        raise SystemExit(f"no frozen PostFlow at {args.app}: build it with installers/linux/build.sh")
    if missing_tools():
        raise SystemExit(f"real-desktop tools missing: {', '.join(missing_tools())}")
    out = REPO / "bench" / "out" / "frozen"
    reference = build_reference(out)
    with tempfile.TemporaryDirectory(prefix="postflow-frozen-bench-") as tmp:
        desktop = Desktop(Path(tmp))
        try:
            desktop.boot()
            times: dict[str, list[float]] = {"PostFlow": [], "MinimalTray": []}
            for run in range(args.runs + 1):  # the first round warms the page cache: not counted
                for name, command in (("PostFlow", [str(args.app), "--sandbox"]),
                                      ("MinimalTray", [str(reference)])):  # fmt: skip
                    took = start_to_icon(desktop, command, name, Path(tmp) / f"{name}-{run}")
                    if run:
                        times[name].append(took)
        finally:
            desktop.stop()
    ours, theirs = statistics.median(times["PostFlow"]), statistics.median(times["MinimalTray"])
    our_size, their_size = size(args.app.parent), size(reference.parent)
    print(f"{'':14}{'bundle':>10}{'start → icon (median of ' + str(args.runs) + ')':>32}")
    print(f"{'PostFlow':14}{our_size / 1e6:>8.0f}MB{ours:>30.2f} s")
    print(f"{'minimal tray':14}{their_size / 1e6:>8.0f}MB{theirs:>30.2f} s")
    ratio = ours / theirs
    print(
        f"ratio: bundle {our_size / their_size:.2f}× (PostFlow carries QtWebEngine for Adobe sign-in), "
        f"start-up {ratio:.2f}× (target ≤ {TARGET}×: {'met' if ratio <= TARGET else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
