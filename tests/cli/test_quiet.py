"""Quiet by default: no TensorFlow/absl/CUDA start-up lines, no dependency warnings; `--verbose` shows them."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import clean_env, run_cli

from sr_tf._quiet import startup_lines_to_show
from sr_tf.imageio import read_image, write_image
from sr_tf.models import SRVGGNetCompact

# What `import tensorflow` and the first look for a GPU wrote on a 2-core CPU machine (TF 2.21).
STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796179713.036820    9552 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796179713.037296    9552 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796179713.306927    9552 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796179726.763894    9552 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
CPP_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)", re.M)


def test_startup_noise_is_dropped_and_real_errors_kept():
    assert startup_lines_to_show(STARTUP, gpu_present=False) == []
    real = "E0000 00:00:1.0  1 op_kernel.cc:1] could not open libfoo.so\nFatal Python error: something\n"
    assert startup_lines_to_show(STARTUP + real, gpu_present=False) == real.splitlines()


def test_a_failed_cuinit_is_said_in_our_words_where_a_gpu_is_present():
    (line,) = startup_lines_to_show(STARTUP, gpu_present=True)
    assert line.startswith("sr-tf: warning: this machine has an NVIDIA GPU but CUDA did not start")
    assert "UNKNOWN ERROR (303)" in line and "running on the CPU" in line


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return str(path)


def test_upscale_prints_no_cpp_log_lines_unless_verbose(model_file, tmp_path):
    write_image(tmp_path / "in.png", np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    argv = ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--model", model_file]
    status, _, out, err = run_cli(argv)
    assert status == 0, err
    assert read_image(tmp_path / "out" / "in_out.png").shape == (16, 16, 3)
    assert CPP_LINE.findall(err) == [], err
    assert "Traceback" not in err and "Warning" not in err, err
    # The control: the same run with --verbose shows what TensorFlow writes (so the check above can fail).
    status, _, _, err = run_cli(["--verbose", *argv])
    assert status == 0 and CPP_LINE.search(err), err


def test_the_users_own_tf_log_level_is_honoured(model_file, tmp_path):
    write_image(tmp_path / "in.png", np.zeros((4, 4, 3), np.uint8))
    status, _, _, err = run_cli(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--model",
                                 model_file, "--no-progress"], TF_CPP_MIN_LOG_LEVEL="0")
    assert status == 0 and CPP_LINE.search(err), err


def _import_beam(quiet: bool) -> str:
    code = ("from sr_tf._quiet import quiet; quiet()\n" if quiet else "") + "import apache_beam.io.gcp.bigquery\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=clean_env()).stderr


def test_dependency_warnings_the_user_cannot_act_on_are_not_shown():
    pytest.importorskip("apache_beam")
    noisy = _import_beam(quiet=False)
    if "apitools not found" not in noisy:
        pytest.skip("this Beam install has apitools: it prints nothing to hide")
    assert "apitools" not in _import_beam(quiet=True)
