"""Images on disk in one sub-folder per class (root/cat/001.png, root/dog/xyz.jpg, ...).

Decoding, whatever the file's mode, gives (H, W, 3) uint8 RGB:
- grey (L), bilevel (1) and palette (P) images are expanded to RGB by Pillow;
- alpha (RGBA, LA, PA) is dropped, not composited: the colour under a transparent pixel is kept;
- 16-bit grey (I;16, and I as older Pillows open it) keeps its high byte, v -> v >> 8, so
  65535 -> 255, 32768 -> 128, 1000 -> 3 (Pillow's own conversion saturates everything above
  255): the rule Pillow itself applies to 16-bit RGB, RGBA and grey+alpha PNGs, so an image
  decodes to the same pixels whichever of those modes it was saved in.

Limits, checked before any pixel is decoded: only PNG and JPEG content is opened, whatever the
file's name says (so a renamed TIFF, EPS or PSD never reaches its decoder); an image of more than
``max_pixels`` (default ``MAX_PIXELS``, 50 million: 8000 x 6250, 150 MB as RGB) is refused with
``FileTooLargeError`` (Pillow would otherwise decode up to 179 million pixels with a warning and
raise its own DecompressionBombError beyond). A broken image, or a symbolic link that loops, is a
``CorruptFileError`` naming the file (not skipped: a dataset that silently loses files is wrong).
"""

import errno
import os
import warnings

import numpy as np

from ..errors import CorruptFileError, FileTooLargeError
from .dataset import ImageDataset

EXTENSIONS = (".png", ".jpg", ".jpeg")
FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 50_000_000
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _pillow():
    """PIL.Image, imported only here: NumPy is the only other runtime dependency."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("load_image_folder reads PNG/JPEG with Pillow, which is not "
                          "installed: pip install minivgg[plot]") from e
    return Image


def read_rgb(path, max_pixels=MAX_PIXELS):
    """(H, W, 3) uint8 of the PNG or JPEG file at ``path``, whatever its mode (see the module
    docstring). Raises FileNotFoundError, FileTooLargeError (more than ``max_pixels`` pixels,
    before decoding) or CorruptFileError (anything else that stops it being read)."""
    Image = _pillow()
    try:
        with warnings.catch_warnings():          # our own limit decides, before Pillow's warns
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=FORMATS)
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise FileTooLargeError(f"{path} is {width} x {height} = {width * height} "
                                        f"pixels, more than max_pixels = {max_pixels}")
            if image.mode in _SIXTEEN_BIT:
                grey = (np.clip(np.asarray(image), 0, 65535) >> 8).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise
    except Image.DecompressionBombError as e:
        raise FileTooLargeError(f"{path} is too large to decode: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:       # what Pillow raises for broken files
        if isinstance(e, CorruptFileError):
            raise
        raise CorruptFileError(f"cannot read image {path}: {e}") from None


def _entries(folder, keep):
    """Sorted names of the entries of ``folder`` for which ``keep(entry)`` is true (hidden ones
    never); a symbolic-link loop or an unreadable folder is a CorruptFileError naming it."""
    try:
        with os.scandir(folder) as scan:
            return sorted(e.name for e in scan if not e.name.startswith(".") and keep(e))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CorruptFileError(f"{e.filename}: a symbolic link that loops (too many levels "
                                   f"of links)") from None
        raise CorruptFileError(f"cannot read folder {folder}: {e.strerror}") from None


def load_image_folder(path, extensions=EXTENSIONS, max_pixels=MAX_PIXELS):
    """One class per sub-folder of ``path`` (classes in sorted name order, files sorted too).

    Files whose names end in one of ``extensions`` (case-insensitive) are read and converted
    to RGB (``read_rgb``: the modes and limits are in the module docstring); other files and
    hidden entries are skipped.
    returns ImageDataset: images (N, H, W, 3) uint8 if all share a size, else a list of
            (H_i, W_i, 3) uint8; labels (N,) int64; classes the sub-folder names
    Raises FileNotFoundError if ``path`` is missing, ValueError (naming the folder) for a folder
    with no class sub-folders or a class with no images, CorruptFileError (a ValueError naming
    the file) for an unreadable image or looping link, FileTooLargeError past ``max_pixels``.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image folder not found: {path}")
    classes = _entries(path, lambda e: e.is_dir())
    if not classes:
        raise ValueError(f"{path} has no class sub-folders (expected {path}/<class>/<image>)")
    _pillow()                                   # says what to install before any work is done
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(path, name)
        files = _entries(folder, lambda e: e.name.lower().endswith(extensions) and e.is_file())
        if not files:
            raise ValueError(f"class folder {folder} holds no {'/'.join(extensions)} images")
        images += [read_rgb(os.path.join(folder, file), max_pixels) for file in files]
        labels += [label] * len(files)
    if len({image.shape for image in images}) == 1:
        images = np.stack(images)                 # one size: a batchable array
    return ImageDataset(images, labels, classes)
