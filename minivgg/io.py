"""Weights on disk, and the import boundary with torchvision's layout.

    save_model(model, "vgg16.npz");  model = load_model("vgg16.npz")
    load_torchvision_state_dict(model, torch_model.state_dict())    # vgg11/13/16/19 (no BN)
    state = to_torchvision_state_dict(model)

A saved model is one ``.npz``: every parameter under its minivgg name ("conv3_2.weight") and the
``build_vgg`` settings as JSON under "__config__", so loading rebuilds the same network and copies
the arrays in. Files are written to a temporary file in the same directory, then renamed
(``os.replace`` is atomic): a crash never leaves half a file under the real name.

torchvision names layers by position: ``features.N`` counts the layers before the flatten
(conv, ReLU, max-pool, ... in order) and ``classifier.N`` those after it (fc6, relu6, drop6, fc7,
relu7, drop7, fc8). minivgg's layers come in the same order, so the mapping is derived from the
model's own structure (any configuration, C's 1x1 convolutions included), not written per config.
Layouts agree: conv weights (out, in, kh, kw), Linear weights (out, in) with fc6's input flattened
channel-major (C*7*7, C order). torchvision's AdaptiveAvgPool2d(7) before the classifier is the
identity at 224x224, the only input size its fc6 fits.
"""

import json
import os
import tempfile

import numpy as np

from .layers import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Standardise,
)
from .vgg import build_vgg

_CONFIG_KEY = "__config__"
# The layer types torchvision's VGG is made of (LRN: a torch.nn.LocalResponseNorm in the same
# place, for A-LRN written in torchvision's style).
_TORCHVISION_KINDS = (Conv2d, ReLU, MaxPool2d, LocalResponseNorm, Linear, Dropout)


def save_model(model, path):
    """Write ``model`` (a VGG from build_vgg: it needs ``model.config``) to ``path`` (.npz)."""
    if not isinstance(getattr(model, "config", None), dict):
        raise TypeError(f"save_model needs a VGG built by build_vgg (it saves model.config to "
                        f"rebuild it); got {type(model).__name__}")
    _check_rebuildable(model)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(suffix=".npz", prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **{_CONFIG_KEY: np.array(json.dumps(model.config))}, **model.params)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _check_rebuildable(model):
    """load_model rebuilds from model.config alone: refuse a model whose layers differ from what
    build_vgg(**model.config) makes (e.g. one with an extra input layer), which it would lose.
    The layer names and types do not depend on the widths, so a 1-channel build is compared."""
    skeleton = build_vgg(**{**model.config, "width": 1e-9, "fc_width": 1, "num_classes": 1,
                            "init": None})
    ours = [(name, type(layer).__name__) for name, layer in model.layers.items()]
    theirs = [(name, type(layer).__name__) for name, layer in skeleton.layers.items()]
    if ours != theirs:
        i = next((i for i, pair in enumerate(zip(ours, theirs)) if pair[0] != pair[1]),
                 min(len(ours), len(theirs)))
        here, built = (pairs[i] if i < len(pairs) else "nothing" for pairs in (ours, theirs))
        raise ValueError(f"save_model: layer {i} is {here} in the model but {built} in what "
                         f"build_vgg(**model.config) makes, so load_model could not rebuild it; "
                         f"save model.params yourself")


def load_model(path, backend=None):
    """Rebuild the network saved at ``path`` and copy its weights in. Raises ValueError for a
    file that is not a minivgg model or whose arrays do not fit the configuration it names."""
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as file:
        if _CONFIG_KEY not in file.files:
            raise ValueError(f"{path} is not a minivgg model file (no {_CONFIG_KEY} entry)")
        config = json.loads(str(file[_CONFIG_KEY]))
        arrays = {name: file[name] for name in file.files if name != _CONFIG_KEY}
    model = build_vgg(**{**config, "init": None}, backend=backend)   # weights come from the file
    model.config = config
    try:
        model.set_params(arrays)
    except ValueError as error:
        raise ValueError(f"{path} does not fit the configuration it names: {error}") from None
    return model


def torchvision_names(model):
    """{minivgg parameter name: torchvision state-dict name}, derived from the layer order."""
    # Standardise is preprocessing torchvision does outside the network: it has no index there
    names = [name for name, layer in model.layers.items() if not isinstance(layer, Standardise)]
    split = [i for i, name in enumerate(names) if isinstance(model[name], Flatten)]
    if len(split) != 1:
        raise ValueError("torchvision's layout needs exactly one Flatten between features and "
                         "classifier")
    mapping = {}
    for prefix, part in (("features", names[:split[0]]), ("classifier", names[split[0] + 1:])):
        for index, name in enumerate(part):
            if not isinstance(model[name], _TORCHVISION_KINDS):
                raise ValueError(f"layer {name!r} ({type(model[name]).__name__}) has no "
                                 f"counterpart in torchvision's VGG, so its indices would not "
                                 f"line up")
            for key in model[name].params:
                mapping[f"{name}.{key}"] = f"{prefix}.{index}.{key}"
    return mapping


def _to_numpy(name, value):
    """A NumPy array from an array or a tensor-like (``.detach().cpu().numpy()`` or ``.numpy()``),
    without importing torch."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "numpy"):
        value = value.numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"state_dict[{name!r}] must be an array or a tensor; got "
                        f"{type(value).__name__}")
    return value


def load_torchvision_state_dict(model, state_dict):
    """Copy torchvision-layout weights ({"features.0.weight": ..., "classifier.6.bias": ...}) into
    ``model``, cast to the model's dtype. Every name and shape is checked before anything is
    copied; errors name the missing, unexpected or mismatched entries in both namings."""
    mapping = torchvision_names(model)
    missing = [f"{tv} ({ours})" for ours, tv in mapping.items() if tv not in state_dict]
    expected = set(mapping.values())
    unexpected = sorted(name for name in state_dict if name not in expected)
    if missing or unexpected:
        raise ValueError(f"state_dict does not match the model: missing {missing or 'none'}; "
                         f"unexpected {unexpected or 'none'}")
    params = model.params
    arrays = {}
    for ours, tv in mapping.items():
        value = _to_numpy(tv, state_dict[tv])
        if value.shape != params[ours].shape:
            raise ValueError(f"{tv} has shape {tuple(value.shape)} in the state dict but {ours} "
                             f"has shape {params[ours].shape} in the model")
        arrays[ours] = value.astype(params[ours].dtype, copy=False)
    model.set_params(arrays)


def to_torchvision_state_dict(model):
    """The model's weights under torchvision's names (copies, in the model's dtype)."""
    params = model.params
    return {tv: params[ours].copy() for ours, tv in torchvision_names(model).items()}
