"""The one training recipe: the paper's (Sec. 3.1) at small scale, with the project's documented
deviations, as a single frozen dataclass that everything else reads its defaults from.

    from minivgg.recipe import RECIPE, Recipe
    RECIPE.lr                                  # 0.01, the paper's
    fast = RECIPE.replace(epochs=4, width=0.125)
    model = fast.build(train_set)              # build_vgg with the recipe's init, widths, ...
    Trainer(model, train_set, val_set, recipe=fast).fit(fast.epochs)

``minivgg train`` makes its options from these fields (``--help`` prints their values),
``build_vgg`` and ``Trainer`` take their defaults from ``RECIPE``, the notebooks and benchmarks
start from it, and a checkpoint stores the recipe it was trained with (``meta["recipe"]``).

Where the recipe departs from the paper, and why (docs/TRAINING.md has the measurements):
- ``init="he"`` for the convolutions, fc6 and fc7 (He et al. 2015, later than the paper): a
  variance-scaled init, so the signal does not vanish through the depth as it does from
  N(0, 0.01^2) (docs/TRAINING.md); the paper trained A from N(0, 10^-2) and warm-started the
  deeper nets from it (``minivgg.vgg.init_from_shallower``, ``minivgg train --warm-start``),
  which the deepest nets still need at small sizes (docs/TRAINING.md, the chance plateau);
- ``classifier_std=0.01``: fc8 alone starts from N(0, 0.01^2), the Caffe-era small init, so the
  first logits are near zero (loss ln K). With He's std for fc8 the first logits are about 9
  times larger (std 1.5 against 0.17 for the CLI's net) and the first steps can drive the net
  to the class prior, where it stays (collapse);
- ``standardise``: the mean-subtracted pixels are divided by their std (``Standardise``), since
  a variance-scaled init assumes inputs of spread ~1;
- ``warmup_epochs`` (off by default): a linear ramp of the learning rate over the first steps
  (Goyal et al. 2017), available for diagnosis; once fc8 starts small the first steps no longer
  collapse, and on the digits the ramp only delayed learning (docs/TRAINING.md);
- small sizes: ``width`` scales the conv channels, ``fc_width`` is fc6/fc7's size, crops of
  ``input_size`` pixels from images whose shorter side is ``scale`` (the paper: 224 from 256,
  "auto" keeps that ratio), batch 32 instead of 256, lr / 10 after one epoch without progress,
  counted only once the net has left chance (the paper's rule cannot tell a net still on the
  chance plateau from one that stopped improving; ``optim.ReduceOnPlateau(start_above=)``).
"""

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

SCHEDULES = ("plateau", "step")
MAX_SCALE_RATIO = 8     # the largest S (training) and Q (minivgg.evaluate) as a multiple of the crop
INITS = ("he", "glorot", "paper")


