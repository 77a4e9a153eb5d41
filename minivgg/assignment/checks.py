"""The checks that grade each part, as cases the grader sends to the student's child process.

A check is ``build(ref, rng) -> [Case]``: ``ref`` is the reference package (the grader's own
minivgg), ``rng`` a generator seeded at grading time. A :class:`Case` holds the steps the child
runs on the student's code (import a module, call a function, set a layer's parameters), the
input arrays, and :class:`Expect` rows: which output to read back and what the reference computed,
with the known wrong answers (``hints``) that name a common mistake. The student's process sees
only the steps and inputs, never an expected value; the grader judges what comes back.

The kinds of check are those of tests/test_layers.py, test_kernels.py and test_layer_facts.py:
comparison with the reference on fixed and random shapes (odd sizes, non-square kernels, stride
2, several paddings, overlapping windows); layers' backward against the reference layer's
gradients with the same parameters (the reference's are checked against finite differences by
the project's tests); the contract a layer relies on (``out=`` buffers filled, float32 kept);
the edge cases (the max-pool tie rule, soft-max cross-entropy at logits of 1e4).
"""

import functools
from dataclasses import dataclass, field

import numpy as np

from ..shapes import pair

F64, F32 = np.float64, np.float32
FORWARD_TOL = 1e-9          # float64 results computed the same way agree to ~1e-15
GRADIENT_TOL = 1e-7         # float64 gradients by another order of sums
F32_TOL = 1e-4              # float32 copies (im2col)
# float32 results summed in another order: against the floor (1/1000 of the largest entry) the
# rounding, ~1e-7 of the largest, reaches 1e-4 relative; the reference's own float32 Conv2d
# reached 8.6e-5 against its float64 result (300 seeds), its backends' LRN dx 4.3e-5 (100 seeds)
F32_SUMS_TOL = 1e-3
FLOOR_FRACTION = 1e-3       # relative errors are measured against 1/1000 of the largest entry
# a row (500 units) or column (200) of a dropout mask keeps 1 - p of its units within 0.25: for
# independent draws that is over 7 standard deviations (at most 0.035 for a column), for a mask
# drawn once per feature or a fixed stripe pattern it fails by 1 - p or p
ROW_RATE_TOL = 0.25
OVERLAP_HINT = ("it is right where windows do not overlap: a pixel shared by several windows "
                "must receive the sum of their gradients (+=, not =)")
FORWARD_KEEPS = ("backward needs what forward kept: store x.shape in self._x_shape (and what else "
                 "backward reads) in forward")

# (x shape, out channels, kernel, stride, padding), as in tests/test_layers.py
CONV_CASES = [
    ((2, 3, 7, 7), 4, 3, 1, 1),               # the paper's conv3, odd size, batch > 1
    ((1, 2, 6, 5), 3, 3, 1, 0),               # padding 0, non-square input
    ((2, 3, 9, 8), 2, 3, 2, 1),               # stride 2
    ((2, 4, 5, 5), 3, 1, 1, 0),               # config C's 1x1
    ((1, 2, 7, 6), 3, (3, 2), (2, 1), (1, 0)),  # non-square kernel, stride and padding
    ((3, 1, 5, 5), 2, 5, 1, 2),               # one 5x5, padding 2
]
# (x shape, kernel, stride, padding); the windows of the first two do not overlap
WINDOW_CASES = [
    ((1, 1, 4, 4), 2, 2, 0),
    ((2, 2, 6, 5), (3, 1), (3, 1), 0),
    ((2, 3, 7, 7), 3, 1, 1),
    ((1, 2, 9, 8), 3, 2, 1),
    ((1, 2, 7, 6), (3, 2), (2, 1), (1, 0)),
    ((2, 1, 5, 5), 5, 1, 2),
]
# (x shape, kernel, stride); the first three do not overlap (the third drops a row and a column)
POOL_CASES = [
    ((2, 3, 8, 8), 2, 2),
    ((1, 2, 6, 9), (2, 3), (2, 3)),
    ((1, 1, 7, 7), 2, 2),
    ((2, 2, 7, 9), 3, 2),                     # AlexNet's overlapping 3x3 / 2, odd sizes
    ((1, 2, 6, 6), (3, 2), 1),
]
# (x shape, size, alpha, beta, k)
LRN_CASES = [
    ((2, 7, 3, 4), 5, 0.1, 0.75, 2.0),        # Krizhevsky's window and k, a larger alpha
    ((1, 6, 2, 3), 3, 0.5, 0.75, 1.0),
    ((1, 5, 3, 2), 4, 0.3, 0.6, 1.5),         # even window: not symmetric
    ((2, 3, 2, 2), 7, 0.05, 0.75, 2.0),       # window wider than the channels
    ((1, 4, 2, 2), 1, 0.2, 0.5, 1.0),
]


class Wrong(Exception):
    """The student's code gives a wrong answer; ``hint`` says what and where, in one line;
    ``named``: whether it names the mistake (False: only where the answer differs)."""

    def __init__(self, hint, error=float("nan"), named=True):
        super().__init__(hint)
        self.hint, self.error, self.named = hint, error, named


def relative_errors(actual, expected):
    """gradcheck's relative error entry by entry, with its floor: 1/1000 of the largest entry."""
    actual, expected = np.asarray(actual, F64), np.asarray(expected, F64)
    floor = max(1e-8, FLOOR_FRACTION * np.abs(expected).max(initial=0.0))
    with np.errstate(all="ignore"):
        return np.abs(actual - expected) / np.maximum(np.abs(expected), floor)


