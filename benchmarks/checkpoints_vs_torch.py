"""CPU time of each imported architecture against the same weights in PyTorch (spandrel), one run.

    python benchmarks/checkpoints_vs_torch.py                 # every architecture, 64x64, float32 + bfloat16
    python benchmarks/checkpoints_vs_torch.py --size 96 --archs ESRGAN SPAN --precisions float32

For each architecture, spandrel's model in its published default configuration gets random weights;
its state dict goes through `sr_tf.checkpoints` (detection, build, assign) into our Keras model. Both
run one `[1, SIZE, SIZE, 3]` input (PyTorch under `torch.inference_mode`, bfloat16 via CPU autocast;
ours as a `tf.function` of `sr_tf.backends.cast_model`), same thread count, best of `--repeats` after a
warm-up. Prints the machine line, seconds per image for each, the ratio (ours / PyTorch: below 1 is
faster) and the output agreement in dB. Compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# spandrel module, class, constructor arguments (spandrel's defaults are the published configurations)
ARCHS = {
    "ESRGAN": ("ESRGAN", "ESRGAN", dict(in_nc=3, out_nc=3, num_filters=64, num_blocks=23, scale=4)),
    "Compact": ("Compact", "Compact", dict(num_feat=64, num_conv=16, upscale=4)),
    "SPAN": ("SPAN", "SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)),
    "RealCUGAN": ("RealCUGAN", "UpCunet2x", dict()),
    "SwinIR": ("SwinIR", "SwinIR", dict(upscale=2, embed_dim=60, depths=[6, 6, 6, 6], num_heads=[6, 6, 6, 6],
                                       window_size=8, mlp_ratio=2, upsampler="pixelshuffledirect")),
    "HAT": ("HAT", "HAT", dict(upscale=4, embed_dim=144, depths=[6] * 6, num_heads=[6] * 6, window_size=16,
                               upsampler="pixelshuffle")),
    "DAT": ("DAT", "DAT", dict(upscale=2, embed_dim=60, depth=[18], num_heads=[6], expansion_factor=2,
                               resi_connection="3conv", split_size=[8, 32], upsampler="pixelshuffledirect")),
    "OmniSR": ("OmniSR", "OmniSR", dict(num_feat=64, block_num=1, window_size=8, res_num=5, up_scale=4)),
    "SAFMN": ("SAFMN", "SAFMN", dict(dim=36, n_blocks=8, ffn_scale=2.0, upscaling_factor=4)),
    "PLKSR": ("PLKSR", "PLKSR", dict()),
    "RealPLKSR": ("PLKSR", "RealPLKSR", dict()),
}


def _best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--archs", nargs="+", default=list(ARCHS))
    p.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args(argv)

    import tensorflow as tf
    import torch

    from benchmarks.machine import describe
    from sr_tf.backends import cast_model
    from sr_tf.checkpoints import StateDict, registry
    from tests.checkpoints.oracle import psnr, randomize, spandrel_arch, state_of

    torch.set_num_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    print(describe())
    print(f"threads {args.threads}, input 1x{args.size}x{args.size}x3, best of {args.repeats}")
    print(f"{'architecture':<12} {'precision':<9} {'torch s':>8} {'sr-tf s':>8} {'ratio':>6} {'agree dB':>8}")
    x = np.random.default_rng(0).random((1, args.size, args.size, 3), dtype=np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    for name in args.archs:
        module, cls, kwargs = ARCHS[name]
        try:
            net = randomize(getattr(spandrel_arch(module), cls)(**kwargs), seed=0, scale=0.02)
            model, _ = registry.build_and_assign(StateDict(state_of(net)))
        except Exception as err:  # noqa: BLE001 - report and go on with the others
            print(f"{name:<12} not benchmarked: {type(err).__name__}: {str(err)[:100]}")
            continue
        for precision in args.precisions:
            dtype = torch.bfloat16 if precision == "bfloat16" else None

            def torch_run(net=net, dtype=dtype):
                with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                    return net(xt).float().numpy().transpose(0, 2, 3, 1)

            ours = cast_model(model, precision)
            fn = tf.function(lambda t, m=ours: tf.cast(m(t, training=False), tf.float32),
                             input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
            t_torch = _best(torch_run, args.repeats)
            t_ours = _best(lambda fn=fn: fn(x).numpy(), args.repeats)
            agree = psnr(fn(x).numpy(), torch_run())
            print(f"{name:<12} {precision:<9} {t_torch:>8.3f} {t_ours:>8.3f} {t_ours / t_torch:>6.2f} {agree:>8.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
