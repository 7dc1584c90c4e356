"""Sharding under a 2-replica MirroredStrategy on logical CPU devices.

Logical devices must be configured before TensorFlow initialises its devices, which the
rest of the test session has already done, so the check runs in a fresh Python process.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from data_helpers import build_records

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from sr_tf.data import DatasetConfig, build_dataset

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    report = {"replicas": strategy.num_replicas_in_sync, "steps": [], "train_shapes": []}
    val = DatasetConfig(path=sys.argv[1], scale=2, patch_size=8, batch_size=4, training=False)
    for lr, hr in strategy.distribute_datasets_from_function(lambda ctx: build_dataset(val, ctx)):
        parts = strategy.experimental_local_results(hr)
        report["steps"].append([[int(round(float(v) * 255)) for v in p[:, 0, 0, 0]] for p in parts])

    train = val.replace(training=True, batch_size=6, degradation="blur-bicubic")
    dist = strategy.distribute_datasets_from_function(lambda ctx: build_dataset(train, ctx))

    @tf.function
    def step(lr, hr):
        return strategy.run(lambda a, b: tf.reduce_mean(tf.abs(tf.image.resize(a, [8, 8]) - b)), args=(lr, hr))

    lr, hr = next(iter(dist))
    report["train_shapes"] = [list(p.shape) for p in strategy.experimental_local_results(hr)]
    report["loss"] = float(strategy.reduce("MEAN", step(lr, hr), axis=None))
    print("REPORT " + json.dumps(report))
    """
)


@pytest.mark.large
def test_mirrored_strategy_two_cpu_replicas_get_disjoint_per_replica_batches(tmp_path):
    images = {f"{i}.png": np.full((8, 8, 3), 10 * (i + 1), np.uint8) for i in range(8)}  # red value = identity
    out = build_records(tmp_path, images, num_shards=4)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, out], capture_output=True, text=True, timeout=300, env=env, cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    report = json.loads(lines[0][len("REPORT ") :])
    assert report["replicas"] == 2
    seen = []
    for step in report["steps"]:
        assert len(step) == 2 and all(len(ids) == 2 for ids in step)  # 4 global -> 2 per replica
        assert not set(step[0]) & set(step[1])
        seen += step[0] + step[1]
    assert sorted(seen) == [10 * (i + 1) for i in range(8)]  # each image exactly once per epoch
    assert report["train_shapes"] == [[3, 8, 8, 3], [3, 8, 8, 3]]
    assert np.isfinite(report["loss"])