@dataclass
class Expect:
    """One output the child saves and how to judge it.

    ``kind``: "close" (relative error against ``value`` at most ``tol``), "equal" (the same
    integers), "keep_rate" (dropout's output has ``info["shape"]``, its fraction of non-zeros is
    1 - p within 0.01, and within ROW_RATE_TOL in every row and column), "same_as" (equal to the
    output named in ``info["other"]``), "other_than" (not equal to it). ``dtype``: the dtype the
    output must have.
    ``hints``: (a known wrong answer, what it means) pairs, tried when the output is wrong.
    ``accumulates``: the output sums what overlapping windows give each pixel (col2im's dx,
    max-pool's); an error no hint names there, on overlapping windows after the check's disjoint
    ones passed, gets OVERLAP_HINT.
    """
    name: str
    what: str
    value: np.ndarray = None
    kind: str = "close"
    tol: float = FORWARD_TOL
    dtype: str = None
    hints: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    accumulates: bool = False


def _where(errors):
    return tuple(int(i) for i in np.unravel_index(np.argmax(np.nan_to_num(errors, nan=np.inf)),
                                                  errors.shape))


def matches(got, wrong, tol):
    """Whether ``got`` is the known wrong answer ``wrong`` within ``tol``; NaN entries of
    ``wrong`` match anything (a mistake that leaves those entries undefined)."""
    if wrong.shape != got.shape:
        return False
    known = ~np.isnan(wrong) if wrong.dtype.kind == "f" else np.ones(wrong.shape, bool)
    errors = relative_errors(got[known], wrong[known])
    return bool(np.all(errors <= tol))              # NaN in got where wrong is known: no match


def judge(expect, got, outputs):
    """The worst relative error of ``got`` for ``expect``; Wrong with a hint when it is wrong.
    ``outputs`` holds the case's other outputs (for "same_as")."""
    if got is None:
        raise Wrong(f"{expect.what} returned nothing usable (None, or not numbers)")
    if expect.dtype and got.dtype != np.dtype(expect.dtype):
        raise Wrong(f"{expect.what} is {got.dtype}; a {expect.dtype} input must give a "
                    f"{expect.dtype} result (the network runs in float32)")
    if expect.kind == "keep_rate":
        p, shape = expect.info["p"], tuple(expect.info["shape"])
        if got.shape != shape:
            raise Wrong(f"{expect.what} has shape {got.shape}; expected x's shape {shape}")
        kept = np.count_nonzero(got) / max(got.size, 1)
        if abs(kept - (1 - p)) > 0.01:
            raise Wrong(f"{expect.what} keeps {kept:.2f} of the units; p is the probability of "
                        f"dropping one, so it should keep {1 - p:.2f}")
        if any(np.abs(np.count_nonzero(got, axis=axis) / got.shape[axis] - (1 - p)).max()
               > ROW_RATE_TOL for axis in range(got.ndim)):
            raise Wrong(f"{expect.what}: some rows or columns keep far more or fewer units than "
                        f"{1 - p:.2f}; draw one number per element of x (x.shape), so each unit "
                        f"of each example is kept or dropped on its own")
        scaled = got[got != 0]
        if scaled.size and not np.allclose(scaled, 1 / (1 - p)):
            raise Wrong(f"{expect.what}: kept units must be divided by 1 - p = {1 - p} "
                        f"(inverted dropout keeps E[y] = x, so evaluation needs no rescaling)")
        return 0.0
    if expect.kind in ("same_as", "other_than"):
        other = outputs.get(expect.info["other"])
        same = other is not None and got.shape == other.shape and np.array_equal(got, other)
        if other is None or same != (expect.kind == "same_as"):
            raise Wrong(f"{expect.what}: {expect.info['hint']}")
        return 0.0
    value = expect.value
    if got.shape != value.shape:
        raise Wrong(f"{expect.what} has shape {got.shape}; expected {value.shape}")
    if expect.kind == "equal":
        errors = (got != value).astype(F64)
    else:
        errors = relative_errors(got, value)
    worst = float(errors.max(initial=0.0))
    if worst <= expect.tol:                                  # NaN fails too
        return worst
    for wrong, hint in expect.hints:
        if matches(got, wrong, max(expect.tol, 1e-6)):
            raise Wrong(f"{expect.what} is wrong: {hint}", worst)
    at = _where(errors)
    if not np.isfinite(got[at]):                  # NaN or inf where the reference has a number
        raise Wrong(f"{expect.what} has {got[at]} at {at} (expected {value[at]:.6g}): an entry "
                    f"your code never wrote (np.empty holds whatever was in memory: start from "
                    f"np.zeros, or write every entry) or a number that overflowed", np.inf)
    raise Wrong(f"{expect.what} differs from the reference: relative error {worst:.1e} at {at} "
                f"(got {got[at]:.6g}, expected {value[at]:.6g})", worst, named=False)


