"""GPU inference and training figures in one run: ours (Keras, SavedModel) beside PyTorch, same weights.

    python benchmarks/gpu.py                          # on a machine with an NVIDIA GPU
    python benchmarks/gpu.py --peak-tflops 312        # a GPU the table below does not know
    python benchmarks/gpu.py --tiny                   # tiny random models on 16x16 (a CPU smoke test)

For realesrgan-x4plus and realesr-animevideov3-x4 (published weights) on a SIZE x SIZE input
(512) it prints output megapixels per second of:
* our Keras model in a `tf.function`, float32 and float16 (`sr_tf.backends.cast_model`), each
  without and with XLA (`jit_compile=True`);
* the exported SavedModel's `serving_default` (`sr-tf export --precision`, whole image, no tiles),
  as loaded and, unless `--no-jit`, compiled whole by XLA (a `tf.function(jit_compile=True)` of it);
* the same weights in PyTorch (BasicSR's RRDBNet / SRVGGNetCompact written below; float16 on a
  GPU, float32 on a CPU), eager and `torch.compile` where it works;
and the fraction of the GPU's dense fp16 tensor-core peak each reaches (MACs counted from the
model's convolutions: RRDBNet x4 is 17.9 M MAC per input pixel). Then the ESRGAN GAN training step
of benchmarks/train_step.py under mixed_float16. TensorFlow's float32 convolutions use TF32
tensor cores on Ampere and later, as PyTorch's do with `allow_tf32` (set below, so both match).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Dense fp16 tensor-core peak (TFLOPS, fp32 accumulate, no sparsity) from NVIDIA's data sheets;
# matched against the device name in this order. `--peak-tflops` overrides.
FP16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0),
    ("B200", 2250.0), ("A100", 312.0), ("A30", 165.0), ("A10G", 70.0), ("A10", 125.0),
    ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("V100", 125.0), ("T4", 65.0),
)
MODELS = ("realesrgan-x4plus", "realesr-animevideov3-x4")


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in FP16_PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU (no GPU visible to TensorFlow)"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"{details.get('device_name', 'GPU')} (compute capability {details.get('compute_capability', '?')})"


def macs_per_input_pixel(model, size: int = 16) -> float:
    """Multiply-accumulates of every Conv2D in the model's graph, per input pixel."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, size, size, 3], tf.float32))
    total = 0
    for op in fn.graph.get_operations():
        if op.type == "Conv2D":
            n, h, w, cout = op.outputs[0].shape.as_list()
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            total += n * h * w * kh * kw * cin * cout
    return total / (size * size)


