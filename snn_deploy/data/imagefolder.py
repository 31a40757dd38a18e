"""ImageFolder trees (ImageNet's usual layout): ``ROOT/train/<class>/*.jpg|png`` and ``ROOT/val/<class>/...``.

Classes are the sorted folder names of ``train``; ``val`` (or ``test``) must use the same names. Images are read
on demand with Pillow. Evaluation view: shorter side resized to ``size / 0.875``, centre crop. Training view:
random-resized crop (area 8-100 %, aspect 3/4-4/3) and mirror, as in the papers' ImageNet recipes. Pixels are
normalised with ImageNet's mean and standard deviation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from snn_deploy.data.base import LazySamples, Splits
from snn_deploy.data.layouts import IMAGEFOLDER_TEST_SPLITS as TEST_SPLITS, imagefolder_looks_right as looks_right
from snn_deploy.errors import UserError

EXTENSIONS = (".jpg", ".jpeg", ".png")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875
MAX_PIXELS = 64 * 2**20
"""Images larger than this (about 8000 x 8000) are refused before decoding."""
CROP_TRIES = 10


def scan(split_dir: Path, classes: tuple[str, ...] | None) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """(files, labels, classes) of one split folder; ``classes`` given: the test split must use those names."""
    found = tuple(sorted(d.name for d in split_dir.iterdir() if d.is_dir()))
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise UserError(f"{split_dir} has class folder(s) {', '.join(unknown[:3])} that train/ lacks; both splits must "
                        f"use the same class folder names")
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = split_dir / name
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() in EXTENSIONS and f.is_file():
                    files.append(f)
                    labels.append(label)
    if not files:
        raise UserError(f"{split_dir} holds no {'/'.join(EXTENSIONS)} images in class folders; place the images as "
                        f"{split_dir}/<class>/<image>")
    return files, labels, classes


def read_image(path: Path):
    """The image as RGB, refusing oversized or unreadable files with a one-line error naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS or w < 1 or h < 1:
                raise UserError(f"image {path} is {w}x{h} pixels, outside 1..{MAX_PIXELS} pixels; remove or shrink it")
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"image {path} cannot be read ({type(exc).__name__}: {exc}); remove or replace it") from None


def centre_view(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / CROP_FRACTION / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
    return im.crop((left, top, left + size, top + size))


def random_view(im, size: int, rng: np.random.Generator):
    from PIL import Image

    w, h = im.size
    for _ in range(CROP_TRIES):
        area = w * h * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            im = im.resize((size, size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
            break
    else:
        im = centre_view(im, size)
    return im.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else im


def to_tensor(im) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def open_imagefolder(folder: Path, size: int) -> Splits:
    """Lazy splits of the tree at ``folder`` at ``size`` x ``size`` pixels."""
    test_dir = next(folder / s for s in TEST_SPLITS if (folder / s).is_dir())
    train_files, train_labels, classes = scan(folder / "train", None)
    test_files, test_labels, _ = scan(test_dir, classes)

    def samples(files: list[Path], labels: list[int]) -> LazySamples:
        def load(i: int, rng: np.random.Generator | None) -> torch.Tensor:
            im = read_image(files[i])
            return to_tensor(centre_view(im, size) if rng is None else random_view(im, size, rng))
        return LazySamples(load, torch.tensor(labels), classes)

    return Splits(samples(train_files, train_labels), samples(test_files, test_labels))
