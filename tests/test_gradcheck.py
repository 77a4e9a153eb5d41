"""The checker itself: it must catch wrong gradients, and reject inputs it cannot judge."""

import numpy as np
import pytest

import minivgg as mv
from minivgg.gradcheck import at_kink, check_layer, check_model, numerical_gradient, relative_error
from minivgg.kernels import naive
from minivgg.layers import ReLU
from minivgg.vgg import build_vgg


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 3.0])
    grad = numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(grad, 3 * np.array([1.0, 4.0, 9.0]), rtol=1e-9)
    assert np.array_equal(x, [1.0, -2.0, 3.0]), "x must be restored"


def test_relative_error_handles_zeros():
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1.0, -1.0) == 1.0
    assert relative_error(1e-12, 0.0) == pytest.approx(1e-4)     # floor 1e-8, not 1e-12


class ConvWithTransposedKernel(mv.Conv2d):
    """A classic bug: backward uses the weight flipped in space (convolution vs correlation)."""

    def backward(self, dout):
        weight = self.params["weight"]
        self.params["weight"] = weight[:, :, ::-1, ::-1].copy()
        try:
            return super().backward(dout)
        finally:
            self.params["weight"] = weight


def nonoverlapping_maxpool_backward(dout, argmax, x_shape):
    """Assigns instead of adding: right only when no two windows share an arg-max."""
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dout.dtype).reshape(N, C, H * W)
    n, c = np.indices(argmax.shape[:2])
    dx[n[..., None], c[..., None], argmax.reshape(N, C, -1)] = dout.reshape(N, C, -1)
    return dx.reshape(x_shape)


def test_a_wrong_conv_backward_is_caught(rng):
    layer = ConvWithTransposedKernel(2, 3, 3, padding=1, dtype=np.float64, rng=0)
    report = check_layer(layer, rng.standard_normal((1, 2, 5, 5)))
    assert not report.passed
    assert report.worst.name == "x" and report.worst.worst_error > 1e-2
    assert report["weight"].worst_error < 1e-6          # only the input gradient is wrong
    assert "FAILED" in str(report)


def test_nonoverlapping_only_maxpool_backward_is_caught(rng, monkeypatch):
    x = rng.standard_normal((2, 2, 7, 7))
    pool = mv.MaxPool2d(2, 2, backend="naive")
    monkeypatch.setattr(naive, "maxpool_backward", nonoverlapping_maxpool_backward)
    assert check_layer(pool, x).passed, "on non-overlapping windows the shortcut is right"
    report = check_layer(mv.MaxPool2d(3, 1, backend="naive"), x)
    assert not report.passed and report.worst.worst_error > 1e-2


def test_rejects_float32_and_nan(rng):
    with pytest.raises(TypeError, match="float64"):
        check_layer(mv.ReLU(), rng.standard_normal((2, 3)).astype(np.float32))
    with pytest.raises(TypeError, match="weight is float32"):
        check_layer(mv.Linear(3, 2), rng.standard_normal((2, 3)))
    x = rng.standard_normal((2, 3))
    x[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_layer(mv.ReLU(), x)


def test_report_names_the_worst_entry(rng):
    report = check_layer(mv.Linear(4, 3, dtype=np.float64, rng=0), rng.standard_normal((2, 4)))
    assert report.passed
    assert [c.name for c in report.checks] == ["x", "weight", "bias"]
    assert report["weight"].checked == 12 and report["weight"].size == 12
    assert len(report["weight"].worst_index) == 2
    sampled = check_layer(mv.Linear(4, 3, dtype=np.float64, rng=0), rng.standard_normal((2, 4)),
                          max_entries=5)
    assert sampled["weight"].checked == 5


@pytest.mark.parametrize("size, expected", [(1e-2, 1.0), (1e-4, 0.1)])
def test_a_missing_small_entry_scores_as_the_docstring_says(monkeypatch, size, expected):
    """gradcheck's docstring: an entry of ``size`` times the tensor's scale computed as 0 scores
    ``expected`` (the floor is 1e-3 of the scale)."""
    class Dot(mv.Layer):            # y = w . x (one number); backward forgets entry 0 of dy/dx
        def forward(self, x):
            return (x * weights).sum(axis=1, keepdims=True)

        def backward(self, dout):
            dx = dout * weights
            dx[0, 0] = 0.0
            return dx
    weights = np.array([[size, 1.0, -0.5, 0.25]])       # the tensor's scale: 1.0
    report = mv.check_layer(Dot(), np.ones((1, 4)))
    assert report["x"].worst_error == pytest.approx(expected, rel=1e-4)
    assert report["x"].worst_index == (0, 0) and not report.passed


# -- kinks: where f has no derivative, the check reports the entry instead of failing it --------

def test_at_kink_tells_a_bend_from_a_smooth_slope():
    x = np.array([0.0, 0.3, -2.0])
    kinks = np.zeros(3, dtype=bool)
    grad = numerical_gradient(lambda: float(np.abs(x).sum() + (x ** 2).sum()), x, kinks=kinks)
    assert kinks.tolist() == [True, False, False]
    np.testing.assert_allclose(grad[1:], [1 + 0.6, -1 - 4.0], rtol=1e-8)
    assert not at_kink(2.00001, 2.0) and at_kink(1.0, 0.0) and not at_kink(1e-9, 0.0)


def test_a_relu_at_exactly_zero_in_a_whole_net_is_left_out_not_failed():
    """fc6 of 8 units: dropout sometimes drops all of them for one image, which puts fc7's
    pre-activation exactly at its zero bias, a ReLU kink; this used to fail fc7.bias (analytic
    0 against a central difference of half the one-sided slope) on some repetitions."""
    model = build_vgg("A", num_classes=3, input_size=32, width=1 / 16, fc_width=8,
                      dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    reports = [check_model(model, x, np.array([0, 2])) for _ in range(6)]
    assert all(r.passed for r in reports), [str(r) for r in reports if not r.passed]
    assert any(r["fc7.bias"].kinks > 0 for r in reports)
    assert all(r["fc7.bias"].checked + r["fc7.bias"].kinks == 8 for r in reports)


def test_a_tensor_with_every_entry_at_a_kink_is_not_passed():
    report = check_layer(ReLU(), np.zeros((2, 3)))
    assert report["x"].kinks == 6 and report["x"].checked == 0
    assert not report.passed and "FAILED" in str(report)