class Case:
    """One group of steps for the student's process and what its outputs should be."""

    def __init__(self, what, overlapping=False):
        self.what, self.overlapping = what, overlapping
        self.steps, self.inputs, self.expects = [], {}, []

    def array(self, a):
        """An input array: the child gets it as a .npy file."""
        name = f"a{len(self.inputs)}"
        self.inputs[name] = np.array(a)                 # a copy: the caller may change a
        return {"in": name}

    def step(self, *step):
        self.steps.append(list(step))
        return self

    def call(self, result, target, *args, **kwargs):
        return self.step("call", result, target, list(args), kwargs)

    def run(self, result, target, *args, **kwargs):
        """Call and save the result as ``result`` (a tuple's items as result.0, result.1, ...)."""
        return self.call(result, target, *args, **kwargs).step("save", result, {"var": result})

    def save(self, name, path):
        return self.step("save", name, {"var": path})

    def expect(self, name, what, value=None, **options):
        if value is not None:
            value = np.array(value)             # a copy: layers may reuse their output buffers
        options["hints"] = [(np.array(wrong), hint) for wrong, hint in options.get("hints", [])]
        self.expects.append(Expect(name, what, value, **options))
        return self

    def layer(self, module, cls, reference_layer, *args, **kwargs):
        """The student's ``module.cls(*args, **kwargs)`` as "layer", given the reference layer's
        parameters."""
        self.step("import", "m", module).call("layer", f"m.{cls}", *args, **kwargs)
        for name, value in reference_layer.params.items():
            self.step("setitem", ["layer", "params", name], self.array(value))
        return self


def tup(values):
    return {"tuple": [int(v) for v in values]}


def describe(x_shape, kernel=None, stride=None, padding=None):
    """``x (2, 3, 7, 7), kernel=3, stride=2, padding=1``, pairs written as one number when square."""
    text = f"x {tuple(x_shape)}"
    for name, value in (("kernel", kernel), ("stride", stride), ("padding", padding)):
        if value is not None:
            h, w = pair(value, name)
            text += f", {name}={h}" if h == w else f", {name}=({h}, {w})"
    return text


def overlapping(kernel, stride):
    return any(s < k for k, s in zip(pair(kernel, "kernel"), pair(stride, "stride")))


def random_window_cases(rng, count, padding=True):
    """Random (x shape, kernel, stride, padding) whose kernel fits the padded input at least once."""
    cases = []
    for _ in range(count):
        kh, kw = rng.integers(1, 5, size=2)
        ph, pw = (rng.integers(0, min(2, k - 1) + 1) for k in (kh, kw)) if padding else (0, 0)
        shape = (rng.integers(1, 3), rng.integers(1, 4), rng.integers(max(1, kh - 2 * ph), 10),
                 rng.integers(max(1, kw - 2 * pw), 10))
        cases.append((tuple(int(v) for v in shape), (int(kh), int(kw)),
                      tuple(int(s) for s in rng.integers(1, 4, size=2)), (int(ph), int(pw))))
    return cases


def random_conv_cases(rng, count):
    return [(shape, int(rng.integers(1, 4)), kernel, stride, padding)
            for shape, kernel, stride, padding in random_window_cases(rng, count)]


def im2col_index(ref, x_shape, kernel, stride, padding):
    """For the grader's stand-in im2col: where each entry of one image's cols comes from (the
    flat index into the image, -1 in the padding), found by the reference im2col of 1, 2, 3, ..."""
    size = int(np.prod(x_shape[1:]))
    counting = np.arange(1, size + 1, dtype=F64).reshape(1, *x_shape[1:])
    return ref.kernels.naive.im2col(counting, kernel, stride, padding)[0].astype(np.int64) - 1


# ------------------------------------------------------------------------------------------------
# kernels
# ------------------------------------------------------------------------------------------------

def conv_direct(ref, rng):
    cases = []
    for x_shape, out_channels, kernel, stride, padding in CONV_CASES + random_conv_cases(rng, 3):
        kernel, stride, padding = (pair(v, "") for v in (kernel, stride, padding))
        x = rng.standard_normal(x_shape)
        weight = rng.standard_normal((out_channels, x_shape[1], *kernel))
        bias = rng.standard_normal(out_channels)
        expected = ref.kernels.naive.conv2d_direct(x, weight, bias, stride, padding)
        flipped = ref.kernels.naive.conv2d_direct(x, weight[:, :, ::-1, ::-1], bias, stride,
                                                  padding)
        what = describe(x_shape, kernel, stride, padding)
        case = Case(what).step("import", "m", "kernels.naive")
        case.run("y", "m.conv2d_direct", case.array(x), case.array(weight), case.array(bias),
                 tup(stride), tup(padding))
        cases.append(case.expect("y", f"conv2d_direct on {what}", expected, hints=[(
            flipped, "you flipped the kernel (a true convolution): CNN layers compute the "
                     "cross-correlation, weight[f, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]")]))
    return cases


