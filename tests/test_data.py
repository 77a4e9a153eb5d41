"""The data layer: ImageDataset, the synthetic dataset, training-set statistics and the loaders.

Expected values are built in the tests from first principles (known pixels written in the real
file formats, covariances of hand-made pixel sets), never by calling the code under test.
"""

import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from minivgg.data import (
    ImageDataset,
    load_cifar,
    load_image_folder,
    mean_rgb,
    rgb_pca,
    synthetic_shapes,
    synthetic_splits,
)
from minivgg.data import stats as stats_module

# ---------------------------------------------------------------- ImageDataset


def test_subset_keeps_images_with_their_labels():
    images = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 2, 2, 3), np.uint8)
    data = ImageDataset(images, [0, 1, 2, 1, 0], ("a", "b", "c"))
    part = data.subset([3, 0])
    assert len(part) == 2 and part.classes == ("a", "b", "c")
    assert part.images[:, 0, 0, 0].tolist() == [3, 0]
    assert part.labels.tolist() == [1, 0] and part.labels.dtype == np.int64
    mask = data.subset(data.labels == 1)
    assert mask.images[:, 0, 0, 0].tolist() == [1, 3]


def test_subset_of_a_list_of_images():
    images = [np.full((h, 4, 3), h, np.uint8) for h in (2, 3, 5)]
    part = ImageDataset(images, [0, 1, 1], ("x", "y")).subset([2, 0])
    assert [im.shape[0] for im in part.images] == [5, 2] and part.labels.tolist() == [1, 0]


