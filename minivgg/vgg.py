"""The VGG family: one builder turns a row of Table 1 (minivgg/configs.py) into a network.

    model = build_vgg("D")                                   # VGG-16 as in the paper, 138M params
    small = build_vgg("A", num_classes=10, input_size=32, width=1/8, fc_width=128)

Layer names follow the paper and the literature: conv<stage>_<index> (conv3_2 is the second
convolution of the third stage), relu<stage>_<index>, norm1 (A-LRN), pool<stage>, then fc6, fc7,
fc8 with relu6/drop6 and relu7/drop7 between them.
"""

import math
import numbers

import numpy as np

from .configs import config_name, parse_config
from .layers import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    SpatialAverage,
    Standardise,
)
from .layers.base import check_count, check_float_dtype, check_real
from .model import Sequential
from .recipe import RECIPE

INIT_SCHEMES = ("paper", "glorot", "he", None)


class Undrawn(np.random.Generator):
    """A generator whose normal draws are zeros. A layer built with it gets all-zero weights
    without drawing them: for networks whose weights are about to be overwritten (``load_model``,
    ``to_dense``) or never used (the arithmetic of a full-size network). Drawing VGG-16's 138M
    normals takes seconds (about 5 s on 2 cores); zeros take a tenth of that."""

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return np.zeros(size, dtype)


def init_std(scheme, fan_in, fan_out, std=0.01):
    """The standard deviation of the zero-mean normal weights of one layer (biases are zero).

    "paper":  N(0, std^2). Sec. 3.1 says "zero mean and 10^-2 variance", which is std 0.1 read
              literally; ``std=0.01`` (the default) is the Caffe-era convention (AlexNet's and
              Caffe's reference nets used std 0.01) and is a reading, not the paper's words: see
              the README's ambiguities. Either trains A; the paper then starts deeper nets from
              a trained A: ``init_from_shallower``.
    "glorot": variance 2 / (fan_in + fan_out) (Glorot & Bengio 2010, as a normal rather than their
              uniform of the same variance), which the authors later found trains D and E directly.
    "he":     variance 2 / fan_in (He et al. 2015), made for ReLU networks; the recipe's default
              (minivgg.recipe).
    None:     no initialisation: weights are zeros and nothing is drawn (``Undrawn``), for a
              network whose weights will be loaded, or whose arithmetic alone is wanted.
    """
    if scheme is None:
        return 0.0
    if scheme == "paper":
        if isinstance(std, bool) or not isinstance(std, numbers.Real) or not 0 < std < math.inf:
            raise ValueError(f"std (init=\"paper\"'s weight std) must be a positive finite "
                             f"number; got {std!r}")
        return std
    if scheme == "glorot":
        return np.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "he":
        return np.sqrt(2.0 / fan_in)
    raise ValueError(f"init must be one of {INIT_SCHEMES}; got {scheme!r}")


class VGG(Sequential):
    """A Sequential that remembers how it was built (``self.config``), so it can be saved, rebuilt,
    summarised and converted to its fully-convolutional form."""

    def __init__(self, layers, config):
        super().__init__(layers, input_shape=(config["in_channels"], config["input_size"],
                                              config["input_size"]))
        self.config = config


def _sizes(where, num_classes, input_size, in_channels, fc_width, width):
    """The size arguments of ``vgg_plan``, checked, as Python ints and a float."""
    sizes = {name: check_count(where, value, name) for name, value in (
        ("num_classes", num_classes), ("input_size", input_size), ("in_channels", in_channels),
        ("fc_width", fc_width))}
    sizes["width"] = check_real(where, width, "width", open_low=True)
    return sizes


MAX_PARAM_BYTES = 16 * 2**30   # build_vgg refuses a network whose weights alone take more


def _check_param_bytes(plan, dtype):
    """Refuse, before allocating, a network whose weights would not fit in memory (``--width
    1e6``): counted from the plan, as ``summary`` does."""
    count = sum(math.prod(sizes[:2]) * (sizes[2] ** 2 if kind == "conv" else 1) + sizes[1]
                for _, kind, sizes in plan if kind in ("conv", "fc"))
    if count * dtype.itemsize > MAX_PARAM_BYTES:
        raise ValueError(f"the network would have {count:,} parameters "
                         f"({count * dtype.itemsize / 2**30:.3g} GiB), over the "
                         f"{MAX_PARAM_BYTES / 2**30:g} GiB limit (minivgg.vgg.MAX_PARAM_BYTES): "
                         f"check width, fc_width, num_classes and input_size")


