"""The kernels compiled by Numba: the loops of naive.py, typed, threaded, and arranged for speed.

Same results as naive.py (see the conventions in kernels/__init__.py); what changes is the order of
the loops. Every speed trick below says why it is there, and each was measured by
benchmarks/bench_layers.py on a 2-core machine:

* Inner loops run along the last (contiguous) axis with no branch inside, so LLVM turns them into
  SIMD loads and stores. Padding is handled by zero-filling the edge ranges *before* the loop, not
  by an ``if`` per element.
* Parallelism comes from Python threads, not ``parallel=True``: every kernel is compiled with
  ``nogil=True`` and takes a ``start, stop`` range of its outer loop, and :func:`_run` splits that
  loop into one contiguous piece per thread (pieces are independent: rows of cols, planes of dx,
  so no two threads write the same element). Measured on the 2-core VMs, ``parallel=True`` made
  the cold-cache compile of these kernels about 3x slower (40 s against 14 s on the same busy
  machine), and its OpenMP layer ran a ReLU *slower* on two threads than on one (1.4 ms against
  0.5 ms: it wakes sleeping workers every call); a Python thread blocked on a queue costs nothing
  while idle and some 20 us per hand-off, so :func:`_run` keeps small inputs on one thread.
* Scratch arrays the caller reuses (cols, dcols, dropout's draws) come in through ``out=``, so
  no call pays for fresh memory (a page fault per 4 KiB on first touch); an output the caller
  keeps is always a new array, never a buffer a later call would overwrite.

Each kernel compiles when first called, so a run pays only for the kernels it uses, and
``cache=True`` keeps the machine code on disk, so only the first run on a machine pays at all
(benchmarks/bench_cold_start.py). Numba puts it beside this file, or, when the install is
read-only, under the user's cache directory (``~/.cache/numba``, or ``$NUMBA_CACHE_DIR``); with
neither writable the kernels still work, compiled afresh in every process. No ``fastmath``:
gradient checks cover these kernels and need IEEE arithmetic. Under ``NUMBA_DISABLE_JIT=1`` every
function here is plain Python (slow, but it runs: nothing below relies on ``.py_func`` or other
attributes of a compiled function).
"""

import itertools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from ..shapes import output_size

_MAX_THREADS = max(1, min(os.cpu_count() or 1, numba.config.NUMBA_NUM_THREADS))
_threads = _MAX_THREADS
_executor = None                   # the helper threads, created on first use
_MIN_WORK = 1 << 18                # elements per thread below which a hand-off does not pay


def set_num_threads(n):
    """Use ``n`` threads in the kernels, clamped to [1, the machine's count]; returns the number.

    ``numba.set_num_threads`` raises above ``numba.config.NUMBA_NUM_THREADS``; a script written on
    a 16-core workstation should still run on a 2-core laptop, so we clamp instead (and set
    Numba's own count too, for any ``parallel=True`` code of the user's).
    """
    global _threads
    _threads = max(1, min(int(n), _MAX_THREADS))
    numba.set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))
    return _threads


def get_num_threads():
    return _threads


def _forget_executor():
    global _executor
    _executor = None


