"""The kernels compiled by Numba: the loops of naive.py, typed and parallel over images x channels.

``cache=True`` keeps the machine code on disk beside this file, so only the first import on a
machine pays the compile time. No ``fastmath``: gradient checks cover these kernels and need
IEEE arithmetic.
"""

import numpy as np
from numba import njit, prange

from ..shapes import output_size


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, cols):
    N, C, H, W = x.shape
    Wo = (W + 2 * pw - kw) // sw + 1
    Ho = (H + 2 * ph - kh) // sh + 1
    for r in prange(N * C * kh * kw):          # one (n, row) of cols per task
        n, row = r // (C * kh * kw), r % (C * kh * kw)
        c, ij = row // (kh * kw), row % (kh * kw)
        i, j = ij // kw, ij % kw
        for oh in range(Ho):
            h = oh * sh + i - ph
            base = oh * Wo
            if h < 0 or h >= H:
                for ow in range(Wo):
                    cols[n, row, base + ow] = 0
                continue
            for ow in range(Wo):
                w = ow * sw + j - pw
                cols[n, row, base + ow] = x[n, c, h, w] if 0 <= w < W else 0


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, ph, pw, dx):
    N, C, H, W = dx.shape
    Wo = (W + 2 * pw - kw) // sw + 1
    Ho = (H + 2 * ph - kh) // sh + 1
    for p in prange(N * C):                    # each task owns one (n, c) plane: no write races
        n, c = p // C, p % C
        dx[n, c] = 0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oh in range(Ho):
                    h = oh * sh + i - ph
                    if h < 0 or h >= H:
                        continue
                    for ow in range(Wo):
                        w = ow * sw + j - pw
                        if 0 <= w < W:
                            dx[n, c, h, w] += cols[n, row, oh * Wo + ow]


def im2col(x, kernel, stride, padding, out=None):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    if out is None:
        out = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), kh, kw, sh, sw, ph, pw, out)
    return out


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    if out is None:
        out = np.empty(x_shape, dtype=cols.dtype)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    _col2im(np.ascontiguousarray(cols), kh, kw, sh, sw, ph, pw, out)
    return out


@njit(parallel=True, cache=True)
def _maxpool_forward(x, kh, kw, sh, sw, y, argmax):
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for p in prange(N * C):
        n, c = p // C, p % C
        for oh in range(Ho):
            for ow in range(Wo):
                h0, w0 = oh * sh, ow * sw
                best, where = x[n, c, h0, w0], h0 * W + w0
                for i in range(kh):
                    for j in range(kw):
                        v = x[n, c, h0 + i, w0 + j]
                        if v > best:                   # strict: the first maximum wins ties
                            best, where = v, (h0 + i) * W + w0 + j
                y[n, c, oh, ow] = best
                argmax[n, c, oh, ow] = where


@njit(parallel=True, cache=True)
def _maxpool_backward(dout, argmax, dx):
    N, C, Ho, Wo = dout.shape
    W = dx.shape[3]
    for p in prange(N * C):
        n, c = p // C, p % C
        dx[n, c] = 0
        for oh in range(Ho):
            for ow in range(Wo):
                a = argmax[n, c, oh, ow]
                dx[n, c, a // W, a % W] += dout[n, c, oh, ow]


def maxpool_forward(x, kernel, stride):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = output_size(H, kh, sh, 0), output_size(W, kw, sw, 0)
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    _maxpool_forward(np.ascontiguousarray(x), kh, kw, sh, sw, y, argmax)
    return y, argmax


def maxpool_backward(dout, argmax, x_shape):
    dx = np.empty(x_shape, dtype=dout.dtype)
    _maxpool_backward(np.ascontiguousarray(dout), argmax, dx)
    return dx


@njit(parallel=True, cache=True)
def _lrn_forward(x, size, alpha, beta, k, y, scale):
    N, C, H, W = x.shape
    before, after = size // 2, (size - 1) // 2
    for p in prange(N * H):
        n, h = p // H, p % H
        for w in range(W):
            for c in range(C):
                total = 0.0
                for c2 in range(max(0, c - before), min(C, c + after + 1)):
                    total += x[n, c2, h, w] * x[n, c2, h, w]
                s = k + alpha * total
                scale[n, c, h, w] = s
                y[n, c, h, w] = x[n, c, h, w] * s ** -beta


@njit(parallel=True, cache=True)
def _lrn_backward(dout, x, scale, size, alpha, beta, dx):
    N, C, H, W = x.shape
    before, after = size // 2, (size - 1) // 2
    for p in prange(N * H):
        n, h = p // H, p % H
        for w in range(W):
            for j in range(C):
                through_scales = 0.0
                for c in range(max(0, j - after), min(C, j + before + 1)):
                    through_scales += dout[n, c, h, w] * x[n, c, h, w] * scale[n, c, h, w] ** (-beta - 1)
                dx[n, j, h, w] = (dout[n, j, h, w] * scale[n, j, h, w] ** -beta
                                  - 2 * alpha * beta * x[n, j, h, w] * through_scales)


def lrn_forward(x, size, alpha, beta, k):
    x = np.ascontiguousarray(x)
    y, scale = np.empty_like(x), np.empty_like(x)
    _lrn_forward(x, size, alpha, beta, k, y, scale)
    return y, scale


def lrn_backward(dout, x, scale, size, alpha, beta):
    dx = np.empty_like(x)
    _lrn_backward(np.ascontiguousarray(dout), x, scale, size, alpha, beta, dx)
    return dx
