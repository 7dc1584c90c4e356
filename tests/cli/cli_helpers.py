"""Running `sr-tf` in a fresh Python process, so what it imports and prints can be checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "apache_beam", "tensorflow_serving")

# Runs the CLI, then reports (on the last stdout line) its exit status and the heavy modules loaded.
_DRIVER = f"""
import json, sys
from sr_tf.cli import main
status = "exception"  # an exception escaped main: the interpreter prints its traceback after the report
try:
    status = main(sys.argv[1:])
except SystemExit as exit:  # as the interpreter does: a message is printed, with status 1
    status = exit.code
    if isinstance(status, str):
        print(status, file=sys.stderr)
        status = 1
finally:
    sys.stdout.flush()
    import os
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    print("\\n" + json.dumps({{"status": status, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules),
                               "threads": threads}}))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: our code first on the path, no TF_CPP_MIN_LOG_LEVEL of the tests."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_cli(argv: list[str], timeout: float = 600, **env: str):
    """`sr-tf ARGV` in a new process: (exit status, heavy modules imported, stdout, stderr).
    `run_cli.threads` holds the process's thread count at exit (None off Linux)."""
    done = subprocess.run([sys.executable, "-c", _DRIVER, *argv], capture_output=True, text=True,
                          timeout=timeout, env=clean_env(**env), cwd=str(REPO))
    lines = done.stdout.rstrip("\n").splitlines()
    assert lines, f"no report from the driver; stderr:\n{done.stderr[-3000:]}"
    report = json.loads(lines[-1])
    run_cli.threads = report["threads"]
    return report["status"], report["heavy"], "\n".join(lines[:-1]), done.stderr
