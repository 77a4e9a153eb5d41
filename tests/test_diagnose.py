"""minivgg.diagnose: each check fires on a fault planted for it, and stays quiet on a healthy net."""

import numpy as np
import pytest

from minivgg import Conv2d, Linear
from minivgg.diagnose import diagnose
from minivgg.vgg import build_vgg

TINY = dict(num_classes=4, input_size=32, width=1 / 16, fc_width=16, seed=0)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 3, 32, 32)).astype(np.float32), np.array([0, 1, 2, 3])


def test_a_healthy_net(batch):
    model = build_vgg("A", **TINY)
    before = model["conv1_1"].params["weight"].copy()
    report = diagnose(model, batch, steps=60)
    assert report.initial_loss == pytest.approx(np.log(4), rel=0.5)
    assert report.overfit_accuracy == 1.0 and report.gradcheck_passed
    assert report.first_failing_layer is None
    assert set(report.dead_relu) == {n for n in model.layers if n.startswith("relu")}
    assert not [p for p in report.problems if "initial loss" in p or "overfit" in p
                or "gradient" in p]
    assert np.array_equal(model["conv1_1"].params["weight"], before)    # copies only
    assert model.training                                                # mode untouched
    assert "one-batch overfit     100% accuracy" in str(report)


def test_a_huge_last_layer_shows_in_the_initial_loss(batch):
    model = build_vgg("A", **TINY)
    model["fc8"].params["weight"] *= 1000
    report = diagnose(model, batch, checks=("loss",))
    assert report.initial_loss > 2 * np.log(4)
    assert any("initial loss" in p and "ln(4)" in p for p in report.problems)


class AscendingLinear(Linear):
    """A planted fault: the weight gradient has the wrong sign, so SGD climbs the loss."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["weight"] *= -1
        return dx


class DoubledConv(Conv2d):
    """A planted fault: the input gradient is twice what it should be."""

    def backward(self, dout):
        return 2 * super().backward(dout)


def replace(model, name, cls):
    layer = model[name]
    layer.__class__ = cls
    return model


def test_a_wrong_weight_gradient_cannot_overfit_and_is_located(batch):
    model = replace(build_vgg("A", **TINY), "fc8", AscendingLinear)
    report = diagnose(model, batch, steps=30, checks=("overfit", "gradcheck"))
    assert report.overfit_accuracy < 1.0 and not report.gradcheck_passed
    assert report.first_failing_layer == "fc8"
    assert any("could not overfit" in p for p in report.problems)


def test_the_first_failing_layer_is_the_planted_one_not_the_layers_it_corrupts(batch):
    # conv2_1's wrong input gradient makes conv1_1's weight gradient wrong too; the layer
    # checked alone on its real input is conv2_1
    model = replace(build_vgg("A", **TINY), "conv2_1", DoubledConv)
    report = diagnose(model, batch, checks=("gradcheck",))
    assert not report.gradcheck_passed and report.first_failing_layer == "conv2_1"
    assert "the first layer that fails alone: conv2_1" in "\n".join(report.problems)


def test_dead_relus(batch):
    model = build_vgg("A", **TINY)
    model["conv1_1"].params["bias"][...] = -1e4
    report = diagnose(model, batch, checks=("dead",))
    assert report.dead_relu["relu1_1"] == 1.0
    assert any(p.startswith("relu1_1: 100% of its units are dead") for p in report.problems)


@pytest.mark.parametrize("lr, word", [(30.0, "ratio"), (1e-9, "ratio")])
def test_update_ratios_outside_the_healthy_range(batch, lr, word):
    report = diagnose(build_vgg("A", **TINY), batch, lr=lr, checks=("ratios",))
    ratios = list(report.update_ratio.values())
    assert (min(ratios) > 1e-1) if lr > 1 else (max(ratios) < 1e-5)
    assert sum("update / weight ratio" in p for p in report.problems) == len(ratios)


def test_bad_arguments(batch):
    model = build_vgg("A", **TINY)
    with pytest.raises(TypeError, match="batch must be a tuple"):
        diagnose(model, batch[0])
    with pytest.raises(ValueError, match="checks must be among"):
        diagnose(model, batch, checks=("speed",))
    with pytest.raises(ValueError, match="NaN"):
        diagnose(model, (np.full_like(batch[0], np.nan), batch[1]))
