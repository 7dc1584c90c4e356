"""Blends of several `--model` specs (`sr-tf export --blend`) and denoise families (`--denoise`)."""

from __future__ import annotations

from sr_tf.models.interpolate import WeightBlend
from sr_tf.runtime.specs import load_generator


def load_blend(a: str, b: str, default: float | None = None) -> WeightBlend:
    """Real-ESRGAN's `-dn` blend of the generators `a` and `b` name: every weight `s * A + (1 - s) * B`
    for strength s in [0, 1] (A at 1, B at 0; `interpolate_models(B, A, alpha=s)`). `default`: the
    strength used when a request gives none (default 0.5)."""
    return WeightBlend([load_generator(b), load_generator(a)], default=default, names=[b, a])


def load_denoise_family(spec: str, default: float | None = None) -> WeightBlend:
    """`WeightBlend` of catalogue model `spec`'s denoise family (`sr_tf.pretrained.entries.denoise_family`),
    each member at its denoise level (Real-CUGAN and waifu2x: -1..3).

    Raises ValueError when `spec` is not a catalogue model of such a family.
    """
    from sr_tf.pretrained.entries import denoise_family

    family = denoise_family(spec)
    if family is None:
        raise ValueError(f"model {spec!r} has no denoise family in the catalogue (Real-CUGAN and waifu2x have); "
                         f"blend two compatible models instead. Received: model={spec!r}")
    levels, names = zip(*family, strict=True)
    return WeightBlend([load_generator(n) for n in names], levels, default, names=names)