def im2col_mistakes(ref, x, dcols, kernel, stride, padding):
    """{"cols": [(wrong, hint)], "dx": [...]}: what im2col and col2im give with the padding left
    unwritten (NaN: any value), with rows in (i, j, c) order, or with windows not shifted by
    the padding (x read at oh*sh + i instead of oh*sh + i - ph)."""
    naive = ref.kernels.naive
    (N, C, H, W), (kh, kw), (ph, pw) = x.shape, kernel, padding
    cols = naive.im2col(x, kernel, stride, padding)
    P = cols.shape[2]
    hints = {"cols": [], "dx": []}
    if ph or pw:
        unwritten = np.where(naive.im2col(np.ones(x.shape), kernel, stride, padding) == 0,
                             np.nan, cols)
        hints["cols"].append((unwritten, "it is right except where a window covers the padding: "
                                         "those entries must be 0 (np.empty holds whatever was "
                                         "in memory: start from np.zeros, or write the 0s)"))
        grown = np.pad(x, ((0, 0), (0, 0), (0, 2 * ph), (0, 2 * pw)))
        unshifted = "the windows are not shifted by the padding: window (oh, ow) starts at row " \
                    "oh*sh - ph and column ow*sw - pw of x (subtract the padding, or pad x first " \
                    "and index the padded x)"
        hints["cols"].append((naive.im2col(grown, kernel, stride, (0, 0)), unshifted))
        hints["dx"].append((naive.col2im(dcols, grown.shape, kernel, stride, (0, 0))[:, :, :H, :W],
                            unshifted))
    if C > 1:
        order = "its rows are in (i, j, c) order; im2col's rows run (c, i, j), channel slowest: " \
                "row (c*kh + i)*kw + j, the order of weight.reshape(F, -1)"
        hints["cols"].append((cols.reshape(N, C, kh, kw, P).transpose(0, 2, 3, 1, 4)
                              .reshape(N, -1, P), order))
        swapped = dcols.reshape(N, kh, kw, C, P).transpose(0, 3, 1, 2, 4).reshape(N, -1, P)
        hints["dx"].append((naive.col2im(swapped, x.shape, kernel, stride, padding), order))
    return hints


def im2col_kernels(module):
    """The check of one backend's im2col and col2im: against the reference on fixed and random
    geometries, in float64 and float32, returned and written into ``out=``."""
    def build(ref, rng):
        cases = []
        for index, (x_shape, kernel, stride, padding) in enumerate(
                WINDOW_CASES + random_window_cases(rng, 6)):
            kernel, stride, padding = (pair(v, "") for v in (kernel, stride, padding))
            what = describe(x_shape, kernel, stride, padding)
            dtype = F32 if index % 2 else F64                   # float32 must stay float32
            x = rng.standard_normal(x_shape).astype(dtype)
            cols = ref.kernels.naive.im2col(x, kernel, stride, padding)
            dcols = rng.standard_normal(cols.shape).astype(dtype)
            dx = ref.kernels.naive.col2im(dcols, x_shape, kernel, stride, padding)
            tol = F32_TOL if dtype == F32 else FORWARD_TOL
            hints = im2col_mistakes(ref, x, dcols, kernel, stride, padding)
            case = Case(what, overlapping(kernel, stride)).step("import", "m", module)
            case.run("cols", "m.im2col", case.array(x), tup(kernel), tup(stride), tup(padding))
            case.expect("cols", f"im2col on {what}", cols, tol=tol, dtype=dtype.__name__,
                        hints=hints["cols"])
            case.run("dx", "m.col2im", case.array(dcols), tup(x_shape), tup(kernel), tup(stride),
                     tup(padding))
            case.expect("dx", f"col2im on {what}", dx, tol=tol, dtype=dtype.__name__,
                        hints=hints["dx"], accumulates=True)
            if index < 3:                  # out=: Conv2d passes a buffer and ignores the return
                N, K, P = cols.shape       # its (K, N*P) columns seen as (N, K, P): not contiguous
                case.step("empty", "buffer", [K, N, P], dtype.__name__, [1, 0, 2])
                case.call("ignored", "m.im2col", case.array(x), tup(kernel), tup(stride),
                          tup(padding), out={"var": "buffer"}).save("buffer", "buffer")
                case.expect("buffer", f"im2col(..., out=buffer) on {what} left the buffer "
                            f"unfilled or wrong (Conv2d passes out=, a strided view of its "
                            f"column matrix, and ignores the return value; out.reshape may be "
                            f"a copy; it holds anything, here NaN: write every entry)", cols,
                            tol=tol, hints=hints["cols"])
                case.step("empty", "dbuffer", list(x_shape), dtype.__name__)
                case.call("ignored", "m.col2im", case.array(dcols), tup(x_shape), tup(kernel),
                          tup(stride), tup(padding), out={"var": "dbuffer"}).save("dbuffer",
                                                                                  "dbuffer")
                case.expect("dbuffer", f"col2im(..., out=buffer) on {what} left the buffer "
                            f"unfilled or wrong (fill out when it is given; it holds "
                            f"anything, here NaN: set it to 0 before adding)", dx, tol=tol,
                            hints=hints["dx"], accumulates=True)
            cases.append(case)
        return cases
    return build


def maxpool_kernels(ref, rng):
    cases = []
    geometries = POOL_CASES + [case[:3] for case in random_window_cases(rng, 6, padding=False)]
    for index, (x_shape, kernel, stride) in enumerate(geometries):
        kernel, stride = pair(kernel, "kernel"), pair(stride, "stride")
        dtype = F32 if index % 2 else F64                       # float32 must stay float32
        what = describe(x_shape, kernel, stride) + (", float32" if dtype == F32 else "")
        x = rng.standard_normal(x_shape).astype(dtype)
        y, argmax = ref.kernels.naive.maxpool_forward(x, kernel, stride)
        dout = rng.standard_normal(y.shape).astype(dtype)
        dx = ref.kernels.naive.maxpool_backward(dout, argmax, x_shape)
        case = Case(what, overlapping(kernel, stride)).step("import", "m", "kernels.naive")
        case.run("forward", "m.maxpool_forward", case.array(x), tup(kernel), tup(stride))
        case.expect("forward.0", f"maxpool_forward's y on {what}", y, dtype=dtype.__name__)
        case.expect("forward.1", f"maxpool_forward's argmax on {what} (the flat index h * W + w "
                    f"of each maximum in its (H, W) plane)", argmax, kind="equal", tol=0)
        case.run("dx", "m.maxpool_backward", case.array(dout), case.array(argmax), tup(x_shape))
        cases.append(case.expect("dx", f"maxpool_backward on {what}", dx, dtype=dtype.__name__,
                                 accumulates=True))
    return cases


