"""The kernels in vectorised NumPy: the same definitions as naive.py without Python loops over pixels.

The trick throughout is ``sliding_window_view``: a strided *view* of x whose entry
[n, c, oh, ow, i, j] is x_pad[n, c, oh*sh + i, ow*sw + j], built without copying anything.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..shapes import output_size


def _windows(x, kernel, stride, padding):
    """View (N, C, Ho, Wo, kh, kw) of every window of the zero-padded x (no copy but the padding)."""
    (ph, pw), (sh, sw) = padding, stride
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::sh, ::sw]


def im2col(x, kernel, stride, padding, out=None):
    """cols[n, (c, i, j), (oh, ow)] = x_pad[n, c, oh*sh + i, ow*sw + j]: one copy of a window view."""
    N, C = x.shape[:2]
    ### BEGIN SOLUTION
    windows = _windows(x, kernel, stride, padding)                  # (N, C, Ho, Wo, kh, kw)
    Ho, Wo = windows.shape[2:4]
    if out is None:
        out = np.empty((N, C * kernel[0] * kernel[1], Ho * Wo), dtype=x.dtype)
    # reorder to (N, C, kh, kw, Ho, Wo) so rows are (c, i, j) and columns (oh, ow)
    np.copyto(out.reshape(N, C, kernel[0], kernel[1], Ho, Wo), windows.transpose(0, 1, 4, 5, 2, 3))
    ### END SOLUTION
    return out


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    """Add the columns back into the padded image, one kernel offset (i, j) at a time.

    For a fixed (i, j), the pixels hit by all output positions form a strided slice of x_pad, so
    kh*kw slice additions replace the loop over pixels; overlapping windows add up correctly.
    """
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    ### BEGIN SOLUTION
    x_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    cols6 = cols.reshape(N, C, kh, kw, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            x_pad[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += cols6[:, :, i, j]
    ### END SOLUTION
    dx = x_pad[:, :, ph:ph + H, pw:pw + W]
    if out is None:
        return np.ascontiguousarray(dx)
    np.copyto(out, dx)
    return out


def maxpool_forward(x, kernel, stride):
    """Max and arg-max over each window; ``np.argmax`` keeps the first maximum (the tie rule) and
    stops at the first NaN (the NaN rule)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    windows = _windows(x, kernel, stride, (0, 0))                    # (N, C, Ho, Wo, kh, kw)
    Ho, Wo = windows.shape[2:4]
    flat = windows.reshape(N, C, Ho, Wo, kh * kw)
    k = flat.argmax(axis=-1)                                         # index inside the window
    y = np.take_along_axis(flat, k[..., None], axis=-1)[..., 0]
    # window index k -> (i, j) = divmod(k, kw) -> plane index (oh*sh + i) * W + (ow*sw + j)
    oh = np.arange(Ho).reshape(Ho, 1) * sh
    ow = np.arange(Wo).reshape(1, Wo) * sw
    argmax = (oh + k // kw) * W + (ow + k % kw)
    return y, argmax


def maxpool_backward(dout, argmax, x_shape):
    """Scatter-add dout to the arg-max positions; ``np.bincount`` sums duplicates (overlaps)."""
    N, C, H, W = x_shape
    plane_start = (np.arange(N * C) * (H * W)).reshape(N, C, 1, 1)
    dx = np.bincount((argmax + plane_start).ravel(), weights=dout.ravel(), minlength=N * C * H * W)
    return dx.astype(dout.dtype).reshape(x_shape)


def _channel_window_sum(a, before, after):
    """s[:, c] = a[:, c - before] + ... + a[:, c + after] (zero outside): a moving sum over channels."""
    padded = np.pad(a, ((0, 0), (before, after), (0, 0), (0, 0)))
    return sliding_window_view(padded, before + after + 1, axis=1).sum(axis=-1)


def lrn_forward(x, size, alpha, beta, k):
    """scale = k + alpha * (moving sum of x^2 over the channel window); y = x * scale^-beta.

    The squares and their sums are float64 (in float32, x^2 overflows from |x| = 1.8e19), then
    scale is rounded once to x's dtype, as in every backend."""
    x64 = x.astype(np.float64)
    scale = (k + alpha * _channel_window_sum(x64 * x64, size // 2, (size - 1) // 2)).astype(x.dtype)
    return x * scale ** -beta, scale


def lrn_backward(dout, x, scale, size, alpha, beta):
    """dx = dout * scale^-beta - 2 alpha beta x * (transposed moving sum of dout x scale^(-beta-1)).

    Channel j lies in the window of channel c exactly when c lies in [j - (size-1)//2, j + size//2],
    the window mirrored; for odd sizes the two are the same. The sum is float64, as the forward's.
    """
    terms = dout.astype(np.float64) * x * scale.astype(np.float64) ** (-beta - 1)
    through_scales = _channel_window_sum(terms, (size - 1) // 2, size // 2)
    return (dout * scale ** -beta - 2 * alpha * beta * x * through_scales).astype(x.dtype)
