"""Hostile and broken files: each is a clear CorruptFileError (or FileTooLargeError) naming the
file, in bounded memory (measured with tracemalloc), never a traceback from deep inside a
library, a hang or a huge allocation. Every hostile file is made here, small."""

import gzip
import io
import json
import pickle
import struct
import tarfile
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from test_data import _dump, _rows, _write_cifar10

from minivgg.data import cifar, load_cifar, load_image_folder
from minivgg.data.plainpickle import load_plain
from minivgg.errors import CorruptFileError, FileTooLargeError
from minivgg.io import (
    load_model,
    load_torchvision_state_dict,
    param_shapes,
    save_model,
    to_torchvision_state_dict,
)
from minivgg.train import model_from_checkpoint, save_checkpoint
from minivgg.vgg import build_vgg

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


def _png16(path, pixels):
    """An RGB PNG of 16 bits per channel (Pillow cannot write one): pixels (H, W, 3) uint16."""
    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b""))


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
                                  "d_grey_alpha.png": Image.fromarray(rgba[..., ::3], "LA"),
                                  "e_rgb16.png": lambda p: _png16(p, np.repeat(grey16[..., None],
                                                                               3, axis=2))})
    images = load_image_folder(root).images
    np.testing.assert_array_equal(images[0], rgb)                       # alpha dropped
    assert Image.open(root / "cls" / "b_grey16.png").mode.startswith("I")
    expected = [[0, 3, 128, 255], [1, 0, 0, 255]]                       # the high byte
    np.testing.assert_array_equal(images[1], np.repeat(np.array(expected, np.uint8)[..., None],
                                                       3, axis=2))
    np.testing.assert_array_equal(images[4], images[1])     # the same values saved as 16-bit RGB
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


# ---------------------------------------------------------------- checkpoints and model files

SMALL = dict(num_classes=3, input_size=32, width=1 / 16, fc_width=8)


