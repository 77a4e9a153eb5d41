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
    Standardise,
)
from .shapes import output_size

# The kind ("op") of each layer type the arithmetic knows. Another layer type that acts on each
# value separately says so with a class attribute ``elementwise = True``.
_OPS = ((Conv2d, "conv"), (MaxPool2d, "pool"), (Linear, "fc"), (ReLU, "relu"),
        (LocalResponseNorm, "lrn"), (Dropout, "dropout"), (Flatten, "flatten"),
        (SpatialAverage, "average"), (Softmax, "softmax"), (Standardise, "standardise"))
# Kinds that act on each position separately (flatten: a reshape): they leave the field alone.
_PER_POSITION = ("relu", "lrn", "dropout", "softmax", "flatten", "standardise", "elementwise")

# Element-wise work per output value (pool: per output, window - 1 comparisons; lrn: per value,
# n squares, n - 1 adds, alpha, k, the power and the division: 2n + 3 with n = 5; average: per
# *input* value, one add). Counted only when asked (``elementwise=True``): tools disagree on it.
_LRN_OPS = 2 * 5 + 3


@dataclass(frozen=True)
class Geometry:
    """What the arithmetic needs of a layer, read off a layer object or a row of
    ``minivgg.vgg.vgg_plan`` (so a summary needs no weights): its kind, how it slides, the sizes
    of its arrays (weight first, then bias) and, for conv and fc, its output channels."""
    op: str
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    out_channels: int = 0
    param_sizes: tuple = ()


def _layer_geometry(layer):
    op = next((op for cls, op in _OPS if isinstance(layer, cls)), None)
    if op is None and getattr(layer, "elementwise", False):
        op = "elementwise"
    if op is None:
        raise TypeError(f"the arithmetic does not know layer type {type(layer).__name__}; known: "
                        f"{', '.join(cls.__name__ for cls, _ in _OPS)}, and layers that set the "
                        f"class attribute elementwise = True")
    sizes = tuple(p.size for p in layer.params.values())
    if op == "conv":
        return Geometry(op, layer.kernel_size, layer.stride, layer.padding, layer.out_channels,
                        sizes)
    if op == "pool":
        return Geometry(op, layer.kernel_size, layer.stride)
    if op == "fc":
        return Geometry(op, out_channels=layer.out_features, param_sizes=sizes)
    return Geometry(op, param_sizes=sizes)


def _plan_geometry(kind, sizes):
    """A row of ``vgg_plan``: conv sizes (in, out, kernel[, padding]), kernel an int or a pair,
    padding kernel // 2 unless given; fc sizes (in, out); pool is 2x2, stride 2."""
    if kind == "conv":
        c_in, c_out, kernel, *padding = sizes
        kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        padding = tuple(padding[0]) if padding else (kernel[0] // 2, kernel[1] // 2)
        return Geometry("conv", kernel, (1, 1), padding, c_out,
                        (c_out * c_in * kernel[0] * kernel[1], c_out))
    if kind == "pool":
        return Geometry("pool", (2, 2), (2, 2))
    if kind == "fc":
        return Geometry("fc", out_channels=sizes[1], param_sizes=(sizes[1] * sizes[0], sizes[1]))
    return Geometry(kind)


def _output_shape(geometry, shape):
    """One image's output shape (the layer's own ``output_shape`` gives the same; tested)."""
    if geometry.op in ("conv", "pool"):
        channels = geometry.out_channels if geometry.op == "conv" else shape[0]
        return (channels, *(output_size(n, k, s, p) for n, k, s, p in
                            zip(shape[1:], geometry.kernel, geometry.stride, geometry.padding)))
    if geometry.op == "fc":
        return (geometry.out_channels,)
    if geometry.op == "flatten":
        return (int(np.prod(shape)),)
    if geometry.op == "average":
        return (shape[0],)
    return tuple(shape)


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
    op: str = ""              # "conv", "pool", "fc", "relu", "lrn", "dropout", "flatten", ...
    bias_adds: int = 0        # one addition per output value of a layer with a bias
    elementwise: int = 0      # element-wise operations (see _LRN_OPS); 0 for conv and fc
    new: bool = True          # False: in evaluation the output is a view or the input itself
                              # (Flatten, dropout), no new memory
    cols: int = 0             # conv: values of its im2col matrix, C*kh*kw*Ho*Wo
    kept_bytes: int = 0       # what training's forward keeps for backward (see module doc)
    algorithm: str = ""       # conv: how Conv2d computes it here ("im2col", "winograd", ...)
    conv_geometry: tuple = ()  # conv: (kernel, padding), for the algorithm's memory footprint

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

    def ops(self, count="macs", bias=False, elementwise=False):
        """This layer's operations under a counting convention: ``count="macs"`` counts a
        multiply-accumulate as one, ``"flops"`` as two (a multiply and an add); ``bias`` adds
        one per bias addition, ``elementwise`` the element-wise work."""
        return ((2 if count == "flops" else 1) * self.macs + (self.bias_adds if bias else 0)
                + (self.elementwise if elementwise else 0))


COUNTS = ("macs", "flops")
UNITS = ("iec", "si")


def check_convention(count="macs", units="iec"):
    if count not in COUNTS:
        raise ValueError(f"count must be one of {COUNTS}; got {count!r}")
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}; got {units!r}")


