"""The Winograd transforms (kernels/winograd.py) compiled by Numba: one small kernel runs all three.

Each transform is a sandwich applied to every tile: V = B^T d B (input), Y = A^T M A (output, plus
the bias) and dM = A dY A^T (the output transform's adjoint, for the weight gradient). The NumPy
form gathers the overlapping tiles into a copy, then applies the matrix to rows and columns in two
more passes. Here one image plane is transformed at a time, in the two halves of the sandwich, so
that every inner loop runs along contiguous memory. For the input transform (L = B^T):

    rows:     R[xi, i, w] = sum_a L[xi, a] * x[i*m + a, w]        (whole image rows, per tile row i)
    columns:  V[xi, nu, c, tile (i, j)] = sum_b L[nu, b] * R[xi, i, j*m + b]

The column step would read R with stride m, so R is first copied into its column phases:
phases[b, xi] holds what every tile of the plane reads at its column b, in tile order, so the
column step is one contiguous run of th*tw per (xi, nu, b), not th short runs. The adjoint is the
same with L = A (alpha x m) and no padding; the output transform runs the steps backwards (M into
phases with A^T's columns, phases back into rows, rows into y with A^T's rows, from the bias).

Every step is a list of *operations*, one per nonzero coefficient: a scaled copy of a run of
memory, repeated down the tile rows (or the xi),

    for q < reps, k < count:   to[d + q*dstep + k]  +=  coefficient * frm[s + q*sstep + k]

with "=" from 0 (or from the bias) for the first term of each sum; the phase copies are the same
loops with a stride m on one side. _input_table and _output_table write a transform's operations
down once per shape, in Python; one compiled kernel, _run_table, runs such a table on every
plane. Zero padding costs nothing: rows outside x are left out of each operation's range and R's
edge columns stay zero; zero coefficients of B^T and A^T (half of them) have no operation.
Threads: jit._run splits the planes between the kernels' threads, as for every kernel of jit.py.
"""

import functools

import numpy as np

from .jit import _check_shape, _threaded, kernel
from .winograd import tiles, transforms

# Cold compile (see jit.kernel()): one kernel with one loop nest serves all three transforms.
# The two kernels it replaced (each transform's loops over xi, nu, a, b written out, a helper
# pasted at four call sites, 3- and 4-D views) took 1.4-1.6 s of Numba's compile on a quiet
# machine. Measured in fresh processes with an empty cache, CPU seconds of the first calls (after
# Numba's own start-up), taking turns with them on a loaded machine (load 4-5, where CPU time is
# the fair measure): 1.2-1.8 s for the two, 0.42-0.58 s for this one. Everything in it is flat
# and indexed by unsigned (np.uint64) flat indices: no view per row and no wraparound test, so
# LLVM vectorises the multiply-adds.
# Outputs are bit-identical to those kernels': every sum adds the same terms in the same order.
#
# Speed: which loop runs innermost and in what order the operations come were chosen for the
# cache and measured (one thread, CPU time, paired in one process against the two kernels above,
# on VGG-16's Winograd shapes and the CIFAR shapes; medians of 3 runs of 11 rounds, time of this
# kernel / theirs, input, output, adjoint: 224x224 x 64 channels 1.02-1.04x, 0.96-1.00x,
# 1.04-1.05x; 112x112 x 128 1.01-1.04x, 0.98-1.04x, 1.01x; 56x56 x 256 0.88-0.96x; 28x28 x 512
# (F(2x2, 3x3)) 0.83-1.02x; 64 x 64 x 32x32 0.88-1.05x; all seven shapes 0.96-0.98x):
# * the row steps go through the tile rows in blocks of _BLOCK, so that a block's image rows and
#   R rows stay in L1 while every coefficient is applied to them (without blocks: the input
#   transform at 224x224 1.05-1.12x the old kernel's time; with them 1.0-1.07x);
# * a column step repeats one operation over every xi while those alpha rows fit in L1 (_L1_ROWS
#   bytes); on larger maps it has one operation per xi, so that each row of V (or M) is finished
#   while in L1 (at 224x224: column step 1.08x -> 1.01x the old kernel's time);
# * a copy has a unit stride on one side (GATHER: written along memory, SCATTER: read along
#   memory), not two run-time strides: the copies at 112x112 1.16x -> 0.83x the old kernel's time.
_BLOCK, _L1_ROWS = 8, 16384

FROM_SOURCE, WITHIN_SCRATCH, TO_TARGET = 0, 1, 2        # an operation's stage: what it reads, writes
GATHER, SCATTER, FIRST, ADD = 0, 1, 2, 3                # an operation's mode (see the kernel)


