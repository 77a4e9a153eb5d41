"""Direct convolution, stride 1: one matrix product per kernel offset, no im2col matrix.

Lay the zero-padded images end to end in one long row per channel, xs: (C, N*Hp*Wp). Shifting
that row by i*Wp + j lines pixel (h + i, w + j) up with output position (h, w), so

    y_full = sum_{i, j} weight[:, :, i, j] @ xs[:, i*Wp + j : i*Wp + j + L]      (F x L)

is the convolution at every position of the padded grid (L = N*Hp*Wp); the positions with
h >= Ho or w >= Wo read across a row's end and are dropped. kh*kw products of inner size C
instead of one of inner size C*kh*kw, and no 9x copy of the input: for a 1x1 kernel it is a
single product. Backward takes the same shifts:

    dweight[:, :, i, j] = dy_full @ xs[:, shift].T          dxs[:, shift] += weight[:, :, i, j].T @ dy_full

with dy_full zero at the dropped positions.
"""

import numpy as np

from ..layers.base import Workspace
from ..shapes import conv_output_shape

_scratch = Workspace()


class Direct:
    """Stride 1 only (Conv2d checks it: minivgg.conv.NEEDS); any kernel and padding."""

    def __init__(self, kernel_size, stride, padding, backend):
        self.kernel_size, self.padding = kernel_size, padding
        self._buffers = Workspace()

    def _geometry(self, x_shape):
        (N, _, H, W), (ph, pw), (kh, kw) = x_shape, self.padding, self.kernel_size
        Hp, Wp = H + 2 * ph, W + 2 * pw
        shifts = [i * Wp + j for i in range(kh) for j in range(kw)]
        return N * Hp * Wp, shifts, Hp, Wp

    @staticmethod
    def footprint(x_shape, y_shape, kernel_size, padding, itemsize):
        """As Im2col.footprint: forward keeps xs; backward's temporaries are the F x L products
        and dxs."""
        (N, C, H, W), F, (kh, kw), (ph, pw) = x_shape, y_shape[1], kernel_size, padding
        Hp, Wp = H + 2 * ph, W + 2 * pw
        xs = C * (N * Hp * Wp + (kh - 1) * Wp + kw - 1) * itemsize
        L = N * Hp * Wp * itemsize
        return xs, {"y_full": F * L, "product": F * L, "dy_full": F * L, "dxs": xs}

    def forward(self, x, weight, bias):
        """x (N, C, H, W), weight (F, C, kh, kw), bias (F,) -> y (N, F, Ho, Wo)."""
        N, C, H, W = x.shape
        F = weight.shape[0]
        (ph, pw), (_, _, Ho, Wo) = self.padding, conv_output_shape(x.shape, weight.shape, (1, 1),
                                                                   self.padding)
        L, shifts, Hp, Wp = self._geometry(x.shape)
        xs = self._buffers.get("xs", (C, L + shifts[-1]), x.dtype)        # room for the last shift
        xs[...] = 0
        xs[:, :L].reshape(C, N, Hp, Wp)[:, :, ph:ph + H, pw:pw + W] = x.transpose(1, 0, 2, 3)
        self._xs, self._x_shape = xs, x.shape
        y_full = _scratch.get("y_full", (F, L), x.dtype)
        products = _scratch.get("product", (F, L), x.dtype)
        for k, shift in enumerate(shifts):
            w = weight.reshape(F, C, -1)[:, :, k]
            np.matmul(w, xs[:, shift:shift + L], out=y_full if k == 0 else products)
            if k:
                y_full += products
        y = y_full.reshape(F, N, Hp, Wp)[:, :, :Ho, :Wo].transpose(1, 0, 2, 3) + bias[:, None, None]
        return np.ascontiguousarray(y)            # "+" made a new array: no scratch escapes

    def backward(self, dy, weight, dweight, input_grad=True):
        """dy (N, F, Ho, Wo) -> dx (N, C, H, W); fills dweight (F, C, kh, kw). Without
        ``input_grad``, dweight only (returns None)."""
        N, F, Ho, Wo = dy.shape
        _, C, H, W = self._x_shape
        L, shifts, Hp, Wp = self._geometry(self._x_shape)
        dy_full = _scratch.get("dy_full", (F, L), dy.dtype)
        dy_full[...] = 0
        dy_full.reshape(F, N, Hp, Wp)[:, :, :Ho, :Wo] = dy.transpose(1, 0, 2, 3)
        dweight = dweight.reshape(F, C, -1)
        for k, shift in enumerate(shifts):
            dweight[:, :, k] = dy_full @ self._xs[:, shift:shift + L].T
        if not input_grad:
            return None
        dxs = _scratch.get("dxs", self._xs.shape, dy.dtype)
        dxs[...] = 0
        weight = weight.reshape(F, C, -1)
        for k, shift in enumerate(shifts):
            dxs[:, shift:shift + L] += weight[:, :, k].T @ dy_full
        (ph, pw) = self.padding
        # a copy: with no padding and C == 1 this view is contiguous, and ascontiguousarray would
        # hand out the scratch buffer itself
        return dxs[:, :L].reshape(C, N, Hp, Wp)[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3).copy()
