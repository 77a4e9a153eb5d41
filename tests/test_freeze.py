"""Layer freezing (fine-tuning only some layers, the paper's Appendix A and its FC-only model of
Sec. 4.4): SGD leaves frozen layers bit-identical, through weight decay and momentum, and a
resumed run stays frozen."""

import numpy as np
import pytest

from minivgg.data import synthetic_splits
from minivgg.optim import SGD
from minivgg.train import Trainer
from minivgg.vgg import build_vgg, conv_layer_names

FC_ONLY = ("fc6", "fc7")          # the paper's "only the first two FC layers"


def tiny_model():
    return build_vgg("A", num_classes=10, input_size=32, width=1 / 16, fc_width=8, seed=1,
                     input_std=60.0)   # the recipe standardises (minivgg.recipe)


def snapshot(model):
    return {name: value.copy() for name, value in model.params.items()}


@pytest.fixture(scope="module")
def data():
    return synthetic_splits(32, 16, size=32, seed=4)


def test_frozen_layers_stay_bit_identical_and_the_others_move(data, tmp_path):
    model = tiny_model()
    frozen = conv_layer_names(model) + ["fc6"]
    model.freeze(frozen)
    before = snapshot(model)
    trainer = Trainer(model, *data, optimizer=SGD(model, lr=0.01, weight_decay=5e-4),
                      batch_size=16, run_dir=tmp_path / "run", progress=False, log=None)
    trainer.fit(2)
    for name, value in model.params.items():
        layer = name.split(".")[0]
        if layer in frozen:
            assert value.dtype == before[name].dtype and np.array_equal(value, before[name]), name
        else:
            assert not np.array_equal(value, before[name]), name   # training really ran
    assert not any(name.split(".")[0] in frozen for name in trainer.optimizer.velocity)

    resumed = Trainer.resume(tmp_path / "run", *data, progress=False, log=None)
    assert resumed.model.frozen == frozenset(frozen)
    resumed.fit(3)
    for name in before:
        if name.split(".")[0] in frozen:
            assert np.array_equal(resumed.model.params[name], before[name]), name


def test_without_freezing_weight_decay_alone_moves_every_weight():
    """The control for the test above: one step with zero gradients still changes each weight
    (decay), so the frozen layers' equality is SGD skipping them, not an idle optimiser."""
    model = tiny_model()
    before = snapshot(model)
    for grad in model.grads.values():
        grad[...] = 0
    SGD(model, lr=0.1).step()
    changed = [n for n in before if n.endswith(".weight")
               and not np.array_equal(model.params[n], before[n])]
    assert len(changed) == sum(n.endswith(".weight") for n in before)
    model.freeze(["fc8"])
    fc8 = model.params["fc8.weight"].copy()
    SGD(model, lr=0.1).step()
    assert np.array_equal(model.params["fc8.weight"], fc8)


def test_backward_still_passes_through_frozen_layers():
    model = tiny_model().eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    labels = np.array([1, 2])
    model.loss(x, labels)
    free = {name: g.copy() for name, g in model.grads.items()}
    model.freeze(conv_layer_names(model))
    model.loss(x, labels)
    for name, grad in model.grads.items():
        assert np.array_equal(grad, free[name]), name


def test_unfreeze_and_bad_names():
    model = tiny_model().freeze(FC_ONLY)
    assert set(model.trainable) == set(model.params) - {f"{n}.{k}" for n in FC_ONLY
                                                         for k in ("weight", "bias")}
    assert model.unfreeze("fc6").frozen == {"fc7"}
    assert model.unfreeze().frozen == frozenset()
    with pytest.raises(ValueError, match="fc9"):
        model.freeze(["fc6", "fc9"])
