"""Writes small ncnn .param/.bin models of our architectures from PyTorch-layout weights (for tests)."""

from __future__ import annotations

import struct
from collections import defaultdict

import numpy as np

TAG_FP16 = 0x01306B47


class Graph:
    def __init__(self):
        self.layers: list[list] = []  # [type, name, bottoms, tops, params]
        self.weights: list[bytes] = []
        self.fp16 = False

    def add(self, kind, name, bottoms, tops, params=""):
        self.layers.append([kind, name, list(bottoms), list(tops), params])
        return tops[0]

    def conv(self, name, x, w, b, act=None):
        params = f"0={w.shape[0]} 1={w.shape[2]} 4={w.shape[2] // 2} 5=1 6={w.size}"
        if act == "lrelu":
            params += " 9=2 -23310=1,2.000000e-01"
        if self.fp16:
            self.weights.append(struct.pack("<I", TAG_FP16) + w.astype("<f2").tobytes())
            if w.size % 2:
                self.weights.append(b"\0\0")
        else:
            self.weights.append(b"\0\0\0\0" + w.astype("<f4").tobytes())
        self.weights.append(b.astype("<f4").tobytes())
        return self.add("Convolution", name, [x], [name + "_out"], params)

    def text(self) -> str:
        # ncnn wants one consumer per blob: insert Split layers where a blob feeds several layers.
        uses = defaultdict(int)
        for layer in self.layers:
            for b in layer[2]:
                uses[b] += 1
        layers, seen = [], defaultdict(int)
        for layer in self.layers:
            kind, name, bottoms, tops, params = layer
            new_bottoms = []
            for b in bottoms:
                if uses[b] > 1:
                    new_bottoms.append(f"{b}_sp{seen[b]}")
                    seen[b] += 1
                else:
                    new_bottoms.append(b)
            layers.append([kind, name, new_bottoms, tops, params])
            for t in tops:
                if uses[t] > 1:
                    layers.append(["Split", f"split_{t}", [t], [f"{t}_sp{i}" for i in range(uses[t])], ""])
        blobs = {b for layer in layers for b in layer[2] + layer[3]}
        lines = ["7767517", f"{len(layers)} {len(blobs)}"]
        for kind, name, bottoms, tops, params in layers:
            lines.append(" ".join([kind, name, str(len(bottoms)), str(len(tops)), *bottoms, *tops, params]).strip())
        return "\n".join(lines) + "\n"

    def save(self, prefix) -> tuple[str, str]:
        with open(f"{prefix}.param", "w") as f:
            f.write(self.text())
        with open(f"{prefix}.bin", "wb") as f:
            f.write(b"".join(self.weights))
        return f"{prefix}.param", f"{prefix}.bin"


def _w(rng, out, inp, k=3, scale=0.1):
    return (rng.standard_normal((out, inp, k, k)) * scale).astype(np.float32), (rng.standard_normal(out) * 0.01).astype(np.float32)


def srvgg_graph(rng, num_feat=8, num_conv=2, upscale=4, final_resize=None, fp16=False) -> Graph:
    g = Graph()
    g.fp16 = fp16
    x = g.add("Input", "input", [], ["data"], "0=0")
    feat, inp = "data", 3
    for i in range(num_conv + 1):
        feat = g.conv(f"conv{i}", feat, *_w(rng, num_feat, inp))
        g.weights.append((0.25 + 0.1 * rng.standard_normal(num_feat)).astype("<f4").tobytes())
        feat = g.add("PReLU", f"prelu{i}", [feat], [f"prelu{i}_out"], f"0={num_feat}")
        inp = num_feat
    feat = g.conv("conv_last", feat, *_w(rng, 3 * upscale * upscale, num_feat))
    feat = g.add("PixelShuffle", "shuffle", [feat], ["shuffled"], f"0={upscale}")
    base = g.add("Interp", "base", [x], ["base_out"], f"0=1 1={upscale:.6e} 2={upscale:.6e}")
    last = "output" if final_resize is None else "sum"
    g.add("BinaryOp", "add", [feat, base], [last], "0=0")
    if final_resize is not None:
        g.add("Interp", "resize", ["sum"], ["output"], f"0=3 1={final_resize:.6e} 2={final_resize:.6e}")
    return g


def rrdbnet_graph(rng, num_feat=8, num_grow=4, num_block=1) -> Graph:
    g = Graph()
    g.add("Input", "input", [], ["data"], "0=0")
    first = g.conv("conv_first", "data", *_w(rng, num_feat, 3))
    feat = first
    for b in range(num_block):
        block_in = feat
        for r in range(3):
            rdb_in, parts, ch = feat, [feat], num_feat
            for c in range(1, 5):
                cat = parts[0] if len(parts) == 1 else g.add("Concat", f"cat{b}_{r}_{c}", parts, [f"cat{b}_{r}_{c}_out"], "0=0")
                parts.append(g.conv(f"conv{b}_{r}_{c}", cat, *_w(rng, num_grow, ch), act="lrelu"))
                ch += num_grow
            cat = g.add("Concat", f"cat{b}_{r}_5", parts, [f"cat{b}_{r}_5_out"], "0=0")
            x5 = g.conv(f"conv{b}_{r}_5", cat, *_w(rng, num_feat, ch))
            feat = g.add("Eltwise", f"rdb_add{b}_{r}", [x5, rdb_in], [f"rdb{b}_{r}_out"], "0=1 -23301=2,2.000000e-01,1.000000e+00")
        feat = g.add("Eltwise", f"rrdb_add{b}", [feat, block_in], [f"rrdb{b}_out"], "0=1 -23301=2,2.000000e-01,1.000000e+00")
    body = g.conv("conv_body", feat, *_w(rng, num_feat, num_feat))
    feat = g.add("BinaryOp", "trunk_add", [first, body], ["trunk"], "0=0")
    for i in (1, 2):
        feat = g.add("Interp", f"up{i}", [feat], [f"up{i}_out"], "0=1 1=2.000000e+00 2=2.000000e+00")
        feat = g.conv(f"conv_up{i}", feat, *_w(rng, num_feat, num_feat), act="lrelu")
    feat = g.conv("conv_hr", feat, *_w(rng, num_feat, num_feat), act="lrelu")
    w, b = _w(rng, 3, num_feat)
    g.weights += [b"\0\0\0\0" + w.astype("<f4").tobytes(), b.astype("<f4").tobytes()]
    g.add("Convolution", "conv_last", [feat], ["output"], f"0=3 1=3 4=1 5=1 6={w.size}")
    return g


def run_ncnn(param: str, weights: str, image_hwc: np.ndarray) -> np.ndarray:
    """The ncnn CPU reference: `[H, W, 3]` float32 in, `[sH, sW, 3]` float32 out."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = 1
    net.load_param(param)
    net.load_model(weights)
    chw = np.ascontiguousarray(image_hwc.transpose(2, 0, 1), dtype=np.float32)
    mat = ncnn.Mat(chw)  # keep `chw` alive until extraction is done: ncnn.Mat does not copy
    ex = net.create_extractor()
    ex.input("data", mat)
    ret, out = ex.extract("output")
    assert ret == 0, f"ncnn extraction failed with {ret}"
    return np.array(out).transpose(1, 2, 0).copy()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
