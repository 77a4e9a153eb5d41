"""What every layer shares: parameters and gradients by name, train/eval mode, input checks.

A layer is a small object with two methods that mirror each other:

    y  = layer.forward(x)       # keeps what backward will need
    dx = layer.backward(dy)     # dy = dL/dy  ->  dx = dL/dx; fills layer.grads (dL/dparam)

``layer.params["weight"]`` and ``layer.grads["weight"]`` are arrays of the same shape. ``backward``
*overwrites* the gradients (it does not accumulate), so there is nothing to zero between steps.
Every layer's backward is ``backward(dout, input_grad=True)``: with ``input_grad=False`` the caller
needs no dx (a training step's first layer with parameters, ``Sequential.loss``), so the layer may
skip computing it and return None (``Conv2d`` skips its largest product and col2im); layers that
cannot save anything accept the argument and return dx all the same. A subclass of ``Layer``
written as ``backward(self, dout)`` is given the argument, ignored (``Layer.__init_subclass__``).

dtype policy: parameters are float32 unless the layer is built with ``dtype=np.float64`` or cast
with ``layer.astype(np.float64)`` (what gradient checks do). Inputs must be floating point and, for
layers with parameters, of the parameters' dtype: nothing is silently up- or down-cast.
"""

import functools
import inspect
import math
import numbers

import numpy as np


class Layer:
    """Base class: subclasses set ``self.params`` / ``self.grads`` and write forward and backward."""

    def __init_subclass__(cls, **kwargs):
        """A subclass whose backward has no ``input_grad`` (written as the docs once showed:
        ``backward(self, dout)``) gets one that takes it and ignores it, so every layer keeps
        the contract ``Sequential`` calls."""
        super().__init_subclass__(**kwargs)
        backward = cls.__dict__.get("backward")
        if inspect.isfunction(backward) and not any(
                name == "input_grad" or p.kind is p.VAR_KEYWORD
                for name, p in inspect.signature(backward).parameters.items()):
            cls.backward = _ignoring_input_grad(backward)

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout, input_grad=True):
        """dL/dx for ``dout`` = dL/dy, filling ``self.grads``; with ``input_grad=False`` the
        caller needs no dL/dx: the layer may skip it and return None."""
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def train(self, mode=True):
        """Training mode (the default): dropout drops. Returns the layer, so calls chain."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: dropout is the identity."""
        return self.train(False)

    def astype(self, dtype):
        """Cast parameters and gradients to ``dtype`` (float32 or float64) in place; returns self."""
        dtype = check_float_dtype(dtype, "dtype")
        for store in (self.params, self.grads):
            for name, value in store.items():
                store[name] = value.astype(dtype)
        return self

    @property
    def dtype(self):
        """The parameters' dtype, or None for a layer without parameters."""
        return next(iter(self.params.values())).dtype if self.params else None

    def output_shape(self, input_shape):
        """Shape of one output sample for one input sample of ``input_shape`` (no batch axis)."""
        return tuple(input_shape)

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self):
        return ""


def _ignoring_input_grad(backward):
    """``backward(self, dout)`` as ``backward(self, dout, input_grad=True)``: always dx."""
    @functools.wraps(backward)
    def adapted(self, dout, input_grad=True):
        return backward(self, dout)
    del adapted.__wrapped__                  # its signature is its own: it takes input_grad
    return adapted


def check_float_dtype(dtype, name):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64; got {dtype}")
    return dtype


