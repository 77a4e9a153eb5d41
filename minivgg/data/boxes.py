"""Object boxes: their geometry under the paper's augmentation, and annotation files.

A box is (x0, y0, x1, y1) in pixels, float32, with pixel (row y, column x) covering the square
[x, x + 1) x [y, y + 1): a box around exactly the pixels x0..x1-1, y0..y1-1 has integer corners.
In this continuous frame every geometric step of ``augment.py`` moves a box exactly:

    rescale H x W -> H' x W'   x * W' / W, y * H' / H  (bilinear with aligned pixel centres maps
                               the point u of the input to u * n_out / n_in: resize.py)
    crop at (top, left)        x - left, y - top (not clipped: the object's whole extent in the
                               crop's frame, as a regression target wants; np.clip(boxes, 0,
                               crop) gives its visible part)
    horizontal flip, width W   x0' = W - x1, x1' = W - x0

Annotation file for an image folder (``load_image_folder_with_boxes``): a CSV with the header
``file,x0,y0,x1,y1`` and one row per image, ``file`` relative to the folder root as
``<class>/<name>`` (``cat/001.png,12,30,140,200``), corners in pixels of the image as stored.
Every image of the folder needs exactly one row (one object per image, as ILSVRC's
localisation task scores one box per class).
"""

import csv
import os

import numpy as np

from ..errors import CorruptFileError, FileTooLargeError
from .dataset import ImageDataset
from .folder import EXTENSIONS, load_image_folder

COLUMNS = ("file", "x0", "y0", "x1", "y1")
MAX_ANNOTATION_BYTES = 64 << 20     # ~2 million rows: refused before reading (a hostile file)


