"""Reading ncnn `.param` / `.bin` model files (no ncnn needed).

`.param` is text: a magic line `7767517`, a line `<layer count> <blob count>`,
then one line per layer: type, name, input count, output count, input blob
names, output blob names, and `key=value` parameters. A key below -23300
holds an array: `-233xx=n,v1,...,vn` is array parameter `xx`.

`.bin` holds the weights of the weight-bearing layers in `.param` order.
Each weight blob read "with a tag" starts with a 4-byte flag telling its
storage (fp16, int8, raw fp32, or a 256-entry quantisation table); biases and
PReLU slopes are raw fp32 without a tag.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

MAGIC = "7767517"
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_SCALED = 0x0002C056
ARRAY_KEY_BASE = -23300


class NcnnFormatError(ValueError):
    """A `.param` / `.bin` file that does not follow the ncnn format (or uses parts we do not read)."""


@dataclasses.dataclass
class NcnnLayer:
    """One layer of an ncnn graph, with its weights once `read_weights` has run."""

    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, int | float | list[float]]
    weights: list[np.ndarray] = dataclasses.field(default_factory=list)

    def param(self, key: int, default=None):
        return self.params.get(key, default)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_param(text: str, source: str = "<param>") -> list[NcnnLayer]:
    """Parses the text of a `.param` file into layers, in file order."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != MAGIC:
        raise NcnnFormatError(f"{source}: not an ncnn .param file (first line must be {MAGIC}).")
    try:
        layer_count = int(lines[1].split()[0])
    except (IndexError, ValueError) as e:
        raise NcnnFormatError(f"{source}: second line must hold the layer and blob counts.") from e
    layers = []
    for lineno, line in enumerate(lines[2:], start=3):
        fields = line.split()
        try:
            kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
            bottoms = fields[4 : 4 + n_in]
            tops = fields[4 + n_in : 4 + n_in + n_out]
            params: dict[int, int | float | list[float]] = {}
            for item in fields[4 + n_in + n_out :]:
                key_text, value_text = item.split("=", 1)
                key = int(key_text)
                if key <= ARRAY_KEY_BASE:
                    values = [_number(v) for v in value_text.split(",")]
                    params[ARRAY_KEY_BASE - key] = [float(v) for v in values[1 : 1 + int(values[0])]]
                else:
                    params[key] = _number(value_text)
        except (IndexError, ValueError) as e:
            raise NcnnFormatError(f"{source}:{lineno}: cannot parse layer line {line!r}") from e
        if len(bottoms) != n_in or len(tops) != n_out:
            raise NcnnFormatError(f"{source}:{lineno}: blob counts do not match the names listed.")
        layers.append(NcnnLayer(kind, name, bottoms, tops, params))
    if len(layers) != layer_count:
        raise NcnnFormatError(f"{source}: header says {layer_count} layers, file has {len(layers)}.")
    return layers


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NcnnFormatError(
                f"{self.source}: truncated: needed {n} bytes at offset {self.pos}, file has {len(self.data)}."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        flag = self.take(4)
        tag = struct.unpack("<I", flag)[0]
        if tag == TAG_FP16:
            data = np.frombuffer(self.take(2 * count), dtype="<f2").astype(np.float32)
            self.take((4 - (2 * count) % 4) % 4)  # fp16 blobs are padded to 4 bytes
            return data
        if tag == TAG_FP32_SCALED:
            return self.raw_fp32(count)
        if tag == TAG_INT8:
            raise NcnnFormatError(f"{self.source}: int8-quantised weights are not supported.")
        if any(flag):  # a 256-entry float table followed by one uint8 index per weight
            table = self.raw_fp32(256)
            index = np.frombuffer(self.take(count), dtype=np.uint8)
            self.take((4 - count % 4) % 4)
            return table[index]
        return self.raw_fp32(count)


WEIGHTLESS = frozenset({
    "Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU", "Swish",
    "Sigmoid", "TanH", "Clip", "Crop", "Noop", "Reshape", "Permute", "Padding", "Flatten", "Pooling",
})


def _kernel(reader: _Reader, layer: NcnnLayer, source: str) -> np.ndarray:
    """A Convolution's or Deconvolution's tagged weights as `[out, in, kh, kw]` (both store them so)."""
    out = int(layer.param(0, 0))
    kw = int(layer.param(1, 0))
    kh = int(layer.param(11, kw))
    count = int(layer.param(6, 0))
    if int(layer.param(8, 0)):
        raise NcnnFormatError(f"{source}: layer {layer.name} is int8-quantised; not supported.")
    if int(layer.param(7, 1)) != 1:
        raise NcnnFormatError(f"{source}: layer {layer.name} is a grouped convolution; not supported.")
    if out * kh * kw == 0 or count % (out * kh * kw):
        raise NcnnFormatError(f"{source}: layer {layer.name}: weight count {count} does not fit out={out}, k={kh}x{kw}.")
    return reader.tagged(count).reshape(out, count // (out * kh * kw), kh, kw)


def _memory_data_count(layer: NcnnLayer) -> int:
    dims = [int(layer.param(key, 0)) for key in (0, 1, 11, 2)]  # w, h, d, c
    return int(np.prod([d for d in dims if d])) if any(dims) else 1


def read_weights(layers: list[NcnnLayer], data: bytes, source: str = "<bin>") -> None:
    """Fills `layer.weights` for every weight-bearing layer, reading `data` in layer order.

    Convolution / Deconvolution: `[kernel [out, in, kh, kw], bias [out]]` (bias only if `5=1`).
    InnerProduct: `[weights [out, in], bias [out]]` (bias only if `1=1`).
    PReLU: `[slopes [n]]`. MemoryData: `[values]` (flat, `w*h*d*c` floats).
    Scale: `[scale [n], bias [n]]`, nothing when the scale comes from a second input (`0=-233`).
    Other layer types must carry no weights.
    """
    reader = _Reader(data, source)
    for layer in layers:
        if layer.type in ("Convolution", "Deconvolution"):
            layer.weights = [_kernel(reader, layer, source)]
            if int(layer.param(5, 0)):
                layer.weights.append(reader.raw_fp32(int(layer.param(0, 0))))
        elif layer.type == "InnerProduct":
            out, count = int(layer.param(0, 0)), int(layer.param(2, 0))
            if int(layer.param(8, 0)):
                raise NcnnFormatError(f"{source}: layer {layer.name} is int8-quantised; not supported.")
            if out == 0 or count % out:
                raise NcnnFormatError(f"{source}: layer {layer.name}: weight count {count} does not fit {out} outputs.")
            layer.weights = [reader.tagged(count).reshape(out, count // out)]
            if int(layer.param(1, 0)):
                layer.weights.append(reader.raw_fp32(out))
        elif layer.type == "PReLU":
            layer.weights = [reader.raw_fp32(int(layer.param(0, 0)))]
        elif layer.type == "MemoryData":
            layer.weights = [reader.raw_fp32(_memory_data_count(layer))]
        elif layer.type == "Scale":
            size = int(layer.param(0, 0))
            if size != -233:
                layer.weights = [reader.raw_fp32(size)]
                if int(layer.param(1, 0)):
                    layer.weights.append(reader.raw_fp32(size))
        elif layer.type not in WEIGHTLESS:
            raise NcnnFormatError(f"{source}: layer type {layer.type} ({layer.name}) is not supported by the importer.")
    if reader.pos != len(data):
        raise NcnnFormatError(f"{source}: {len(data) - reader.pos} bytes left over after the last layer's weights.")


def load_ncnn(param_path: str, bin_path: str) -> list[NcnnLayer]:
    """Parses a `.param`/`.bin` pair into layers with weights."""
    with open(param_path, encoding="utf-8") as f:
        layers = parse_param(f.read(), source=str(param_path))
    with open(bin_path, "rb") as f:
        read_weights(layers, f.read(), source=str(bin_path))
    return layers
