"""The Winograd transforms (kernels/winograd.py) compiled by Numba: one pass over memory each.

The NumPy form gathers the overlapping tiles into a copy, then applies B^T to rows and columns in
two more passes. Here one image plane is transformed at a time, in the two halves of
V = B^T d B, so that every inner loop runs along contiguous memory (measured single-threaded on
64x64x32x32: 116 ms, against 540 ms transforming one tile at a time in a small local array):

    rows:     R[xi, i, w] = sum_a B^T[xi, a] * x[i*m + a, w]       (whole image rows, per tile row i)
    columns:  V[xi, nu, c, tile (i, j)] = sum_b B^T[nu, b] * R[xi, i, j*m + b]

The column step reads R with stride m, so R is first copied into its column phases:
phases[xi, b] holds what every tile of the plane reads at its column b, in
tile order, so the tile loop is one contiguous run of th*tw, not th short runs.

Zero padding costs nothing: rows outside x are skipped and R's edge columns stay zero; zero
coefficients of B^T and A^T (half of them) are skipped too. The output transform does the same
in the other order and adds the bias while it writes y (y is touched once). Its adjoint, for the
weight gradient, dM = A dY A^T per tile, is the input transform with A (alpha x m) for B^T and no
padding, so one compiled kernel serves both. Threads: jit._run splits the planes between the
kernels' threads, as for every kernel of jit.py.
"""

import numpy as np
from numba import njit

from .jit import _threaded, kernel
from .winograd import tiles, transforms

# Cold compile and speed (see jit.kernel() and jit._im2col): two compiled kernels, not five (the
# adjoint shares the input transform's; the deinterleave and column steps are loops in it, not
# functions of their own). The scratch R and phases come from the caller, one pair per thread
# (jit._threaded), not np.empty; they are flat and indexed by unsigned (np.uint64) flat
# indices, as V's and M's rows are: no view per tile row (slices compile
# slowly and cost more than a short row's work) and no wraparound test (so LLVM vectorises).
# Tile rows are clipped by a conditional, not min(). Measured against the previous kernels
# (five, 3-D scratch from np.empty, slices), fresh processes with an empty cache: every kernel
# of a VGG run plus one Winograd layer 5.7-5.8 -> 3.9-4.5 s CPU (3 paired rounds, load 3);
# bit-identical outputs; the transforms 1.2-3.4x faster (VGG-16's Winograd shapes and CIFAR's).


@njit(inline="always")    # pasted into each kernel: no compiled function of its own (jit.kernel())
def _add_scaled(dst, d0, coefficient, src, s0, count):
    """dst[d0 + k] += coefficient * src[s0 + k] for k < count (unsigned indices: SIMD)."""
    for k in range(count):
        dst[np.uint64(d0 + k)] += coefficient * src[np.uint64(s0 + k)]


@kernel
def _input_transform(x, L, ph, pw, m, th, tw, V, R, phases, start, stop):
    """V[:, :, c, tile] = L d L^T for every (c, n) plane r in [start, stop) and tile d (rows and
    columns from i*m - ph, j*m - pw, zero outside x): L = B^T (alpha x alpha) for the input
    transform, L = A (alpha x m, no padding) for the output transform's adjoint. R (alpha, th,
    (tw + 1) m) and phases (alpha, L's columns, th tw) are this thread's scratch, flat."""
    N, C, H, W = x.shape
    alpha, columns = L.shape
    P, width = th * tw, (tw + 1) * m           # tiles per plane, R's row length
    for r in range(start, stop):
        c, n = r // N, r % N
        for q in range(R.size):
            R[q] = 0
        for i in range(th):                    # R = L (each tile row's image rows)
            for a in range(columns):
                h = i * m + a - ph
                if 0 <= h < H:
                    src = x[n, c, h]
                    for xi in range(alpha):
                        coefficient = L[xi, a]
                        if coefficient != 0:
                            _add_scaled(R, (xi * th + i) * width + pw, coefficient, src, 0, W)
        # phases[xi, b, i*tw + j] = R[xi, i, j*m + b]: what tile (i, j) reads at its column b,
        # every tile of the plane in one contiguous run (so the next loops read along memory)
        for xi in range(alpha):
            for b in range(columns):
                for i in range(th):
                    to, frm = (xi * columns + b) * P + i * tw, (xi * th + i) * width + b
                    for j in range(tw):
                        phases[np.uint64(to + j)] = R[np.uint64(frm + j * m)]
        t = n * P                              # V = R L^T: V[xi, nu, c, t + k] =
        for xi in range(alpha):                # sum_b L[nu, b] phases[xi, b, k]
            for nu in range(alpha):
                row = V[xi, nu, c]
                for k in range(P):
                    row[np.uint64(t + k)] = 0
                for b in range(columns):
                    coefficient = L[nu, b]
                    if coefficient != 0:
                        _add_scaled(row, t, coefficient, phases, (xi * columns + b) * P, P)