@kernel
def _run_table(table, coefficients, source, target, strides, starts, zeroed, scratch, start, stop):
    """Run the operations ``table`` (rows: stage, mode, reps, count, d, dstep, s, sstep, stride;
    coefficients beside) on every plane r = (c, n) in [start, stop), n fastest; all arrays flat.
    FROM_SOURCE operations read source from c*strides[0] + n*strides[1] on, TO_TARGET ones write
    target from c*strides[2] + n*strides[3] on (strides[4] = N), the others stay in this thread's
    scratch, whose first ``zeroed`` elements are zeroed per plane. A FIRST term starts from
    starts[c] in target (the bias, or 0), from starts[-1] = 0 in scratch."""
    N, zero = strides[4], starts[starts.size - 1]
    for r in range(start, stop):
        c, n = r // N, r % N
        for q in range(zeroed):
            scratch[q] = 0
        for o in range(table.shape[0]):
            stage, mode, reps, count = table[o, 0], table[o, 1], table[o, 2], table[o, 3]
            d, dstep, s, sstep, stride = table[o, 4], table[o, 5], table[o, 6], table[o, 7], table[o, 8]
            frm = source if stage == FROM_SOURCE else scratch
            to = target if stage == TO_TARGET else scratch
            value, coefficient = zero, coefficients[o]
            if stage == FROM_SOURCE:
                s += c * strides[0] + n * strides[1]
            if stage == TO_TARGET:
                d += c * strides[2] + n * strides[3]
                value = starts[c]
            for q in range(reps):
                dq, sq = d + q * dstep, s + q * sstep
                if mode == GATHER:
                    for k in range(count):
                        to[np.uint64(dq + k)] = frm[np.uint64(sq + k * stride)]
                elif mode == SCATTER:
                    for k in range(count):
                        to[np.uint64(dq + k * stride)] = frm[np.uint64(sq + k)]
                elif mode == FIRST:
                    for k in range(count):
                        to[np.uint64(dq + k)] = value + coefficient * frm[np.uint64(sq + k)]
                else:
                    for k in range(count):
                        to[np.uint64(dq + k)] += coefficient * frm[np.uint64(sq + k)]


def _phase_copies(alpha, columns, m, th, tw, width, phases, gather):
    """The copies between R[xi, i, j*m + b] (rows ``width`` long) and phases[b, xi, i*tw + j]
    (from ``phases`` on in scratch), b < columns: R into phases if ``gather``, else back. One
    operation per (xi, b), xi outermost: th runs of tw, one per tile row."""
    operations = []
    for xi in range(alpha):
        for b in range(columns):
            p, r = (phases + (b * alpha + xi) * th * tw, tw), (xi * th * width + b, width)
            operations.append((WITHIN_SCRATCH, GATHER if gather else SCATTER, th, tw,
                               *(p if gather else r), *(r if gather else p), m, 1))
    return operations


def _groups(alpha, P, dtype):
    """Which xi each column-step operation covers: all at once while alpha rows of P fit in L1."""
    return [range(alpha)] if alpha * P * np.dtype(dtype).itemsize <= _L1_ROWS else \
        [range(xi, xi + 1) for xi in range(alpha)]


def _table(operations, dtype):
    """(table int64 (operations, 9), coefficients in ``dtype``) from (row..., coefficient)."""
    return (np.array([o[:-1] for o in operations], np.int64).reshape(-1, 9),
            np.array([o[-1] for o in operations], dtype))


