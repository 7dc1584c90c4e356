"""The runtime: turning a `--model` argument into something that runs, in one place.

* `sr_tf.runtime.specs`: classify a spec (`model_spec`), load its Keras generator (`load_generator`:
  catalogue names, `.keras` files, PyTorch checkpoints; local or `gs://`).
* `sr_tf.runtime.savedmodels`: list, load and export-to-cache SavedModels (`serving_base`).
* `sr_tf.runtime.catalogue`: catalogue models converted from ncnn files and cached.
* `sr_tf.runtime.blends`: several specs, or a catalogue denoise family, as one `WeightBlend`.

Servers, batch jobs, video, evaluation and the CLI ask this package; none of them loads a model itself.
"""

from sr_tf.runtime.specs import CHECKPOINT_SUFFIXES, ModelSpec, load_generator, model_spec

__all__ = ["CHECKPOINT_SUFFIXES", "ModelSpec", "load_generator", "model_spec"]
