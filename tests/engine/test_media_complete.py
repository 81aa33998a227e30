"""The media-complete gate, over real files ``ffmpeg`` makes in the test run: each complete one is
judged complete, and each cut short at several points (a render that stalled mid-write) is not."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from app.engine.media_complete import Verdict, check_media, judged

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(
    FFMPEG is None and not os.environ.get("POSTFLOW_REQUIRE_DESKTOP"),
    reason="ffmpeg is not installed (CI installs it)",
)
VIDEO = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000"]
MADE = {
    "render.mov": [*VIDEO, "-c:v", "mpeg4", "-c:a", "aac"],  # moov at the end, as most encoders write
    "render.mp4": [*VIDEO, "-c:v", "mpeg4", "-c:a", "aac"],
    "faststart.mp4": [*VIDEO, "-c:v", "mpeg4", "-c:a", "aac", "-movflags", "+faststart"],  # moov first
    "fragmented.mov": [*VIDEO, "-c:v", "mpeg4", "-an", "-movflags", "+frag_keyframe+empty_moov"],
    "audio.m4a": ["-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:a", "aac"],
    "master.mxf": [*VIDEO, "-c:v", "mpeg2video", "-c:a", "pcm_s16le"],
}
CUTS = (0.1, 0.5, 0.9)  # fractions of the file kept, plus "all but the last byte"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    assert FFMPEG is not None, "ffmpeg is needed: apt-get install ffmpeg"
    folder = tmp_path_factory.mktemp("media")
    out = {}
    for name, args in MADE.items():
        path = folder / name
        subprocess.run([FFMPEG, "-loglevel", "error", *args, "-t", "2", "-y", str(path)], check=True)
        out[name] = path.read_bytes()
    return out


@pytest.mark.parametrize("name", sorted(MADE))
def test_a_complete_file_is_complete(media: dict[str, bytes], tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(media[name])
    assert judged(name)
    assert check_media(str(path)).verdict is Verdict.COMPLETE


@pytest.mark.parametrize("name", sorted(MADE))
@pytest.mark.parametrize("cut", [*CUTS, -1])
def test_a_file_cut_short_is_incomplete(
    media: dict[str, bytes], tmp_path: Path, name: str, cut: float
) -> None:
    data = media[name]
    kept = len(data) - 1 if cut == -1 else int(len(data) * cut)
    path = tmp_path / name
    path.write_bytes(data[:kept])
    check = check_media(str(path))
    assert check.verdict is Verdict.INCOMPLETE, (name, kept, len(data))
    assert "still being written" in check.reason or "not finished" in check.reason


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("random.mov", os.urandom(50_000)),  # named .mov, but not a QuickTime file: stability decides
        ("tiny.mov", b"abc"),
        ("random.mxf", os.urandom(50_000)),
        ("sound.wav", b"RIFF" + os.urandom(1000)),  # a type the gate does not know
        ("frame.exr", os.urandom(1000)),
    ],
)
def test_what_the_gate_does_not_know_is_left_to_stability(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert check_media(str(path)).verdict is Verdict.NOT_JUDGED


def test_an_unreadable_file_is_not_judged(tmp_path: Path) -> None:
    assert check_media(str(tmp_path / "gone.mov")).verdict is Verdict.NOT_JUDGED
