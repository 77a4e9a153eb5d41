"""Hostile and broken files: each is a clear CorruptFileError (or FileTooLargeError) naming the
file, in bounded memory (measured with tracemalloc), never a traceback from deep inside a
library, a hang or a huge allocation. Every hostile file is made here, small."""

import gzip
import io
import pickle
import struct
import tarfile
import tracemalloc
import zlib

import numpy as np
import pytest
from test_data import _dump, _rows, _write_cifar10

from minivgg.data import cifar, load_cifar, load_image_folder
from minivgg.data.plainpickle import load_plain
from minivgg.errors import CorruptFileError, FileTooLargeError

MB = 2**20


class Peak:
    """``with Peak() as peak: ...``; then ``peak.bytes``: the most memory Python allocated inside
    (tracemalloc sees NumPy's and CPython's allocations)."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def _ops(*parts):
    """A pickle from opcodes and their arguments (bytes), protocol 2, ending in STOP."""
    return pickle.PROTO + b"\x02" + b"".join(parts) + pickle.STOP


def _short(text):
    data = text.encode("latin-1") if isinstance(text, str) else text
    return pickle.SHORT_BINSTRING + bytes([len(data)]) + data


def _unicode(text):
    return pickle.SHORT_BINUNICODE + bytes([len(text)]) + text.encode()


def _global(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _int(n):
    return pickle.BININT + struct.pack("<i", n)


# An array "rebuilt" by _reconstruct with no BUILD state: NumPy's real _reconstruct returns an
# uninitialised array of the declared shape (1.8 GB of leftover heap for (600000, 3072)).
UNINITIALISED = _ops(
    pickle.EMPTY_DICT, pickle.MARK,
    _short("data"), _global("numpy.core.multiarray", "_reconstruct"), _global("numpy", "ndarray"),
    _int(600000), _int(3072), pickle.TUPLE2, _short("B"), pickle.TUPLE3, pickle.REDUCE,
    _short("labels"), _global("numpy.core.multiarray", "_reconstruct"), _global("numpy", "ndarray"),
    _int(600000), pickle.TUPLE1, _short("l"), pickle.TUPLE3, pickle.REDUCE,
    pickle.SETITEMS)


def _replace_batch(tmp_path, raw):
    tmp_path.mkdir(exist_ok=True)
    _write_cifar10(tmp_path / "c10")
    (tmp_path / "c10" / "test_batch").write_bytes(raw)
    return tmp_path / "c10"


def test_a_pickle_declaring_a_huge_array_without_its_bytes_is_refused_unallocated(tmp_path):
    assert len(UNINITIALISED) < 200
    folder = _replace_batch(tmp_path, UNINITIALISED)
    with Peak() as peak, pytest.raises(CorruptFileError, match="test_batch.*without its data"):
        load_cifar(folder, "test")
    assert peak.bytes < 5 * MB


def test_an_array_whose_bytes_disagree_with_its_shape_is_refused(tmp_path):
    for rows in (b"\x00" * 3000, b"\x00" * 3072 * 2 + b"\x00"):     # too few, too many
        state = pickle.MARK + _int(1) + _int(2) + _int(3072) + pickle.TUPLE2 + \
            _global("numpy", "dtype") + _short("u1") + pickle.NEWFALSE + pickle.NEWTRUE + \
            pickle.TUPLE3 + pickle.REDUCE + pickle.NEWFALSE + \
            pickle.BINSTRING + struct.pack("<i", len(rows)) + rows + pickle.TUPLE
        raw = _ops(pickle.EMPTY_DICT, pickle.MARK, _short("data"),
                   _global("numpy.core.multiarray", "_reconstruct"), _global("numpy", "ndarray"),
                   _int(0), pickle.TUPLE1, _short("b"), pickle.TUPLE3, pickle.REDUCE, state,
                   pickle.BUILD, _short("labels"), pickle.EMPTY_LIST, _int(0), pickle.APPEND,
                   _int(1), pickle.APPEND, pickle.SETITEMS)
        folder = _replace_batch(tmp_path / str(len(rows)), raw)
        with pytest.raises(CorruptFileError, match=r"declares shape \(2, 3072\) of uint8 "
                                                   rf"\(6144 bytes\) but holds {len(rows)}"):
            load_cifar(folder, "test")


def test_a_pickle_cannot_modify_the_globals_it_names(tmp_path):
    import numpy._core.numeric as numeric
    before = numeric._frombuffer.__defaults__
    attack = _ops(_global("numpy._core.numeric", "_frombuffer"), pickle.NONE,
                  pickle.EMPTY_DICT, _unicode("__defaults__"), _short("F"), pickle.TUPLE1,
                  pickle.SETITEM, pickle.TUPLE2, pickle.BUILD, pickle.POP, pickle.EMPTY_DICT)
    folder = _replace_batch(tmp_path, attack)
    try:
        with pytest.raises(CorruptFileError, match="test_batch.*tries to modify "
                                                   "numpy._core.numeric._frombuffer"):
            load_cifar(folder, "test")
        assert numeric._frombuffer.__defaults__ == before
    finally:
        numeric._frombuffer.__defaults__ = before        # the old code let it through


@pytest.mark.parametrize("opcode", [pickle.BINBYTES8, pickle.BINUNICODE8, pickle.BYTEARRAY8])
def test_a_declared_length_beyond_the_file_allocates_nothing(tmp_path, opcode):
    raw = pickle.PROTO + b"\x05" + opcode + struct.pack("<Q", 3 * 2**30) + b"abc"
    with Peak() as peak, pytest.raises(CorruptFileError, match="not a readable pickle"):
        load_plain(raw)
    assert peak.bytes < MB                  # CPython's own unpickler allocates the 3 GiB first


@pytest.mark.parametrize("raw", [
    pickle.dumps({"data": np.zeros(3, dtype=object)}),                       # object arrays
    pickle.dumps({"data": np.zeros(3, dtype=[("a", "u1")])}),               # records
    pickle.dumps({"data": np.zeros(3, dtype=complex)}),
    pickle.dumps({"x": {1, 2}}),                                             # sets: objects
    pickle.dumps({"x": range(3)}),                                           # another global
    _ops(pickle.MARK, pickle.TUPLE1),                                        # malformed stack
    _ops(pickle.EMPTY_DICT, pickle.EMPTY_LIST, pickle.EMPTY_LIST, pickle.SETITEM),  # bad key
    pickle.PROTO + b"\x02" + pickle.EMPTY_DICT,                              # no STOP
])
def test_anything_but_plain_data_is_refused(raw):
    with pytest.raises(CorruptFileError):
        load_plain(raw)


def test_plain_data_and_arrays_of_either_numpy_pickling_come_back():
    value = {"a": [1, -2, 2**70, 1.5, "x", b"y", None, True, (1, (2,))],
             "big": np.arange(12, dtype=">i4").reshape(3, 4),
             "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
             "scalar": np.int16(-7)}
    for protocol in (2, 3, 4, 5):
        loaded = load_plain(pickle.dumps(value, protocol=protocol))
        assert loaded["a"] == value["a"] and loaded["scalar"] == -7
        for key in ("big", "fortran"):
            np.testing.assert_array_equal(loaded[key], value[key])
            assert loaded[key].dtype == value[key].dtype


def test_the_opcode_limit_bounds_time_and_objects(monkeypatch):
    from minivgg.data import plainpickle
    monkeypatch.setattr(plainpickle, "MAX_OPS", 100)
    with pytest.raises(FileTooLargeError, match="more than 100 pickle opcodes"):
        load_plain(pickle.dumps(list(range(200)), protocol=2))


def test_label_range_errors_quote_the_real_labels(tmp_path):
    _write_cifar10(tmp_path / "c10")
    _dump(tmp_path / "c10" / "test_batch", {"data": _rows(2, 0), "labels": [3, 12]})
    with pytest.raises(CorruptFileError, match=r"labels range over \[3, 12\] but the meta file "
                                               r"names 10 classes"):
        load_cifar(tmp_path / "c10", "test")


def _tar_gz(path, members):
    """A .tar.gz of ``members``: {name: bytes, or an int: a header declaring that many bytes
    followed by only 4 KiB of them (the archive stays small, the declared size is huge)}."""
    buffer = io.BytesIO()
    for name, data in members.items():
        info = tarfile.TarInfo(name)
        info.size = data if isinstance(data, int) else len(data)
        buffer.write(info.tobuf(format=tarfile.GNU_FORMAT))
        body = b"\x00" * 4096 if isinstance(data, int) else data
        buffer.write(body + b"\x00" * (-len(body) % 512))
    path.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=1))
    return path


def test_an_archive_member_over_the_size_limit_is_refused_before_reading(tmp_path):
    archive = _tar_gz(tmp_path / "c.tar.gz", {"cifar-10-batches-py/batches.meta": b"x",
                                              "cifar-10-batches-py/data_batch_1": 2**30})
    assert archive.stat().st_size < 10_000
    with Peak() as peak, pytest.raises(FileTooLargeError, match=r"data_batch_1 in .*c.tar.gz is "
                                                                r"1073741824 bytes"):
        load_cifar(archive)
    assert peak.bytes < 5 * MB


def test_a_real_member_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "MAX_FILE_BYTES", MB)
    _write_cifar10(tmp_path / "c10")
    (tmp_path / "c10" / "test_batch").write_bytes(b"\x00" * (2 * MB))
    with pytest.raises(FileTooLargeError, match="test_batch is 2097152 bytes"):
        load_cifar(tmp_path / "c10", "test")
    archive = _tar_gz(tmp_path / "c.tar.gz", {"batches.meta": b"x", "test_batch": b"\x00" * 2 * MB})
    with pytest.raises(FileTooLargeError, match="test_batch in"):
        load_cifar(archive, "test")


def test_an_archive_that_inflates_without_end_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "MAX_ARCHIVE_BYTES", MB)
    archive = _tar_gz(tmp_path / "c.tar.gz", {"junk": b"\x00" * (2 * MB), "batches.meta": b"x"})
    with pytest.raises(FileTooLargeError, match="c.tar.gz: the archive goes past"):
        load_cifar(archive)
    monkeypatch.setattr(cifar, "MAX_MEMBERS", 5)
    archive = _tar_gz(tmp_path / "d.tar.gz", {f"f{i}": b"" for i in range(10)})
    with pytest.raises(FileTooLargeError, match="5 entries"):
        load_cifar(archive)


def _fuzz(raw, rng, flips):
    data = bytearray(raw)
    for position in rng.integers(0, len(data), flips):
        data[position] ^= 1 << int(rng.integers(8))
    return bytes(data)


def test_bit_flipped_cifar_files_give_only_documented_errors(tmp_path):
    """Random bit flips in the structure of valid batches (both picklings; a flip in the pixels
    is undetectable): the loader returns a dataset or raises CorruptFileError, nothing else."""
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "refused": 0}
    for python2 in (True, False):
        folder = tmp_path / f"c10-{python2}"
        written = _write_cifar10(folder, python2, n=2)
        valid = (folder / "test_batch").read_bytes()
        start = valid.find(written["test_batch"][0].tobytes())   # flips in the pixels are fine:
        structure = valid[:start] + valid[start + 2 * 3072:]     # fuzz the rest
        for _ in range(150):
            fuzzed = _fuzz(structure, rng, int(rng.integers(1, 4)))
            (folder / "test_batch").write_bytes(fuzzed[:start] + valid[start:start + 2 * 3072]
                                                + fuzzed[start:])
            try:
                load_cifar(folder, "test")
                outcomes["ok"] += 1
            except CorruptFileError:
                outcomes["refused"] += 1
        archive = tmp_path / f"c10-{python2}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
        valid = archive.read_bytes()
        for _ in range(50):
            archive.write_bytes(_fuzz(valid, rng, int(rng.integers(1, 4))))
            try:
                load_cifar(archive, "test")
                outcomes["ok"] += 1
            except (CorruptFileError, FileNotFoundError):   # a flipped name: a missing file
                outcomes["refused"] += 1
    assert outcomes["refused"] > 100 and outcomes["ok"] > 10


# ---------------------------------------------------------------- images


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _forged_png(path, width, height):
    """A grey 8-bit PNG whose header says width x height but that holds one row of pixels: the
    file is tiny, the declared image huge."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1)))
                     + _png_chunk(b"IEND", b""))
    return path


