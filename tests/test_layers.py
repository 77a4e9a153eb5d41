"""Every layer's backward against central finite differences (float64), on every backend."""

import numpy as np
import pytest

import minivgg as mv

# the grader's conv shapes: odd sizes, stride 2, 1x1, non-square kernel, paddings 0-2, batch > 1
from minivgg.assignment.checks import CONV_CASES
from minivgg.gradcheck import LAYER_TOL, check_layer
from minivgg.kernels import naive
from minivgg.model import Sequential

F64 = np.float64


@pytest.mark.parametrize("shape, out_channels, kernel, stride, padding", CONV_CASES)
def test_conv_gradients(backend, rng, shape, out_channels, kernel, stride, padding):
    layer = mv.Conv2d(shape[1], out_channels, kernel, stride, padding, dtype=F64, rng=1)
    layer.params["bias"][...] = rng.standard_normal(out_channels)
    report = check_layer(layer, rng.standard_normal(shape))
    assert report.passed, str(report)
    assert {c.name for c in report.checks} == {"x", "weight", "bias"}


@pytest.mark.parametrize("shape, kernel, stride", [
    ((2, 3, 8, 8), 2, 2),       # the paper's 2x2 / 2
    ((2, 2, 7, 9), 3, 2),       # overlapping windows (AlexNet's 3x3 / 2), odd sizes
    ((1, 2, 6, 6), (3, 2), 1),  # overlapping, non-square, stride 1
    ((1, 1, 7, 7), 2, 2),       # floor rounding drops the last row and column
])
def test_maxpool_gradients(backend, rng, shape, kernel, stride):
    report = check_layer(mv.MaxPool2d(kernel, stride), rng.standard_normal(shape))
    assert report.passed, str(report)


@pytest.mark.parametrize("layer", [
    mv.LocalResponseNorm(),                                             # Krizhevsky, k=2
    mv.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=1.0, convention="pytorch"),
    mv.LocalResponseNorm(4, alpha=0.3, beta=0.6, k=1.5),                # even window
], ids=["krizhevsky", "pytorch", "even"])
def test_lrn_gradients(backend, rng, layer):
    # inputs of scale 3 so the normalisation is far from the identity at these alphas
    report = check_layer(layer, 3 * rng.standard_normal((2, 7, 3, 4)))
    assert report.passed, str(report)


@pytest.mark.parametrize("layer, shape", [
    (mv.ReLU(), (2, 3, 4, 5)),
    (mv.ReLU(), (4, 7)),
    (mv.Linear(7, 5, dtype=F64, rng=0), (3, 7)),
    (mv.Flatten(), (2, 3, 2, 2)),
    (mv.Softmax(), (4, 6)),
    (mv.Dropout(0.5, rng=3), (5, 8)),
    (mv.Dropout(0.2, rng=3), (2, 3, 4, 4)),
    (mv.layers.Standardise(70.0), (2, 3, 4, 4)),
], ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else str(v))
def test_other_layer_gradients(rng, layer, shape):
    report = check_layer(layer, rng.standard_normal(shape))
    assert report.passed, str(report)


def test_softmax_cross_entropy_gradient(rng):
    logits, labels = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    _, dlogits = mv.softmax_cross_entropy(logits, labels)
    numeric = mv.gradcheck.numerical_gradient(
        lambda: mv.softmax_cross_entropy(logits, labels)[0], logits)
    assert mv.gradcheck.relative_error(dlogits, numeric).max() < LAYER_TOL