def format_bytes(n, units="iec"):
    """1536 -> '1.5 KiB' (units="iec", powers of 1024) or '1.5 kB' ("si", powers of 1000)."""
    base, names = (1024, ("B", "KiB", "MiB", "GiB", "TiB")) if units == "iec" else (
        1000, ("B", "kB", "MB", "GB", "TB"))
    for unit in names[:-1]:
        if n < base:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= base
    return f"{n:.2f} {names[-1]}"


@dataclass(frozen=True)
class Summary:
    """The arithmetic of a network: ``rows`` (one LayerStats per layer) and the totals.
    ``str(summary)`` is the table (``summary.table(...)`` under other conventions);
    ``summary["conv3_2"]`` a row by name; ``summary.to_dict()`` everything as plain data."""
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
        """Every layer's output values added up, as if each were new memory (it is not: see
        ``distinct_activations``)."""
        return sum(row.activations for row in self.rows)

    @property
    def total_bytes(self):
        return sum(row.bytes for row in self.rows)

    def distinct_activations(self, inplace_relu=False):
        """Values of the arrays one image's forward pass (evaluation) allocates: Flatten's view
        and dropout's identity not counted again; ``inplace_relu=True`` also leaves out ReLU
        outputs, as a framework with an in-place ReLU (PyTorch's ``inplace=True``, Caffe)
        would. minivgg's ReLU writes a new array: False is what minivgg allocates."""
        return sum(row.activations for row in self.rows
                   if row.new and not (inplace_relu and row.op == "relu"))

    def total_ops(self, count="macs", bias=False, elementwise=False):
        check_convention(count)
        return sum(row.ops(count, bias, elementwise) for row in self.rows)

    @property
    def field_exceeds_input(self):
        """Names of the layers whose theoretical field is larger than the input on some axis."""
        return [row.name for row in self.rows
                if any(r > n for r, n in zip(row.field, self.input_shape[1:]))]

    def __getitem__(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(r.name for r in self.rows)}")

    def __str__(self):
        return self.table()

    def table(self, count="macs", bias=False, elementwise=False, units="iec"):
        """The table: one line per layer, the totals, and what the memory columns mean."""
        check_convention(count, units)
        ops = "MACs" if count == "macs" else "FLOPs"
        ops += "+bias" * bias + "+elementwise" * elementwise
        big = set(self.field_exceeds_input)

        def pair(values):
            return f"{values[0]:g}" if values[0] == values[1] else f"{values[0]:g}x{values[1]:g}"

        cells = [["layer", "output", "params", ops, "activations", self.dtype.name, "field",
                  "jump", "start", "algorithm"],
                 ["input", "x".join(map(str, self.input_shape))] + [""] * 8]
        for row in self.rows:
            memory = format_bytes(row.bytes, units) if row.new else (
                "view" if row.op == "flatten" else "its input")
            cells.append([row.name, "x".join(map(str, row.output_shape)), f"{row.params:,}",
                          f"{row.ops(count, bias, elementwise):,}", f"{row.activations:,}",
                          memory, pair(row.field) + ("*" if row.name in big else ""),
                          pair(row.jump), pair(row.start), row.algorithm])
        item = self.dtype.itemsize
        distinct, inplace = self.distinct_activations(), self.distinct_activations(True)
        cells.append(["total", "", f"{self.total_params:,}",
                      f"{self.total_ops(count, bias, elementwise):,}",
                      f"{self.total_activations:,}", format_bytes(distinct * item, units), "", "",
                      "", ""])
        widths = [max(len(line[i]) for line in cells) + (0 if i == 0 else 2)
                  for i in range(len(cells[0]))]
        lines = ["".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                 for line in cells]
        rule = "-" * sum(widths)
        lines = [lines[0], rule, *lines[1:-1], rule, lines[-1]]
        lines += [f"parameters: {format_bytes(self.total_params * item, units)} "
                  f"({self.dtype.name})", "activations, one image, evaluation:"]
        for label, values, note in (
                ("every layer's output added up", self.total_activations,
                 "views and identities counted again"),
                ("distinct arrays (minivgg)", distinct, "what the forward pass allocates"),
                ("with an in-place ReLU", inplace, "conv, pool and FC outputs only")):
            lines.append(f"  {label:<31}{values:>14,} values "
                         f"{format_bytes(values * item, units):>10}  ({note})")
        lines.append("training keeps more for backward and adds gradients and momentum: "
                     "--train-memory BATCH")
        if big:
            lines.append(f"* field larger than the {self.input_shape[1]}x{self.input_shape[2]} "
                         f"input: the unit sees zero padding beyond the image")
        return "\n".join(lines)

    def to_dict(self, count="macs", bias=False, elementwise=False):
        """Every column of every row, the totals and the conventions, as plain data (JSON)."""
        check_convention(count)
        rows = [dict(name=r.name, kind=r.kind, op=r.op, output_shape=list(r.output_shape),
                     params=r.params, param_bytes=r.params * self.dtype.itemsize, macs=r.macs,
                     bias_adds=r.bias_adds,
                     elementwise=r.elementwise, ops=r.ops(count, bias, elementwise),
                     activations=r.activations, bytes=r.bytes if r.new else 0,
                     new_memory=r.new, field=list(r.field), jump=list(r.jump),
                     start=list(r.start), field_exceeds_input=r.name in self.field_exceeds_input,
                     im2col_values=r.cols, train_kept_bytes=r.kept_bytes)
                for r in self.rows]
        return dict(
            input_shape=list(self.input_shape), dtype=self.dtype.name,
            conventions=dict(count=count, bias=bias, elementwise=elementwise,
                             activations="values in the layer's output for one image",
                             bytes="new memory of the output, 0 for a view or identity"),
            rows=rows,
            totals=dict(params=self.total_params,
                        param_bytes=self.total_params * self.dtype.itemsize,
                        macs=self.total_macs, ops=self.total_ops(count, bias, elementwise),
                        all_outputs=self.total_activations,
                        distinct_activations=self.distinct_activations(),
                        distinct_bytes=self.distinct_activations() * self.dtype.itemsize,
                        distinct_activations_inplace_relu=self.distinct_activations(True)))


