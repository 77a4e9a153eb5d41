"""minivgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) from scratch in NumPy and Numba.

See ARCHITECTURE.md for the map of the package.
"""

import os

# On a 2-core machine idle worker threads keep spinning after each call and steal the cores from
# whatever runs next: OpenBLAS's for ~0.1 s after every matrix product, OpenMP's (PyTorch, Numba
# parallel=True code) likewise. minivgg's own kernels run on plain Python threads that sleep when
# idle (kernels/jit.py), but they run right after BLAS products: a conv step measured 1.2-1.45x
# slower with both left at the libraries' defaults. These must be set before NumPy and any OpenMP
# runtime load; a user's own settings win. Measured by benchmarks/bench_threads.py.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("GOMP_SPINCOUNT", "30000")

from . import gradcheck  # noqa: E402
from .backend import BACKENDS, get_backend, set_backend, use_backend  # noqa: E402
from .diagnose import diagnose  # noqa: E402  (minivgg.diagnose(model, batch))
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
