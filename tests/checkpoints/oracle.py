"""spandrel (PyTorch) as the oracle for our checkpoint imports.

PyPI's torchvision does not load against the CPU torch wheel (`torchvision::nms does not exist`), and
spandrel's registry imports it for LaMa and RestoreFormer alone. `spandrel_arch(name)` therefore puts a
minimal stand-in for the three torchvision names those two modules import (never called by the
architectures we compare) before importing spandrel, when the real torchvision is absent or broken.
The lpips package (the LPIPS oracle) imports `torchvision.models` and builds `models.vgg16().features`;
the stand-in builds that layer list by hand (torchvision's configuration "D"), without weights.
"""

from __future__ import annotations

import enum
import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "photos"


def _vgg16(pretrained=False, **kwargs):
    """torchvision's `vgg16()` with its `features` only (13 3x3 convolutions, ReLUs, 4+1 max poolings)."""
    if pretrained:
        raise RuntimeError("the torchvision stand-in has no pretrained weights")
    nn = torch().nn
    layers, channels = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return types.SimpleNamespace(features=nn.Sequential(*layers))


def _stand_in_torchvision() -> None:
    try:
        import torchvision.models
        import torchvision.transforms.functional  # noqa: F401

        torchvision.models.vgg16  # noqa: B018
        return
    except Exception:  # noqa: BLE001 - broken torchvision raises RuntimeError at import
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"

    def _unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is not available in this environment")

    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode
    functional.rotate = functional.normalize = _unavailable
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    models = types.ModuleType("torchvision.models")
    models.vgg16 = _vgg16
    root = types.ModuleType("torchvision")
    root.transforms, root.models = transforms, models
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional, "torchvision.models": models})


def torch():
    return pytest.importorskip("torch")


def spandrel():
    torch()
    _stand_in_torchvision()
    return pytest.importorskip("spandrel")


def lpips_package():
    """The `lpips` package (the LPIPS oracle), importable without a working torchvision; skips if absent."""
    torch()
    pytest.importorskip("scipy")  # lpips' trainer module imports scipy.ndimage
    _stand_in_torchvision()
    return pytest.importorskip("lpips")


def spandrel_arch(module: str):
    """`spandrel.architectures.<module>` (e.g. "ESRGAN"), skipping the test if spandrel is missing."""
    spandrel()
    return importlib.import_module(f"spandrel.architectures.{module}")


def randomize(net, seed: int = 0, scale: float = 0.2):
    """Fills every parameter and float buffer of `net` with seeded noise (so no weight is a default)."""
    t = torch()
    gen = t.Generator().manual_seed(seed)
    with t.no_grad():
        for _, p in net.named_parameters():
            p.copy_(t.randn(p.shape, generator=gen) * scale)
    return net.eval()


def state_of(net) -> dict[str, np.ndarray]:
    """`net.state_dict()` as numpy arrays (what our reader returns for a file of it)."""
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def photo_crop(height: int, width: int, index: int = 0, channels: int = 3) -> np.ndarray:
    """`[1, height, width, channels] float32 in [0, 1]`, a crop from one of the shared photos."""
    from PIL import Image

    files = sorted(PHOTOS.glob("*.jpg"))
    if not files:
        pytest.skip(f"no photos in {PHOTOS}")
    with Image.open(files[index % len(files)]) as img:
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    top, left = arr.shape[0] // 3, arr.shape[1] // 3
    crop = arr[top:top + height, left:left + width]
    if channels == 1:
        crop = crop.mean(axis=-1, keepdims=True)
    return crop[None]


def torch_forward(net, x: np.ndarray) -> np.ndarray:
    """Runs `net` on NHWC numpy `x`; returns NHWC numpy."""
    t = torch()
    with t.no_grad():
        out = net(t.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    return out.numpy().transpose(0, 2, 3, 1)


def psnr(a: np.ndarray, b: np.ndarray, peak: float | None = None) -> float:
    """PSNR in dB of `a` against `b`; `peak` defaults to the reference's dynamic range (at least 1)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    peak = peak if peak is not None else max(1.0, float(b.max() - b.min()))
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)
