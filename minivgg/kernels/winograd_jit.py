"""The Winograd transforms (kernels/winograd.py) compiled by Numba: one pass over memory each.

The NumPy form gathers the overlapping tiles into a copy, then applies B^T to rows and columns in
two more passes. Here one image plane is transformed at a time, in the two halves of
V = B^T d B, so that every inner loop runs along contiguous memory (measured single-threaded on
64x64x32x32: 116 ms, against 540 ms transforming one tile at a time in a small local array):

    rows:     R[xi, i, w] = sum_a B^T[xi, a] * x[i*m + a, w]       (whole image rows, per tile row i)
    columns:  V[xi, nu, c, tile (i, j)] = sum_b B^T[nu, b] * R[xi, i, j*m + b]

The column step reads R with stride m, so R is first copied into its column phases
(``_deinterleave``): phases[xi, b] holds what every tile of the plane reads at its column b, in
tile order, so the tile loop is one contiguous run of th*tw, not th short runs.

Zero padding costs nothing: rows outside x are skipped and R's edge columns stay zero; zero
coefficients of B^T and A^T (half of them) are skipped too. The output transform does the same
in the other order and adds the bias while it writes y (y is touched once); its adjoint, for the
weight gradient, mirrors it. Threads: jit._run splits the rows of tiles between the kernels'
threads, as for every kernel of jit.py.
"""

import numpy as np

from .jit import _run, kernel
from .winograd import tiles, transforms


@kernel
def _input_transform(x, BT, ph, pw, m, th, tw, V, start, stop):
    N, C, H, W = x.shape
    alpha = m + 2
    R = np.empty((alpha, th, (tw + 1) * m), x.dtype)
    phases = np.empty((alpha, alpha, th * tw), x.dtype)
    for r in range(start, stop):               # r = one (c, n) image plane
        c, n = r // N, r % N
        R[:] = 0
        for i in range(th):                    # R = B^T (each tile row's alpha image rows)
            for a in range(alpha):
                h = i * m + a - ph
                if 0 <= h < H:
                    src = x[n, c, h]
                    for xi in range(alpha):
                        coefficient = BT[xi, a]
                        if coefficient != 0:
                            dst = R[xi, i, pw:pw + W]
                            for w in range(W):
                                dst[w] += coefficient * src[w]
        _deinterleave(R, m, phases)
        _tile_columns(phases, BT, V, c, n * th * tw)      # V = R B


@kernel
def _deinterleave(R, m, phases):
    """phases[xi, b, i*tw + j] = R[xi, i, j*m + b]: what tile (i, j) reads at its column b, for
    every tile of the plane in a contiguous run (so the tile loops read along memory)."""
    alpha, th = R.shape[:2]
    tw = phases.shape[2] // th
    for xi in range(alpha):
        for b in range(phases.shape[1]):
            for i in range(th):
                src, dst = R[xi, i], phases[xi, b, i * tw:(i + 1) * tw]
                for j in range(tw):
                    dst[j] = src[j * m + b]


@kernel
def _tile_columns(phases, L, out, plane, t):
    """out[xi, nu, plane, t + k] = sum_b L[nu, b] * phases[xi, b, k] for the plane's tiles k: the
    column half of a transform, L = B^T (input) or A (the output transform's adjoint)."""
    alpha, columns, count = phases.shape
    for xi in range(alpha):
        for nu in range(L.shape[0]):
            row = out[xi, nu, plane, t:t + count]
            row[:] = 0
            for b in range(columns):
                coefficient = L[nu, b]
                if coefficient != 0:
                    src = phases[xi, b]
                    for k in range(count):
                        row[k] += coefficient * src[k]


