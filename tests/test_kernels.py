"""The three backends agree, on shapes, strides and paddings drawn at random (property-based)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from minivgg.backend import kernels
from minivgg.kernels import naive

FAST = ("numpy", "numba")


@st.composite
def window_problems(draw, padding=True):
    """A random (x, kernel, stride, padding) whose kernel fits the padded input at least once."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph = draw(st.integers(0, min(2, kh - 1))) if padding else 0
    pw = draw(st.integers(0, min(2, kw - 1))) if padding else 0
    H = draw(st.integers(max(1, kh - 2 * ph), 9))
    W = draw(st.integers(max(1, kw - 2 * pw), 9))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    seed = draw(st.integers(0, 2**31))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dtype)
    return x, (kh, kw), stride, (ph, pw)


@settings(max_examples=60, deadline=None)
@given(window_problems())
def test_im2col_col2im_agree(problem):
    x, kernel, stride, padding = problem
    cols = naive.im2col(x, kernel, stride, padding)
    back = naive.col2im(cols, x.shape, kernel, stride, padding)
    for name in FAST:
        k = kernels(name)
        assert np.array_equal(k.im2col(x, kernel, stride, padding), cols), name
        np.testing.assert_allclose(k.col2im(cols, x.shape, kernel, stride, padding), back,
                                   rtol=1e-5, atol=1e-5, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(window_problems(padding=False), st.booleans())
def test_maxpool_agrees_including_ties(problem, with_ties):
    x, kernel, stride, _ = problem
    if with_ties:       # few distinct values: many windows hold their maximum twice
        x = np.round(x).astype(x.dtype)
    y, argmax = naive.maxpool_forward(x, kernel, stride)
    dout = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    dx = naive.maxpool_backward(dout, argmax, x.shape)
    for name in FAST:
        k = kernels(name)
        y2, argmax2 = k.maxpool_forward(x, kernel, stride)
        assert np.array_equal(y2, y), name
        assert np.array_equal(argmax2, argmax), f"{name} breaks the first-maximum tie rule"
        np.testing.assert_allclose(k.maxpool_backward(dout, argmax, x.shape), dx, rtol=1e-5,
                                   atol=1e-6, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2), st.integers(1, 9), st.integers(1, 4), st.integers(1, 7),
       st.floats(1e-4, 1.0), st.floats(0.5, 1.0), st.floats(0.5, 3.0), st.integers(0, 2**31))
