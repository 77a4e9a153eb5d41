"""Convolution as im2col + one matrix product, any kernel, stride and padding."""

import numpy as np

from ..backend import kernels
from ..layers.base import Workspace, require_forward
from ..shapes import conv_output_shape
from .products import products

# Shared by every layer: backward's temporaries are dead once backward returns.
_scratch = Workspace()


class Im2col:
    """Forward unrolls every receptive field into a column (im2col, cols: (N, C*kh*kw, Ho*Wo)) so
    the convolution is a matrix product: y[n] = weight.reshape(F, -1) @ cols[n]. We lay the images'
    columns side by side, cols2d = [cols[0] cols[1] ...], and do the whole batch as one product
    (or one per image, each written in place, where that measured faster: _times_columns).
    Backward is two products and the adjoint of im2col (dy2d: dy's images side by side):

        dweight = dy2d @ cols2d.T  (= sum_n dy[n] @ cols[n].T)
        dcols2d = weight.reshape(F, -1).T @ dy2d                    dx = col2im(dcols)
    """

    def __init__(self, kernel_size, stride, padding, backend):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.backend = backend
        self._buffers, self._x_shape = Workspace(), None

    def forward(self, x, weight, bias):
        """x (N, C, H, W), weight (F, C, kh, kw), bias (F,) -> y (N, F, Ho, Wo)."""
        N, F, Ho, Wo = conv_output_shape(x.shape, weight.shape, self.stride, self.padding)
        K, P = weight[0].size, Ho * Wo
        ### BEGIN SOLUTION
        # The batch's columns side by side, cols2d: (C*kh*kw, N*Ho*Wo), so the whole batch can be
        # ONE matrix product; multi-threaded BLAS ran that up to 10x faster than N small ones on a
        # busy 2-core machine (CIFAR batches). im2col fills it through a (N, K, P) view.
        cols2d = self._buffers.get("cols", (K, N * P), x.dtype)
        kernels(self.backend).im2col(x, self.kernel_size, self.stride, self.padding,
                                     out=cols2d.reshape(K, N, P).transpose(1, 0, 2))
        self._cols2d, self._x_shape = cols2d, x.shape
        y = _times_columns(weight.reshape(F, K), cols2d, N)                 # (N, F, Ho*Wo)
        y += bias[:, None]
        ### END SOLUTION
        return y.reshape(N, F, Ho, Wo)

    @staticmethod
    def footprint(x_shape, y_shape, kernel_size, padding, itemsize):
        """(bytes kept from forward for backward, {shared temporary: bytes}) of one layer call:
        what minivgg.arithmetic.training_memory adds up. The numba kernels' padded input copy
        (kernels/jit.py) counts among the temporaries."""
        (N, C, H, W), (_, F, Ho, Wo), (kh, kw), (ph, pw) = x_shape, y_shape, kernel_size, padding
        K, P = C * kh * kw, Ho * Wo
        scratch = {"dcols": K * N * P * itemsize}
        if N > 1:
            scratch["dy"] = F * N * P * itemsize
            if P < _PER_IMAGE_POSITIONS:
                scratch["y"] = F * N * P * itemsize
        if K > F:
            scratch["dweight_t"] = K * F * itemsize
        if ph or pw:
            scratch["padded"] = N * C * (H + 2 * ph) * (W + 2 * pw) * itemsize
        return K * N * P * itemsize, scratch

    def backward(self, dy, weight, dweight, input_grad=True):
        """dy (N, F, Ho, Wo) -> dx (N, C, H, W); fills dweight (F, C, kh, kw). Without
        ``input_grad``, dweight only (returns None)."""
        N, F = dy.shape[:2]
        x_shape = require_forward(self, self._x_shape)
        ### BEGIN SOLUTION
        dy = dy.reshape(N, F, -1)                                           # (N, F, Ho*Wo)
        P = dy.shape[2]
        dy2d = _stack(dy, "dy")                                             # (F, N*Ho*Wo)
        # dweight = dy2d @ cols2d.T, a product with a very long inner dimension. OpenBLAS shares
        # such a product among its threads well only by the rows of the result, so when
        # K = C*kh*kw > F we compute its transpose, cols2d @ dy2d.T (same sums). Measured on a
        # busy 2-core machine: K=576, F=64: 170 ms instead of 960; K=27, F=64: 15 ms, not 350.
        dweight = dweight.reshape(F, -1)
        K = dweight.shape[1]
        if K > F:
            dweight[...] = np.matmul(self._cols2d, dy2d.T,
                                     out=_scratch.get("dweight_t", (K, F), dy.dtype)).T
        else:
            np.matmul(dy2d, self._cols2d.T, out=dweight)
        if not input_grad:
            return None
        dcols2d = np.matmul(weight.reshape(F, K).T, dy2d,
                            out=_scratch.get("dcols", self._cols2d.shape, dy.dtype))
        return kernels(self.backend).col2im(dcols2d.reshape(K, N, P).transpose(1, 0, 2),
                                            x_shape, self.kernel_size, self.stride,
                                            self.padding)
        ### END SOLUTION


# One product per image beats the batch's one product when every image's block is wide (one
# thread, CPU time, batch 32-64, 2026-11-30): with 256 or more output positions per image, the
# products write each image's (F, Ho*Wo) block in place, and the copy that unstacks one product's
# result is saved. conv1_1 of the CLI's net (3 -> 16 at 32x32): 0.42 ms against 0.76-1.01; 3 -> 64
# at 32x32: 2.2 against 3.9 ms; 64 -> 64 at 32x32: 26.5 against 28.6 ms; 16 -> 32 at 16x16: the
# same; at 8x8 and below one product wins, 1.1-1.7x. The same sums: the CLI's training run is
# bit-identical.
_PER_IMAGE_POSITIONS = 256


def _times_columns(w2d, cols2d, N):
    """w2d (F, K) @ cols2d (K, N*P), the images' columns side by side, as a new (N, F, P) array."""
    K, P = w2d.shape[1], cols2d.shape[1] // N
    if N > 1 and P >= _PER_IMAGE_POSITIONS:
        y = np.empty((N, w2d.shape[0], P), w2d.dtype)
        return products(np.broadcast_to(w2d, (N, *w2d.shape)),
                        cols2d.reshape(K, N, P).transpose(1, 0, 2), y)
    return _unstack(np.matmul(w2d, cols2d, out=_scratch.get("y", (w2d.shape[0], N * P), w2d.dtype)
                              if N > 1 else None), N)


def _stack(a, name):
    """(N, F, P) -> (F, N*P), the images' columns side by side (a view when N == 1)."""
    N, F, P = a.shape
    if N == 1:
        return np.ascontiguousarray(a).reshape(F, P)
    out = _scratch.get(name, (F, N, P), a.dtype)
    np.copyto(out, a.transpose(1, 0, 2))
    return out.reshape(F, N * P)


def _unstack(a2d, N):
    """(F, N*P) -> a new (N, F, P) array: what forward returns (a view when N == 1, where a2d is
    itself new). A copy, not ``np.ascontiguousarray``: for F == 1 the transposed view is already
    contiguous, and the caller would get a view of the shared scratch buffer."""
    F = a2d.shape[0]
    if N == 1:
        return a2d.reshape(1, F, -1)
    return a2d.reshape(F, N, -1).transpose(1, 0, 2).copy()
