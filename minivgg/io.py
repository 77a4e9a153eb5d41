"""Weights on disk, and the import boundary with torchvision's layout.

    save_model(model, "vgg16.npz");  model = load_model("vgg16.npz")
    load_torchvision_state_dict(model, torch_model.state_dict())    # vgg11/13/16/19 (no BN)
    posteriors(model, images, mean=TORCHVISION_MEAN_RGB)            # with their preprocessing
    state = to_torchvision_state_dict(model)

A saved model is one ``.npz``: every parameter under its minivgg name ("conv3_2.weight") and the
``build_vgg`` settings as JSON under "__config__", so loading rebuilds the same network and copies
the arrays in. Files are written to a temporary file in the same directory, then renamed
(``os.replace`` is atomic): a crash never leaves half a file under the real name.

Reading trusts nothing (``CheckedNpz``, shared with the trainer's checkpoints): members must be
stored uncompressed, so every byte an array declares is in the file (memory stays within the
file's size: no zip bomb); each .npy header is checked (plain real dtypes, the declared size equal
to the bytes present) before its data is read; the zip's CRC catches flipped bits; NaN, inf and
complex weights are refused; and the build config is checked against the arrays' shapes by
``vgg_plan``'s arithmetic *before* the network is built, so a small file claiming VGG-19 at 224
costs nothing. Every failure is one ``CorruptFileError`` ("corrupted model file: PATH: why").

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
import zipfile

import numpy as np

from .errors import CorruptFileError
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
from .vgg import build_vgg, vgg_plan

_CONFIG_KEY = "__config__"
# The preprocessing torchvision's ImageNet weights expect, on minivgg's 0-255 scale (RGB order):
# subtract the mean (the usual ``mean=``), divide by the std (``load_torchvision_state_dict``).
TORCHVISION_MEAN_RGB = (123.675, 116.28, 103.53)            # 255 x (0.485, 0.456, 0.406)
TORCHVISION_STD_RGB = (58.395, 57.12, 57.375)               # 255 x (0.229, 0.224, 0.225)
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


class CheckedNpz:
    """A minivgg .npz (checkpoint or saved model) opened without trusting it (module docstring).

        with CheckedNpz(path, "checkpoint") as npz:
            npz.shapes                  # {name: shape}, from the headers, before any data is read
            meta = npz.json("meta")     # a text entry, parsed
            weights = npz.array("param/fc8.weight")

    kind names the file in errors: CorruptFileError("corrupted <kind>: <path>: <why>").
    """

    def __init__(self, path, kind):
        self.path, self.kind = os.fspath(path), kind
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no {kind} at {self.path}")
        self._zip, self._members, self.shapes = None, {}, {}
        with self._reading("not a readable .npz"):
            self._zip = zipfile.ZipFile(self.path)
            for info in self._zip.infolist():
                self._check_member(info)

    def fail(self, why):
        """Raise the CorruptFileError every problem with this file becomes."""
        raise CorruptFileError(f"corrupted {self.kind}: {self.path}: {why}")

    class _Reading:
        def __init__(self, npz, doing):
            self.npz, self.doing = npz, doing

        def __enter__(self):
            return self

        def __exit__(self, kind, error, traceback):
            if error is None or isinstance(error, CorruptFileError):
                return False
            if not isinstance(error, Exception):        # KeyboardInterrupt and the like
                return False
            # Only the standard library's zip and NumPy's header parser run in here: whatever
            # they raise on a damaged file (BadZipFile, EOFError, struct.error, ValueError,
            # RecursionError...) is the file's fault.
            self.npz.fail(f"{self.doing} ({type(error).__name__}: {str(error)[:200]})")

    def _reading(self, doing):
        return self._Reading(self, doing)

    def _check_member(self, info):
        name = info.filename[:-4] if info.filename.endswith(".npy") else None
        if name is None or name in self._members:
            self.fail(f"entry {info.filename[:80]!r} is not a .npy array (or appears twice)")
        if info.compress_type != zipfile.ZIP_STORED:
            self.fail(f"entry {name!r} is compressed: minivgg writes (and reads) stored arrays "
                      f"only, so that every byte is in the file")
        with self._zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                self.fail(f"entry {name!r} has .npy format version {version}")
            read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.kind not in "biufU":
            self.fail(f"entry {name!r} has dtype {dtype}: only real numbers and text are allowed")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if offset + declared != info.file_size:
            self.fail(f"entry {name!r} declares shape {shape} of {dtype} ({declared} bytes) but "
                      f"holds {info.file_size - offset}")
        self._members[name], self.shapes[name] = info, tuple(shape)

    def array(self, name):
        """The array stored under ``name``; a floating one must be finite (NaN and inf are what
        a diverged run leaves, never weights to load)."""
        if name not in self._members:
            self.fail(f"it has no {name!r} entry")
        with self._reading(f"cannot read {name!r}"), self._zip.open(self._members[name]) as f:
            value = np.lib.format.read_array(f, allow_pickle=False)
        if value.dtype.kind == "f" and not _all_finite(value):
            self.fail(f"{name!r} holds NaN or inf")
        return value

    def json(self, name):
        """The JSON text stored under ``name`` (a 0-d str array), parsed."""
        value = self.array(name)
        if value.dtype.kind != "U" or value.shape != ():
            self.fail(f"{name!r} is not a JSON text")
        with self._reading(f"{name!r} is not valid JSON"):
            return json.loads(str(value))

    def close(self):
        if self._zip is not None:
            self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _all_finite(array, chunk=2**20):
    """np.isfinite(array).all(), a million values at a time (no array-sized temporary)."""
    flat = array.reshape(-1)
    return all(np.isfinite(flat[i:i + chunk]).all() for i in range(0, flat.size, chunk))


_PLAN_KEYS = ("config", "num_classes", "input_size", "in_channels", "width", "fc_width",
              "input_std")


def param_shapes(config):
    """{parameter name: shape} of ``build_vgg(**config)``, computed from ``vgg_plan`` without
    allocating anything (``config`` as ``model.config`` holds it)."""
    shapes = {}
    keys = (*_PLAN_KEYS, "head")                       # head: only in configs of a GAP head
    for name, kind, sizes in vgg_plan(**{key: config[key] for key in keys if key in config}):
        if kind == "conv":
            c_in, c_out, k = sizes
            shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (c_out, c_in, k, k), (c_out,)
        elif kind == "fc":
            d_in, d_out = sizes
            shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (d_out, d_in), (d_out,)
    return shapes


def model_from_arrays(config, params, fail, backend=None):
    """``build_vgg(**config)`` holding ``params`` ({name: array}), for a file's contents: the
    config is checked against the arrays' shapes by arithmetic before the network is built, so
    a small file naming a huge network is refused without allocating it. ``fail(why)`` raises
    (``CheckedNpz.fail``: a CorruptFileError naming the file)."""
    if not isinstance(config, dict) or not set(_PLAN_KEYS) <= set(config):
        fail(f"its build config is not a build_vgg config: {str(config)[:200]}")
    try:
        expected = param_shapes(config)
    except (TypeError, ValueError) as error:
        fail(f"its build config is invalid: {error}")
    got = {name: np.shape(value) for name, value in params.items()}
    wrong = [f"{name}: {got.get(name, 'missing')} in the file, {shape} for the config"
             for name, shape in expected.items() if got.get(name) != shape]
    wrong += [f"{name}: unexpected" for name in got if name not in expected]
    if wrong:
        fail(f"its arrays do not fit the configuration it names: {'; '.join(wrong[:3])}")
    try:
        model = build_vgg(**{**config, "init": None}, backend=backend)  # weights from the file
    except (TypeError, ValueError) as error:
        fail(f"its build config is invalid: {error}")
    model.config = config
    model.set_params(params)
    return model


def load_model(path, backend=None):
    """Rebuild the network saved at ``path`` and copy its weights in. Raises FileNotFoundError,
    or CorruptFileError (a ValueError: "corrupted model file: PATH: why") for a file that is
    not a minivgg model, is damaged, holds NaN/inf, or whose arrays do not fit its config."""
    with CheckedNpz(path, "model file") as npz:
        if _CONFIG_KEY not in npz.shapes:
            npz.fail(f"not a minivgg model file (no {_CONFIG_KEY} entry)")
        config = npz.json(_CONFIG_KEY)
        params = {name: npz.array(name) for name in npz.shapes if name != _CONFIG_KEY}
        return model_from_arrays(config, params, npz.fail, backend)


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


def load_torchvision_state_dict(model, state_dict, standardise=True):
    """Copy torchvision-layout weights ({"features.0.weight": ..., "classifier.6.bias": ...}) into
    ``model``, cast to the model's dtype, and give the model the preprocessing they expect.

    torchvision's weights were trained on RGB scaled to [0, 1], minus ImageNet's mean (0.485,
    0.456, 0.406), divided by its std (0.229, 0.224, 0.225). minivgg's nets take 0-255 RGB minus
    a mean RGB (``posteriors(model, images, mean=...)``, the trainer). The two agree when that
    mean is ``TORCHVISION_MEAN_RGB`` (255 x ImageNet's) and the network then divides each channel
    by ``TORCHVISION_STD_RGB`` (255 x ImageNet's std): so, with ``standardise=True``, a
    ``Standardise(TORCHVISION_STD_RGB)`` layer is put first in the model (and into
    ``model.config["input_std"]``, so ``save_model`` keeps it). A model that already starts with
    that layer is left as it is; one that starts with another Standardise is refused (its
    preprocessing is not these weights'). ``standardise=False`` leaves the model as built: then
    feed it torchvision's normalised input yourself.

    Every name, shape and value is checked before anything is copied (finite real numbers
    only); errors name the missing, unexpected or mismatched entries in both namings.
    """
    first = next(iter(model.layers.values()))
    if standardise and isinstance(first, Standardise) and first.std != TORCHVISION_STD_RGB:
        raise ValueError(f"the model already divides its input by std={first.std}; torchvision's "
                         f"weights expect {TORCHVISION_STD_RGB} (build it without input_std)")
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
        if value.dtype.kind not in "biuf" or (value.dtype.kind == "f" and not _all_finite(value)):
            raise ValueError(f"{tv} ({ours}) must hold finite real numbers; got dtype "
                             f"{value.dtype}{' with NaN or inf' if value.dtype.kind == 'f' else ''}")
        if value.shape != params[ours].shape:
            raise ValueError(f"{tv} has shape {tuple(value.shape)} in the state dict but {ours} "
                             f"has shape {params[ours].shape} in the model")
        arrays[ours] = value.astype(params[ours].dtype, copy=False)
    model.set_params(arrays)
    if standardise and not isinstance(first, Standardise):
        model.layers = {"standardise": Standardise(TORCHVISION_STD_RGB), **model.layers}
        if isinstance(getattr(model, "config", None), dict):
            model.config["input_std"] = list(TORCHVISION_STD_RGB)


def to_torchvision_state_dict(model):
    """The model's weights under torchvision's names (copies, in the model's dtype)."""
    params = model.params
    return {tv: params[ours].copy() for ours, tv in torchvision_names(model).items()}
