"""Training-step time of sr-tf before and after the move to `fit`, and against the same step in
PyTorch, side by side in one run.

* `srresnet_small`: the recipe of the 10-minute CPU run (SRResNet, 32 channels, 8 blocks, no batch
  norm, residual over the bicubic input, L1, batch 16, HR 96).
  - before: the previous code: one `tf.function(train_step)` call and a host sync per step, as the
    old hand-written loop ran it, and the network's last layers run as written (pixel shuffle,
    PReLU, then the 9x9 conv to 3 channels at the output resolution);
  - after: one long Keras `fit`, as `sr-tf train` runs it (with its per-step `StopAtStep`), each
    turn one epoch of `--chunk` steps (`fit_turns`), with today's network (that last conv
    computed before the shuffle, `sr_tf.models.layers.conv_after_shuffle`), in float32 and, where
    the CPU has bfloat16 instructions (AVX512-BF16, AMX), under `mixed_bfloat16`.
* `srresnet`: the paper's SRResNet (16 blocks, batch norm, MSE, batch 16, HR 96), the same three ways.
* `esrgan`: ESRGAN stage 2, RRDBNet generator + VGG-style discriminator; G step = L1 (1e-2) + VGG19
  conv5_4 perceptual (1) + relativistic GAN (5e-3), then a D step, both Adam (its networks are
  unchanged: before and after differ only in the loop).

The PyTorch side builds the same layer shapes (written here, random weights; the VGG19 has random
weights on both sides) and runs the same losses, in float32 and under `torch.autocast(bfloat16)`
beside our bfloat16 line. Batches are constant tensors: this times compute and dispatch, not the
data pipeline (`benchmarks/data_pipeline.py`). Every variant runs `--chunk` steps per turn and the
variants take turns, so machine noise falls on all alike; wall and process CPU seconds per step are
medians over the turns.

Where `fit`'s 8-13% went (issue #24): into this script, not into training. It called `fit` once per
4-step turn, and the end of each `fit` destroys its tf.data iterator, which waits for tf.data's
autotuning thread to wake (it wakes 10, 30, 70, ... 10 * (2^k - 1) ms after the iterator is made), so
a turn of T seconds often took the next such time: 1.27 s for SRResNet-small's 0.64 s of steps, 5.11 s
for ESRGAN's (4 blocks, batch 4, HR 64) 2.7-3.0 s. With autotuning off the same calls ran as fast as
the train function alone. Measured in one script with turns (AMX Xeon, 2 CPUs, load 2.4-5.4 from
other jobs, median ms/step, SRResNet-small f32, 12 turns of 4 steps): bare `tf.function(train_step)`
with the old step read-back 170, Keras `make_train_function()` called directly 171, `fit` per turn
317 (half its turns at 2x), one long `fit` 173, the same with all of `sr-tf train`'s callbacks 174,
with `steps_per_execution=4` 171. ESRGAN (6 turns of 2 steps, load 5.4): bare 1384, train function
1324, `fit` per turn 1484 (turns up to 2569), one long `fit` 1334, with our callbacks 1363. So a long
`fit` costs within the noise (<= 2%) of a bare step; what is left per `fit` call (one per run, plus
one iterator per validation) is Keras and tf.data's.

    python3 benchmarks/train_step.py --models srresnet_small             # the 10-minute recipe
    python3 benchmarks/train_step.py                                      # all, paper sizes (slow)
    python3 benchmarks/train_step.py --models esrgan --rrdb-blocks 4 --batch 4 --hr 64

torch is a benchmark-only dependency: `pip install ".[bench]"` (a CPU build: on machines with a local
wheel `pip install torch==2.13.0`; an unpinned `torch` may pull a multi-GB CUDA build).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="srresnet_small,srresnet,esrgan", help="comma list: srresnet_small, srresnet, esrgan")
    p.add_argument("--batch", type=int, default=16, help="batch of srresnet and esrgan")
    p.add_argument("--hr", type=int, default=128, help="HR patch size for ESRGAN (SRResNet uses --srresnet-hr)")
    p.add_argument("--srresnet-hr", type=int, default=96)
    p.add_argument("--rrdb-blocks", type=int, default=23)
    p.add_argument("--srresnet-blocks", type=int, default=16)
    p.add_argument("--turns", type=int, default=5, help="timed turns per variant")
    p.add_argument("--chunk", type=int, default=4, help="steps per turn")
    p.add_argument("--warmup", type=int, default=1, help="untimed turns first")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 lines even where the CPU has them")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads for both (0: library default)")
    return p.parse_args(argv)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(variants: dict, turns: int, warmup: int, chunk: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per step of each variant; each call runs `chunk` steps, and after
    warm-up the variants take turns."""
    for run in variants.values():
        for _ in range(warmup):
            run()
    samples = {name: [] for name in variants}
    for _ in range(turns):
        for name, run in variants.items():
            wall, cpu = time.perf_counter(), _cpu()
            run()
            samples[name].append(((time.perf_counter() - wall) / chunk, (_cpu() - cpu) / chunk))
    for run in variants.values():
        getattr(run, "close", lambda: None)()
    return {name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s)) for name, s in samples.items()}


