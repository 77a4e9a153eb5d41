"""CIFAR-10 and CIFAR-100 from the "python version" files on disk (never downloaded here).

    cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/      train, test, meta

Either the folder or the .tar.gz it comes in (read in memory, nothing extracted). Each file is
a pickled dict: "data" (N, 3072) uint8, each row the 32x32 R plane, then G, then B, row-major;
"labels" (CIFAR-10) or "fine_labels"/"coarse_labels" (CIFAR-100); the meta file holds the
class names. Keys are bytes when the file was pickled by Python 2 (the official files) and
str when re-pickled by Python 3; both are accepted.

Unpickling can run arbitrary code, so the files are never given to Python's unpickler:
``plainpickle.load_plain`` interprets them as plain data and makes each array from its declared
dtype and shape and the bytes actually present, which must agree.

Limits, checked before anything is allocated: each CIFAR file at most ``MAX_FILE_BYTES`` (256 MiB;
CIFAR-100's train file, the largest, is 155 MB); in a .tar.gz, at most ``MAX_ARCHIVE_BYTES``
(1 GiB) of uncompressed archive is scanned and at most ``MAX_MEMBERS`` (10,000) entries, so an
archive that inflates without end is refused in bounded memory and time. Breaking a limit raises
``minivgg.errors.FileTooLargeError``, any other broken file ``CorruptFileError`` (both
ValueErrors naming the file).
"""

import lzma
import os
import tarfile
import zlib

import numpy as np

from ..errors import CorruptFileError, FileTooLargeError
from .dataset import ImageDataset
from .plainpickle import load_plain

_FILES = {  # (dataset, split) -> the pickles holding it
    ("cifar10", "train"): [f"data_batch_{i}" for i in range(1, 6)],
    ("cifar10", "test"): ["test_batch"],
    ("cifar100", "train"): ["train"],
    ("cifar100", "test"): ["test"],
}
_META = {"cifar10": "batches.meta", "cifar100": "meta"}
MAX_FILE_BYTES = 256 * 2**20
MAX_ARCHIVE_BYTES = 2**30
MAX_MEMBERS = 10_000


def _brief(value, limit=40):
    """repr(value) cut to ``limit`` characters: error messages quote a hostile file's contents."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class _Source:
    """The CIFAR files in a folder or in a .tar.gz, by base name."""

    def __init__(self, path, split):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"CIFAR data not found: {self.path}")
        if os.path.isdir(self.path):
            self.contents = None
            names = os.listdir(self.path)
        else:
            wanted = set(_META.values()).union(*(_FILES[kind, split] for kind in _META))
            self.contents = self._read_archive(wanted)
            names = list(self.contents)
        if "batches.meta" in names:
            self.kind = "cifar10"
        elif "meta" in names:
            self.kind = "cifar100"
        else:
            raise CorruptFileError(f"{self.path} holds neither CIFAR-10 (batches.meta) nor "
                                   f"CIFAR-100 (meta) files: give the cifar-10-batches-py or "
                                   f"cifar-100-python folder itself, or the .tar.gz")

    def _read_archive(self, wanted):
        """{base name: bytes} of the ``wanted`` files in the archive, in one pass (gzip cannot
        seek back), each member's size checked against the limits before it is read."""
        contents = {}
        try:
            with tarfile.open(self.path, "r:*") as archive:
                for count, member in enumerate(archive):
                    name = os.path.basename(member.name)
                    wanted_file = member.isfile() and name in wanted
                    if wanted_file:
                        _check_size(f"{name} in {self.path}", member.size)
                    if count >= MAX_MEMBERS or member.offset_data + member.size > \
                            MAX_ARCHIVE_BYTES:
                        raise FileTooLargeError(
                            f"{self.path}: the archive goes past {MAX_MEMBERS} entries or "
                            f"{MAX_ARCHIVE_BYTES // 2**20} MiB uncompressed; CIFAR's is 180 MB")
                    if wanted_file:
                        contents[name] = archive.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
            raise CorruptFileError(f"{self.path} is neither a CIFAR folder nor a readable tar "
                                   f"archive: {e}") from e
        return contents

    def where(self, name):
        return os.path.join(self.path, name)

    def load(self, name):
        """The unpickled dict in file ``name``, with str keys."""
        where = self.where(name)
        if self.contents is None:
            if not os.path.isfile(where):
                raise FileNotFoundError(f"CIFAR file missing: {where}")
            size = os.path.getsize(where)
            _check_size(where, size)
            with open(where, "rb") as f:
                raw = f.read(size + 1)          # read(n) allocates n bytes up front
        elif name in self.contents:
            raw = self.contents[name]
        else:
            raise FileNotFoundError(f"CIFAR file missing: {name} in {self.path}")
        _check_size(where, len(raw))                    # a file that grew while being read
        try:
            content = load_plain(raw)
        except CorruptFileError as e:
            raise type(e)(f"{where} is not a readable CIFAR pickle: {e}") from None
        if not isinstance(content, dict):
            raise CorruptFileError(f"{where} is not a CIFAR pickle: it holds a "
                                   f"{type(content).__name__}, not a dict")
        return {(k.decode("latin-1") if isinstance(k, bytes) else k): v
                for k, v in content.items()}


