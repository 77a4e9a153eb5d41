"""The Winograd transforms (kernels/winograd.py) compiled by Numba: one small kernel runs all three.

Each transform is a sandwich applied to every tile: V = B^T d B (input), M -> A^T M A (output, +
bias) and dY -> A dY A^T (the output transform's adjoint, for the weight gradient). The NumPy form
gathers the overlapping tiles into a copy, then applies the matrix to rows and columns in two more
passes. Here one image plane is transformed at a time, in the two halves of the sandwich, so that
every inner loop runs along contiguous memory. For the input transform (L = B^T):

    rows:     R[xi, i, w] = sum_a L[xi, a] * x[i*m + a, w]        (whole image rows, per tile row i)
    columns:  V[xi, nu, c, tile (i, j)] = sum_b L[nu, b] * R[xi, i, j*m + b]

The column step reads R with stride m, so R is first copied into its column phases:
phases[xi, b] holds what every tile of the plane reads at its column b, in tile order, so the
column step is one contiguous run of th*tw per (xi, nu, b), not th short runs. The adjoint is the
same with L = A (alpha x m) and no padding; the output transform runs the three steps backwards
(columns into phases, phases back to rows, rows into y, starting from the bias).

Every step is a few *operations*, one per nonzero coefficient: a scaled copy of a strided run of
memory, repeated down the tile rows,

    for q < reps, k < count:   to[d + q*dstep + k*ds]  (+)=  coefficient * frm[s + q*sstep + k*ss]

with "=" (from 0, or from the bias) for the first term of each sum. _input_table and
_output_table write a transform's operations down once per shape, in Python; one compiled kernel,
_run_table, runs such a table on every plane. Zero padding costs nothing: rows outside x are left
out of each operation's range and R's edge columns stay zero; zero coefficients of B^T and A^T
(half of them) have no operation. Threads: jit._run splits the planes between the kernels'
threads, as for every kernel of jit.py.
"""

import functools

import numpy as np

from .jit import _threaded, kernel
from .winograd import tiles, transforms

# Cold compile (see jit.kernel()): one small kernel, not one per transform. The two transform
# kernels it replaces (loops over xi, nu, a, b written out, a helper pasted at four call sites,
# 3- and 4-D views) took 1.4-1.6 s of Numba's compile on a quiet machine, nearly half of it
# Numba's own lowering in Python; the table runner has one loop nest (two innermost loops), flat
# arrays and unsigned flat indices (no wraparound test, so LLVM vectorises: it adds a run-time
# check that the strides are 1, as in jit._im2col). Bit-identical outputs: every sum adds the
# same terms in the same order.

FROM_SOURCE, WITHIN_SCRATCH, TO_TARGET = 0, 1, 2      # an operation's stage: what it reads, writes
BLOCK = 8
_COLUMNS = ("stage", "first", "reps", "count", "d", "dstep", "ds", "s", "sstep", "ss")


@kernel
def _run_table(table, coefficients, source, target, strides, starts, zeroed, scratch, start, stop):
    """Run the operations ``table`` (rows as in _COLUMNS, each with its coefficient) on every plane
    r = (c, n) in [start, stop), n fastest, all arrays flat: a FROM_SOURCE operation reads source
    from c*strides[0] + n*strides[1] on, a TO_TARGET one writes target from c*strides[2] +
    n*strides[3] on, the others stay in this thread's scratch, whose first ``zeroed`` elements
    are zeroed per plane. The first term of a sum starts from starts[c] in target (the bias, or 0)
    and from starts[-1] = 0 in scratch."""
    N, zero = strides[4], starts[starts.size - 1]
    for r in range(start, stop):
        c, n = r // N, r % N
        for q in range(zeroed):
            scratch[q] = 0
        for o in range(table.shape[0]):
            stage, first, reps, count = table[o, 0], table[o, 1], table[o, 2], table[o, 3]
            d, dstep, ds, s, sstep, ss = (table[o, 4], table[o, 5], table[o, 6], table[o, 7],
                                          table[o, 8], table[o, 9])
            frm = source if stage == FROM_SOURCE else scratch
            to = target if stage == TO_TARGET else scratch
            if stage == FROM_SOURCE:
                s += c * strides[0] + n * strides[1]
            value = zero
            if stage == TO_TARGET:
                d += c * strides[2] + n * strides[3]
                value = starts[c]
            coefficient = coefficients[o]
            for q in range(reps):
                dq, sq = d + q * dstep, s + q * sstep
                if first == 2:
                    for k in range(count):
                        to[np.uint64(dq + k * ds)] = frm[np.uint64(sq + k * ss)]
                elif first:
                    for k in range(count):
                        to[np.uint64(dq + k * ds)] = value + coefficient * frm[np.uint64(sq + k * ss)]
                else:
                    for k in range(count):
                        to[np.uint64(dq + k * ds)] += coefficient * frm[np.uint64(sq + k * ss)]


