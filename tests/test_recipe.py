"""The recipe is the single source of the training defaults: the CLI's options, build_vgg's and
the Trainer's defaults all come from RECIPE, a checkpoint stores it, and bad values are errors
naming the field."""

import dataclasses
import inspect

import numpy as np
import pytest

from minivgg.cli import build_parser, main
from minivgg.cli.train import RECIPE_OPTIONS, recipe_from_args
from minivgg.data import synthetic_splits
from minivgg.optim import ReduceOnPlateau
from minivgg.recipe import RECIPE, Recipe
from minivgg.train import Trainer, load_checkpoint, stored_recipe
from minivgg.vgg import build_vgg


@pytest.fixture(scope="module")
def data():
    return synthetic_splits(24, 10, size=36, seed=1)


def _train_parser():
    return build_parser()._subparsers._group_actions[0].choices["train"]


def test_the_cli_without_options_trains_exactly_the_recipe():
    args = build_parser().parse_args(["train"])
    assert recipe_from_args(args) == RECIPE
    assert set(RECIPE_OPTIONS) == {f.name for f in dataclasses.fields(Recipe)}


def test_train_help_prints_every_recipe_value():
    text = " ".join(_train_parser().format_help().split())
    for name in RECIPE_OPTIONS:
        value = getattr(RECIPE, name)
        if isinstance(value, bool):
            assert f"--no-{name}" in text
            continue
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert f"(default: {shown})" in text, name
    assert "(default: True)" not in text and "(default: False)" not in text


def test_build_vgg_defaults_are_the_recipe():
    signature = inspect.signature(build_vgg).parameters
    for name in ("init", "classifier_std", "dropout"):
        assert signature[name].default == getattr(RECIPE, name), name


def test_fc8_starts_from_the_classifier_std_and_the_rest_from_the_scheme():
    model = build_vgg("A", num_classes=10, input_size=32, width=0.25, fc_width=256)
    fc8 = model.params["fc8.weight"]
    assert abs(fc8.std() / RECIPE.classifier_std - 1) < 5 / np.sqrt(2 * fc8.size)
    fc7 = model.params["fc7.weight"]
    assert abs(fc7.std() / np.sqrt(2 / 256) - 1) < 5 / np.sqrt(2 * fc7.size)     # He
    same = build_vgg("A", num_classes=10, input_size=32, width=0.25, fc_width=256,
                     classifier_std=None).params["fc8.weight"]
    assert abs(same.std() / np.sqrt(2 / 256) - 1) < 5 / np.sqrt(2 * same.size)


def test_the_trainer_defaults_are_the_recipe(data):
    model = build_vgg("A", num_classes=10, input_size=32, width=1 / 16, fc_width=8,
                      input_std=60.0)
    trainer = Trainer(model, *data, progress=False, log=None)
    assert trainer.recipe == RECIPE
    assert (trainer.optimizer.lr, trainer.optimizer.momentum, trainer.optimizer.weight_decay) \
        == (RECIPE.lr, RECIPE.momentum, RECIPE.weight_decay)
    assert isinstance(trainer.schedule, ReduceOnPlateau)
    assert trainer.schedule.patience == RECIPE.patience
    assert trainer.batch_size == RECIPE.batch_size
    assert trainer.augment == {"scale": 36, "flip": RECIPE.flip,
                               "colour_shift": RECIPE.colour_shift}


def test_recipe_build_is_the_clis_model(data):
    model = RECIPE.build(data[0], seed=3)
    assert model.config["init"] == RECIPE.init and model.config["width"] == RECIPE.width
    assert model.config["num_classes"] == 10 and list(model.layers)[0] == "standardise"
    assert list(RECIPE.replace(standardise=False).build(data[0]).layers)[0] == "conv1_1"


def test_a_checkpoint_stores_the_recipe_and_resume_restores_it(data, tmp_path):
    recipe = RECIPE.replace(batch_size=12, lr=0.02, colour_shift=0.0, warmup_epochs=0.0,
                            width=1 / 16, fc_width=8)
    model = recipe.build(data[0])
    Trainer(model, *data, recipe=recipe, run_dir=tmp_path, progress=False, log=None).fit(1)
    meta = load_checkpoint(tmp_path)[1]
    assert stored_recipe(meta) == recipe.replace(input_size=32)
    resumed = Trainer.resume(tmp_path, *data, progress=False, log=None)
    assert resumed.recipe == recipe.replace(input_size=32) and resumed.batch_size == 12


@pytest.mark.parametrize("changes, message", [
    (dict(colour_shift=float("nan")), "colour_shift must be a finite number"),
    (dict(width=float("inf")), "width must be a finite number"),
    (dict(lr=0.0), "lr must be a finite number in \\(0"),
    (dict(momentum=1.0), "momentum"),
    (dict(batch_size=0), "batch_size must be an int >= 1"),
    (dict(epochs=True), "epochs must be an int"),
    (dict(init="xavier"), "init must be one of"),
    (dict(config="F"), "config:"),
    (dict(scale=(40, 36)), "scale must be"),
    (dict(scale=30), "scale: S = 30 is smaller than input_size 32"),
    (dict(milestones=(0,)), "milestones"),
    (dict(flip=1), "flip must be True or False"),
])
def test_bad_recipe_values_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        RECIPE.replace(**changes)


def test_an_unknown_field_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="'learning_rate'"):
        RECIPE.replace(learning_rate=0.1)


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "argument --seed: must be an integer >= 0; got '-1'"),
    (["--width", "inf"], "argument --width: must be a finite positive number; got 'inf'"),
    (["--colour-shift", "nan"], "argument --colour-shift: must be a finite number >= 0"),
    (["--lr", "abc"], "argument --lr: must be a finite positive number; got 'abc'"),
])
def test_cli_rejects_non_finite_and_negative_numbers_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_no_argparse_abbreviations(capsys):
    """--data DIR was once read as --data-seed DIR."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data-s", "3"])
    assert "unrecognized arguments: --data-s" in capsys.readouterr().err
