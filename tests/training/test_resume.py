"""Exact resume through `sr-tf train`: a run stopped at a checkpoint (time limit) or killed with
SIGKILL between checkpoints, then started again with the same command, ends bit-identical to an
uninterrupted run, with a different batch at every step (the data stream resumes too)."""

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from train_helpers import TINY_GAN, write_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train_command(data, out, *extra):
    return ["train", "--config", "srgan", "--data", str(data), "--out", str(out), "--no-progress", "--steps", "4",
            *[a for s in TINY_GAN for a in ("--set", s)], *extra]


def run_cli(argv, kill_at_step=None, timeout=300):
    """`sr_tf.cli.main(argv)` in a fresh process; with `kill_at_step` the process SIGKILLs itself
    right after that optimizer step (between two checkpoints)."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        kill_at = {kill_at_step!r}
        if kill_at is not None:
            from sr_tf.training import callbacks
            real = callbacks.StopAtStep.on_train_batch_end

            def on_train_batch_end(self, batch, logs=None):
                real(self, batch, logs)
                if callbacks._step(self.model) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

            callbacks.StopAtStep.on_train_batch_end = on_train_batch_end
        from sr_tf.cli import main
        sys.exit(main(sys.argv[1:]))
        """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def checkpoint_arrays(run_dir, step):
    arrays = {}
    with h5py.File(run_dir / "checkpoints" / f"ckpt-{step:09d}.weights.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def assert_same_state(a, b):
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = write_images(root / "photos", (40, 40), count=8, seed=2)
    full = root / "full"
    proc = run_cli(train_command(data, full))
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = checkpoint_arrays(full, 4)
    kinds = {name.split("/")[0] for name in state}
    # the whole trainer: nets, EMA, both optimizers (moments, iterations), the step counter
    assert {"generator", "ema_generator", "discriminator", "g_optimizer", "d_optimizer"} <= kinds, kinds
    # the discriminator's batch-norm statistics too (gamma, beta, moving mean, moving variance)
    assert any("batch_normalization" in k and k.endswith("vars/3") for k in state)
    return data, state


@pytest.mark.large
def test_stopped_by_the_time_limit_and_rerun_with_the_same_command(tmp_path, uninterrupted):
    data, expected = uninterrupted
    out = tmp_path / "stopped"
    command = train_command(data, out, "--max-minutes", "0")  # stops after every epoch (2 steps)
    for attempt, step in enumerate((2, 4)):
        proc = run_cli(command)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"Done at step {step}" in proc.stdout, proc.stdout
        assert ("Resumed from" in proc.stdout) == (attempt > 0)
    assert_same_state(checkpoint_arrays(out, 4), expected)


@pytest.mark.large
def test_killed_between_checkpoints_resumes_from_the_last_one(tmp_path, uninterrupted):
    data, expected = uninterrupted
    out = tmp_path / "killed"
    proc = run_cli(train_command(data, out), kill_at_step=3)  # checkpoint at 2, killed after step 3
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert "Done" not in proc.stdout
    assert sorted(p.name for p in (out / "checkpoints").glob("*.json")) == ["ckpt-000000002.json"]
    at_kill = checkpoint_arrays(out, 2)
    proc = run_cli(train_command(data, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resumed from ckpt-000000002.json at step 2" in proc.stdout
    resumed = checkpoint_arrays(out, 4)
    assert_same_state(resumed, expected)
    assert any(not np.array_equal(at_kill[k], resumed[k]) for k in resumed if k.startswith("generator/"))


@pytest.mark.large
def test_ctrl_c_finishes_the_epoch_saves_and_resumes_exactly(tmp_path, uninterrupted):
    import signal
    import time

    data, _ = uninterrupted
    command = [a if a != "steps_per_epoch=2" else "steps_per_epoch=20" for a in train_command(data, tmp_path / "x")]
    command = [*command, "--set", "checkpoint_every=20", "--set", "val_every=20"]
    full, stopped = tmp_path / "full", tmp_path / "stopped"
    with_out = lambda out: [a if a != str(tmp_path / "x") else str(out) for a in command]  # noqa: E731
    steps = ["--steps", "100"]
    proc = run_cli([*with_out(full), *steps])
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    running = subprocess.Popen([sys.executable, "-m", "sr_tf", *with_out(stopped), *steps], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = stopped / "checkpoints" / "ckpt-000000020.json"
    deadline = time.monotonic() + 240
    while not first.exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)  # somewhere in the second epoch
    out, err = running.communicate(timeout=240)
    assert running.returncode == 0, err[-3000:]
    assert "SIGINT: stopping at the end of this epoch" in out
    saved = sorted(int(p.stem.split("-")[1]) for p in (stopped / "checkpoints").glob("*.json"))
    assert saved[-1] % 20 == 0 and saved[-1] < 100, saved  # at an epoch end, before the last step
    proc = run_cli([*with_out(stopped), *steps])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_state(checkpoint_arrays(stopped, 100), checkpoint_arrays(full, 100))