def _option(default, text):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Recipe:
    """Every hyper-parameter of a training run that is not about the data or the run folder."""

    # -- the model --
    config: str = _option("A", "VGG configuration")
    width: float = _option(0.25, "multiplier of every conv layer's channels (1 = the paper's "
                                 "64..512)")
    fc_width: int = _option(256, "channels of fc6 and fc7 (the paper: 4096)")
    input_size: int = _option(32, "network input side = crop size, pixels (the paper: 224)")
    dropout: float = _option(0.5, "drop probability of fc6, fc7 (the paper: 0.5)")
    init: str = _option("he", "weight initialisation of the convolutions, fc6 and fc7 "
                              "(minivgg.vgg.init_std)")
    classifier_std: float = _option(0.01, "std of fc8's initial weights, N(0, std^2): small, "
                                          "so the first logits are near 0")
    standardise: bool = _option(True, "divide the mean-subtracted pixels by the training "
                                      "pixels' std (minivgg.layers.Standardise)")
    # -- optimisation --
    epochs: int = _option(8, "epochs in total")
    batch_size: int = _option(32, "images per SGD step (the paper: 256)")
    lr: float = _option(0.01, "initial learning rate (the paper: 0.01)")
    momentum: float = _option(0.9, "SGD momentum (the paper: 0.9)")
    weight_decay: float = _option(5e-4, "L2 multiplier on weights (the paper: 5e-4)")
    warmup_epochs: float = _option(0.0, "epochs over which lr ramps up linearly from 0 (0: "
                                        "off)")
    schedule: str = _option("plateau", "plateau: lr / 10 when val accuracy stalls, once above "
                                       "chance (the paper); "
                                       "step: at the milestones")
    patience: int = _option(1, "plateau: epochs without improvement before lr / 10")
    max_reductions: int = _option(3, "plateau: most lr cuts (the paper: 3)")
    milestones: tuple = _option((8, 11), "step: epochs after which lr / 10")
    # -- augmentation --
    scale: object = _option("auto", "training scale S: auto (ceil(input * 9 / 8), the paper's "
                                    "224-from-256 ratio), none (keep the images' size), S, or "
                                    "Smin,Smax (scale jittering)")
    flip: bool = _option(True, "random horizontal flips")
    colour_shift: float = _option(0.1, "std of the PCA colour shift's alpha (AlexNet's 0.1; "
                                       "0 = off)")

    def __post_init__(self):
        from .configs import config_name
        try:
            object.__setattr__(self, "config", config_name(self.config))
        except (ValueError, TypeError) as error:
            raise ValueError(f"config: {error}") from None
        for name in ("fc_width", "input_size", "epochs", "batch_size", "patience"):
            _int(self, name, low=1)
        _int(self, "max_reductions", low=0)
        for name, low, high, open_low in (("width", 0, math.inf, True), ("lr", 0, math.inf, True),
                                          ("classifier_std", 0, math.inf, True),
                                          ("dropout", 0, 1, False), ("momentum", 0, 1, False),
                                          ("weight_decay", 0, math.inf, False),
                                          ("warmup_epochs", 0, math.inf, False),
                                          ("colour_shift", 0, math.inf, False)):
            _real(self, name, low, high, open_low)
        for name in ("standardise", "flip"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        for name, allowed in (("init", INITS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        milestones = tuple(self.milestones)
        if not all(isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 1
                   for m in milestones):
            raise ValueError(f"milestones must be positive ints (epochs); got {self.milestones!r}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in milestones))
        object.__setattr__(self, "scale", _check_scale(self.scale))
        smallest = self.train_scale()
        smallest = smallest if isinstance(smallest, int) or smallest is None else smallest[0]
        if smallest is not None and smallest < self.input_size:
            raise ValueError(f"scale: S = {smallest} is smaller than input_size "
                             f"{self.input_size}; the crop must fit in the rescaled image")
        largest = self.train_scale()
        largest = largest if isinstance(largest, int) else (largest or (0, 0))[-1]
        if largest > MAX_SCALE_RATIO * self.input_size:     # a batch that size would not fit
            raise ValueError(f"scale: S = {largest} is more than {MAX_SCALE_RATIO} times "
                             f"input_size {self.input_size} (the paper's largest S is 512 for "
                             f"224): the rescaled images would not fit in memory")

    # -- what the recipe makes --

    def replace(self, **changes):
        """A copy with some fields changed (validated like a new Recipe)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"Recipe has no field {sorted(unknown)[0]!r}")
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """JSON-able: tuples become lists."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data):
        """The inverse of ``to_dict``; fields a newer recipe added keep their defaults."""
        if not isinstance(data, dict):
            raise ValueError(f"recipe must be a dict; got {type(data).__name__}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def train_scale(self):
        """The training scale S the augmentation uses: None, an int or (Smin, Smax)."""
        if self.scale == "auto":
            return math.ceil(self.input_size * 9 / 8)
        return self.scale

    def build(self, train_set, *, num_classes=None, seed=0, **overrides):
        """The recipe's VGG for ``train_set``: its number of classes, its pixel std when
        ``standardise``; ``overrides`` go to ``build_vgg`` (e.g. ``dtype``, ``backend``, or
        ``config``: another configuration name or layer list than the recipe's)."""
        from .train import pixel_std
        from .vgg import build_vgg
        kwargs = dict(num_classes=len(train_set.classes) if num_classes is None else num_classes,
                      input_size=self.input_size, width=self.width, fc_width=self.fc_width,
                      dropout=self.dropout, init=self.init, classifier_std=self.classifier_std,
                      input_std=pixel_std(train_set) if self.standardise else None, seed=seed)
        config = overrides.pop("config", self.config)
        return build_vgg(config, **{**kwargs, **overrides})

    def optimizer(self, model):
        from .optim import SGD
        return SGD(model, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def lr_schedule(self, optimizer, start_above=None):
        """The recipe's schedule; ``start_above``: the plateau rule counts only once the
        validation accuracy has exceeded it (chance) twice in a row (``ReduceOnPlateau``)."""
        from .optim import ReduceOnPlateau, StepSchedule
        if self.schedule == "plateau":
            return ReduceOnPlateau(optimizer, patience=self.patience,
                                   max_reductions=self.max_reductions, start_above=start_above)
        return StepSchedule(optimizer, self.milestones)


def _int(recipe, name, low):
    value = getattr(recipe, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    object.__setattr__(recipe, name, int(value))


def _real(recipe, name, low, high, open_low):
    value = getattr(recipe, name)
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
          and (value > low if open_low else value >= low) and value < high)
    if not ok:
        bounds = f"{'(' if open_low else '['}{low}, {high})"
        raise ValueError(f"{name} must be a finite number in {bounds}; got {value!r}")
    object.__setattr__(recipe, name, float(value))


def _check_scale(scale):
    """'auto', None, S or (Smin, Smax) with 1 <= Smin <= Smax."""
    if scale is None or scale == "auto":
        return scale
    bounds = (scale, scale) if isinstance(scale, numbers.Integral) else tuple(scale)
    if (len(bounds) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                    for s in bounds) or not 1 <= bounds[0] <= bounds[1]):
        raise ValueError(f"scale must be 'auto', None, an int S or a pair Smin <= Smax; "
                         f"got {scale!r}")
    return int(scale) if isinstance(scale, numbers.Integral) else tuple(int(s) for s in bounds)


RECIPE = Recipe()
