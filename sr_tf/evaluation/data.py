"""Evaluation images: HR (and LR) pairs from folders, files, paired NTIRE folders or TFRecords.

Every pair is 8-bit RGB, as benchmark sets are stored: `hr` is `[s*h, s*w, 3] uint8` and
`lr` is `[h, w, 3] uint8`. When only HR images are given, LR is made with the data pipeline's
degradation (`bicubic`: MATLAB's `imresize`; random ones seeded with `(seed, image index)`)
and rounded to 8 bits, as DIV2K's and the benchmarks' LR PNG files are. Anything done to a user's image (gray or RGBA to RGB,
16-bit to 8-bit, downscale, centre crop, cropping to a multiple of the scale) is recorded in
the pair's `notes` and ends up in the report.
"""

from __future__ import annotations

import dataclasses
import glob
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from sr_tf.imageio import READABLE_SUFFIXES
from sr_tf.suffixes import TFRECORD_SUFFIXES

GRAY_NOTE = "gray converted to RGB"  # what `to_rgb8` records for a greyscale image (scored on its grey values)
IMAGE_EXTENSIONS = tuple(sorted(READABLE_SUFFIXES))


@dataclasses.dataclass(frozen=True)
class HRPreparation:
    """What is done to each HR image before evaluation (in this order).

    Attributes:
      downscale: integer factor of an antialiased bicubic downscale (1: none). The photos in
        `shared/data/photos` are JPEGs; downscaling by 2 gives cleaner HR targets.
      center_crop: side of a centre square crop in HR pixels (0: the whole image); keeps
        evaluation of large photos with slow models to a few minutes.
    """

    downscale: int = 1
    center_crop: int = 0

    def __post_init__(self):
        if int(self.downscale) != self.downscale or self.downscale < 1:
            raise ValueError(f"HR downscale must be an integer >= 1. Received: downscale={self.downscale!r}")
        if int(self.center_crop) != self.center_crop or self.center_crop < 0:
            raise ValueError(f"center_crop must be an integer >= 0. Received: center_crop={self.center_crop!r}")


@dataclasses.dataclass
class EvalPair:
    """One evaluation image.

    Attributes:
      name: display name (file stem or record name).
      hr: `[s*h, s*w, 3] uint8` ground truth.
      lr: `[h, w, 3] uint8` model input.
      source: where the HR came from (path or record).
      notes: what was done to the user's image, in order.
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray
    source: str
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def hr_was_gray(self) -> bool:
        """The HR image was a greyscale file: its Y metrics are computed on the grey values."""
        return GRAY_NOTE in self.notes


# --- degradation --------------------------------------------------------------------------------


def imresize(image: np.ndarray, factor: float) -> np.ndarray:
    """MATLAB `imresize(image, 1/factor, 'bicubic')`: `[H, W, C] float32` -> `[ceil(H/factor), ceil(W/factor), C]`.

    `factor` > 1 downscales (antialiased), e.g. 4; `factor` < 1 upscales, e.g. 0.25 for x4.
    Values are not clipped. The data pipeline's implementation (`sr_tf.data.resize`).
    """
    from sr_tf.data.resize import imresize as matlab_imresize

    return matlab_imresize(np.asarray(image, np.float32), factor).numpy()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """`float in [0, 1]` -> `uint8`, clipped and rounded half-up as MATLAB's im2uint8."""
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


CONVENTIONS = ("matlab", "pipeline")


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"Unknown convention. Expected one of {CONVENTIONS}. Received: convention={convention!r}")


def degradation_names() -> list[str]:
    """The data pipeline's degradations (`sr_tf.data.degradations.DEGRADATIONS`)."""
    from sr_tf.data.degradations import DEGRADATIONS

    return sorted(DEGRADATIONS)


def check_degradation(name: str) -> None:
    if name not in degradation_names():
        raise ValueError(f"Unknown degradation. Expected one of {degradation_names()}. Received: degradation={name!r}")