def maxpool_ties(ref, rng):
    x = np.round(rng.standard_normal((2, 2, 7, 7)))             # many repeated maxima
    cases = []
    for kernel, stride in (((2, 2), (2, 2)), ((3, 3), (2, 2))):
        what = describe(x.shape, kernel, stride)
        case = Case(what).step("import", "m", "kernels.naive")
        case.run("forward", "m.maxpool_forward", case.array(x), tup(kernel), tup(stride))
        cases.append(case.expect(
            "forward.1", f"the tie rule on {what}: when a window holds its maximum twice, the "
                         f"first in row-major order wins (compare with >, not >=); argmax",
            ref.kernels.naive.maxpool_forward(x, kernel, stride)[1], kind="equal", tol=0))
    # the NaN rule and an all -inf window (kernels/__init__.py), on 2x2 windows of one channel
    for rule, values in (
            ("the NaN rule (a window holding NaN gives NaN, its first NaN wins; x > best is False "
             "for a NaN: test np.isnan)", {(0, 1): np.nan, (0, 2): np.nan, (2, 2): np.nan,
                                            (3, 3): np.nan}),
            ("a window of -inf only (its maximum is its first pixel: start from the window's "
             "first element, not from -inf)", {(h, w): -np.inf for h in (0, 1) for w in (2, 3)})):
        x = rng.standard_normal((1, 1, 4, 4))
        for at, value in values.items():
            x[(0, 0, *at)] = value
        what = describe(x.shape, 2, 2)
        case = Case(what).step("import", "m", "kernels.naive")
        case.run("forward", "m.maxpool_forward", case.array(x), tup((2, 2)), tup((2, 2)))
        cases.append(case.expect("forward.1", f"{rule} on {what}: argmax",
                                 ref.kernels.naive.maxpool_forward(x, (2, 2), (2, 2))[1],
                                 kind="equal", tol=0))
    return cases


def layer_gradients(rng, cls, reference, x, module, what, args=(), kwargs=None):
    """A case running the student's layer forward and backward with the parameters of the
    ``reference`` layer; y, dx and every parameter gradient against the reference's in float64.
    The layer first runs forward on another input: backward must use what the *last* forward
    kept. A bias gradient that is the batch mean instead of the sum, and gradients at the first
    input, get their own hints."""
    decoy = rng.standard_normal(x.shape)
    y = reference.forward(x)
    dout = rng.standard_normal(y.shape)
    dx = np.array(reference.backward(dout))
    grads = {name: grad.copy() for name, grad in reference.grads.items()}
    reference.forward(decoy)                                    # what a stale forward gives
    stale = ("it is the gradient at the first forward pass's input: backward must use what the "
             "last forward kept (forward runs again before every backward)")
    stale_dx = np.array(reference.backward(dout))
    case = Case(what).layer(module, cls, reference, *args, **(kwargs or {}))
    case.call("_", "layer.forward", case.array(decoy))
    case.run("y", "layer.forward", case.array(x)).expect("y", f"{cls}.forward on {what}", y)
    case.run("dx", "layer.backward", case.array(dout))
    case.expect("dx", f"{cls}.backward's dx on {what}", dx, tol=GRADIENT_TOL,
                hints=[(stale_dx, stale)])
    for name, grad in grads.items():
        hints = [(grad / len(x), f"it is the batch's mean; the 1/N of the loss is already in "
                                 f"dout, so sum over the batch (N = {len(x)})")] \
            if name == "bias" and len(x) > 1 else []
        case.save(f"grad_{name}", ["layer", "grads", name])
        case.expect(f"grad_{name}", f"{cls}.backward's grads['{name}'] on {what}", grad,
                    tol=GRADIENT_TOL, hints=hints + [(reference.grads[name], stale)])
    return case


def float32_pass(rng, module, cls, reference, x, *args, setup=None, **kwargs):
    """A case: the student's ``cls(*args, **kwargs)`` with the ``reference`` layer's parameters in
    float32, forward and backward on float32 x (after the step ``setup(case)`` gives): the
    network's contract is float32 in, float32 out (y and dx), close to the reference's float64
    results."""
    y = reference.forward(x)
    dout = rng.standard_normal(y.shape)
    dx = reference.backward(dout)
    what = f"{cls} in float32 on x {x.shape}"
    case = Case(what)
    if setup:
        case.steps.append(setup(case))
    case.step("import", "m", module).call("layer32", f"m.{cls}", *args, **kwargs)
    for name, value in reference.params.items():
        case.step("setitem", ["layer32", "params", name], case.array(value.astype(F32)))
    case.run("y32", "layer32.forward", case.array(x.astype(F32)))
    case.expect("y32", f"{what}: forward", y.astype(F32), tol=F32_SUMS_TOL, dtype="float32")
    case.run("dx32", "layer32.backward", case.array(dout.astype(F32)))
    return case.expect("dx32", f"{what}: backward's dx", dx.astype(F32), tol=F32_SUMS_TOL,
                       dtype="float32")