def _image_root(tmp_path, files):
    """root/cls/<name> for {name: PIL image or a callable writing the path}."""
    folder = tmp_path / "root" / "cls"
    folder.mkdir(parents=True)
    for name, image in files.items():
        image(folder / name) if callable(image) else image.save(folder / name)
    return tmp_path / "root"


def test_every_image_mode_becomes_the_right_rgb(tmp_path):
    from PIL import Image
    rgb = np.random.default_rng(0).integers(0, 256, (2, 4, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.array([[[0], [90], [255], [7]]] * 2, np.uint8)], axis=2)
    grey16 = np.array([[0, 1000, 32768, 65535], [257, 128, 129, 65407]], np.uint16)
    palette = Image.fromarray(rgb).quantize(4)
    lookup = np.array(palette.getpalette()[:12], np.uint8).reshape(4, 3)
    root = _image_root(tmp_path, {"a_rgba.png": Image.fromarray(rgba),
                                  "b_grey16.png": Image.fromarray(grey16),
                                  "c_palette.png": palette,
                                  "d_grey_alpha.png": Image.fromarray(rgba[..., ::3], "LA")})
    images = load_image_folder(root).images
    np.testing.assert_array_equal(images[0], rgb)                       # alpha dropped
    assert Image.open(root / "cls" / "b_grey16.png").mode.startswith("I")
    expected = [[0, 4, 128, 255], [1, 0, 1, 255]]                       # round(v / 257)
    np.testing.assert_array_equal(images[1], np.repeat(np.array(expected, np.uint8)[..., None],
                                                       3, axis=2))
    np.testing.assert_array_equal(images[2], lookup[np.asarray(palette)])
    np.testing.assert_array_equal(images[3], np.repeat(rgb[..., :1], 3, axis=2))


