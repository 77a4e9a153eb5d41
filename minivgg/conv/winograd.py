"""Convolution by Winograd's minimal filtering F(m x m, 3 x 3): 3x3 kernels, stride 1.

The transforms and their derivation are in kernels/winograd.py. Per layer call:

    forward   U = G g G^T (every filter)   V = B^T d B (every input tile)
              M[xi, nu] = U[xi, nu] @ V[xi, nu]         (alpha^2 products: F x C times C x tiles)
              y = A^T M A + bias                          (every output tile, cropped)
    backward  dM = A dY A^T (the output transform's adjoint, every tile of dy)
              dU[xi, nu] = dM[xi, nu] @ V[xi, nu]^T       (alpha^2 products, summed over tiles)
              dweight = G^T dU G                          (the filter transform's adjoint)
              dx = the same Winograd convolution of dy with the flipped, transposed kernel
                   (weight[:, :, ::-1, ::-1] with F and C swapped), padding 2 - p

The last line is why only paddings 0, 1, 2 are accepted: the input gradient of a 3x3 stride-1
convolution is again a 3x3 stride-1 convolution, with the complementary padding.
"""

import numpy as np

from ..backend import get_backend
from ..kernels import winograd as transforms_module
from ..layers.base import Workspace
from .products import products

_scratch = Workspace()


def forms(backend):
    """The input/output transforms of ``backend`` (kernels/winograd.py, winograd_jit.py)."""
    if backend == "numba":
        from ..kernels.winograd_jit import numba
        return numba
    return {"naive": transforms_module.naive, "numpy": transforms_module.vectorized}[backend]


class Winograd:
    """F(m x m, 3 x 3) for one layer; ``m`` is 2 or 4 (outputs per tile side). Conv2d checks the
    geometry (minivgg.conv.NEEDS)."""

    def __init__(self, kernel_size, stride, padding, backend, m=4):
        self.padding, self.backend, self.m = padding[0], backend, m
        self._buffers = Workspace()          # V, kept from forward for the weight gradient

    def _convolve(self, x, weight, bias, padding, store):
        """(y = x (*) weight + bias by F(m x m, 3 x 3), V); V lives in the Workspace ``store``."""
        form, m = forms(self.backend or get_backend()), self.m
        N, C, H, W = x.shape
        F = weight.shape[0]
        shape = (N, F, H + 2 * padding - 2, W + 2 * padding - 2)
        T = N * transforms_module.tiles(shape[2], m) * transforms_module.tiles(shape[3], m)
        U = transforms_module.filter_transform(weight, m)               # (alpha, alpha, F, C)
        V = form.input_transform(x, padding, m, out=store.get("V", (m + 2, m + 2, C, T), x.dtype))
        M = products(U.reshape(-1, F, C), V.reshape(-1, C, T),
                      _scratch.get("M", ((m + 2) ** 2, F, T), x.dtype)).reshape(m + 2, m + 2, F, T)
        return form.output_transform(M, shape, m, bias), V

    @staticmethod
    def footprint(x_shape, y_shape, kernel_size, padding, itemsize, m=4):
        """As Im2col.footprint: forward keeps V (alpha^2 x C x tiles); backward's temporaries are
        M and dM (alpha^2 x F x tiles), the input transform of dy (V of the dx convolution) and
        the filter-sized arrays alive together (dU, the flipped kernel, its transform)."""
        (N, C, H, W), (_, F, Ho, Wo) = x_shape, y_shape
        alpha2, tiles = (m + 2) ** 2, transforms_module.tiles
        T, T_dx = N * tiles(Ho, m) * tiles(Wo, m), N * tiles(H, m) * tiles(W, m)
        scratch = {"M": alpha2 * max(F * T, C * T_dx) * itemsize, "dM": alpha2 * F * T * itemsize,
                   "V": alpha2 * F * T_dx * itemsize, "filters": (2 * alpha2 + 9) * F * C * itemsize}
        return alpha2 * C * T * itemsize, scratch

    def forward(self, x, weight, bias):
        """x (N, C, H, W), weight (F, C, 3, 3), bias (F,) -> y (N, F, Ho, Wo)."""
        y, self._V = self._convolve(x, weight, bias, self.padding, self._buffers)
        return y

    def backward(self, dy, weight, dweight, input_grad=True):
        """dy (N, F, Ho, Wo) -> dx (N, C, H, W); fills dweight (F, C, 3, 3). Without
        ``input_grad``, dweight only (returns None)."""
        form, m = forms(self.backend or get_backend()), self.m
        dM = form.output_transform_adjoint(dy, m, out=_scratch.get("dM", (
            m + 2, m + 2, dy.shape[1], self._V.shape[3]), dy.dtype))
        alpha2, (F, T), C = (m + 2) ** 2, dM.shape[2:], self._V.shape[2]
        dU = products(dM.reshape(alpha2, F, T), self._V.reshape(alpha2, C, T).transpose(0, 2, 1),
                       np.empty((alpha2, F, C), dy.dtype)).reshape(m + 2, m + 2, F, C)
        dweight[...] = transforms_module.filter_transform_adjoint(dU, m)
        if not input_grad:
            return None
        flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        dx, _ = self._convolve(dy, flipped, None, 2 - self.padding, _scratch)
        return dx
