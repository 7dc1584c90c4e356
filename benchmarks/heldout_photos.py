"""Real photos that no sr-tf model has trained on, taken from packages on PyPI and Debian.

    python3 benchmarks/heldout_photos.py --out heldout

The shared development photos (`../shared/data/photos`, Debian's `mate-backgrounds`) are mostly
smooth out-of-focus backgrounds, which flatter every model. These twelve photos were chosen
once, before any tuning, for variety (faces, fur, fabric, buildings, fruit, machines, text on a
board) and are used only to report held-out figures:

* scikit-image's wheel (`skimage/data`, BSD-3-Clause; see the wheel's `skimage/data/README.txt`):
  astronaut, chelsea, coffee, rocket, motorcycle_left;
* Debian's `opencv-doc` (`/usr/share/doc/opencv-doc/examples/data`, see its copyright file):
  baboon, fruits, building, leuvenA, aloeL, board, messi5.

The script downloads the two packages (`pip download`, `apt-get download`: nothing is installed)
and copies the photos into `--out` as they are.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SKIMAGE = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
OPENCV = ("baboon.jpg", "fruits.jpg", "building.jpg", "leuvenA.jpg", "aloeL.jpg", "board.jpg", "messi5.jpg")
SKIMAGE_VERSION = "0.26.0"


def from_wheel(work: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    f"scikit-image=={SKIMAGE_VERSION}", "-d", str(work)], check=True)
    with zipfile.ZipFile(glob.glob(str(work / "scikit_image-*.whl"))[0]) as wheel:
        for name in SKIMAGE:
            (out / name).write_bytes(wheel.read(f"skimage/data/{name}"))


def from_deb(work: Path, out: Path) -> None:
    subprocess.run(["apt-get", "download", "-q", "opencv-doc"], check=True, cwd=work, capture_output=True)
    deb = glob.glob(str(work / "opencv-doc_*.deb"))[0]
    root = work / "opencv-doc"
    subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True)
    for name in OPENCV:
        shutil.copy(root / "usr/share/doc/opencv-doc/examples/data" / name, out / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="heldout", help="folder for the photos (default: %(default)s)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        from_wheel(Path(tmp), out)
        if shutil.which("apt-get") and shutil.which("dpkg-deb"):
            from_deb(Path(tmp), out)
        else:
            print("apt-get/dpkg-deb not found: only the scikit-image photos were copied", file=sys.stderr)
    print(f"{len(list(out.iterdir()))} photos in {out}")


if __name__ == "__main__":
    main()
