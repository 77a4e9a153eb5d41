"""Which algorithm a layer may use (``NEEDS``, ``supports``) and which ``auto`` uses (``choose``).

A module of its own, imported by layers/conv.py directly, so the layer imports even where the
grader loads sub-packages without their ``__init__`` files.
"""

import sys
from functools import partial

from . import direct, im2col, winograd
from .direct import Direct
from .im2col import Im2col
from .winograd import Winograd

ALGORITHMS = {"im2col": Im2col, "winograd": partial(Winograd, m=4),
              "winograd2x2": partial(Winograd, m=2), "direct": Direct}
CHOICES = ("auto", *ALGORITHMS)


def clear_scratch():
    """Free the temporaries every algorithm module shares between layers, and the numba kernels'
    (they are regrown on the next call): for memory measurements that must see them allocated."""
    for module in (im2col, winograd, direct):
        module._scratch._arrays.clear()
    jit = sys.modules.get(__name__.rsplit(".", 2)[0] + ".kernels.jit")   # only if loaded
    if jit is not None:
        jit._local.__dict__.clear()


def footprint(name, x_shape, y_shape, kernel_size, padding, itemsize):
    """(bytes kept for backward, {shared temporary: bytes}) of algorithm ``name`` on one layer
    call (x_shape, y_shape: (N, C, H, W)); see Im2col.footprint."""
    functions = {"im2col": Im2col.footprint, "direct": Direct.footprint,
                 "winograd": partial(Winograd.footprint, m=4),
                 "winograd2x2": partial(Winograd.footprint, m=2)}
    return functions[name](x_shape, y_shape, kernel_size, padding, itemsize)


def check_algorithm(name):
    if name not in CHOICES:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, CHOICES))}; got {name!r}")
    return name


# What each algorithm needs, in words (for errors) and as a test of (kernel_size, stride, padding)
NEEDS = {
    "winograd": ("a 3x3 kernel, stride 1 and equal padding 0, 1 or 2",
                 lambda k, s, p: k == (3, 3) and s == (1, 1) and p[0] == p[1] and p[0] in (0, 1, 2)),
    "direct": ("stride 1", lambda k, s, p: s == (1, 1)),
}
NEEDS["winograd2x2"] = NEEDS["winograd"]


def supports(name, kernel_size, stride, padding):
    """Whether algorithm ``name`` computes a convolution of this geometry."""
    return name not in NEEDS or NEEDS[name][1](kernel_size, stride, padding)


def choose(kernel_size, stride, padding, in_channels, out_channels, output_size):
    """The algorithm ``auto`` uses for a layer whose output maps are ``output_size`` (Ho, Wo).

    A rule read off measurements of forward + backward per layer (benchmarks/bench_layers.py;
    one thread, CPU time, numba kernels, 2026-11-29). Winograd's transforms cost per channel and
    per tile while its products save multiplies per channel pair, so it pays with many channels
    on large maps; a 4x4 tile wastes work on small maps (a 2x2 map still costs a 6x6 tile):

        3x3, both channel counts >= 32, maps >= 32: F(4x4, 3x3), 0.56-0.60x of im2col's time
        (VGG-16's conv1_2 to conv3_x at 224; a 64-channel CIFAR layer, batch 64: 0.84x)
        the same at maps 24-31 (conv4_x at 28): F(2x2, 3x3), 0.76x of im2col's time
        1x1, stride 1: "direct", one matrix product with no copy of the input
        everything else (conv1_1's 3 channels, maps under 24, strides > 1): im2col

    "direct" also took 0.56-0.86x of im2col's CPU time on maps of 8x8 and smaller (batch 64), but
    its nine products per pass ran 3x *slower* than im2col with two BLAS threads on a loaded
    machine (each product is a point where the threads wait for each other), so auto leaves
    those layers to im2col.
    """
    small = min(output_size)
    if supports("winograd", kernel_size, stride, padding) and min(in_channels, out_channels) >= 32:
        if small >= 32:
            return "winograd"
        if small >= 24:
            return "winograd2x2"
    if kernel_size == (1, 1) and stride == (1, 1):
        return "direct"
    return "im2col"