def check_loss_input(x, name, columns):
    """A loss's prediction: a non-empty (N, columns) float32/float64 array. Returns N."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"{name} must be an array of shape (N, {columns}); got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64; got {x.dtype}")
    if len(x) == 0:
        raise ValueError(f"{name} is an empty batch (shape {x.shape}); give at least one row")
    return len(x)


def check_input(layer, x, ndim, channels=None, name="x"):
    """Validate a forward input at the public boundary; return it unchanged.

    Raises TypeError for a non-array, an integer or other non-float dtype, or a dtype different
    from the layer's parameters; ValueError for the wrong rank (``ndim``; None accepts any), an
    empty batch (axis 0) or the wrong number of channels (axis 1).
    """
    where = type(layer).__name__
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where}: {name} must be a NumPy array; got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: {name} must be float32 or float64; got dtype {x.dtype} "
                        f"(convert images with x.astype(np.float32))")
    if layer.dtype is not None and x.dtype != layer.dtype:
        raise TypeError(f"{where}: {name} has dtype {x.dtype} but the parameters are "
                        f"{layer.dtype}; call layer.astype(np.{x.dtype}) or cast the input")
    if ndim is not None and x.ndim != ndim:
        layout = {2: "(N, D)", 4: "(N, C, H, W)"}.get(ndim, f"{ndim} axes")
        raise ValueError(f"{where}: {name} must have {ndim} axes {layout}; got shape {x.shape}")
    if x.ndim and x.shape[0] == 0:
        raise ValueError(f"{where}: {name} is an empty batch (shape {x.shape}); give at least one "
                         f"sample")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{where}: {name} has {x.shape[1]} channels (axis 1) but the layer "
                         f"expects {channels}; got shape {x.shape}")
    return x


def check_gradient(layer, dout, expected_shape):
    """Validate the upstream gradient given to backward: an array of the forward output's shape,
    float32 or float64 (an integer gradient would be silently truncated or refused by NumPy)."""
    where = type(layer).__name__
    if not isinstance(dout, np.ndarray) or dout.shape != tuple(expected_shape):
        got = getattr(dout, "shape", type(dout).__name__)
        raise ValueError(f"{where}.backward: dout must have the forward output's shape "
                         f"{tuple(expected_shape)}; got {got}")
    if dout.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}.backward: dout must be float32 or float64; got dtype "
                        f"{dout.dtype}")
    return dout


def check_count(where, value, name):
    """A positive int (Python or NumPy, not a bool) such as a channel count, returned as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int; got {value!r}")
    return int(value)


def check_real(where, value, name, low=0.0, high=None, open_low=False):
    """A finite number (Python or NumPy, not a bool) in [low, high) (``open_low``: in
    (low, high), e.g. a learning rate), returned as float."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or (value <= low if open_low else value < low)
            or (high is not None and value >= high)):
        span = (f"{'>' if open_low else '>='} {low:g}" if high is None
                else f"in {'(' if open_low else '['}{low:g}, {high:g})")
        raise ValueError(f"{where}: {name} must be a finite number {span}; got {value!r}")
    return float(value)


def require_forward(layer, cache):
    if cache is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")
    return cache


class Workspace:
    """Scratch arrays reused from call to call, grown when a larger one is asked for.

    Fresh memory is slow to touch (a page fault per 4 KiB page), and im2col matrices are large, so
    the convolution keeps its buffers instead of allocating new ones each step. A buffer handed out
    by ``get(name, ...)`` is valid until the next ``get`` of the same name.
    """

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype):
        size = int(np.prod(shape))
        array = self._arrays.get(name)
        if array is None or array.dtype != dtype or array.size < size:
            array = self._arrays[name] = np.empty(size, dtype=dtype)
        return array[:size].reshape(shape)


def resolve_rng(rng):
    """A ``np.random.Generator`` from a Generator, an int seed, or None (a fresh, unseeded one)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def random_weight(shape, std, dtype, rng):
    """Weights ~ N(0, std^2) of ``shape`` (out, in, ...); std None means He et al. (2015):
    sqrt(2 / fan_in), which keeps activations' variance constant through ReLU layers."""
    dtype = check_float_dtype(dtype, "dtype")
    if std is None:
        std = np.sqrt(2.0 / np.prod(shape[1:]))
    check_real(f"weights of shape {shape}", std, "weight_std")
    return resolve_rng(rng).standard_normal(shape, dtype=dtype) * dtype.type(std)
