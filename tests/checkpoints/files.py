"""One state dict written as every checkpoint file sr-tf reads, for tests of the architecture imports."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("zip", "legacy", "safetensors")


def checkpoint_files(state: dict, folder: Path, stem: str = "net", formats=FORMATS) -> dict[str, Path]:
    """`{format: path}`: `state` (`{name: torch.Tensor}` or numpy arrays) saved by torch as a zip
    `.pth` and a legacy `.pth`, and by safetensors as `.safetensors`."""
    import numpy as np
    import torch

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach()
               for k, v in state.items()}
    out = {}
    if "zip" in formats:
        out["zip"] = folder / f"{stem}.pth"
        torch.save(tensors, out["zip"])
    if "legacy" in formats:
        out["legacy"] = folder / f"{stem}_legacy.pth"
        torch.save(tensors, out["legacy"], _use_new_zipfile_serialization=False)
    if "safetensors" in formats:
        from safetensors.torch import save_file

        out["safetensors"] = folder / f"{stem}.safetensors"
        save_file({k: v.contiguous().clone() for k, v in tensors.items()}, out["safetensors"])
    return out
