"""The checks that grade each part: the project's own kinds of test, run on the student's code.

A check is ``check(student, reference) -> worst relative error``; both arguments are
:class:`Package` handles (the student's copy, imported under its own name, and the reference
``minivgg``). A check raises :class:`Wrong` with a one-line hint when the student's code is wrong.
The kinds of check are those of tests/test_layers.py, test_kernels.py and test_layer_facts.py:

* comparison with the reference implementation on fixed and random shapes (odd sizes, non-square
  kernels, stride 2, several paddings, overlapping windows), relative error as in gradcheck;
* finite-difference gradient checks in float64 by the *reference* :mod:`minivgg.gradcheck`;
* the edge cases: the max-pool tie rule, soft-max cross-entropy at logits of 1e4.

Each check calls only its own part's code (and the unmarked code every copy shares), so a part
is graded on its own; layer parts run with the reference kernels (:func:`reference_kernels`), so
an unfinished im2col does not cost Conv2d its points.
"""

import contextlib
import importlib
import sys

import numpy as np

from .. import backend, gradcheck
from ..shapes import pair

F64 = np.float64
FORWARD_TOL = 1e-9          # float64 results computed the same way agree to ~1e-15
OVERLAP_HINT = ("it is right where windows do not overlap: a pixel shared by several windows "
                "must receive the sum of their gradients (+=, not =)")

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
    """The student's code gives a wrong answer; ``hint`` says what and where, in one line."""

    def __init__(self, hint, error=float("nan")):
        super().__init__(hint)
        self.hint, self.error = hint, error


class Package:
    """One copy of minivgg, the reference or the student's: ``module("kernels.naive")``."""

    def __init__(self, name):
        self.name = name

    def module(self, relative=""):
        return importlib.import_module(f"{self.name}.{relative}" if relative else self.name)

    def __getattr__(self, attribute):       # the top-level exports: student.Conv2d
        return getattr(self.module(), attribute)


@contextlib.contextmanager
def reference_kernels(student):
    """Make the student's layers call the reference kernels for the duration of the block, so a
    layer part does not depend on the kernel parts (an unfinished im2col must not cost Conv2d)."""
    own = student.module("backend").kernels
    modules = [m for name, m in list(sys.modules.items())
               if name.startswith(student.name + ".") and getattr(m, "kernels", None) is own]
    for m in modules:
        m.kernels = backend.kernels
    try:
        yield
    finally:
        for m in modules:
            m.kernels = own


def describe(x_shape, kernel=None, stride=None, padding=None):
    text = f"x {tuple(x_shape)}"
    for name, value in (("kernel", kernel), ("stride", stride), ("padding", padding)):
        if value is not None:
            text += f", {name} {pair(value, name)}"
    return text


def relative_errors(actual, expected):
    """gradcheck's relative error, entry by entry, with its floor: 1/1000 of the largest entry."""
    expected = np.asarray(expected, F64)
    floor = max(1e-8, gradcheck.FLOOR_FRACTION * np.abs(expected).max(initial=0.0))
    return gradcheck.relative_error(actual, expected, floor)


def expect_close(what, actual, expected, tol=FORWARD_TOL):
    """The worst relative error of ``actual`` against ``expected``; Wrong when above ``tol``."""
    if not isinstance(actual, np.ndarray):
        raise Wrong(f"{what} is a {type(actual).__name__}, not an array of shape {expected.shape}")
    if actual.shape != expected.shape:
        raise Wrong(f"{what} has shape {actual.shape}; expected {expected.shape}")
    errors = relative_errors(actual, expected)
    worst = float(errors.max(initial=0.0))
    if not worst <= tol:                                  # also catches NaN
        at = tuple(int(i) for i in np.unravel_index(np.argmax(np.nan_to_num(errors, nan=np.inf)),
                                                     errors.shape))
        raise Wrong(f"{what} differs from the reference: relative error {worst:.1e} at {at} "
                    f"(got {actual[at]:.6g}, expected {expected[at]:.6g})", worst)
    return worst