@functools.lru_cache(maxsize=64)
def _input_table(m, adjoint, H, W, padding, th, tw, rows, dtype):
    """The input transform's operations (the adjoint's: L = A, no padding) for planes H x W, V's
    rows ``rows`` apart: (table, coefficients, scratch size, elements of scratch zeroed per plane)."""
    L = transforms(m)[0].T if adjoint else transforms(m)[2]
    alpha, columns = L.shape
    P, width = th * tw, (tw - 1) * m + columns     # tiles per plane, R's row length
    phases = alpha * th * width                    # scratch: R (alpha, th, width), zeroed; phases
    operations = []
    for block in range(0, th, _BLOCK):             # R[xi, i] += L[xi, a] x[i*m + a - padding]
        for xi, a in zip(*np.nonzero(L)):          # for the tile rows i whose image row is in x
            first = max(block, -((a - padding) // m))
            end = min(block + _BLOCK, th, (H - 1 + padding - a) // m + 1)
            operations.append((FROM_SOURCE, ADD, max(0, end - first), W,
                               (xi * th + first) * width + padding, width,
                               (first * m + a - padding) * W, m * W, 1, L[xi, a]))
    operations += _phase_copies(alpha, columns, m, th, tw, width, phases, gather=True)
    for xis in _groups(alpha, P, dtype):           # V[xi, nu, c, tile] = sum_b L[nu, b] phases[b, xi]
        for nu in range(alpha):
            bs = np.flatnonzero(L[nu])
            for b in bs:
                operations.append((TO_TARGET, FIRST if b == bs[0] else ADD, len(xis), P,
                                   (xis[0] * alpha + nu) * rows, alpha * rows,
                                   phases + (b * alpha + xis[0]) * P, P, 1, L[nu, b]))
    return (*_table(operations, dtype), phases + alpha * columns * P, phases)


@functools.lru_cache(maxsize=64)
def _output_table(m, Ho, Wo, rows, dtype):
    """The output transform's operations for planes Ho x Wo, M's rows ``rows`` apart: (table,
    coefficients, scratch size, 0)."""
    AT = transforms(m)[0]
    alpha, th, tw = m + 2, tiles(Ho, m), tiles(Wo, m)
    P, width = th * tw, tw * m
    phases = alpha * th * width                    # scratch: R (alpha, th, width), phases
    operations = []
    for xis in _groups(alpha, P, dtype):           # phases[b, xi] = sum_nu A^T[b, nu] M[xi, nu, f]
        for b in range(m):
            nus = np.flatnonzero(AT[b])
            for nu in nus:
                operations.append((FROM_SOURCE, FIRST if nu == nus[0] else ADD, len(xis), P,
                                   phases + (b * alpha + xis[0]) * P, P,
                                   (xis[0] * alpha + nu) * rows, alpha * rows, 1, AT[b, nu]))
    operations += _phase_copies(alpha, m, m, th, tw, width, phases, gather=False)
    for block in range(0, th, _BLOCK):             # y[i*m + a, :Wo] = bias + sum_xi A^T[a, xi] R[xi, i]
        for a in range(m):                         # for the tile rows i with i*m + a < Ho
            end = min(block + _BLOCK, tiles(Ho - a, m))
            xis = np.flatnonzero(AT[a])
            for xi in xis:
                operations.append((TO_TARGET, FIRST if xi == xis[0] else ADD, max(0, end - block),
                                   Wo, (block * m + a) * Wo, m * Wo,
                                   (xi * th + block) * width, width, 1, AT[a, xi]))
    return (*_table(operations, dtype), phases + alpha * m * P, 0)


def _run(tables, source, shape, strides, starts, planes, out):
    """_run_table over ``planes`` planes of ``source``, into out (a new array of ``shape`` if None;
    through a C-contiguous copy if out is not C-contiguous)."""
    table, coefficients, size, zeroed = tables
    _check_shape(out, shape, "winograd transform", "out")
    into = out if out is not None and out.flags.c_contiguous else np.empty(shape, source.dtype)
    work = max(source.size, into.size)             # elements touched, for jit._run's threads
    _threaded(_run_table, planes, work, (("winograd scratch", (size,), source.dtype),),
              table, coefficients, np.ascontiguousarray(source).reshape(-1), into.reshape(-1),
              np.array(strides, np.int64), starts, zeroed)
    if out is not None and into is not out:
        np.copyto(out, into)
    return into if out is None else out


def _sandwich(d, padding, m, adjoint, out):
    """out[:, :, c, tile] = L d L^T for every tile of d (N, C, H, W): L = B^T, or A (adjoint)."""
    N, C, H, W = d.shape
    reach = 0 if adjoint else 2                    # how far a tile's input reaches past its output
    th, tw = tiles(H + 2 * padding - reach, m), tiles(W + 2 * padding - reach, m)
    T = N * th * tw
    tables = _input_table(m, adjoint, H, W, padding, th, tw, C * T, d.dtype)
    return _run(tables, d, (m + 2, m + 2, C, T), (H * W, C * H * W, T, th * tw, N),
                np.zeros(C + 1, d.dtype), C * N, out)


class numba:
    """The three transforms of kernels/winograd.py, compiled (same arguments and results)."""

    @staticmethod
    def input_transform(x, padding, m, out=None):
        return _sandwich(x, padding, m, False, out)

    @staticmethod
    def output_transform(M, shape, m, bias=None, out=None):
        N, F, Ho, Wo = shape
        T = N * tiles(Ho, m) * tiles(Wo, m)
        _check_shape(M, (m + 2, m + 2, F, T), "output_transform", "M")
        _check_shape(bias, (F,), "output_transform", "bias")
        starts = np.zeros(F + 1, M.dtype)          # plane f starts from bias[f]; starts[F] = 0
        if bias is not None:
            starts[:F] = bias
        return _run(_output_table(m, Ho, Wo, F * T, M.dtype), M, shape,
                    (T, tiles(Ho, m) * tiles(Wo, m), Ho * Wo, F * Ho * Wo, N), starts, F * N, out)

    @staticmethod
    def output_transform_adjoint(dy, m, out=None):
        """dM = A dY A^T per tile: the input transform's operations with A for B^T, no padding."""
        return _sandwich(dy, 0, m, True, out)
