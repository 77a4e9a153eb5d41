"""minivgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) from scratch in NumPy and Numba.

See ARCHITECTURE.md for the map of the package.
"""

import os

# On a 2-core machine idle OpenBLAS / OpenMP worker threads keep spinning after each call and
# steal the core from the next library (Numba kernels interleaved with BLAS GEMMs ran up to 2x
# slower). These must be set before NumPy and Numba load their thread pools; a user's own
# settings win. See benchmarks/bench_threads.py.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("GOMP_SPINCOUNT", "30000")

from . import gradcheck  # noqa: E402
from .backend import BACKENDS, get_backend, set_backend, use_backend  # noqa: E402
from .gradcheck import check_layer, check_model  # noqa: E402
from .layers import (  # noqa: E402
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Softmax,
    log_softmax,
    softmax,
    softmax_cross_entropy,
)
from .vgg import VGG, build_vgg, init_from_shallower  # noqa: E402

__version__ = "0.1.0"
