"""The convolution algorithms (minivgg/conv/): Winograd's transforms, every algorithm against the
definition and finite differences on every backend, the float32 error bound, and ``auto``."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minivgg as mv
from minivgg.conv import ALGORITHMS, choose, supports
from minivgg.conv.winograd import forms
from minivgg.gradcheck import check_layer
from minivgg.kernels import naive, winograd

F64 = np.float64
SQUARE_3x3 = [a for a in ALGORITHMS]                   # every algorithm does 3x3, stride 1


def test_transforms_are_lavin_and_grays():
    """F(4x4, 3x3) derived from the points 0, 1, -1, 2, -2 is eq. 12 of Lavin & Gray (2015)
    exactly; F(2x2, 3x3) from 0, 1, -1 is their eq. 8 up to the signs of B^T's rows 0 and 3, G's
    row 0 and A^T's column 3: pairs that cancel in A^T [(G g) * (B^T d)]."""
    AT, G, BT = winograd.transforms(4)
    np.testing.assert_array_equal(BT, [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0],
                                       [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                                       [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])
    np.testing.assert_allclose(G, [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                                   [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
                               rtol=1e-15)
    np.testing.assert_array_equal(AT, [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0],
                                       [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])
    AT, G, BT = winograd.transforms(2)
    np.testing.assert_array_equal(np.diag([-1, 1, 1, -1]) @ BT, [[1, 0, -1, 0], [0, 1, 1, 0],
                                                                 [0, -1, 1, 0], [0, 1, 0, -1]])
    np.testing.assert_array_equal(np.diag([-1, 1, 1, 1]) @ G, [[1, 0, 0], [.5, .5, .5],
                                                               [.5, -.5, .5], [0, 0, 1]])
    np.testing.assert_array_equal(AT @ np.diag([1, 1, 1, -1]), [[1, 1, 1, 0], [0, 1, -1, -1]])


@pytest.mark.parametrize("points", [(0, 1, -1), (0, 1, -1, 2, -2), (0, 1, -1, 3, -3, 2, -2)])
def test_any_distinct_points_give_an_exact_1d_algorithm(points):
    """y = A^T [(G g) * (B^T d)] is the correlation sum_j d[i + j] g[j], for any choice of points
    (here with 6 multiplies for F(4, 3) and 8 for F(6, 3) instead of 12 and 18)."""
    m = len(points) - 1
    AT, G, BT = winograd.transforms(m, points)
    rng = np.random.default_rng(m)
    d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
    expected = [d[i:i + 3] @ g for i in range(m)]
    np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), expected, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="distinct"):
        winograd.transforms(2, (0, 1, 1))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 9),
       st.integers(1, 9), st.integers(0, 2), st.sampled_from([2, 4]), st.integers(0, 2**31))
def test_winograd_forms_match_the_definition(N, C, F, H, W, padding, m, seed):
    """Random shapes, odd sizes and partial last tiles included: the tile-by-tile reference and
    each backend's transforms (forward and the output transform's adjoint) match."""
    if H + 2 * padding < 3 or W + 2 * padding < 3:
        return
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, 3, 3)), \
        rng.standard_normal(F)
    expected = naive.conv2d_direct(x, w, b, (1, 1), (padding, padding))
    np.testing.assert_allclose(winograd.conv2d_winograd_naive(x, w, b, padding, m), expected,
                               rtol=1e-10, atol=1e-10)
    U = winograd.filter_transform(w, m)
    dy = rng.standard_normal(expected.shape)
    for backend in mv.BACKENDS:
        form = forms(backend)
        M = np.matmul(U, form.input_transform(x, padding, m))
        np.testing.assert_allclose(form.output_transform(M, expected.shape, m, b), expected,
                                   rtol=1e-10, atol=1e-10)
        # the adjoint: <output_transform(M), dy> = <M, output_transform_adjoint(dy)>
        dM = form.output_transform_adjoint(dy, m)
        assert np.isclose(np.sum(form.output_transform(M, expected.shape, m) * dy),
                          np.sum(M * dM), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [2, 4])
