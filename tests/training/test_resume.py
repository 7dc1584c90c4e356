"""Exact resume through `sr-tf train`: a run stopped at a checkpoint (time limit) or killed with
SIGKILL between checkpoints, then started again with the same command, ends bit-identical to an
uninterrupted run, with a different batch at every step (the data stream resumes too). A run whose
latest checkpoint was damaged afterwards goes on from the one before, setting the damaged files
aside, and still ends bit-identical; one with no checkpoint that verifies stops with one line."""

import os
import shutil
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
    return data, state, full


@pytest.mark.large
def test_stopped_by_the_time_limit_and_rerun_with_the_same_command(tmp_path, uninterrupted):
    data, expected, _ = uninterrupted
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
    data, expected, _ = uninterrupted
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

    data, _, _ = uninterrupted
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


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path.read_bytes()


def flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def files_of(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# each case: which files of the latest checkpoint (step 4) are damaged, and how
LATEST_DAMAGE = {
    "weights": {".weights.h5": truncate},
    "json": {".json": lambda p: truncate(p, keep=0.3)},
    "weights_and_json": {".weights.h5": flip_byte, ".json": truncate},
}


@pytest.mark.large
@pytest.mark.parametrize("case", sorted(LATEST_DAMAGE))
def test_a_damaged_latest_checkpoint_is_set_aside_and_the_run_ends_bit_identical(tmp_path, uninterrupted, case):
    data, expected, full = uninterrupted
    out = tmp_path / "run"
    shutil.copytree(full, out)
    folder = out / "checkpoints"
    latest = folder / "ckpt-000000004"
    damaged = {suffix: damage(latest.with_suffix(suffix)) for suffix, damage in LATEST_DAMAGE[case].items()}
    untouched = {s: latest.with_suffix(s).read_bytes() for s in (".json", ".weights.h5") if s not in damaged}
    proc = run_cli(train_command(data, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    problem = {"weights": "ckpt-000000004.weights.h5 is truncated: ",
               "json": "ckpt-000000004.json is not a readable checkpoint description",
               "weights_and_json": "ckpt-000000004.json is not a readable checkpoint description"}[case]
    line = next((x for x in proc.stdout.splitlines() if x.startswith(f"Checkpoint {latest}.json is damaged")), "")
    assert problem in line and line.endswith(
        "set aside as ckpt-000000004.json.damaged and ckpt-000000004.weights.h5.damaged; going on from "
        "ckpt-000000002.json."), proc.stdout
    assert "Resumed from ckpt-000000002.json at step 2" in proc.stdout
    assert "Done at step 4" in proc.stdout
    assert_same_state(checkpoint_arrays(out, 4), expected)  # step 4 written again, as without the damage
    for suffix, content in {**damaged, **untouched}.items():  # the damaged checkpoint is kept, renamed
        assert latest.with_name(latest.name + suffix + ".damaged").read_bytes() == content
    assert sorted(p.name for p in folder.glob("*.json")) == ["ckpt-000000002.json", "ckpt-000000004.json"]


@pytest.mark.large
def test_no_checkpoint_that_verifies_stops_with_one_line_and_changes_nothing(tmp_path, uninterrupted):
    data, _, full = uninterrupted
    out = tmp_path / "run"
    shutil.copytree(full, out)
    folder = out / "checkpoints"
    truncate(folder / "ckpt-000000004.json", keep=0.3)
    flip_byte(folder / "ckpt-000000002.weights.h5")  # same size: only the SHA-256 can tell
    before = files_of(out)
    proc = run_cli(train_command(data, out))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"sr-tf train: no checkpoint in {folder} verifies (ckpt-000000004.json is not a readable checkpoint "
        "description (truncated or overwritten); ckpt-000000002.weights.h5 is corrupt: its SHA-256 differs from "
        "the recorded one); nothing was changed. Move the damaged files away to start the run again, or use a new "
        "--out."), proc.stderr
    assert files_of(out) == before


@pytest.mark.large
def test_verify_checkpoint_names_what_is_wrong(tmp_path, uninterrupted):
    from sr_tf.training.callbacks import newest_good_checkpoint, verify_checkpoint

    _, _, full = uninterrupted
    out = tmp_path / "run"
    shutil.copytree(full, out)
    first, latest = (out / "checkpoints" / f"ckpt-00000000{s}.json" for s in (2, 4))
    assert verify_checkpoint(first) is None and verify_checkpoint(latest) is None
    text = latest.read_text()
    latest.write_text(text.replace('"step": 4', '"step": 5'))  # still valid JSON
    assert verify_checkpoint(latest) == "ckpt-000000004.json is corrupt: its SHA-256 differs from the recorded one"
    latest.write_text(text)
    latest.with_suffix(".weights.h5").unlink()
    assert verify_checkpoint(latest) == "ckpt-000000004.weights.h5 is missing"
    messages = []
    assert newest_good_checkpoint(out, log=messages.append, set_damaged_aside=False) == first
    assert messages == [f"Checkpoint {latest} is damaged (ckpt-000000004.weights.h5 is missing); using "
                        "ckpt-000000002.json."]
    assert latest.exists()  # not set aside when asked not to
