"""The three backends agree, on shapes, strides and paddings drawn at random (property-based)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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