# --------------------------------------------------------------------------- ours


def _batch(args, name, rng):
    import tensorflow as tf

    batch, hr_size = (16, 96) if name == "srresnet_small" else (args.batch, args.hr if name == "esrgan" else args.srresnet_hr)
    lr = tf.constant(rng.random((batch, hr_size // 4, hr_size // 4, 3), dtype=np.float32))
    hr = tf.constant(rng.random((batch, hr_size, hr_size, 3), dtype=np.float32))
    return lr, hr


def _model(name: str, args, plain_last_conv: bool = False):
    import keras

    from sr_tf.losses import VGGFeatureExtractor
    from sr_tf.models import RRDBNet, SRResNet, VGGStyleDiscriminator
    from sr_tf.training import load_config
    from sr_tf.training.builders import build_model
    from sr_tf.training.models import SRGAN, SRModel

    if name == "esrgan":
        model = SRGAN(
            RRDBNet(num_block=args.rrdb_blocks, scale=4),
            VGGStyleDiscriminator(input_size=args.hr),
            feature_extractor=VGGFeatureExtractor(("conv5_4",), weights=None),
        )
        model.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4), gan_type="relativistic",
                      gan_weight=5e-3, pixel_weight=1e-2, perceptual_weight=1.0)
        return model
    class PreviousSRResNet(SRResNet):
        """The network as the previous code ran it: shuffle, PReLU, then the 9x9 conv at full size."""

        def _shuffle_prelu_conv_last(self, x, factor, act):
            return self.conv_last(act(self.upsample[-2](x)))

    srresnet = PreviousSRResNet if plain_last_conv else SRResNet
    if name == "srresnet":
        model = SRModel(srresnet(num_block=args.srresnet_blocks, scale=4))
        model.compile(keras.optimizers.Adam(1e-4), pixel_loss="mse")
        return model
    config = load_config("srresnet_small")
    return build_model(config, generator=srresnet(**config.generator.kwargs))


def ours_step(name: str, args, variant: str):
    """`variant`: "before" (previous network + a `tf.function(train_step)` per step), "after" (the
    `fit` train function), "after-bf16" or "after-fp16" (the same under `mixed_bfloat16` or
    `mixed_float16`, the GPU policy). Returns a function that runs `args.chunk` steps."""
    import keras
    import tensorflow as tf

    from sr_tf.training.callbacks import StopAtStep

    policies = {"after-bf16": "mixed_bfloat16", "after-fp16": "mixed_float16"}
    keras.mixed_precision.set_dtype_policy(policies.get(variant, "float32"))
    keras.utils.set_random_seed(0)
    lr, hr = _batch(args, name, np.random.default_rng(0))
    model = _model(name, args, plain_last_conv=variant == "before")
    model.build(lr.shape)
    keras.mixed_precision.set_dtype_policy("float32")
    if variant == "before":
        fn = tf.function(model.train_step, reduce_retracing=True)

        def run():
            for _ in range(args.chunk):
                fn((lr, hr))
                int(model.step.numpy())  # the old loop read the step back every step

        return run
    data = tf.data.Dataset.from_tensors((lr, hr)).repeat()
    return fit_turns(model, data, args.chunk, args.warmup + args.turns, callbacks=[StopAtStep(10**9)])


def fit_turns(model, data, chunk: int, turns: int, callbacks=()):
    """A function that runs the next `chunk`-step epoch of one long `model.fit` (`turns` epochs),
    as `sr-tf train` runs: one `fit` call, so its start and end fall outside every turn.

    `fit` runs in a thread, held at each epoch start until the function is called; the function
    returns at that epoch's end (its callbacks included). A `fit` call per turn would time, each
    turn, tf.data's iterator teardown: with this constant dataset, the end of a `fit` waited up to
    2.3 s for tf.data's autotuning thread (ESRGAN 4 blocks, batch 4, HR 64: 3 steps in 2.7 s or in
    5.1 s), that is Keras and tf.data's cost per `fit` call, not per step."""
    import threading

    import keras

    go, done, failure, stop = threading.Semaphore(0), threading.Semaphore(0), [], [False]

    class Gate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            go.acquire()
            self.model.stop_training = stop[0]

        def on_epoch_end(self, epoch, logs=None):
            done.release()

    def body():
        try:
            model.fit(data, steps_per_epoch=chunk, epochs=turns + 1, verbose=0, shuffle=False,
                      callbacks=[*callbacks, Gate()])
        except BaseException as err:  # re-raised in the caller's thread
            failure.append(err)
            done.release()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()

    def run():
        go.release()
        done.acquire()
        if failure:
            raise failure[0]

    def close():  # after the last turn: the extra epoch stops after one step, and `fit` ends
        stop[0] = True
        go.release()
        thread.join()

    run.close = close
    return run


# --------------------------------------------------------------------------- PyTorch


def torch_step(name: str, args, bf16: bool = False):
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

    class SmallBlock(nn.Module):  # MSRResNet's block: no batch norm
        def __init__(self, nf):
            super().__init__()
            self.c1, self.act, self.c2 = nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf), nn.Conv2d(nf, nf, 3, 1, 1)

        def forward(self, x):
            return x + self.c2(self.act(self.c1(x)))

    class SRResNet(nn.Module):
        def __init__(self, blocks, nf=64, small=False):
            super().__init__()
            self.small = small
            self.first, self.act = nn.Conv2d(3, nf, 9, 1, 4), nn.PReLU(nf)
            self.body = nn.Sequential(*[(SmallBlock(nf) if small else ResBlock(nf)) for _ in range(blocks)])
            self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
            self.bn = nn.Identity() if small else nn.BatchNorm2d(nf)
            self.up = nn.Sequential(nn.Conv2d(nf, nf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(nf),
                                    nn.Conv2d(nf, nf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(nf))
            self.last = nn.Conv2d(nf, 3, 9, 1, 4)

        def forward(self, x):
            head = self.act(self.first(x))
            out = self.last(self.up(head + self.bn(self.conv_body(self.body(head)))))
            if self.small:  # residual over the bicubic-upsampled input
                out = out + F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
            return out

    rng = np.random.default_rng(0)
    mean = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)

    def vgg_in(x):
        return x.flip(1) * 255.0 - mean  # RGB [0, 1] -> BGR 0-255 minus mean (as ours)

    if name == "esrgan":
        size = args.hr
        g, d, vgg = RRDBNet(args.rrdb_blocks), VGGDisc(size), vgg19_to_conv54()
        g_opt, d_opt = torch.optim.Adam(g.parameters(), 1e-4), torch.optim.Adam(d.parameters(), 1e-4)
        bce = nn.BCEWithLogitsLoss()
    elif name == "srresnet_small":
        size = 96
        g = SRResNet(8, nf=32, small=True)
        g_opt = torch.optim.Adam(g.parameters(), 5e-4)
    else:
        size = args.srresnet_hr
        g = SRResNet(args.srresnet_blocks)
        g_opt = torch.optim.Adam(g.parameters(), 1e-4)
    batch = 16 if name == "srresnet_small" else args.batch
    lr = torch.from_numpy(rng.random((batch, 3, size // 4, size // 4), dtype=np.float32))
    hr = torch.from_numpy(rng.random((batch, 3, size, size), dtype=np.float32))

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
        loss = F.l1_loss if name == "srresnet_small" else F.mse_loss
        loss(g(lr), hr).backward()
        g_opt.step()

    step = esrgan_step if name == "esrgan" else srresnet_step

    def run():  # `chunk` steps per turn, like ours
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for _ in range(args.chunk):
                step()

    return run


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        if not args.no_torch:
            import torch

            torch.set_num_threads(args.threads)
    from machine import describe

    from sr_tf.backends import cpu_has_bf16

    bf16 = cpu_has_bf16() and not args.no_bf16
    print(describe())
    if not bf16:
        print("bfloat16 lines skipped: " + ("--no-bf16" if args.no_bf16 else "this CPU has no AVX512-BF16 or AMX"))
    if not args.no_torch:
        import tensorflow as tf
        import torch

        print(f"threads: TensorFlow intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
              f"torch {torch.get_num_threads()}; torch {torch.__version__}")
    print(f"settings: batch={args.batch} esrgan_hr={args.hr} rrdb_blocks={args.rrdb_blocks} srresnet_hr={args.srresnet_hr} "
          f"srresnet_blocks={args.srresnet_blocks} turns={args.turns} chunk={args.chunk} warmup={args.warmup}")
    for name in args.models.split(","):
        variants = {"before": ours_step(name, args, "before")}
        variants["after"] = ours_step(name, args, "after")
        if bf16:
            variants["after-bf16"] = ours_step(name, args, "after-bf16")
        if not args.no_torch:
            variants["torch"] = torch_step(name, args)
            if bf16:
                variants["torch-bf16"] = torch_step(name, args, bf16=True)
        result = timed(variants, args.turns, args.warmup, args.chunk)
        for variant, (wall, cpu) in result.items():
            line = f"{name:15s} {variant:11s} {wall:7.3f} s/step wall ({60 / wall:6.1f} steps/min), {cpu:7.3f} CPU s/step"
            if variant.startswith("after") and "before" in result:
                line += f" | before/{variant} {result['before'][0] / wall:4.2f}x wall, {result['before'][1] / cpu:4.2f}x CPU"
            peer = {"after": "torch", "after-bf16": "torch-bf16"}.get(variant)
            if peer in result:
                line += f" | {peer}/{variant} {result[peer][0] / wall:4.2f}x wall, {result[peer][1] / cpu:4.2f}x CPU"
            print(line, flush=True)


if __name__ == "__main__":
    main()
