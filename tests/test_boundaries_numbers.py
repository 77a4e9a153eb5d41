"""Numbers at the Python API: a NumPy scalar is a number like any other (what comes out of an
array or a sweep with np.linspace), a bool is not one, and whatever is stored in a checkpoint
is a plain Python value JSON can write."""

import json

import numpy as np
import pytest

from minivgg.data import synthetic_shapes
from minivgg.data.synthetic import synthetic_pairs
from minivgg.recipe import RECIPE
from minivgg.train import Trainer
from minivgg.vgg import build_vgg, vgg_plan

SMALL = dict(num_classes=3, input_size=32, width=1 / 16, fc_width=8)
NUMPY_VALUES = dict(num_classes=np.int32(3), input_size=np.int64(32), in_channels=np.int16(3),
                    width=np.float32(0.0625), fc_width=np.int64(8), dropout=np.float32(0.5),
                    std=np.float32(0.02), classifier_std=np.float32(0.01), seed=np.int64(4),
                    input_std=np.float32(50.0))


@pytest.mark.parametrize("name", NUMPY_VALUES)
def test_build_vgg_takes_numpy_scalars_and_stores_plain_python_numbers(name):
    # before: dropout=np.float32(0.5), width=np.float32, fc_width/num_classes/input_size/
    # in_channels as NumPy ints were refused ("must be a positive int; got np.int64(8)")
    value = NUMPY_VALUES[name]
    model = build_vgg("A", **{**SMALL, "init": "paper", name: value})
    reference = build_vgg("A", **{**SMALL, "init": "paper", name: value.item()})
    assert model.config == reference.config
    assert type(model.config[name]) is type(value.item())
    json.dumps(model.config)                    # a checkpoint's meta: no NumPy type in it
    for key, array in reference.params.items():
        assert np.array_equal(model.params[key], array), key


@pytest.mark.parametrize("name", ["width", "seed", "dropout", "classifier_std", "fc_width"])
def test_a_bool_is_not_a_number_to_build_with(name):
    with pytest.raises(ValueError, match=name):      # width=True and seed=True were taken as 1
        build_vgg("A", **{**SMALL, name: True})


def test_vgg_plan_takes_numpy_sizes_too():
    assert vgg_plan("A", **{**SMALL, "width": np.float64(1 / 16), "fc_width": np.int32(8)}) == \
        vgg_plan("A", **SMALL)


def test_a_network_too_large_to_hold_is_refused_before_allocating():
    # --width 1000 tried to allocate 34 TiB ("Maximum allowed dimension exceeded", or the
    # kernel's OOM killer); the plan's arithmetic refuses it at once
    with pytest.raises(ValueError, match=r"parameters .*over the 16 GiB limit"):
        build_vgg("A", num_classes=10, input_size=32, width=1000.0, fc_width=8)
    assert len(vgg_plan("A", num_classes=10, input_size=32, width=1000.0, fc_width=8)) > 0


def test_fit_takes_a_numpy_epoch_count(tmp_path):
    train = synthetic_shapes(20, 34, seed=1)
    recipe = RECIPE.replace(width=1 / 16, fc_width=8, batch_size=10)
    trainer = Trainer(recipe.build(train), train, train, recipe=recipe, progress=False, log=None)
    assert trainer.fit(np.int64(0)) is trainer.history      # was "epochs must be an int >= 0"
    with pytest.raises(ValueError, match="epochs must be an int"):
        trainer.fit(True)


@pytest.mark.parametrize("make, smallest", [(synthetic_shapes, 4), (synthetic_pairs, 16)])
def test_built_in_data_sizes_are_checked_before_allocating(make, smallest):
    assert len(make(np.int64(2), np.int32(smallest))) == 2
    for n, size, says in ((10**12, 36, "over the 8 GiB limit"), (2, float(smallest), "size"),
                          (True, smallest, "n"), (-1, smallest, "n")):
        with pytest.raises(ValueError, match=says):   # 10**12 was a MemoryError (7 TiB)
            make(n, size)


