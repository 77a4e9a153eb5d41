"""The convolution algorithms a Conv2d layer can use, one module each, and how ``auto`` picks.

    im2col        unroll the windows into columns, one matrix product (conv/im2col.py): any shape
    winograd      Winograd's F(4x4, 3x3) (conv/winograd.py): 3x3 kernels, stride 1, padding 0-2
    winograd2x2   F(2x2, 3x3): the same with smaller tiles (fewer savings, smaller float32 error)
    direct        one product per kernel offset, no im2col matrix (conv/direct.py): stride 1

Each algorithm object holds its own buffers and has the same two methods:

    forward(x, weight, bias) -> y            backward(dy, weight, dweight) -> dx (fills dweight)
"""

from .choice import ALGORITHMS, CHOICES, NEEDS, check_algorithm, choose, clear_scratch, supports

__all__ = ["ALGORITHMS", "CHOICES", "NEEDS", "check_algorithm", "choose", "clear_scratch",
           "supports"]
