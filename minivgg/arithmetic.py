"""The paper's arithmetic, read off a model's own layers, so it can never disagree with the model.

    print(build_vgg("D", init=None).summary())       # the table (init=None: nothing drawn, fast)
    s = model.summary();  s["conv3_2"].field, s.total_params, [row.macs for row in s.rows]

Per layer, for one image (no batch axis):
    output shape     what ``layer.output_shape`` says
    params           the sizes of the layer's own arrays (Table 2 is their total)
    MACs             multiply-accumulates: a convolution does Ho*Wo*F*(C*kh*kw) of them (bias
                     additions not counted), a fully connected layer D_in*D_out; pooling, ReLU,
                     LRN, dropout do comparisons and elementwise work, counted as 0
    activations      values in the layer's output, and their bytes in the model's dtype: what the
                     forward pass produces. (Flatten's output is a view of its input and dropout
                     in evaluation returns its input, so their rows overstate what is allocated.)
                     Training keeps more for backward: each convolution its im2col matrix,
                     C*kh*kw*Ho*Wo values (9x its input for a 3x3 conv: conv1_2 at 224 holds
                     64*9*224*224 = 28.9M values, 116 MB in float32), each ReLU its output, each
                     max-pool its arg-max indices (one per output), each dropout its random draws
                     (one per input), LRN its scale (one per input), a Linear its input.
    field, jump,     the receptive field: how many input pixels one unit sees (r), the distance in
    start            input pixels between neighbouring units (j, the effective stride), and the
                     centre of unit (0, 0) (start), in coordinates where input pixel i spans
                     [i, i+1), so the input starts with r = 1, j = 1, start = 0.5. A layer with
                     window k, stride s and padding p gives (Dumoulin & Visin 2016's recurrences):
                         r_out = r_in + (k - 1) * j_in
                         j_out = j_in * s
                         start_out = start_in + ((k - 1) / 2 - p) * j_in
                     The first Linear after Flatten (fc6) and SpatialAverage see the whole map:
                     a window as large as the map (7x7 at 224: fc6 is a 7x7 convolution in
                     disguise, see minivgg.dense), leaving one position. Flatten itself only
                     reshapes (its unit 0 is channel 0 at position (0, 0)); it and the
                     per-position layers (ReLU, LRN, dropout, and fc7, fc8 on one position)
                     change none of the three. Per axis: (height, width).

``measure_receptive_fields`` finds the same fields the other way, by back-propagation.
"""

from dataclasses import dataclass

import numpy as np

from .layers import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Softmax,
    SpatialAverage,
)

# Layers that act on each position separately (Flatten: a reshape): they leave the field alone.
# Another layer type says so with a class attribute ``elementwise = True``.
_PER_POSITION = (ReLU, LocalResponseNorm, Dropout, Softmax, Flatten)


