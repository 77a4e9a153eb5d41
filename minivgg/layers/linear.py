"""Fully connected layers (fc6, fc7, fc8) and the Flatten that feeds them."""

import numpy as np

from .base import Layer, check_count, check_gradient, check_input, random_weight, require_forward


class Linear(Layer):
    """y = x @ weight.T + bias

    x: (N, D_in) -> y: (N, D_out);  params: weight (D_out, D_in) (torchvision's layout), bias (D_out,)
    weight ~ N(0, weight_std^2), by default He's sqrt(2 / D_in); bias 0.
    Backward:  dx = dy @ weight,  dweight = dy.T @ x,  dbias = sum_n dy[n].
    """

    def __init__(self, in_features, out_features, *, weight_std=None, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = in_features = check_count("Linear", in_features, "in_features")
        self.out_features = out_features = check_count("Linear", out_features, "out_features")
        self.params = {"weight": random_weight((out_features, in_features), weight_std, dtype, rng),
                       "bias": np.zeros(out_features, dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._x = None

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Linear: expects {self.in_features} input features; got an input "
                             f"of shape {tuple(input_shape)}")
        return (self.out_features,)

    def forward(self, x):
        self._x = check_input(self, x, 2, self.in_features)
        ### BEGIN SOLUTION
        return x @ self.params["weight"].T + self.params["bias"]
        ### END SOLUTION

    def backward(self, dout, input_grad=True):
        x = require_forward(self, self._x)
        check_gradient(self, dout, (x.shape[0], self.out_features))
        ### BEGIN SOLUTION
        np.matmul(dout.T, x, out=self.grads["weight"])
        self.grads["bias"][...] = dout.sum(axis=0)
        return dout @ self.params["weight"]
        ### END SOLUTION

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}"


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C order (channel slowest), the order torchvision's VGG uses."""

    def __init__(self):
        super().__init__()
        self._x_shape = None

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        check_input(self, x, 4)
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout, input_grad=True):
        x_shape = require_forward(self, self._x_shape)
        check_gradient(self, dout, (x_shape[0], int(np.prod(x_shape[1:]))))
        return dout.reshape(x_shape)
