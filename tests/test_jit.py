"""The Numba kernels' own tests: their fast paths against naive.py, buffer reuse, threads, and
NUMBA_DISABLE_JIT. (Gradient checks and cross-backend agreement live in test_kernels.py and
test_layers.py.)"""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import minivgg as mv
from minivgg.kernels import jit, naive

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


# (N, C, H, W, kernel, stride, padding): the fast paths (stride 1, 2x2/2 pool), the generic
# paths (stride 2, 3), padding 0/1/2, 1x1 kernels, odd and non-square sizes, batches.
CONV_CASES = [
    (1, 3, 7, 7, (3, 3), (1, 1), (1, 1)),
    (2, 4, 6, 5, (3, 3), (1, 1), (0, 0)),
    (3, 2, 9, 8, (3, 3), (2, 2), (1, 1)),
    (2, 5, 5, 5, (1, 1), (1, 1), (0, 0)),
    (1, 3, 8, 11, (2, 3), (1, 2), (0, 1)),
    (2, 2, 7, 6, (5, 3), (3, 1), (2, 1)),
    (1, 1, 3, 3, (3, 3), (1, 1), (2, 2)),          # more padding than image on each side
    # output rows of >= 16: long enough for the copy loops' SIMD body (LLVM's, when sw == 1)
    (2, 2, 6, 21, (3, 3), (1, 1), (1, 1)),
    (1, 2, 5, 37, (3, 3), (2, 2), (1, 1)),          # stride 2: 19 outputs per row
    (1, 1, 4, 40, (1, 3), (1, 2), (0, 2)),          # 21 outputs per row
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C,H,W,kernel,stride,padding", CONV_CASES)
def test_im2col_col2im_equal_naive(N, C, H, W, kernel, stride, padding, dtype):
    x = np.random.default_rng(0).standard_normal((N, C, H, W)).astype(dtype)
    cols = jit.im2col(x, kernel, stride, padding)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, naive.im2col(x, kernel, stride, padding))
    dcols = np.random.default_rng(1).standard_normal(cols.shape).astype(dtype)
    np.testing.assert_allclose(jit.col2im(dcols, x.shape, kernel, stride, padding),
                               naive.col2im(dcols, x.shape, kernel, stride, padding), **tol(dtype))
    # out= reuses a buffer holding garbage: every element must be overwritten
    out = np.full_like(cols, np.nan)
    np.testing.assert_array_equal(jit.im2col(x, kernel, stride, padding, out=out), cols)
    dx = np.full(x.shape, np.nan, dtype)
    jit.col2im(dcols, x.shape, kernel, stride, padding, out=dx)
    np.testing.assert_allclose(dx, naive.col2im(dcols, x.shape, kernel, stride, padding),
                               **tol(dtype))


POOL_CASES = [
    (2, 3, 8, 8, (2, 2), (2, 2)),       # the 2x2/2 path of _maxpool_forward
    (1, 2, 9, 7, (2, 2), (2, 2)),       # 2x2/2, odd sizes (last row/column dropped)
    (2, 2, 9, 9, (3, 3), (2, 2)),       # overlapping (AlexNet)
    (1, 2, 6, 7, (2, 3), (1, 2)),
    (1, 1, 5, 5, (2, 2), (1, 1)),       # 2x2 with stride 1: overlapping, not the fast path
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C,H,W,kernel,stride", POOL_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool_equal_naive(N, C, H, W, kernel, stride, dtype, ties):
    x = np.random.default_rng(2).standard_normal((N, C, H, W)).astype(dtype)
    if ties:
        x = np.round(x).astype(dtype)               # many equal values: the first max must win
    y, argmax = jit.maxpool_forward(x, kernel, stride)
    y0, argmax0 = naive.maxpool_forward(x, kernel, stride)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(argmax, argmax0)
    dout = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(jit.maxpool_backward(dout, argmax, x.shape),
                               naive.maxpool_backward(dout, argmax0, x.shape), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C,size,beta,HW", [(7, 5, 0.75, (3, 5)), (3, 5, 0.75, (3, 5)),
                                            (8, 4, 0.6, (3, 5)), (6, 1, 0.75, (3, 5)),
                                            (5, 3, 1.0, (3, 5)),
                                            (4, 5, 0.75, (17, 19))])   # > one block of pixels
def test_lrn_equal_naive(C, size, beta, HW, dtype):
    rng = np.random.default_rng(4)
    x = (3 * rng.standard_normal((2, C, *HW))).astype(dtype)
    y, scale = jit.lrn_forward(x, size, 1e-2, beta, 2.0)
    y0, scale0 = naive.lrn_forward(x, size, 1e-2, beta, 2.0)
    np.testing.assert_allclose(scale, scale0, **tol(dtype))
    np.testing.assert_allclose(y, y0, **tol(dtype))
    dout = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_allclose(jit.lrn_backward(dout, x, scale, size, 1e-2, beta),
                               naive.lrn_backward(dout, x, scale0, size, 1e-2, beta), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_dropout_kernels(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 70001)).astype(dtype)     # not a multiple of the chunk size
    y = jit.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    dout = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(jit.relu_backward(dout, y), np.where(y > 0, dout, 0))
    u = rng.random(x.shape, dtype=dtype)
    scale = 1 / (1 - 0.3)
    np.testing.assert_array_equal(jit.dropout_apply(x, u, 0.3, scale),
                                  x * ((u >= 0.3) * dtype(scale)))