@kernel
def _output_transform(M, AT, bias, y, R, phases, start, stop):
    N, F, Ho, Wo = y.shape                     # scratch, flat: R (alpha, th, tw m),
    m, alpha = AT.shape                        # phases (alpha, m, th tw)
    th, tw = (Ho + m - 1) // m, (Wo + m - 1) // m
    P = th * tw                                # tiles per plane
    for r in range(start, stop):               # r = one (f, n) output plane: n fastest, so
        f, n = r // N, r % N                   # consecutive planes read M along memory
        t = n * P
        for q in range(phases.size):
            phases[q] = 0
        for xi in range(alpha):                # M A, phase b of every tile of the plane
            for nu in range(alpha):
                src = M[xi, nu, f]
                for b in range(m):
                    coefficient = AT[b, nu]
                    if coefficient != 0:
                        _add_scaled(phases, (xi * m + b) * P, coefficient, src, t, P)
        for xi in range(alpha):                # R[xi, i, j*m + b] = phases[xi, b, i*tw + j]
            for b in range(m):
                for i in range(th):
                    to, frm = (xi * th + i) * tw * m + b, (xi * m + b) * P + i * tw
                    for j in range(tw):
                        R[np.uint64(to + j * m)] = phases[np.uint64(frm + j)]
        for i in range(th):                    # y = A^T R + bias, whole rows, cropped
            rows = Ho - i * m if Ho - i * m < m else m        # no min(): see jit.kernel()
            for a in range(rows):
                dst = y[n, f, i * m + a]
                for w in range(Wo):
                    dst[w] = bias[f]
                for xi in range(alpha):
                    coefficient = AT[a, xi]
                    if coefficient != 0:
                        _add_scaled(dst, 0, coefficient, R, (xi * th + i) * tw * m, Wo)


def _sandwich(d, L, padding, m, th, tw, out):
    """out[:, :, c, tile] = L d L^T for every tile of d (N, C, H, W): _input_transform."""
    N, C = d.shape[:2]
    if out is None:
        out = np.empty((m + 2, m + 2, C, N * th * tw), d.dtype)
    scratch = (("winograd R", ((m + 2) * th * (tw + 1) * m,), d.dtype),
               ("winograd phases", ((m + 2) * L.shape[1] * th * tw,), d.dtype))
    _threaded(_input_transform, C * N, out.size, scratch, np.ascontiguousarray(d),
              L.astype(d.dtype), padding, padding, m, th, tw, out)
    return out


class numba:
    """The three transforms of kernels/winograd.py, compiled (same arguments and results)."""

    @staticmethod
    def input_transform(x, padding, m, out=None):
        H, W = x.shape[2:]
        th, tw = tiles(H + 2 * padding - 2, m), tiles(W + 2 * padding - 2, m)
        return _sandwich(x, transforms(m)[2], padding, m, th, tw, out)

    @staticmethod
    def output_transform(M, shape, m, bias=None, out=None):
        N, F, Ho, Wo = shape
        y = np.empty(shape, M.dtype) if out is None else out
        bias = np.zeros(F, M.dtype) if bias is None else bias
        th, tw = tiles(Ho, m), tiles(Wo, m)
        scratch = (("winograd R", ((m + 2) * th * tw * m,), M.dtype),
                   ("winograd phases", ((m + 2) * m * th * tw,), M.dtype))
        _threaded(_output_transform, N * F, M.size, scratch, M,
                  transforms(m)[0].astype(M.dtype), bias, y)
        return y

    @staticmethod
    def output_transform_adjoint(dy, m, out=None):
        """dM = A dY A^T per tile: the input transform's loops with A for B^T and no padding."""
        Ho, Wo = dy.shape[2:]
        return _sandwich(dy, np.ascontiguousarray(transforms(m)[0].T), 0, m, tiles(Ho, m),
                         tiles(Wo, m), out)