def degrade(
    hr: np.ndarray,
    scale: int,
    degradation: str = "bicubic",
    seed: tuple[int, int] = (0, 0),
    convention: str = "matlab",
) -> np.ndarray:
    """The LR image of `hr`, rounded to 8 bits.

    Args:
      hr: `[H, W, 3] uint8`, H and W multiples of `scale`.
      scale: downscale factor.
      degradation: a name of `sr_tf.data.degradations.DEGRADATIONS` ("bicubic": MATLAB's
        `imresize`, as DIV2K and the benchmarks' LR images were made).
      seed: stateless seed for random degradations (ignored by deterministic ones).
      convention: for "bicubic", "matlab" rounds to 8 bits after each axis as MATLAB does
        (`sr_tf.data.resize.imresize_uint8`); "pipeline" resizes as the training pipeline and
        rounds once. Other degradations are the pipeline's either way.

    Returns:
      `[H/scale, W/scale, 3] uint8`.
    """
    import tensorflow as tf

    from sr_tf.data.degradations import degrade as pipeline_degrade

    check_degradation(degradation)
    check_convention(convention)
    if degradation == "bicubic" and convention == "matlab":
        from sr_tf.data.resize import imresize_uint8

        return imresize_uint8(hr, scale)
    lr = pipeline_degrade(
        tf.constant(hr, tf.float32) / 255.0, degradation, scale, seed=tf.constant(seed, tf.int64)
    )
    return to_uint8(np.asarray(lr))


# --- reading images -----------------------------------------------------------------------------


