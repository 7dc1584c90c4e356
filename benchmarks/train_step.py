"""Training-step time of sr-tf against an equivalent PyTorch step, side by side in one run.

ESRGAN (stage 2): RRDBNet generator + VGG-style discriminator; G step = L1 (1e-2) + VGG19
conv5_4 perceptual (1) + relativistic GAN (5e-3), then a D step (relativistic), both Adam.
SRResNet: generator step with MSE, Adam. The PyTorch side builds the same layer shapes (written
here, random weights; the VGG19 has random weights on both sides) and runs the same losses.

    python benchmarks/train_step.py                           # paper sizes (slow on a small CPU)
    python benchmarks/train_step.py --rrdb-blocks 4 --batch 4 --hr 64 --steps 3

Reports seconds per step (median of --steps after --warmup) and the ratio torch / ours
(> 1: ours is faster). `--mixed-precision` and `--jit` apply to ours (for GPUs).
torch is a benchmark-only dependency: `pip install ".[bench]"` (a CPU build: on machines with a local
wheel `pip install torch==2.13.0`; an unpinned `torch` may pull a multi-GB CUDA build).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="esrgan,srresnet", help="comma list: esrgan, srresnet")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--hr", type=int, default=128, help="HR patch size for ESRGAN (SRResNet uses --srresnet-hr)")
    p.add_argument("--srresnet-hr", type=int, default=96)
    p.add_argument("--rrdb-blocks", type=int, default=23)
    p.add_argument("--srresnet-blocks", type=int, default=16)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mixed-precision", action="store_true", help="ours under mixed_float16")
    p.add_argument("--jit", action="store_true", help="ours with XLA (jit_compile=True)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads for both (0: library default)")
    return p.parse_args(argv)


def timed(steps_by_name: dict, steps: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each step function; after warm-up the functions take turns,
    so noise from other jobs on the machine falls on all of them alike."""
    for step in steps_by_name.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps_by_name}
    for _ in range(steps):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


# --------------------------------------------------------------------------- ours