@pytest.mark.parametrize("side", [12000, 14000])    # Pillow: a warning; its own error beyond
def test_a_huge_image_is_refused_before_decoding(tmp_path, side):
    root = _image_root(tmp_path, {"big.png": lambda p: _forged_png(p, side, side)})
    with Peak() as peak, pytest.raises(FileTooLargeError, match="big.png"):
        load_image_folder(root)
    assert peak.bytes < 5 * MB


def test_the_pixel_limit_is_a_documented_argument(tmp_path):
    from PIL import Image
    root = _image_root(tmp_path, {"a.png": Image.new("RGB", (30, 20))})
    with pytest.raises(FileTooLargeError, match=r"30 x 20 = 600 pixels, more than max_pixels "
                                                r"= 599"):
        load_image_folder(root, max_pixels=599)
    assert load_image_folder(root, max_pixels=600).images.shape == (1, 20, 30, 3)


def test_only_png_and_jpeg_content_is_decoded_whatever_the_name(tmp_path):
    from PIL import Image
    root = _image_root(tmp_path, {"x.png": lambda p: Image.new("RGB", (4, 4)).save(p, "TIFF")})
    with pytest.raises(CorruptFileError, match="cannot read image .*x.png"):
        load_image_folder(root)


def test_a_symbolic_link_loop_is_a_clear_error(tmp_path):
    from PIL import Image
    root = _image_root(tmp_path, {"a.png": Image.new("RGB", (4, 4))})
    (root / "cls" / "loop.png").symlink_to("loop.png")
    with pytest.raises(CorruptFileError, match="loop.png: a symbolic link that loops"):
        load_image_folder(root)
    (root / "cls" / "loop.png").unlink()
    (root / "cycle").symlink_to("cycle")                                # a class folder too
    with pytest.raises(CorruptFileError, match="cycle: a symbolic link that loops"):
        load_image_folder(root)


@pytest.mark.parametrize("name, options", [("a.png", {}), ("a.jpg", {"quality": 90})])
def test_bit_flipped_images_give_only_documented_errors(tmp_path, name, options):
    from PIL import Image
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    root = _image_root(tmp_path, {name: lambda p: Image.fromarray(pixels).save(p, **options)})
    path = root / "cls" / name
    valid, refused = path.read_bytes(), 0
    for _ in range(150):
        path.write_bytes(_fuzz(valid, rng, int(rng.integers(1, 4))))
        try:
            assert load_image_folder(root).images.dtype == np.uint8
        except CorruptFileError:
            refused += 1
    assert refused > 10
