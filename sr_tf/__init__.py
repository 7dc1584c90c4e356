"""sr-tf: image super-resolution in TensorFlow 2 / Keras 3.

Layers of the library, in the order data flows:
  sr_tf.data        TFRecords, degradations, the tf.data pipeline
  sr_tf.models      generators and discriminators (Keras 3, serializable)
  sr_tf.pretrained  importers of published weights and a catalogue of named models
  sr_tf.inference   tiled inference on images of any size
  sr_tf.metrics     PSNR / SSIM as papers report them
  sr_tf.training    losses, the GAN keras.Model, recipes
  sr_tf.export      SavedModels for TensorFlow Serving
"""

__version__ = "0.1.0"
