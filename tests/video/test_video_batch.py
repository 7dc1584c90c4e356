"""`sr-tf batch-predict --video` on the Beam DirectRunner: segments of two videos as pipeline elements."""

from __future__ import annotations

import json

import pytest
from video_helpers import decoded_frames, make_clip, stream_packets, video_facts

from sr_tf.cli import main

pytest.importorskip("apache_beam")


def test_two_videos_of_several_segments_each_are_upscaled_and_joined(tmp_path, random_model_file, capsys):
    src = tmp_path / "in"
    make_clip(src / "a.mp4", frames=48, keyint=6, seed=1)                        # 4 segments of 0.5 s
    make_clip(src / "deeper" / "b.mkv", size=(32, 24), frames=36, keyint=6, seed=2, rotation=None)  # 3
    (src / "broken.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 100)
    out = tmp_path / "out"
    args = ["batch-predict", "--video", "--model", random_model_file, "--input", str(src), "--output", str(out),
            "--segment-seconds", "0.5", "--batch-size", "4", "--tile", "0"]
    assert main(args) == 1  # the broken file fails, the others go on
    assert "2 succeeded, 1 failed" in capsys.readouterr().out
    for rel in ("a.mp4", "deeper/b.mkv"):
        a, b = video_facts(src / rel), video_facts(out / rel)
        assert b["size"] == (a["size"][0] * 4, a["size"][1] * 4)
        assert b["frames"] == a["frames"] and b["streams"] == a["streams"]
        assert decoded_frames(out / rel)[1] == decoded_frames(src / rel)[1]
        assert stream_packets(out / rel)[1] == stream_packets(src / rel)[1]  # the audio, copied
    results = [json.loads(line) for line in (out / "prediction.results-00000-of-00001").read_text().splitlines()]
    assert {(r["instance"].rsplit("/", 1)[-1], r["prediction"]["segments"]) for r in results} == {("a.mp4", 4),
                                                                                               ("b.mkv", 3)}
    errors = [json.loads(line) for line in (out / "prediction.errors_stats-00000-of-00001").read_text().splitlines()]
    assert len(errors) == 1 and errors[0]["instance"].endswith("broken.mp4")
    assert "truncated or corrupt" in json.dumps(errors[0])
    assert not (out / ".sr-tf-video-parts").exists()  # parts removed once joined

    # a re-run finds the outputs and does not recompute them
    before = (out / "a.mp4").stat().st_mtime_ns
    assert main(args) == 1
    assert (out / "a.mp4").stat().st_mtime_ns == before
