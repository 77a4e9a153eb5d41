"""Gradient checking: is a backward pass right? Compare it with central finite differences.

    numeric  df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)         error O(eps^2)
    relative error   |a - n| / max(floor, |a| + |n|)                        (CS231n's measure)

Checks run in float64: with eps = 1e-5 rounding costs about 1e-16 / 1e-5 = 1e-11 relative and
truncation about eps^2 = 1e-10, so a right backward lands near 1e-8 or below, while a wrong one is
off by 1e-2 or more. The floor handles entries near zero: finite-difference error is absolute
(about 1e-10 here, whatever the entry's size), so an entry is judged relative to at least
``FLOOR_FRACTION`` (1/1000) of the largest gradient in its tensor, and never below 1e-8. A wrong
entry still shows up: a gradient of 0 where 1e-2 of the tensor's scale belongs scores 1.0 (the
largest error there is), and even one of 1e-4 of the scale, missing, scores 0.1 (tests/test_gradcheck.py).

    report = check_layer(Conv2d(3, 4, 3).astype(np.float64), x)       # x float64
    print(report)            # one line per tensor: worst relative error, where, both values
    assert report.passed
"""

from dataclasses import dataclass, field

import numpy as np

from .layers.softmax import softmax_cross_entropy

LAYER_TOL = 1e-5      # a single layer, float64, eps 1e-5 (right ones: 1e-11 .. 3e-6; wrong: > 1e-2)
MODEL_TOL = 1e-4      # a whole network with its loss: ReLU and max-pool kinks add noise
FLOOR_FRACTION = 1e-3


