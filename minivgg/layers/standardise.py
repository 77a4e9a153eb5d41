"""Divide the (mean-subtracted) input by the training pixels' standard deviation."""

import numpy as np

from .base import Layer, check_gradient, check_input, require_forward


class Standardise(Layer):
    """y = x / std, no parameters; x: any shape -> y: the same shape. Backward: dx = dy / std.
    With one std per channel (a sequence), x is (N, C, H, W) and channel c is divided by std[c].

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
        values = list(std) if isinstance(std, (list, tuple, np.ndarray)) else [std]
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, float, np.number))
                             or not np.isfinite(v) or not v > 0 for v in values):
            raise ValueError(f"Standardise: std must be a positive number; got {std!r} (or a "
                             f"sequence of them, one per input channel)")
        # One std, or one per channel (torchvision's weights expect ImageNet's: minivgg.io)
        self.std = float(values[0]) if len(values) == 1 and not isinstance(
            std, (list, tuple, np.ndarray)) else tuple(float(v) for v in values)
        self._inverse = 1.0 / np.array(values, np.float64).reshape(-1, 1, 1)
        self._shape = None

    def _scale(self, x, what):
        if isinstance(self.std, float):
            return x * x.dtype.type(1.0 / self.std)
        if x.ndim != 4 or x.shape[1] != len(self.std):
            raise ValueError(f"Standardise: {what} must be (N, {len(self.std)}, H, W) for "
                             f"{len(self.std)} per-channel stds; got shape {x.shape}")
        return x * self._inverse.astype(x.dtype)

    def forward(self, x):
        check_input(self, x, ndim=None)
        self._shape = x.shape
        return self._scale(x, "x")

    def backward(self, dout, input_grad=True):
        check_gradient(self, dout, require_forward(self, self._shape))
        return self._scale(dout, "dout")

    def extra_repr(self):
        return "std=" + (f"{self.std:.4g}" if isinstance(self.std, float)
                         else "(" + ", ".join(f"{v:.4g}" for v in self.std) + ")")