def expect_gradients(what, layer, x, case):
    """Gradient-check ``layer`` at x with the reference gradcheck; Wrong names the wrong tensor."""
    report = gradcheck.check_layer(layer, x)
    worst = report.worst
    if not report.passed:
        right = [c.name for c in report.checks if c.worst_error <= report.tol]
        raise Wrong(f"{what}: the gradient of {worst.name} is wrong on {case}: relative error "
                    f"{worst.worst_error:.1e} at {worst.worst_index} (analytic {worst.analytic:.4g}"
                    f", numeric {worst.numeric:.4g})" + (f"; {', '.join(right)} right" if right else ""),
                    worst.worst_error)
    return worst.worst_error


def overlapping(kernel, stride):
    return any(s < k for k, s in zip(pair(kernel, "kernel"), pair(stride, "stride")))


def over_cases(cases, run, adding=()):
    """Run ``run(case)`` on every case; the worst error. When a function named in ``adding`` fails
    on overlapping windows after passing on disjoint ones, the hint says gradients must add up."""
    worst, disjoint_passed = 0.0, False
    for case in cases:
        kernel, stride = case[1], case[2]
        try:
            worst = max(worst, run(case))
        except Wrong as wrong:
            if disjoint_passed and overlapping(kernel, stride) and wrong.hint.startswith(adding):
                raise Wrong(f"{wrong.hint}; {OVERLAP_HINT}", wrong.error) from None
            raise
        disjoint_passed |= not overlapping(kernel, stride)
    return worst


def random_window_cases(seed, count, padding=True):
    """Random (x shape, kernel, stride, padding) whose kernel fits the padded input at least once."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        kh, kw = rng.integers(1, 5, size=2)
        ph, pw = (rng.integers(0, min(2, k - 1) + 1) for k in (kh, kw)) if padding else (0, 0)
        shape = (rng.integers(1, 3), rng.integers(1, 4), rng.integers(max(1, kh - 2 * ph), 10),
                 rng.integers(max(1, kw - 2 * pw), 10))
        cases.append((tuple(int(v) for v in shape), (int(kh), int(kw)),
                      tuple(int(s) for s in rng.integers(1, 4, size=2)), (int(ph), int(pw))))
    return cases


# ------------------------------------------------------------------------------------------------
# kernels
# ------------------------------------------------------------------------------------------------

def conv_direct(student, reference):
    ours, theirs = reference.module("kernels.naive"), student.module("kernels.naive")

    def run(index):
        x_shape, out_channels, kernel, stride, padding = CONV_CASES[index]
        rng = np.random.default_rng(index)
        x = rng.standard_normal(x_shape)
        weight = rng.standard_normal((out_channels, x_shape[1], *pair(kernel, "kernel")))
        bias = rng.standard_normal(out_channels)
        stride, padding = pair(stride, "stride"), pair(padding, "padding")
        expected = ours.conv2d_direct(x, weight, bias, stride, padding)
        actual = theirs.conv2d_direct(x, weight, bias, stride, padding)
        try:
            return expect_close(f"conv2d_direct on {describe(x_shape, kernel, stride, padding)}",
                                actual, expected)
        except Wrong as wrong:
            flipped = ours.conv2d_direct(x, weight[:, :, ::-1, ::-1], bias, stride, padding)
            if isinstance(actual, np.ndarray) and actual.shape == flipped.shape \
                    and np.allclose(actual, flipped):
                raise Wrong(f"{wrong.hint}; you flipped the kernel (a true convolution): CNN "
                            f"layers compute the cross-correlation, weight[f, c, i, j] * "
                            f"x_pad[n, c, oh*sh + i, ow*sw + j]", wrong.error) from None
            raise
    return max(run(index) for index in range(len(CONV_CASES)))


def im2col_kernels(module):
    """The check of one backend's im2col and col2im against the reference (naive) ones."""
    def check(student, reference):
        ours, theirs = reference.module("kernels.naive"), student.module(module)

        def run(case):
            x_shape, kernel, stride, padding = (case[0], *(pair(v, "") for v in case[1:]))
            what = describe(x_shape, kernel, stride, padding)
            rng = np.random.default_rng(sum(x_shape))
            x = rng.standard_normal(x_shape)
            error = expect_close(f"im2col on {what}", theirs.im2col(x, kernel, stride, padding),
                                 ours.im2col(x, kernel, stride, padding))
            cols = rng.standard_normal(ours.im2col(x, kernel, stride, padding).shape)
            return max(error, expect_close(
                f"col2im on {what}",
                theirs.col2im(cols, x_shape, kernel, stride, padding),
                ours.col2im(cols, x_shape, kernel, stride, padding)))
        return over_cases(WINDOW_CASES + random_window_cases(1, 6), run, adding="col2im")
    return check


