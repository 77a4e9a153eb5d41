"""2-D convolution (the paper's conv3 and conv1 layers); how it is computed is in minivgg/conv/."""

import numpy as np

from ..conv.choice import ALGORITHMS, NEEDS, check_algorithm, choose, supports
from ..shapes import conv_output_shape, pair
from .base import Layer, check_count, check_gradient, check_input, random_weight, require_forward


class Conv2d(Layer):
    """y[n, f] = bias[f] + sum_c weight[f, c] (*) x_pad[n, c]   (cross-correlation, as in every CNN)

    x: (N, C, H, W) -> y: (N, F, Ho, Wo),  Ho = (H + 2*ph - kh) // sh + 1  (likewise Wo)
    params: weight (F, C, kh, kw) ~ N(0, weight_std^2) (default He: sqrt(2 / (C*kh*kw))), bias 0

    Backward:  dbias[f] = sum_{n, oh, ow} dy[n, f]
               dweight[f, c] = sum_n x_pad[n, c] (*) dy[n, f]
               dx[n, c] = sum_f dy_pad[n, f] (*) flip(weight[f, c])   (a "full" convolution)

    ``algorithm`` says how the sums are computed (minivgg/conv/): "im2col" (unrolled windows, one
    matrix product; any shape), "winograd" / "winograd2x2" (Winograd's F(4x4, 3x3) / F(2x2, 3x3):
    3x3, stride 1), "direct" (a product per kernel offset; stride 1), or "auto" (the default:
    ``minivgg.conv.choose``'s measured rule). Asking for an algorithm that does not support the
    layer's shape is a ValueError. ``auto`` decides per input size (``algorithm_for``).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, *,
                 weight_std=None, dtype=np.float32, backend=None, rng=None, algorithm="auto"):
        super().__init__()
        self.in_channels = in_channels = check_count("Conv2d", in_channels, "in_channels")
        self.out_channels = out_channels = check_count("Conv2d", out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0; got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        if check_algorithm(algorithm) != "auto" and not supports(algorithm, *self._geometry):
            raise ValueError(f"Conv2d: algorithm={algorithm!r} needs {NEEDS[algorithm][0]}; got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}, "
                             f"padding={self.padding}")
        self.algorithm, self.backend = algorithm, backend
        self._computers = {}                 # algorithm name -> its object (and its buffers)
        shape = (out_channels, in_channels, *self.kernel_size)
        self.params = {"weight": random_weight(shape, weight_std, dtype, rng),
                       "bias": np.zeros(out_channels, dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._x_shape = None

    @property
    def _geometry(self):
        return self.kernel_size, self.stride, self.padding

    def algorithm_for(self, input_shape):
        """The algorithm used for one input sample of ``input_shape`` (C, H, W)."""
        if self.algorithm != "auto":
            return self.algorithm
        return choose(*self._geometry, self.in_channels, self.out_channels,
                      self.output_shape(input_shape)[1:])

    def output_shape(self, input_shape):
        shape = (1, *input_shape)
        return conv_output_shape(shape, self.params["weight"].shape, self.stride, self.padding)[1:]

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        name = self.algorithm_for(x.shape[1:])
        if name not in self._computers:
            self._computers[name] = ALGORITHMS[name](*self._geometry, self.backend)
        self._compute, self._x_shape = self._computers[name], x.shape
        return self._compute.forward(x, self.params["weight"], self.params["bias"])

    def backward(self, dout, input_grad=True):
        """dx, or with ``input_grad=False`` only the parameters' gradients and None (a network's
        first layer: a training step needs no gradient of the images)."""
        x_shape = require_forward(self, self._x_shape)
        check_gradient(self, dout, (x_shape[0], *self.output_shape(x_shape[1:])))
        self.grads["bias"][...] = dout.sum(axis=(0, 2, 3))
        return self._compute.backward(dout, self.params["weight"], self.grads["weight"],
                                      input_grad)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, algorithm={self.algorithm!r}")
