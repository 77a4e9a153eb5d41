"""Dense evaluation (Sec. 3.2): the network made fully convolutional, run on the whole image.

    dense = to_dense(model)                  # fc6 -> 7x7 conv, fc7, fc8 -> 1x1 convs, + average
    logits = dense(x)                        # x: (N, 3, H, W), any H, W >= 224 -> (N, classes)
    scores = score_map(dense, x)             # (N, classes, h, w), h = H // 32 - 6 for VGG at 224

fc6 sees the whole final 7x7 map, so it *is* a 7x7 convolution: its weight (out, C*7*7), whose
input was flattened channel-major (C order, as Flatten and torchvision do), reshaped to
(out, C, 7, 7). fc7 and fc8 act on one position, so they are 1x1 convolutions. On a larger image
the convolution slides: one score vector per 224x224 window, 32 pixels apart (the jump of pool5),
the class score map.

Choices (the paper says the map is "spatially averaged (sum-pooled)"):
  - The map of raw class scores (logits) is *averaged* over positions, then a soft-max gives the
    posteriors. A sum would differ by the factor h*w: the same ranking, but a soft-max that grows
    sharper with the image. With the average a 224x224 image gives exactly the original logits.
  - Sides that are not a multiple of 32 are pooled with floor rounding, as MaxPool2d does:
    floor(floor(n / 2) / 2) = floor(n / 4), so the final map has floor(side / 32) positions and the
    score map floor(side / 32) - 6. The side's last (side mod 32) pixels only reach the edge
    units' fields (through the 3x3 convolutions' overlap), never a position of their own.

The dense network shares the layers and weights of the original (fc6-8's weights are reshaped
views, not copies), so it costs no memory and follows the original's training; convert again
after ``astype``, which replaces the arrays. Dropout is left out: evaluation only.
"""

import numpy as np

from .layers import Conv2d, Dropout, Flatten, Linear, SpatialAverage
from .model import Sequential
from .vgg import Undrawn


def _as_conv(linear, channels, kernel):
    """A Conv2d computing ``linear`` on a (channels, *kernel) window, sharing its arrays."""
    conv = Conv2d(channels, linear.out_features, kernel, 1, 0, dtype=linear.dtype,
                  rng=Undrawn(np.random.PCG64()))
    out = linear.out_features
    conv.params = {"weight": linear.params["weight"].reshape(out, channels, *kernel),
                   "bias": linear.params["bias"]}
    conv.grads = {"weight": linear.grads["weight"].reshape(out, channels, *kernel),
                  "bias": linear.grads["bias"]}
    return conv


def to_dense(model):
    """The fully-convolutional form of a network that ends Flatten, Linear, ..., Linear (a VGG).

    Returns a Sequential: the layers before Flatten (dropout left out), the Linear layers as
    convolutions under the same names (fc6: kernel = the final map, fc7, fc8: 1x1), then
    ("average", SpatialAverage()): (N, C, H, W) -> (N, classes). Its ``input_shape`` is the
    original's; it accepts any image at least that large.
    """
    if not hasattr(model, "layers") or getattr(model, "input_shape", None) is None:
        raise TypeError(f"to_dense needs a minivgg Sequential with an input_shape (a VGG); got "
                        f"{type(model).__name__}")
    names = list(model.layers)
    flatten = [i for i, name in enumerate(names) if isinstance(model[name], Flatten)]
    if len(flatten) != 1 or not any(isinstance(model[n], Linear) for n in names[flatten[0]:]):
        raise ValueError("to_dense: the model must have one Flatten followed by Linear layers")
    shapes = dict(model.output_shapes())
    channels, height, width = shapes[names[flatten[0] - 1]] if flatten[0] else model.input_shape
    kernel = (height, width)
    layers = []
    for name in names[:flatten[0]] + names[flatten[0] + 1:]:
        layer = model[name]
        if isinstance(layer, Dropout):
            continue
        if isinstance(layer, Linear):
            layer = _as_conv(layer, channels, kernel)
            channels, kernel = layer.out_channels, (1, 1)
        layers.append((name, layer))
    layers.append(("average", SpatialAverage()))
    return Sequential(layers, input_shape=model.input_shape)


def score_map(dense, x):
    """The class score map of a dense network: x (N, C, H, W) -> (N, classes, h, w), the logits
    of every window position before averaging (h = floor(H / 32) - 6 for a VGG trained at 224)."""
    layers = list(dense.layers.values())
    if not layers or not isinstance(layers[-1], SpatialAverage):
        raise TypeError("score_map needs the network returned by to_dense (it ends with "
                        "SpatialAverage)")
    for layer in layers[:-1]:
        x = layer.forward(x)
    return x