def ours_step(name: str, args):
    import keras
    import tensorflow as tf

    from sr_tf.losses import VGGFeatureExtractor
    from sr_tf.models import RRDBNet, SRResNet, VGGStyleDiscriminator
    from sr_tf.training.models import SRGAN, SRModel

    if args.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    rng = np.random.default_rng(0)
    if name == "esrgan":
        hr_size = args.hr
        model = SRGAN(
            RRDBNet(num_block=args.rrdb_blocks, scale=4),
            VGGStyleDiscriminator(input_size=hr_size),
            feature_extractor=VGGFeatureExtractor(("conv5_4",), weights=None),
        )
        model.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4), gan_type="relativistic",
                      gan_weight=5e-3, pixel_weight=1e-2, perceptual_weight=1.0)
    else:
        hr_size = args.srresnet_hr
        model = SRModel(SRResNet(num_block=args.srresnet_blocks, scale=4))
        model.compile(keras.optimizers.Adam(1e-4), pixel_loss="mse")
    lr = tf.constant(rng.random((args.batch, hr_size // 4, hr_size // 4, 3), dtype=np.float32))
    hr = tf.constant(rng.random((args.batch, hr_size, hr_size, 3), dtype=np.float32))
    model.build(lr.shape)
    fn = tf.function(model.train_step, jit_compile=args.jit)

    def step():
        logs = fn((lr, hr))
        float(logs["g_loss"])  # wait for the result

    return step


# --------------------------------------------------------------------------- PyTorch


def torch_step(name: str, args):
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)

    class RDB(nn.Module):
        def __init__(self, nf=64, gc=32):
            super().__init__()
            self.convs = nn.ModuleList([nn.Conv2d(nf + i * gc, gc, 3, 1, 1) for i in range(4)])
            self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

        def forward(self, x):
            feats = [x]
            for conv in self.convs:
                feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
            return self.conv5(torch.cat(feats, 1)) * 0.2 + x

    class RRDB(nn.Module):
        def __init__(self):
            super().__init__()
            self.rdbs = nn.Sequential(RDB(), RDB(), RDB())

        def forward(self, x):
            return self.rdbs(x) * 0.2 + x

    class RRDBNet(nn.Module):
        def __init__(self, blocks):
            super().__init__()
            self.first = nn.Conv2d(3, 64, 3, 1, 1)
            self.body = nn.Sequential(*[RRDB() for _ in range(blocks)])
            self.conv_body = nn.Conv2d(64, 64, 3, 1, 1)
            self.up1, self.up2 = nn.Conv2d(64, 64, 3, 1, 1), nn.Conv2d(64, 64, 3, 1, 1)
            self.hr, self.last = nn.Conv2d(64, 64, 3, 1, 1), nn.Conv2d(64, 3, 3, 1, 1)

        def forward(self, x):
            feat = self.first(x)
            feat = feat + self.conv_body(self.body(feat))
            feat = F.leaky_relu(self.up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
            feat = F.leaky_relu(self.up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
            return self.last(F.leaky_relu(self.hr(feat), 0.2))

    class VGGDisc(nn.Module):
        def __init__(self, size, nf=64, stages=5, dense=100):
            super().__init__()
            layers, cin = [], 3
            for i in range(stages):
                ch = nf * min(2**i, 8)
                layers += [nn.Conv2d(cin, ch, 3, 1, 1, bias=(i == 0))]
                if i:
                    layers += [nn.BatchNorm2d(ch)]
                layers += [nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2)]
                cin = ch
            self.features = nn.Sequential(*layers)
            side = size // 2**stages
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, dense), nn.LeakyReLU(0.2), nn.Linear(dense, 1))

        def forward(self, x):
            return self.head(self.features(x))

    def vgg19_to_conv54():
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
        layers, cin = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, 1, 1), nn.ReLU()]
                cin = v
        net = nn.Sequential(*layers[:-1])  # conv5_4 before its ReLU
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    class ResBlock(nn.Module):
        def __init__(self, nf=64):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(nf, nf, 3, 1, 1), nn.BatchNorm2d(nf)
            self.act = nn.PReLU(nf)
            self.c2, self.b2 = nn.Conv2d(nf, nf, 3, 1, 1), nn.BatchNorm2d(nf)

        def forward(self, x):
            return x + self.b2(self.c2(self.act(self.b1(self.c1(x)))))

    class SRResNet(nn.Module):
        def __init__(self, blocks, nf=64):
            super().__init__()
            self.first, self.act = nn.Conv2d(3, nf, 9, 1, 4), nn.PReLU(nf)
            self.body = nn.Sequential(*[ResBlock(nf) for _ in range(blocks)])
            self.conv_body, self.bn = nn.Conv2d(nf, nf, 3, 1, 1), nn.BatchNorm2d(nf)
            self.up = nn.Sequential(nn.Conv2d(nf, nf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(nf),
                                    nn.Conv2d(nf, nf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(nf))
            self.last = nn.Conv2d(nf, 3, 9, 1, 4)

        def forward(self, x):
            head = self.act(self.first(x))
            return self.last(self.up(head + self.bn(self.conv_body(self.body(head)))))

    rng = np.random.default_rng(0)
    mean = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)

    def vgg_in(x):
        return x.flip(1) * 255.0 - mean  # RGB [0, 1] -> BGR 0-255 minus mean (as ours)

    if name == "esrgan":
        size = args.hr
        g, d, vgg = RRDBNet(args.rrdb_blocks), VGGDisc(size), vgg19_to_conv54()
        g_opt, d_opt = torch.optim.Adam(g.parameters(), 1e-4), torch.optim.Adam(d.parameters(), 1e-4)
        bce = nn.BCEWithLogitsLoss()
    else:
        size = args.srresnet_hr
        g = SRResNet(args.srresnet_blocks)
        g_opt = torch.optim.Adam(g.parameters(), 1e-4)
    lr = torch.from_numpy(rng.random((args.batch, 3, size // 4, size // 4), dtype=np.float32))
    hr = torch.from_numpy(rng.random((args.batch, 3, size, size), dtype=np.float32))

    def esrgan_step():
        for p in d.parameters():
            p.requires_grad_(False)
        g_opt.zero_grad()
        sr = g(lr)
        real = d(hr).detach()
        fake = d(sr)
        l_gan = (bce(real - fake.mean(), torch.zeros_like(real)) + bce(fake - real.mean(), torch.ones_like(fake))) / 2
        l_g = 1e-2 * F.l1_loss(sr, hr) + F.l1_loss(vgg(vgg_in(sr)), vgg(vgg_in(hr)).detach()) + 5e-3 * l_gan
        l_g.backward()
        g_opt.step()
        for p in d.parameters():
            p.requires_grad_(True)
        d_opt.zero_grad()
        real = d(hr)
        fake = d(sr.detach())
        l_d = (bce(real - fake.mean(), torch.ones_like(real)) + bce(fake - real.mean(), torch.zeros_like(fake))) / 2
        l_d.backward()
        d_opt.step()

    def srresnet_step():
        g_opt.zero_grad()
        F.mse_loss(g(lr), hr).backward()
        g_opt.step()

    return esrgan_step if name == "esrgan" else srresnet_step


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        if not args.no_torch:
            import torch

            torch.set_num_threads(args.threads)
    from machine import describe

    print(describe())
    print(f"settings: batch={args.batch} esrgan_hr={args.hr} rrdb_blocks={args.rrdb_blocks} "
          f"srresnet_hr={args.srresnet_hr} srresnet_blocks={args.srresnet_blocks} steps={args.steps} "
          f"warmup={args.warmup} mixed_precision={args.mixed_precision} jit={args.jit}")
    for name in args.models.split(","):
        steps = {"ours": ours_step(name, args)}
        if not args.no_torch:
            steps["torch"] = torch_step(name, args)
        median = timed(steps, args.steps, args.warmup)
        ours = median["ours"]
        line = f"{name:9s} sr-tf {ours:8.3f} s/step ({1 / ours:6.2f} steps/s)"
        if "torch" in median:
            theirs = median["torch"]
            line += f" | torch {theirs:8.3f} s/step | torch/ours {theirs / ours:5.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
