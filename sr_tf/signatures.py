"""Names in an exported SavedModel: its signatures, their inputs and outputs.

The contract between `sr_tf.export`, the servers and the clients, kept here without importing
TensorFlow so that a REST client (`sr-tf predict`, the web page) can use it without the import.
"""

DEFAULT_SIGNATURE = "serving_default"  # float32 [N, H, W, 3] in [0, 255] -> float32 [N, sH, sW, 3]
# PNG/JPEG/WebP bytes [N] -> PNG bytes [N]: pixels, channels and bit depth kept; no metadata (ICC, EXIF,
# XMP, text, DPI) and no EXIF orientation applied: clients reattach the input's (`sr-tf predict` does)
ENCODED_SIGNATURE = "encoded_image"
PIXELS_INPUT = "images"
PIXELS_OUTPUT = "upscaled"
BYTES_INPUT = "image_bytes"
BYTES_OUTPUT = "upscaled_bytes"
NOISE_INPUT = "noise_level"  # float32 [N] or [1], only for models with a noise input (SRMD); optional (default)
BLEND_SIGNATURE = "blended"  # images + strength -> upscaled, only for a blend export (`sr-tf export --blend`)
ENCODED_BLEND_SIGNATURE = "encoded_image_blended"  # image_bytes + strength -> upscaled_bytes, likewise
STRENGTH_INPUT = "strength"  # float32 scalar []: where on the blend's axis (0..1, or a family's levels); optional