def maxpool_gradients(ref, rng):
    return [layer_gradients(rng, "MaxPool2d", ref.MaxPool2d(kernel, stride, backend="naive"),
                            rng.standard_normal(x_shape), "layers.pool",
                            describe(x_shape, kernel, stride), (kernel, stride),
                            {"backend": "naive"})
            for x_shape, kernel, stride in (POOL_CASES[0], POOL_CASES[3])]


def lrn_kernels(ref, rng):
    cases = []
    for index, (x_shape, size, alpha, beta, k) in enumerate(LRN_CASES):
        dtype = F32 if index % 2 else F64                       # float32 must stay float32
        what = f"x {x_shape}" + (" float32" if dtype == F32 else "") + \
            f", size={size}, alpha={alpha}, beta={beta}, k={k}"
        x = (3 * rng.standard_normal(x_shape)).astype(dtype)
        dout = rng.standard_normal(x_shape).astype(dtype)
        tol = {"dtype": dtype.__name__, **({"tol": F32_SUMS_TOL} if dtype == F32 else {})}
        naive = ref.kernels.naive
        y, scale = naive.lrn_forward(x, size, alpha, beta, k)
        y_n, scale_n = naive.lrn_forward(x, size, alpha / size, beta, k)
        hint = ("the kernels get alpha already in the layer's convention (kernels/__init__.py); "
                "do not divide it by size again")
        case = Case(what).step("import", "m", "kernels.naive")
        case.run("forward", "m.lrn_forward", case.array(x), size, alpha, beta, k)
        case.expect("forward.1", f"lrn_forward's scale on {what}", scale, hints=[(scale_n, hint)],
                    **tol)
        case.expect("forward.0", f"lrn_forward's y on {what}", y, hints=[(y_n, hint)], **tol)
        case.run("dx", "m.lrn_backward", case.array(dout), case.array(x), case.array(scale), size,
                 alpha, beta)
        cases.append(case.expect("dx", f"lrn_backward on {what}",
                                 naive.lrn_backward(dout, x, scale, size, alpha, beta), **tol))
    return cases


def lrn_gradients(ref, rng):
    return [layer_gradients(rng, "LocalResponseNorm",
                            ref.LocalResponseNorm(size, alpha, beta, k, backend="naive"),
                            3 * rng.standard_normal(x_shape), "layers.lrn",
                            f"x {x_shape}, size={size}", (size, alpha, beta, k),
                            {"backend": "naive"})
            for x_shape, size, alpha, beta, k in LRN_CASES[1:3]]


# ------------------------------------------------------------------------------------------------
# layers and the loss
# ------------------------------------------------------------------------------------------------

def softmax_ce_values(ref, rng):
    cases = []
    for shape in ((5, 4), (3, 6)):
        logits, labels = 3 * rng.standard_normal(shape), rng.integers(0, shape[1], shape[0])
        loss, dlogits = ref.softmax_cross_entropy(logits, labels)
        n = shape[0]
        case = Case(f"logits {shape}").step("import", "m", "layers.softmax")
        case.run("logp", "m.log_softmax", case.array(logits))
        case.expect("logp", f"log_softmax on logits {shape}", ref.log_softmax(logits))
        case.run("ce", "m.softmax_cross_entropy", case.array(logits), case.array(labels))
        case.expect("ce.0", f"the loss on logits {shape}", loss, hints=[(
            loss * n, f"it is the sum over the batch; the loss is the mean (divide by N = {n})")])
        cases.append(case.expect("ce.1", f"dlogits on logits {shape}", dlogits, hints=[(
            dlogits * n, f"it is the gradient of the summed loss; divide by N = {n} (the loss is "
                         f"the mean)")]))
    return cases


def softmax_ce_extreme(ref, rng):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
    labels = np.array([0, 0])
    loss, dlogits = ref.softmax_cross_entropy(logits, labels)
    what = "at logits of +-1e4 (NaN or inf here: exp overflowed; subtract each row's maximum " \
           "before exp, the log-sum-exp trick)"
    case = Case("logits of +-1e4").step("import", "m", "layers.softmax")
    case.run("ce", "m.softmax_cross_entropy", case.array(logits), case.array(labels))
    return [case.expect("ce.0", f"the loss {what}", loss).expect("ce.1", f"dlogits {what}", dlogits)]


def linear_layer(ref, rng):
    cases = []
    for n, (fan_in, fan_out) in ((3, (7, 5)), (1, (4, 2))):
        layer = ref.Linear(fan_in, fan_out, dtype=F64, rng=int(rng.integers(1 << 30)))
        layer.params["bias"][...] = rng.standard_normal(fan_out)
        x = rng.standard_normal((n, fan_in))
        cases.append(layer_gradients(rng, "Linear", layer, x, "layers.linear", f"x {(n, fan_in)}",
                                     (fan_in, fan_out), {"dtype": "float64"}))
    cases.append(float32_pass(rng, "layers.linear", "Linear", layer, x, fan_in, fan_out,
                              dtype="float32"))
    return cases


