"""``postflow publish FILE [--tunnel]``: the URL on the first line, served until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def _publish(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app", "publish", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())  # fmt: skip


@pytest.mark.parametrize("tunnel", [False, True])
def test_publish_prints_the_url_first_and_serves_until_ctrl_c(tmp_path: Path, tunnel: bool) -> None:
    media = tmp_path / "probe.mov"
    media.write_bytes(os.urandom(50_000))
    with _publish([str(media), *(["--tunnel"] if tunnel else [])]) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()
        answer = httpx.get(url, headers={"Range": "bytes=-100"}, timeout=10)
        assert answer.status_code == 206 and answer.content == media.read_bytes()[-100:]
        assert httpx.get(url + "x", timeout=10).status_code == 404
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        said = proc.stderr.read()
    token = url.rsplit("/", 1)[-1]
    assert url.startswith("http://127.0.0.1:") and len(token) >= 32 and "." not in token
    assert "Serving probe.mov (50,000 bytes)" in said and "1 request(s), 100 distinct bytes sent" in said
    assert token not in said


def test_publishing_what_is_not_a_file_says_so(tmp_path: Path) -> None:
    with _publish([str(tmp_path)]) as proc:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 78 and out == "" and "is not a file that can be published" in err