def _window(geometry, grid):
    """(kernel, stride, padding), each an (h, w) pair: how the layer slides over the (h, w) grid
    of positions of its input (for a vector input, the map it was flattened from, or (1, 1))."""
    if geometry.op in ("conv", "pool"):
        return geometry.kernel, geometry.stride, geometry.padding
    if geometry.op in ("fc", "average"):
        return tuple(grid), (1, 1), (0, 0)
    return (1, 1), (1, 1), (0, 0)


def _next_grid(geometry, grid, output_shape):
    """The grid of positions after a layer: a map's (H, W); one position after a layer that
    saw the whole grid; unchanged by Flatten and per-position layers."""
    if len(output_shape) == 3:
        return output_shape[1:]
    return (1, 1) if geometry.op in ("fc", "average") else grid


def next_field(field, jump, start, kernel, stride, padding):
    """One step of the recurrences along one axis: (r, j, start) in, (r, j, start) out."""
    ### BEGIN SOLUTION
    return (field + (kernel - 1) * jump, jump * stride,
            start + ((kernel - 1) / 2 - padding) * jump)
    ### END SOLUTION


def _kind(geometry):
    if geometry.op in ("conv", "pool"):
        (kh, kw), (sh, _) = geometry.kernel, geometry.stride
        prefix = "conv" if geometry.op == "conv" else "maxpool"
        return f"{prefix}{kh}x{kw}" + ("" if sh == 1 else f"/{sh}")
    return geometry.op


