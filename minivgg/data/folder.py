"""Images on disk in one sub-folder per class (root/cat/001.png, root/dog/xyz.jpg, ...)."""

import os

import numpy as np

from .dataset import ImageDataset

EXTENSIONS = (".png", ".jpg", ".jpeg")


def _pillow():
    """PIL.Image, imported only here: NumPy is the only other runtime dependency."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("load_image_folder reads PNG/JPEG with Pillow, which is not "
                          "installed: pip install minivgg[plot]") from e
    return Image


def _read_rgb(Image, path):
    """(H, W, 3) uint8 of the image file at ``path``, whatever its mode (grey, palette, RGBA)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:       # what Pillow raises for broken files
        raise ValueError(f"cannot read image {path}: {e}") from e


def load_image_folder(path, extensions=EXTENSIONS):
    """One class per sub-folder of ``path`` (classes in sorted name order, files sorted too).

    Files whose names end in one of ``extensions`` (case-insensitive) are read and converted
    to RGB; other files and hidden entries are skipped.
    returns ImageDataset: images (N, H, W, 3) uint8 if all share a size, else a list of
            (H_i, W_i, 3) uint8; labels (N,) int64; classes the sub-folder names
    Raises FileNotFoundError if ``path`` is missing, ValueError (naming the folder or file) for
    a folder with no class sub-folders, a class with no images, or an unreadable image.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image folder not found: {path}")
    classes = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"{path} has no class sub-folders (expected {path}/<class>/<image>)")
    Image = _pillow()
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(path, name)
        files = sorted(e.name for e in os.scandir(folder) if e.is_file()
                       and not e.name.startswith(".") and e.name.lower().endswith(extensions))
        if not files:
            raise ValueError(f"class folder {folder} holds no {'/'.join(extensions)} images")
        images += [_read_rgb(Image, os.path.join(folder, file)) for file in files]
        labels += [label] * len(files)
    if len({image.shape for image in images}) == 1:
        images = np.stack(images)                 # one size: a batchable array
    return ImageDataset(images, labels, classes)