def test_relu_nan_and_noncontiguous():
    x = np.array([[np.nan, -1.0, 2.0, 0.0]] * 3, dtype=np.float32).T    # Fortran order
    np.testing.assert_array_equal(jit.relu_forward(x), np.maximum(x, 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_edge_values_forward_and_backward(dtype):
    """The kernel's thresholds (see jit._zero_below): a NaN passes forward and takes no gradient;
    the smallest positive number takes it; zeros of either sign do not."""
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([np.nan, -0.0, 0.0, tiny, -tiny, 1.0, -np.inf, np.inf], dtype)
    y = jit.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    dout = np.arange(1, x.size + 1).astype(dtype)
    np.testing.assert_array_equal(jit.relu_backward(dout, y), np.where(y > 0, dout, 0))
    np.testing.assert_array_equal(jit.relu_backward(dout, x), np.where(x > 0, dout, 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_with_subnormals_flushed_to_zero(dtype):
    """A CPU told to treat subnormals as zero (torch.set_flush_denormal) still gives no gradient
    where y = 0: a threshold at the smallest subnormal would compare as 0 there, and pass it."""
    torch = pytest.importorskip("torch")
    tiny = np.finfo(dtype).smallest_subnormal
    y = np.array([0.0, -0.0, -tiny, 1.0, np.nan], dtype)
    dout = np.arange(1, y.size + 1).astype(dtype)
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals")
    try:
        dx = jit.relu_backward(dout, y)            # small: runs on this thread, flushed
    finally:
        torch.set_flush_denormal(False)
    np.testing.assert_array_equal(dx, [0, 0, 0, 4, 0])


@pytest.mark.parametrize("argmax", [-1, 16, -2**40, 2**40])
def test_maxpool_backward_refuses_an_argmax_outside_the_plane(argmax):
    """The kernel's unsigned indices have no bounds check: a corrupt argmax from a caller would
    write outside dx (-1 just before it), so it is an error, and so are mismatched shapes."""
    dout = np.ones((2, 1, 2, 2), np.float32)
    good = np.zeros(dout.shape, np.int64)
    bad = good.copy()
    bad[1, 0, 1, 1] = argmax
    with pytest.raises(IndexError, match="argmax"):
        jit.maxpool_backward(dout, bad, (2, 1, 4, 4))
    with pytest.raises(ValueError, match="argmax"):
        jit.maxpool_backward(dout, good[:, :, :1], (2, 1, 4, 4))
    with pytest.raises(ValueError, match="x_shape"):
        jit.maxpool_backward(dout, good, (1, 2, 4, 4))


def test_wrong_shapes_are_refused_not_written_past():
    """The kernels trust the shapes of out= and cols (no bounds checks): each of these wrote or
    read outside an array before (a crash, or silently), now a ValueError naming the argument."""
    x = np.ones((2, 3, 8, 8), np.float32)
    wrong = [lambda: jit.im2col(x, (3, 3), (1, 1), (1, 1),
                                out=np.zeros((27, 1, 64), np.float32).transpose(1, 0, 2)),
             lambda: jit.col2im(np.ones((2, 27, 64), np.float32), x.shape, (3, 3), (1, 1), (0, 0)),
             lambda: jit.col2im(np.ones((2, 27, 36), np.float32), x.shape, (3, 3), (1, 1), (0, 0),
                                out=x[:1].copy()),
             lambda: jit.maxpool_forward(x, (2, 2), (2, 2), out=(np.zeros((1, 3, 4, 4), np.float32),
                                                                 np.zeros((1, 3, 4, 4), np.int64))),
             lambda: jit.maxpool_backward(np.ones((2, 3, 4, 4), np.float32),
                                          np.zeros((2, 3, 4, 4), np.int64), x.shape, out=x[:1].copy())]
    for call, name in zip(wrong, ["out", "cols", "out", r"out\[0\]", "out"]):
        with pytest.raises(ValueError, match=f"{name} must have shape"):
            call()


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_relu_backward_of_integers(dtype):
    y = np.array([-2, 0, 3], dtype)
    np.testing.assert_array_equal(jit.relu_backward(np.array([5, 6, 7], dtype), y), [0, 0, 7])


def test_maxpool_fills_a_noncontiguous_out():
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 8)).astype(np.float32)
    y, argmax = jit.maxpool_forward(x, (2, 2), (2, 2))
    out = (np.zeros((3, 2, 3, 4), np.float32).transpose(1, 0, 2, 3),
           np.zeros((2, 3, 4, 3), np.int64).transpose(0, 1, 3, 2))
    result = jit.maxpool_forward(x, (2, 2), (2, 2), out=out)
    assert result[0] is out[0] and result[1] is out[1]
    np.testing.assert_array_equal(out[0], y)
    np.testing.assert_array_equal(out[1], argmax)


def test_pool_relu_dropout_outputs_not_overwritten(backend):
    rng = np.random.default_rng(7)
    x1, x2 = (rng.standard_normal((2, 3, 6, 6)).astype(np.float32) for _ in range(2))
    for layer in [mv.MaxPool2d(2), mv.ReLU(), mv.Dropout(0.5, rng=0)]:
        y1 = layer(x1)
        y1_copy = y1.copy()
        dx1 = layer.backward(np.ones_like(y1))
        dx1_copy = dx1.copy()
        y2 = layer(x2)
        layer.backward(np.ones_like(y2))
        np.testing.assert_array_equal(y1, y1_copy)
        np.testing.assert_array_equal(dx1, dx1_copy)


def test_dropout_reproducible_and_matches_numpy_mask():
    """The mask is drawn from the layer's own generator, exactly as documented."""
    x = np.random.default_rng(8).standard_normal((4, 1000)).astype(np.float32)
    layer = mv.Dropout(0.3, rng=11)
    expected = x * ((np.random.default_rng(11).random(x.shape, dtype=np.float32) >= 0.3)
                    * np.float32(1 / 0.7))
    np.testing.assert_array_equal(layer(x), expected)
    second = x * ((np.random.default_rng(11).random((2, 4, 1000), dtype=np.float32)[1] >= 0.3)
                  * np.float32(1 / 0.7))
    np.testing.assert_array_equal(layer(x), second)


def test_set_num_threads_clamps_and_one_thread_gives_the_same_answer():
    before = jit.get_num_threads()
    x = np.random.default_rng(9).standard_normal((2, 8, 40, 40)).astype(np.float32)
    try:
        assert jit.set_num_threads(10_000) == min(os.cpu_count(), numba.config.NUMBA_NUM_THREADS)
        many = jit.im2col(x, (3, 3), (1, 1), (1, 1)), jit.lrn_forward(x, 5, 1e-2, 0.75, 2.0)[0]
        assert jit.set_num_threads(0) == 1 and jit.get_num_threads() == 1
        assert numba.get_num_threads() == 1
        one = jit.im2col(x, (3, 3), (1, 1), (1, 1)), jit.lrn_forward(x, 5, 1e-2, 0.75, 2.0)[0]
        for a, b in zip(many, one):
            np.testing.assert_array_equal(a, b)
    finally:
        jit.set_num_threads(before)


def test_runs_with_numba_disable_jit():
    """Under NUMBA_DISABLE_JIT=1 the kernels are plain Python and the layers must still work."""
    code = """
import numpy as np, minivgg as mv
from minivgg.kernels import jit, naive
x = np.random.default_rng(0).standard_normal((1, 2, 5, 4)).astype(np.float32)
assert np.array_equal(jit.im2col(x, (3, 3), (1, 1), (1, 1)), naive.im2col(x, (3, 3), (1, 1), (1, 1)))
net = [mv.Conv2d(2, 3, 3, padding=1, rng=0), mv.ReLU(), mv.MaxPool2d(2), mv.LocalResponseNorm(),
       mv.Dropout(0.5, rng=0)]
y = x
for layer in net:
    y = layer(y)
d = np.ones_like(y)
for layer in reversed(net):
    d = layer.backward(d)
assert d.shape == x.shape and np.isfinite(d).all()
print("ok")
"""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", MINIVGG_BACKEND="numba")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_kernels_as_plain_python_too():
    """Every mode of the merged kernels (im2col and col2im, both max-pool loops, LRN's two betas,
    ReLU's thresholds) against naive.py under NUMBA_DISABLE_JIT=1, where unsigned indices and
    flags are NumPy scalars, not Numba's types: this file's own tests, run as Python (~6 s)."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             __file__, "-k",
                             "(equal_naive or relu_ or refuses or wrong_shapes) and not plain"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]      # 5 if none had been selected


def test_threaded_kernels_work_in_a_forked_child():
    """A fork inherits the thread pool object but not its threads; the child must not hang."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    code = """
import multiprocessing as mp, numpy as np
from minivgg.kernels import jit
x = np.random.default_rng(0).standard_normal((2, 64, 32, 32)).astype(np.float32)
jit.set_num_threads(2)
expected = jit.im2col(x, (3, 3), (1, 1), (1, 1))        # starts the pool in the parent

def child(queue):
    queue.put(float(jit.im2col(x, (3, 3), (1, 1), (1, 1)).sum()))

queue = mp.get_context("fork").Queue()
p = mp.get_context("fork").Process(target=child, args=(queue,))
p.start()
assert abs(queue.get(timeout=60) - float(expected.sum())) < 1e-3
p.join(60)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
