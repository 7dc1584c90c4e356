"""The `tf.data` input pipeline: records/folders/TFDS -> `(lr, hr)` batches.

`build_dataset(config, input_context=None, start_batch=0)` yields `(lr, hr)` tuples of float32
in [0, 1]: `lr` is `[B, p, p, 3]` and `hr` `[B, P, P, 3]` with `P = config.patch_size`,
`p = P / config.scale` and `B` the per-replica batch (Keras `fit` takes it as `(x, y)`).

**Training batches are a pure function of (config, step).** The data is a list of *items*
(image files, records, or images decoded into memory). Draw `i` of the training stream
takes the item at position `i mod N` of a seeded permutation of the N items that is new for
every pass (`tf.random.experimental.index_shuffle`, stateless), decodes it, cuts
`crops_per_image` random `P x P` crops and flips/transposes each, all seeded by `i`; global
step `b` holds draws `b * G / k ... (b + 1) * G / k - 1` (`G` the global batch, `k` crops per
draw), and each replica takes its own slice of that global batch. So:

* `start_batch=b` starts the stream at step `b` and gives exactly the batches an uninterrupted
  run sees from step `b` on (what an exact resume needs), at no cost for the skipped steps;
* the global batch of a step is the same on 1 or many workers/replicas (for the deterministic
  degradations; `realesrgan`'s random draws are seeded per replica batch);
* the output does not depend on thread timing.

Stages: items -> decode (records and TFDS: `tf.io.decode_image` of the stored PNG/JPEG; image
folders: `sr_tf.imageio`, the project's one decoder: EXIF orientation, pixel limits) ->
optional `hr_downscale` -> (`cache_decoded`: all items decoded once, held in memory) ->
crops + augmentation -> batch -> degradation on the whole batch (vectorized) with 8-bit
rounding of the LR -> prefetch.

Records are read by position: each record's byte range comes from the manifest
(`record_sizes`, written by `make-tfrecords`) or, for older manifests, from reading the record
headers once.

TFDS has no random access: its stream is read in order (seeded file/record shuffles) and
`start_batch` skips the encoded elements before the resume point (I/O only, no decoding).

Validation (`training=False`) reads in order and takes centre crops or whole images.
"""

from __future__ import annotations

import dataclasses
import posixpath
import struct
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from sr_tf.data import degradations as D
from sr_tf.data import schema
from sr_tf.data.config import DatasetConfig
from sr_tf.data.decoding import decode_rgb, load_rgb
from sr_tf.data.records import _match_lr, shard_paths, verify_records
from sr_tf.data.resize import imresize
from sr_tf.imageio import READABLE_SUFFIXES

IMAGE_SUFFIXES = tuple(sorted(READABLE_SUFFIXES))

# Seed streams: one per kind of random choice, so they never reuse each other's numbers.
_FILES, _CROPS, _BATCH, _AUGMENT = 1, 3, 5, 6


def _stream(base: tf.Tensor, stream: int, index=None) -> tf.Tensor:
    seed = tf.random.experimental.stateless_fold_in(base, stream)
    return seed if index is None else tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int64))


def list_images(folder: str) -> list[str]:
    """Image files directly in `folder` (local or gs://), sorted by name.

    Raises:
      ValueError: no images there (the message lists the suffixes looked for).
    """
    names = sorted(
        posixpath.basename(p) for p in tf.io.gfile.glob(schema.join(folder, "*")) if p.lower().endswith(IMAGE_SUFFIXES)
    )
    if not names:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder!r}.")
    return [schema.join(folder, n) for n in names]


# ----------------------------------------------------------------------------- items


@dataclasses.dataclass(frozen=True)
class _Items:
    """N items of a source and how to load item `j` in a graph: `j -> {"hr": [H, W, 3] uint8, ("lr": ...)}`;
    `load_numpy` does the same eagerly when the source has a Python reader (image folders)."""

    count: int
    load: Callable[[tf.Tensor], dict[str, tf.Tensor]]
    load_numpy: Callable[[int], dict[str, np.ndarray]] | None = None


