"""A user's data on disk as (train, val): an image folder, a folder with train/ and val/, or
CIFAR; and the stratified, seeded validation split when no val/ is given.

    train, val = load_splits("photos/", val_fraction=0.2, seed=0)   # photos/<class>/<image>
    train, val = load_splits("photos/")          # photos/train/<class>/..., photos/val/<class>/...
    train, val = load_splits("cifar-10-python.tar.gz")              # its training batches, split
    test = load_test_set("cifar-10-python.tar.gz")                  # its test batch
"""

import numbers
import os

import numpy as np

from .cifar import load_cifar
from .folder import load_image_folder

CIFAR_MARKERS = ("batches.meta", "meta")           # the meta file of CIFAR-10 / CIFAR-100


def stratified_split(dataset, val_fraction, seed=0):
    """Split ``dataset`` into (train, val) with ``val_fraction`` of every class in val (rounded,
    at least one image of each class with two or more), drawn by a generator seeded with
    ``seed``: the same seed gives the same split. Raises ValueError when a split would be empty.
    """
    if not (isinstance(val_fraction, numbers.Real) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must lie in (0, 1); got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    val = []
    for label in range(len(dataset.classes)):
        members = np.flatnonzero(dataset.labels == label)
        take = int(round(val_fraction * len(members)))
        take = min(max(take, 1 if len(members) > 1 else 0), len(members) - 1)
        val += list(rng.permutation(members)[:take])
    is_val = np.zeros(len(dataset), bool)
    is_val[np.array(val, dtype=np.int64)] = True
    if is_val.all() or not is_val.any():
        raise ValueError(f"val_fraction {val_fraction} of {len(dataset)} images leaves the "
                         f"training or the validation set empty")
    return dataset.subset(~is_val), dataset.subset(is_val)


def data_kind(path):
    """"cifar" (a CIFAR python folder or its .tar.gz), "split" (a folder holding train/ and
    val/ image folders) or "folder" (one sub-folder per class). FileNotFoundError if missing."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data not found: {path}")
    if os.path.isfile(path):
        return "cifar"                             # the only data that comes as one file
    if any(os.path.isfile(os.path.join(path, m)) for m in CIFAR_MARKERS):
        return "cifar"
    if all(os.path.isdir(os.path.join(path, s)) for s in ("train", "val")):
        return "split"
    return "folder"


def load_splits(path, val_fraction=0.1, seed=0):
    """(train, val) ImageDatasets from ``path`` (see the module docstring). A given val/ folder
    is used as it is, and must have the same class sub-folders as train/; otherwise
    ``val_fraction`` of each class is held out by :func:`stratified_split`."""
    kind = data_kind(path)
    if kind == "split":
        train, val = (load_image_folder(os.path.join(path, s)) for s in ("train", "val"))
        if val.classes != train.classes:
            raise ValueError(f"{path}: val/ has classes {list(val.classes)} but train/ has "
                             f"{list(train.classes)}; they must be the same sub-folders")
        return train, val
    whole = load_cifar(path, "train") if kind == "cifar" else load_image_folder(path)
    return stratified_split(whole, val_fraction, seed)


def load_test_set(path):
    """All of ``path`` as one test set: CIFAR's test batch, a split folder's val/, or every
    image of an image folder."""
    kind = data_kind(path)
    if kind == "cifar":
        return load_cifar(path, "test")
    return load_image_folder(os.path.join(path, "val") if kind == "split" else path)
