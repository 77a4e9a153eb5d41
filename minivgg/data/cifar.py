"""CIFAR-10 and CIFAR-100 from the "python version" files on disk (never downloaded here).

    cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/      train, test, meta

Either the folder or the .tar.gz it comes in (read in memory, nothing extracted). Each file is
a pickled dict: "data" (N, 3072) uint8, each row the 32x32 R plane, then G, then B, row-major;
"labels" (CIFAR-10) or "fine_labels"/"coarse_labels" (CIFAR-100); the meta file holds the
class names. Keys are bytes when the file was pickled by Python 2 (the official files) and
str when re-pickled by Python 3; both are accepted.

Unpickling can run arbitrary code, so only NumPy's array-rebuilding functions are allowed: a
file asking for anything else is rejected as malformed instead of being run.
"""

import io
import os
import pickle
import tarfile

import numpy as np

from .dataset import ImageDataset

_FILES = {  # (dataset, split) -> the pickles holding it
    ("cifar10", "train"): [f"data_batch_{i}" for i in range(1, 6)],
    ("cifar10", "test"): ["test_batch"],
    ("cifar100", "train"): ["train"],
    ("cifar100", "test"): ["test"],
}
_META = {"cifar10": "batches.meta", "cifar100": "meta"}

# What the official pickles (and NumPy re-pickles them as) need to rebuild their arrays.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),          # how pickle protocol 2 spells bytes when Python 3 writes it
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


class _Source:
    """The CIFAR files in a folder or in a .tar.gz, by base name."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"CIFAR data not found: {self.path}")
        if os.path.isdir(self.path):
            self.contents = None
            names = os.listdir(self.path)
        else:
            self.contents = self._read_archive()
            names = list(self.contents)
        if "batches.meta" in names:
            self.kind = "cifar10"
        elif "meta" in names:
            self.kind = "cifar100"
        else:
            raise ValueError(f"{self.path} holds neither CIFAR-10 (batches.meta) nor CIFAR-100 "
                             f"(meta) files: give the cifar-10-batches-py or cifar-100-python "
                             f"folder itself, or the .tar.gz")

    def _read_archive(self):
        """{base name: bytes} of the CIFAR files in the archive (one pass: gzip cannot seek)."""
        wanted = set(_META.values()).union(*_FILES.values())
        try:
            with tarfile.open(self.path, "r:*") as archive:
                return {os.path.basename(m.name): archive.extractfile(m).read()
                        for m in archive if m.isfile() and os.path.basename(m.name) in wanted}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ValueError(f"{self.path} is neither a CIFAR folder nor a readable tar "
                             f"archive: {e}") from e

    def where(self, name):
        return os.path.join(self.path, name)

    def load(self, name):
        """The unpickled dict in file ``name``, with str keys."""
        where = self.where(name)
        if self.contents is None:
            if not os.path.isfile(where):
                raise FileNotFoundError(f"CIFAR file missing: {where}")
            with open(where, "rb") as f:
                raw = f.read()
        elif name in self.contents:
            raw = self.contents[name]
        else:
            raise FileNotFoundError(f"CIFAR file missing: {name} in {self.path}")
        try:
            # encoding="bytes": Python 2's str (the official files) loads as bytes, not text.
            content = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
        except Exception as e:             # any failure to unpickle means a broken file
            raise ValueError(f"{where} is not a readable CIFAR pickle: {e}") from e
        if not isinstance(content, dict):
            raise ValueError(f"{where} is not a CIFAR pickle: it holds a "
                             f"{type(content).__name__}, not a dict")
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in content.items()}


def _field(content, key, where):
    if key not in content:
        raise ValueError(f"{where} has no {key!r} entry (has: {', '.join(map(str, content))})")
    return content[key]


def _read_batch(source, name, label_key):
    """(images (n, 32, 32, 3) uint8, labels (n,) int64) from one pickle."""
    where = source.where(name)
    content = source.load(name)
    data = np.asarray(_field(content, "data", where))
    labels = np.asarray(_field(content, label_key, where))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{where}: data must be (N, 3072) uint8; got {data.shape} {data.dtype}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: {label_key} must be {len(data)} integers; got shape "
                         f"{labels.shape}, dtype {labels.dtype}")
    # Each row is three 32x32 planes (R, G, B): (n, 3, 32, 32) -> channels last.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def load_cifar(path, split="train", labels="fine"):
    """CIFAR-10 or CIFAR-100 (told apart by their meta file) from a folder or its .tar.gz.

    path:   the cifar-10-batches-py / cifar-100-python folder, or the .tar.gz it came in
    split:  "train" (50000 images) or "test" (10000)
    labels: CIFAR-100 only: "fine" (100 classes) or "coarse" (20 superclasses)
    returns ImageDataset: images (N, 32, 32, 3) uint8, labels (N,) int64, classes from the meta
    Raises FileNotFoundError for a missing path or file, ValueError (naming the file) for a
    file that is not what CIFAR's should be.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse'; got {labels!r}")
    source = _Source(path)
    if source.kind == "cifar10":
        if labels != "fine":
            raise ValueError(f"labels={labels!r}: CIFAR-10 has one set of labels ({source.path})")
        label_key, names_key = "labels", "label_names"
    else:
        label_key, names_key = f"{labels}_labels", f"{labels}_label_names"
    meta = source.load(_META[source.kind])
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n)
                    for n in _field(meta, names_key, source.where(_META[source.kind])))
    batches = [_read_batch(source, name, label_key) for name in _FILES[source.kind, split]]
    images = np.concatenate([b[0] for b in batches])
    targets = np.concatenate([b[1] for b in batches])
    if len(targets) and (targets.min() < 0 or targets.max() >= len(classes)):
        raise ValueError(f"{source.path}: labels range over [{targets.min()}, {targets.max()}] "
                         f"but the meta file names {len(classes)} classes")
    return ImageDataset(images, targets, classes)
