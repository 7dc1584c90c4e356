"""The `tf.data` input pipeline: records/folders/TFDS -> `(lr, hr)` batches.

`build_dataset(config, input_context=None)` yields `(lr, hr)` tuples of float32 in [0, 1]:
`lr` is `[B, p, p, 3]` and `hr` `[B, P, P, 3]` with `P = config.patch_size`,
`p = P / config.scale` and `B` the per-replica batch (Keras `fit` takes it as `(x, y)`).

Training stages, in order:
1. files: the shards a manifest lists (sizes or checksums verified first), sharded by
   `input_context` (or, with fewer files than input pipelines, records are sharded),
   shuffled, repeated, read `cycle_length` at a time (`interleave`), records shuffled;
2. decode: PNG/JPEG -> `[H, W, 3]` uint8 (optionally cached);
3. crop: `crops_per_image` random `P x P` crops per image (paired data: an LR crop at
   `(y, x)` and the HR crop at `(scale*y, scale*x)`), each flipped/transposed at random
   (the same for its LR and HR), then patches shuffled;
4. batch, then the degradation on the whole batch (vectorized), 8-bit rounding of the LR;
5. prefetch.

Every random choice uses stateless RNG seeded by `(config.seed, input pipeline id)`
folded with the element's or batch's position, so the output depends only on the config
(and the input pipeline), not on thread timing. Validation (`training=False`) reads in
order and takes centre crops or whole images.
"""

from __future__ import annotations

import posixpath

import tensorflow as tf

from sr_tf.data import degradations as D
from sr_tf.data import schema
from sr_tf.data.config import DatasetConfig
from sr_tf.data.decoding import decode_rgb
from sr_tf.data.records import _match_lr, shard_paths, verify_records

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# Seed streams: one per kind of random choice, so they never reuse each other's numbers.
_FILES, _RECORDS, _CROPS, _PATCHES, _BATCH, _AUGMENT = 1, 2, 3, 4, 5, 6


def _stream(base: tf.Tensor, stream: int, index=None) -> tf.Tensor:
    seed = tf.random.experimental.stateless_fold_in(base, stream)
    return seed if index is None else tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int64))


def _int_seed(base: tf.Tensor, stream: int) -> int:
    """A Python int seed for tf.data shuffles (they take ints, not stateless seeds)."""
    return int(tf.random.stateless_uniform([], _stream(base, stream), 0, 2**31 - 1, dtype=tf.int64))


# ----------------------------------------------------------------------------- sources


