"""Inverted dropout (Srivastava et al. 2014), on fc6 and fc7 of every VGG."""

import numpy as np

from .base import Layer, check_gradient, check_input, require_forward, resolve_rng


class Dropout(Layer):
    """Training: y = x * m / (1 - p) with m ~ Bernoulli(1 - p) per element; evaluation: y = x.

    ``p`` is the probability of *dropping* a unit (0.5 in the paper). Dividing the kept units by
    1 - p at training time ("inverted" dropout) keeps E[y] = x, so evaluation needs no rescaling.
    The mask comes from the layer's own generator: ``Dropout(0.5, rng=0)`` drops the same units on
    every run. Backward: dx = dy * m / (1 - p), the same mask.
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if not (isinstance(p, (int, float)) and 0.0 <= p < 1.0):
            raise ValueError(f"Dropout: p (the probability of dropping a unit) must be in [0, 1); "
                             f"got {p!r}")
        self.p = float(p)
        self.rng = resolve_rng(rng)
        self._mask = None

    def forward(self, x):
        check_input(self, x, ndim=None)
        if not self.training or self.p == 0.0:
            self._mask = 1.0
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        self._mask = keep * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, dout):
        mask = require_forward(self, self._mask)
        if np.ndim(mask):                                   # 1.0 in eval mode
            check_gradient(self, dout, mask.shape)
        return dout * mask

    def extra_repr(self):
        return f"p={self.p}"
