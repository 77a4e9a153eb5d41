"""The checks to run before a long training run, on one batch (CS231n's "sanity checks" as code).

    report = minivgg.diagnose(model, (x, labels))     # x: (N, C, H, W), labels: (N,) ints
    print(report)                                      # one line per check, problems marked
    report.problems                                    # [] when nothing looks wrong

1. Initial loss against ln(C): a fresh network's soft-max is nearly uniform over C classes, so its
   cross-entropy starts near ln(C) (2.30 for 10 classes). Far above: weights or inputs too large
   (un-normalised pixels, a wrong init); far below: the net already "knows" something (a leak).
2. One-batch overfit: a copy of the model, trained on this batch alone (no dropout, no weight
   decay), must fit it: 100% training accuracy within ``steps``. If it cannot, something in the
   forward or backward pass, or the learning rate, is broken.
3. Gradient check: the whole network in float64 against central differences (a few images, a few
   sampled entries per tensor); when it fails, each layer is checked alone (on a random input of
   its real input's shape) and the first layer that fails is named: the layer to read.
4. Dead ReLUs: per ReLU, the fraction of its units that are zero for every image of the batch
   (they pass no gradient: a unit dead for the whole data set never learns again).
5. Update / weight ratios: per weight tensor, |lr * update| / |weight| after one SGD step.
   Around 1e-3 is healthy (CS231n); far above, training is unstable; far below, it barely moves.

Every check runs on copies: the model's weights, gradients and mode are left as they were.
Meant for the small networks trained here: the gradient check of a full-size VGG is slow.
"""

import copy
from dataclasses import dataclass, field

import numpy as np

from .gradcheck import check_layer, check_model
from .layers import ReLU
from .optim import SGD

# What "looks wrong" means; each bound is reported beside the value it judged.
LOSS_FACTOR = 2.0              # initial loss outside [ln C / 2, 2 ln C]
DEAD_FRACTION = 0.5            # more than half of a ReLU's units dead on the whole batch
CHECKS = ("loss", "overfit", "gradcheck", "dead", "ratios")
RATIO_RANGE = (1e-5, 1e-1)     # update / weight ratio outside this range


@dataclass
class Diagnosis:
    """The results of ``diagnose``; ``str()`` is the report, ``problems`` what looks wrong."""
    classes: int
    initial_loss: float
    overfit_accuracy: float = None          # None: the check was not run
    overfit_loss: float = None
    overfit_steps: int = None
    gradcheck_error: float = None
    gradcheck_passed: bool = None
    first_failing_layer: str = None
    dead_relu: dict = field(default_factory=dict)          # ReLU name -> dead fraction
    update_ratio: dict = field(default_factory=dict)       # weight name -> |update| / |weight|

    @property
    def problems(self):
        found = []
        low, high = np.log(self.classes) / LOSS_FACTOR, np.log(self.classes) * LOSS_FACTOR
        if self.initial_loss is not None and not low <= self.initial_loss <= high:
            found.append(f"initial loss {self.initial_loss:.3f} is far from ln({self.classes}) = "
                         f"{np.log(self.classes):.3f} (expected within [{low:.2f}, {high:.2f}])")
        if self.overfit_accuracy is not None and self.overfit_accuracy < 1.0:
            found.append(f"could not overfit one batch: {self.overfit_accuracy:.0%} training "
                         f"accuracy after {self.overfit_steps} steps (loss {self.overfit_loss:.3g})")
        if self.gradcheck_passed is False:
            where = (f"; the first layer that fails alone: {self.first_failing_layer}"
                     if self.first_failing_layer else "")
            found.append(f"gradient check failed: worst relative error "
                         f"{self.gradcheck_error:.2e}{where}")
        found += [f"{name}: {fraction:.0%} of its units are dead on the whole batch"
                  for name, fraction in self.dead_relu.items() if fraction > DEAD_FRACTION]
        found += [f"{name}: update / weight ratio {ratio:.1e} outside "
                  f"[{RATIO_RANGE[0]:.0e}, {RATIO_RANGE[1]:.0e}]"
                  for name, ratio in self.update_ratio.items()
                  if not RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]]
        return found

    def __str__(self):
        ratios = list(self.update_ratio.values())
        dead = max(self.dead_relu.values(), default=0.0)
        lines = [
            f"initial loss          {self.initial_loss:.3f}   (ln {self.classes} = "
            f"{np.log(self.classes):.3f})" if self.initial_loss is not None else "",
            f"one-batch overfit     {self.overfit_accuracy:.0%} accuracy, loss "
            f"{self.overfit_loss:.3g} after at most {self.overfit_steps} steps"
            if self.overfit_accuracy is not None else "",
            f"gradient check        {'passed' if self.gradcheck_passed else 'FAILED'}, worst "
            f"relative error {self.gradcheck_error:.1e}" if self.gradcheck_passed is not None
            else "",
            f"dead ReLU units       at most {dead:.0%} of a layer" if self.dead_relu else "",
            f"update / weight       {min(ratios):.1e} .. {max(ratios):.1e}" if ratios else "",
        ]
        problems = self.problems
        lines.append("problems:" if problems else "no problems found")
        lines += [f"  - {p}" for p in problems]
        return "\n".join(line for line in lines if line)


