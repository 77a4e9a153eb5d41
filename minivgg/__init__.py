"""minivgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) from scratch in NumPy and Numba.

See ARCHITECTURE.md for the map of the package.
"""

# First, before NumPy loads (if it has not already): idle BLAS threads must not spin (threads.py).
from .threads import configure as _configure_threads

_configure_threads()

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
