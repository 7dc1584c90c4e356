"""The file suffixes sr-tf recognises, one list per kind (lower case, with the dot).

Nothing heavy is imported here: the CLI checks arguments against these before TensorFlow loads.
Video suffixes live with the video prober (`sr_tf.video.VIDEO_SUFFIXES`), checkpoint suffixes with
the checkpoint reader; the formats sr-tf can write are `sr_tf.imageio.FORMATS`.
"""

# Images Pillow decodes for us (PNG, JPEG, WebP, BMP, TIFF, GIF's first frame).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
# Every suffix a TFRecord file is given in the wild; sr-tf writes `.tfrecord`.
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec", ".tfr")
