"""Batch prediction against a real gcp-storage-emulator: 50 images plus a corrupt and an oversized one,
a kill midway and a resumed run."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

import numpy as np
import pytest
from batch_helpers import (
    SCALE,
    assert_upscaled_equal,
    cli_env,
    jsonl,
    png_bytes,
    random_image,
    reference_upscale,
)
from PIL import Image

from sr_tf.batch import BatchConfig, run_batch

BUCKET = "sr-tf-test"
N_GOOD = 50
MAX_PIXELS = 1000  # 16x16 = 256 pixels pass; the 40x40 image (1600 pixels) is over the limit


@pytest.fixture(scope="module")
def inputs(gcs):
    """gs://sr-tf-test/in/: 50 good 16x16 PNGs (some in a subfolder), a corrupt and an oversized one."""
    bucket = gcs.bucket(BUCKET)
    for i in range(N_GOOD):
        name = f"in/sub/img{i:02d}.png" if i % 5 == 0 else f"in/img{i:02d}.png"
        bucket.blob(name).upload_from_string(png_bytes(random_image(i)), content_type="image/png")
    bucket.blob("in/corrupt.png").upload_from_string(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    bucket.blob("in/oversized.png").upload_from_string(png_bytes(random_image(99, (40, 40, 3))))
    return f"gs://{BUCKET}/in/"


def _objects(gcs, prefix: str) -> dict[str, int]:
    return {b.name: b.generation for b in gcs.list_blobs(BUCKET, prefix=prefix)}


def _read(gcs, name: str) -> bytes:
    return gcs.bucket(BUCKET).blob(name).download_as_bytes()


def _check_outputs(gcs, prefix: str, tiny_model=None) -> list[dict]:
    """50 upscaled PNGs of 32x32, results with 50 distinct lines naming them, 2 error lines."""
    names = _objects(gcs, prefix)
    images = sorted(n for n in names if n.endswith(".png"))
    assert len(images) == N_GOOD
    assert not [n for n in names if n.endswith(".tmp")]
    for name in images[:: 10]:
        out = np.array(Image.open(io.BytesIO(_read(gcs, name))))
        assert out.shape == (16 * SCALE, 16 * SCALE, 3)
        if tiny_model is not None:  # the pixels are the model's (independent reference: Keras directly)
            i = int(name.rsplit("img", 1)[1][:2])
            want = reference_upscale(tiny_model, random_image(i)[None].astype(np.float32))[0]
            assert_upscaled_equal(out, want)
    results = jsonl(_read(gcs, f"{prefix}prediction.results-00000-of-00001").decode())
    assert len(results) == N_GOOD
    assert len({r["instance"] for r in results}) == N_GOOD
    outputs = {r["prediction"]["output"] for r in results}
    assert outputs == {f"gs://{BUCKET}/{n}" for n in images}
    errors = jsonl(_read(gcs, f"{prefix}prediction.errors_stats-00000-of-00001").decode())
    reasons = {e["instance"].rsplit("/", 1)[1]: e["error"]["message"] for e in errors}
    assert sorted(reasons) == ["corrupt.png", "oversized.png"]
    assert "corrupt" in reasons["corrupt.png"] or "not an image" in reasons["corrupt.png"]
    assert "1600 pixels, over the limit of 1000" in reasons["oversized.png"]
    return results


@pytest.mark.large
def test_gcs_job_writes_outputs_results_and_errors_then_skips_on_rerun(gcs, inputs, savedmodel, tiny_model):
    config = BatchConfig(model=str(savedmodel), input=inputs, output=f"gs://{BUCKET}/out-a",
                         max_pixels=MAX_PIXELS, batch_size=4)
    summary = run_batch(config)
    assert (summary.succeeded, summary.failed, summary.skipped) == (N_GOOD, 2, 0)
    assert summary.line() == "50 succeeded, 2 failed"
    first = _check_outputs(gcs, "out-a/", tiny_model)
    before = _objects(gcs, "out-a/")

    again = run_batch(config)
    assert (again.succeeded, again.failed, again.skipped) == (N_GOOD, 2, N_GOOD)
    after = _objects(gcs, "out-a/")
    images = [n for n in before if n.endswith(".png")]
    assert {n: after[n] for n in images} == {n: before[n] for n in images}  # not rewritten
    assert _check_outputs(gcs, "out-a/") == first


@pytest.mark.large
def test_killed_job_resumes_with_each_output_once(gcs, inputs, savedmodel):
    cmd = [sys.executable, "-m", "sr_tf", "batch-predict", "--model", str(savedmodel), "--input", inputs,
           "--output", f"gs://{BUCKET}/out-k", "--max-pixels", str(MAX_PIXELS), "--batch-size", "1"]
    killed = subprocess.run(cmd, env=cli_env(SR_TF_BATCH_KILL_AFTER="20"), capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    partial = _objects(gcs, "out-k/")
    assert len([n for n in partial if n.endswith(".png")]) == 20
    assert not [n for n in partial if "prediction." in n]  # results only appear once the job finishes

    resumed = subprocess.run(cmd, env=cli_env(), capture_output=True, timeout=300)
    out = resumed.stdout.decode()
    assert resumed.returncode == 1, resumed.stderr.decode()[-2000:]  # 2 inputs failed
    assert out.strip().splitlines()[-1] == "50 succeeded, 2 failed"
    assert "20 outputs existed already" in out
    _check_outputs(gcs, "out-k/")
    final = _objects(gcs, "out-k/")
    done = {n: g for n, g in partial.items() if n.endswith(".png")}
    assert {n: final[n] for n in done} == done  # the 20 done before the kill were not redone


def test_gcs_globs_select_objects_like_a_shell(inputs):
    from sr_tf.batch.sources import find_sources

    def names(pattern):
        config = BatchConfig(model="m", input=pattern, output=f"gs://{BUCKET}/unused")
        return sorted(s.rel for s in find_sources(config))

    assert names(f"gs://{BUCKET}/in/img0*.png") == [f"img0{i}.png" for i in (1, 2, 3, 4, 6, 7, 8, 9)]
    assert names(f"gs://{BUCKET}/in/**/img0*.png")[:2] == ["img01.png", "img02.png"]
    assert "sub/img00.png" in names(f"gs://{BUCKET}/in/**/img0*.png")
    with pytest.raises(FileNotFoundError, match="names no images files"):
        names(f"gs://{BUCKET}/in/*.jpeg")
