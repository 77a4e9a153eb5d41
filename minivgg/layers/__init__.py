"""The layers VGG is made of, one small file each, forward beside backward."""

from .activation import ReLU
from .average import SpatialAverage
from .base import Layer
from .conv import Conv2d
from .dropout import Dropout
from .euclidean import euclidean_loss
from .linear import Flatten, Linear
from .lrn import LocalResponseNorm
from .pool import MaxPool2d
from .softmax import Softmax, log_softmax, softmax, softmax_cross_entropy
from .standardise import Standardise

__all__ = ["Layer", "Conv2d", "MaxPool2d", "ReLU", "Linear", "Flatten", "LocalResponseNorm",
           "Dropout", "Standardise", "Softmax", "softmax", "log_softmax", "softmax_cross_entropy",
           "euclidean_loss"]
