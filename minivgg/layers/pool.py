"""Max-pooling: the paper's 2x2 windows with stride 2, and overlapping ones (AlexNet's 3x3/2)."""

from ..backend import kernels
from ..shapes import output_size, pair
from .base import Layer, check_gradient, check_input, require_forward


class MaxPool2d(Layer):
    """y[n, c, oh, ow] = max_{i < kh, j < kw} x[n, c, oh*sh + i, ow*sw + j]

    x: (N, C, H, W) -> y: (N, C, Ho, Wo),  Ho = (H - kh) // sh + 1  (floor: a partial window at
    the bottom/right edge is dropped, as in PyTorch; Caffe rounds up instead).

    Backward: the max is locally the identity on its arg-max and constant in the others, so
    dx gets dy at the arg-max of each window and 0 elsewhere. Windows that overlap (stride <
    kernel) can share an arg-max: those gradients add. Tie rule (all backends): the first
    maximum in row-major window order takes the whole gradient. NaN propagates, as in PyTorch:
    a window holding a NaN outputs NaN (its first NaN takes the gradient).
    """

    def __init__(self, kernel_size=2, stride=None, *, backend=None):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(self.kernel_size if stride is None else stride, "stride")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"MaxPool2d: kernel_size and stride must be >= 1; got "
                             f"{self.kernel_size}, {self.stride}")
        self.backend = backend
        self._argmax = None

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C, *(output_size(size, k, s, 0)
                     for size, k, s in zip((H, W), self.kernel_size, self.stride)))

    def forward(self, x):
        check_input(self, x, 4)
        self.output_shape(x.shape[1:])              # raises if the window does not fit
        y, self._argmax = kernels(self.backend).maxpool_forward(x, self.kernel_size, self.stride)
        self._x_shape = x.shape
        return y

    def backward(self, dout, input_grad=True):
        argmax = require_forward(self, self._argmax)
        check_gradient(self, dout, argmax.shape)
        return kernels(self.backend).maxpool_backward(dout, argmax, self._x_shape)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
