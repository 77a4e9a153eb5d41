"""Soft-max and the multinomial logistic regression loss the paper trains with (Sec. 3.1)."""

import numpy as np

from .base import Layer, check_gradient, check_input, check_loss_input, require_forward


def log_softmax(logits):
    """log p = z - logsumexp(z), row-wise. Subtracting the row maximum first keeps exp() <= 1, so
    logits of +-1e4 neither overflow nor lose the answer."""
    ### BEGIN SOLUTION
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    ### END SOLUTION


def softmax(logits):
    """p[n, k] = exp(z[n, k]) / sum_j exp(z[n, j]); logits: (N, K) -> probabilities (N, K)."""
    return np.exp(log_softmax(logits))


def softmax_cross_entropy(logits, labels):
    """Mean negative log-likelihood of the true classes, and its gradient with respect to the logits.

    logits: (N, K) float, labels: (N,) ints in [0, K)  ->  loss (a float), dlogits (N, K)
        L = -1/N sum_n log p[n, y_n],      dL/dz[n, k] = (p[n, k] - [k == y_n]) / N
    """
    check_loss_input(logits, "logits", "K")
    labels = np.asarray(labels)
    N, K = logits.shape
    if labels.shape != (N,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {N} integers (one per row of logits); got "
                         f"shape {labels.shape}, dtype {labels.dtype}")
    if (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must lie in [0, {K}); got values from {labels.min()} to "
                         f"{labels.max()}")
    ### BEGIN SOLUTION
    log_p = log_softmax(logits)
    rows = np.arange(N)
    loss = -log_p[rows, labels].mean()
    dlogits = np.exp(log_p)
    dlogits[rows, labels] -= 1
    dlogits /= N
    return float(loss), dlogits
    ### END SOLUTION


class Softmax(Layer):
    """y = softmax(x) row-wise; x: (N, K) -> y: (N, K).

    Backward (the Jacobian dy_k/dx_j = y_k ([k == j] - y_j) applied to dy):
        dx = y * (dy - sum_k dy_k y_k)
    For training use ``softmax_cross_entropy`` on the logits instead: it is cheaper and stabler.
    """

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        check_input(self, x, 2)
        self._y = softmax(x)
        return self._y

    def backward(self, dout, input_grad=True):
        y = require_forward(self, self._y)
        check_gradient(self, dout, y.shape)
        return y * (dout - (dout * y).sum(axis=1, keepdims=True))
