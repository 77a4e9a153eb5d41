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