def _check_size(where, size):
    if size > MAX_FILE_BYTES:
        raise FileTooLargeError(f"{where} is {size} bytes, more than any CIFAR file "
                                f"(limit minivgg.data.cifar.MAX_FILE_BYTES = {MAX_FILE_BYTES})")


def _field(content, key, where):
    if key not in content:
        keys = ", ".join(_brief(k) for k in list(content)[:10])
        raise CorruptFileError(f"{where} has no {key!r} entry (has: {keys})")
    return content[key]


def _class_names(meta, key, where):
    names = _field(meta, key, where)
    if not (isinstance(names, (list, tuple)) and names
            and all(isinstance(n, (str, bytes)) for n in names)):
        raise CorruptFileError(f"{where}: {key} must be a list of class names; got "
                               f"{_brief(names)}")
    try:
        return tuple(n.decode() if isinstance(n, bytes) else n for n in names)
    except UnicodeDecodeError as e:
        raise CorruptFileError(f"{where}: a class name in {key} is not text: {e}") from None


def _read_batch(source, name, label_key):
    """(images (n, 32, 32, 3) uint8, labels (n,) int64) from one pickle."""
    where = source.where(name)
    content = source.load(name)
    data, labels = _field(content, "data", where), _field(content, label_key, where)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3072):
        raise CorruptFileError(f"{where}: data must be an (N, 3072) uint8 array; got "
                               f"{_describe(data)}")
    if isinstance(labels, list) and all(isinstance(v, (int, np.integer))
                                        and not isinstance(v, bool) for v in labels):
        labels = np.array(labels)           # ints beyond int64 make an object array: refused
    if not (isinstance(labels, np.ndarray) and labels.shape == (len(data),)
            and np.issubdtype(labels.dtype, np.integer)):
        raise CorruptFileError(f"{where}: {label_key} must be {len(data)} integers; got "
                               f"{_describe(labels)}")
    # Each row is three 32x32 planes (R, G, B): (n, 3, 32, 32) -> channels last.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"shape {value.shape}, dtype {value.dtype}"
    return f"a {type(value).__name__}" + (f" of {len(value)}" if isinstance(value, list) else "")


def load_cifar(path, split="train", labels="fine"):
    """CIFAR-10 or CIFAR-100 (told apart by their meta file) from a folder or its .tar.gz.

    path:   the cifar-10-batches-py / cifar-100-python folder, or the .tar.gz it came in
    split:  "train" (50000 images) or "test" (10000)
    labels: CIFAR-100 only: "fine" (100 classes) or "coarse" (20 superclasses)
    returns ImageDataset: images (N, 32, 32, 3) uint8, labels (N,) int64, classes from the meta
    Raises FileNotFoundError for a missing path or file, CorruptFileError (a ValueError naming
    the file) for a file that is not what CIFAR's should be, FileTooLargeError past the limits
    in the module docstring; memory stays within about twice the files' sizes.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse'; got {labels!r}")
    source = _Source(path, split)
    if source.kind == "cifar10":
        if labels != "fine":
            raise ValueError(f"labels={labels!r}: CIFAR-10 has one set of labels ({source.path})")
        label_key, names_key = "labels", "label_names"
    else:
        label_key, names_key = f"{labels}_labels", f"{labels}_label_names"
    meta = source.load(_META[source.kind])
    classes = _class_names(meta, names_key, source.where(_META[source.kind]))
    batches = [_read_batch(source, name, label_key) for name in _FILES[source.kind, split]]
    images = np.concatenate([b[0] for b in batches])
    targets = np.concatenate([b[1] for b in batches])
    if len(targets) and (targets.min() < 0 or targets.max() >= len(classes)):
        raise CorruptFileError(f"{source.path}: labels range over [{targets.min()}, "
                               f"{targets.max()}] but the meta file names {len(classes)} classes")
    return ImageDataset(images, targets, classes)