def test_dataset_rejects_mismatched_or_out_of_range_labels():
    images = np.zeros((3, 2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="labels must have shape"):
        ImageDataset(images, [0, 1], ("a", "b"))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ImageDataset(images, [0, 1, 2], ("a", "b"))


# ---------------------------------------------------------------- synthetic dataset


def test_synthetic_is_deterministic_from_the_seed():
    a, b = synthetic_shapes(300, seed=7), synthetic_shapes(300, seed=7)
    assert a.images.tobytes() == b.images.tobytes()
    assert np.array_equal(a.labels, b.labels)
    c = synthetic_shapes(300, seed=8)
    # Another seed: new labels and new pictures, not a shuffle of the same ones.
    assert not np.array_equal(a.labels, c.labels)
    assert np.mean(a.images == c.images) < 0.1


@pytest.mark.parametrize("size", [16, 32, 57])
def test_synthetic_shapes_dtypes_and_any_size(size):
    data = synthetic_shapes(40, size=size, seed=1)
    assert data.images.shape == (40, size, size, 3) and data.images.dtype == np.uint8
    assert data.images.flags.c_contiguous
    assert data.labels.shape == (40,) and data.labels.dtype == np.int64
    assert len(data.classes) == 10 and len(set(data.classes)) == 10
    assert data.images.std() > 30              # not blank: colours spread over 0..255


@pytest.mark.parametrize("n", [1000, 1003])
def test_synthetic_classes_are_balanced(n):
    counts = np.bincount(synthetic_shapes(n, size=8, seed=2).labels, minlength=10)
    assert counts.min() == n // 10 and counts.max() == -(-n // 10)


def test_splits_never_share_an_image_and_are_reproducible():
    train, val = synthetic_splits(500, 200, seed=3)
    assert len(train) == 500 and len(val) == 200
    assert not {im.tobytes() for im in train.images} & {im.tobytes() for im in val.images}
    again, _ = synthetic_splits(500, 200, seed=3)
    assert train.images.tobytes() == again.images.tobytes()


def _mean_colour_accuracy(train, test):
    """Accuracy of the nearest class-mean classifier on each image's mean RGB."""
    feature = [d.images.reshape(len(d), -1, 3).mean(axis=1) for d in (train, test)]
    centroids = np.stack([feature[0][train.labels == k].mean(axis=0) for k in range(10)])
    distance = ((feature[1][:, None, :] - centroids) ** 2).sum(axis=2)
    return np.mean(distance.argmin(axis=1) == test.labels)


def test_colour_carries_no_class_information():
    train, test = synthetic_splits(2000, 2000, size=16, seed=4)
    # A leak this test must catch: brighten each class by a different amount.
    leaky = [ImageDataset(np.clip(d.images + 20 * d.labels[:, None, None, None], 0, 255)
                          .astype(np.uint8), d.labels, d.classes) for d in (train, test)]
    assert _mean_colour_accuracy(*leaky) > 0.2
    assert _mean_colour_accuracy(train, test) < 0.15          # chance is 0.10
    # Each class's mean colour is the overall mean give or take sampling error: within 4.5
    # standard errors (of the mean of that many images' colours) in every channel.
    colour = train.images.reshape(len(train), -1, 3).mean(axis=1)          # (N, 3)
    for k in range(10):
        own = colour[train.labels == k]
        standard_error = colour.std(axis=0) / np.sqrt(len(own))
        assert np.all(np.abs(own.mean(axis=0) - colour.mean(axis=0)) < 4.5 * standard_error)


def test_linear_classifier_on_pixels_does_poorly():
    """Ridge regression on raw pixels (one-hot targets), in its dual form because there are
    fewer images than pixels: W = X^T (X X^T + lam I)^-1 Y."""
    train, test = synthetic_splits(1500, 1000, seed=5)
    X, Xt = (d.images.reshape(len(d), -1) / 255.0 for d in (train, test))
    mu = X.mean(axis=0)
    X, Xt = X - mu, Xt - mu
    Y = np.eye(10)[train.labels]
    gram = X @ X.T
    for lam in (10.0, 300.0):
        coef = np.linalg.solve(gram + lam * np.eye(len(X)), Y)
        accuracy = np.mean(np.argmax(Xt @ (X.T @ coef), axis=1) == test.labels)
        assert accuracy < 0.35, (lam, accuracy)                 # chance is 0.10


def test_noise_knob_adds_noise_of_that_std_to_the_same_pictures():
    # The noise is drawn after each chunk's geometry whatever its std, so the two share it.
    clean = synthetic_shapes(200, seed=6, noise=0.0).images.astype(float)
    noisy = synthetic_shapes(200, seed=6, noise=20.0).images.astype(float)
    inside = (clean > 40) & (clean < 215)                  # where clipping cannot bite
    assert np.std((noisy - clean)[inside]) == pytest.approx(20.0, rel=0.05)


def test_clutter_knob_adds_distractors():
    def colours_per_image(clutter):
        images = synthetic_shapes(200, seed=9, noise=0.0, clutter=clutter).images
        return np.mean([len(np.unique(im.reshape(-1, 3), axis=0)) for im in images])
    assert colours_per_image(6.0) > 1.5 * colours_per_image(0.0)


def test_synthetic_generation_is_fast():
    # CPU time of this process, not wall time: other processes may share the machine.
    start = time.process_time()
    synthetic_shapes(2000)
    assert time.process_time() - start < 1.0                   # 10000 images in < 5 s


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        synthetic_shapes(10, size=2)
    with pytest.raises(ValueError, match="noise"):
        synthetic_shapes(10, noise=-1)


# ---------------------------------------------------------------- statistics


def test_mean_rgb_is_the_mean_over_all_pixels():
    images = np.zeros((2, 2, 2, 3), np.uint8)
    images[0] = (10, 20, 30)
    images[1, 0] = (100, 100, 100)                            # half of image 1; rest black
    expected = [(4 * 10 + 2 * 100) / 8, (4 * 20 + 2 * 100) / 8, (4 * 30 + 2 * 100) / 8]
    assert np.allclose(mean_rgb(images), expected)
    assert np.allclose(mean_rgb(ImageDataset(images, [0, 0], ("a",))), expected)


def test_mean_rgb_weighs_images_of_different_sizes_by_pixels():
    images = [np.full((1, 1, 3), (255, 0, 0), np.uint8), np.zeros((1, 3, 3), np.uint8)]
    assert np.allclose(mean_rgb(images), [255 / 4, 0, 0])


def test_statistics_do_not_depend_on_the_chunking(monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (50, 5, 7, 3), dtype=np.uint8)
    whole_mean, (whole_vals, whole_vecs) = mean_rgb(images), rgb_pca(images)
    monkeypatch.setattr(stats_module, "_CHUNK_PIXELS", 80)         # 2 images per pass
    assert np.allclose(mean_rgb(images), whole_mean)
    assert np.allclose(mean_rgb(images), images.reshape(-1, 3).mean(axis=0))
    vals, vecs = rgb_pca(images)
    assert np.allclose(vals, whole_vals)
    assert np.allclose(np.abs(vecs.T @ whole_vecs), np.eye(3), atol=1e-6)


def test_rgb_pca_of_grey_pixels_is_one_component_along_grey():
    # Half the pixels are grey level 51, half 204: in [0, 1] units the values are 0.2 and 0.8,
    # each channel has variance 0.3^2 (times n / (n - 1), unbiased), channels fully correlated,
    # so cov = v * ones(3, 3): one eigenvalue 3 v along (1, 1, 1) / sqrt(3), two zero.
    images = np.empty((2, 4, 4, 3), np.uint8)
    images[0], images[1] = 51, 204
    n = 32
    v = 0.3**2 * n / (n - 1)
    eigvals, eigvecs = rgb_pca(images)
    assert np.allclose(eigvals, [3 * v, 0, 0], atol=1e-12)
    assert np.allclose(np.abs(eigvecs[:, 0]), 1 / np.sqrt(3))
    assert np.allclose(eigvecs.T @ eigvecs, np.eye(3))


def test_rgb_pca_orders_components_largest_first():
    rng = np.random.default_rng(1)
    pixels = np.stack([rng.integers(0, 256, 4000), rng.integers(100, 156, 4000),
                       rng.integers(120, 136, 4000)], axis=1).astype(np.uint8)
    eigvals, eigvecs = rgb_pca(pixels.reshape(40, 10, 10, 3))
    assert eigvals[0] > eigvals[1] > eigvals[2] > 0
    # Independent channels: the components are the axes, red (widest) first.
    assert np.allclose(np.abs(eigvecs), np.eye(3), atol=0.05)
    assert eigvals[0] == pytest.approx(np.var(pixels[:, 0] / 255.0, ddof=1), rel=0.02)


# ---------------------------------------------------------------- CIFAR files


def _rows(n, seed):
    """n CIFAR rows (3072 bytes: R plane, G plane, B plane of 32x32) of random bytes."""
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


class _Python2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle wrote CIFAR's official files: every str (dict
    keys, class names, an array's raw data) as a byte string (BINSTRING), and NumPy's
    rebuilding functions under their old module name numpy.core."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_byte_string(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = _save_byte_string


def _dump(path, content, python2=True):
    """Pickle ``content`` to ``path`` as CIFAR's own files are (python2) or as a Python 3
    re-pickle would be (str keys, the newest protocol: arrays rebuilt by _frombuffer)."""
    buffer = io.BytesIO()
    if python2:
        _Python2Pickler(buffer, protocol=2).dump(content)
        raw = buffer.getvalue().replace(b"numpy._core.", b"numpy.core.")
    else:
        pickle.dump(content, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        raw = buffer.getvalue()
    path.write_bytes(raw)


def _write_cifar10(folder, python2=True, n=3):
    """A cifar-10-batches-py folder with n images per batch; returns {file: (rows, labels)}."""
    folder.mkdir()
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        rows, labels = _rows(n, i), [(i + j) % 10 for j in range(n)]
        _dump(folder / name, {"batch_label": f"batch {i}", "data": rows, "labels": labels,
                              "filenames": [f"{name}_{j}.png" for j in range(n)]}, python2)
        written[name] = rows, labels
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    _dump(folder / "batches.meta", {"label_names": names, "num_vis": 3072}, python2)
    return written


def _pixel(rows, n, y, x, c):
    return rows[n, c * 1024 + y * 32 + x]


@pytest.mark.parametrize("python2", [True, False])
def test_load_cifar10_folder_reads_planes_in_rgb_order(tmp_path, python2):
    written = _write_cifar10(tmp_path / "cifar-10-batches-py", python2)
    train = load_cifar(tmp_path / "cifar-10-batches-py")
    assert train.images.shape == (15, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.classes[0] == "airplane" and train.classes[9] == "truck"
    assert train.labels.tolist() == sum((written[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    rows = written["data_batch_2"][0]                  # images 3..5 of the training set
    for y, x, c in [(0, 0, 0), (0, 1, 0), (1, 0, 1), (31, 30, 2), (17, 5, 1)]:
        assert train.images[3 + 1, y, x, c] == _pixel(rows, 1, y, x, c)
    test = load_cifar(tmp_path / "cifar-10-batches-py", "test")
    assert len(test) == 3 and test.labels.tolist() == written["test_batch"][1]
    assert test.images[2, 9, 4, 2] == _pixel(written["test_batch"][0], 2, 9, 4, 2)


def test_load_cifar10_from_the_tar_gz_without_extracting(tmp_path):
    written = _write_cifar10(tmp_path / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    before = set(os.listdir(tmp_path))
    test = load_cifar(archive, "test")
    assert set(os.listdir(tmp_path)) == before                # nothing extracted
    assert test.images[1, 3, 7, 0] == _pixel(written["test_batch"][0], 1, 3, 7, 0)
    assert len(load_cifar(archive)) == 15


def test_load_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rows = _rows(4, 0)
    _dump(folder / "train", {"data": rows, "fine_labels": [0, 99, 5, 42],
                             "coarse_labels": [0, 19, 3, 7]})
    _dump(folder / "test", {"data": rows[:2], "fine_labels": [1, 2],
                            "coarse_labels": [1, 2]})
    _dump(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                            "coarse_label_names": [f"c{i}" for i in range(20)]})
    fine = load_cifar(folder)
    assert fine.labels.tolist() == [0, 99, 5, 42] and len(fine.classes) == 100
    assert fine.classes[99] == "f99"
    assert fine.images[3, 31, 0, 1] == _pixel(rows, 3, 31, 0, 1)
    coarse = load_cifar(folder, "train", labels="coarse")
    assert coarse.labels.tolist() == [0, 19, 3, 7] and coarse.classes[19] == "c19"
    assert load_cifar(folder, "test").labels.tolist() == [1, 2]


def test_load_cifar_names_a_missing_batch(tmp_path):
    _write_cifar10(tmp_path / "c10")
    (tmp_path / "c10" / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        load_cifar(tmp_path / "c10")
    assert len(load_cifar(tmp_path / "c10", "test")) == 3    # the test split is whole
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_cifar(tmp_path / "nowhere")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not a dict", "short rows"])
def test_load_cifar_names_a_broken_batch(tmp_path, damage):
    _write_cifar10(tmp_path / "c10")
    broken = tmp_path / "c10" / "data_batch_3"
    if damage == "truncated":
        broken.write_bytes(broken.read_bytes()[:500])
    elif damage == "garbage":
        broken.write_bytes(np.random.default_rng(0).bytes(4000))
    elif damage == "not a dict":
        broken.write_bytes(pickle.dumps([1, 2, 3]))
    else:
        _dump(broken, {"data": _rows(3, 0)[:, :3000], "labels": [0, 1, 2]})
    with pytest.raises(ValueError, match="data_batch_3"):
        load_cifar(tmp_path / "c10")


class _Payload:
    """Unpickling this would run os.mkdir(path): what a hostile 'dataset' file could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_load_cifar_refuses_pickles_that_run_code(tmp_path):
    _write_cifar10(tmp_path / "c10")
    marker = tmp_path / "pwned"
    (tmp_path / "c10" / "test_batch").write_bytes(pickle.dumps(
        {"data": _rows(1, 0), "labels": [0], "x": _Payload(str(marker))}))
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar(tmp_path / "c10", "test")
    assert not marker.exists()


def test_load_cifar_rejects_a_folder_or_archive_that_is_not_cifar(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_cifar(tmp_path / "empty")
    (tmp_path / "fake.tar.gz").write_bytes(b"not a tar file at all" * 10)
    with pytest.raises(ValueError, match="fake.tar.gz"):
        load_cifar(tmp_path / "fake.tar.gz")


# ---------------------------------------------------------------- image folders


def _save(array, path, **options):
    from PIL import Image
    Image.fromarray(array).save(path, **options)


@pytest.fixture
def image_folder(tmp_path):
    """root/cat: a.png (RGB), b.png (greyscale), notes.txt; root/dog: c.jpg; all 6x8."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    smooth = np.broadcast_to(np.linspace(0, 250, 8, dtype=np.uint8)[None, :, None], (6, 8, 3))
    _save(rgb, root / "cat" / "a.png")
    _save(grey, root / "cat" / "b.png")
    _save(np.ascontiguousarray(smooth), root / "dog" / "c.jpg", quality=95)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root, rgb, grey, smooth


def test_load_image_folder_reads_png_and_jpeg_as_rgb(image_folder):
    root, rgb, grey, smooth = image_folder
    data = load_image_folder(root)
    assert data.classes == ("cat", "dog") and data.labels.tolist() == [0, 0, 1]
    assert isinstance(data.images, np.ndarray) and data.images.shape == (3, 6, 8, 3)
    assert np.array_equal(data.images[0], rgb)                         # PNG is lossless
    assert np.array_equal(data.images[1], np.repeat(grey[..., None], 3, axis=2))
    assert np.abs(data.images[2].astype(int) - smooth).mean() < 4      # JPEG is close


def test_load_image_folder_keeps_mixed_sizes_as_a_list(image_folder):
    root = image_folder[0]
    _save(np.zeros((10, 3, 3), np.uint8), root / "dog" / "d.png")
    data = load_image_folder(root)
    assert isinstance(data.images, list)
    assert [im.shape for im in data.images] == [(6, 8, 3), (6, 8, 3), (6, 8, 3), (10, 3, 3)]


def test_load_image_folder_names_a_broken_image(image_folder):
    root = image_folder[0]
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ValueError, match="broken.png"):
        load_image_folder(root)


def test_load_image_folder_rejects_empty_and_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "root").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path / "root")
    (tmp_path / "root" / "owl").mkdir()
    (tmp_path / "root" / "owl" / "readme.md").write_text("x")
    with pytest.raises(ValueError, match="owl"):
        load_image_folder(tmp_path / "root")


def test_load_image_folder_without_pillow_says_what_to_install(image_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)              # makes `import PIL` fail
    with pytest.raises(ImportError, match=r"pip install minivgg\[plot\]"):
        load_image_folder(image_folder[0])


def test_pillow_is_not_imported_by_the_data_package():
    code = "import sys, minivgg.data; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