def _table(operations, dtype):
    """(table int64 (operations, 10), coefficients in ``dtype``) from (row..., coefficient) tuples."""
    return (np.array([o[:-1] for o in operations], np.int64).reshape(-1, len(_COLUMNS)),
            np.array([o[-1] for o in operations], dtype))


@functools.lru_cache(maxsize=64)
def _input_table(m, adjoint, H, W, padding, th, tw, rows, dtype):
    """The input transform's operations (the adjoint's: L = A, no padding), V's rows ``rows``
    apart: (table, coefficients, scratch size, how much of it to zero per plane)."""
    L = transforms(m)[0].T if adjoint else transforms(m)[2]
    alpha, columns = L.shape
    P, width = th * tw, (tw - 1) * m + columns     # tiles per plane, R's row length
    phases = alpha * th * width                    # scratch: R (alpha, th, width), then phases
    operations = []                                # (columns, alpha, P)
    for block in range(0, th, BLOCK):
        for xi, a in zip(*np.nonzero(L)):          # R[xi, i] += L[xi, a] x[i*m + a - padding]
            first_i = max(block, -((a - padding) // m))                   # the tile rows whose image
            last_i = min(block + BLOCK, th, (H - 1 + padding - a) // m + 1)          # row is inside x
            operations.append((FROM_SOURCE, False, max(0, last_i - first_i), W,
                               (xi * th + first_i) * width + padding, width, 1,
                               (first_i * m + a - padding) * W, m * W, 1, L[xi, a]))
    for b in range(columns):
        if tw >= 16:
            for xi in range(alpha):
                operations.append((WITHIN_SCRATCH, 2, th, tw, phases + (b * alpha + xi) * P, tw, 1,
                               xi * th * width + b, width, m, 1))
        else:
            operations.append((WITHIN_SCRATCH, 2, tw, alpha * th, phases + b * alpha * P, 1, tw,
                               b, m, width, 1))
    together = alpha if alpha * P * np.dtype(dtype).itemsize <= 16384 else 1
    for xi0 in range(0, alpha, together):
        for nu in range(alpha):                        # V[xi, nu, c, tile] = sum_b L[nu, b] phases[b, xi]
            bs = np.flatnonzero(L[nu])                 # (for all xi)
            for b in bs:
                operations.append((TO_TARGET, b == bs[0], together, P, (xi0 * alpha + nu) * rows, alpha * rows, 1,
                                   phases + (b * alpha + xi0) * P, P, 1, L[nu, b]))
    return (*_table(operations, dtype), phases + alpha * columns * P, phases)


@functools.lru_cache(maxsize=64)
def _output_table(m, Ho, Wo, rows, dtype):
    """The output transform's operations, M's rows ``rows`` apart: (table, coefficients, scratch
    size, 0)."""
    AT = transforms(m)[0]
    alpha, th, tw = m + 2, tiles(Ho, m), tiles(Wo, m)
    P, width = th * tw, tw * m
    phases = alpha * th * width                    # scratch: R (alpha, th, width), then phases
    operations = []                                # (m, alpha, P)
    together = alpha if alpha * P * np.dtype(dtype).itemsize <= 16384 else 1
    for xi0 in range(0, alpha, together):
        for b in range(m):                             # phases[b, xi] = sum_nu A^T[b, nu] M[xi, nu, f]
            nus = np.flatnonzero(AT[b])                # (for all xi)
            for nu in nus:
                operations.append((FROM_SOURCE, nu == nus[0], together, P, phases + (b * alpha + xi0) * P, P, 1,
                                   (xi0 * alpha + nu) * rows, alpha * rows, 1, AT[b, nu]))
    for b in range(m):
        if tw >= 16:
            for xi in range(alpha):
                operations.append((WITHIN_SCRATCH, 2, th, tw, xi * th * width + b, width, m,
                               phases + (b * alpha + xi) * P, tw, 1, 1))
        else:
            operations.append((WITHIN_SCRATCH, 2, tw, alpha * th, b, m, width, phases + b * alpha * P, 1, tw, 1))
    for block in range(0, th, BLOCK):
        for a in range(m):                             # y[i*m + a] = bias + sum_xi A^T[a, xi] R[xi, i]
            xis = np.flatnonzero(AT[a])                # (whole rows, cropped to Ho x Wo)
            rows_a = min(block + BLOCK, tiles(Ho - a, m)) - block
            for xi in xis:
                operations.append((TO_TARGET, xi == xis[0], max(0, rows_a), Wo, (block * m + a) * Wo, m * Wo, 1,
                                   (xi * th + block) * width, width, 1, AT[a, xi]))
    return (*_table(operations, dtype), phases + alpha * m * P, 0)


def _run(tables, source, shape, strides, starts, planes, out):
    """Run _run_table over ``planes`` planes of ``source`` into out (a new array of ``shape`` if
    None; a C-contiguous scratch copied into it if out is not C-contiguous)."""
    table, coefficients, size, zeroed = tables
    into = out if out is not None and out.flags.c_contiguous else np.empty(shape, source.dtype)
    _threaded(_run_table, planes, into.size, (("winograd scratch", (size,), source.dtype),),
              table, coefficients, np.ascontiguousarray(source).reshape(-1), into.reshape(-1),
              np.array(strides, np.int64), starts, zeroed)
    if out is not None and into is not out:
        np.copyto(out, into)
    return out if out is not None else into


def _sandwich(d, padding, m, adjoint, out):
    """out[:, :, c, tile] = L d L^T for every tile of d (N, C, H, W): L = B^T, or A (adjoint)."""
    N, C, H, W = d.shape
    crop = 0 if adjoint else 2
    th, tw = tiles(H + 2 * padding - crop, m), tiles(W + 2 * padding - crop, m)
    T = N * th * tw
    tables = _input_table(m, adjoint, H, W, padding, th, tw, C * T, d.dtype)
    return _run(tables, d, (m + 2, m + 2, C, T), (H * W, C * H * W, T, th * tw, N), np.zeros(C + 1, d.dtype),
                C * N, out)


class numba:
    """The three transforms of kernels/winograd.py, compiled (same arguments and results)."""

    @staticmethod
    def input_transform(x, padding, m, out=None):
        return _sandwich(x, padding, m, False, out)

    @staticmethod
    def output_transform(M, shape, m, bias=None, out=None):
        N, F, Ho, Wo = shape
        T = M.shape[3]
        starts = np.zeros(F + 1, M.dtype)
        if bias is not None:
            starts[:F] = bias
        tables = _output_table(m, Ho, Wo, F * T, M.dtype)
        return _run(tables, M, shape, (T, tiles(Ho, m) * tiles(Wo, m),
                                                          Ho * Wo, F * Ho * Wo, N), starts, F * N, out)

    @staticmethod
    def output_transform_adjoint(dy, m, out=None):
        """dM = A dY A^T per tile: the input transform's operations with A for B^T, no padding."""
        return _sandwich(dy, 0, m, True, out)