def _plain(std):
    """Standardise's std (a float or a per-channel tuple) as JSON keeps it."""
    return list(std) if isinstance(std, tuple) else std


def vgg_plan(config="D", *, num_classes=1000, input_size=224, in_channels=3, width=1.0,
             fc_width=4096, input_std=None, head="fc"):
    """The network as data, before any array exists: [(name, kind, sizes)], front to back.

    kind is "standardise", "conv" (sizes: in channels, out channels, kernel), "relu", "lrn",
    "pool" (2x2, stride 2), "flatten", "fc" (sizes: in features, out features), "dropout" or
    "gap" (global average pool: ``head="gap"`` ends conv layers, gap, fc8 instead of fc6-fc8);
    other kinds have no sizes. ``build_vgg`` makes a layer of each row; ``minivgg.arithmetic``
    counts the rows without allocating a weight (``minivgg summary D --width 1000``).
    Arguments as ``build_vgg``'s; the same ValueErrors.
    """
    sizes = _sizes("vgg_plan", num_classes, input_size, in_channels, fc_width, width)
    return _plan(config, sizes, input_std, head)


def _plan(config, sizes, input_std, head):
    """``vgg_plan`` of ``sizes`` already checked by ``_sizes`` (``build_vgg`` checks them once)."""
    specs = parse_config(config)
    if head not in ("fc", "gap"):
        raise ValueError(f"head must be 'fc' or 'gap'; got {head!r}")
    num_classes, input_size, in_channels, fc_width, width = sizes.values()
    plan, stage, index, channels, size, sizes = [], 1, 0, in_channels, input_size, [input_size]
    if input_std is not None:
        plan.append(("standardise", "standardise", ()))
    for spec in specs:
        if spec[0] == "conv":
            index += 1
            out = max(1, round(spec[1] * width))
            plan += [(f"conv{stage}_{index}", "conv", (channels, out, spec[2])),
                     (f"relu{stage}_{index}", "relu", ())]
            channels = out
        elif spec[0] == "lrn":
            plan.append((f"norm{stage}", "lrn", ()))
        else:
            if size < 2 or size % 2:
                path = " -> ".join(map(str, sizes))
                raise ValueError(
                    f"input_size {input_size} does not fit configuration "
                    f"{config if isinstance(config, str) else 'given'}: its 2x2 max-pools halve the "
                    f"size ({path}), and pool{stage} would get {size}, which is "
                    f"{'too small' if size < 2 else 'odd'}. Use a multiple of "
                    f"{2 ** sum(s[0] == 'pool' for s in specs)} (224 in the paper)")
            plan.append((f"pool{stage}", "pool", ()))
            size //= 2
            sizes.append(size)
            stage, index = stage + 1, 0
    if head == "gap":
        return plan + [("gap", "gap", ()), ("fc8", "fc", (channels, num_classes))]
    return plan + [("flatten", "flatten", ()), ("fc6", "fc", (channels * size * size, fc_width)),
                   ("relu6", "relu", ()), ("drop6", "dropout", ()),
                   ("fc7", "fc", (fc_width, fc_width)), ("relu7", "relu", ()),
                   ("drop7", "dropout", ()), ("fc8", "fc", (fc_width, num_classes))]