def _elementwise(geometry, in_values, out_values):
    return {"relu": out_values, "pool": out_values * (np.prod(geometry.kernel) - 1),
            "lrn": out_values * _LRN_OPS, "average": in_values, "standardise": out_values,
            "softmax": 3 * out_values, "elementwise": out_values}.get(geometry.op, 0)


def _conv_footprint(algorithm, conv_geometry, in_shape, out_shape, batch, itemsize):
    """(kept bytes, {temporary: bytes}) of a conv layer's algorithm (minivgg.conv.footprint)."""
    from .conv.choice import footprint  # here: conv/ imports layers/, which import this module's
    return footprint(algorithm, (batch, *in_shape), (batch, *out_shape), *conv_geometry, itemsize)


def _kept_bytes(geometry, previous_op, in_values, out_values, conv, itemsize):
    """Bytes minivgg's training forward keeps for one image until backward: a convolution what
    its algorithm keeps (im2col: its columns; Winograd: the transformed input tiles), a ReLU its
    output, a max-pool its int64 arg-max indices, dropout its random draws, LRN its scale, a
    Linear its input unless a ReLU keeps that array already. ``conv``: _conv_footprint's
    arguments before the batch."""
    if geometry.op == "conv":
        return _conv_footprint(*conv, 1, itemsize)[0]
    if geometry.op == "pool":
        return out_values * np.dtype(np.int64).itemsize
    if geometry.op in ("relu", "softmax"):
        return out_values * itemsize
    if geometry.op in ("dropout", "lrn"):
        return in_values * itemsize
    if geometry.op == "fc" and previous_op != "relu":
        return in_values * itemsize
    return 0


def summarize(model, input_shape=None, *, dtype=None):
    """The Summary of a Sequential for one input of ``input_shape`` (C, H, W); default the
    model's own ``input_shape``. Nothing is run: shapes come from ``layer.output_shape``.
    ``model`` may also be a plan, [(name, kind, sizes)] as ``minivgg.vgg.vgg_plan`` makes:
    then nothing is allocated, ``input_shape`` is needed and ``dtype`` (default float32) sizes
    the bytes."""
    if isinstance(model, list):
        shape = _check_shape(input_shape)
        layers = [(name, _plan_geometry(kind, sizes), None) for name, kind, sizes in model]
        dtype = np.dtype(dtype or np.float32)
    else:
        shape = _input_shape(model, input_shape)
        layers = [(name, _layer_geometry(layer), layer) for name, layer in model.layers.items()]
        dtype = np.dtype(dtype or model.dtype or np.float32)
    input_shape = shape
    field, jump, start = (1, 1), (1, 1), (0.5, 0.5)
    rows, grid, previous = [], shape[1:], None
    for name, geometry, layer in layers:
        field, jump, start = zip(*(next_field(*axis) for axis in
                                   zip(field, jump, start, *_window(geometry, grid))))
        out_shape = (_output_shape(geometry, shape) if layer is None
                     else tuple(layer.output_shape(shape)))
        grid = _next_grid(geometry, grid, out_shape)
        in_values, activations = int(np.prod(shape)), int(np.prod(out_shape))
        weight = geometry.param_sizes[0] if geometry.param_sizes else 0
        macs = weight * (activations // geometry.out_channels if geometry.op == "conv" else 1)
        cols = (activations // geometry.out_channels * shape[0] * int(np.prod(geometry.kernel))
                if geometry.op == "conv" else 0)
        algorithm = _algorithm(geometry, layer, shape, out_shape)
        conv_geometry = ((tuple(geometry.kernel), tuple(geometry.padding))
                         if geometry.op == "conv" else ())
        rows.append(LayerStats(
            name=name, kind=_kind(geometry), output_shape=out_shape,
            params=int(sum(geometry.param_sizes)), macs=int(macs),
            activations=activations, bytes=activations * dtype.itemsize,
            field=field, jump=jump, start=start, op=geometry.op,
            bias_adds=activations if len(geometry.param_sizes) > 1 else 0,
            elementwise=int(_elementwise(geometry, in_values, activations)),
            new=geometry.op not in ("flatten", "dropout"),
            cols=int(cols), kept_bytes=int(_kept_bytes(
                geometry, previous, in_values, activations,
                (algorithm, conv_geometry, shape, out_shape), dtype.itemsize)),
            algorithm=algorithm, conv_geometry=conv_geometry))
        shape, previous = out_shape, geometry.op
    return Summary(rows=rows, input_shape=input_shape, dtype=dtype)


def _algorithm(geometry, layer, shape, out_shape):
    """How Conv2d computes a conv layer at this size (its own choice, or ``auto``'s rule for a
    plan); "" for other layers."""
    if geometry.op != "conv":
        return ""
    if layer is not None:
        return layer.algorithm_for(shape)
    from .conv.choice import choose  # here: conv/ imports layers/, which import this module's
    return choose(geometry.kernel, geometry.stride, geometry.padding, shape[0],
                  geometry.out_channels, out_shape[1:])


def _check_shape(shape):
    if (not isinstance(shape, (tuple, list)) or len(shape) != 3
            or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape)):
        raise ValueError(f"input_shape must be (C, H, W), three positive ints (the model has "
                         f"none of its own to default to); got {shape!r}")
    return tuple(int(n) for n in shape)


