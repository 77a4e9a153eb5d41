"""The reference kernels: each one is its definition written as plain loops.

Read these first. They are slow on purpose (a 32x32 image takes seconds); the NumPy and Numba
kernels are tested against them on random shapes, strides and paddings.
"""

import numpy as np

from ..shapes import output_size


def conv2d_direct(x, weight, bias, stride, padding):
    """The convolution by its definition (a reference for tests and notebooks, not used by layers).

    y[n, f, oh, ow] = bias[f] + sum_{c, i, j} weight[f, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]

    x: (N, C, H, W), weight: (F, C, kh, kw), bias: (F,) -> y: (N, F, Ho, Wo).
    """
    N, C, H, W = x.shape
    F, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    ### BEGIN SOLUTION
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for oh in range(Ho):
                for ow in range(Wo):
                    window = x_pad[n, :, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw]
                    y[n, f, oh, ow] = bias[f] + np.sum(window * weight[f])
    ### END SOLUTION
    return y


def im2col(x, kernel, stride, padding, out=None):
    """Copy every receptive field of x into a column: cols[n, (c, i, j), (oh, ow)].

    cols[n, (c*kh + i)*kw + j, oh*Wo + ow] = x[n, c, oh*sh + i - ph, ow*sw + j - pw]  (0 outside x)
    """
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype) if out is None else out
    ### BEGIN SOLUTION
    for n in range(N):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for oh in range(Ho):
                        for ow in range(Wo):
                            h, w = oh * sh + i - ph, ow * sw + j - pw
                            inside = 0 <= h < H and 0 <= w < W
                            cols[n, row, oh * Wo + ow] = x[n, c, h, w] if inside else 0
    ### END SOLUTION
    return cols


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    """The adjoint of im2col: add each column entry back to the pixel it was copied from.

    A pixel that lies in several receptive fields receives the sum of their gradients, which is
    why this is ``+=`` and not ``=``; entries that came from the zero padding are dropped.
    """
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    dx = np.zeros(x_shape, dtype=cols.dtype) if out is None else out
    if out is not None:
        dx[...] = 0
    ### BEGIN SOLUTION
    for n in range(N):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for oh in range(Ho):
                        for ow in range(Wo):
                            h, w = oh * sh + i - ph, ow * sw + j - pw
                            if 0 <= h < H and 0 <= w < W:
                                dx[n, c, h, w] += cols[n, row, oh * Wo + ow]
    ### END SOLUTION
    return dx


def maxpool_forward(x, kernel, stride):
    """y[n, c, oh, ow] = max over the window at (oh*sh, ow*sw); argmax = where (h*W + w) it was.

    Tie rule: the first maximum in row-major window order wins (compare with ``>``, not ``>=``). NaN rule
    (PyTorch's, and ``np.max``'s): a NaN is larger than every number, so a window holding one gives
    NaN, and its first NaN takes the gradient. We start from the window's first element, not from
    -inf: an all -inf window then has a maximum, its first pixel. All three rules are graded.
    """
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = output_size(H, kh, sh, 0), output_size(W, kw, sw, 0)
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    ### BEGIN SOLUTION
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    h, w = oh * sh, ow * sw
                    best, where = x[n, c, h, w], h * W + w
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh + i, ow * sw + j
                            if x[n, c, h, w] > best:
                                best, where = x[n, c, h, w], h * W + w
                            elif np.isnan(x[n, c, h, w]) and not np.isnan(best):   # NaN beats all
                                best, where = x[n, c, h, w], h * W + w
                    y[n, c, oh, ow], argmax[n, c, oh, ow] = best, where
    ### END SOLUTION
    return y, argmax


def maxpool_backward(dout, argmax, x_shape):
    """Route each output's gradient to the input that was the maximum of its window.

    Overlapping windows (e.g. 3x3 stride 2) can share a maximum, so gradients add up (``+=``).
    """
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    ### BEGIN SOLUTION
    for n in range(N):
        for c in range(C):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    h, w = divmod(int(argmax[n, c, oh, ow]), W)
                    dx[n, c, h, w] += dout[n, c, oh, ow]
    ### END SOLUTION
    return dx


def _window(c, size, channels):
    """The channels c - size//2 ... c + (size-1)//2 that normalise channel c, clipped to [0, C)."""
    return range(max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1))


def lrn_forward(x, size, alpha, beta, k):
    """Local response normalisation across channels (Krizhevsky et al. 2012, Sec. 3.3):

    scale[n, c, h, w] = k + alpha * sum_{c' in window(c)} x[n, c', h, w]^2
    y = x * scale^-beta

    The sum is a Python float (float64) whatever x's dtype: in float32, x^2 would overflow from
    |x| = 1.8e19. scale is rounded to x's dtype once, when stored.
    """
    N, C, H, W = x.shape
    scale = np.empty_like(x)
    ### BEGIN SOLUTION
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    total = 0.0
                    for c2 in _window(c, size, C):
                        total += float(x[n, c2, h, w]) ** 2
                    scale[n, c, h, w] = k + alpha * total
    ### END SOLUTION
    return x * scale ** -beta, scale


def lrn_backward(dout, x, scale, size, alpha, beta):
    """dL/dx_j = dout_j scale_j^-beta - 2 alpha beta x_j sum_{c: j in window(c)} dout_c x_c scale_c^(-beta-1)

    The first term is the direct path through x_j; the sum is the path through every scale_c whose
    window contains channel j. Computed in Python floats (float64), rounded once to dx's dtype.
    """
    N, C, H, W = x.shape
    dx = np.empty_like(x)
    ### BEGIN SOLUTION
    for n in range(N):
        for j in range(C):
            for h in range(H):
                for w in range(W):
                    through_scales = 0.0
                    for c in range(C):
                        if j in _window(c, size, C):
                            through_scales += (float(dout[n, c, h, w]) * float(x[n, c, h, w])
                                               * float(scale[n, c, h, w]) ** (-beta - 1))
                    dx[n, j, h, w] = (float(dout[n, j, h, w]) * float(scale[n, j, h, w]) ** -beta
                                      - 2 * alpha * beta * float(x[n, j, h, w]) * through_scales)
    ### END SOLUTION
    return dx
