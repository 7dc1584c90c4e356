"""A run killed (SIGKILL) after some segments resumes at the first missing one and ends with the same video."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from video_helpers import decoded_planes, make_clip, stream_packets

from sr_tf.video.job import KILL_AFTER_ENV


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "sr_tf", "upscale-video", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600)


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tmp_path, random_model_file):
    src = tmp_path / "clip.mp4"
    # keyframes every 0.25 s: 4 segments of 0.5 s. The output (128x96) is a multiple of 16 wide and high:
    # at other sizes libx264 (PyAV 18's build) reads uninitialised memory in its macroblock-tree code and
    # two uninterrupted runs already differ by a few code values (MALLOC_PERTURB_ makes them equal).
    make_clip(src, size=(32, 24), frames=48, keyint=6)
    args = ["--model", random_model_file, "--segment-seconds", "0.5", "--batch", "5"]

    whole = _cli(src, "-o", tmp_path / "whole.mp4", *args)
    assert whole.returncode == 0, whole.stderr

    killed = _cli(src, "-o", tmp_path / "resumed.mp4", *args, env={KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "resumed.mp4").exists()  # no partial output under the final name
    parts = tmp_path / ".resumed.mp4.sr-tf-parts"
    assert sorted(p.name for p in parts.glob("seg-*.nut")) == ["seg-00000.nut", "seg-00001.nut"]

    resumed = _cli(src, "-o", tmp_path / "resumed.mp4", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "kept 2 of 4 segments" in resumed.stdout
    assert not parts.exists()
    a, b = decoded_planes(tmp_path / "whole.mp4"), decoded_planes(tmp_path / "resumed.mp4")
    assert len(a) == len(b) == 48
    for frame_a, frame_b in zip(a, b, strict=True):
        for plane_a, plane_b in zip(frame_a, frame_b, strict=True):
            assert (plane_a == plane_b).all()
    assert stream_packets(tmp_path / "whole.mp4") == stream_packets(tmp_path / "resumed.mp4")


def test_parts_of_other_settings_are_not_reused(tmp_path, random_model_file):
    src = tmp_path / "clip.mp4"
    make_clip(src, frames=24, subtitles=False)
    args = ["--model", random_model_file, "--segment-seconds", "0.5"]
    killed = _cli(src, "-o", tmp_path / "out.mp4", *args, env={KILL_AFTER_ENV: "1"})
    assert killed.returncode == -signal.SIGKILL
    again = _cli(src, "-o", tmp_path / "out.mp4", *args, "--crf", "30")
    assert again.returncode == 0, again.stderr
    assert "kept" not in again.stdout


def test_a_damaged_finished_segment_is_named_and_encoded_again(tmp_path, random_model_file):
    src = tmp_path / "clip.mp4"
    make_clip(src, size=(32, 24), frames=48, keyint=6)  # 4 segments of 0.5 s, as above
    args = ["--model", random_model_file, "--segment-seconds", "0.5", "--batch", "5"]
    whole = _cli(src, "-o", tmp_path / "whole.mp4", *args)
    assert whole.returncode == 0, whole.stderr
    killed = _cli(src, "-o", tmp_path / "resumed.mp4", *args, env={KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL
    parts = tmp_path / ".resumed.mp4.sr-tf-parts"
    damaged = parts / "seg-00000.nut"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the recorded SHA-256 can tell
    damaged.write_bytes(bytes(data))

    resumed = _cli(src, "-o", tmp_path / "resumed.mp4", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"warning: {src}: segment {damaged} of an earlier run is corrupt: its SHA-256 differs from the "
            "recorded one; encoding it again") in resumed.stderr
    assert "kept 1 of 4 segments" in resumed.stdout
    assert len(decoded_planes(tmp_path / "resumed.mp4")) == 48
    assert stream_packets(tmp_path / "whole.mp4") == stream_packets(tmp_path / "resumed.mp4")  # the same video
