"""benchmarks/gpu.py runs end to end on a CPU with tiny models, so it is ready for a GPU machine."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def gpu_module():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its neighbours (machine, train_step)
    try:
        spec = importlib.util.spec_from_file_location("gpu_benchmark", BENCHMARKS / "gpu.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _rows(text: str) -> dict[str, list[str]]:
    """`path -> [s/image, MP/s, peak share, PSNR]` for each model section."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(\S.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+%|\?)\s+([\d.]+|inf) dB$", line)
        if m:
            rows.setdefault(m.group(1), []).append(m.groups()[1:])
    return rows


def test_tiny_run_prints_every_path_and_the_roofline_share(gpu_module, capsys):
    assert gpu_module.main(["--tiny", "--size", "16", "--repeats", "1", "--peak-tflops", "100"]) == 0
    out = capsys.readouterr().out
    assert "tiny RRDBNet x4: 16x16 -> 64x64" in out and "tiny SRVGGNetCompact x4" in out
    rows = _rows(out)
    for path in ("Keras tf.function float32", "Keras tf.function float32 XLA", "Keras tf.function float16",
                 "Keras tf.function float16 XLA", "SavedModel serving_default float32",
                 "SavedModel serving_default float16", "SavedModel serving_default float32 XLA",
                 "SavedModel serving_default float16 XLA"):
        assert len(rows.get(path, [])) == 2, (path, out)  # one row per model
        for seconds, mps, share, _ in rows[path]:
            assert float(seconds) > 0 and float(mps) > 0 and share.endswith("%")
    # float16 is computed in float16 (not float32 in disguise), yet close to float32
    for *_, quality in rows["Keras tf.function float16"]:
        assert 40 < float(quality) < 140
    torch_rows = {k: v for k, v in rows.items() if k.startswith("PyTorch")}
    if importlib.util.find_spec("torch"):
        assert torch_rows, out
        for path, values in torch_rows.items():  # the same weights: PyTorch agrees with our float32
            assert all(float(q) > 100 for *_, q in values), (path, values)
    else:
        assert "PyTorch not installed" in out
    assert re.search(r"ESRGAN G\+D train step, mixed_float16, batch 2, HR 32, 1 RRDB: [\d.]+ s/step", out)


def test_macs_and_peak_lookup(gpu_module):
    from sr_tf.models import RRDBNet

    # Per input pixel: 239,616 MAC per dense block (3 per RRDB) plus 1,393,344 outside the trunk
    # (first, body, two upsampling convs at 4x and 16x the pixels, HR conv, last conv), so the
    # published 23-block network has 69 * 239,616 + 1,393,344 = 17.9 M.
    one_block = RRDBNet(num_block=1)
    assert gpu_module.macs_per_input_pixel(one_block) == 3 * 239_616 + 1_393_344
    assert gpu_module.peak_tflops("NVIDIA A100-SXM4-80GB", None) == 312
    assert gpu_module.peak_tflops("NVIDIA H100 PCIe", None) == 756
    assert gpu_module.peak_tflops("NVIDIA H200", None) == 989
    assert gpu_module.peak_tflops("Some Future GPU", 42.0) == 42.0
    assert gpu_module.peak_tflops("Some Future GPU", None) is None
