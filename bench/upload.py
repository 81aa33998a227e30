"""Upload throughput and memory of the push engine against the sandbox, with curl as reference.

    .venv/bin/python bench/upload.py [--gib 2] [--keep]

Runs a sandbox in its own process; PUTs the file once with curl to a sandbox part URL (one
part holding the whole file); then lets the headless engine upload the same bytes (parts of the
sandbox's default size, in parallel). Prints both throughputs, their ratio, and the engine's
peak RSS (VmHWM), and the CPU time each spends per GiB (the engine shares the tray app's
process and GIL, so its CPU cost is the GUI's too). Targets: ratio ≥ 0.9, peak RSS ≤ 150 MB
whatever the file size, engine CPU per GiB ≤ 1.5 × curl's.
Not a test: run it by hand and record the figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
MiB = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    block = os.urandom(64 * MiB)
    with path.open("wb") as fh:
        left, n = size, 0
        while left > 0:
            piece = block[: min(left, len(block))]
            fh.write(n.to_bytes(8, "little") + piece[8:])
            left -= len(piece)
            n += 1


class Sandbox:
    def __init__(self, state: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "sandbox", "--state", str(state)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.http = httpx.Client(base_url=self.url, timeout=600)

    def control(self, path: str, doc: dict[str, Any] | None = None) -> Any:
        r = self.http.post(path, json=doc) if doc is not None else self.http.get(path)
        r.raise_for_status()
        return r.json()

    def files(self) -> list[dict[str, Any]]:
        return list(self.control("/_sandbox/files")["files"])

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(30)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process, from outside (/proc/PID/stat)."""
    user, system = process_cpu_split(pid)
    return user + system


