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
# Each compiled function costs ~0.1 s per dtype on a cold cache, so small helpers are written
# inline rather than as separate functions. That counts the functions a kernel calls that Numba
# itself compiles on first use: np.empty (~0.1 s per dtype), min and max (~0.02 s each), so
# kernels take their scratch arrays from the caller and clip ranges with conditionals. A helper
# two kernels share is ``njit(inline="always")``: Numba pastes its code into each caller, which
# LLVM would inline anyway, instead of also compiling and caching it as a function of its own
# (measured: _lrn_forward's cold compile 0.89 -> 0.66 s CPU).
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


def _threaded(kernel, total, work, scratch, *args):
    """_run(kernel, total, work, *args) with this thread's scratch arrays appended to the
    arguments of each piece: ``scratch`` holds (name, shape, dtype) triples (see _scratch). A
    kernel takes its scratch from the caller: np.empty inside it costs compile time (kernel())."""
    def piece(start, stop):
        kernel(*args, *(_scratch(*triple) for triple in scratch), start, stop)

    _run(piece, total, work)


# Both kernels work on the zero-padded input (xp: (N, C, H + 2*ph, W + 2*pw)), seen as planes
# (N, C, Hp*Wp) of width Wp, and on cols laid out (K, N, Ho*Wo), row (c, i, j) holding every
# image's columns side by side: the layout Conv2d's one matrix product uses (conv/im2col.py), so
# it arrives C-contiguous. The padded copy costs one pass over the input (a ninth of cols for 3x3)
# and leaves the copy loops without a test or a range computation: measured 2.5-5x faster than
# clipping every row to the image on the small maps of CIFAR-size nets (8x8 and 2x2 maps, where
# rows are 8 or 2 elements long), and as fast at 224x224 (benchmarks/bench_layers.py).
#
# The copy loops index one view per (row of cols, image) with unsigned (np.uint64) flat indices.
# Why unsigned: Numba wraps negative indices (a[-1] is the last element) with a test per access,
# and LLVM does not turn a loop with that test into SIMD copies; an unsigned index cannot be
# negative, so Numba emits no test and the loop over ow is vectorised (LLVM adds a run-time check
# that sw == 1). So one loop nest serves rows of every width: no view per output row, which costs
# more than a few elements' copy on small maps, and SIMD on wide ones. Measured against the two
# loop nests this replaces (flat signed indices for rows under 16 outputs, a view per row above;
# one thread, CPU time, batch 64 at 32x32): im2col 2x faster at 8x8, as fast at 16x16, 1.15x
# slower at 32x32 and 224x224; col2im 1.5-2.2x faster at every size; and the pair's cold compile
# ~0.25 s shorter. The caller reshapes xp to planes, where it is free: a reshape inside a kernel
# compiles its shape checks and error path (the pair's cold compile 1.67-1.74 s -> 1.27-1.56 s).

@kernel
def _im2col(planes, Wp, kh, kw, sh, sw, cols, start, stop):
    N, Hp = planes.shape[0], planes.shape[2] // Wp
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    for row in range(start, stop):             # row = (c, i, j): one row of cols, all images
        c, ij = row // (kh * kw), row % (kh * kw)
        i, j = ij // kw, ij % kw
        for n in range(N):
            dst, src = cols[row, n], planes[n, c, i * Wp + j:]
            for oh in range(Ho):
                for ow in range(Wo):
                    dst[np.uint64(oh * Wo + ow)] = src[np.uint64(oh * sh * Wp + ow * sw)]