def oracle_step(ref, backend, x_shape, kernel, stride, padding, case):
    """The step that gives the student's Conv2d the grader's im2col and col2im on ``backend``, for
    this geometry only, and makes the other backend's refuse to run, naming the mistake."""
    key = "x".join(str(v) for v in (*x_shape[1:], *kernel, *stride, *padding))
    module, other = {"naive": ("kernels.naive", "kernels.vectorized"),
                     "numpy": ("kernels.vectorized", "kernels.naive")}[backend]
    table = case.array(im2col_index(ref, x_shape, kernel, stride, padding))
    return ["oracle", [module], {key: table}, {other: (
        f"Conv2d(backend={backend!r}) called {other}'s im2col or col2im: call "
        f"kernels(self.backend).im2col/.col2im, so the layer runs on the backend it was given")}]


def conv_layer(ref, rng):
    """Conv2d on the grader's own im2col and col2im (an unfinished im2col part costs nothing here),
    on the naive and numpy backends, float64 against the reference; and float32 stays float32."""
    cases = []
    geometries = CONV_CASES + random_conv_cases(rng, 2)
    for index, (x_shape, out_channels, kernel, stride, padding) in enumerate(geometries):
        kernel, stride, padding = (pair(v, "") for v in (kernel, stride, padding))
        what = describe(x_shape, kernel, stride, padding)
        backend = ("naive", "numpy")[index % 2]
        layer = ref.Conv2d(x_shape[1], out_channels, kernel, stride, padding, dtype=F64,
                           rng=int(rng.integers(1 << 30)), backend="naive", algorithm="im2col")
        layer.params["bias"][...] = rng.standard_normal(out_channels)
        x = rng.standard_normal(x_shape)
        case = layer_gradients(rng, "Conv2d", layer, x, "layers.conv", f"{what}, backend {backend!r}",
                               (x_shape[1], out_channels, tup(kernel), tup(stride), tup(padding)),
                               {"dtype": "float64", "backend": backend, "algorithm": "im2col"})
        oracle = functools.partial(oracle_step, ref, backend, x_shape, kernel, stride, padding)
        case.steps.insert(0, oracle(case))
        cases.append(case)
        if index == 0:                                  # the float32 network's contract
            cases.append(float32_pass(rng, "layers.conv", "Conv2d", layer, x, x_shape[1],
                                      out_channels, tup(kernel), tup(stride), tup(padding),
                                      setup=oracle, dtype="float32", backend=backend,
                                      algorithm="im2col"))
    return cases


def relu_layer(ref, rng):
    cases = []
    for shape in ((2, 3, 4, 5), (4, 7)):
        x = rng.standard_normal(shape)
        x[0, 0] = 0.0                                    # the subgradient at 0 is 0
        cases.append(layer_gradients(rng, "ReLU", ref.ReLU(), x, "layers.activation",
                                     f"x {shape}"))
    cases.append(float32_pass(rng, "layers.activation", "ReLU", ref.ReLU(),
                              rng.standard_normal((3, 5))))
    return cases


def dropout_layer(ref, rng):
    """Inverted dropout by its properties (any way of drawing the mask is right), its own
    generator (two layers with the same seed drop the same units, with another seed other units,
    a second forward pass other units), and its backward. Properties alone would pass a fixed
    pattern, or a few numbers with the right fraction of zeros."""
    cases = []
    seed = int(rng.integers(1 << 30))
    for p, dtype in ((0.5, "float64"), (0.2, "float32")):
        what = f"Dropout({p}) on x (200, 500) of ones in {dtype}"
        case = Case(what).step("import", "m", "layers.dropout")
        ones = case.array(np.ones((200, 500), dtype))
        case.call("layer", "m.Dropout", p, rng=seed).run("y", "layer.forward", ones)
        case.expect("y", what, kind="keep_rate", info={"p": p, "shape": [200, 500]}, dtype=dtype)
        case.run("dx", "layer.backward", ones)
        case.expect("dx", f"{what}: backward", kind="same_as", dtype=dtype, info={
            "other": "y", "hint": "backward must apply the forward pass's mask and scale"})
        case.call("twin", "m.Dropout", p, rng=seed).run("y_twin", "twin.forward", ones)
        case.expect("y_twin", f"{what}: a second Dropout with the same rng", kind="same_as", info={
            "other": "y", "hint": "dropped other units: draw the mask from self.rng (the layer's "
                                  "own generator), not from np.random"})
        case.run("y_again", "layer.forward", ones)
        case.expect("y_again", f"{what}: a second forward pass", kind="other_than", info={
            "other": "y", "hint": "dropped the same units again: draw a new mask at every "
                                  "forward pass"})
        case.call("other", "m.Dropout", p, rng=seed + 1).run("y_other", "other.forward", ones)
        case.expect("y_other", f"{what}: a Dropout with another seed", kind="other_than", info={
            "other": "y", "hint": "dropped the same units: draw the mask from self.rng, the "
                                  "layer's own generator"})
        case.call("_", "layer.eval").run("y_eval", "layer.forward", ones)
        case.expect("y_eval", f"{what} in evaluation mode (must be the identity)", np.ones((200, 500)))
        cases.append(case)
    return cases


