"""2-D convolution as im2col + one matrix product (the paper's conv3 and conv1 layers)."""

import numpy as np

from ..backend import kernels
from ..shapes import output_size, pair
from .base import Layer, Workspace, check_count, check_gradient, check_input, random_weight, require_forward

# Shared by every Conv2d: backward's temporaries are dead once backward returns.
_scratch = Workspace()


class Conv2d(Layer):
    """y[n, f] = bias[f] + sum_c weight[f, c] (*) x_pad[n, c]   (cross-correlation, as in every CNN)

    x: (N, C, H, W) -> y: (N, F, Ho, Wo),  Ho = (H + 2*ph - kh) // sh + 1  (likewise Wo)
    params: weight (F, C, kh, kw) ~ N(0, weight_std^2) (default He: sqrt(2 / (C*kh*kw))), bias 0

    Forward unrolls every receptive field into a column (im2col, cols: (N, C*kh*kw, Ho*Wo)) so the
    convolution is a matrix product: y[n] = weight.reshape(F, -1) @ cols[n]. We lay the images'
    columns side by side, cols2d = [cols[0] cols[1] ...], and do the whole batch as one product.
    Backward is two products and the adjoint of im2col (dy2d: dy's images side by side):
        dweight = dy2d @ cols2d.T  (= sum_n dy[n] @ cols[n].T)     dbias = sum of dy over n, oh, ow
        dcols2d = weight.reshape(F, -1).T @ dy2d                    dx = col2im(dcols)
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, *,
                 weight_std=None, dtype=np.float32, backend=None, rng=None):
        super().__init__()
        self.in_channels = in_channels = check_count("Conv2d", in_channels, "in_channels")
        self.out_channels = out_channels = check_count("Conv2d", out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0; got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        self.backend = backend
        shape = (out_channels, in_channels, *self.kernel_size)
        self.params = {"weight": random_weight(shape, weight_std, dtype, rng),
                       "bias": np.zeros(out_channels, dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._buffers = Workspace()
        self._x_shape = None

    def output_shape(self, input_shape):
        _, H, W = input_shape
        return (self.out_channels, *(output_size(size, k, s, p) for size, k, s, p in
                                     zip((H, W), self.kernel_size, self.stride, self.padding)))

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        N = x.shape[0]
        F, Ho, Wo = self.output_shape(x.shape[1:])
        K, P = self.params["weight"][0].size, Ho * Wo
        ### BEGIN SOLUTION
        # The batch's columns side by side, cols2d: (C*kh*kw, N*Ho*Wo), so the whole batch is ONE
        # matrix product; BLAS runs that far faster than N small ones (measured up to 10x on a
        # busy 2-core machine for CIFAR batches). im2col fills it through a (N, K, P) view.
        cols2d = self._buffers.get("cols", (K, N * P), x.dtype)
        kernels(self.backend).im2col(x, self.kernel_size, self.stride, self.padding,
                                     out=cols2d.reshape(K, N, P).transpose(1, 0, 2))
        self._cols2d, self._x_shape = cols2d, x.shape
        y2d = np.matmul(self.params["weight"].reshape(F, K), cols2d,
                        out=_scratch.get("y", (F, N * P), x.dtype) if N > 1 else None)
        y = _unstack(y2d, N)                                                # (N, F, Ho*Wo)
        y += self.params["bias"][:, None]
        return y.reshape(N, F, Ho, Wo)
        ### END SOLUTION

    def backward(self, dout):
        x_shape = require_forward(self, self._x_shape)
        N, F = x_shape[0], self.out_channels
        check_gradient(self, dout, (N, *self.output_shape(x_shape[1:])))
        ### BEGIN SOLUTION
        dy = dout.reshape(N, F, -1)                                         # (N, F, Ho*Wo)
        self.grads["bias"][...] = dy.sum(axis=(0, 2))
        dy2d = _stack(dy, "dy")                                             # (F, N*Ho*Wo)
        weight = self.params["weight"].reshape(F, -1)                       # (F, K)
        # dweight = dy2d @ cols2d.T, a product with a very long inner dimension. OpenBLAS shares
        # such a product among its threads well only by the rows of the result, so when
        # K = C*kh*kw > F we compute its transpose, cols2d @ dy2d.T (same sums). Measured on a
        # busy 2-core machine: K=576, F=64: 170 ms instead of 960; K=27, F=64: 15 ms, not 350.
        dweight = self.grads["weight"].reshape(F, -1)
        K = dweight.shape[1]
        if K > F:
            dweight[...] = np.matmul(self._cols2d, dy2d.T,
                                     out=_scratch.get("dweight_t", (K, F), dout.dtype)).T
        else:
            np.matmul(dy2d, self._cols2d.T, out=dweight)
        dcols2d = np.matmul(weight.T, dy2d, out=_scratch.get("dcols", self._cols2d.shape,
                                                             dout.dtype))
        P = dy.shape[2]
        return kernels(self.backend).col2im(dcols2d.reshape(K, N, P).transpose(1, 0, 2), x_shape,
                                            self.kernel_size, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


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