def _input_shape(model, input_shape):
    if not hasattr(model, "layers"):
        raise TypeError(f"model must be a minivgg Sequential; got {type(model).__name__}")
    return _check_shape(model.input_shape if input_shape is None else input_shape)


def dense_plan(plan, final_map):
    """The plan of ``minivgg.dense.to_dense``: Flatten and dropout left out, the first fc a
    convolution of the ``final_map`` (h, w) window, the next ones 1x1, then the average."""
    dense, channels, kernel = [], None, tuple(final_map)
    for name, kind, sizes in plan:
        if kind == "conv":
            channels = sizes[1]
        if kind in ("flatten", "dropout"):
            continue
        if kind == "fc":
            dense.append((name, "conv", (channels, sizes[1], kernel, (0, 0))))
            channels, kernel = sizes[1], (1, 1)
        else:
            dense.append((name, kind, sizes))
    return dense + [("average", "average", ())]


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
            kernel, stride, padding = _window(_layer_geometry(layer), None)
            stand_in = Conv2d(shape[0], out[0], kernel, stride, padding, dtype=np.float64)
            stand_in.params["weight"][...] = 1.0 / stand_in.params["weight"][0].size
        elif isinstance(layer, Linear):
            stand_in = Linear(layer.in_features, layer.out_features, dtype=np.float64)
            stand_in.params["weight"][...] = 1.0 / layer.in_features
        elif isinstance(layer, (Flatten, SpatialAverage)):
            stand_in = type(layer)()
        else:
            _layer_geometry(layer)                    # unknown layer types are a TypeError
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


@dataclass(frozen=True)
class TrainingMemory:
    """What a training step of minivgg holds, in bytes, for a batch (``training_memory``).

    ``rows``: per layer (name, params, grads, momentum, kept, scratch): the parameters, their
    gradients and SGD's momentum (each the parameters' size), what the forward pass keeps for
    backward (``LayerStats.kept_bytes`` times the batch; a convolution's im2col columns or
    Winograd tiles are most of it), and the convolution's temporaries (its algorithm's
    ``footprint``, minivgg/conv/: im2col's column gradient, and for a batch above one the
    stacked output and output gradient; Winograd's products). The temporaries live in
    workspaces shared by all convolutions, so only the largest of each counts: ``scratch_total``.
    ``transient``: the largest gradient pair alive at once, a layer's output gradient and
    the input gradient it computes. ``peak`` = the sum of all the totals."""
    batch: int
    rows: list
    scratch_total: int
    input_bytes: int
    transient: int

    def total(self, column):
        return sum(row[column] for row in self.rows)

    @property
    def peak(self):
        return (sum(self.total(c) for c in ("params", "grads", "momentum", "kept"))
                + self.scratch_total + self.input_bytes + self.transient)