def _record_elements(config: DatasetConfig, context, base: tf.Tensor) -> tf.data.Dataset:
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
    ds = tf.data.Dataset.from_tensor_slices(files)
    n, i = (context.num_input_pipelines, context.input_pipeline_id) if context else (1, 0)
    shard_records = n > 1 and len(files) < n
    if n > 1 and not shard_records:
        ds = ds.shard(n, i)
    if config.training:
        ds = ds.shuffle(len(files), seed=_int_seed(base, _FILES), reshuffle_each_iteration=True)
        if config.repeat and not config.cache_decoded:
            ds = ds.repeat()
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(config.cycle_length, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shard_records:
        ds = ds.shard(n, i)
    if config.training and config.shuffle_buffer and not config.cache_decoded:
        ds = ds.shuffle(config.shuffle_buffer, seed=_int_seed(base, _RECORDS), reshuffle_each_iteration=True)
    lr_scales = (config.scale,) if paired else ()
    lr_key = schema.lr_key(config.scale)

    def decode(serialized):
        features = schema.parse_example(serialized, lr_scales)
        element = {"hr": decode_rgb(features["image/encoded"])}
        if paired:
            element["lr"] = decode_rgb(features[f"{lr_key}/encoded"])
        return element

    return ds.map(_plain(decode), num_parallel_calls=_parallel(config), deterministic=True)


def _folder_elements(config: DatasetConfig, context) -> tf.data.Dataset:
    names = sorted(
        posixpath.basename(p) for p in tf.io.gfile.glob(schema.join(config.path, "*")) if p.lower().endswith(IMAGE_SUFFIXES)
    )
    if not names:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {config.path!r}.")
    hr = [schema.join(config.path, n) for n in names]
    columns = {"hr": hr}
    if config.degradation == "paired":
        lr_names = {posixpath.splitext(posixpath.basename(p))[0]: posixpath.basename(p)
                    for p in tf.io.gfile.glob(schema.join(config.lr_path, "*")) if p.lower().endswith(IMAGE_SUFFIXES)}
        lr, missing = [], []
        for name in names:
            match = _match_lr(posixpath.splitext(name)[0], config.scale, lr_names)
            if match is None:
                missing.append(name)
            else:
                lr.append(schema.join(config.lr_path, match))
        if missing:
            raise ValueError(f"No LR image in {config.lr_path!r} for {len(missing)} HR image(s): {missing[:5]}")
        columns["lr"] = lr
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if context and context.num_input_pipelines > 1:
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
    if config.training and not config.cache_decoded:
        ds = ds.shuffle(len(names), seed=config.seed, reshuffle_each_iteration=True)
        if config.repeat:
            ds = ds.repeat()
    return ds.map(
        _plain(lambda paths: {k: decode_rgb(tf.io.read_file(v)) for k, v in paths.items()}),
        num_parallel_calls=_parallel(config),
        deterministic=True,
    )


def _tfds_elements(config: DatasetConfig, context) -> tf.data.Dataset:
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError("source='tfds' needs tensorflow-datasets: pip install 'sr-tf[tfds]'") from e
    kwargs = {}
    if config.tfds_manual_dir:
        kwargs["download_and_prepare_kwargs"] = {"download_config": tfds.download.DownloadConfig(manual_dir=config.tfds_manual_dir)}
    ds = tfds.load(
        config.path,
        split=config.split,
        data_dir=config.tfds_data_dir,
        download=config.tfds_download,
        shuffle_files=config.training,
        read_config=tfds.ReadConfig(input_context=context, shuffle_seed=config.seed, interleave_cycle_length=config.cycle_length),
        **kwargs,
    )
    paired = config.degradation == "paired"
    ds = ds.map(_plain(lambda e: {"hr": e["hr"], **({"lr": e["lr"]} if paired else {})}), num_parallel_calls=_parallel(config))
    if config.training and not config.cache_decoded:
        if config.shuffle_buffer:
            ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
        if config.repeat:
            ds = ds.repeat()
    return ds


def _check_sizes(config: DatasetConfig, min_h, min_w, where: str) -> None:
    if min_h is None or min_w is None:
        return
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


def _random_crops(element, seed, config: DatasetConfig):
    """`crops_per_image` random crops: `{"hr": [k, P, P, 3]}` (+ `"lr": [k, p, p, 3]`) uint8."""
    s, big, small = config.scale, config.patch_size, config.lr_patch_size
    hr = element["hr"]
    if "lr" in element:
        lr = element["lr"]
        _assert_fits(lr, small, "LR")
        limit_y = tf.minimum(tf.shape(lr)[0] - small, (tf.shape(hr)[0] - big) // s)
        limit_x = tf.minimum(tf.shape(lr)[1] - small, (tf.shape(hr)[1] - big) // s)
    else:
        _assert_fits(hr, big, "HR")
        limit_y, limit_x = tf.shape(hr)[0] - big, tf.shape(hr)[1] - big
    k = config.crops_per_image
    ys = tf.random.stateless_uniform([k], seed, 0, limit_y + 1, dtype=tf.int32)
    xs = tf.random.stateless_uniform([k], tf.random.experimental.stateless_fold_in(seed, 1), 0, limit_x + 1, dtype=tf.int32)
    out = {}
    if "lr" in element:
        out["lr"] = tf.stack([tf.slice(lr, [ys[j], xs[j], 0], [small, small, 3]) for j in range(k)])
        ys, xs = ys * s, xs * s
    out["hr"] = tf.stack([tf.slice(hr, [ys[j], xs[j], 0], [big, big, 3]) for j in range(k)])
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


def build_dataset(config: DatasetConfig, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """The input pipeline described in the module docstring.

    Args:
      config: a `DatasetConfig`.
      input_context: from `strategy.distribute_datasets_from_function`; shards the input
        and makes batches per replica.

    Returns:
      A `tf.data.Dataset` of `(lr, hr)`: `[B, P/s, P/s, 3]` and `[B, P, P, 3]` float32 in [0, 1]
      (validation with `validation_crop="full"`: `[1, h, w, 3]` and `[1, s*h, s*w, 3]`).

    Raises:
      ValueError: bad options or data (e.g. images smaller than the patch).
      CorruptShardError: a shard that fails the `config.verify` check, naming the file.
    """
    if not isinstance(config, DatasetConfig):
        raise TypeError(f"build_dataset expects a DatasetConfig. Received: {type(config).__name__}")
    batch = config.batch_size
    pipeline_id = 0
    if input_context is not None:
        batch = input_context.get_per_replica_batch_size(config.batch_size)
        pipeline_id = input_context.input_pipeline_id
    base = tf.constant([config.seed, pipeline_id], tf.int64)
    if config.source == "tfrecord":
        ds = _record_elements(config, input_context, base)
    elif config.source == "folder":
        ds = _folder_elements(config, input_context)
    else:
        ds = _tfds_elements(config, input_context)
    if config.cache_decoded:
        ds = ds.cache()
        if config.training:
            if config.shuffle_buffer:
                ds = ds.shuffle(config.shuffle_buffer, seed=_int_seed(base, _RECORDS), reshuffle_each_iteration=True)
            if config.repeat:
                ds = ds.repeat()
    parallel = _parallel(config)
    if config.training:
        ds = ds.enumerate().map(
            _plain(lambda i, e: _augment_crops(_random_crops(e, _stream(base, _CROPS, i), config), _stream(base, _AUGMENT, i), config)),
            num_parallel_calls=parallel,
            deterministic=True,
        )
        ds = ds.unbatch()
        if config.patch_shuffle:
            ds = ds.shuffle(config.patch_shuffle, seed=_int_seed(base, _PATCHES), reshuffle_each_iteration=True)
        ds = ds.batch(batch, drop_remainder=True)
    else:
        ds = ds.map(_plain(lambda e: _validation_crop(e, config)), num_parallel_calls=parallel, deterministic=True)
        ds = ds.batch(batch, drop_remainder=False)
    ds = ds.enumerate().map(
        _plain(lambda i, b: _degrade_batch(b, _stream(base, _BATCH, i), config)), num_parallel_calls=parallel, deterministic=True
    )
    return ds.prefetch(tf.data.AUTOTUNE)