@kernel
def _col2im(cols, kh, kw, sh, sw, planes, Wp, start, stop):
    N, Hp = planes.shape[0], planes.shape[2] // Wp
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    for c in range(start, stop):               # c = one channel, all images: no write races
        for n in range(N):
            for q in range(Hp * Wp):           # a loop: a slice assignment compiles slowly
                planes[n, c, q] = 0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for n in range(N):
                    src, dst = cols[row, n], planes[n, c, i * Wp + j:]
                    for oh in range(Ho):
                        for ow in range(Wo):
                            dst[np.uint64(oh * sh * Wp + ow * sw)] += src[np.uint64(oh * Wo + ow)]


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
    cols = None if out is None else out.transpose(1, 0, 2)
    if cols is None or not cols.flags.c_contiguous:
        cols = np.empty((K, N, Ho * Wo), dtype=x.dtype)
    _run(_im2col, K, cols.size, xp.reshape(N, C, -1), xp.shape[3], kh, kw, sh, sw, cols)
    if out is None:
        return np.ascontiguousarray(cols.transpose(1, 0, 2))
    if not np.shares_memory(out, cols):
        np.copyto(out, cols.transpose(1, 0, 2))
    return out


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    # cols (N, K, P) as the kernel reads it, (K, N, P): free for Conv2d's transposed view
    cols = np.ascontiguousarray(cols.transpose(1, 0, 2))
    if out is None:
        out = np.empty(x_shape, dtype=cols.dtype)
    unpadded = not (ph or pw)
    dxp = out if unpadded and out.flags.c_contiguous else _scratch(
        "padded", (N, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    _run(_col2im, C, cols.size, cols, kh, kw, sh, sw, dxp.reshape(N, C, -1), dxp.shape[3])
    if dxp is not out:
        out[...] = dxp[:, :, ph:ph + H, pw:pw + W]
    return out


# ------------------------------------------------------------------------------------------------
# max-pooling
# ------------------------------------------------------------------------------------------------

# Two kernels, not one with a branch on the window: each compiles only when a layer first needs it
# (VGG's pools are all 2x2/2), and the 2x2 one alone compiles in ~0.1 s less than both together.
# Both use scalar indexing, no row views: a view costs as much as a 2x2 window's work, and the
# small maps of CIFAR-size nets have rows of 1-16 outputs (measured 2-4x faster there).

@kernel
def _maxpool_2x2(x, sh, y, argmax, start, stop):
    """VGG's 2x2 windows, 2 apart along a row (sh apart down the columns): four loads per output,
    compared in window order, 2x faster than _maxpool_forward's general test, which LLVM cannot
    turn into max instructions."""
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for p in range(start, stop):               # p = one output row
        n, c, oh = p // (C * Ho), (p // Ho) % C, p % Ho
        h0 = oh * sh
        for ow in range(Wo):
            w0 = 2 * ow
            v1, v2, v3 = x[n, c, h0, w0 + 1], x[n, c, h0 + 1, w0], x[n, c, h0 + 1, w0 + 1]
            best, where = x[n, c, h0, w0], h0 * W + w0
            if v1 > best:
                best, where = v1, h0 * W + w0 + 1
            if v2 > best:
                best, where = v2, (h0 + 1) * W + w0
            if v3 > best:
                best, where = v3, (h0 + 1) * W + w0 + 1
            if best == best and (v1 != v1 or v2 != v2 or v3 != v3):
                # rare: a NaN that > skipped (a NaN first stays best): the first one wins
                if v1 != v1:
                    best, where = v1, h0 * W + w0 + 1
                elif v2 != v2:
                    best, where = v2, (h0 + 1) * W + w0
                else:
                    best, where = v3, (h0 + 1) * W + w0 + 1
            y[n, c, oh, ow] = best
            argmax[n, c, oh, ow] = where


@kernel
def _maxpool_forward(x, kh, kw, sh, sw, y, argmax, start, stop):
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for p in range(start, stop):               # p = one output row
        n, c, oh = p // (C * Ho), (p // Ho) % C, p % Ho
        h0 = oh * sh
        for ow in range(Wo):
            w0 = ow * sw
            best, where = x[n, c, h0, w0], h0 * W + w0
            for i in range(kh):
                for j in range(kw):
                    v = x[n, c, h0 + i, w0 + j]
                    # strict >: the first maximum wins ties; v != v: the first NaN wins over
                    # numbers (best == best: no NaN yet)
                    if v > best or (v != v and best == best):
                        best, where = v, (h0 + i) * W + w0 + j
            y[n, c, oh, ow] = best
            argmax[n, c, oh, ow] = where


@kernel
def _maxpool_backward(dout, argmax, dx, start, stop):
    N, C, Ho, Wo = dout.shape                  # dx: (N, C, H*W), the planes flat
    zero = dx.dtype.type(0)
    for p in range(start, stop):               # a plane per p: overlapping windows add safely
        n, c = p // C, p % C
        for q in range(dx.shape[2]):           # loops, not views: see _maxpool_2x2
            dx[n, c, q] = zero
        for oh in range(Ho):
            for ow in range(Wo):
                dx[n, c, argmax[n, c, oh, ow]] += dout[n, c, oh, ow]


def maxpool_forward(x, kernel, stride, out=None):
    """``out=(y, argmax)`` reuses arrays of the right shapes and dtypes (argmax is int64)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = output_size(H, kh, sh, 0), output_size(W, kw, sw, 0)
    if out is None:
        out = (np.empty((N, C, Ho, Wo), dtype=x.dtype), np.empty((N, C, Ho, Wo), dtype=np.int64))
    y, argmax = out
    x = np.ascontiguousarray(x)
    if kh == 2 and kw == 2 and sw == 2:
        _run(_maxpool_2x2, N * C * Ho, x.size, x, sh, y, argmax)
    else:
        _run(_maxpool_forward, N * C * Ho, x.size, x, kh, kw, sh, sw, y, argmax)
    return y, argmax


def maxpool_backward(dout, argmax, x_shape, out=None):
    dx = out if out is not None and out.flags.c_contiguous else np.empty(x_shape, dout.dtype)
    _run(_maxpool_backward, x_shape[0] * x_shape[1], dx.size, np.ascontiguousarray(dout),
         np.ascontiguousarray(argmax), dx.reshape(*x_shape[:2], -1))
    if out is not None and out is not dx:
        out[...] = dx
        return out
    return dx


# ------------------------------------------------------------------------------------------------
# local response normalisation
# ------------------------------------------------------------------------------------------------

@njit(inline="always")    # Numba inlines it into each kernel: see kernel()
def _pow_neg_row(s, beta, out):
    """out = s ** -beta along a row. For beta = 0.75 (AlexNet's and the paper's) as
    1 / (sqrt(s) * sqrt(sqrt(s))): square roots are SIMD instructions, a general pow is a scalar
    call (~5x slower here); the two agree to a few ulps. The test on beta is outside the loop."""
    one = out.dtype.type(1)                    # keeps float32 rows in float32 (SIMD-wide)
    if beta == 0.75:
        for w in range(s.size):
            r = np.sqrt(s[w])
            out[w] = one / (r * np.sqrt(r))
    else:
        for w in range(s.size):
            out[w] = s[w] ** -beta


# The LRN kernels see x as (N, C, P), P = H*W pixels (a free reshape of NCHW), and work on blocks
# of _LRN_BLOCK pixels of one image, all channels: long inner loops over pixels (SIMD) whatever
# the image size (rows of a 32x32 CIFAR image are too short), and a block's scratch stays in cache.
# Window sums are summed afresh for each channel, in float64, as naive.py does: a running sum
# (add the channel entering the window, subtract the one leaving) does `size` times fewer
# additions but loses the small channels' squares next to large ones (measured: 1.5e-2 off with
# k = 0 and channels spanning 1e-3 ... 1e5).
_LRN_BLOCK = 256


@kernel
def _lrn_forward(x, size, alpha, beta, k, y, scale, total, power, start, stop):
    N, C, P = x.shape                          # total, power: (_LRN_BLOCK,) scratch, float64, x's
    blocks = (P + _LRN_BLOCK - 1) // _LRN_BLOCK
    before, after = size // 2, (size - 1) // 2
    for task in range(start, stop):            # task = one block of pixels of one image
        n, p0 = task // blocks, (task % blocks) * _LRN_BLOCK
        p1 = P if P - p0 < _LRN_BLOCK else p0 + _LRN_BLOCK     # no min(): see kernel()
        L = p1 - p0
        for c in range(C):
            for q in range(L):                 # a loop: a slice assignment compiles slowly
                total[q] = 0
            for c2 in range(c - before, c + after + 1):
                if not 0 <= c2 < C:            # clipped here, not by max()/min(): see kernel()
                    continue
                xr = x[n, c2, p0:p1]
                for q in range(L):
                    total[q] += np.float64(xr[q]) * xr[q]
            xr, sr, yr = x[n, c, p0:p1], scale[n, c, p0:p1], y[n, c, p0:p1]
            for q in range(L):
                sr[q] = k + alpha * total[q]
            _pow_neg_row(sr, beta, power)      # from the stored (rounded) scale, as naive.py
            for q in range(L):
                yr[q] = xr[q] * power[q]


@kernel
def _lrn_backward(dout, x, scale, size, alpha, beta, dx, power, t, total, start, stop):
    # scratch: power (C, _LRN_BLOCK) x's dtype, scale^-beta; t (C, _LRN_BLOCK) float64,
    # dout x scale^(-beta-1); total (_LRN_BLOCK,) float64
    N, C, P = x.shape
    blocks = (P + _LRN_BLOCK - 1) // _LRN_BLOCK
    before, after = size // 2, (size - 1) // 2
    for task in range(start, stop):
        n, p0 = task // blocks, (task % blocks) * _LRN_BLOCK
        p1 = P if P - p0 < _LRN_BLOCK else p0 + _LRN_BLOCK     # no min(): see kernel()
        L = p1 - p0
        for c in range(C):
            dr, xr, sr = dout[n, c, p0:p1], x[n, c, p0:p1], scale[n, c, p0:p1]
            pr, tr = power[c, :L], t[c]
            _pow_neg_row(sr, beta, pr)
            for q in range(L):
                tr[q] = np.float64(dr[q]) * xr[q] * (np.float64(pr[q]) / sr[q])
        for j in range(C):
            # channel j is in the window of c exactly when c is in [j - after, j + before]
            for q in range(L):                 # a loop: a slice assignment compiles slowly
                total[q] = 0
            for c in range(j - after, j + before + 1):
                if not 0 <= c < C:
                    continue
                tr = t[c]
                for q in range(L):
                    total[q] += tr[q]
            dr, xr, pr, dxr = dout[n, j, p0:p1], x[n, j, p0:p1], power[j], dx[n, j, p0:p1]
            for q in range(L):
                dxr[q] = dr[q] * pr[q] - 2 * alpha * beta * xr[q] * total[q]


def _pixels(a):
    """(N, C, H, W) -> the contiguous (N, C, H*W) view the LRN kernels take."""
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def lrn_forward(x, size, alpha, beta, k):
    x = np.ascontiguousarray(x)
    y, scale = np.empty_like(x), np.empty_like(x)
    tasks = x.shape[0] * -(-x.shape[2] * x.shape[3] // _LRN_BLOCK)
    scratch = ("lrn total", (_LRN_BLOCK,), np.float64), ("lrn power", (_LRN_BLOCK,), x.dtype)
    _threaded(_lrn_forward, tasks, x.size * size, scratch, _pixels(x), size, alpha, beta, k,
              _pixels(y), _pixels(scale))
    return y, scale


def lrn_backward(dout, x, scale, size, alpha, beta):
    dx = np.empty(x.shape, dtype=x.dtype)
    tasks = x.shape[0] * -(-x.shape[2] * x.shape[3] // _LRN_BLOCK)
    rows = (x.shape[1], _LRN_BLOCK)
    scratch = (("lrn power", rows, x.dtype), ("lrn t", rows, np.float64),
               ("lrn total", (_LRN_BLOCK,), np.float64))
    _threaded(_lrn_backward, tasks, x.size * size, scratch, _pixels(dout), _pixels(x),
              _pixels(scale), size, alpha, beta, _pixels(dx))
    return dx


# ------------------------------------------------------------------------------------------------
# ReLU and dropout (used by layers/activation.py and layers/dropout.py on the numba backend)
# ------------------------------------------------------------------------------------------------
# NumPy runs these on one core, and np.where first builds a boolean mask, then the result; one
# pass over flat contiguous arrays, split across threads, reads and writes each element once.
# Unsigned indices in [start, stop) instead of slices from 0: as fast, and the two kernels compile
# ~0.07 s faster together (three slices each, gone).

@kernel
def _zero_below(a, b, t, s, out, start, stop):
    """out = 0 where b < t, else a * s. ReLU's forward is a = b = x, t = 0, s = 1 (np.maximum(x, 0):
    x * 1 is x, and a NaN stays NaN, since NaN < 0 is false); dropout's is b = the uniform draws u,
    t = p, s = 1 / (1 - p). One kernel for the two because each compiled kernel costs on a cold
    cache (the two apart: 0.27 s CPU; this one 0.14-0.21 s)."""
    zero = out.dtype.type(0)
    for i in range(start, stop):
        k = np.uint64(i)                       # unsigned: SIMD, no slices (see _im2col)
        out[k] = zero if b[k] < t else a[k] * s


@kernel
def _relu_backward(dout, y, dx, start, stop):
    zero = dx.dtype.type(0)
    for i in range(start, stop):
        k = np.uint64(i)                       # as in _zero_below
        dx[k] = dout[k] if y[k] > zero else zero


def relu_forward(x):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _run(_zero_below, x.size, x.size, x.reshape(-1), x.reshape(-1), x.dtype.type(0),
         x.dtype.type(1), y.reshape(-1))
    return y


def relu_backward(dout, y):
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _run(_relu_backward, dx.size, dx.size, dout.reshape(-1), np.ascontiguousarray(y).reshape(-1),
         dx.reshape(-1))
    return dx


def dropout_apply(x, u, p, scale):
    """y = x * scale where u >= p, else 0 (u: the uniform draws that decide the mask)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _run(_zero_below, x.size, x.size, x.reshape(-1), np.ascontiguousarray(u).reshape(-1),
         u.dtype.type(p), x.dtype.type(scale), y.reshape(-1))
    return y
