"""Inverted dropout (Srivastava et al. 2014), on fc6 and fc7 of every VGG."""

from ..backend import kernels, resolve
from .base import Layer, Workspace, check_gradient, check_input, check_real, require_forward, resolve_rng


class Dropout(Layer):
    """Training: y = x * m / (1 - p) with m ~ Bernoulli(1 - p) per element; evaluation: y = x.

    ``p`` is the probability of *dropping* a unit (0.5 in the paper). Dividing the kept units by
    1 - p at training time ("inverted" dropout) keeps E[y] = x, so evaluation needs no rescaling.
    The mask comes from the layer's own generator: ``Dropout(0.5, rng=0)`` drops the same units on
    every run. Backward: dx = dy * m / (1 - p), the same mask.

    The mask is kept as the uniform draws u (m = [u >= p]), drawn into a reused buffer; on the
    numba backend y and dx are then one fused parallel pass (kernels/jit.py).
    """

    def __init__(self, p=0.5, *, rng=None, backend=None):
        super().__init__()
        self.p = check_real("Dropout", p, "p (the probability of dropping a unit)", high=1.0)
        self.backend = backend
        self.rng = resolve_rng(rng)
        self._draws = None
        self._buffers = Workspace()

    def forward(self, x):
        check_input(self, x, ndim=None)
        if not self.training or self.p == 0.0:
            self._draws = ()                                # eval: the identity
            return x
        ### BEGIN SOLUTION
        draws = self._buffers.get("draws", x.shape, x.dtype)
        self._draws = self.rng.random(dtype=x.dtype, out=draws)
        ### END SOLUTION
        return self._apply(x)

    def backward(self, dout, input_grad=True):
        draws = require_forward(self, self._draws)
        if isinstance(draws, tuple):
            return dout
        check_gradient(self, dout, draws.shape)
        return self._apply(dout)

    def _apply(self, a):
        """a * m / (1 - p), with m = [draws >= p]."""
        scale = 1.0 / (1.0 - self.p)
        if resolve(self.backend) == "numba" and a.dtype == self._draws.dtype:
            return kernels("numba").dropout_apply(a, self._draws, self.p, scale)
        ### BEGIN SOLUTION
        return a * ((self._draws >= self.p) * a.dtype.type(scale))
        ### END SOLUTION

    def extra_repr(self):
        return f"p={self.p}"