@kernel
def _output_transform(M, AT, bias, y, start, stop):
    N, F, Ho, Wo = y.shape
    m, alpha = AT.shape
    th, tw = (Ho + m - 1) // m, (Wo + m - 1) // m
    R = np.empty((alpha, th, tw * m), M.dtype)
    phases = np.empty((alpha, m, th * tw), M.dtype)
    for r in range(start, stop):               # r = one (f, n) output plane: n fastest, so
        f, n = r // N, r % N                   # consecutive planes read M along memory
        t = n * th * tw
        phases[:] = 0
        for xi in range(alpha):                # M A, phase b of every tile of the plane
            for nu in range(alpha):
                src = M[xi, nu, f, t:t + th * tw]
                for b in range(m):
                    coefficient = AT[b, nu]
                    if coefficient != 0:
                        dst = phases[xi, b]
                        for k in range(th * tw):
                            dst[k] += coefficient * src[k]
        for xi in range(alpha):                # R[xi, i, j*m + b] = phases[xi, b, i*tw + j]
            for b in range(m):
                for i in range(th):
                    src, dst = phases[xi, b, i * tw:(i + 1) * tw], R[xi, i]
                    for j in range(tw):
                        dst[j * m + b] = src[j]
        for i in range(th):                    # y = A^T R + bias, whole rows, cropped
            for a in range(min(m, Ho - i * m)):
                dst = y[n, f, i * m + a]
                dst[:] = bias[f]
                for xi in range(alpha):
                    coefficient = AT[a, xi]
                    if coefficient != 0:
                        src = R[xi, i]
                        for w in range(Wo):
                            dst[w] += coefficient * src[w]


@kernel
def _output_transform_adjoint(dy, AT, A, dM, start, stop):
    N, F, Ho, Wo = dy.shape
    m, alpha = AT.shape
    th, tw = (Ho + m - 1) // m, (Wo + m - 1) // m
    R = np.empty((alpha, th, tw * m), dy.dtype)
    phases = np.empty((alpha, m, th * tw), dy.dtype)
    for r in range(start, stop):               # r = one (f, n) plane of dy
        f, n = r // N, r % N
        R[:] = 0
        for i in range(th):                    # R = A (each tile row's m rows of dy)
            for a in range(min(m, Ho - i * m)):
                src = dy[n, f, i * m + a]
                for xi in range(alpha):
                    coefficient = AT[a, xi]
                    if coefficient != 0:
                        dst = R[xi, i, :Wo]
                        for w in range(Wo):
                            dst[w] += coefficient * src[w]
        _deinterleave(R, m, phases)
        _tile_columns(phases, A, dM, f, n * th * tw)      # dM = R A^T


class numba:
    """The three transforms of kernels/winograd.py, compiled (same arguments and results)."""

    @staticmethod
    def input_transform(x, padding, m, out=None):
        N, C, H, W = x.shape
        th, tw = tiles(H + 2 * padding - 2, m), tiles(W + 2 * padding - 2, m)
        if out is None:
            out = np.empty((m + 2, m + 2, C, N * th * tw), x.dtype)
        BT = transforms(m)[2].astype(x.dtype)
        _run(_input_transform, C * N, out.size, np.ascontiguousarray(x), BT, padding,
             padding, m, th, tw, out)
        return out

    @staticmethod
    def output_transform(M, shape, m, bias=None, out=None):
        N, F, Ho, Wo = shape
        y = np.empty(shape, M.dtype) if out is None else out
        bias = np.zeros(F, M.dtype) if bias is None else bias
        _run(_output_transform, N * F, M.size, M, transforms(m)[0].astype(M.dtype),
             bias, y)
        return y

    @staticmethod
    def output_transform_adjoint(dy, m, out=None):
        N, F, Ho, Wo = dy.shape
        th, tw = tiles(Ho, m), tiles(Wo, m)
        if out is None:
            out = np.empty((m + 2, m + 2, F, N * th * tw), dy.dtype)
        AT = transforms(m)[0].astype(dy.dtype)
        _run(_output_transform_adjoint, F * N, out.size, np.ascontiguousarray(dy), AT,
             np.ascontiguousarray(AT.T), out)
        return out
