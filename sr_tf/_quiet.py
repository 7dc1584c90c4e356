"""A quiet start for command-line runs: no TensorFlow/absl/CUDA start-up lines unless asked for.

Importing TensorFlow 2.21 on a CPU machine writes lines that look like failures:
`WARNING: All log messages before absl::InitializeLog() is called are written to STDERR`, the
oneDNN and `Could not find cuda drivers` notices, `cpu_feature_guard ... rebuild TensorFlow`, and,
at the first look for a GPU, `E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)`.
Measured here: `TF_CPP_MIN_LOG_LEVEL` (any value, even 3) does not stop the lines written while
TensorFlow's shared libraries load (absl logs to stderr before `InitializeLog`), and only 3 hides
the cuInit line, which would hide real errors too; `CUDA_VISIBLE_DEVICES` does not stop it either.
So `quiet()` sets `TF_CPP_MIN_LOG_LEVEL=2` for what TensorFlow logs later, and points file
descriptor 2 at a temporary file while `tensorflow` is first imported (and looks for GPUs), then
writes back every line that is not start-up noise: errors and fatal lines are shown as they are;
a cuInit failure is shown, in our words, only where an NVIDIA GPU is present.

The user's own `TF_CPP_MIN_LOG_LEVEL`, or `verbose=True` (`sr-tf --verbose`), leaves everything
as TensorFlow does it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings

# Packages whose Python warnings and log records below ERROR a CLI user cannot act on.
DEPENDENCIES = ("tensorflow", "keras", "tf_keras", "absl", "apache_beam", "google", "tensorflow_datasets",
                "h5py", "grpc", "ml_dtypes")
_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"^[IW]\d{4} "),  # absl INFO / WARNING lines: I0000 00:00:1796179713.036 9552 port.cc:153] ...
)
_RECORD = re.compile(r"^[IWEF]\d{4} ")
_CUINIT = re.compile(r"^E\d{4} .*failed call to cuInit: (?P<why>.*)$")


def nvidia_gpu_present() -> bool:
    """Whether the NVIDIA driver sees a GPU here (so a failed cuInit matters to the user)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def startup_lines_to_show(text: str, gpu_present: bool) -> list[str]:
    """The lines of TensorFlow's start-up output worth showing, in order.

    Drops absl's pre-initialisation notice, INFO and WARNING records with their continuation lines
    (`cpu_feature_guard` writes two), and a cuInit failure on a machine without an NVIDIA GPU.
    Keeps ERROR/FATAL records and anything else (a Python warning or traceback) as written.
    """
    shown, dropping = [], False
    for line in text.splitlines():
        if not line.strip():
            continue
        if _RECORD.match(line) or _NOISE[0].match(line):
            dropping = any(p.match(line) for p in _NOISE)
            cuinit = _CUINIT.match(line)
            if cuinit:
                dropping = True
                if gpu_present:
                    shown.append(f"sr-tf: warning: this machine has an NVIDIA GPU but CUDA did not start "
                                 f"({cuinit['why']}); running on the CPU. `sr-tf --verbose ...` shows TensorFlow's log.")
            if dropping:
                continue
        elif dropping:
            continue  # the continuation of a dropped record
        shown.append(line)
    return shown


@contextlib.contextmanager
def _stderr_to_file():
    """Points file descriptor 2 at a temporary file; yields a callable returning what was written."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to capture
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        written = []
        try:
            yield lambda: "".join(written)
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            written.append(tmp.read().decode("utf-8", "replace"))


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of `tensorflow` with stderr captured, then looks for GPUs in the same window."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        read = None
        try:
            with _stderr_to_file() as read:
                try:
                    self._loader.exec_module(module)
                finally:
                    module.__loader__ = self._loader
                    if module.__spec__ is not None:
                        module.__spec__.loader = self._loader
                # CUDA's cuInit runs (and logs) at the first look for a GPU, not at import.
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices("GPU")
        finally:
            if read is not None:
                for line in startup_lines_to_show(read(), nvidia_gpu_present()):
                    print(line, file=sys.stderr)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of `tensorflow` in `_QuietLoader`, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _DependencyRecords(logging.Filter):
    """Drops records below ERROR that dependencies log on the root logger (`logging.warning(...)`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        path = record.pathname.replace(os.sep, "/")
        return not any(f"/{package}/" in path for package in DEPENDENCIES)


_ROOT_FILTER = _DependencyRecords()


def quiet(verbose: bool = False) -> None:
    """Call before TensorFlow is imported. Idempotent; does nothing with `verbose` or a user's
    `TF_CPP_MIN_LOG_LEVEL` (their choice of TensorFlow's logging stands)."""
    if verbose:
        return
    for package in DEPENDENCIES:
        warnings.filterwarnings("ignore", module=rf"{package}(\.|$)")
        logging.getLogger(package).setLevel(logging.ERROR)
    if _ROOT_FILTER not in logging.root.filters:
        logging.root.addFilter(_ROOT_FILTER)
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
