"""Which implementation of the hot loops the layers call: ``"naive"``, ``"numpy"`` or ``"numba"``.

    naive  plain Python loops over the definition: the readable reference (slow on purpose)
    numpy  vectorised NumPy: im2col with stride tricks, pooling by window views and arg-max
    numba  ``@njit(cache=True)`` kernels, parallel over images and channels (the default)

Choose globally with :func:`set_backend`, for a block with ``with use_backend("naive"):``, per
layer with ``Conv2d(..., backend="numpy")``, or for a whole process with the environment variable
``MINIVGG_BACKEND``. All three give the same results to float tolerance (tests/test_kernels.py).
"""

import contextlib
import importlib
import os

BACKENDS = ("naive", "numpy", "numba")
# Relative to this package, so a copy imported under another name (the grader's student_minivgg)
# uses its own kernels.
_MODULES = {"naive": ".kernels.naive", "numpy": ".kernels.vectorized", "numba": ".kernels.jit"}


def check_backend(name):
    """Return ``name`` if it names a backend, else raise a ValueError that lists them."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {name!r}")
    return name


_current = check_backend(os.environ.get("MINIVGG_BACKEND", "numba"))


def get_backend():
    """The name of the backend used by layers created with ``backend=None``."""
    return _current


def set_backend(name):
    """Make ``name`` the backend for every layer that was not given its own."""
    global _current
    _current = check_backend(name)


@contextlib.contextmanager
def use_backend(name):
    """``with use_backend("naive"): ...`` runs the block on that backend, then restores the old one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def resolve(name=None):
    """The backend a layer built with ``backend=name`` uses now: ``name``, or the current one."""
    return check_backend(name or _current)


def kernels(name=None):
    """The kernel module of backend ``name`` (default: the current one).

    Every kernel module has the same functions: ``im2col``, ``col2im``, ``maxpool_forward``,
    ``maxpool_backward``, ``lrn_forward``, ``lrn_backward``.
    """
    return importlib.import_module(_MODULES[resolve(name)], __package__)