def relative_error(analytic, numeric, floor=1e-8):
    """Elementwise |a - n| / max(floor, |a| + |n|); 0 where both are 0."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    return np.abs(analytic - numeric) / np.maximum(floor, np.abs(analytic) + np.abs(numeric))


def numerical_gradient(f, x, eps=1e-5, indices=None, kinks=None):
    """Central-difference gradient of the scalar function ``f()`` with respect to the array ``x``.

    ``f`` takes no argument: it reads ``x``, which is changed in place one entry at a time and
    restored. ``indices`` (flat indices) limits the entries computed; the others are left NaN.
    ``kinks``: a boolean array of x's shape, set True where f has a kink at x along that entry
    (``at_kink``), where no derivative exists for the analytic gradient to match.
    """
    grad = np.full(x.shape, np.nan)
    flat = x.reshape(-1)                          # a view: writing it writes x
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array it can modify in place")
    here = f() if kinks is not None else None
    for i in range(x.size) if indices is None else indices:
        original = flat[i]
        flat[i] = original + eps
        plus = f()
        flat[i] = original - eps
        minus = f()
        flat[i] = original
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
        if kinks is not None:
            kinks.reshape(-1)[i] = at_kink((plus - here) / eps, (here - minus) / eps)
    return grad


def at_kink(right, left):
    """True when the one-sided slopes right = (f(x+eps) - f(x)) / eps and left = (f(x) -
    f(x-eps)) / eps disagree by more than half their size (and by more than 1e-7, well above
    float64 rounding of 1e-16 / eps): f bends there, as a ReLU whose input is exactly 0 does (a
    dropout that drops all of a layer's inputs for one image puts the next layer's
    pre-activation exactly at its zero bias). A smooth f's slopes differ by about f'' eps (~1e-5
    relative), a kink's by the jump in slope; central differences there average the two
    slopes, which no backward pass reproduces, so such entries are reported, not judged."""
    gap = abs(right - left)
    return bool(gap > 1e-7 and gap > 0.5 * (abs(right) + abs(left)))


@dataclass
class TensorCheck:
    """The comparison for one tensor (the input ``x`` or a parameter such as ``conv1_1.weight``)."""
    name: str
    worst_error: float
    worst_index: tuple
    analytic: float            # both gradients at the worst index
    numeric: float
    checked: int               # entries compared (all of them unless max_entries sampled)
    size: int
    kinks: int = 0             # entries left out: f has a kink there (``at_kink``)


@dataclass
class GradCheckReport:
    checks: list = field(default_factory=list)
    tol: float = LAYER_TOL

    @property
    def passed(self):
        """Every tensor passed (``_ok``)."""
        return all(self._ok(c) for c in self.checks)

    def _ok(self, check):
        """The tensor's worst error within the bound, and the tensor judged on at least one
        entry (one whose sampled entries all sat at kinks has not been checked)."""
        return check.worst_error <= self.tol and check.checked > 0

    @property
    def worst(self):
        """The TensorCheck with the largest relative error."""
        return max(self.checks, key=lambda c: c.worst_error)

    def __getitem__(self, name):
        return next(c for c in self.checks if c.name == name)

    def __str__(self):
        lines = [f"{'tensor':<22}{'rel. error':>11}  {'at':<16}{'analytic':>13}{'numeric':>13}"
                 f"{'checked':>12}"]
        for c in self.checks:
            flag = "" if self._ok(c) else "   <-- FAILED"
            kinks = f" ({c.kinks} at kinks, left out)" if c.kinks else ""
            lines.append(f"{c.name:<22}{c.worst_error:>11.2e}  {str(c.worst_index):<16}"
                         f"{c.analytic:>13.5g}{c.numeric:>13.5g}{c.checked:>6}/{c.size:<6}"
                         f"{flag}{kinks}")
        verdict = "passed" if self.passed else "FAILED"
        lines.append(f"{verdict}: worst relative error {self.worst.worst_error:.2e} "
                     f"({self.worst.name}), bound {self.tol:.0e}")
        return "\n".join(lines)


def _check_float64(name, array):
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        dtype = getattr(array, "dtype", type(array).__name__)
        raise TypeError(f"gradient checks need float64 ({name} is {dtype}): finite differences "
                        f"in float32 are too coarse; use .astype(np.float64)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"gradient check input {name} contains NaN or infinity")


def _layers(target):
    return list(target.layers.values()) if hasattr(target, "layers") else [target]


def _freeze_randomness(target):
    """Return a function that rewinds every layer's random generator (dropout masks) to now,
    so every evaluation of f sees the same mask as the analytic backward pass did."""
    generators = [layer.rng for layer in _layers(target)
                  if isinstance(getattr(layer, "rng", None), np.random.Generator)]
    states = [g.bit_generator.state for g in generators]

    def rewind():
        for g, state in zip(generators, states):
            g.bit_generator.state = state
    return rewind


def _compare(f, arrays, analytic, tol, eps, max_entries, rng):
    report = GradCheckReport(tol=tol)
    for name, array in arrays.items():
        indices = None
        if max_entries is not None and array.size > max_entries:
            indices = rng.choice(array.size, size=max_entries, replace=False)
        kinks = np.zeros(array.shape, dtype=bool)
        numeric = numerical_gradient(f, array, eps, indices, kinks=kinks)
        picked = np.arange(array.size) if indices is None else np.asarray(indices)
        smooth = picked[~kinks.reshape(-1)[picked]]
        a, n = analytic[name].reshape(-1)[smooth], numeric.reshape(-1)[smooth]
        floor = max(1e-8, FLOOR_FRACTION * np.abs(n).max(initial=0.0))
        errors = relative_error(a, n, floor=floor)
        flat = int(smooth[np.argmax(errors)]) if errors.size else int(picked[0])
        report.checks.append(TensorCheck(
            name=name, worst_error=float(errors.max(initial=0.0)),
            worst_index=tuple(int(i) for i in np.unravel_index(flat, array.shape)),
            analytic=float(analytic[name].reshape(-1)[flat]), numeric=float(numeric.reshape(-1)[flat]),
            checked=errors.size, size=array.size, kinks=picked.size - smooth.size))
    return report


def _validate(target, x):
    _check_float64("x", x)
    for name, value in target.params.items():
        _check_float64(name, value)


def _check(target, x, head, include_input, tol, eps, max_entries, rng):
    """The procedure both checks share: one analytic pass, then finite differences of the same
    scalar. ``head(output) -> (scalar, d scalar / d output)`` turns the target's output into the
    scalar checked."""
    x = x.copy()
    rewind = _freeze_randomness(target)
    _, dout = head(target.forward(x))
    analytic = {"x": target.backward(dout).copy()}
    analytic.update({name: grad.copy() for name, grad in target.grads.items()})

    def f():
        rewind()
        return head(target.forward(x))[0]
    arrays = {"x": x} if include_input else {}
    arrays.update(target.params)
    return _compare(f, arrays, analytic, tol, eps, max_entries, rng)


def check_layer(layer, x, *, tol=LAYER_TOL, eps=1e-5, max_entries=None, seed=0):
    """Check ``layer.backward`` for the input and every parameter against finite differences.

    The scalar checked is f(x) = sum(layer.forward(x) * g) with a fixed random g, so
    df/dx = layer.backward(g). x and the parameters must be float64. ``max_entries`` samples that
    many entries per tensor (all when None). Returns a GradCheckReport.
    """
    _validate(layer, x)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(layer.forward(x).shape)
    return _check(layer, x, lambda y: (float(np.sum(y * g)), g), True, tol, eps, max_entries, rng)


def check_model(model, x, labels, *, tol=MODEL_TOL, eps=1e-5, max_entries=20, seed=0,
                include_input=True):
    """Check a whole network end to end, loss included: f = softmax_cross_entropy(model(x), labels).

    ``model`` needs forward, backward and ``params`` / ``grads`` dicts (a minivgg Sequential).
    ``max_entries`` entries are sampled per tensor (None: all). Returns a GradCheckReport.
    """
    _validate(model, x)
    return _check(model, x, lambda logits: softmax_cross_entropy(logits, labels), include_input,
                  tol, eps, max_entries, np.random.default_rng(seed))