def _read_rgb(path: str, downscale: int, config: DatasetConfig) -> np.ndarray:
    """An image file as `[H, W, 3]` uint8 by `sr_tf.imageio` (EXIF orientation, pixel limits),
    downscaled by `downscale` (eagerly, so MATLAB's resize sees static shapes).

    Raises:
      sr_tf.imageio.ImageError: naming the file: unreadable, corrupt, or over `config.max_pixels`.
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    image = load_rgb(data, path, config.max_pixels)
    return _downscale(tf.constant(image), downscale).numpy() if downscale > 1 else image


def _downscale(image: tf.Tensor, factor: int) -> tf.Tensor:
    """`[H, W, 3] uint8` -> MATLAB-bicubic downscale by `factor` (antialiased), rounded to 8 bits."""
    h, w = tf.shape(image)[0] // factor * factor, tf.shape(image)[1] // factor * factor
    small = imresize(tf.cast(image[:h, :w], tf.float32) / 255.0, factor)
    return tf.cast(tf.round(tf.clip_by_value(small, 0.0, 1.0) * 255.0), tf.uint8)


def _folder_items(config: DatasetConfig) -> _Items:
    hr = [str(f) for f in config.files] if config.files else list_images(config.path)
    columns = {"hr": hr}
    if config.degradation == "paired":
        lr_names = {posixpath.splitext(posixpath.basename(p))[0]: posixpath.basename(p) for p in list_images(config.lr_path)}
        lr, missing = [], []
        for path in hr:
            match = _match_lr(posixpath.splitext(posixpath.basename(path))[0], config.scale, lr_names)
            if match is None:
                missing.append(posixpath.basename(path))
            else:
                lr.append(schema.join(config.lr_path, match))
        if missing:
            raise ValueError(f"No LR image in {config.lr_path!r} for {len(missing)} HR image(s): {missing[:5]}")
        columns["lr"] = lr
    downscale = {"hr": config.hr_downscale, "lr": 1}

    def load_numpy(j: int) -> dict[str, np.ndarray]:
        return {k: _read_rgb(v[j], downscale[k], config) for k, v in columns.items()}

    paths = {k: tf.constant(v) for k, v in columns.items()}

    def load(j):
        def read(key, path):
            return tf.ensure_shape(tf.py_function(lambda p: _read_rgb(p.numpy().decode(), downscale[key], config),
                                                  [path], tf.uint8), [None, None, 3])

        return {k: read(k, tf.gather(v, j)) for k, v in paths.items()}

    return _Items(len(hr), load, load_numpy)


def record_offsets(path: str, sizes: list[int] | None = None) -> list[int]:
    """Byte offsets of the records in a TFRecord file, from the payload `sizes` (the manifest's
    `record_sizes`) or, without them, by reading each record's 12-byte header (a length and its
    CRC) and seeking past the payload and its CRC."""
    if sizes is not None:
        return [int(v) for v in np.concatenate([[0], np.cumsum(np.asarray(sizes, np.int64) + 16)[:-1]])] if sizes else []
    offsets = []
    with tf.io.gfile.GFile(path, "rb") as f:
        end = f.size()
        position = 0
        while position < end:
            f.seek(position)
            header = f.read(8)
            if len(header) < 8:
                raise ValueError(f"{path}: truncated record header at byte {position}")
            offsets.append(position)
            position += 16 + struct.unpack("<Q", header)[0]
    return offsets


def _record_items(config: DatasetConfig) -> _Items:
    if config.verify == "none":
        manifest = schema.read_manifest(config.path)
    else:
        manifest = verify_records(config.path, checksum=config.verify == "checksum")
    paired = config.degradation == "paired"
    if paired and config.scale not in manifest.get("lr_scales", []):
        raise ValueError(f"degradation='paired' needs LR images of scale {config.scale} in {config.path!r}; "
                         f"its manifest has LR scales {manifest.get('lr_scales', [])}.")
    _check_sizes(config, manifest.get("min_height"), manifest.get("min_width"), config.path)
    files = shard_paths(config.path, manifest)
    if not files or not manifest["num_records"]:
        raise ValueError(f"{config.path!r} holds no records (manifest: {manifest['num_records']} records).")
    file_index, starts, sizes, footers = [], [], [], []
    for i, (path, entry) in enumerate(zip(files, manifest["shards"], strict=True)):
        offsets = record_offsets(path, entry.get("record_sizes"))
        total = int(entry["bytes"])
        ends = [*offsets[1:], total]
        for start, end in zip(offsets, ends, strict=True):
            file_index.append(i)
            starts.append(start + 12)
            sizes.append(end - start - 16)
            footers.append(total - (end - 4))
    table = {k: tf.constant(v, tf.int64) for k, v in
             (("file", file_index), ("start", starts), ("size", sizes), ("footer", footers))}
    paths = tf.constant(files)
    lr_scales = (config.scale,) if paired else ()
    lr_key = schema.lr_key(config.scale)

    def load(j):
        record = tf.data.FixedLengthRecordDataset(
            tf.gather(paths, tf.gather(table["file"], j)), tf.gather(table["size"], j),
            header_bytes=tf.gather(table["start"], j), footer_bytes=tf.gather(table["footer"], j),
        ).get_single_element()
        features = schema.parse_example(record, lr_scales)
        element = {"hr": decode_rgb(features["image/encoded"])}
        if config.hr_downscale > 1:
            element["hr"] = _downscale(element["hr"], config.hr_downscale)
        if paired:
            element["lr"] = decode_rgb(features[f"{lr_key}/encoded"])
        return element

    return _Items(len(starts), load)


def _memory_items(items: _Items, config: DatasetConfig) -> _Items:
    """All items decoded once (in order) and held in memory as one flat uint8 tensor per key."""
    if items.load_numpy is not None:  # errors raise here, naming the file, before training starts
        elements = [items.load_numpy(j) for j in range(items.count)]
    else:
        ds = tf.data.Dataset.range(items.count).map(items.load, num_parallel_calls=_parallel(config), deterministic=True)
        elements = [{k: v.numpy() for k, v in e.items()} for e in ds]
    arrays: dict[str, list[np.ndarray]] = {}
    for element in elements:
        for key, value in element.items():
            arrays.setdefault(key, []).append(value)
    tables = {}
    for key, images in arrays.items():
        shapes = np.array([a.shape for a in images], np.int64)
        sizes = shapes.prod(axis=1)
        tables[key] = (
            tf.constant(np.concatenate([a.reshape(-1) for a in images])),
            tf.constant(np.concatenate([[0], np.cumsum(sizes)[:-1]]), tf.int64),
            tf.constant(sizes, tf.int64),
            tf.constant(shapes, tf.int64),
        )

    def load(j):
        out = {}
        for key, (flat, offsets, sizes, shapes) in tables.items():
            image = tf.reshape(tf.slice(flat, [tf.gather(offsets, j)], [tf.gather(sizes, j)]), tf.gather(shapes, j))
            out[key] = tf.ensure_shape(image, [None, None, 3])
        return out

    return _Items(items.count, load)


def _source_items(config: DatasetConfig) -> _Items:
    items = _record_items(config) if config.source == "tfrecord" else _folder_items(config)
    return _memory_items(items, config) if config.cache_decoded else items


def _tfds_elements(config: DatasetConfig, context, skip: int) -> tf.data.Dataset:
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError("source='tfds' needs tensorflow-datasets: pip install 'sr-tf[tfds]'") from e
    kwargs = {}
    if config.tfds_manual_dir:
        kwargs["download_and_prepare_kwargs"] = {"download_config": tfds.download.DownloadConfig(manual_dir=config.tfds_manual_dir)}
    paired = config.degradation == "paired"
    keys = ("hr", "lr") if paired else ("hr",)
    ds = tfds.load(
        config.path,
        split=config.split,
        data_dir=config.tfds_data_dir,
        download=config.tfds_download,
        shuffle_files=config.training,
        read_config=tfds.ReadConfig(input_context=context, shuffle_seed=config.seed, interleave_cycle_length=config.cycle_length),
        decoders={k: tfds.decode.SkipDecoding() for k in keys},
        **kwargs,
    )
    ds = ds.map(_plain(lambda e: {k: e[k] for k in keys}))
    if config.training:
        if config.shuffle_buffer:
            ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
        if config.repeat:
            ds = ds.repeat()
        ds = ds.skip(skip)  # encoded bytes: skipping costs reading, not decoding

    def decode(e):
        out = {k: decode_rgb(v) for k, v in e.items()}
        if config.hr_downscale > 1:
            out["hr"] = _downscale(out["hr"], config.hr_downscale)
        return out

    return ds.map(_plain(decode), num_parallel_calls=_parallel(config), deterministic=True)


def _check_sizes(config: DatasetConfig, min_h, min_w, where: str) -> None:
    if min_h is None or min_w is None:
        return
    min_h, min_w = min_h // config.hr_downscale, min_w // config.hr_downscale
    if (config.training or config.validation_crop == "center") and min(min_h, min_w) < config.patch_size:
        raise ValueError(f"{where!r} has images as small as {min_w}x{min_h} (width x height), smaller than "
                         f"patch_size={config.patch_size}; use a smaller patch or rebuild without those images.")


def _plain(fn):
    """Marks a map function as plain TF (no Python control flow on tensors): skipping AutoGraph
    conversion halves the tracing time of the realesrgan graph."""
    return tf.autograph.experimental.do_not_convert(fn)


def _parallel(config: DatasetConfig) -> int:
    return tf.data.AUTOTUNE if config.num_parallel_calls == -1 else config.num_parallel_calls


# ----------------------------------------------------------------------------- crops


def _assert_fits(image: tf.Tensor, size: int, what: str) -> None:
    shape = tf.shape(image)
    tf.debugging.assert_greater_equal(
        tf.minimum(shape[0], shape[1]), size, message=f"an image is smaller than the {what} patch size {size}"
    )


def _detail(patches: tf.Tensor) -> tf.Tensor:
    """`[n, P, P, 3]` uint8 -> `[n]` mean absolute difference between neighbouring pixels of the
    gray image: 0 on flat patches, large on edges and texture."""
    gray = tf.reduce_mean(tf.cast(patches, tf.float32), axis=-1)
    dy = tf.reduce_mean(tf.abs(gray[:, 1:, :] - gray[:, :-1, :]), axis=[1, 2])
    dx = tf.reduce_mean(tf.abs(gray[:, :, 1:] - gray[:, :, :-1]), axis=[1, 2])
    return dx + dy


def _random_crops(element, seed, config: DatasetConfig):
    """`crops_per_image` random crops: `{"hr": [k, P, P, 3]}` (+ `"lr": [k, p, p, 3]`) uint8.

    With `crop_candidates = m > 1` each crop is the one with the most detail (`_detail`) of `m`
    random candidates, so flat areas (sky, out-of-focus backgrounds), which teach a network little,
    are drawn less often.
    """
    s, big, small = config.scale, config.patch_size, config.lr_patch_size
    hr = element["hr"]
    if "lr" in element:
        lr = element["lr"]
        _assert_fits(lr, small, "LR")
        limit_y = tf.minimum(tf.shape(lr)[0] - small, (tf.shape(hr)[0] - big) // s)
        limit_x = tf.minimum(tf.shape(lr)[1] - small, (tf.shape(hr)[1] - big) // s)
        step = s  # positions are on the LR grid
    else:
        _assert_fits(hr, big, "HR")
        limit_y, limit_x = tf.shape(hr)[0] - big, tf.shape(hr)[1] - big
        step = 1
    k, m = config.crops_per_image, config.crop_candidates
    ys = tf.random.stateless_uniform([k * m], seed, 0, limit_y + 1, dtype=tf.int32)
    xs = tf.random.stateless_uniform([k * m], tf.random.experimental.stateless_fold_in(seed, 1), 0, limit_x + 1, dtype=tf.int32)
    hr_crops = tf.stack([tf.slice(hr, [ys[j] * step, xs[j] * step, 0], [big, big, 3]) for j in range(k * m)])
    if m > 1:
        best = tf.argmax(tf.reshape(_detail(hr_crops), [k, m]), axis=1, output_type=tf.int32) + tf.range(k) * m
        ys, xs, hr_crops = tf.gather(ys, best), tf.gather(xs, best), tf.gather(hr_crops, best)
    out = {"hr": hr_crops}
    if "lr" in element:
        out["lr"] = tf.stack([tf.slice(lr, [ys[j], xs[j], 0], [small, small, 3]) for j in range(k)])
    return out


def _validation_crop(element, config: DatasetConfig):
    """Centre crops or whole images (cropped to a multiple of the scale), without randomness."""
    s, hr = config.scale, element["hr"]
    if "lr" in element:
        lr = element["lr"]
        h = tf.minimum(tf.shape(lr)[0], tf.shape(hr)[0] // s)
        w = tf.minimum(tf.shape(lr)[1], tf.shape(hr)[1] // s)
    else:
        h, w = tf.shape(hr)[0] // s, tf.shape(hr)[1] // s
    if config.validation_crop == "center":
        small = config.lr_patch_size
        _assert_fits(hr if "lr" not in element else element["lr"], small if "lr" in element else config.patch_size, "validation")
        top, left, h, w = (h - small) // 2, (w - small) // 2, small, small
    else:
        top, left = 0, 0
    out = {"hr": hr[top * s : (top + h) * s, left * s : (left + w) * s]}
    if "lr" in element:
        out["lr"] = element["lr"][top : top + h, left : left + w]
    return out


# ----------------------------------------------------------------------------- augmentation, batches


def augment(images: list[tf.Tensor], seed: tf.Tensor) -> list[tf.Tensor]:
    """A random flip/transpose combination (one of the 8 rotations/reflections), the same for each tensor.

    Args:
      images: `[S, S, C]` tensors of one sample (square; sizes may differ, e.g. LR and HR).
      seed: `[2]` stateless seed.

    Returns:
      The augmented tensors. Only the chosen ops run (`tf.cond`), which on CPU is ~20x
      cheaper than selecting with `tf.where` over a whole batch.
    """
    flips = tf.random.stateless_uniform([3], seed) < 0.5
    out = []
    for x in images:
        x = tf.cond(flips[0], lambda x=x: tf.reverse(x, [1]), lambda x=x: x)
        x = tf.cond(flips[1], lambda x=x: tf.reverse(x, [0]), lambda x=x: x)
        x = tf.cond(flips[2], lambda x=x: tf.transpose(x, [1, 0, 2]), lambda x=x: x)
        out.append(x)
    return out


def _augment_crops(crops, seed, config: DatasetConfig):
    """Augments each of the `crops_per_image` crops with its own transform (training only)."""
    if not config.augment:
        return crops
    keys = sorted(crops)
    per_crop = [augment([crops[k][j] for k in keys], tf.random.experimental.stateless_fold_in(seed, j))
                for j in range(config.crops_per_image)]
    return {k: tf.stack([parts[i] for parts in per_crop]) for i, k in enumerate(keys)}


def _degrade_batch(batch, seed, config: DatasetConfig):
    hr = tf.cast(batch["hr"], tf.float32) / 255.0
    lr = tf.cast(batch["lr"], tf.float32) / 255.0 if "lr" in batch else None
    if lr is None:
        if config.degradation == "bicubic":
            lr = D.bicubic_downscale(hr, config.scale)
        elif config.degradation == "blur-bicubic":
            lr = D.blur_bicubic(hr, config.scale, config.blur_sigma, config.blur_kernel_size)
        else:
            lr = D.realesrgan(hr, config.scale, _stream(seed, 2), config.realesrgan)
        if config.quantize_lr:
            lr = tf.round(tf.clip_by_value(lr, 0.0, 1.0) * 255.0) / 255.0
    return lr, hr


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where a pipeline's per-replica batches sit in the global stream.

    `global_batch` patches per step over all replicas; this pipeline serves `local_replicas`
    replicas of `batch` patches each, the slice starting at replica `first_replica`."""

    global_batch: int
    batch: int
    local_replicas: int
    first_replica: int

    @classmethod
    def of(cls, config: DatasetConfig, context: tf.distribute.InputContext | None) -> _Layout:
        if context is None:
            return cls(config.batch_size, config.batch_size, 1, 0)
        batch = context.get_per_replica_batch_size(config.batch_size)
        local = context.num_replicas_in_sync // context.num_input_pipelines
        return cls(config.batch_size, batch, local, context.input_pipeline_id * local)


