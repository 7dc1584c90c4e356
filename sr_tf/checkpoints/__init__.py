"""PyTorch checkpoints (`.pth`, `.pt`, `.ckpt`, `.safetensors`) into our Keras models.

Layers: `reader` turns a file into a flat `{name: np.ndarray}` state dict without running any of
the file's code; each architecture module (`esrgan`, `swinir`, ...) `detect`s its own state dicts
(returning every constructor argument, read from the tensors' names and shapes), `build`s the Keras
model and `assign`s the weights; `registry` tries them in order; `load` puts these together:
`load_checkpoint(path) -> (keras.Model, Detected)`, `convert_checkpoint(path, "x.keras")` and
`inspect_checkpoint(path) -> dict`.

No module here imports torch: torch is only the tests' oracle (through spandrel). Importing this
package imports no TensorFlow either (the architecture modules are imported on first detection).
"""

from sr_tf.checkpoints.load import convert_checkpoint, inspect_checkpoint, load_checkpoint
from sr_tf.checkpoints.reader import Checkpoint, read_checkpoint, read_state_dict
from sr_tf.checkpoints.registry import Detected
from sr_tf.checkpoints.state import CheckpointError, StateDict

__all__ = ["Checkpoint", "CheckpointError", "Detected", "StateDict", "convert_checkpoint", "inspect_checkpoint",
           "load_checkpoint", "read_checkpoint", "read_state_dict"]