@dataclass(frozen=True)
class LayerStats:
    """One row of a Summary: a layer's output for one image. Pairs are (height, width)."""
    name: str
    kind: str                 # "conv3x3", "maxpool2x2/2", "relu", "fc", ...
    output_shape: tuple       # (C, H, W) or (D,)
    params: int
    macs: int
    activations: int          # values in the output
    bytes: int                # activations * itemsize of the model's dtype
    field: tuple              # receptive field size r, in input pixels
    jump: tuple               # j: input pixels between neighbouring units
    start: tuple              # centre of unit (0, 0); input pixel i spans [i, i+1)
    algorithm: str = ""       # how a convolution is computed ("im2col", "winograd", ...)

    @property
    def centre_unit(self):
        """The unit at ((Ho - 1) // 2, (Wo - 1) // 2); (0, 0) for a vector output."""
        return tuple((n - 1) // 2 for n in self.output_shape[1:]) or (0, 0)

    def field_box(self, unit=None, clip=None):
        """(top, left, height, width) in input pixels of the field of ``unit`` (default: the
        centre unit). The box may hang over the image edge, where the field sees zero padding;
        ``clip=(H, W)`` cuts it to the image, the part of the field that holds pixels."""
        unit = self.centre_unit if unit is None else unit
        lo = [s + u * j - r / 2 for s, u, j, r in zip(self.start, unit, self.jump, self.field)]
        hi = [a + r for a, r in zip(lo, self.field)]
        if clip is not None:
            lo = [max(a, 0) for a in lo]
            hi = [min(b, size) for b, size in zip(hi, clip)]
        top, left = (int(a) for a in lo)
        return top, left, int(hi[0]) - top, int(hi[1]) - left


@dataclass(frozen=True)
class Summary:
    """The arithmetic of a network: ``rows`` (one LayerStats per layer) and the totals.
    ``str(summary)`` is the table; ``summary["conv3_2"]`` a row by name."""
    rows: list
    input_shape: tuple
    dtype: np.dtype

    @property
    def total_params(self):
        return sum(row.params for row in self.rows)

    @property
    def total_macs(self):
        return sum(row.macs for row in self.rows)

    @property
    def total_activations(self):
        return sum(row.activations for row in self.rows)

    @property
    def total_bytes(self):
        return sum(row.bytes for row in self.rows)

    def __getitem__(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(r.name for r in self.rows)}")

    def __str__(self):
        def pair(values):
            return f"{values[0]:g}" if values[0] == values[1] else f"{values[0]:g}x{values[1]:g}"

        header = (f"{'layer':<10}{'output':>14}{'params':>14}{'MACs':>17}{'activations':>13}"
                  f"{self.dtype.name:>11}{'field':>10}{'jump':>7}{'start':>11}  algorithm")
        lines = [header, "-" * len(header),
                 f"{'input':<10}{'x'.join(map(str, self.input_shape)):>14}"]
        for row in self.rows:
            lines.append(f"{row.name:<10}{'x'.join(map(str, row.output_shape)):>14}"
                         f"{row.params:>14,}{row.macs:>17,}{row.activations:>13,}"
                         f"{_bytes(row.bytes):>11}{pair(row.field):>10}{pair(row.jump):>7}"
                         f"{pair(row.start):>11}  {row.algorithm}".rstrip())
        lines += ["-" * len(header),
                  f"{'total':<24}{self.total_params:>14,}{self.total_macs:>17,}"
                  f"{self.total_activations:>13,}{_bytes(self.total_bytes):>11}",
                  "activations: one image's forward outputs; backward also keeps each conv's "
                  "im2col matrix (see minivgg.arithmetic)"]
        return "\n".join(lines)


def _bytes(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _window(layer, grid):
    """(kernel, stride, padding), each an (h, w) pair: how the layer slides over the (h, w) grid
    of positions of its input (for a vector input, the map it was flattened from, or (1, 1))."""
    if isinstance(layer, Conv2d):
        return layer.kernel_size, layer.stride, layer.padding
    if isinstance(layer, MaxPool2d):
        return layer.kernel_size, layer.stride, (0, 0)
    if isinstance(layer, (Linear, SpatialAverage)):
        return tuple(grid), (1, 1), (0, 0)
    if isinstance(layer, _PER_POSITION) or getattr(layer, "elementwise", False):
        return (1, 1), (1, 1), (0, 0)
    raise TypeError(f"the arithmetic does not know layer type {type(layer).__name__}; known: "
                    f"Conv2d, MaxPool2d, Linear, Flatten, SpatialAverage, ReLU, LRN, Dropout, "
                    f"Softmax, and layers that set the class attribute elementwise = True")


def _next_grid(layer, grid, output_shape):
    """The grid of positions after ``layer``: a map's (H, W); one position after a layer that
    saw the whole grid; unchanged by Flatten and per-position layers."""
    if len(output_shape) == 3:
        return output_shape[1:]
    return (1, 1) if isinstance(layer, (Linear, SpatialAverage)) else grid


def next_field(field, jump, start, kernel, stride, padding):
    """One step of the recurrences along one axis: (r, j, start) in, (r, j, start) out."""
    ### BEGIN SOLUTION
    return (field + (kernel - 1) * jump, jump * stride,
            start + ((kernel - 1) / 2 - padding) * jump)
    ### END SOLUTION


def _kind(layer):
    if isinstance(layer, (Conv2d, MaxPool2d)):
        (kh, kw), (sh, _) = layer.kernel_size, layer.stride
        prefix = "conv" if isinstance(layer, Conv2d) else "maxpool"
        return f"{prefix}{kh}x{kw}" + ("" if sh == 1 else f"/{sh}")
    return {Linear: "fc", LocalResponseNorm: "lrn", SpatialAverage: "average"}.get(
        type(layer), type(layer).__name__.lower())


def summarize(model, input_shape=None):
    """The Summary of a Sequential for one input of ``input_shape`` (C, H, W); default the
    model's own ``input_shape``. Nothing is run: shapes come from ``layer.output_shape``."""
    shape = _input_shape(model, input_shape)
    dtype = np.dtype(model.dtype or np.float32)
    field, jump, start = (1, 1), (1, 1), (0.5, 0.5)
    rows, grid = [], shape[1:]
    for name, layer in model.layers.items():
        field, jump, start = zip(*(next_field(*axis) for axis in
                                   zip(field, jump, start, *_window(layer, grid))))
        out_shape = layer.output_shape(shape)
        grid = _next_grid(layer, grid, out_shape)
        activations = int(np.prod(out_shape))
        weight = layer.params.get("weight")
        macs = 0 if weight is None else weight.size * (
            activations // weight.shape[0] if isinstance(layer, Conv2d) else 1)
        rows.append(LayerStats(
            name=name, kind=_kind(layer), output_shape=out_shape,
            params=sum(p.size for p in layer.params.values()), macs=int(macs),
            activations=activations, bytes=activations * dtype.itemsize,
            field=field, jump=jump, start=start,
            algorithm=layer.algorithm_for(shape) if isinstance(layer, Conv2d) else ""))
        shape = out_shape
    return Summary(rows=rows, input_shape=_input_shape(model, input_shape), dtype=dtype)


def _input_shape(model, input_shape):
    if not hasattr(model, "layers"):
        raise TypeError(f"model must be a minivgg Sequential; got {type(model).__name__}")
    shape = model.input_shape if input_shape is None else input_shape
    if (not isinstance(shape, (tuple, list)) or len(shape) != 3
            or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape)):
        raise ValueError(f"input_shape must be (C, H, W), three positive ints (the model has "
                         f"none of its own to default to); got {shape!r}")
    return tuple(int(n) for n in shape)


@dataclass(frozen=True)
class StackedConvs:
    """Sec. 2.3: n stacked 3x3 convolutions (C channels in and out, no pooling) against one
    convolution with the same field. Weights only (biases: C per layer, not in the paper's count)."""
    layers: int
    channels: int
    field: int                # 2n + 1
    stack_weights: int        # n * 9 * C^2
    single_weights: int       # (2n + 1)^2 * C^2

    @property
    def extra(self):
        """How much larger the single layer is: 49/27 - 1 = 0.81 for n = 3 ("81% more")."""
        return self.single_weights / self.stack_weights - 1


def stacked_convs(n, channels=1):
    """The paper's side argument for ``n`` 3x3 convolutions of ``channels`` channels."""
    for value, name in ((n, "n"), (channels, "channels")):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    field, jump, start = 1, 1, 0.5
    for _ in range(n):
        field, jump, start = next_field(field, jump, start, 3, 1, 1)
    return StackedConvs(layers=n, channels=channels, field=field,
                        stack_weights=n * 9 * channels ** 2,
                        single_weights=field ** 2 * channels ** 2)


def _probe(model, input_shape):
    """A float64 stand-in with the model's geometry whose gradients cannot vanish by accident.

    Every layer that slides a window (convolution, max-pool) becomes a Conv2d of the same window,
    stride and padding whose weights are all 1/fan_in, a positive average; Linear layers likewise.
    Per-position layers (ReLU, LRN, dropout) are left out: they do not move a field, but a ReLU
    kink or a dropped unit would zero a gradient. A max-pool sends its gradient to one arg-max per
    window, so the real one would show only part of the field; the average shows the worst case,
    the whole window, which is what the analytic field of a max-pool is.
    Returns [(name, layer or None)]: None where the layer was left out.
    """
    probe, shape = [], tuple(input_shape)
    for name, layer in model.layers.items():
        out = layer.output_shape(shape)
        if isinstance(layer, (Conv2d, MaxPool2d)):
            kernel, stride, padding = _window(layer, None)
            stand_in = Conv2d(shape[0], out[0], kernel, stride, padding, dtype=np.float64)
            stand_in.params["weight"][...] = 1.0 / stand_in.params["weight"][0].size
        elif isinstance(layer, Linear):
            stand_in = Linear(layer.in_features, layer.out_features, dtype=np.float64)
            stand_in.params["weight"][...] = 1.0 / layer.in_features
        elif isinstance(layer, (Flatten, SpatialAverage)):
            stand_in = type(layer)()
        else:
            _window(layer, None)                      # unknown layer types are a TypeError
            stand_in = None
        probe.append((name, stand_in))
        shape = out
    return probe


def measure_receptive_fields(model, input_shape=None):
    """The receptive fields found by back-propagation: {layer name: (top, left, height, width)}.

    For each layer, a unit gradient at the centre unit (``LayerStats.centre_unit``; unit 0 of a
    vector) of channel 0 of its output is propagated back to an all-ones input, and the box
    around the input pixels whose gradient is not zero is that unit's field, cut to the image (compare with
    ``summary[name].field_box(clip=(H, W))``). Runs a float64 stand-in of the model (see
    ``_probe``), so the real layers' caches and weights are untouched.
    """
    shape = _input_shape(model, input_shape)
    probe = _probe(model, shape)
    x = np.ones((1, *shape))
    outputs = []                                       # (name, index of the last real layer)
    layers = []
    for name, layer in probe:
        if layer is not None:
            x = layer.forward(x)
            layers.append(layer)
        outputs.append((name, len(layers), x.shape))
    boxes = {}
    for name, depth, out_shape in outputs:
        grad = np.zeros(out_shape)
        centre = tuple((n - 1) // 2 for n in out_shape[2:])
        grad[(0, 0, *centre)] = 1.0
        for layer in reversed(layers[:depth]):
            grad = layer.backward(grad)
        rows, cols = np.nonzero(np.abs(grad[0]).sum(axis=0))
        boxes[name] = (int(rows.min()), int(cols.min()), int(rows.max() - rows.min() + 1),
                       int(cols.max() - cols.min() + 1))
    return boxes