def check_boxes(boxes, images):
    """``boxes`` as (N, 4) float32, each inside its image with x0 < x1 and y0 < y1, else a
    ValueError naming the first bad row. images: (N, H, W, 3) or a list of (H_i, W_i, 3)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.shape != (len(images), 4):
        raise ValueError(f"boxes must have shape ({len(images)}, 4) (x0, y0, x1, y1 per image); "
                         f"got {boxes.shape}")
    if isinstance(images, np.ndarray):
        sizes = np.broadcast_to(np.array(images.shape[1:3]), (len(images), 2))
    else:
        sizes = np.array([image.shape[:2] for image in images]).reshape(-1, 2)
    x0, y0, x1, y1 = boxes.T
    bad = ~(np.isfinite(boxes).all(axis=1) & (0 <= x0) & (x0 < x1) & (x1 <= sizes[:, 1])
            & (0 <= y0) & (y0 < y1) & (y1 <= sizes[:, 0]))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"boxes[{i}] = {boxes[i].tolist()} is not a box inside its "
                         f"{sizes[i, 1]} x {sizes[i, 0]} image (need 0 <= x0 < x1 <= W, "
                         f"0 <= y0 < y1 <= H)")
    return boxes


def rescale_boxes(boxes, old_hw, new_hw):
    """Boxes of an H x W image in the same image resized to H' x W': (N, 4) -> (N, 4)."""
    (h, w), (h2, w2) = old_hw, new_hw
    return boxes * np.array([w2 / w, h2 / h, w2 / w, h2 / h], np.float32)


def crop_boxes(boxes, top, left):
    """Boxes in the frame of a crop whose corner is at (top, left) (scalars or one per box):
    (N, 4) -> (N, 4), not clipped. (-top, -left) maps boxes in a crop back to the image."""
    shift = np.stack(np.broadcast_arrays(left, top, left, top), axis=-1).astype(np.float32)
    return (boxes - shift).astype(np.float32)


def flip_boxes(boxes, width, flipped=True):
    """Boxes mirrored left-right in an image of ``width`` where ``flipped`` (bool per box)."""
    mirrored = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
    return np.where(np.reshape(flipped, (-1, 1)), mirrored, boxes).astype(np.float32)


def read_box_annotations(path, files=None):
    """{file: (x0, y0, x1, y1)} from a CSV annotation file (module docstring, UTF-8 with or
    without a byte-order mark). CorruptFileError naming the line for a missing column or an extra
    one, a number that is not one, a file listed twice, or, when ``files`` (the names the rows
    may give) is given, a file that is not among them: read row by row, so a hostile file stops
    at its first bad row; FileTooLargeError for a file over MAX_ANNOTATION_BYTES."""
    path = os.fspath(path)
    if os.path.getsize(path) > MAX_ANNOTATION_BYTES:
        raise FileTooLargeError(f"{path}: {os.path.getsize(path):,} bytes, over the "
                                f"{MAX_ANNOTATION_BYTES >> 20} MiB limit of an annotation file "
                                f"(minivgg.data.boxes.MAX_ANNOTATION_BYTES)")
    boxes, line = {}, 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [c.strip() for c in header] != list(COLUMNS):
                raise CorruptFileError(f"{path}: the first line must be the header "
                                       f"{','.join(COLUMNS)}; got {header}")
            for row in reader:
                line = reader.line_num
                if not row:
                    continue                                  # a blank line
                where = f"{path}, line {line}"
                if len(row) != len(COLUMNS):
                    raise CorruptFileError(f"{where}: {len(row)} fields, not the header's "
                                           f"{len(COLUMNS)} ({','.join(COLUMNS)})")
                try:
                    box = tuple(float(value) for value in row[1:])
                except ValueError:
                    raise CorruptFileError(f"{where}: x0, y0, x1, y1 must be numbers; got "
                                           f"{row[1:]}") from None
                name = os.path.normpath(row[0].strip())
                if files is not None and name not in files:
                    raise CorruptFileError(f"{where}: {row[0]} is not an image of the folder "
                                           f"(a row per image, <class>/<name>)")
                if name in boxes:
                    raise CorruptFileError(f"{where}: {row[0]} has a second box (one per image)")
                boxes[name] = box
    except UnicodeDecodeError as error:
        raise CorruptFileError(f"{path}: not UTF-8 text ({error})") from None
    except csv.Error as error:                                # e.g. a field over csv's limit
        raise CorruptFileError(f"{path}, line {line}: not a CSV row ({error})") from None
    return boxes


def load_image_folder_with_boxes(path, annotations=None, **kwargs):
    """:func:`minivgg.data.load_image_folder` plus each image's box from ``annotations`` (the
    CSV file, default ``path/boxes.csv``). Raises CorruptFileError (a ValueError) naming the
    annotation file and the image without a box, with a box that does not fit it, or the row
    that names no image of the folder (``read_box_annotations``). kwargs go to
    load_image_folder."""
    data = load_image_folder(path, **kwargs)
    annotations = annotations or os.path.join(path, "boxes.csv")
    # load_image_folder's order: classes sorted, files sorted within each class.
    extensions = kwargs.get("extensions", EXTENSIONS)
    files = [os.path.join(name, e.name) for name in data.classes
             for e in sorted(os.scandir(os.path.join(path, name)), key=lambda e: e.name)
             if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(extensions)]
    if len(files) != len(data):
        raise ValueError(f"{path}: found {len(files)} image files but load_image_folder read "
                         f"{len(data)} images; cannot pair them with the annotations")
    table = read_box_annotations(annotations, set(files))
    missing = [f for f in files if f not in table]
    if missing:
        raise CorruptFileError(f"{annotations}: {len(missing)} images have no box in it, e.g. "
                               f"{missing[0]}")
    boxes = [table[f] for f in files]
    try:
        check_boxes(boxes, data.images)
    except ValueError as error:                               # which file, not only which row
        bad = next(i for i in range(len(files)) if not _fits(boxes[i], data.images[i]))
        raise CorruptFileError(f"{annotations}: the box of {files[bad]}: {error}") from None
    return ImageDataset(data.images, data.labels, data.classes, boxes)


def _fits(box, image):
    try:
        check_boxes([box], [image])
    except ValueError:
        return False
    return True
