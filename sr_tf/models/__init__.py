"""Generators and discriminators (Keras 3 subclassed models, registered serializable).

All generators map `[N, H, W, C] float32 in [0, 1]` to `[N, s*H, s*W, C] float32`.
"""

from sr_tf.models.cunet import CUNet
from sr_tf.models.dat import DAT
from sr_tf.models.hat import HAT
from sr_tf.models.interpolate import interpolate_models
from sr_tf.models.layers import PixelShuffle, torch_to_tf_shuffle_permutation
from sr_tf.models.omnisr import OmniSR
from sr_tf.models.plksr import PLKSR, RealPLKSR
from sr_tf.models.resized import ResizedGenerator
from sr_tf.models.rrdbnet import RRDB, ResidualDenseBlock, RRDBNet
from sr_tf.models.safmn import SAFMN, SAFMNBCIE
from sr_tf.models.span import SPAN
from sr_tf.models.srcnn import SRCNN
from sr_tf.models.srmd import SRMD
from sr_tf.models.srresnet import ResidualBlock, SRResNet
from sr_tf.models.srvgg import SRVGGNetCompact
from sr_tf.models.swinir import SwinIR
from sr_tf.models.unet_discriminator import UNetDiscriminatorSN
from sr_tf.models.upconv7 import UpConv7
from sr_tf.models.upcunet import UpCunet
from sr_tf.models.vgg_discriminator import VGGStyleDiscriminator

GENERATORS = {
    "srcnn": SRCNN,
    "srresnet": SRResNet,
    "rrdbnet": RRDBNet,
    "srvgg_compact": SRVGGNetCompact,
    "span": SPAN,
    "upcunet": UpCunet,
    "cunet": CUNet,
    "upconv7": UpConv7,
    "srmd": SRMD,
}
DISCRIMINATORS = {
    "vgg_style": VGGStyleDiscriminator,
    "unet_sn": UNetDiscriminatorSN,
}


def model_scale(model) -> int:
    """The upscaling factor of a generator (`scale` or `upscale` attribute)."""
    for attr in ("scale", "upscale"):
        value = getattr(model, attr, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"Cannot tell the scale of model {getattr(model, 'name', model)!r}: it has no `scale` attribute.")


__all__ = [
    "CUNet",
    "DAT",
    "DISCRIMINATORS",
    "GENERATORS",
    "HAT",
    "OmniSR",
    "RRDB",
    "SAFMN",
    "SAFMNBCIE",
    "SPAN",
    "SRCNN",
    "SRMD",
    "PLKSR",
    "PixelShuffle",
    "RealPLKSR",
    "RRDBNet",
    "ResidualBlock",
    "ResizedGenerator",
    "ResidualDenseBlock",
    "SRResNet",
    "SRVGGNetCompact",
    "SwinIR",
    "UNetDiscriminatorSN",
    "UpConv7",
    "UpCunet",
    "VGGStyleDiscriminator",
    "interpolate_models",
    "model_scale",
    "torch_to_tf_shuffle_permutation",
]