# A forked child (e.g. a multiprocessing data loader) inherits the pool object but not its
# threads: without this, its first threaded kernel would wait forever.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def _run(kernel, total, work, *args):
    """kernel(*args, start, stop) over [0, total), shared out between the threads.

    ``work`` (elements touched) decides how many threads pay for their hand-off. The loop is cut
    into a few pieces per thread which every thread, the caller included, claims in turn from a
    shared counter. Why not one fixed piece each: on a machine shared with other jobs a helper
    thread may be scheduled milliseconds late, and the caller then simply does its pieces instead
    of waiting for it.
    """
    global _executor
    threads = min(_threads, total, max(1, work // _MIN_WORK))
    if threads <= 1:
        kernel(*args, 0, total)
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_MAX_THREADS - 1,
                                       thread_name_prefix="minivgg-kernel")
    pieces = min(total, 4 * threads)
    bounds = [total * i // pieces for i in range(pieces + 1)]
    claim, finished, all_done = itertools.count(), itertools.count(1), threading.Event()
    errors = []

    def work_through():
        while True:
            i = next(claim)     # atomic under the GIL: each piece goes to exactly one thread
            if i >= pieces:
                return
            try:
                kernel(*args, bounds[i], bounds[i + 1])
            except BaseException as error:      # re-raised by the caller below
                errors.append(error)
            if next(finished) == pieces:
                all_done.set()

    for _ in range(threads - 1):
        _executor.submit(work_through)
    work_through()
    all_done.wait()             # every piece is claimed: wait for those still running elsewhere
    if errors:
        raise errors[0]


# Every kernel: compiled once and cached on disk; releases the GIL (so _run's threads run in
# parallel); error_model="numpy": x / 0 gives inf as in NumPy instead of Numba's default Python
# check that raises ZeroDivisionError - that check sits in every division and stopped LLVM from
# vectorising the LRN loops (measured 10x slower).
# Each compiled function costs ~0.1 s per dtype on a cold cache (an empty kernel: ~0.05 s, plus
# ~0.01 s per array argument, for its wrappers), so related kernels share one compiled body
# where that costs no speed (im2col/col2im, max-pool's windows, ReLU/dropout), and small helpers
# are written inline rather than as separate functions. That counts the functions a kernel calls that Numba
# itself compiles on first use: np.empty (~0.1 s per dtype), min and max (~0.02 s each), so
# kernels take their scratch arrays from the caller and clip ranges with conditionals. A helper
# two kernels share is ``njit(inline="always")``: Numba pastes its code into each caller, which
# LLVM would inline anyway, instead of also compiling and caching it as a function of its own
# (measured: the LRN forward kernel's cold compile 0.89 -> 0.66 s CPU).
def kernel(function):
    options = dict(nogil=True, error_model="numpy")
    try:
        return njit(cache=True, **options)(function)
    except RuntimeError:    # "cannot cache function": no writable cache directory anywhere
        return njit(**options)(function)


# ------------------------------------------------------------------------------------------------
# im2col / col2im
# ------------------------------------------------------------------------------------------------

_local = threading.local()


def _scratch(name, shape, dtype):
    """A scratch array of this thread, reused by the next call that asks for ``name`` (fresh
    memory costs a page fault per 4 KiB on first touch: measured 0.7 ms of a 2 ms im2col)."""
    arrays = _local.__dict__
    size = math.prod(shape)
    array = arrays.get(name)
    if array is None or array.dtype != dtype or array.size < size:
        array = arrays[name] = np.empty(size, dtype)
    return array[:size].reshape(shape)


def _check_shape(array, shape, where, name):
    """The kernels index without bounds checks: an ``out=`` or an input of another shape than the
    one they assume would be read or written outside its memory, so it is an error here."""
    if array is not None and array.shape != tuple(shape):
        raise ValueError(f"{where}: {name} must have shape {tuple(shape)}; got {array.shape}")


def _threaded(kernel, total, work, scratch, *args):
    """_run(kernel, total, work, *args) with this thread's scratch arrays appended to the
    arguments of each piece: ``scratch`` holds (name, shape, dtype) triples (see _scratch). A
    kernel takes its scratch from the caller: np.empty inside it costs compile time (kernel())."""
    def piece(start, stop):
        kernel(*args, *(_scratch(*triple) for triple in scratch), start, stop)

    _run(piece, total, work)


# One kernel does both directions: im2col copies each pixel to its places in cols, col2im (its
# adjoint, the backward) adds every place back into the pixel. They share the index map and the
# loops, so one compiled function serves both: each compiled kernel costs on a cold cache whatever
# it holds (see kernel()), and the branch on ``add`` is outside the loops once LLVM has split
# them (measured: the pair's cold compile 0.64-0.88 s as two kernels -> 0.35-0.53 s as one; speed
# the same or faster, one thread).
#
# It works on the zero-padded input (xp: (N, C, H + 2*ph, W + 2*pw)), seen as planes
# (N, C, Hp*Wp) of width Wp, and on cols laid out (K, N, Ho*Wo), row (c, i, j) holding every
# image's columns side by side: the layout Conv2d's one matrix product uses (conv/im2col.py), so
# it arrives C-contiguous. The padded copy costs one pass over the input (a ninth of cols for 3x3)
# and leaves the copy loops without a test or a range computation: measured 2.5-5x faster than
# clipping every row to the image on the small maps of CIFAR-size nets (8x8 and 2x2 maps, where
# rows are 8 or 2 elements long), and as fast at 224x224 (benchmarks/bench_layers.py).
#
# The copy loops index one view per (row of cols, image) and one per plane with unsigned
# (np.uint64) flat indices. Why unsigned: Numba wraps negative indices (a[-1] is the last element)
# with a test per access, and LLVM does not turn a loop with that test into SIMD copies; an
# unsigned index cannot be negative, so Numba emits no test and the loop over ow is vectorised
# (LLVM adds a run-time check that sw == 1). So one loop nest serves rows of every width: no view
# per output row, which costs more than a few elements' copy on small maps, and SIMD on wide ones.
# Measured against the two loop nests this replaced (flat signed indices for rows under 16
# outputs, a view per row above; one thread, CPU time, batch 64 at 32x32): im2col 2x faster at
# 8x8, as fast at 16x16, 1.15x slower at 32x32 and 224x224; col2im 1.5-2.2x faster at every size;
# and the pair's cold compile ~0.25 s shorter. The caller reshapes xp to planes, where it is free:
# a reshape inside a kernel compiles its shape checks and error path (the pair's cold compile, as
# two kernels, measured a session earlier under heavier load: 1.67-1.74 s -> 1.27-1.56 s).

@kernel
def _im2col(cols, planes, Wp, kh, kw, sh, sw, per, add, start, stop):
    """add False (im2col): rows [start, stop) of cols, copied from the planes (per = 1).
    add True (col2im): the planes of channels [start, stop) (per = kh*kw rows of cols each), set
    to the sum of the cols entries each pixel was copied to. Threads never write the same element."""
    N, Hp = planes.shape[0], planes.shape[2] // Wp
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    for row in range(start * per, stop * per):  # row = (c, i, j): one row of cols, all images
        c, ij = row // (kh * kw), row % (kh * kw)
        i, j = ij // kw, ij % kw
        for n in range(N):
            col, plane = cols[row, n], planes[n, c]
            if add and ij == 0:                # the channel's first row: its plane starts at 0
                for q in range(Hp * Wp):       # a loop: a slice assignment compiles slowly
                    plane[np.uint64(q)] = 0
            for oh in range(Ho):
                for ow in range(Wo):
                    a, b = np.uint64(oh * Wo + ow), np.uint64((i + oh * sh) * Wp + j + ow * sw)
                    if add:
                        plane[b] += col[a]
                    else:
                        col[a] = plane[b]


def im2col(x, kernel, stride, padding, out=None):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    xp = np.ascontiguousarray(x)
    if ph or pw:
        xp = _scratch("padded", (N, C, H + 2 * ph, W + 2 * pw), x.dtype)
        xp[:, :, :ph], xp[:, :, H + ph:], xp[..., :pw], xp[..., W + pw:] = 0, 0, 0, 0
        xp[:, :, ph:ph + H, pw:pw + W] = x
    # the kernel fills (K, N, P); out is (N, K, P): Conv2d's is a transposed view of a (K, N, P)
    # array, filled in place; any other is filled by a copy
    K = C * kh * kw
    _check_shape(out, (N, K, Ho * Wo), "im2col", "out")
    cols = None if out is None else out.transpose(1, 0, 2)
    if cols is None or not cols.flags.c_contiguous:
        cols = np.empty((K, N, Ho * Wo), dtype=x.dtype)
    _run(_im2col, K, cols.size, cols, xp.reshape(N, C, -1), xp.shape[3], kh, kw, sh, sw, 1,
         False)
    if out is None:
        return np.ascontiguousarray(cols.transpose(1, 0, 2))
    if not np.shares_memory(out, cols):
        np.copyto(out, cols.transpose(1, 0, 2))
    return out


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    _check_shape(cols, (N, C * kh * kw, Ho * Wo), "col2im", "cols")
    _check_shape(out, x_shape, "col2im", "out")
    # cols (N, K, P) as the kernel reads it, (K, N, P): free for Conv2d's transposed view
    cols = np.ascontiguousarray(cols.transpose(1, 0, 2))
    if out is None:
        out = np.empty(x_shape, dtype=cols.dtype)
    unpadded = not (ph or pw)
    dxp = out if unpadded and out.flags.c_contiguous else _scratch(
        "padded", (N, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    _run(_im2col, C, cols.size, cols, dxp.reshape(N, C, -1), dxp.shape[3], kh, kw, sh, sw,
         kh * kw, True)
    if dxp is not out:
        out[...] = dxp[:, :, ph:ph + H, pw:pw + W]
    return out


# ------------------------------------------------------------------------------------------------
# max-pooling
# ------------------------------------------------------------------------------------------------

# Both kernels see the planes flat, (N*C, H*W), indexed by unsigned flat indices (see _im2col):
# no wraparound test per access, no view per output row (a view costs as much as a 2x2 window's
# work, and the small maps of CIFAR-size nets have rows of 1-16 outputs). One forward kernel for
# every window: VGG's 2x2/2 windows take their own loop inside it, the others a general one. As two
# kernels they compiled in 0.56-0.72 s CPU, as this one 0.46-0.56 s, and flat indices took the
# backward's from 0.19-0.24 to 0.15-0.21 s (fresh processes, empty cache, paired with the code
# before); speed the same or faster on bench_layers.py's shapes, one thread. The price: a run
# with only 2x2/2 windows (every VGG) also compiles the general loop, ~0.1 s it does not use (the
# 2x2 loop alone as a kernel: ~0.39 s, the general one ~0.33 s).

@kernel
def _maxpool_forward(x, W, kh, kw, sh, sw, y, argmax, start, stop):
    """x: (N*C, H*W), the planes of width W; y, argmax: (N*C*Ho, Wo), one output row each.
    Strict >: the first maximum in window order wins ties; the first NaN wins over numbers."""
    Ho, Wo = y.shape[0] // x.shape[0], y.shape[1]
    two = kh == 2 and kw == 2 and sw == 2
    for p in range(start, stop):               # p = one output row
        plane, top, yr, ar = x[p // Ho], (p % Ho) * sh * W, y[p], argmax[p]
        if two:
            # four loads compared in window order: LLVM turns the tests into SIMD selects. The
            # 2 is a constant, not sw: LLVM vectorises a known stride (1.4-1.7x faster at 112
            # and 224 than with ow * sw); the general loop below is 2-5x slower on these windows
            for ow in range(Wo):
                q0 = top + 2 * ow
                q1, q2, q3 = q0 + 1, q0 + W, q0 + W + 1
                best, where = plane[np.uint64(q0)], q0
                v1, v2, v3 = plane[np.uint64(q1)], plane[np.uint64(q2)], plane[np.uint64(q3)]
                if v1 > best:
                    best, where = v1, q1
                if v2 > best:
                    best, where = v2, q2
                if v3 > best:
                    best, where = v3, q3
                if best == best and (v1 != v1 or v2 != v2 or v3 != v3):
                    # rare: a NaN that > skipped (a NaN first stays best): the first one wins
                    if v1 != v1:
                        best, where = v1, q1
                    elif v2 != v2:
                        best, where = v2, q2
                    else:
                        best, where = v3, q3
                yr[np.uint64(ow)], ar[np.uint64(ow)] = best, where
        else:
            for ow in range(Wo):
                first = top + ow * sw
                best, where = plane[np.uint64(first)], first
                for i in range(kh):
                    for j in range(kw):
                        q = first + i * W + j
                        v = plane[np.uint64(q)]
                        # v != v: the first NaN wins over numbers (best == best: no NaN yet).
                        # | and &, not or/and: no branches to mispredict (1.0-2.2x faster, 3x3/2)
                        if (v > best) | ((v != v) & (best == best)):
                            best, where = v, q
                yr[np.uint64(ow)], ar[np.uint64(ow)] = best, where


@kernel
def _maxpool_backward(dout, argmax, dx, start, stop):
    """dout, argmax: (N*C, Ho*Wo); dx: (N*C, H*W): the planes flat."""
    for p in range(start, stop):               # a plane per p: overlapping windows add safely
        d, a, g = dout[p], argmax[p], dx[p]
        for q in range(g.size):                # loops, not slices: see _im2col
            g[np.uint64(q)] = 0
        for k in range(d.size):
            q = np.uint64(a[np.uint64(k)])
            if q >= g.size:                    # a negative index is a huge unsigned one
                raise IndexError("maxpool_backward: argmax holds an index outside its plane")
            g[q] += d[np.uint64(k)]


def maxpool_forward(x, kernel, stride, out=None):
    """``out=(y, argmax)`` reuses arrays of the right shapes and dtypes (argmax is int64)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = output_size(H, kh, sh, 0), output_size(W, kw, sw, 0)
    if out is None:
        out = (np.empty((N, C, Ho, Wo), dtype=x.dtype), np.empty((N, C, Ho, Wo), dtype=np.int64))
    for array, name in zip(out, ("out[0]", "out[1]")):
        _check_shape(array, (N, C, Ho, Wo), "maxpool_forward", name)
    y, argmax = out
    rows = (N * C * Ho, Wo)
    # the kernel writes output rows; an out= that is not C-contiguous is filled by a copy
    ry, ra = (a if a.flags.c_contiguous else np.empty_like(a, order="C") for a in out)
    _run(_maxpool_forward, N * C * Ho, x.size, np.ascontiguousarray(x).reshape(N * C, H * W), W,
         kh, kw, sh, sw, ry.reshape(rows), ra.reshape(rows))
    for target, result in ((y, ry), (argmax, ra)):
        if target is not result:
            target[...] = result
    return y, argmax


def maxpool_backward(dout, argmax, x_shape, out=None):
    """Unchecked indices would write outside dx: an argmax not maxpool_forward's is an error."""
    if dout.shape != argmax.shape or dout.shape[:2] != tuple(x_shape[:2]):
        raise ValueError(f"maxpool_backward: dout {dout.shape} and argmax {argmax.shape} must "
                         f"have one shape, (N, C) of x_shape {tuple(x_shape)}")
    _check_shape(out, x_shape, "maxpool_backward", "out")
    dx = out if out is not None and out.flags.c_contiguous else np.empty(x_shape, dout.dtype)
    planes = x_shape[0] * x_shape[1]
    _run(_maxpool_backward, planes, dx.size, np.ascontiguousarray(dout).reshape(planes, -1),
         np.ascontiguousarray(argmax).reshape(planes, -1), dx.reshape(planes, -1))
    if out is not None and out is not dx:
        out[...] = dx
        return out
    return dx


# ------------------------------------------------------------------------------------------------
# local response normalisation
# ------------------------------------------------------------------------------------------------

@njit(inline="always")    # Numba pastes it into the kernel: see kernel()
def _pow_neg(s, other_beta, x):
    """s ** -beta, in the dtype of s (x: any array of that dtype). ``other_beta`` is None for
    beta = 0.75 (AlexNet's and the paper's): 1 / (sqrt(s) * sqrt(sqrt(s))), square roots are SIMD
    instructions, a general pow is a scalar call (~5x slower here); the two agree to a few ulps.
    Numba drops a branch on ``argument is None`` when it compiles, by the argument's type: a run
    with beta = 0.75 compiles the square roots only; another beta (``other_beta`` = beta) compiles
    a second copy of the kernel, with pow only (both paths in one copy: ~0.15-0.2 s more)."""
    if other_beta is None:
        r = np.sqrt(s)
        return x.dtype.type(1) / (r * np.sqrt(r))      # in s's dtype: float32 stays SIMD-wide
    return x.dtype.type(s ** -other_beta)


# One kernel for both directions: each compiled kernel has a fixed cost (~0.1-0.15 s on a cold
# cache), and the two share their shape: rows summed over a window of channels, then each
# channel's output from its window sum. Forward: the rows are x^2, the window of c is
# [c - size//2, c + (size-1)//2]; out = y, and scale is written. Backward: the rows are
# u_c = dout_c x_c scale_c^(-beta-1), summed over the channels c whose window holds j, the mirrored
# window [j - (size-1)//2, j + size//2]; out = dx = dout_j scale_j^-beta - 2 alpha beta x_j sum.
#
# The kernel sees x as (N, C, P), P = H*W pixels (a free reshape of NCHW), raveled, and works on
# blocks of _LRN_BLOCK pixels of one image, all channels: long inner loops over pixels (SIMD)
# whatever the image size (rows of a 32x32 CIFAR image are too short), and a block's scratch
# (rows u and power: C x _LRN_BLOCK) stays in cache. Flat unsigned indices, as in _im2col: no row
# views, no wraparound tests. Each loop computes in one width: scale^-beta in a float32 loop of
# its own, not fused with the float64 sums (a loop mixing the two is vectorised at the float64
# width, and its square roots ran at half width: 10-15% slower).
# Window sums are summed afresh for each channel, in float64, as naive.py does: a running sum
# (add the channel entering the window, subtract the one leaving) does `size` times fewer
# additions but loses the small channels' squares next to large ones (measured: 1.5e-2 off with
# k = 0 and channels spanning 1e-3 ... 1e5).
# Measured against the two kernels this replaces (a kernel per direction, row views, both pow paths
# compiled), fresh cache, CPU s, under load 4-5: the pair's cold compile 1.4-1.5 -> ~0.85, outputs
# bit-identical; one thread, A-LRN's 64x16x32x32 and 1x64x224x224: forward 0.89-0.99, backward
# 0.85-0.97 of the time before (dx's first term is stored with scale^-beta, so its last loop
# reads three arrays instead of five); other betas' pow ~1.2x faster. Tried and dropped: the
# scale^-beta loops fused with the float64 loops (compile ~0.2 s less, forward and backward 5-15%
# slower); one scale^-beta loop for both directions, the forward then also storing power (forward
# 1.13-1.41x slower).
_LRN_BLOCK = 256


@kernel
def _lrn(forward, x, dout, scale, C, P, size, alpha, beta, other_beta, k, out, power, u, total,
         start, stop):
    # x, dout, scale, out: (N * C * P,); scratch: power (C * _LRN_BLOCK,) x's dtype, scale^-beta;
    # u (C * _LRN_BLOCK,) and total (_LRN_BLOCK,) float64
    blocks = (P + _LRN_BLOCK - 1) // _LRN_BLOCK
    before, after = (size // 2, (size - 1) // 2) if forward else ((size - 1) // 2, size // 2)
    for task in range(start, stop):            # task = one block of pixels of one image
        n, p0 = task // blocks, (task % blocks) * _LRN_BLOCK
        L = np.uint64(P - p0 if P - p0 < _LRN_BLOCK else _LRN_BLOCK)     # no min(): see kernel()
        if not forward:                        # the rows u, and dx's first term
            for c in range(C):
                a, b = np.uint64((n * C + c) * P + p0), np.uint64(c * _LRN_BLOCK)
                for q in range(L):
                    power[b + q] = p = _pow_neg(scale[a + q], other_beta, x)
                    out[a + q] = dout[a + q] * p
                for q in range(L):
                    u[b + q] = (np.float64(dout[a + q]) * x[a + q]
                                * (np.float64(power[b + q]) / scale[a + q]))
        for j in range(C):                     # each channel's window sum, then its output
            for q in range(L):                 # a loop: a slice assignment compiles slowly
                total[q] = 0
            for c in range(j - before, j + after + 1):
                if not 0 <= c < C:             # clipped here, not by max()/min(): see kernel()
                    continue
                if forward:
                    a = np.uint64((n * C + c) * P + p0)
                    for q in range(L):
                        v = x[a + q]
                        total[q] += np.float64(v) * v
                else:
                    b = np.uint64(c * _LRN_BLOCK)
                    for q in range(L):
                        total[q] += u[b + q]
            a = np.uint64((n * C + j) * P + p0)
            if forward:                        # y from the stored (rounded) scale, as naive.py
                for q in range(L):
                    scale[a + q] = k + alpha * total[q]
                for q in range(L):
                    out[a + q] = x[a + q] * _pow_neg(scale[a + q], other_beta, x)
            else:
                for q in range(L):
                    out[a + q] = out[a + q] - 2 * alpha * beta * x[a + q] * total[q]


def _lrn_run(forward, x, dout, scale, size, alpha, beta, k, out):
    N, C, H, W = x.shape
    rows = (C * _LRN_BLOCK,)
    scratch = (("lrn power", rows, x.dtype), ("lrn u", rows, np.float64),
               ("lrn total", (_LRN_BLOCK,), np.float64))
    _threaded(_lrn, N * -(-H * W // _LRN_BLOCK), x.size * size, scratch, forward, x.reshape(-1),
              dout.reshape(-1), scale.reshape(-1), C, H * W, size, alpha, beta,
              None if beta == 0.75 else beta, k, out.reshape(-1))


def lrn_forward(x, size, alpha, beta, k):
    x = np.ascontiguousarray(x)
    y, scale = np.empty_like(x), np.empty_like(x)
    _lrn_run(True, x, x, scale, size, alpha, beta, k, y)      # dout: unused, any array of x's type
    return y, scale


def lrn_backward(dout, x, scale, size, alpha, beta):
    x = np.ascontiguousarray(x)
    dx = np.empty_like(x)
    _lrn_run(False, x, np.ascontiguousarray(dout), np.ascontiguousarray(scale), size, alpha, beta,
             0.0, dx)
    return dx


# ------------------------------------------------------------------------------------------------
# ReLU and dropout (used by layers/activation.py and layers/dropout.py on the numba backend)
# ------------------------------------------------------------------------------------------------
# NumPy runs these on one core, and np.where first builds a boolean mask, then the result; one
# pass over flat contiguous arrays, split across threads, reads and writes each element once.
# Unsigned indices in [start, stop) instead of slices from 0: as fast, and fewer operations to
# compile (three slices each, gone: ~0.07 s for the kernels this one replaced).

@kernel
def _zero_below(a, b, t, s, closed, out, start, stop):
    """out = a * s where b > t, 0 where b < t; where b is neither (b == t, or NaN): a * s if
    ``closed``, else 0.

    ReLU's forward is a = b = x, t = 0, s = 1, closed (np.maximum(x, 0): x * 1 is x, a NaN stays
    NaN); its backward a = dout, b = y, t = 0, s = 1, not closed (gradient where y > 0 only: none
    through a zero or a NaN); dropout's b = the uniform draws u, t = p, s = 1 / (1 - p), closed
    (kept where u >= p; u is never NaN). Why not y >= the smallest subnormal for y > 0: a CPU
    told to treat subnormals as zero (torch.set_flush_denormal(True), or a library built with
    -ffast-math) compares that t as 0, and every y = 0 would pass its gradient. One kernel for the
    three because each compiled kernel costs on a cold cache (see kernel()): ReLU's backward as a
    kernel of its own cost 0.10-0.23 s CPU more, for the same speed (the test on ``closed``
    compiles to a select, not a branch)."""
    zero = out.dtype.type(0)
    for i in range(start, stop):
        k = np.uint64(i)                       # unsigned: SIMD, no slices (see _im2col)
        out[k] = a[k] * s if (b[k] > t) | (closed & (not b[k] < t)) else zero


def relu_forward(x):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _run(_zero_below, x.size, x.size, x.reshape(-1), x.reshape(-1), x.dtype.type(0),
         x.dtype.type(1), True, y.reshape(-1))
    return y


def relu_backward(dout, y):
    dout, y = np.ascontiguousarray(dout), np.ascontiguousarray(y)
    dx = np.empty_like(dout)
    _run(_zero_below, dx.size, dx.size, dout.reshape(-1), y.reshape(-1),
         y.dtype.type(0), dout.dtype.type(1), False, dx.reshape(-1))
    return dx


def dropout_apply(x, u, p, scale):
    """y = x * scale where u >= p, else 0 (u: the uniform draws that decide the mask)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _run(_zero_below, x.size, x.size, x.reshape(-1), np.ascontiguousarray(u).reshape(-1),
         u.dtype.type(p), x.dtype.type(scale), True, y.reshape(-1))
    return y
