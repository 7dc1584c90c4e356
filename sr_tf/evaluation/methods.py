"""The things being compared: the bicubic baseline and generators, as `uint8 LR -> uint8 SR` functions.

Model outputs are clipped to [0, 1] and rounded to 8 bits before any metric, as when they are
saved to PNG (and as BasicSR's `tensor2img` does before `calculate_psnr`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np

from sr_tf.defaults import TILE_PAD
from sr_tf.evaluation.data import imresize, to_uint8

BICUBIC = "bicubic"


@dataclasses.dataclass(frozen=True)
class Method:
    """One column of the results.

    Attributes:
      name: display name (unique within an evaluation).
      kind: "bicubic", "pretrained" (catalogue name), "file" (`.keras`) or "model" (in memory).
      spec: what the user gave (catalogue name, path).
      scale: upscaling factor.
      upscale: `[h, w, 3] uint8 -> [scale*h, scale*w, 3] uint8`.
    """

    name: str
    kind: str
    spec: str
    scale: int
    upscale: Callable[[np.ndarray], np.ndarray] = dataclasses.field(repr=False, compare=False)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "spec": self.spec, "scale": self.scale}


def bicubic_upscale(lr: np.ndarray, scale: int, convention: str = "matlab") -> np.ndarray:
    """`[h, w, 3] uint8 -> [scale*h, scale*w, 3] uint8`, MATLAB's `imresize(lr, scale, 'bicubic')`.

    Keys cubic (a = -0.5), half-pixel centres, mirrored borders: the "Bicubic" row of papers.
    `convention` "matlab" rounds to 8 bits after each axis, as MATLAB does for uint8 images;
    "pipeline" resizes in floating point and rounds once.
    """
    if convention == "matlab":
        from sr_tf.data.resize import imresize_uint8

        return imresize_uint8(lr, 1.0 / scale)
    return to_uint8(imresize(lr.astype(np.float32) / 255.0, 1.0 / scale))


def bicubic_method(scale: int, convention: str = "matlab") -> Method:
    """The baseline every report includes."""
    return Method(BICUBIC, BICUBIC, f"MATLAB imresize of the 8-bit LR ({convention} convention)", scale,
                  lambda lr: bicubic_upscale(lr, scale, convention))


def model_method(model, name: str, *, spec: str = "", kind: str = "model", tile: int = 0, tile_pad: int = TILE_PAD,
                 backend: str = "tf", precision: str = "float32") -> Method:
    """Wraps a generator (`[N, H, W, 3] float32 [0, 1] -> [N, sH, sW, 3]`) with tiled inference.

    Args:
      model: a keras generator with a `scale` (or `upscale`) attribute.
      name: display name.
      spec: what the user gave, for the report.
      kind: see `Method`.
      tile, tile_pad: tiled inference for images larger than `tile` LR pixels (0: never tile).
      backend, precision: how the model runs (see `sr_tf.backends`).
    """
    from sr_tf.inference import Upscaler, upscale_image

    upscaler = Upscaler(model, backend, precision)  # compiled once, reused for every image

    def upscale(lr: np.ndarray) -> np.ndarray:
        return upscale_image(upscaler, lr, tile=tile, tile_pad=tile_pad)

    return Method(name, kind, spec or name, upscaler.scale, upscale)


def load_generator(spec: str):
    """A keras generator from a `.keras` file or a pretrained catalogue name; returns `(model, kind)`."""
    from sr_tf import runtime

    parsed = runtime.model_spec(spec)
    return runtime.load_generator(parsed), ("pretrained" if parsed.kind == "catalogue" else "file")


RUN_OUTPUTS = ("generator", "best_generator")  # what `sr-tf train` writes into every run directory


def method_name(spec: str) -> str:
    """Display name for a model spec: the catalogue name, or the file name without `.keras`
    (`RUN/generator` for the files `sr-tf train` writes, which are named alike in every run)."""
    path = spec.rstrip("/\\")
    base = os.path.basename(path)
    stem = base[: -len(".keras")] if base.endswith(".keras") else base
    run = os.path.basename(os.path.dirname(path))
    return f"{run}/{stem}" if stem in RUN_OUTPUTS and run else stem


def load_methods(specs: Sequence[str], scale: int, *, tile: int = 0, tile_pad: int = TILE_PAD,
                 backend: str = "tf", precision: str = "float32", convention: str = "matlab") -> list[Method]:
    """The bicubic baseline followed by one method per model spec, all checked to upscale by `scale`.

    Raises:
      ValueError / FileNotFoundError: unknown names, missing files, or a model of another scale.
    """
    methods = [bicubic_method(scale, convention)]
    taken = {BICUBIC, "LR", "HR"}  # "LR" and "HR" name the crops shown beside the outputs
    for spec in specs:
        model, kind = load_generator(spec)
        name = method_name(spec)
        if name in taken:  # two files with the same name in different folders
            name = f"{name} ({len(methods)})"
        taken.add(name)
        method = model_method(model, name, spec=spec, kind=kind, tile=tile, tile_pad=tile_pad,
                              backend=backend, precision=precision)
        if method.scale != scale:
            raise ValueError(f"Model {spec!r} upscales by {method.scale}, but the evaluation scale is {scale}.")
        methods.append(method)
    return methods
