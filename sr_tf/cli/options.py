"""Options shared by several verbs, with one default each, and the errors every verb reports alike.

Nothing here imports TensorFlow (or anything heavy): verbs call these from `add_arguments`, which
must answer `--help` and argument errors in a fraction of a second.

Tiling defaults (`TILE`, `TILE_PAD`, `EVALUATE_TILE`) come from `sr_tf.defaults`, which says why.
"""

from __future__ import annotations

import argparse
import os
import re

from sr_tf.defaults import EVALUATE_TILE, TILE, TILE_PAD  # noqa: F401  (re-exported for the verbs)


class UsageError(ValueError):
    """A user mistake in the command line; `sr-tf` prints it as one line and exits with status 2."""


def flag_names(text: str, parser: argparse.ArgumentParser) -> str:
    """A library error's text with the verb's parameter names written as its flags.

    The library names parameters, never flags (`` `input` matches no file``, `Received: tile_pad=3`);
    a name that is the `dest` of one of `parser`'s options becomes that option's long flag
    (`--input matches no file`, `Received: --tile-pad=3`). Other words are left alone. A verb
    whose flags fill a config's fields lists them as `parser.config_flags` (`{"data.val_split":
    "--val-split"}`), and those keys are translated too.
    """
    flags = {a.dest: max(a.option_strings, key=len) for a in parser._actions
             if a.option_strings and a.dest not in ("help", argparse.SUPPRESS)}
    flags.update(getattr(parser, "config_flags", {}))
    if not flags:
        return text
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    text = re.sub(rf"`({names})`", lambda m: flags[m.group(1)], text)
    return re.sub(rf"(?<![\w.`-])({names})=", lambda m: flags[m.group(1)] + "=", text)


def integer(minimum: int):
    """An argparse `type` for integers >= `minimum` (the error names the bound, not a traceback)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_tiling(p: argparse.ArgumentParser, tile_help: str = "", aliases: tuple[str, ...] = (),
               tile: int = TILE) -> None:
    """`--tile` and `--tile-pad` with the defaults every verb shares (see the module docstring)."""
    p.add_argument("--tile", *aliases, type=integer(0), default=tile, metavar="N",
                   help=tile_help or "images larger than N input pixels run in N x N tiles, bounding memory; "
                   "0 = whole images (default: %(default)s)")
    p.add_argument("--tile-pad", type=integer(0), default=TILE_PAD, metavar="P",
                   help="context pixels around each tile (default: %(default)s)")


def add_progress(p: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    p.add_argument("--no-progress", action="store_true", help=help)


def add_noise_level(p: argparse.ArgumentParser, what: str = "the input's noise level") -> None:
    """`--noise-level` for SRMD models (upscale, predict, export): one type, one default (the model's)."""
    p.add_argument("--noise-level", type=float, default=None, metavar="SIGMA",
                   help=f"SRMD models only: {what}, sigma in 8-bit units 0-75 "
                        "(default: the model's, 3 for the catalogue's srmd-x*)")


def add_denoise(p: argparse.ArgumentParser, what: str) -> None:
    """`--denoise` (upscale, export): where on a blend's axis, Real-ESRGAN's `-dn`. Library errors about
    the blend's `strength` (and its `default`) name this flag."""
    p.add_argument("--denoise", type=float, default=None, metavar="X", help=what)
    p.config_flags = {**getattr(p, "config_flags", {}), "strength": "--denoise", "default": "--denoise"}


def quality(text: str) -> int:
    """An argparse `type` for a JPEG/WebP quality, an integer in 1..100."""
    value = integer(1)(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be in 1..100, got {value}")
    return value


def add_quality(p: argparse.ArgumentParser) -> None:
    """`--quality` for every verb that writes JPEG or WebP (one range, one default)."""
    p.add_argument("--quality", type=quality, default=95, metavar="Q",
                   help="JPEG/WebP quality 1-100 (default: %(default)s)")


def add_color_fix(p: argparse.ArgumentParser, what: str = "") -> None:
    """`--color-fix` (`sr_tf.colorfix`) for upscale, upscale-video, batch-predict and export."""
    from sr_tf.colorfix import COLOR_FIXES  # no TensorFlow at import

    p.add_argument("--color-fix", choices=COLOR_FIXES, default="none",
                   help=what or "take the output's colours from the bicubic-upscaled input, against GAN colour "
                        "shifts: wavelet = its low frequencies, adain = each channel's mean and std "
                        "(default: %(default)s)")


def add_strip_metadata(p: argparse.ArgumentParser) -> None:
    """`--strip-metadata` for every verb that writes upscaled images (upscale, batch-predict, predict)."""
    p.add_argument("--strip-metadata", action="store_true",
                   help="write pixels only; by default outputs keep the input's ICC profile, EXIF (orientation "
                        "1, new pixel dimensions), XMP, PNG text and DPI (times the scale)")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=integer(1), default=None, metavar="N",
                   help="CPU threads for TensorFlow's operations (intra- and inter-op pools; "
                        "default: TensorFlow's choice, one per core)")


def apply_threads(threads: int | None) -> None:
    """Sizes TensorFlow's thread pools. TensorFlow reads these variables when it creates its
    runtime, so this must run before the first op; when TensorFlow is already running (an
    embedding program), its own setters are tried instead."""
    if threads is None:
        return
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
    import sys

    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime is initialised: the pools are fixed for this process
            pass