def maxpool_kernels(student, reference):
    ours, theirs = reference.module("kernels.naive"), student.module("kernels.naive")

    def run(case):
        x_shape, kernel, stride = case[0], pair(case[1], "kernel"), pair(case[2], "stride")
        what = describe(x_shape, kernel, stride)
        rng = np.random.default_rng(sum(x_shape))
        x = rng.standard_normal(x_shape)
        y, argmax = ours.maxpool_forward(x, kernel, stride)
        y_student, argmax_student = theirs.maxpool_forward(x, kernel, stride)
        error = expect_close(f"maxpool_forward's y on {what}", y_student, y)
        if not np.array_equal(argmax_student, argmax):
            raise Wrong(f"maxpool_forward's argmax is wrong on {what}: it must hold the flat index "
                        f"h * W + w of each maximum in its (H, W) plane")
        dout = rng.standard_normal(y.shape)
        return max(error, expect_close(f"maxpool_backward on {what}",
                                       theirs.maxpool_backward(dout, argmax, x_shape),
                                       ours.maxpool_backward(dout, argmax, x_shape)))
    return over_cases(POOL_CASES + [case[:3] for case in random_window_cases(2, 6, padding=False)],
                      run, adding="maxpool_backward")


def maxpool_ties(student, reference):
    ours, theirs = reference.module("kernels.naive"), student.module("kernels.naive")
    x = np.round(np.random.default_rng(3).standard_normal((2, 2, 7, 7)))   # many repeated maxima
    for kernel, stride in (((2, 2), (2, 2)), ((3, 3), (2, 2))):
        if not np.array_equal(theirs.maxpool_forward(x, kernel, stride)[1],
                              ours.maxpool_forward(x, kernel, stride)[1]):
            raise Wrong(f"tie rule broken on {describe(x.shape, kernel, stride)}: when a window "
                        f"holds its maximum twice, the first in row-major order wins (compare "
                        f"with >, not >=)")
    return 0.0


def maxpool_gradients(student, reference):
    rng = np.random.default_rng(4)
    return max(expect_gradients("MaxPool2d.backward", student.MaxPool2d(kernel, stride,
                                                                        backend="naive"),
                                rng.standard_normal(x_shape), describe(x_shape, kernel, stride))
               for x_shape, kernel, stride in (POOL_CASES[0], POOL_CASES[3]))


def lrn_kernels(student, reference):
    ours, theirs = reference.module("kernels.naive"), student.module("kernels.naive")
    worst = 0.0
    for x_shape, size, alpha, beta, k in LRN_CASES:
        what = f"x {x_shape}, size {size}, alpha {alpha}, beta {beta}, k {k}"
        rng = np.random.default_rng(size)
        x, dout = 3 * rng.standard_normal(x_shape), rng.standard_normal(x_shape)
        y, scale = ours.lrn_forward(x, size, alpha, beta, k)
        y_student, scale_student = theirs.lrn_forward(x, size, alpha, beta, k)
        worst = max(worst, expect_close(f"lrn_forward's scale on {what}", scale_student, scale),
                    expect_close(f"lrn_forward's y on {what}", y_student, y),
                    expect_close(f"lrn_backward on {what}",
                                 theirs.lrn_backward(dout, x, scale, size, alpha, beta),
                                 ours.lrn_backward(dout, x, scale, size, alpha, beta)))
    return worst


def lrn_gradients(student, reference):
    rng = np.random.default_rng(5)
    worst = 0.0
    for x_shape, size, alpha, beta, k in LRN_CASES[1:3]:
        layer = student.LocalResponseNorm(size, alpha, beta, k, backend="naive")
        worst = max(worst, expect_gradients("LocalResponseNorm.backward", layer,
                                            3 * rng.standard_normal(x_shape),
                                            f"x {x_shape}, size {size}"))
    return worst