def test_lrn_agrees(N, C, HW, size, alpha, beta, k, seed):
    rng = np.random.default_rng(seed)
    x = 2 * rng.standard_normal((N, C, HW, HW + 1))
    dout = rng.standard_normal(x.shape)
    y, scale = naive.lrn_forward(x, size, alpha, beta, k)
    dx = naive.lrn_backward(dout, x, scale, size, alpha, beta)
    for name in FAST:
        kern = kernels(name)
        y2, scale2 = kern.lrn_forward(x, size, alpha, beta, k)
        np.testing.assert_allclose(y2, y, rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(scale2, scale, rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(kern.lrn_backward(dout, x, scale, size, alpha, beta), dx,
                                   rtol=1e-9, atol=1e-12, err_msg=name)


def test_im2col_by_hand():
    """One 3x3 image, 2x2 kernel, stride 1, no padding: four windows, read off the picture."""
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)     # 0 1 2 / 3 4 5 / 6 7 8
    expected = np.array([[0, 1, 3, 4],      # (i, j) = (0, 0) of the windows at (0,0) (0,1) (1,0) (1,1)
                         [1, 2, 4, 5],      # (0, 1)
                         [3, 4, 6, 7],      # (1, 0)
                         [4, 5, 7, 8]])     # (1, 1)
    for name in ("naive", *FAST):
        assert np.array_equal(kernels(name).im2col(x, (2, 2), (1, 1), (0, 0))[0], expected), name


@st.composite
def non_finite_windows(draw):
    """A pooling problem whose input is sprinkled with NaN, +inf and -inf (whole windows too)."""
    x, kernel, stride, _ = draw(window_problems(padding=False))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    specials = np.array([np.nan, np.inf, -np.inf])
    mask = rng.random(x.shape) < draw(st.sampled_from([0.1, 0.5, 1.0]))
    x[mask] = rng.choice(specials, size=mask.sum())
    return x, kernel, stride


@settings(max_examples=80, deadline=None)
@given(non_finite_windows())
def test_maxpool_nan_rule(problem):
    """NaN propagates (PyTorch's rule): a window holding a NaN gives NaN and its *first* NaN gets
    the gradient; an all -inf window gives -inf at its first pixel. Every backend alike."""
    x, kernel, stride = problem
    y, argmax = naive.maxpool_forward(x, kernel, stride)
    windows = sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    windows = windows.reshape(*y.shape, -1)
    np.testing.assert_array_equal(y, windows.max(axis=-1))          # np.max propagates NaN
    k = windows.argmax(axis=-1)                                      # np.argmax: first NaN / max
    kh, kw = kernel
    W = x.shape[3]
    oh = np.arange(y.shape[2])[:, None] * stride[0]
    ow = np.arange(y.shape[3])[None, :] * stride[1]
    assert np.array_equal(argmax, (oh + k // kw) * W + ow + k % kw)
    dout = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    dx = naive.maxpool_backward(dout, argmax, x.shape)
    for name in FAST:
        y2, argmax2 = kernels(name).maxpool_forward(x, kernel, stride)
        np.testing.assert_array_equal(y2, y, err_msg=name)
        assert np.array_equal(argmax2, argmax), name
        np.testing.assert_allclose(kernels(name).maxpool_backward(dout, argmax2, x.shape), dx,
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def test_maxpool_all_minus_inf_and_all_nan_windows():
    x = np.array([[[[-np.inf, -np.inf, np.nan, np.nan],
                    [-np.inf, -np.inf, np.nan, np.nan]]]], dtype=np.float32)
    for name in ("naive", *FAST):
        y, argmax = kernels(name).maxpool_forward(x, (2, 2), (2, 2))
        np.testing.assert_array_equal(y, [[[[-np.inf, np.nan]]]], err_msg=name)
        assert argmax.tolist() == [[[[0, 2]]]], name     # each window's first pixel
        dx = kernels(name).maxpool_backward(np.ones_like(y), argmax, x.shape)
        assert dx.tolist() == [[[[1, 0, 1, 0], [0, 0, 0, 0]]]], name


def test_maxpool_matches_torch_with_non_finite_values():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan          # mostly one NaN per window: same indices
    x[rng.random(x.shape) < 0.05] = np.inf
    x[:, :, :3, :3] = -np.inf
    for kernel, stride in [((2, 2), (2, 2)), ((3, 3), (2, 2))]:
        expected, where = torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel, stride,
                                                         return_indices=True)
        windows = sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
        one_nan = np.isnan(windows).sum(axis=(-2, -1)) <= 1   # torch: the *last* NaN
        for name in ("naive", *FAST):
            y, argmax = kernels(name).maxpool_forward(x, kernel, stride)
            np.testing.assert_array_equal(y, expected.numpy(), err_msg=name)
            np.testing.assert_array_equal(argmax[one_nan], where.numpy()[one_nan], err_msg=name)


def lrn_all_backends(x, size, alpha, beta, k, dout):
    """{backend: (y, scale, dx)} of LRN on x."""
    out = {}
    for name in ("naive", *FAST):
        y, scale = kernels(name).lrn_forward(x, size, alpha, beta, k)
        out[name] = y, scale, kernels(name).lrn_backward(dout, x, scale, size, alpha, beta)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_agrees_across_many_decades(dtype):
    """Channels from 1e-3 to 1e5 and k = 0: the large channels' squares must not swamp the small
    ones' (a running window sum did: numba was 1.5e-2 off in float32). The backends agree to the
    tolerance kernels/__init__.py documents."""
    rng = np.random.default_rng(3)
    C = 16
    x = (rng.standard_normal((2, C, 5, 7)) * np.logspace(-3, 5, C)[:, None, None]).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    results = lrn_all_backends(x, 5, 1e-4, 0.75, 0.0, dout)
    reference = lrn_all_backends(x.astype(np.float64), 5, 1e-4, 0.75, 0.0,
                                 dout.astype(np.float64))["naive"]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for name, (y, scale, dx) in results.items():
        np.testing.assert_allclose(y, reference[0], rtol=rtol, err_msg=name)
        np.testing.assert_allclose(scale, reference[1], rtol=rtol, err_msg=name)
        # dx is a difference of two terms: its error is relative to their size
        terms = np.abs(dout * reference[1] ** -0.75) + np.abs(reference[2])
        assert np.all(np.abs(dx - reference[2]) <= 10 * rtol * terms), name


def test_lrn_float32_near_overflow():
    """|x| ~ 1e19..1e20: x^2 overflows float32, the normalised output does not (y ~ x^-0.5)."""
    x = np.array([3e19, -1e20, 5e19, 1.0], dtype=np.float32).reshape(1, 4, 1, 1)
    dout = np.ones_like(x)
    reference = lrn_all_backends(x.astype(np.float64), 5, 1e-4, 0.75, 2.0,
                                 dout.astype(np.float64))["naive"]
    for name, (y, scale, dx) in lrn_all_backends(x, 5, 1e-4, 0.75, 2.0, dout).items():
        assert np.all(np.isfinite(scale)) and np.all(y != 0), name
        np.testing.assert_allclose(y, reference[0], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(dx, reference[2], rtol=1e-4, err_msg=name)