def training_memory(summary, batch=1, momentum=True):
    """Predicted memory of one training step (forward, loss, backward, SGD with momentum) for a
    batch of ``batch`` images, from a Summary; see TrainingMemory. A prediction of minivgg's own
    implementation (each conv layer's algorithm), checked against a measured peak in the tests and in
    benchmarks/bench_model.py."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive int; got {batch!r}")
    item, rows, scratch = summary.dtype.itemsize, [], {}
    shape = summary.input_shape
    transient = 0
    for row in summary.rows:
        params = row.params * item
        in_values = int(np.prod(shape))
        transient = max(transient, (in_values + row.activations) * batch * item)
        temporaries = {}
        if row.op == "conv":
            _, temporaries = _conv_footprint(row.algorithm, row.conv_geometry, shape,
                                             row.output_shape, batch, item)
            for name, size in temporaries.items():
                scratch[name] = max(scratch.get(name, 0), size)
        rows.append(dict(name=row.name, params=params, grads=params,
                         momentum=params if momentum else 0, kept=row.kept_bytes * batch,
                         scratch=sum(temporaries.values())))
        shape = row.output_shape
    return TrainingMemory(batch=int(batch), rows=rows, scratch_total=sum(scratch.values()),
                          input_bytes=int(np.prod(summary.input_shape)) * batch * item,
                          transient=transient)


def measure_training_memory(config, batch, seed=0):
    """(model, bytes): the measured peak of NumPy array memory of one training step of
    ``build_vgg(**config)`` on a random batch of ``batch``, after one warm-up step (which
    compiles the kernels and fills the buffers): the arrays alive before the step, from a
    ``tracemalloc`` snapshot of NumPy's domain, plus the step's high-water mark. What
    ``training_memory`` predicts; the Python runtime itself is not in it. The convolutions'
    shared workspace is emptied first, so that its buffers are allocated, and seen, here."""
    import tracemalloc

    from .conv.choice import clear_scratch
    from .optim import SGD
    from .vgg import build_vgg
    numpy_domain = 389047                     # tracemalloc domain of NumPy's array data
    clear_scratch()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        model = build_vgg(**config, seed=seed)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, *model.input_shape), np.float32)
        labels = rng.integers(0, model.config["num_classes"], batch)
        opt = SGD(model, lr=1e-2, momentum=0.9, weight_decay=5e-4)
        model.loss(x, labels)
        opt.step()
        arrays = sum(t.size for t in tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.DomainFilter(True, numpy_domain)]).traces)
        everything = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        model.loss(x, labels)
        opt.step()
        return model, arrays + tracemalloc.get_traced_memory()[1] - everything
    finally:
        if started:
            tracemalloc.stop()


def effective_receptive_field(model, layer, images):
    """The effective receptive field (Luo et al., 2016) of ``layer``'s centre position: how much
    each input pixel moves it, an (H, W) map that sums to 1.

    y = the sum over channels of ``layer``'s output at its centre position
    (``LayerStats.centre_unit``); the map is the mean over ``images`` (N, C, H, W) of |dy/dx|,
    summed over the input channels, normalised. The theoretical field (the summary's ``field``,
    what Sec. 2.3 calls the "effective receptive field" of a stack) is where this can be non-zero;
    the effective one is where it is large. Runs copies of the model's layers up to ``layer``
    (its own caches and gradients untouched) in evaluation mode.
    """
    import copy
    names = list(model.layers)
    if layer not in names:
        raise KeyError(f"no layer named {layer!r}; layers: {', '.join(names)}")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"images must be (N, C, H, W) with N >= 1; got shape {images.shape}")
    layers = [copy.deepcopy(model[name]).eval() for name in names[:names.index(layer) + 1]]
    x = images
    for each in layers:
        x = each.forward(x)
    if x.ndim != 4:
        raise ValueError(f"{layer} has no spatial map (output shape {x.shape[1:]}); pick a "
                         f"convolution, ReLU or pool")
    grad = np.zeros_like(x)
    grad[:, :, (x.shape[2] - 1) // 2, (x.shape[3] - 1) // 2] = 1.0
    for each in reversed(layers):
        grad = each.backward(grad)
    field = np.abs(grad).sum(axis=1).mean(axis=0, dtype=np.float64)
    total = field.sum()
    if not total > 0:
        raise ValueError(f"the gradient of {layer}'s centre is zero for these images (dead ReLUs?)")
    return field / total


def field_spread(field):
    """(std along height, std along width) in pixels of a normalised (H, W) field map: the
    width of the effective field (Luo et al.: it grows like the square root of the depth)."""
    spreads = []
    for axis in (1, 0):
        marginal = field.sum(axis=axis)
        position = np.arange(marginal.size)
        mean = (marginal * position).sum()
        spreads.append(float(np.sqrt((marginal * (position - mean) ** 2).sum())))
    return tuple(spreads)
