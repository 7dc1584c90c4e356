"""PyTorch checkpoints (`.pth`, `.pt`, `.ckpt`, `.safetensors`) into our Keras models.

Layers: `reader` turns a file into a flat `{name: np.ndarray}` state dict without running any of
the file's code; each architecture module (`esrgan`, `swinir`, ...) `detect`s its own state dicts
(returning every constructor argument, read from the tensors' names and shapes), `build`s the Keras
model and `assign`s the weights; `registry` tries them in order.

No module here imports torch: torch is only the tests' oracle (through spandrel).
"""

from sr_tf.checkpoints.state import CheckpointError, StateDict

__all__ = ["CheckpointError", "StateDict"]
