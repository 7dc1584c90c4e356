"""MirroredStrategy on 2 logical CPU devices vs one device, same global batch.

Logical devices must be configured before TensorFlow initialises, so this runs in a subprocess.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from sr_tf.models import RRDBNet, UNetDiscriminatorSN
    from sr_tf.training.distribute import distribute
    from sr_tf.training.models import SRGAN

    rng = np.random.default_rng(0)
    hr = rng.random((4, 16, 16, 3), dtype=np.float32)
    lr = hr.reshape(4, 8, 2, 8, 2, 3).mean(axis=(2, 4))
    pairs = tf.data.Dataset.from_tensor_slices((lr, hr))

    def first_step(strategy):
        keras.utils.set_random_seed(7)
        with strategy.scope():
            g = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2)
            d = UNetDiscriminatorSN(num_feat=8)
            model = SRGAN(g, d, crop_border=2)
            model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), gan_weight=0.1)
            model.build(lr.shape)
        it = iter(distribute(strategy, lambda ctx: pairs.batch(ctx.get_per_replica_batch_size(4) if ctx else 4)))

        @tf.function
        def step(iterator):
            strategy.run(model.train_step, args=(next(iterator),))

        step(it)
        logs = {k: float(t.result()) for k, t in model._train_trackers.items()}
        return {"replicas": strategy.num_replicas_in_sync, "logs": logs,
                "g": [w.tolist() for w in g.get_weights()[:2]], "d": [w.tolist() for w in d.get_weights()[:2]]}

    one = first_step(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = first_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print("RESULT" + json.dumps([one, two]))
    """
)


@pytest.mark.large
def test_two_replicas_give_the_same_first_step_as_one():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    one, two = json.loads(line[len("RESULT"):])
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert set(one["logs"]) == set(two["logs"]) >= {"g_loss", "pixel_loss", "gan_loss", "d_loss"}
    for key, value in one["logs"].items():
        assert np.isfinite(value)
        np.testing.assert_allclose(two["logs"][key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    for net in ("g", "d"):  # the updated weights agree too: gradients were scaled per global batch
        for a, b in zip(one[net], two[net], strict=True):
            np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-4, atol=1e-6)


def test_strategy_selection_from_the_environment(monkeypatch):
    import tensorflow as tf

    from sr_tf.training.distribute import select_strategy

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}')
    assert select_strategy() is tf.distribute.get_strategy()  # one worker, no GPUs: default
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        select_strategy()