def process_cpu_split(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def curl_reference(sb: Sandbox, path: Path, size: int) -> tuple[float, float]:
    sb.control("/_sandbox/settings", {"part_size": size})
    token = sb.control("/_sandbox/token", {})["access_token"]
    api = httpx.Client(base_url=sb.url, headers={"Authorization": f"Bearer {token}"})
    account = api.get("/v4/accounts").json()["data"][0]["id"]
    ws = api.get(f"/v4/accounts/{account}/workspaces").json()["data"][0]["id"]
    project = api.get(f"/v4/accounts/{account}/workspaces/{ws}/projects").json()["data"][0]
    created = api.post(
        f"/v4/accounts/{account}/folders/{project['root_folder_id']}/files/local_upload",
        json={"data": {"name": "curl_reference.mov", "file_size": size}},
    ).json()["data"]
    api.close()
    url = created["upload_urls"][0]["url"]
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run(
        ["curl", "-sS", "--fail", "-T", str(path), "-H", "x-amz-acl: private",
         "-H", f"Content-Type: {created['media_type']}", "-o", "/dev/null", url],
        check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    cpu = children_cpu() - cpu
    sb.control("/_sandbox/settings", {"part_size": 25 * MiB})
    return size / seconds, cpu


def peak_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def engine_upload(sb: Sandbox, home: Path, watch: Path, size: int, parts: int) -> tuple[float, float, float]:
    """Throughput, peak RSS, and CPU seconds from "running" to "delivered" (start-up excluded)."""
    from engine_harness import EngineProcess, sign_in_into_file_keyring

    class Url:
        url = sb.url

    keyring_file = home / "keyring.json"
    os.environ["POSTFLOW_CONFIG_DIR"] = str(home / "config")  # never the user's real folders
    os.environ["POSTFLOW_DATA_DIR"] = str(home / "data")
    asyncio.run(sign_in_into_file_keyring(_SandboxShim(sb), keyring_file))
    engine = EngineProcess(
        Url, home, watch, keyring_file, POSTFLOW_STABLE_SECONDS="0.5", POSTFLOW_PARTS_PER_FILE=str(parts)
    )
    engine.start()
    assert engine.proc is not None
    try:
        while "PostFlow is running headless" not in engine.log():
            if engine.proc.poll() is not None:
                raise SystemExit("engine did not start:\n" + engine.log()[-2000:])
            time.sleep(0.05)
        cpu_start = process_cpu(engine.proc.pid)
        split_start = process_cpu_split(engine.proc.pid)
        deadline = time.monotonic() + 3600
        while "delivered to Frame.io" not in engine.log():
            if time.monotonic() > deadline or engine.proc.poll() is not None:
                raise SystemExit("engine did not deliver the file:\n" + engine.log()[-2000:])
            time.sleep(0.2)
        rss = peak_rss_mb(engine.proc.pid)
        cpu = process_cpu(engine.proc.pid) - cpu_start
        split = process_cpu_split(engine.proc.pid)
        print(f"engine CPU: user {split[0] - split_start[0]:.2f} s, system {split[1] - split_start[1]:.2f} s")
    finally:
        engine.stop()
    match = re.search(r"delivered to Frame.io \((\d+) bytes in ([\d.]+)s", engine.log())
    assert match is not None
    return int(match.group(1)) / float(match.group(2)), rss, cpu


class _SandboxShim:
    """What the test helpers need of a sandbox: its url and a sync control client."""

    def __init__(self, sb: Sandbox) -> None:
        self.url = sb.url
        self.http = sb.http

    def control(self, path: str, doc: dict[str, Any] | None = None) -> Any:
        return Sandbox.control(self, path, doc)  # type: ignore[arg-type]


def run_once(gib: float, parts: int, keep: bool) -> dict[str, float]:
    size = int(gib * 1024 * MiB)
    work = Path(tempfile.mkdtemp(prefix="postflow-bench-"))
    try:
        watch = work / "engine" / "watch"
        watch.mkdir(parents=True)
        source = watch / "bench_master.mov"
        print(f"writing a {gib:g} GiB file…", flush=True)
        make_file(source, size)
        sb = Sandbox(work / "sandbox")
        try:
            curl_bps, curl_cpu = curl_reference(sb, source, size)
            print(f"curl:   {curl_bps / 1e6:8.1f} MB/s", flush=True)
            engine_bps, rss, engine_cpu = engine_upload(sb, work / "engine", watch, size, parts)
            print(f"engine: {engine_bps / 1e6:8.1f} MB/s (parts of 25 MiB, {parts} in parallel)")
            verified = [f for f in sb.files() if f["name"] == "bench_master.mov" and f["status"] != "created"]
            assert len(verified) == 1 and verified[0]["file_size"] == size, "upload not verified"
        finally:
            sb.stop()
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    per_gib = size / (1024 * MiB)
    result = {
        "curl_MBps": curl_bps / 1e6, "engine_MBps": engine_bps / 1e6, "ratio": engine_bps / curl_bps,
        "peak_rss_MB": rss, "engine_cpu_s_per_GiB": engine_cpu / per_gib,
        "curl_cpu_s_per_GiB": curl_cpu / per_gib, "cpu_ratio": engine_cpu / max(curl_cpu, 1e-9),
    }  # fmt: skip
    print(f"ratio engine/curl: {result['ratio']:.2f}  (target ≥ 0.9)")
    print(f"engine peak RSS:   {rss:.0f} MB (target ≤ 150 MB)")
    engine_s, curl_s = result["engine_cpu_s_per_GiB"], result["curl_cpu_s_per_GiB"]
    print(f"CPU per GiB:       engine {engine_s:.2f} s, curl {curl_s:.2f} s: "
          f"ratio {result['cpu_ratio']:.2f} (target ≤ 1.5)")  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gib", type=float, default=2.0, help="file size in GiB")
    parser.add_argument("--parts", type=int, default=4, help="parts uploaded in parallel by the engine")
    parser.add_argument(
        "--runs", type=int, default=1, help="repeat, then print the medians (a noisy machine)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the reference measurement (apt-get install curl)")
    runs = []
    for number in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"--- run {number} of {args.runs}")
        runs.append(run_once(args.gib, args.parts, args.keep))
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    if args.runs > 1:
        print(f"--- median of {args.runs} runs")
        m = median
        print(f"throughput ratio {m['ratio']:.2f} (target ≥ 0.9), peak RSS {m['peak_rss_MB']:.0f} MB")
        print(f"CPU per GiB: engine {m['engine_cpu_s_per_GiB']:.2f} s, curl {m['curl_cpu_s_per_GiB']:.2f} s, "
              f"ratio {m['cpu_ratio']:.2f} (target ≤ 1.5)")  # fmt: skip
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    doc = {"gib": args.gib, "parts": args.parts, "cpus": os.cpu_count(), "runs": runs, "median": median}
    (out / f"upload-{args.gib:g}GiB-{args.parts}parts.json").write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
