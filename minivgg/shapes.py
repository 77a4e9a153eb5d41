"""Small shape helpers shared by the layers, the kernels and the arithmetic."""

import numbers


def pair(value, name):
    """``3 -> (3, 3)``, ``(3, 1) -> (3, 1)``; anything else is a ValueError naming ``name``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints; got {value!r}")


def output_size(size, kernel, stride, padding):
    """Output length of a sliding window: ``floor((size + 2 * padding - kernel) / stride) + 1``.

    Floor rounding (NumPy/PyTorch), not Caffe's ceil: a window that would hang over the padded
    edge is dropped. Raises ValueError when the window does not fit even once.
    """
    padded = size + 2 * padding
    if kernel > padded:
        raise ValueError(f"kernel size {kernel} is larger than the padded input size {padded} "
                         f"(input {size} + 2 * padding {padding})")
    return (padded - kernel) // stride + 1


def conv_output_shape(x_shape, weight_shape, stride, padding):
    """(N, F, Ho, Wo) of a convolution of x (N, C, H, W) with weight (F, C, kh, kw)."""
    (N, _, H, W), (F, _, kh, kw) = x_shape, weight_shape
    return (N, F, output_size(H, kh, stride[0], padding[0]),
            output_size(W, kw, stride[1], padding[1]))
