"""NIQE against BasicSR's own niqe.py, run on the same images (see basicsr_oracle)."""

import importlib
import warnings

import numpy as np
import pytest

from sr_tf.perceptual import niqe, pristine_params
from tests.perceptual.basicsr_oracle import archive_path, basicsr, in_reproducible_mode

niqe_module = importlib.import_module("sr_tf.perceptual.niqe")  # the package's `niqe` is the function


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """`[H, W, 3] uint8` with edges, gradients and fine noise, so every NIQE block has signed coefficients."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(x / 7.0 + 3 * np.sin(y / 23.0)) + 40 * ((x // 31 + y // 17) % 2)
    image = base[..., None] + rng.normal(0, 12, (height, width, 3)) + np.array([10.0, -5.0, -20.0])
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def basicsr_niqe(image: np.ndarray, crop_border: int = 0) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its scipy.ndimage.filters import is deprecated
        return basicsr().niqe.calculate_niqe(image[..., ::-1], crop_border)  # it takes BGR


@pytest.fixture(scope="module")
def params():
    archive_path()
    return pristine_params()


def test_niqe_is_basicsrs_given_its_half_size_image(params):
    image = textured(200, 300, seed=1)  # 2 x 3 blocks of 96, odd leftovers cropped
    oracle = basicsr()
    expected = basicsr_niqe(image)

    def basicsr_half(x):
        return oracle.matlab.imresize(x, scale=0.5, antialiasing=True)

    ours = niqe_module.niqe_of_gray(niqe_module.y_channel(image), params, half_size=basicsr_half)
    assert 2 < expected < 30
    assert ours == pytest.approx(expected, abs=1e-9)


def test_y_channel_and_half_size_are_basicsrs(params):
    image = textured(101, 77, seed=2)
    oracle = basicsr()
    y = oracle.niqe.to_y_channel(image[..., ::-1].astype(np.float32)).squeeze().round()
    np.testing.assert_array_equal(niqe_module.y_channel(image), y)
    x = (y / 255.0).astype(np.float32)
    ours, theirs = niqe_module._half_size(x), in_reproducible_mode("half", x)
    assert ours.shape == theirs.shape == (51, 39) and ours.dtype == np.float32
    # Bit for bit, both passes, in MKL's reproducible summation order (its AVX paths: 1 ulp off on ~half).
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("crop_border", [0, 4])
def test_niqe_end_to_end_is_basicsrs(params, crop_border):
    images = np.stack([textured(296, 392, seed=3), textured(296, 392, seed=4)])
    expected = in_reproducible_mode("niqe", images, crop_border)
    ours = [niqe(image, crop_border=crop_border, params=params) for image in images]
    assert 2 < min(expected) and max(expected) < 30
    # Measured 1e-14 to 8e-14 (the same float32 steps; only float64 rounding in cov/pinv differs).
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)


def test_grey_images_are_scored_on_their_values(params):
    grey = textured(200, 200, seed=5)[..., 0]
    assert niqe(grey, params=params) == niqe(grey[..., None], params=params)
    assert niqe(grey, params=params) == niqe_module.niqe_of_gray(grey.astype(np.float32), params)


def test_small_images_and_bad_arguments_are_refused(params):
    with pytest.raises(ValueError, match="at least two 96x96 blocks"):
        niqe(textured(100, 150), params=params)
    with pytest.raises(ValueError, match="crop_border=-1"):
        niqe(textured(200, 200), crop_border=-1, params=params)
    with pytest.raises(ValueError, match=r"shape=\(200, 200, 4\)"):
        niqe(np.zeros((200, 200, 4), np.uint8), params=params)


def test_a_missing_archive_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pip download --no-deps basicsr==1.4.2"):
        pristine_params()
    (tmp_path / "basicsr-1.4.2.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(FileNotFoundError, match="download it again"):
        pristine_params()


def test_niqe_of_photos_is_basicsrs(params):
    from PIL import Image

    from tests.pretrained.photos import PHOTOS

    names = ("Aqua", "Garden", "Storm", "Wood")  # the crops furthest apart before the column pass was MKL's
    if not all((PHOTOS / f"{name}.jpg").is_file() for name in names):
        pytest.skip(f"no photos in {PHOTOS}")
    crops = []
    for name in names:
        with Image.open(PHOTOS / f"{name}.jpg") as im:
            crops.append(np.asarray(im.convert("RGB"))[:480, :480])
    expected = in_reproducible_mode("niqe", np.stack(crops))
    ours = [niqe(crop, params=params) for crop in crops]
    # The issue asks for 1e-3; measured <= 2e-13 on all twelve shared photos, crops and whole (before: up
    # to 8e-4), while BasicSR itself moves by up to 1.8e-3 between MKL's paths (COMPATIBLE, AVX2, AVX-512).
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
