"""Options shared by the verbs: `--threads` sizes TensorFlow's pools; argument types answer in one line."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from cli_helpers import run_cli

from sr_tf.cli.options import integer
from sr_tf.imageio import write_image
from sr_tf.models import SRVGGNetCompact


def test_integer_type_names_the_bound():
    parse = integer(1)
    assert parse("3") == 3
    for text, message in (("0", "must be >= 1, got 0"), ("x", "expected an integer, got 'x'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse(text)


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_threads_sizes_tensorflows_thread_pools(tmp_path):
    # ReLU: a PReLU model runs its PReLUs as XLA kernels (sr_tf.models.layers.elementwise_form), whose
    # CPU runtime adds a third pool (also sized by --threads: 23 -> 32 threads measured).
    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2, act_type="relu")
    model(np.zeros((1, 4, 4, 3), np.float32))
    model.save(tmp_path / "tiny.keras")
    write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    counts = {}
    for n in (1, 4):
        status, _, _, err = run_cli(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / f"out{n}"), "--model",
                                     str(tmp_path / "tiny.keras"), "--no-progress", "--threads", str(n)])
        assert status == 0, err
        counts[n] = run_cli.threads
    # Intra- and inter-op pools each grow by 3 threads from --threads 1 to --threads 4.
    assert counts[4] - counts[1] == 6, counts


@pytest.mark.parametrize("verb", ["upscale", "predict", "batch-predict"])
def test_every_verb_that_writes_jpeg_refuses_the_same_qualities(verb, capsys):
    from sr_tf.cli import build_parser, main

    for bad, why in (("0", "must be >= 1, got 0"), ("101", "must be in 1..100, got 101")):
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--quality", bad])
        assert exit_info.value.code == 2
        assert f"argument --quality: {why}" in capsys.readouterr().err
    sub = next(a for a in build_parser([verb])._actions if isinstance(a, argparse._SubParsersAction)).choices[verb]
    quality = next(a for a in sub._actions if "--quality" in a.option_strings)
    assert quality.default == 95 and quality.type("100") == 100