@pytest.fixture
def model_file(tmp_path):
    model = build_vgg("A", seed=1, **SMALL)
    save_model(model, tmp_path / "m.npz")
    return tmp_path / "m.npz", model


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _breakages(path, model):
    """{what: a broken version of the model file at ``path``, written next to it}."""
    valid, config = path.read_bytes(), json.dumps(model.config)
    params = dict(model.params)
    nan = {**params, "fc8.bias": np.full(3, np.nan, np.float32)}
    inf = {**params, "conv1_1.weight": params["conv1_1.weight"] * np.float32(np.inf)}
    complex_ = {**params, "fc8.bias": params["fc8.bias"] + 1j}
    folder = path.parent
    broken = {
        "empty": b"", "truncated": valid[:len(valid) // 2], "tail cut": valid[:-10],
        "not a zip": b"PK\x03\x04" + b"\x00" * 100,
    }
    for name, raw in broken.items():
        (folder / f"{name}.npz").write_bytes(raw)
    made = {name: folder / f"{name}.npz" for name in broken}
    made["bad json"] = _npz(folder / "j.npz", __config__=np.array("{not json"), **params)
    made["deep json"] = _npz(folder / "d.npz", __config__=np.array("[" * 100000), **params)
    made["json list"] = _npz(folder / "l.npz", __config__=np.array("[1]"), **params)
    made["unknown key"] = _npz(folder / "u.npz", __config__=np.array(json.dumps(
        {**model.config, "evil": 1})), **params)
    made["nan"] = _npz(folder / "n.npz", __config__=np.array(config), **nan)
    made["inf"] = _npz(folder / "i.npz", __config__=np.array(config), **inf)
    made["complex"] = _npz(folder / "c.npz", __config__=np.array(config), **complex_)
    made["compressed"] = folder / "z.npz"
    np.savez_compressed(made["compressed"], __config__=np.array(config), **params)
    return made


def test_every_broken_model_file_is_one_clear_error(model_file):
    path, model = model_file
    for broken in _breakages(path, model).values():
        with pytest.raises(CorruptFileError, match=rf"corrupted model file: .*{broken.name}"):
            load_model(broken)
    np.testing.assert_array_equal(load_model(path).params["fc8.bias"], model.params["fc8.bias"])


def test_a_small_file_naming_a_huge_network_is_refused_before_building(tmp_path):
    model = build_vgg("A", seed=1, **SMALL)
    claim = {**build_vgg("E", init=None, input_size=32, width=1 / 64, fc_width=2).config,
             "input_size": 224, "width": 1.0, "fc_width": 4096, "num_classes": 1000}
    path = _npz(tmp_path / "e.npz", __config__=np.array(json.dumps(claim)), **model.params)
    assert path.stat().st_size < 200_000
    with Peak() as peak, pytest.raises(CorruptFileError, match=r"do not fit the configuration "
                                                               r"it names: conv1_1.weight"):
        load_model(path)
    assert peak.bytes < 5 * MB                     # VGG-19's weights and gradients: 1.1 GB


def test_an_array_header_that_lies_about_its_size_allocates_nothing(model_file):
    """A valid zip (right CRCs) whose fc8.bias.npy header declares a terabyte: refused from the
    header, before NumPy would allocate the array it declares."""
    path, model = model_file
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = b"'shape': (3,), }" + b" " * 12          # fc8.bias's, and the header's padding
    lie = b"'shape': (%d,), }" % 2**40
    members["fc8.bias.npy"] = members["fc8.bias.npy"].replace(header, lie.ljust(len(header)))
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with Peak() as peak, pytest.raises(CorruptFileError, match=r"'fc8.bias' declares shape "
                                                               r"\(1099511627776,\)"):
        load_model(path)
    assert peak.bytes < 5 * MB


def test_bit_flipped_model_files_give_only_documented_errors(model_file):
    path, model = model_file
    valid, rng, refused = path.read_bytes(), np.random.default_rng(3), 0
    for _ in range(200):
        path.write_bytes(_fuzz(valid, rng, int(rng.integers(1, 4))))
        try:
            loaded = load_model(path)
            assert loaded.config == model.config        # a flip in unused zip fields
        except CorruptFileError:
            refused += 1
    assert refused > 150                                # the zip's CRC sees the data


def _checkpoint(path, model, **meta_changes):
    meta = {"epoch": 1, "model_config": model.config, "optimizer": {}, "schedule": {},
            "batch_size": 2, "augment": {}, "rng": {}, "dropout_rngs": {}, "history": [],
            "settings": {}, **meta_changes}
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    save_checkpoint(path, {**arrays, "mean": np.zeros(3)}, {k: v for k, v in meta.items()
                                                            if v is not None})
    return path


def test_every_broken_checkpoint_is_one_clear_error(tmp_path):
    model = build_vgg("A", seed=1, **SMALL)
    good = _checkpoint(tmp_path / "good.npz", model)
    assert model_from_checkpoint(good)[0].config == model.config
    valid = good.read_bytes()
    cases = {"empty": b"", "truncated": valid[:len(valid) // 3],
             "flipped": valid[:200] + bytes([valid[200] ^ 4]) + valid[201:]}
    for name, raw in cases.items():
        (tmp_path / f"{name}.npz").write_bytes(raw)
    _checkpoint(tmp_path / "no-optimizer.npz", model, optimizer=None)
    _checkpoint(tmp_path / "bad-epoch.npz", model, epoch="three")
    np.savez(tmp_path / "bad-json.npz", meta=np.array('{"epoch": 1,'))
    np.savez(tmp_path / "no-meta.npz", x=np.zeros(2))
    with np.load(good) as data:
        np.savez(tmp_path / "no-mean.npz", **{k: data[k] for k in data.files if k != "mean"})
    claim = {**model.config, "config": "E", "input_size": 224, "width": 1.0}
    _checkpoint(tmp_path / "huge-claim.npz", model, model_config=claim)
    for path in sorted(tmp_path.glob("*.npz")):
        if path.name == "good.npz":
            continue
        with Peak() as peak, pytest.raises(CorruptFileError, match=rf"corrupted checkpoint: "
                                                                   rf".*{path.name}"):
            model_from_checkpoint(path)
        assert peak.bytes < 5 * MB, path.name


def test_the_cli_says_corrupted_checkpoint_without_a_traceback(tmp_path, capsys):
    from minivgg.cli import main
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"PK\x03\x04 truncated")
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minivgg evaluate: error: corrupted checkpoint: ")
    assert "Traceback" not in err


def test_torchvision_weights_that_are_not_finite_real_numbers_are_refused():
    model = build_vgg("A", **SMALL)
    state = to_torchvision_state_dict(model)
    for bad in (np.full_like(state["features.0.bias"], np.nan),
                state["features.0.bias"] + 1j):
        with pytest.raises(ValueError, match=r"features.0.bias \(conv1_1.bias\) .*finite real"):
            load_torchvision_state_dict(model, {**state, "features.0.bias": bad})


@pytest.mark.parametrize("config, settings", [
    ("A", dict(input_size=32, width=1 / 16)), ("A-LRN", dict(input_size=64, width=0.1)),
    ("B", dict(input_size=32, width=0.3, in_channels=1)), ("C", dict(input_size=32, width=1 / 8)),
    ("D", dict(input_size=96, width=1 / 32, input_std=[50.0, 60.0, 70.0])),
    ("E", dict(input_size=32, width=1 / 64, fc_width=5, num_classes=7))])
def test_the_shapes_a_file_is_checked_against_are_what_build_vgg_makes(config, settings):
    """param_shapes (arithmetic, no arrays) and the built network agree, so the check that
    protects load_model cannot drift from the builder."""
    model = build_vgg(config, init=None, **{"fc_width": 8, **settings})
    assert param_shapes(model.config) == {k: v.shape for k, v in model.params.items()}
    assert list(param_shapes(model.config)) == list(model.params)


def test_loading_cifar_takes_about_twice_the_files_in_memory(tmp_path):
    """The documented bound for valid files: the files' bytes once, the images once."""
    _write_cifar10(tmp_path / "c10", n=400)
    files = sum(f.stat().st_size for f in (tmp_path / "c10").iterdir() if "data" in f.name)
    with Peak() as peak:
        train = load_cifar(tmp_path / "c10")
    assert train.images.nbytes == 5 * 400 * 3072
    assert peak.bytes < 2.3 * files
