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

from .dataset import ImageDataset
from .folder import EXTENSIONS, load_image_folder

COLUMNS = ("file", "x0", "y0", "x1", "y1")


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


def read_box_annotations(path):
    """{file: (x0, y0, x1, y1)} from a CSV annotation file (module docstring); ValueError naming
    the line for a missing column, a number that is not one, or a file listed twice."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or [c.strip() for c in reader.fieldnames] != list(COLUMNS):
            raise ValueError(f"{path}: the first line must be the header {','.join(COLUMNS)}; "
                             f"got {reader.fieldnames}")
        boxes = {}
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            try:
                box = tuple(float(row[c]) for c in COLUMNS[1:])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: x0, y0, x1, y1 must be numbers; got "
                                 f"{[row.get(c) for c in COLUMNS[1:]]}") from None
            name = os.path.normpath(row["file"].strip())
            if name in boxes:
                raise ValueError(f"{where}: {row['file']} has a second box (one per image)")
            boxes[name] = box
    return boxes


def load_image_folder_with_boxes(path, annotations=None, **kwargs):
    """:func:`minivgg.data.load_image_folder` plus each image's box from ``annotations`` (the
    CSV file, default ``path/boxes.csv``). Raises ValueError naming an image without a box or
    a box that does not fit its image. kwargs go to load_image_folder."""
    data = load_image_folder(path, **kwargs)
    table = read_box_annotations(annotations or os.path.join(path, "boxes.csv"))
    # load_image_folder's order: classes sorted, files sorted within each class.
    extensions = kwargs.get("extensions", EXTENSIONS)
    files = [os.path.join(name, e.name) for name in data.classes
             for e in sorted(os.scandir(os.path.join(path, name)), key=lambda e: e.name)
             if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(extensions)]
    if len(files) != len(data):
        raise ValueError(f"{path}: found {len(files)} image files but load_image_folder read "
                         f"{len(data)} images; cannot pair them with the annotations")
    missing = [f for f in files if f not in table]
    if missing:
        raise ValueError(f"{len(missing)} images have no box in the annotations, e.g. "
                         f"{missing[0]}")
    return ImageDataset(data.images, data.labels, data.classes, [table[f] for f in files])
