"""Spatial averaging: the last step of dense evaluation, which turns a class score map into one
score vector per image (Sec. 3.2, "spatially averaged (sum-pooled)")."""

import numpy as np

from .base import Layer, check_gradient, check_input, require_forward


class SpatialAverage(Layer):
    """y[n, c] = 1/(H*W) sum_{h, w} x[n, c, h, w]

    x: (N, C, H, W) -> y: (N, C). Any H, W: the fully-convolutional VGG's score map grows with
    the image. Backward: every position got weight 1/(H*W), so dx[n, c, h, w] = dy[n, c] / (H*W).

    An average, not a sum: the two differ by the factor H*W, which leaves the ranking of classes
    alone but would sharpen the soft-max as the image grows; with the average, a 224x224 image
    (a 1x1 map) gives exactly the logits of the original network.
    """

    def __init__(self):
        super().__init__()
        self._x_shape = None

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def forward(self, x):
        check_input(self, x, 4)
        self._x_shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout, input_grad=True):
        x_shape = require_forward(self, self._x_shape)
        N, C, H, W = x_shape
        check_gradient(self, dout, (N, C))
        scale = dout.dtype.type(1.0 / (H * W))
        return np.broadcast_to((dout * scale)[:, :, None, None], x_shape).copy()
