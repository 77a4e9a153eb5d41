"""Local response normalisation across channels, as in AlexNet and the paper's A-LRN network."""

from ..backend import kernels
from .base import Layer, check_count, check_gradient, check_input, check_real, require_forward

CONVENTIONS = ("krizhevsky", "pytorch")


class LocalResponseNorm(Layer):
    """b_c = a_c / (k + alpha * sum_{c' = c - n//2}^{c + (n-1)//2} a_{c'}^2)^beta   (clipped to [0, C))

    x: (N, C, H, W) -> y: same shape. Defaults are Krizhevsky et al. (2012)'s, which the paper
    names for A-LRN: n = 5, k = 2, alpha = 1e-4, beta = 0.75.

    ``convention`` says what ``alpha`` multiplies:
      "krizhevsky" (default): the *sum* of squares, exactly the formula above;
      "pytorch": their *mean*, alpha / n * sum, as in Caffe and ``torch.nn.LocalResponseNorm``
                 (whose default k is 1, not 2: pass k yourself).
    So Krizhevsky's alpha equals PyTorch's alpha / n: both conventions give the same layer when the
    PyTorch-style alpha is n times larger. The window is n channels wide, from c - n//2 to
    c + (n-1)//2 (PyTorch's padding); for odd n, as here, that is Krizhevsky's symmetric window.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, *, convention="krizhevsky",
                 backend=None):
        super().__init__()
        if convention not in CONVENTIONS:
            raise ValueError(f"LocalResponseNorm: convention must be one of {CONVENTIONS}; "
                             f"got {convention!r}")
        self.size = check_count("LocalResponseNorm", size, "size")
        self.alpha, self.beta, self.k = (check_real("LocalResponseNorm", value, name)
                                         for value, name in ((alpha, "alpha"), (beta, "beta"),
                                                             (k, "k")))
        self.convention = convention
        self.backend = backend
        self._cache = None

    @property
    def alpha_per_sum(self):
        """The factor that multiplies the sum of squares: alpha, or alpha / n for "pytorch"."""
        return self.alpha / self.size if self.convention == "pytorch" else self.alpha

    def forward(self, x):
        check_input(self, x, 4)
        y, scale = kernels(self.backend).lrn_forward(x, self.size, self.alpha_per_sum, self.beta,
                                                     self.k)
        self._cache = (x, scale)
        return y

    def backward(self, dout, input_grad=True):
        x, scale = require_forward(self, self._cache)
        check_gradient(self, dout, x.shape)
        return kernels(self.backend).lrn_backward(dout, x, scale, self.size, self.alpha_per_sum,
                                                  self.beta)

    def extra_repr(self):
        return (f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"convention={self.convention!r}")
