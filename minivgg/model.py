"""A network as an ordered list of named layers: forward front to back, backward back to front."""

import numpy as np

from .arithmetic import summarize
from .layers.base import Layer, check_float_dtype
from .layers.softmax import softmax_cross_entropy


class Sequential:
    """Named layers applied in order. Parameters are reachable by layer and parameter name:

        model.params["conv3_2.weight"], model.grads["fc6.bias"], model["conv3_2"]

    ``params`` and ``grads`` are fresh dicts whose values are the layers' own arrays (views, not
    copies): writing ``model.params[name][...] = w`` changes the layer.
    """

    def __init__(self, layers, input_shape=None):
        self.layers = dict(layers)
        self.input_shape = None if input_shape is None else tuple(input_shape)   # (C, H, W)
        self.training = True
        self.frozen = frozenset()                 # names of layers the optimiser leaves alone

    def forward(self, x):
        """x: (N, C, H, W) -> the last layer's output (logits (N, classes) for a VGG)."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout, input_grad=True):
        """The chain rule, layer by layer in reverse; fills every layer's ``grads``; returns dL/dx.

        ``input_grad=False`` (what ``loss`` uses: a training step needs no gradient of the
        images) stops at the first layer with parameters, which is told so (``Layer``'s
        ``backward(dout, input_grad)`` contract; Conv2d then skips the input-gradient product
        and col2im, the same saving PyTorch makes; an object that is no ``Layer`` is called as
        ``backward(dout)``); returns None then."""
        layers = list(self.layers.values())
        if input_grad:
            for layer in reversed(layers):
                dout = layer.backward(dout)
            return dout
        first = next((i for i, layer in enumerate(layers) if layer.params), None)
        if first is None:                     # no parameters: no gradient to compute
            return None
        for layer in reversed(layers[first + 1:]):
            dout = layer.backward(dout)
        if isinstance(layers[first], Layer):
            layers[first].backward(dout, input_grad=False)
        else:
            layers[first].backward(dout)
        return None

    def loss(self, x, labels):
        """One training pass: forward, soft-max cross-entropy, backward. Returns (loss, logits);
        the gradients are then in ``self.grads``."""
        logits = self.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, labels)
        self.backward(dlogits, input_grad=False)
        return loss, logits

    @property
    def params(self):
        return {f"{name}.{key}": value for name, layer in self.layers.items()
                for key, value in layer.params.items()}

    @property
    def grads(self):
        return {f"{name}.{key}": value for name, layer in self.layers.items()
                for key, value in layer.grads.items()}

    @property
    def trainable(self):
        """``params`` without the frozen layers': what an optimiser updates."""
        return {f"{name}.{key}": value for name, layer in self.layers.items()
                if name not in self.frozen for key, value in layer.params.items()}

    def freeze(self, names):
        """Fine-tune only some layers (the paper's Appendix A trains fc6-fc7 alone): the layers
        ``names`` keep their parameters bit for bit, as SGD skips them (no decay, no momentum).
        Backward still passes gradients through them. Returns self; ``unfreeze`` undoes it."""
        self.frozen = self.frozen | self._layer_names(names, "freeze")
        return self

    def unfreeze(self, names=None):
        """Train ``names`` again (None: every layer). Returns self."""
        self.frozen = (frozenset() if names is None
                       else self.frozen - self._layer_names(names, "unfreeze"))
        return self

    def _layer_names(self, names, caller):
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self.layers]
        if unknown:
            raise ValueError(f"{caller}: names {unknown} are not layers of the model "
                             f"({', '.join(self.layers)})")
        return frozenset(names)

    def set_params(self, arrays):
        """Copy ``arrays`` ({"conv1_1.weight": ..., ...}) into the model, checking that the names
        are exactly the model's and each shape matches; raises ValueError naming the culprit."""
        params = self.params
        missing, unexpected = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
        if missing or unexpected:
            raise ValueError(f"parameters do not match the model: missing {missing or 'none'}, "
                             f"unexpected {unexpected or 'none'}")
        for name, value in arrays.items():
            if np.shape(value) != params[name].shape:
                raise ValueError(f"{name}: shape {np.shape(value)} does not match the model's "
                                 f"{params[name].shape}")
        for name, value in arrays.items():
            params[name][...] = value

    def num_params(self):
        return sum(p.size for p in self.params.values())

    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers.values():
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def astype(self, dtype):
        """Cast every layer's parameters (float32 or float64) in place; returns self."""
        check_float_dtype(dtype, "dtype")
        for layer in self.layers.values():
            layer.astype(dtype)
        return self

    @property
    def dtype(self):
        return next((layer.dtype for layer in self.layers.values() if layer.dtype is not None), None)

    def output_shapes(self, input_shape=None):
        """[(name, output shape of one sample)] for each layer, without running the network."""
        shape = tuple(input_shape or self.input_shape)
        shapes = []
        for name, layer in self.layers.items():
            shape = layer.output_shape(shape)
            shapes.append((name, shape))
        return shapes

    def summary(self, input_shape=None):
        """The arithmetic per layer and in total (minivgg.arithmetic.Summary): output shape,
        parameters, MACs, activation memory, receptive field, jump and start. ``print`` it for the
        table; read ``.rows`` and ``.total_params`` as data. input_shape: (C, H, W), default the
        model's."""
        return summarize(self, input_shape)

    def __getitem__(self, name):
        return self.layers[name]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        lines = [f"  ({name}): {layer!r}" for name, layer in self.layers.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"
