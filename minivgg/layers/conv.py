"""2-D convolution as im2col + one matrix product (the paper's conv3 and conv1 layers)."""

import numpy as np

from ..backend import kernels
from ..shapes import output_size, pair
from .base import Layer, Workspace, check_gradient, check_input, random_weight, require_forward

# Shared by every Conv2d: backward's temporaries are dead once backward returns.
_scratch = Workspace()


class Conv2d(Layer):
    """y[n, f] = bias[f] + sum_c weight[f, c] (*) x_pad[n, c]   (cross-correlation, as in every CNN)

    x: (N, C, H, W) -> y: (N, F, Ho, Wo),  Ho = (H + 2*ph - kh) // sh + 1  (likewise Wo)
    params: weight (F, C, kh, kw) ~ N(0, weight_std^2) (default He: sqrt(2 / (C*kh*kw))), bias 0

    Forward unrolls every receptive field into a column (im2col, cols: (N, C*kh*kw, Ho*Wo)) so the
    whole convolution is one matrix product per image: y[n] = weight.reshape(F, -1) @ cols[n].
    Backward is three products and the adjoint of im2col:
        dweight = sum_n dy[n] @ cols[n].T     dbias = sum of dy over n, oh, ow
        dcols[n] = weight.reshape(F, -1).T @ dy[n]      dx = col2im(dcols)
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, *,
                 weight_std=None, dtype=np.float32, backend=None, rng=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
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
        cols = self._buffers.get("cols", (N, self.params["weight"][0].size, Ho * Wo), x.dtype)
        self._cols = kernels(self.backend).im2col(x, self.kernel_size, self.stride, self.padding,
                                                  out=cols)
        self._x_shape = x.shape
        y = np.matmul(self.params["weight"].reshape(F, -1), self._cols)    # (N, F, Ho*Wo)
        y += self.params["bias"][:, None]
        return y.reshape(N, F, Ho, Wo)

    def backward(self, dout):
        x_shape = require_forward(self, self._x_shape)
        N, F = x_shape[0], self.out_channels
        check_gradient(self, dout, (N, *self.output_shape(x_shape[1:])))
        dy = np.ascontiguousarray(dout).reshape(N, F, -1)                   # (N, F, Ho*Wo)
        weight = self.params["weight"].reshape(F, -1)                       # (F, C*kh*kw)
        self.grads["bias"][...] = dy.sum(axis=(0, 2))
        dweight = self.grads["weight"].reshape(F, -1)
        product = _scratch.get("dweight", dweight.shape, dout.dtype)
        np.matmul(dy[0], self._cols[0].T, out=dweight)
        for n in range(1, N):                                               # sum over the batch
            dweight += np.matmul(dy[n], self._cols[n].T, out=product)
        dcols = np.matmul(weight.T, dy, out=_scratch.get("dcols", self._cols.shape, dout.dtype))
        return kernels(self.backend).col2im(dcols, x_shape, self.kernel_size, self.stride,
                                            self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