def test_compiled_transforms_on_maps_past_l1(m, dtype):
    """Maps whose alpha rows of tiles pass _L1_ROWS take the column steps' other table (one
    operation per xi), VGG's at 56-224 px: the random shapes above are too small to reach it."""
    from minivgg.kernels import winograd_jit
    from minivgg.kernels.winograd import vectorized
    numba, rng = winograd_jit.numba, np.random.default_rng(m)
    x = rng.standard_normal((1, 2, 110, 106)).astype(dtype)
    assert (m + 2) * winograd.tiles(108, m) * winograd.tiles(104, m) * x.itemsize \
        > winograd_jit._L1_ROWS
    eps = 1e-5 if dtype == np.float32 else 1e-12

    def close(actual, expected):                   # to eps of the largest (sums of many terms)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=eps * np.abs(expected).max())

    close(numba.input_transform(x, 0, m), vectorized.input_transform(x, 0, m))
    dy = x[:, :, :108, :104]
    dM = numba.output_transform_adjoint(dy, m)
    close(dM, vectorized.output_transform_adjoint(dy, m))
    b = rng.standard_normal(2).astype(dtype)
    close(numba.output_transform(dM, dy.shape, m, b), vectorized.output_transform(dM, dy.shape, m, b))


def test_compiled_transforms_refuse_wrong_shapes():
    """The table kernel has no bounds checks: an out=, M or bias of another shape would be read or
    written outside its memory (a crash or a hang before), so each is a ValueError."""
    from minivgg.kernels.winograd_jit import numba
    x = np.ones((1, 2, 8, 8), np.float32)
    small = np.zeros((4, 4, 1, 1), np.float32)
    for call, name in [(lambda: numba.input_transform(x, 1, 2, out=small), "out"),
                       (lambda: numba.output_transform_adjoint(x, 2, out=small), "out"),
                       (lambda: numba.output_transform(small, (1, 2, 8, 8), 2), "M"),
                       (lambda: numba.output_transform(np.ones((6, 6, 2, 16), np.float32),
                                                       (1, 2, 8, 8), 2), "M"),
                       (lambda: numba.output_transform(np.ones((4, 4, 2, 16), np.float32),
                                                       (1, 2, 8, 8), 2, np.ones(1, np.float32)),
                        "bias")]:
        with pytest.raises(ValueError, match=f"{name} must have shape"):
            call()


def test_compiled_transforms_also_run_as_plain_python():
    """Under NUMBA_DISABLE_JIT=1 the operation tables of kernels/winograd_jit.py run as Python
    (read-only and strided inputs, every padding and tile size) and match the NumPy form."""
    code = """
import numpy as np
from minivgg.kernels.winograd import vectorized
from minivgg.kernels.winograd_jit import numba
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 14))[:, :, :, ::2]
x.flags.writeable = False
for m in (2, 4):
    dy = rng.standard_normal((2, 4, 7 + m, 5))
    for padding in (0, 1, 2):
        np.testing.assert_allclose(numba.input_transform(x, padding, m),
                                   vectorized.input_transform(x, padding, m), rtol=1e-12, atol=1e-12)
    dM = numba.output_transform_adjoint(dy, m)
    np.testing.assert_allclose(dM, vectorized.output_transform_adjoint(dy, m), rtol=1e-12, atol=1e-12)
    b = rng.standard_normal(4)
    np.testing.assert_allclose(numba.output_transform(dM, dy.shape, m, b),
                               vectorized.output_transform(dM, dy.shape, m, b), rtol=1e-12, atol=1e-12)
print("ok")
"""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("algorithm", SQUARE_3x3)
@pytest.mark.parametrize("shape, padding", [((2, 3, 5, 7), 1), ((1, 2, 6, 6), 0),
                                            ((1, 2, 3, 4), 2)])
def test_every_algorithm_matches_the_definition_and_finite_differences(backend, algorithm,
                                                                       shape, padding):
    rng = np.random.default_rng(3)
    layer = mv.Conv2d(shape[1], 3, 3, 1, padding, dtype=F64, rng=1, algorithm=algorithm)
    layer.params["bias"][...] = rng.standard_normal(3)
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(layer(x), naive.conv2d_direct(x, layer.params["weight"],
                                                             layer.params["bias"], (1, 1),
                                                             (padding, padding)),
                               rtol=1e-10, atol=1e-10)
    report = check_layer(layer, x)
    assert report.passed, str(report)