def timed(fn, repeats: int, warmup: int = 2) -> float:
    """Median seconds of `fn()` (which must wait for its result)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------- PyTorch (BasicSR)


def torch_model(keras_model, name: str):
    """BasicSR's architecture (basicsr/archs/rrdbnet_arch.py, srvgg_arch.py) with the Keras weights."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from sr_tf.models import RRDBNet, SRVGGNetCompact, torch_to_tf_shuffle_permutation

    class ResidualDenseBlock(nn.Module):
        def __init__(self, nf, gc):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(nf, gc, 3, 1, 1), nn.Conv2d(nf + gc, gc, 3, 1, 1)
            self.conv3, self.conv4 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1), nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
            self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, inplace=True)

        def forward(self, x):
            x1 = self.lrelu(self.conv1(x))
            x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
            x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
            x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
            return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x

    class RRDB(nn.Module):
        def __init__(self, nf, gc):
            super().__init__()
            self.rdb1, self.rdb2, self.rdb3 = (ResidualDenseBlock(nf, gc) for _ in range(3))

        def forward(self, x):
            return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    class TorchRRDBNet(nn.Module):
        def __init__(self, nf, nb, gc):
            super().__init__()
            self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
            self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
            self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_up1, self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1), nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_hr, self.conv_last = nn.Conv2d(nf, nf, 3, 1, 1), nn.Conv2d(nf, 3, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, inplace=True)

        def forward(self, x):
            feat = self.conv_first(x)
            feat = feat + self.conv_body(self.body(feat))
            feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
            feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
            return self.conv_last(self.lrelu(self.conv_hr(feat)))

    class TorchSRVGG(nn.Module):
        def __init__(self, nf, nc, upscale):
            super().__init__()
            self.upscale = upscale
            self.body = nn.ModuleList([nn.Conv2d(3, nf, 3, 1, 1), nn.PReLU(nf)])
            for _ in range(nc):
                self.body.extend([nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)])
            self.body.append(nn.Conv2d(nf, 3 * upscale * upscale, 3, 1, 1))
            self.upsampler = nn.PixelShuffle(upscale)

        def forward(self, x):
            out = x
            for layer in self.body:
                out = layer(out)
            return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")

    def copy_conv(conv, keras_conv, permutation=None):
        kernel, bias = (w.numpy() for w in keras_conv.weights)
        if permutation is not None:  # TF pixel-shuffle channel order -> PyTorch's
            inverse = np.argsort(permutation)
            kernel, bias = kernel[..., inverse], bias[inverse]
        conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        conv.bias.data = torch.from_numpy(bias)

    if isinstance(keras_model, RRDBNet) and keras_model.scale == 4:
        k = keras_model
        net = TorchRRDBNet(k.num_feat, k.num_block, k.num_grow_ch)
        for attr in ("conv_first", "conv_body", "conv_hr", "conv_last"):
            copy_conv(getattr(net, attr), getattr(k, attr))
        copy_conv(net.conv_up1, k.conv_ups[0])
        copy_conv(net.conv_up2, k.conv_ups[1])
        for block, keras_block in zip(net.body, k.body, strict=True):
            for rdb, keras_rdb in zip((block.rdb1, block.rdb2, block.rdb3), keras_block.rdbs, strict=True):
                for i, keras_conv in enumerate([*keras_rdb.convs, keras_rdb.conv5]):
                    copy_conv(getattr(rdb, f"conv{i + 1}"), keras_conv)
    elif isinstance(keras_model, SRVGGNetCompact) and keras_model.act_type == "prelu":
        k = keras_model
        net = TorchSRVGG(k.num_feat, k.num_conv, k.upscale)
        for i, (conv, act) in enumerate(zip(k.convs, k.acts, strict=True)):
            copy_conv(net.body[2 * i], conv)
            net.body[2 * i + 1].weight.data = torch.from_numpy(act.alpha.numpy().reshape(-1))
        copy_conv(net.body[-1], k.conv_last, torch_to_tf_shuffle_permutation(k.num_out_ch, k.upscale))
    else:
        raise ValueError(f"No PyTorch twin for {name}")
    return net.eval()