def test_backend_argument_overrides_global(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    with mv.use_backend("numba"):
        y_naive = mv.MaxPool2d(2, backend="naive")(x)
    assert np.array_equal(y_naive, mv.MaxPool2d(2, backend="numpy")(x))


@pytest.mark.parametrize("layer", [lambda b: mv.ReLU(backend=b), lambda b: mv.Dropout(0.5, backend=b),
                                   lambda b: mv.MaxPool2d(2, backend=b),
                                   lambda b: mv.LocalResponseNorm(backend=b),
                                   lambda b: mv.Conv2d(2, 2, 3, backend=b)])
@pytest.mark.parametrize("mine, global_", [("numba", "naive"), ("numpy", "numba")])
def test_every_layer_takes_its_own_backend(monkeypatch, rng, layer, mine, global_):
    """A layer built with backend= calls that backend's kernels, never the global one's."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the global backend {global_!r} was called")
    for name in ("relu_forward", "relu_backward", "dropout_apply", "maxpool_forward",
                 "maxpool_backward", "lrn_forward", "lrn_backward", "im2col", "col2im"):
        if hasattr(mv.backend.kernels(global_), name):
            monkeypatch.setattr(mv.backend.kernels(global_), name, refuse)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    with mv.use_backend(global_):
        made = layer(mine)
        made.backward(np.ones_like(made(x)))


def test_float32_in_float32_out(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    for layer in [mv.Conv2d(3, 4, 3, padding=1), mv.MaxPool2d(), mv.ReLU(), mv.LocalResponseNorm(),
                  mv.Dropout()]:
        y = layer(x if not isinstance(layer, mv.MaxPool2d) else x)
        assert y.dtype == np.float32, layer
        assert layer.backward(np.ones_like(y)).dtype == np.float32, layer


def test_conv_matches_direct_definition(backend, rng):
    layer = mv.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1, dtype=F64, rng=2)
    layer.params["bias"][...] = rng.standard_normal(5)
    x = rng.standard_normal((2, 3, 7, 6))
    expected = naive.conv2d_direct(x, layer.params["weight"], layer.params["bias"],
                                              (2, 1), (1, 1))
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


# -- the backward contract: backward(dout, input_grad=True) ------------------------------------

def test_every_layer_takes_input_grad_and_legacy_subclasses_are_adapted():
    """Layer declares backward(dout, input_grad=True) and every layer follows it, so Sequential
    tells the first layer with parameters that no dx is needed without inspecting signatures.
    A subclass written as the docs once showed, backward(self, dout), is given the argument
    (ignored: it returns dx); one that takes **kwargs is left as it is."""
    import inspect
    layers = [c for c in vars(mv.layers).values()
              if isinstance(c, type) and issubclass(c, mv.Layer)]
    assert len(layers) >= 10
    for cls in layers:
        parameter = inspect.signature(cls.backward).parameters.get("input_grad")
        assert parameter is not None and parameter.default is True, cls.__name__

    class Legacy(mv.Conv2d):
        def backward(self, dout):
            return 2 * super().backward(dout)

    class Keywords(mv.ReLU):
        def backward(self, dout, **options):
            return super().backward(dout, **options)
    assert "input_grad" in inspect.signature(Legacy.backward).parameters
    assert Keywords.__dict__["backward"].__name__ == "backward" and \
        "options" in inspect.signature(Keywords.backward).parameters
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    legacy, plain = (cls(2, 3, 3, padding=1, rng=0).astype(np.float64) for cls in (Legacy,
                                                                                     mv.Conv2d))
    dout = np.ones((2, 3, 5, 5))
    legacy.forward(x)
    plain.forward(x)
    np.testing.assert_array_equal(legacy.backward(dout, input_grad=False),
                                  2 * plain.backward(dout))


class _Duck:
    """A layer that is no minivgg Layer: forward, backward(dout), params and grads."""

    def __init__(self):
        self.params = {"weight": np.array([2.0])}
        self.grads = {"weight": np.zeros(1)}

    def forward(self, x):
        self._x = x
        return x * self.params["weight"]

    def backward(self, dout):
        self.grads["weight"][...] = (dout * self._x).sum()
        return dout * self.params["weight"]


@pytest.mark.parametrize("first", ["legacy", "duck"])
def test_a_training_step_works_when_the_first_layer_with_parameters_predates_the_contract(first):
    """loss() (input_grad=False) through a first layer whose backward has no input_grad: a
    Layer subclass written as backward(self, dout), or an object that is no Layer."""
    class LegacyLinear(mv.Linear):
        def backward(self, dout):
            return super().backward(dout)
    head = LegacyLinear(4, 3, rng=0).astype(np.float64) if first == "legacy" else _Duck()
    tail = mv.Linear(4 if first == "duck" else 3, 3, rng=1).astype(np.float64)
    model = Sequential([("first", head), ("second", tail)])
    x, labels = np.random.default_rng(0).standard_normal((5, 4)), np.array([0, 1, 2, 0, 1])
    model.loss(x, labels)                                           # input_grad=False
    grads = {k: v.copy() for k, v in model.grads.items()}
    assert set(grads) == {"first.weight", "second.weight", "second.bias"} | (
        {"first.bias"} if first == "legacy" else set())
    model.backward(mv.softmax_cross_entropy(model.forward(x), labels)[1])    # every dx
    for name, value in model.grads.items():
        np.testing.assert_array_equal(grads[name], value)
