"""Divide the (mean-subtracted) input by the training pixels' standard deviation."""

import numpy as np

from .base import Layer, check_gradient, check_input, require_forward


class Standardise(Layer):
    """y = x / std, no parameters; x: any shape -> y: the same shape. Backward: dx = dy / std.

    The one deviation from the paper's preprocessing (Sec. 2.1 only subtracts the mean RGB):
    mean-subtracted pixels spread over ~70 grey levels, and a variance-scaled initialisation
    (Glorot, He) assumes inputs of spread ~1. Without this the first layer's gradients are ~std
    times, its effective learning rate ~std^2 times, too large: at lr 1e-2 the small VGGs of
    ``minivgg train`` diverged (He) or stalled at chance (Glorot). The paper's Caffe training got
    away with raw pixels because its weights started at std 0.01. As the network's first layer
    (``build_vgg(input_std=...)``) it travels with the model into evaluation, dense testing and
    saved files.
    """

    elementwise = True        # for minivgg.arithmetic: leaves the receptive field alone

    def __init__(self, std):
        super().__init__()
        if isinstance(std, bool) or not isinstance(std, (int, float, np.floating)) or not std > 0:
            raise ValueError(f"Standardise: std must be a positive number; got {std!r}")
        self.std = float(std)
        self._shape = None

    def forward(self, x):
        check_input(self, x, ndim=None)
        self._shape = x.shape
        return x * x.dtype.type(1.0 / self.std)

    def backward(self, dout):
        check_gradient(self, dout, require_forward(self, self._shape))
        return dout * dout.dtype.type(1.0 / self.std)

    def extra_repr(self):
        return f"std={self.std:.4g}"