def _check_batch(model, batch):
    if not (isinstance(batch, tuple) and len(batch) == 2):
        raise TypeError("batch must be a tuple (x, labels)")
    x, labels = np.asarray(batch[0]), np.asarray(batch[1])
    if x.ndim != 4 or labels.shape != (x.shape[0],) or x.shape[0] < 1:
        raise ValueError(f"batch must be x (N, C, H, W) and labels (N,); got {x.shape} and "
                         f"{labels.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("batch x contains NaN or infinity")
    return x, labels


def diagnose(model, batch, *, lr=1e-2, steps=100, gradcheck_images=2, checks=CHECKS, seed=0):
    """Run the checks (see the module docstring) of ``model`` on ``batch`` = (x, labels) and
    return a Diagnosis. ``lr``: the learning rate of the overfit test and the update ratios;
    ``steps``: the overfit test's budget; ``checks``: a subset of CHECKS (the gradient check is
    the slow one)."""
    x, labels = _check_batch(model, batch)
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"checks must be among {CHECKS}; got {sorted(unknown)}")
    net = copy.deepcopy(model).eval()                    # dropout off in every check
    initial_loss, logits = net.loss(x, labels)
    result = Diagnosis(classes=logits.shape[1],
                       initial_loss=float(initial_loss) if "loss" in checks else None)
    if "dead" in checks:
        activations = x
        for name, layer in net.layers.items():
            activations = layer.forward(activations)
            if isinstance(layer, ReLU):
                units = activations.reshape(activations.shape[0], -1)
                result.dead_relu[name] = float(np.mean(np.all(units == 0, axis=0)))
    if "ratios" in checks:
        result.update_ratio = _update_ratios(copy.deepcopy(net), x, labels, lr)
    if "overfit" in checks:
        result.overfit_accuracy, result.overfit_loss = _overfit(copy.deepcopy(net), x, labels,
                                                                lr, steps)
        result.overfit_steps = steps
    if "gradcheck" in checks:
        report, result.first_failing_layer = _gradcheck(
            net, x[:gradcheck_images], labels[:gradcheck_images], seed)
        result.gradcheck_error = float(report.worst.worst_error)
        result.gradcheck_passed = report.passed
    return result


def _update_ratios(net, x, labels, lr):
    before = {name: value.copy() for name, value in net.params.items() if name.endswith("weight")}
    net.loss(x, labels)
    SGD(net, lr=lr, momentum=0.9, weight_decay=0.0).step()
    after = net.params
    return {name: float(np.linalg.norm(after[name] - w) / max(np.linalg.norm(w), 1e-30))
            for name, w in before.items()}


def _overfit(net, x, labels, lr, steps):
    optimizer = SGD(net, lr=lr, momentum=0.9, weight_decay=0.0)
    for _ in range(steps):
        loss, logits = net.loss(x, labels)
        if np.mean(np.argmax(logits, axis=1) == labels) == 1.0 or not np.isfinite(loss):
            break
        optimizer.step()
    loss, logits = net.loss(x, labels)
    return float(np.mean(np.argmax(logits, axis=1) == labels)), float(loss)


def _gradcheck(net, x, labels, seed):
    """The whole-model check in float64; if it fails, the first layer failing alone."""
    net = net.astype(np.float64)
    x = x.astype(np.float64)
    report = check_model(net, x, labels, max_entries=10, seed=seed)
    if report.passed:
        return report, None
    # Alone, each layer gets a random input of its real input's shape: real inputs after a ReLU
    # hold exact zeros, ties a max-pool's finite differences would step across (a false alarm).
    rng, shape = np.random.default_rng(seed), x.shape
    for name, layer in net.layers.items():
        if not check_layer(layer, rng.standard_normal(shape), max_entries=10, seed=seed).passed:
            return report, name
        shape = (shape[0], *layer.output_shape(shape[1:]))
    return report, None