def sgd_momentum(ref, rng):
    """Three steps of both optimisers on the same gradients, the rate cut before the third; the
    parameters must change in place (the layers hold those arrays)."""
    def model():
        params = {"fc.weight": rng.standard_normal((4, 3)), "fc.bias": rng.standard_normal(4)}
        return type("Model", (), {"params": params,
                                  "grads": {k: np.zeros_like(v) for k, v in params.items()}})()
    theirs = model()
    params = {name: p.copy() for name, p in theirs.params.items()}
    ours = ref.optim.SGD(theirs, lr=0.1, momentum=0.9, weight_decay=0.01)
    decays_all = model()
    decays_all.params = {name: p.copy() for name, p in params.items()}
    decays_all.grads = {name: g for name, g in theirs.grads.items()}
    decaying = ref.optim.SGD(decays_all, lr=0.1, momentum=0.9, weight_decay=0.01,
                             decay_biases=True)
    case = Case("SGD(lr=0.1, momentum=0.9, weight_decay=0.01)").step("import", "m", "optim")
    case.step("namespace", "model", {
        "params": {"dict": {n: case.array(p) for n, p in params.items()}},
        "grads": {"dict": {n: {"zeros": [list(p.shape), "float64"]} for n, p in params.items()}}})
    case.call("sgd", "m.SGD", {"var": "model"}, lr=0.1, momentum=0.9, weight_decay=0.01)
    for step in range(3):
        for name, g in theirs.grads.items():
            g[...] = rng.standard_normal(g.shape)
            case.step("setitem", ["model", "grads", name], case.array(g))
        if step == 2:
            ours.lr = decaying.lr = 0.01
            case.step("setattr", "sgd", "lr", 0.01)
        ours.step()
        decaying.step()
        case.call("_", "sgd.step")
        for name, w in theirs.params.items():
            label = f"s{step}_{name}"
            case.save(label, ["model", "params", name])
            hints = [(decays_all.params[name], "the bias was decayed: weight decay applies only "
                                               "where self.decays(name) (weights, not biases)")]
            case.expect(label, f"{name} after step {step + 1}", w.copy(), hints=hints)
    return [case]


def in_place_update(ref, rng):
    """SGD.step changes the arrays the model holds (the layers' own), never rebinds them."""
    params = {"fc.weight": rng.standard_normal((2, 3))}
    grads = {"fc.weight": rng.standard_normal((2, 3))}
    case = Case("SGD.step in place").step("import", "m", "optim")
    case.step("namespace", "model", {"params": {"dict": {"fc.weight": case.array(params["fc.weight"])}},
                                     "grads": {"dict": {"fc.weight": case.array(grads["fc.weight"])}}})
    case.step("namespace", "held", {"weight": {"var": ["model", "params", "fc.weight"]}})
    case.call("sgd", "m.SGD", {"var": "model"}, lr=0.5, momentum=0.0, weight_decay=0.0)
    case.call("_", "sgd.step").save("held", ["held", "weight"])
    return [case.expect("held", "the array the model held before SGD.step (update the parameters "
                                "in place, w += v: the layers keep using the arrays they hold)",
                        params["fc.weight"] - 0.5 * grads["fc.weight"])]


def receptive_field(ref, rng):
    arithmetic = ref.arithmetic
    cases = []
    stacked = Case("three stacked 3x3 convolutions").step("import", "m", "arithmetic")
    field = (1, 1, 0.5)                                  # an input pixel
    for i in range(3):                                   # each step from the reference's field
        stacked.run(f"f{i}", "m.next_field", *field, 3, 1, 1)
        field = arithmetic.next_field(*field, 3, 1, 1)
        stacked.expect(f"f{i}.0", f"the field after {i + 1} stacked 3x3 convolutions from "
                       f"(1, 1, 0.5) (three see 7x7, Sec. 2.3)", float(field[0]))
    cases.append(stacked)
    for _ in range(10):
        args = (int(rng.integers(1, 50)), int(rng.integers(1, 9)), round(float(rng.random() * 20), 2),
                int(rng.integers(1, 8)), int(rng.integers(1, 4)), int(rng.integers(0, 4)))
        what = ("next_field(field={}, jump={}, start={}, kernel={}, stride={}, padding={})"
                .format(*args))
        case = Case(what).step("import", "m", "arithmetic").run("f", "m.next_field", *args)
        expected = arithmetic.next_field(*args)
        for k, name in enumerate(("field", "jump", "start")):
            case.expect(f"f.{k}", f"{what}'s {name}", float(expected[k]))
        cases.append(case)
    return cases


def forward(name):
    return name.startswith("y")


def backward(name):
    return not forward(name)


# name -> (build, which outputs it judges: forward's (y...), backward's, or all (None)). A layer's
# forward and backward are separate checks, so each earns its share of the part's points.
CHECKS = {
    "conv_direct": (conv_direct, None),
    "im2col_naive": (im2col_kernels("kernels.naive"), None),
    "im2col_numpy": (im2col_kernels("kernels.vectorized"), None),
    "maxpool_kernels": (maxpool_kernels, None),
    "maxpool_ties": (maxpool_ties, None),
    "maxpool_gradients": (maxpool_gradients, None),
    "lrn_kernels": (lrn_kernels, None),
    "lrn_gradients": (lrn_gradients, None),
    "softmax_ce_values": (softmax_ce_values, None),
    "softmax_ce_extreme": (softmax_ce_extreme, None),
    "linear_forward": (linear_layer, forward),
    "linear_backward": (linear_layer, backward),
    "conv_forward": (conv_layer, forward),
    "conv_backward": (conv_layer, backward),
    "relu_forward": (relu_layer, forward),
    "relu_backward": (relu_layer, backward),
    "dropout_layer": (dropout_layer, None),
    "sgd_momentum": (sgd_momentum, None),
    "sgd_in_place": (in_place_update, None),
    "receptive_field": (receptive_field, None),
}
