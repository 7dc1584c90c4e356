"""`MultiWorkerMirroredStrategy` for real: two worker processes on 127.0.0.1 run `sr-tf train`
(the same code path, strategy chosen from `TF_CONFIG`) and end with identical weights, equal to
one worker with the same global batch; only the chief writes into the run directory."""

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from train_helpers import TINY, write_images

from tests.net_helpers import free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs `sr-tf train` and saves the trainer's final weights (every variable) to argv[1].
SCRIPT = textwrap.dedent("""
    import sys
    from sr_tf.training import run

    real = run.train

    def train(*args, **kwargs):
        result = real(*args, **kwargs)
        result.model.save_weights(sys.argv[1])
        return result

    run.train = train
    from sr_tf.cli import main
    sys.exit(main(sys.argv[2:]))
    """)




def arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.large
def test_two_workers_train_like_one(tmp_path):
    data = write_images(tmp_path / "photos", (32, 32), count=6, seed=4)
    # no batch norm: its statistics are per replica (as in PyTorch DDP), so they would differ from one worker's
    argv = ["train", "--config", "srresnet", "--data", str(data), "--no-progress", "--steps", "4",
            *[a for s in TINY for a in ("--set", s)], "--set", "data.batch_size=4", "--set", "checkpoint_every=4",
            "--set", "generator.kwargs.batch_norm=false"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path / f"worker{index}.weights.h5"), *argv, "--out", str(tmp_path / "run")],
            env={**env, "TF_CONFIG": json.dumps(tf_config)}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    single = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "single.weights.h5"), *argv,
                             "--out", str(tmp_path / "single")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    chief, other, alone = (arrays(tmp_path / f"{n}.weights.h5") for n in ("worker0", "worker1", "single"))
    assert set(chief) == set(other) == set(alone)
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)  # all-reduce keeps them identical
        # one worker with the global batch: same data, gradients summed in another order
        np.testing.assert_allclose(chief[name], alone[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert int(chief["g_optimizer/vars/0"]) == 4  # the optimizer's iteration count
    # only the chief wrote the run directory; worker 1 wrote to a temporary one, since removed
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").glob("*.json")) == ["ckpt-000000004.json"]
    assert (run / "generator.keras").is_file() and list((run / "logs").glob("train/events.*"))
    assert len(list((run / "logs").glob("train/events.*"))) == 1
