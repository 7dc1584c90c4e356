"""Kill-and-resume: a run killed (SIGKILL) after its step-2 checkpoint and resumed to step 4 ends
with exactly the same step, weights, EMA and optimizer state as an uninterrupted run."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

COMMON = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    from sr_tf.training.configs import DataConfig, LossConfig, NetConfig, OptimConfig, TrainConfig
    from sr_tf.training.distribute import batched_dataset_fn
    from sr_tf.training.trainer import train

    config = TrainConfig(
        name="tiny_gan",
        generator=NetConfig("rrdbnet", {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 2}),
        discriminator=NetConfig("vgg_style", {"input_size": 16, "num_feat": 8, "num_stages": 2, "dense_units": 8}),
        loss=LossConfig(pixel_loss="l1", gan_type="relativistic", gan_weight=0.1),
        optim=OptimConfig(g_lr=1e-3, d_lr=1e-3, lr_schedule="multistep", milestones=[3], gamma=0.5),
        data=DataConfig(scale=2, hr_patch_size=16, batch_size=2),
        total_steps=4, checkpoint_every=2, val_every=1000, log_every=1, ema_decay=0.9,
    )
    rng = np.random.default_rng(0)
    hr = rng.random((2, 16, 16, 3), dtype=np.float32)
    lr = hr.reshape(2, 8, 2, 8, 2, 3).mean(axis=(2, 4))
    # the same batch every step, so an exact resume gives exactly the uninterrupted result
    data = batched_dataset_fn(tf.data.Dataset.from_tensor_slices((lr, hr)).take(2), 2)

    def kill_at_2(step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    """
)

FIRST = COMMON + textwrap.dedent(
    """
    train(config, data, sys.argv[1], progress=False)
    train(config, data, sys.argv[2], progress=False, on_checkpoint=kill_at_2)
    print("not killed")
    """
)
RESUME = COMMON + "train(config, data, sys.argv[1], progress=False)\n"


def checkpoint_values(run_dir):
    path = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    names = [n for n in reader.get_variable_to_shape_map() if not n.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")]
    return path, {n: reader.get_tensor(n) for n in names}


@pytest.mark.large
def test_kill_and_resume_restores_everything_exactly(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", FIRST, str(full), str(killed)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-3000:]  # really killed, no clean shutdown
    assert "not killed" not in proc.stdout
    path, at_kill = checkpoint_values(killed)
    assert path.endswith("ckpt-2") and int(at_kill["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 2

    proc = subprocess.run([sys.executable, "-c", RESUME, str(killed)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "at step 2" in proc.stdout

    _, expected = checkpoint_values(full)
    _, resumed = checkpoint_values(killed)
    assert set(expected) == set(resumed)
    kinds = {n.split("/")[0] for n in expected}
    assert {"generator", "discriminator", "g_optimizer", "d_optimizer", "ema_generator", "step"} <= kinds
    bn_stats = [n for n in expected if n.startswith("discriminator/") and "moving_mean" in n]
    assert bn_stats  # non-trainable state too
    for opt, net in (("g_optimizer", "generator/"), ("d_optimizer", "discriminator/")):
        # iterations + learning rate + two Adam moments per trainable weight (kernels alone count here)
        kernels = sum(n.startswith(net) and "kernel" in n for n in expected)
        assert sum(n.startswith(f"{opt}/") for n in expected) >= 2 + 2 * kernels
    assert int(resumed["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    # and training moved the weights between the kill and the end
    weights = [n for n in at_kill if n.startswith("generator/")]
    assert any(not np.array_equal(at_kill[n], expected[n]) for n in weights)
