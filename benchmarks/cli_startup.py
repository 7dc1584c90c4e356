"""How long `sr-tf` takes to answer what needs no model: help, argument errors, an HTTP predict.

Each command is a fresh `python -m sr_tf ...` process, timed from start to exit (median of
`--repeats`), beside the peer that sets the floor for anything that loads TensorFlow:
`python -c "import tensorflow"` in the same run. Prints the machine and the ratios.

    python3 benchmarks/cli_startup.py                 # 5 runs each
    python3 benchmarks/cli_startup.py --repeats 9

The installed `sr-tf` launcher may add its own start-up (a pyenv shim adds about 0.4 s here);
`python -m sr_tf` measures ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

COMMANDS = {
    "sr-tf --help": ["--help"],
    "sr-tf upscale --help": ["upscale", "--help"],
    "sr-tf batch-predict --help": ["batch-predict", "--help"],
    "sr-tf upscale (no arguments)": ["upscale"],
    "sr-tf predict ... out.gif (bad extension)": ["predict", "in.png", "out.gif", "--model", "m"],
    "sr-tf evaluate --degradation nope": ["evaluate", "--data", "x", "--out", "o", "--degradation", "nope"],
}


def _time(argv: list[str], repeats: int) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")])}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(describe())
    peer = _time(["-c", "import tensorflow"], args.repeats)
    label = 'python -c "import tensorflow" (peer)'
    print(f"{label:<44} {peer:6.2f} s")
    for label, argv in COMMANDS.items():
        seconds = _time(["-m", "sr_tf", *argv], args.repeats)
        print(f"{label:<44} {seconds:6.2f} s  {seconds / peer:5.3f}x the TensorFlow import")


if __name__ == "__main__":
    main()