def build_vgg(config="D", *, num_classes=1000, input_size=224, in_channels=3, width=1.0,
              fc_width=4096, dropout=RECIPE.dropout, init=RECIPE.init, std=0.01,
              classifier_std=RECIPE.classifier_std, lrn_convention="krizhevsky", input_std=None,
              dtype=np.float32, seed=0, backend=None, head="fc"):
    """Build a VGG from a configuration name ("A", "A-LRN", "B", "C", "D", "E", "vgg16", ...) or a
    row in the same notation.

    width scales every convolution's channels (64 -> round(64 * width), at least 1); fc_width is
    the size of fc6 and fc7 (4096 in the paper); dropout the drop probability of drop6 and drop7.
    input_size must survive the max-pools exactly: each 2x2/2 pool halves it, so 224 -> 7 after
    five; a size that is too small or not divisible is a ValueError that says where it fails.
    ``init`` is the scheme of the convolutions, fc6 and fc7 (``init_std``; the default is the
    recipe's, minivgg.recipe.RECIPE); ``classifier_std`` the std of fc8's weights (default 0.01:
    near-zero first logits, see minivgg.recipe), or None for fc8 drawn like the other layers.
    ``input_std`` (the training pixels' std, e.g. ``minivgg.train.pixel_std``) puts a
    ``Standardise`` layer first, which divides the mean-subtracted input by it (see its docstring
    for why the small nets need it). ``seed`` makes the weights and the dropout masks
    reproducible. ``init=None`` builds fast with
    all-zero weights (nothing drawn): for ``build_vgg("E", init=None).summary()`` or loading.
    ``head="gap"``: the FC-free head the paper's remark invites (the FC layers can be removed
    with little loss): conv layers, a global average pool, one linear layer fc8 (channels ->
    classes); fc_width and dropout then play no part.
    """
    sizes = _sizes("build_vgg", num_classes, input_size, in_channels, fc_width, width)
    num_classes, input_size, in_channels, fc_width, width = sizes.values()
    plan = _plan(config, sizes, input_std, head)
    dropout = check_real("build_vgg", dropout, "dropout", 0, 1)
    dtype = check_float_dtype(dtype, "dtype")
    init_std(init, 1, 1, std)                             # validates the scheme name and std
    std = float(std) if isinstance(std, numbers.Real) and not isinstance(std, bool) else std
    if classifier_std is not None:
        classifier_std = check_real("build_vgg", classifier_std, "classifier_std", open_low=True)
    if isinstance(seed, bool):
        raise ValueError(f"seed must be an int >= 0 (or a SeedSequence); got {seed!r}")
    seed = int(seed) if isinstance(seed, numbers.Integral) else seed
    _check_param_bytes(plan, dtype)
    rng = Undrawn(np.random.PCG64(seed)) if init is None else np.random.default_rng(seed)

    def conv(c_in, c_out, k):
        std_ = init_std(init, c_in * k * k, c_out * k * k, std)
        return Conv2d(c_in, c_out, k, 1, k // 2, weight_std=std_, dtype=dtype, backend=backend,
                      rng=rng)

    def fc(d_in, d_out, weight_std=None):
        if weight_std is None or init is None:
            weight_std = init_std(init, d_in, d_out, std)
        return Linear(d_in, d_out, weight_std=weight_std, dtype=dtype, rng=rng)

    make = {"standardise": lambda: Standardise(input_std), "conv": conv,
            "relu": lambda: ReLU(backend=backend),
            "lrn": lambda: LocalResponseNorm(convention=lrn_convention, backend=backend),
            "pool": lambda: MaxPool2d(2, 2, backend=backend), "flatten": Flatten, "fc": fc,
            "dropout": lambda: Dropout(dropout, rng=rng.spawn(1)[0], backend=backend),
            "gap": SpatialAverage}
    layers = [(name, fc(*sizes, classifier_std) if name == "fc8" else make[kind](*sizes))
              for name, kind, sizes in plan]
    settings = dict(config=config_name(config) if isinstance(config, str) else list(config),
                    num_classes=num_classes, input_size=input_size, in_channels=in_channels,
                    width=width, fc_width=fc_width, dropout=dropout, init=init, std=std,
                    classifier_std=classifier_std, lrn_convention=lrn_convention,
                    input_std=_plain(layers[0][1].std) if input_std is not None else None,
                    dtype=dtype.name, seed=seed,
                    **({"head": head} if head != "fc" else {}))   # old configs: fc
    return VGG(layers, settings)


def conv_layer_names(model):
    """Names of the convolution layers, front to back."""
    return [name for name, layer in model.layers.items() if isinstance(layer, Conv2d)]


def init_from_shallower(model, source, num_conv=4, fc_layers=("fc6", "fc7", "fc8")):
    """The paper's warm start (Sec. 3.1): copy the first ``num_conv`` convolution layers and the
    three FC layers of a trained shallower net (configuration A) into ``model``; the rest stay
    random. A's first four convolutions are conv1_1, conv2_1, conv3_1 and conv3_2, and every
    deeper configuration has layers of those names and shapes, so layers are matched by name.
    Raises ValueError naming a layer the two nets do not share or whose shapes differ.
    """
    names = conv_layer_names(source)[:num_conv] + list(fc_layers)
    for name in names:
        if name not in model.layers:
            raise ValueError(f"init_from_shallower: {name} of the source has no layer of that "
                             f"name in the target")
        for key, value in source[name].params.items():
            target = model[name].params[key]
            if target.shape != value.shape:
                raise ValueError(f"init_from_shallower: {name}.{key} has shape {value.shape} in "
                                 f"the source but {target.shape} in the target")
    for name in names:
        for key, value in source[name].params.items():
            model[name].params[key][...] = value
    return names