def to_rgb8(image: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """`[H, W, C]` uint8/uint16, C in 1-4 (as `sr_tf.imageio.read_image` gives) -> `[H, W, 3] uint8` and notes."""
    notes = []
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype == np.uint16:
        image = np.floor(image.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
        notes.append("16-bit converted to 8-bit")
    elif image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 or uint16 image. Received: dtype={image.dtype}")
    channels = image.shape[-1]
    if channels in (2, 4):
        notes.append("alpha channel dropped")
        image = image[..., : channels - 1]
    if image.shape[-1] == 1:
        notes.append(GRAY_NOTE)
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image), notes


def read_rgb8(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Reads an image file as `[H, W, 3] uint8` RGB, with notes on any conversion done.

    Raises:
      sr_tf.imageio.ImageError: unreadable or corrupt file (the message names it).
    """
    from sr_tf.imageio import read_image

    return to_rgb8(read_image(path))


def list_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files from files, folders (non-recursive, sorted) and glob patterns, in the order given."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in folder {str(path)!r}.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(str(raw)))
            if not matches:
                raise FileNotFoundError(f"No such file, folder or glob match: {str(raw)!r}")
            files.extend(p for p in matches if p.is_file())
    return files


def is_tfrecord_source(paths: Sequence[str | os.PathLike]) -> bool:
    """Whether `paths` name TFRecord files (by extension, or a folder holding any)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if any(p.suffix.lower() in TFRECORD_SUFFIXES for p in path.iterdir()):
                return True
        elif any(str(raw).lower().endswith(ext) for ext in TFRECORD_SUFFIXES) or ".tfrecord" in path.name:
            return True
    return False


# --- HR preparation and pairing -----------------------------------------------------------------


def prepare_hr(hr: np.ndarray, scale: int, preparation: HRPreparation) -> tuple[np.ndarray, list[str]]:
    """Applies `preparation` then crops H and W to multiples of `scale` (top-left kept, as BasicSR's mod crop).

    Returns:
      `([H', W', 3] uint8, notes)`.
    """
    notes = []
    if preparation.downscale > 1:
        before = hr.shape[:2]
        hr = to_uint8(imresize(hr.astype(np.float32) / 255.0, preparation.downscale))
        notes.append(f"HR downscaled by {preparation.downscale} (antialiased bicubic): {before} -> {hr.shape[:2]}")
    if preparation.center_crop:
        side = preparation.center_crop
        h, w = hr.shape[:2]
        ch, cw = min(side, h), min(side, w)
        top, left = (h - ch) // 2, (w - cw) // 2
        hr = hr[top : top + ch, left : left + cw]
        notes.append(f"centre crop {ch}x{cw} at (y={top}, x={left}) of {h}x{w}")
    h, w = hr.shape[:2]
    mh, mw = h - h % scale, w - w % scale
    if mh < scale or mw < scale:
        raise ValueError(f"Image of {h}x{w} pixels is smaller than the scale {scale}.")
    if (mh, mw) != (h, w):
        hr = hr[:mh, :mw]
        notes.append(f"cropped from {h}x{w} to {mh}x{mw} (multiple of scale {scale})")
    return np.ascontiguousarray(hr), notes


def pairs_from_hr_files(
    files: Sequence[Path],
    scale: int,
    degradation: str = "bicubic",
    preparation: HRPreparation = HRPreparation(),
    seed: int = 0,
    skipped: list[str] | None = None,
    convention: str = "matlab",
) -> Iterator[EvalPair]:
    """HR image files -> pairs with LR made by `degradation` (lazily, one image in memory at a time).

    Random degradations use the stateless seed `(seed, index of the file)`. Unreadable files
    raise `sr_tf.imageio.ImageError`, or, given a `skipped` list, are appended to it (the
    message names the file and the reason) and left out.
    """
    from sr_tf.imageio import ImageError

    for index, path in enumerate(files):
        try:
            hr, notes = read_rgb8(path)
        except ImageError as e:
            if skipped is None:
                raise
            skipped.append(str(e))
            continue
        hr, more = prepare_hr(hr, scale, preparation)
        lr = degrade(hr, scale, degradation, seed=(seed, index), convention=convention)
        yield EvalPair(path.stem, hr, lr, str(path), notes + more)


def match_lr_file(hr_path: Path, lr_files: dict[str, Path], scale: int) -> Path:
    """The LR file for `hr_path` by stem: `0801` matches `0801` or NTIRE's `0801x4`."""
    for key in (hr_path.stem, f"{hr_path.stem}x{scale}"):
        if key in lr_files:
            return lr_files[key]
    raise FileNotFoundError(
        f"No LR image for {hr_path.name!r}: looked for stems {hr_path.stem!r} and {hr_path.stem + f'x{scale}'!r}."
    )


def pairs_from_folders(
    hr_paths: Sequence[str | os.PathLike],
    lr_dir: str | os.PathLike,
    scale: int,
    preparation: HRPreparation = HRPreparation(),
) -> Iterator[EvalPair]:
    """Paired HR/LR folders (NTIRE/DIV2K layout, matched by stem). LR images are used as they are.

    With `preparation` (downscale or centre crop of HR) the pairs would no longer correspond,
    so only the default is accepted.
    """
    if preparation != HRPreparation():
        raise ValueError(
            "HR downscale / centre crop cannot be applied to paired LR/HR data (the LR images would no "
            f"longer match). Received: {preparation}"
        )
    lr_dir = Path(lr_dir)
    if not lr_dir.is_dir():
        raise FileNotFoundError(f"LR folder not found: {str(lr_dir)!r}")
    lr_files = {p.stem: p for p in sorted(lr_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}
    hr_files = list_images(hr_paths)
    matched = [(hr_path, match_lr_file(hr_path, lr_files, scale)) for hr_path in hr_files]

    def generate():
        for hr_path, lr_path in matched:
            hr, notes = read_rgb8(hr_path)
            lr, lr_notes = read_rgb8(lr_path)
            notes += [f"LR: {n}" for n in lr_notes]
            hr, lr = _align_pair(hr, lr, scale, hr_path, lr_path, notes)
            yield EvalPair(hr_path.stem, hr, lr, str(hr_path), notes)

    return generate()


def _align_pair(hr, lr, scale, hr_name, lr_name, notes):
    lh, lw = lr.shape[:2]
    h, w = hr.shape[:2]
    if (h, w) == (lh * scale, lw * scale):
        return hr, lr
    if lh * scale <= h < (lh + 1) * scale and lw * scale <= w < (lw + 1) * scale:
        notes.append(f"HR cropped from {h}x{w} to {lh * scale}x{lw * scale} to match the LR size x{scale}")
        return np.ascontiguousarray(hr[: lh * scale, : lw * scale]), lr
    raise ValueError(
        f"LR image {str(lr_name)!r} ({lh}x{lw}) is not HR image {str(hr_name)!r} ({h}x{w}) downscaled by {scale}."
    )


def record_files(paths: Sequence[str | os.PathLike]) -> list[str]:
    """TFRecord files from files and folders (a folder with a `manifest.json`: the shards it
    lists, as `sr_tf.data.records.shard_paths`; otherwise its `*.tfrecord` files, sorted)."""
    from sr_tf.data.records import shard_paths
    from sr_tf.data.schema import MANIFEST_NAME

    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if (path / MANIFEST_NAME).is_file():
                files.extend(shard_paths(str(path)))
                continue
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in TFRECORD_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"No TFRecord files in folder {str(path)!r}.")
            files.extend(found)
        elif path.is_file():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"No such TFRecord file or folder: {str(raw)!r}")
    return files


def pairs_from_tfrecords(
    paths: Sequence[str | os.PathLike],
    scale: int,
    degradation: str = "bicubic",
    preparation: HRPreparation = HRPreparation(),
    seed: int = 0,
    convention: str = "matlab",
) -> Iterator[EvalPair]:
    """Pairs from TFRecord files of the data pipeline's schema (`sr_tf.data`): full HR images.

    A record's own `lr_x{scale}` image is used when present; otherwise LR is made with
    `degradation` (random ones seeded with `(seed, record index)`)."""
    import tensorflow as tf

    from sr_tf.data.schema import lr_key
    from sr_tf.imageio import decode_image

    files = record_files(paths)
    key = lr_key(scale)

    def generate():
        records = (
            (f"{file} #{i}", raw)
            for file in files
            for i, raw in enumerate(tf.data.TFRecordDataset(file).as_numpy_iterator())
        )
        for index, (source, raw) in enumerate(records):
            feature = tf.train.Example.FromString(raw).features.feature
            name = feature["image/name"].bytes_list.value[0].decode("utf-8", "replace")
            hr, notes = to_rgb8(decode_image(feature["image/encoded"].bytes_list.value[0], name))
            if f"{key}/encoded" in feature:
                if preparation != HRPreparation():
                    raise ValueError(
                        f"Record {name!r} holds its own LR image: HR downscale / centre crop cannot be applied. "
                        f"Received: {preparation}"
                    )
                lr, lr_notes = to_rgb8(decode_image(feature[f"{key}/encoded"].bytes_list.value[0], name))
                notes += [f"LR: {n}" for n in lr_notes] + [f"LR from the record ({key})"]
                hr, lr = _align_pair(hr, lr, scale, f"{name} (HR)", f"{name} ({key})", notes)
            else:
                hr, more = prepare_hr(hr, scale, preparation)
                notes += more
                lr = degrade(hr, scale, degradation, seed=(seed, index), convention=convention)
            yield EvalPair(name, hr, lr, source, notes)

    return generate()


def open_pairs(
    data: Sequence[str | os.PathLike] | str | os.PathLike,
    scale: int,
    *,
    lr_data: str | os.PathLike | None = None,
    degradation: str = "bicubic",
    preparation: HRPreparation = HRPreparation(),
    limit: int | None = None,
    seed: int = 0,
    skipped: list[str] | None = None,
    convention: str = "matlab",
) -> tuple[Iterator[EvalPair], int | None]:
    """Evaluation pairs from `data` (see module doc), read lazily, at most `limit` of them.

    Args:
      data: HR image files, folders or globs; or TFRecord files / a folder of them.
      scale: 2, 3, 4 or 8.
      lr_data: a folder of LR images matching the HR images by stem (NTIRE/DIV2K layout);
        without it LR images are made from HR with `degradation`.
      degradation: how LR is made from HR (`bicubic`).
      preparation: HR downscale / centre crop (not with `lr_data`).
      limit: evaluate only the first `limit` images.
      seed: seed of random degradations (image i uses the stateless seed `(seed, i)`).
      skipped: if given, unreadable HR image files are listed here and left out instead of
        raising `sr_tf.imageio.ImageError`.
      convention: how bicubic LR is rounded (see `CONVENTIONS` and `degrade`).

    Returns:
      `(iterator of EvalPair, number of pairs or None when unknown before reading)`.

    Raises:
      FileNotFoundError / ValueError: before any image is read, for missing paths or bad options.
    """
    if isinstance(data, (str, os.PathLike)):
        data = [data]
    if scale not in (2, 3, 4, 8):
        raise ValueError(f"scale must be 2, 3, 4 or 8. Received: scale={scale!r}")
    check_degradation(degradation)
    check_convention(convention)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1. Received: limit={limit!r}")
    total = None
    if is_tfrecord_source(data):
        if lr_data is not None:
            raise ValueError("lr_data is for image folders; TFRecords carry their own LR images if any.")
        source = pairs_from_tfrecords(data, scale, degradation, preparation, seed, convention)
    else:
        files = list_images(data)
        total = len(files)
        if lr_data is not None:
            source = pairs_from_folders(files, lr_data, scale, preparation)
        else:
            source = pairs_from_hr_files(files, scale, degradation, preparation, seed, skipped, convention)
    if limit is not None:
        source = itertools.islice(source, limit)
        total = limit if total is None else min(total, limit)
    return source, total