# ------------------------------------------------------------------------------------------------
# layers and the loss
# ------------------------------------------------------------------------------------------------

def _logits_and_labels(seed, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    return 3 * rng.standard_normal(shape), rng.integers(0, shape[1], shape[0])


def softmax_ce_values(student, reference):
    logits, labels = _logits_and_labels(6)
    loss, dlogits = reference.softmax_cross_entropy(logits, labels)
    loss_student, dlogits_student = student.softmax_cross_entropy(logits, labels)
    return max(expect_close("log_softmax", student.log_softmax(logits), reference.log_softmax(logits)),
               expect_close("the loss", np.asarray(loss_student, F64), np.asarray(loss)),
               expect_close("dlogits", dlogits_student, dlogits))


def softmax_ce_gradient(student, reference):
    """dlogits against finite differences of the student's own loss."""
    logits, labels = _logits_and_labels(7, (3, 6))
    _, dlogits = student.softmax_cross_entropy(logits, labels)
    numeric = gradcheck.numerical_gradient(lambda: student.softmax_cross_entropy(logits, labels)[0],
                                           logits)
    error = float(relative_errors(dlogits, numeric).max())
    if not error <= gradcheck.LAYER_TOL:
        raise Wrong(f"dlogits is not the gradient of the loss: relative error {error:.1e} against "
                    f"finite differences (expected (softmax - onehot) / N)", error)
    return error


def softmax_ce_extreme(student, reference):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
    labels = np.array([0, 0])
    loss, dlogits = reference.softmax_cross_entropy(logits, labels)
    with np.errstate(all="ignore"):
        loss_student, dlogits_student = student.softmax_cross_entropy(logits, labels)
    if not (np.isfinite(loss_student) and np.all(np.isfinite(dlogits_student))):
        raise Wrong("NaN or infinity at logits of +-1e4: exp overflows; subtract each row's "
                    "maximum before exp (log-sum-exp)")
    return max(expect_close("the loss at logits of +-1e4", np.asarray(loss_student, F64),
                            np.asarray(loss)),
               expect_close("dlogits at logits of +-1e4", dlogits_student, dlogits))


def linear_layer(student, reference):
    rng = np.random.default_rng(8)
    layer, oracle = student.Linear(7, 5, dtype=F64, rng=0), reference.Linear(7, 5, dtype=F64, rng=0)
    oracle.params["bias"][...] = rng.standard_normal(5)
    layer.params = {name: value.copy() for name, value in oracle.params.items()}
    x = rng.standard_normal((3, 7))
    return max(expect_close("Linear.forward", layer.forward(x), oracle.forward(x)),
               expect_gradients("Linear.backward", layer, x, "x (3, 7)"))


def conv_layer(student, reference):
    ours = reference.module("kernels.naive")
    worst = 0.0
    with reference_kernels(student):
        for index, (x_shape, out_channels, kernel, stride, padding) in enumerate(CONV_CASES):
            rng = np.random.default_rng(index)
            layer = student.Conv2d(x_shape[1], out_channels, kernel, stride, padding, dtype=F64,
                                   rng=index, backend="numpy", algorithm="im2col")
            layer.params["bias"][...] = rng.standard_normal(out_channels)
            x, what = rng.standard_normal(x_shape), describe(x_shape, kernel, stride, padding)
            expected = ours.conv2d_direct(x, layer.params["weight"], layer.params["bias"],
                                          layer.stride, layer.padding)
            worst = max(worst, expect_close(f"Conv2d.forward on {what}", layer.forward(x), expected),
                        expect_gradients("Conv2d.backward", layer, x, what))
    return worst


def relu_layer(student, reference):
    rng = np.random.default_rng(9)
    worst = 0.0
    for shape in ((2, 3, 4, 5), (4, 7)):
        x = rng.standard_normal(shape)
        worst = max(worst, expect_close(f"ReLU.forward on x {shape}", student.ReLU().forward(x),
                                        reference.ReLU().forward(x)),
                    expect_gradients("ReLU.backward", student.ReLU(), x, f"x {shape}"))
    return worst


def dropout_layer(student, reference):
    """Inverted dropout by its properties (any way of drawing the mask is right)."""
    x = np.ones((200, 500))
    for p in (0.5, 0.2):
        layer = student.Dropout(p, rng=0)
        y = layer.forward(x)
        kept = y != 0
        if abs(kept.mean() - (1 - p)) > 0.01:
            raise Wrong(f"Dropout({p}) keeps {kept.mean():.2f} of the units; p is the probability "
                        f"of dropping one, so it should keep {1 - p:.2f}")
        if not np.allclose(y[kept], 1 / (1 - p)):
            raise Wrong(f"Dropout({p}): kept units must be divided by 1 - p = {1 - p} (inverted "
                        f"dropout keeps E[y] = x, so evaluation needs no rescaling)")
        if not np.array_equal(layer.backward(x), y):
            raise Wrong(f"Dropout({p}).backward must apply the forward pass's mask and scale")
        layer.eval()
        if not np.array_equal(layer.forward(x), x) or not np.array_equal(layer.backward(x), x):
            raise Wrong(f"Dropout({p}) in evaluation mode must be the identity, both ways")
    return expect_gradients("Dropout.backward", student.Dropout(0.3, rng=3),
                            np.random.default_rng(10).standard_normal((5, 8)), "x (5, 8)")


class _Params:
    """The least a model needs for SGD: params and grads by name."""

    def __init__(self, rng):
        self.params = {"fc.weight": rng.standard_normal((4, 3)), "fc.bias": rng.standard_normal(4)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}


def sgd_momentum(student, reference):
    """Three steps of both optimisers on the same gradients, the rate cut before the third."""
    rng = np.random.default_rng(11)
    mine, theirs = _Params(np.random.default_rng(12)), _Params(np.random.default_rng(12))
    ours = reference.module("optim").SGD(theirs, lr=0.1, momentum=0.9, weight_decay=0.01)
    student_sgd = student.module("optim").SGD(mine, lr=0.1, momentum=0.9, weight_decay=0.01)
    worst = 0.0
    for step in range(3):
        for name, g in theirs.grads.items():
            g[...] = rng.standard_normal(g.shape)
            mine.grads[name][...] = g
        if step == 2:
            ours.lr = student_sgd.lr = 0.01
        ours.step()
        student_sgd.step()
        for name, w in theirs.params.items():
            worst = max(worst, expect_close(f"{name} after step {step + 1}", mine.params[name], w))
    return worst


def receptive_field(student, reference):
    theirs, ours = student.module("arithmetic"), reference.module("arithmetic")
    rng = np.random.default_rng(13)
    field = (1, 1, 0.5)                                  # an input pixel
    for _ in range(3):                                   # three 3x3 convolutions see 7x7
        field = theirs.next_field(*field, 3, 1, 1)
    if field[0] != 7:
        raise Wrong(f"three stacked 3x3 convolutions (stride 1) must see 7x7 input pixels, as the "
                    f"paper says (Sec. 2.3); next_field gives {field[0]}")
    worst = 0.0
    for _ in range(10):
        args = (int(rng.integers(1, 50)), int(rng.integers(1, 9)), round(float(rng.random() * 20), 2),
                int(rng.integers(1, 8)), int(rng.integers(1, 4)), int(rng.integers(0, 4)))
        expected = np.array(ours.next_field(*args), dtype=F64)
        worst = max(worst, expect_close(f"next_field{args}",
                                        np.array(theirs.next_field(*args), dtype=F64), expected))
    return worst


CHECKS = {
    "conv_direct": conv_direct,
    "im2col_naive": im2col_kernels("kernels.naive"),
    "im2col_numpy": im2col_kernels("kernels.vectorized"),
    "maxpool_kernels": maxpool_kernels,
    "maxpool_ties": maxpool_ties,
    "maxpool_gradients": maxpool_gradients,
    "lrn_kernels": lrn_kernels,
    "lrn_gradients": lrn_gradients,
    "softmax_ce_values": softmax_ce_values,
    "softmax_ce_gradient": softmax_ce_gradient,
    "softmax_ce_extreme": softmax_ce_extreme,
    "linear_layer": linear_layer,
    "conv_layer": conv_layer,
    "relu_layer": relu_layer,
    "dropout_layer": dropout_layer,
    "sgd_momentum": sgd_momentum,
    "receptive_field": receptive_field,
}