def test_localise_run_takes_numpy_numbers_and_refuses_bad_ones_before_any_work(tmp_path):
    from test_boundaries_checkpoints import make_run

    from minivgg.localise.run import load_localisation_run, localise_run
    run = make_run(tmp_path / "run")
    for bad, says in ((dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"),  # was
                      (dict(seed=-1), "seed"), (dict(lr=float("nan")), "lr")):   # 1/0 error
        with pytest.raises(ValueError, match=says):
            localise_run(run, out_dir=tmp_path / "bad", log=None, **bad)
        assert not (tmp_path / "bad").exists()
    # np.int64 epochs: TypeError "int64 is not JSON serializable" after the first epoch
    out = localise_run(run, epochs=np.int64(1), lr=np.float32(1e-3), batch_size=np.int64(10),
                       seed=np.int64(2), layout="centred", out_dir=tmp_path / "loc", log=None)
    meta = load_localisation_run(out)[3]
    assert (meta["epochs"], meta["batch_size"], meta["seed"]) == (1, 10, 2)


def test_a_linear_classifier_gives_no_score_from_non_finite_numbers():
    from minivgg.features import LinearClassifier
    X = np.random.default_rng(0).standard_normal((12, 4))
    y = np.arange(12) % 3
    fitted = LinearClassifier(steps=5).fit(X, y)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="inf or NaN"):       # predicted a class for it
        fitted.predict(X)
    with pytest.raises(FloatingPointError, match="lr 1e\\+30 is too large"):   # diverged to NaN
        LinearClassifier(steps=20, lr=1e30).fit(np.nan_to_num(X) * 1e10, y)  # weights, all 0
    for bad in (dict(reg=float("nan")), dict(steps=0), dict(lr=0), dict(momentum=1.0)):
        with pytest.raises(ValueError, match=f"LinearClassifier: {next(iter(bad))}"):
            LinearClassifier(**bad)


@pytest.mark.parametrize("mean", [[np.nan, 0, 0], [0, 0], [[1, 2, 3]]])
def test_a_mean_that_is_not_three_finite_numbers_is_refused(mean):
    from minivgg.evaluate import posteriors
    from minivgg.features import extract_features
    model = build_vgg("A", **SMALL)
    images = np.zeros((2, 32, 32, 3), np.uint8)
    for use in (extract_features, posteriors):       # NaN features and posteriors, silently
        with pytest.raises(ValueError, match="mean must be 3 finite numbers"):
            use(model, images, mean=mean)


@pytest.mark.parametrize("settings", [{"n": np.int64(3)}, {"tags": {"a"}}, {"x": float("nan")}])
def test_trainer_settings_that_json_cannot_hold_are_refused_at_once(settings, tmp_path):
    train = synthetic_shapes(20, 34, seed=1)
    recipe = RECIPE.replace(width=1 / 16, fc_width=8, batch_size=10)
    with pytest.raises(ValueError, match="settings must be a dict of JSON values"):
        Trainer(recipe.build(train), train, train, recipe=recipe, run_dir=tmp_path / "run",
                settings=settings, progress=False, log=None)   # failed in the first save
    assert not (tmp_path / "run").exists()


def test_a_dataset_takes_whole_labels_and_uint8_images_only():
    from minivgg.data import ImageDataset
    images = np.zeros((2, 8, 8, 3), np.uint8)
    assert ImageDataset(images, np.array([0.0, 1.0]), ("a", "b")).labels.tolist() == [0, 1]
    for labels in ([0.5, 1.7], [True, False]):        # 0.5, 1.7 were truncated to 0, 1
        with pytest.raises(ValueError, match="labels must be integers"):
            ImageDataset(images, labels, ("a", "b"))
    for bad in (np.full((2, 8, 8, 3), np.nan), np.full((2, 8, 8, 3), 300, np.int16)):
        with pytest.raises(ValueError, match="images must be uint8"):   # were kept as given
            ImageDataset(bad, [0, 1], ("a", "b"))
    assert len(ImageDataset(images[:0], [], ("a",))) == 0


def test_one_class_is_no_classification_task(tmp_path, capsys):
    from PIL import Image

    from minivgg.cli import main
    from minivgg.data import ImageDataset
    (tmp_path / "data" / "cat").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((36, 36, 3), 40 * i, np.uint8)).save(
            tmp_path / "data" / "cat" / f"{i}.png")
    assert main(["train", "--data", str(tmp_path / "data"), "--run-dir", str(tmp_path / "run"),
                 "--width", "0.0625", "--fc-width", "8", "--no-progress", "--no-plot"]) == 2
    # it trained to "validation top-1 error 0.0% (accuracy 100.0%)"
    assert "a classifier needs 2 or more" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    pixels = np.random.default_rng(0).integers(0, 256, (4, 34, 34, 3), dtype=np.uint8)
    one = ImageDataset(pixels, [0] * 4, ("cat",))
    recipe = RECIPE.replace(width=1 / 16, fc_width=8)
    with pytest.raises(ValueError, match="train_set has 1 class"):
        Trainer(recipe.build(one), one, one, recipe=recipe)