def torch_rows(keras_model, name: str, image: np.ndarray, repeats: int, reference: np.ndarray):
    """(label, seconds, PSNR vs our float32) for PyTorch eager and torch.compile."""
    import torch

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.float16) if cuda else ("cpu", torch.float32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    net = torch_model(keras_model, name).to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
    x = torch.from_numpy(image.transpose(0, 3, 1, 2).copy()).to(device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    rows = []
    variants = [("eager", net)]
    try:
        variants.append(("torch.compile", torch.compile(net)))
    except Exception as err:  # noqa: BLE001 - report and go on
        print(f"  torch.compile unavailable: {type(err).__name__}: {err}")
    for label, fn in variants:
        def run(fn=fn):
            with torch.inference_mode():
                out = fn(x)
            if cuda:
                torch.cuda.synchronize()
            return out

        try:
            out = run().float().cpu().numpy().transpose(0, 2, 3, 1)
            seconds = timed(run, repeats)
        except Exception as err:  # noqa: BLE001 - torch.compile fails on some setups; say so
            print(f"  PyTorch {label} failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        rows.append((f"PyTorch {torch.__version__} {label} {str(dtype).split('.')[-1]}", seconds, psnr(out, reference)))
    return rows


# --------------------------------------------------------------------------- ours


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def our_rows(model, image: np.ndarray, repeats: int, workdir: Path, jit: bool):
    import tensorflow as tf

    from sr_tf.backends import cast_model
    from sr_tf.export import ExportConfig, export_savedmodel

    x = tf.constant(image)
    rows, reference = [], None
    for precision in ("float32", "float16"):
        cast = cast_model(model, precision)
        for xla in (False, True) if jit else (False,):
            fn = tf.function(lambda t, m=cast: tf.cast(m(t, training=False), tf.float32), jit_compile=xla)
            out = fn(x).numpy()
            reference = out if reference is None else reference
            seconds = timed(lambda fn=fn: fn(x)[0, 0, 0, 0].numpy(), repeats)
            rows.append((f"Keras tf.function {precision}{' XLA' if xla else ''}", seconds, psnr(out, reference)))
        path = export_savedmodel(model, workdir / precision / "1",
                                 ExportConfig(tile_size=0, warmup=False, precision=precision))
        loaded = tf.saved_model.load(str(path))  # kept: a tf.function of its signature needs its variables
        signature = loaded.signatures["serving_default"]
        pixels = tf.constant(image * 255.0)  # the signature takes and returns 0-255
        for xla in (False, True) if jit else (False,):
            # XLA: the loaded graph compiled whole, as TF Serving would with XLA enabled.
            fn = (tf.function(lambda p, s=signature: s(images=p)["upscaled"], jit_compile=True) if xla
                  else (lambda p, s=signature: s(images=p)["upscaled"]))
            out = fn(pixels).numpy() / 255.0
            seconds = timed(lambda fn=fn, p=pixels: fn(p)[0, 0, 0, 0].numpy(), repeats)
            rows.append((f"SavedModel serving_default {precision}{' XLA' if xla else ''}", seconds,
                         psnr(out, reference)))
        del loaded
    return rows, reference


def load_models(tiny: bool):
    if not tiny:
        from sr_tf.runtime.catalogue import load_pretrained

        return [(name, load_pretrained(name)) for name in MODELS]
    import keras

    from sr_tf.models import RRDBNet, SRVGGNetCompact

    keras.utils.set_random_seed(0)
    models = [("tiny RRDBNet x4", RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=4)),
              ("tiny SRVGGNetCompact x4", SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4))]
    for _, m in models:
        m(np.zeros((1, 8, 8, 3), np.float32))
    return models


def train_row(tiny: bool, repeats: int) -> str:
    """The ESRGAN G+D step of benchmarks/train_step.py under mixed_float16."""
    import keras
    from train_step import ours_step, parse_args

    argv = ["--models", "esrgan", "--no-torch", "--chunk", "1"]
    if tiny:
        argv += ["--rrdb-blocks", "1", "--batch", "2", "--hr", "32"]
    args = parse_args(argv)
    try:
        seconds = timed(ours_step("esrgan", args, "after-fp16"), repeats, warmup=2)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    return (f"ESRGAN G+D train step, mixed_float16, batch {args.batch}, HR {args.hr}, {args.rrdb_blocks} RRDB: "
            f"{seconds:.3f} s/step, {args.batch / seconds:.1f} patches/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="input edge in pixels (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense fp16 tensor-core peak of the GPU")
    parser.add_argument("--no-jit", action="store_true", help="skip the XLA rows")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="tiny random models (a fast CPU smoke test)")
    args = parser.parse_args(argv)

    from machine import describe

    name = device_name()
    peak = peak_tflops(name, args.peak_tflops)
    print(describe())
    print(f"device: {name}; fp16 tensor-core peak: " + (f"{peak:g} TFLOPS" if peak else "unknown (pass --peak-tflops)"))
    workdir = Path(tempfile.mkdtemp(prefix="sr-tf-gpu-"))
    image = np.random.default_rng(0).random((1, args.size, args.size, 3), dtype=np.float32)
    for label, model in load_models(args.tiny):
        macs = macs_per_input_pixel(model)
        rows, reference = our_rows(model, image, args.repeats, workdir / label.replace(" ", "_"), not args.no_jit)
        if not args.no_torch:
            try:
                rows += torch_rows(model, label, image, args.repeats, reference)
            except ImportError:
                print("  PyTorch not installed (pip install '.[bench]'): its rows are left out")
        print(f"\n{label}: {args.size}x{args.size} -> {4 * args.size}x{4 * args.size}, "
              f"{macs / 1e6:.3g} M MAC per input pixel")
        print(f"{'path':48s} {'s/image':>9s} {'out MP/s':>9s} {'fp16 peak':>9s} {'PSNR vs ours f32':>17s}")
        out_pixels = image.shape[0] * (4 * args.size) ** 2
        for path, seconds, quality in rows:
            tflops = 2 * macs * image.shape[0] * args.size**2 / seconds / 1e12
            share = f"{100 * tflops / peak:8.1f}%" if peak else f"{'?':>9s}"
            print(f"{path:48s} {seconds:9.4f} {out_pixels / seconds / 1e6:9.2f} {share} {quality:14.1f} dB")
    if not args.no_train:
        print("\n" + train_row(args.tiny, max(2, args.repeats // 3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