def _training_stream(config: DatasetConfig, context, base: tf.Tensor, start_batch: int) -> tf.data.Dataset:
    """Per-replica `(lr, hr)` batches from global step `start_batch` on (see the module docstring).

    Global patch `j` is crop `j mod k` of draw `j // k`; step `b` holds patches
    `b * G ... (b + 1) * G - 1`, and this pipeline serves the slice of its replicas. A draw
    whose crops straddle two slices is decoded by both.
    """
    layout = _Layout.of(config, context)
    k, span = config.crops_per_image, layout.local_replicas * layout.batch  # patches per step here

    def draws(step):  # this pipeline's draws of `step`: [first, last] and the crops to skip
        first_patch = step * layout.global_batch + layout.first_replica * layout.batch
        return first_patch // k, (first_patch + span - 1) // k, first_patch % k

    if config.source == "tfds":
        # In-order source: the pipeline's own stream of draws, skipped to the resume point.
        if layout.batch % k:
            raise ValueError(f"TFDS data needs crops_per_image to divide the per-replica batch ({layout.batch}). "
                             f"Received: crops_per_image={k}")
        per_step, first_draw = span // k, layout.first_replica * layout.batch // k
        index = tf.data.Dataset.range(start_batch * per_step, np.iinfo(np.int64).max)
        drawn = tf.data.Dataset.zip(index, _tfds_elements(config, context, start_batch * per_step))
        global_draw = _plain(lambda t: t // per_step * (layout.global_batch // k) + first_draw + t % per_step)
        patches = drawn.map(_plain(lambda t, e: _crops_of(e, global_draw(t), base, config)),
                            num_parallel_calls=_parallel(config), deterministic=True).unbatch()
    else:
        items = _source_items(config)
        n = items.count
        total_steps = n * k // layout.global_batch
        if not config.repeat and total_steps == 0:
            raise ValueError(f"{config.path!r}: {n} images x {k} crops are fewer than one batch of "
                             f"{layout.global_batch}; use repeat=True or a smaller batch.")

        def draw(i):
            item = tf.random.experimental.index_shuffle(i % n, _stream(base, _FILES, i // n), n - 1)
            return _crops_of(items.load(item), i, base, config)

        def step_patches(step):
            first, last, skip = draws(step)
            ds = tf.data.Dataset.range(first, last + 1).map(_plain(draw), num_parallel_calls=_parallel(config), deterministic=True)
            return ds.unbatch().skip(skip).take(span)

        steps = tf.data.Dataset.range(start_batch, np.iinfo(np.int64).max if config.repeat else total_steps)
        patches = steps.flat_map(step_patches)
    batches = patches.batch(layout.batch, drop_remainder=True)

    def first_patch(q):  # the pipeline's q-th per-replica batch -> global index of its first patch
        step, replica = q // layout.local_replicas, q % layout.local_replicas
        return step * layout.global_batch + (layout.first_replica + replica) * layout.batch

    batches = batches.enumerate(start=start_batch * layout.local_replicas)
    return batches.map(
        _plain(lambda q, b: _degrade_batch(b, _stream(base, _BATCH, first_patch(q)), config)),
        num_parallel_calls=_parallel(config), deterministic=True,
    )


def _crops_of(element, i, base, config: DatasetConfig):
    """Draw `i`'s `crops_per_image` augmented crops, seeded by `i`."""
    return _augment_crops(_random_crops(element, _stream(base, _CROPS, i), config), _stream(base, _AUGMENT, i), config)


def _validation_stream(config: DatasetConfig, context, base: tf.Tensor) -> tf.data.Dataset:
    if config.source == "tfds":
        ds = _tfds_elements(config, context, 0)
    else:
        items = _source_items(config)
        ds = tf.data.Dataset.range(items.count)
        if context and context.num_input_pipelines > 1:
            ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        ds = ds.map(_plain(items.load), num_parallel_calls=_parallel(config), deterministic=True)
    batch = config.batch_size if context is None else context.get_per_replica_batch_size(config.batch_size)
    ds = ds.map(_plain(lambda e: _validation_crop(e, config)), num_parallel_calls=_parallel(config), deterministic=True)
    ds = ds.batch(batch, drop_remainder=False).enumerate()
    return ds.map(_plain(lambda i, b: _degrade_batch(b, _stream(base, _BATCH, i), config)),
                  num_parallel_calls=_parallel(config), deterministic=True)


def build_dataset(
    config: DatasetConfig,
    input_context: tf.distribute.InputContext | None = None,
    *,
    start_batch: int = 0,
) -> tf.data.Dataset:
    """The input pipeline described in the module docstring.

    Args:
      config: a `DatasetConfig`.
      input_context: from `strategy.distribute_datasets_from_function`; shards the input
        and makes batches per replica.
      start_batch: training only: the global step to start at (0: the beginning). Batches from
        there on are those an uninterrupted stream yields at the same steps.

    Returns:
      A `tf.data.Dataset` of `(lr, hr)`: `[B, P/s, P/s, 3]` and `[B, P, P, 3]` float32 in [0, 1]
      (validation with `validation_crop="full"`: `[1, h, w, 3]` and `[1, s*h, s*w, 3]`).

    Raises:
      ValueError: bad options or data (e.g. images smaller than the patch).
      CorruptShardError: a shard that fails the `config.verify` check, naming the file.
    """
    if not isinstance(config, DatasetConfig):
        raise TypeError(f"build_dataset expects a DatasetConfig. Received: {type(config).__name__}")
    if start_batch < 0 or (start_batch and not config.training):
        raise ValueError(f"start_batch must be >= 0, and 0 for validation data. Received: start_batch={start_batch}")
    base = tf.constant([config.seed, 0], tf.int64)
    if config.training:
        ds = _training_stream(config, input_context, base, start_batch)
    else:
        ds = _validation_stream(config, input_context, base)
    return ds.prefetch(tf.data.AUTOTUNE)