@pytest.mark.parametrize("kernel, padding", [(1, 0), ((3, 2), (1, 0)), (5, 2)])
def test_direct_handles_other_kernels(backend, kernel, padding):
    rng = np.random.default_rng(4)
    layer = mv.Conv2d(3, 2, kernel, 1, padding, dtype=F64, rng=1, algorithm="direct")
    x = rng.standard_normal((2, 3, 6, 5))
    np.testing.assert_allclose(layer(x), naive.conv2d_direct(x, layer.params["weight"],
                                                             layer.params["bias"], (1, 1),
                                                             layer.padding), rtol=1e-10, atol=1e-10)
    assert check_layer(layer, x).passed


def float32_errors(algorithm, C, H, seed=0):
    """max |float32 - float64| / max |float64| of y, dx and dweight for one layer and batch."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, C, H, H))
    layer = mv.Conv2d(C, 16, 3, 1, 1, dtype=F64, rng=seed, algorithm=algorithm)
    y64 = layer(x)
    dy = rng.standard_normal(y64.shape)
    dx64, dw64 = layer.backward(dy), layer.grads["weight"].copy()
    layer.astype(np.float32)
    y = layer(x.astype(np.float32))
    dx = layer.backward(dy.astype(np.float32))
    return [np.abs(a - b).max() / np.abs(b).max()
            for a, b in ((y, y64), (dx, dx64), (layer.grads["weight"], dw64))]


# The documented float32 bounds (relative to the largest entry), measured over these shapes: im2col
# and F(2x2, 3x3) stay below 1e-6; F(4x4, 3x3)'s larger transform entries (up to 8 and 1/24) put
# it near 2-5e-6, about ten times im2col's. The bounds below leave a factor of about 4.
FLOAT32_BOUND = {"im2col": 3e-6, "direct": 3e-6, "winograd2x2": 5e-6, "winograd": 2e-5}


@pytest.mark.parametrize("C, H", [(3, 16), (64, 12), (256, 6)])
def test_float32_error_is_bounded_and_grows_with_the_tile(C, H):
    errors = {a: float32_errors(a, C, H) for a in FLOAT32_BOUND}
    for algorithm, bound in FLOAT32_BOUND.items():
        assert max(errors[algorithm]) < bound, (algorithm, errors[algorithm])
    # forward: the bigger tile is measurably less accurate than im2col
    assert errors["winograd"][0] > 2 * errors["im2col"][0], errors


@settings(max_examples=100, deadline=None)
@given(st.tuples(st.integers(1, 5), st.integers(1, 5)), st.tuples(st.integers(1, 3),
       st.integers(1, 3)), st.tuples(st.integers(0, 3), st.integers(0, 3)),
       st.integers(1, 128), st.integers(1, 128), st.tuples(st.integers(1, 64), st.integers(1, 64)))
def test_auto_picks_an_algorithm_that_supports_the_layer(kernel, stride, padding, C, F, size):
    name = choose(kernel, stride, padding, C, F, size)
    assert supports(name, kernel, stride, padding)
    if name.startswith("winograd"):
        assert kernel == (3, 3) and stride == (1, 1) and padding[0] == padding[1] <= 2
    if name == "direct":
        assert stride == (1, 1)


@pytest.mark.parametrize("kernel, stride, padding", [
    (3, 2, 1),          # stride 2
    (1, 1, 0),          # 1x1
    ((3, 1), 1, 1),     # non-square kernel
    (5, 1, 2),          # 5x5
    (3, 1, 3),          # padding Winograd's input gradient cannot mirror
    (3, 1, (1, 0)),     # unequal padding
])
def test_auto_sends_other_shapes_elsewhere_and_winograd_refuses_them(kernel, stride, padding):
    rng = np.random.default_rng(5)
    layer = mv.Conv2d(32, 32, kernel, stride, padding, dtype=F64, rng=0)
    assert layer.algorithm == "auto"
    for size in (7, 28, 64):
        assert not layer.algorithm_for((32, size, size)).startswith("winograd")
    x = rng.standard_normal((1, 32, 7, 7))
    np.testing.assert_allclose(layer(x), naive.conv2d_direct(x, layer.params["weight"],
                                                             layer.params["bias"], layer.stride,
                                                             layer.padding), rtol=1e-9, atol=1e-9)
    for algorithm in ("winograd", "winograd2x2"):
        with pytest.raises(ValueError, match="algorithm='winograd.*needs a 3x3 kernel"):
            mv.Conv2d(32, 32, kernel, stride, padding, algorithm=algorithm)


def test_auto_follows_the_measured_rule():
    conv3 = mv.Conv2d(64, 64, 3, padding=1)
    assert [conv3.algorithm_for((64, s, s)) for s in (224, 56, 32, 28, 14, 8, 2)] == [
        "winograd", "winograd", "winograd", "winograd2x2", "im2col", "im2col", "im2col"]
    assert mv.Conv2d(3, 64, 3, padding=1).algorithm_for((3, 224, 224)) == "im2col"
    assert mv.Conv2d(64, 64, 1).algorithm_for((64, 56, 56)) == "direct"
    summary = mv.build_vgg("A", input_size=32, width=0.25, init=None).summary()
    assert [row.algorithm for row in summary.rows if row.kind.startswith("conv")] == ["im2col"] * 8
    vgg16 = mv.build_vgg("D", init=None).summary()
    assert [row.algorithm for row in vgg16.rows if row.kind.startswith("conv")] == [
        "im2col"] + ["winograd"] * 6 + ["winograd2x2"] * 3 + ["im2col"] * 3
    table = str(summary).splitlines()
    assert table[0].endswith("algorithm") and table[3].split()[0] == "conv1_1"
    assert table[3].endswith(" im2col") and table[3 + 3].split()[-1] == "im2col"
    with pytest.raises(ValueError, match="algorithm must be one of"):
        mv.Conv2d(3, 4, algorithm="fft")
    with pytest.raises(ValueError, match="stride 1"):
        mv.Conv2d(3, 4, 3, stride=2, algorithm="direct")


# C or F == 1: views of (N, 1, P) arrays are contiguous, a trap for np.ascontiguousarray
@pytest.mark.parametrize("in_channels, out_channels, padding", [(3, 4, 1), (3, 1, 1), (1, 1, 0)])
@pytest.mark.parametrize("algorithm", SQUARE_3x3)
def test_buffers_are_reused_and_outputs_kept(backend, algorithm, in_channels, out_channels,
                                             padding):
    """The algorithm's workspace is reused across calls, yet an output or gradient returned earlier
    is never overwritten by a later call (by this layer or another Conv2d sharing the scratch)."""
    conv = mv.Conv2d(in_channels, out_channels, 3, padding=padding, rng=0, algorithm=algorithm)
    rng = np.random.default_rng(6)
    x1, x2 = (rng.standard_normal((2, in_channels, 6, 6)).astype(np.float32) for _ in range(2))
    y1 = conv(x1)
    y1_copy = y1.copy()
    dx1 = conv.backward(np.ones_like(y1))
    dx1_copy = dx1.copy()
    buffers = {name: a.ctypes.data for name, a in conv._compute._buffers._arrays.items()}
    assert buffers
    y2 = conv(x2)
    dx2 = conv.backward(np.ones_like(y2))
    assert buffers == {name: a.ctypes.data for name, a in conv._compute._buffers._arrays.items()}
    other = mv.Conv2d(in_channels, out_channels, 3, padding=padding, rng=1, algorithm=algorithm)
    other.backward(np.ones_like(other(x2)))
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(dx1, dx1_copy)
    assert not np.shares_memory(y1, y2) and not np.shares_memory(dx1, dx2)
    assert y2.flags.c_contiguous and dx2.flags.c_contiguous


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_a_training_step_skips_only_the_images_gradient(algorithm):
    """model.loss stops at the first layer with parameters and asks it for no input gradient
    (as PyTorch's step does); every parameter gradient is still the full backward's."""
    model = mv.build_vgg("A", input_size=32, width=1 / 16, fc_width=8, num_classes=3,
                         dtype=np.float64, input_std=50.0, seed=0, dropout=0.0)
    model.layers["conv1_1"].algorithm = algorithm
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)) * 50
    labels = np.array([0, 2])
    model.loss(x, labels)
    quick = {name: g.copy() for name, g in model.grads.items()}
    logits = model.forward(x)
    dlogits = mv.layers.softmax_cross_entropy(logits, labels)[1]
    assert model.backward(dlogits).shape == x.shape
    for name, g in model.grads.items():
        np.testing.assert_allclose(quick[name], g, rtol=1e-12, atol=1e-15, err_msg=name)
    conv = model.layers["conv1_1"]
    assert conv.backward(np.ones((2, conv.out_channels, 32, 32)), input_grad=False) is None
