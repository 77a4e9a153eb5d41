"""Your data from the command line: an image folder, a folder with train/ and val/, or CIFAR,
split stratified and seeded; evaluate and resume any run, one made from Python included."""

import os
import pickle

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.data import ImageDataset, synthetic_shapes
from minivgg.data.split import data_kind, load_splits, load_test_set, stratified_split
from minivgg.recipe import RECIPE
from minivgg.train import BEST, Trainer, load_checkpoint

TINY = ["--width", "0.0625", "--fc-width", "8", "--batch-size", "10", "--no-progress",
        "--no-plot", "--epochs", "1"]


def write_folder(root, dataset, sizes=None):
    """dataset as root/<class>/<i>.png; ``sizes`` resizes image i to sizes[i] (mixed sizes)."""
    from PIL import Image
    for i, (image, label) in enumerate(zip(dataset.images, dataset.labels)):
        folder = root / dataset.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image)
        if sizes is not None:
            picture = picture.resize(sizes[i])
        picture.save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def shapes():
    return synthetic_shapes(60, 36, seed=4)


def test_stratified_split_holds_out_each_class_by_the_fraction_seeded(shapes):
    train, val = stratified_split(shapes, 0.2, seed=1)
    assert len(train) + len(val) == len(shapes)
    for label in range(10):
        n = np.sum(shapes.labels == label)
        assert np.sum(val.labels == label) == min(max(round(0.2 * n), 1), n - 1)
    again = stratified_split(shapes, 0.2, seed=1)[1]
    assert np.array_equal(again.images, val.images)
    other = stratified_split(shapes, 0.2, seed=2)[1]
    assert not np.array_equal(other.images, val.images)
    # disjoint: no validation image is also a training image
    train_rows = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in train_rows for image in val.images)
    with pytest.raises(ValueError, match="val_fraction must lie in"):
        stratified_split(shapes, 1.0)


def test_data_kinds_and_a_given_val_folder(shapes, tmp_path):
    write_folder(tmp_path / "plain", shapes)
    assert data_kind(tmp_path / "plain") == "folder"
    given_train, given_val = stratified_split(shapes, 0.3, seed=0)
    write_folder(tmp_path / "split" / "train", given_train)
    write_folder(tmp_path / "split" / "val", given_val)
    assert data_kind(tmp_path / "split") == "split"
    train, val = load_splits(tmp_path / "split", val_fraction=0.5)     # the given val/ wins
    assert (len(train), len(val)) == (len(given_train), len(given_val))
    assert {i.tobytes() for i in val.images} == {i.tobytes() for i in given_val.images}
    assert len(load_test_set(tmp_path / "split")) == len(given_val)
    with pytest.raises(FileNotFoundError, match="data not found"):
        data_kind(tmp_path / "missing")


def test_cifar_folder_is_recognised_and_split(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in [(f"data_batch_{i}", 10) for i in range(1, 6)] + [("test_batch", 10)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [i % 10 for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    assert data_kind(folder) == "cifar"
    train, val = load_splits(folder, 0.2)
    assert len(train) == 40 and len(val) == 10 and train.images.shape[1:] == (32, 32, 3)
    assert len(load_test_set(folder)) == 10


def test_train_on_an_image_folder_of_mixed_sizes_then_evaluate(shapes, tmp_path, capsys):
    sizes = [(30 + i % 20, 28 + i % 15) for i in range(len(shapes))]
    folder = write_folder(tmp_path / "images", shapes, sizes)
    run = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--val-fraction", "0.25", "--run-dir",
                 str(run), *TINY]) == 0
    out = capsys.readouterr().out
    n_val = len(stratified_split(shapes, 0.25)[1])
    assert "data: " + str(folder) in out
    assert f"{60 - n_val} training / {n_val} validation images" in out
    meta = load_checkpoint(run)[1]
    assert meta["settings"]["data"] == str(folder) and meta["augment"]["scale"] == 36
    assert meta["settings"]["classes"] == sorted(shapes.classes)          # folder order
    assert main(["evaluate", str(run)]) == 0
    assert f"{BEST} (epoch 1), {n_val} validation images" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--data", str(folder)]) == 0
    assert "60 " + str(folder) + " images" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress",
                 "--no-plot"]) == 0
    assert load_checkpoint(run)[1]["epoch"] == 2


def test_a_run_made_from_python_can_be_evaluated_and_resumed(shapes, tmp_path, capsys):
    folder = write_folder(tmp_path / "images", shapes)
    train, val = load_splits(folder, 0.25, seed=0)
    recipe = RECIPE.replace(width=1 / 16, fc_width=8, batch_size=10)
    run = tmp_path / "python-run"
    Trainer(recipe.build(train), train, val, recipe=recipe, run_dir=run, progress=False,
            log=None).fit(1)
    assert main(["evaluate", str(run)]) == 2
    assert "records no data" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(folder)]) == 0
    assert "top-1 error" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--data", str(folder), "--epochs", "2",
                 "--no-progress", "--no-plot"]) == 0
    assert load_checkpoint(run)[1]["epoch"] == 2


@pytest.fixture(scope="module")
def folder_run(shapes, tmp_path_factory):
    """(image folder, run folder) of one tiny run on the folder, for tests that only read it."""
    root = tmp_path_factory.mktemp("folder-run")
    folder = write_folder(root / "images", shapes)
    assert main(["train", "--data", str(folder), "--run-dir", str(root / "run"), *TINY]) == 0
    return folder, root / "run"


def test_evaluate_refuses_data_with_other_classes(shapes, folder_run, tmp_path, capsys):
    two = ImageDataset(shapes.images[:4], [0, 1, 0, 1], ["a", "b"])
    other = write_folder(tmp_path / "other", two)
    assert main(["evaluate", str(folder_run[1]), "--data", str(other)]) == 2
    assert "are not the run's" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "RUN", "--scales", "100000"], "at most 256"),
    (["evaluate", "RUN", "--confusion", "/nonexistent/folder/c.png"], "--confusion: folder"),
    (["train", "--data", "/nonexistent/images", *TINY], "--data: data not found"),
])
def test_evaluate_and_data_mistakes_are_messages(folder_run, argv, message, capsys, tmp_path,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(folder_run[1]))
    assert main([str(folder_run[1]) if a == "RUN" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert os.listdir(tmp_path) == [] and sorted(os.listdir(folder_run[1])) == before
