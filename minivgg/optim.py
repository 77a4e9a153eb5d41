"""The paper's optimiser (Sec. 3.1): mini-batch SGD with momentum 0.9 and L2 weight decay 5e-4,
and the learning-rate schedules that divide the rate by 10.

The update, in Caffe's form (the framework the paper's nets were trained with):

    v <- momentum * v - lr * (g + weight_decay * w)          one velocity v per parameter
    w <- w + v

PyTorch writes it v <- momentum * v + (g + wd w); w <- w - lr v. The two agree while lr is
constant; when a schedule cuts lr, Caffe's velocity still carries the old rate's steps for a few
iterations, PyTorch's switches at once. minivgg follows Caffe.

Weight decay is the gradient of the L2 penalty (weight_decay / 2) * ||w||^2 added to the loss.
It applies to weights only, not to biases: Caffe decays every blob by default, but the reference
prototxts of the time (AlexNet/CaffeNet, which VGG's training set-up followed) set
``decay_mult: 0`` on biases, and a bias does not grow a layer's capacity. ``decay_biases=True``
decays them as well.

    opt = SGD(model, lr=1e-2)                           # momentum 0.9, weight_decay 5e-4
    schedule = ReduceOnPlateau(opt, patience=2)         # lr / 10 when val accuracy stalls
    loss, _ = model.loss(x, labels); opt.step(); ...; schedule.step(val_accuracy)
"""

import numbers

import numpy as np


def _check_number(value, name, low=0.0, high=None, low_inclusive=True):
    """Return ``value`` as a float if it is a real number in the range, else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value >= high):
        bounds = f"{'[' if low_inclusive else '('}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name} must lie in {bounds}; got {value!r}")
    return float(value)


# 64K entries: a slice of w, g, v and the expressions' temporary (1 MiB together) stays in the
# core's L2 cache from one expression of SGD.step to the next, so memory sees each array about
# once (measured on 25M float32 parameters: 95-102 ms per update against 150 ms with 1M entries).
_SLICE = 1 << 16


def _slices(*arrays):
    """Matching flat slices (views) of equally shaped contiguous arrays, _SLICE entries each."""
    if not all(a.flags.c_contiguous for a in arrays):
        raise ValueError("SGD updates parameters, gradients and velocities through flat views; "
                         "they must be C-contiguous arrays")
    flats = [a.reshape(-1) for a in arrays]
    for start in range(0, flats[0].size, _SLICE):
        yield tuple(f[start:start + _SLICE] for f in flats)


class SGD:
    """Stochastic gradient descent with momentum and weight decay on a model's parameters.

    model:        anything with ``params`` and ``grads``, dicts name -> array of equal shapes
                  (a Sequential / VGG); read afresh at every step, so a model cast with
                  ``astype`` after the optimiser was made is still the one updated. A model
                  with ``trainable`` (a Sequential) has only those parameters updated: layers
                  frozen with ``model.freeze`` stay bit-identical
    lr:           learning rate (the paper: 1e-2, divided by 10 three times)
    momentum:     mu in [0, 1) (the paper: 0.9)
    weight_decay: L2 multiplier (the paper: 5e-4) on parameters named ``*.weight``
    decay_biases: also decay ``*.bias`` (default False: see the module docstring)

    ``step()`` uses the gradients the last ``model.loss`` left in ``model.grads``. The velocities
    start at zero, so the first step is plain gradient descent: w <- w - lr (g + wd w).
    """

    def __init__(self, model, lr=1e-2, momentum=0.9, weight_decay=5e-4, decay_biases=False):
        if not (hasattr(model, "params") and hasattr(model, "grads")):
            raise TypeError(f"model must have params and grads (a Sequential); got "
                            f"{type(model).__name__}")
        self.model = model
        self.lr = _check_number(lr, "lr", 0.0, low_inclusive=False)
        self.momentum = _check_number(momentum, "momentum", 0.0, 1.0)
        self.weight_decay = _check_number(weight_decay, "weight_decay", 0.0)
        self.decay_biases = bool(decay_biases)
        self.velocity = {}                   # name -> array like the parameter; made on first use

    def decays(self, name):
        """Whether weight decay applies to the parameter ``name`` ("fc6.weight": yes)."""
        return self.decay_biases or not name.endswith(".bias")

    def step(self):
        """One update of every parameter from its current gradient, in place."""
        grads = self.model.grads
        params = getattr(self.model, "trainable", None)
        for name, param in (self.model.params if params is None else params).items():
            velocity = self.velocity.get(name)
            if velocity is None or velocity.shape != param.shape or velocity.dtype != param.dtype:
                velocity = self.velocity[name] = np.zeros_like(param)
            decay = self.weight_decay if self.decays(name) else 0.0
            # In slices of at most _SLICE entries: each expression below makes one temporary of its
            # operands' size, and for VGG-16's fc6 a whole-array one would be 411 MB of peak memory.
            for w, g, v in _slices(param, grads[name], velocity):  # noqa: B007 (blank in a student copy)
                ### BEGIN SOLUTION
                # v = mu v - lr (g + wd w); w = w + v, in place, in w's dtype
                v *= self.momentum
                if decay:
                    v -= (self.lr * decay) * w
                v -= self.lr * g
                w += v
                ### END SOLUTION

    def state_dict(self):
        """Hyper-parameters and velocities (copies), everything a checkpoint needs to continue."""
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "decay_biases": self.decay_biases,
                "velocity": {name: v.copy() for name, v in self.velocity.items()}}

    def load_state_dict(self, state):
        """Restore a ``state_dict``; velocities must name the model's parameters, same shapes."""
        params = self.model.params
        for name, v in state["velocity"].items():
            if name not in params or np.shape(v) != params[name].shape:
                raise ValueError(f"optimiser state: velocity {name!r} of shape {np.shape(v)} "
                                 f"does not match a parameter of the model")
        self.lr = _check_number(state["lr"], "lr", 0.0, low_inclusive=False)
        self.momentum = _check_number(state["momentum"], "momentum", 0.0, 1.0)
        self.weight_decay = _check_number(state["weight_decay"], "weight_decay", 0.0)
        self.decay_biases = bool(state["decay_biases"])
        self.velocity = {name: np.array(v, dtype=params[name].dtype)
                         for name, v in state["velocity"].items()}


class ReduceOnPlateau:
    """Divide the learning rate by ``1 / factor`` (10) when validation accuracy stops improving.

    The paper: "decreased by a factor of 10 when the validation set accuracy stopped improving
    ... the learning rate was decreased 3 times". Call ``step(val_accuracy)`` once per epoch.
    An epoch improves if its accuracy beats the best so far by more than ``min_delta``; after
    ``patience`` epochs in a row without improvement the rate is cut (at most ``max_reductions``
    times) and the count starts again. The best accuracy is kept across cuts.

    ``start_above`` (an accuracy, e.g. ``minivgg.evaluate.chance_threshold``): the count starts
    only once the net has left chance, two epochs in a row above it. A net still on the chance
    plateau has not started to improve; cutting its rate there, as the plain rule does after
    ``patience`` epochs, slows its exit tenfold (docs/TRAINING.md, the chance plateau).
    """

    def __init__(self, optimizer, factor=0.1, patience=2, max_reductions=3, min_delta=0.0,
                 start_above=None):
        self.optimizer = optimizer
        self.factor = _check_number(factor, "factor", 0.0, 1.0, low_inclusive=False)
        if not isinstance(patience, numbers.Integral) or patience < 1:
            raise ValueError(f"patience must be a positive int (epochs); got {patience!r}")
        if not isinstance(max_reductions, numbers.Integral) or max_reductions < 0:
            raise ValueError(f"max_reductions must be an int >= 0; got {max_reductions!r}")
        self.patience, self.max_reductions = int(patience), int(max_reductions)
        self.min_delta = _check_number(min_delta, "min_delta", 0.0)
        self.start_above = None if start_above is None else _check_number(start_above,
                                                                           "start_above", 0.0)
        self.above = 2 if start_above is None else 0    # epochs in a row above it, up to 2
        self.best = -np.inf
        self.bad_epochs = 0
        self.reductions = 0

    def step(self, metric):
        """Record one epoch's validation accuracy (higher is better); returns True if the
        learning rate was cut now."""
        metric = _check_number(metric, "metric", -np.inf)
        if self.above < 2:
            self.above = self.above + 1 if metric > self.start_above else 0
            if self.above < 2:
                return False
        if metric > self.best + self.min_delta:
            self.best, self.bad_epochs = metric, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs < self.patience or self.reductions >= self.max_reductions:
            return False
        self.optimizer.lr *= self.factor
        self.reductions += 1
        self.bad_epochs = 0
        return True

    def state_dict(self):
        return {"kind": "plateau", "factor": self.factor, "patience": self.patience,
                "max_reductions": self.max_reductions, "min_delta": self.min_delta,
                "start_above": self.start_above, "above": self.above,
                "best": float(self.best), "bad_epochs": self.bad_epochs,
                "reductions": self.reductions}

    def load_state_dict(self, state):
        _check_kind(state, "plateau")
        # Checkpoints from before start_above existed counted from the first epoch.
        self.__init__(self.optimizer, state["factor"], state["patience"],
                      state["max_reductions"], state["min_delta"], state.get("start_above"))
        self.above = int(state.get("above", self.above))
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.reductions = int(state["reductions"])


class StepSchedule:
    """Multiply the learning rate by ``factor`` (0.1) at fixed epochs: a schedule known in
    advance, for runs that must not depend on the validation set.

    milestones: epochs (counted from 1) after which the rate is cut, e.g. (10, 15)
    ``step(metric=None)`` is called once per epoch, like ReduceOnPlateau's; the metric is ignored.
    """

    def __init__(self, optimizer, milestones, factor=0.1):
        self.optimizer = optimizer
        milestones = tuple(milestones)
        if not all(isinstance(m, numbers.Integral) and m >= 1 for m in milestones):
            raise ValueError(f"milestones must be positive ints (epochs); got {milestones!r}")
        self.milestones = tuple(sorted(int(m) for m in milestones))
        self.factor = _check_number(factor, "factor", 0.0, 1.0, low_inclusive=False)
        self.epoch = 0

    def step(self, metric=None):
        """Count one finished epoch; returns True if the learning rate was cut now."""
        self.epoch += 1
        cuts = self.milestones.count(self.epoch)
        self.optimizer.lr *= self.factor ** cuts
        return cuts > 0

    def state_dict(self):
        return {"kind": "step", "milestones": list(self.milestones), "factor": self.factor,
                "epoch": self.epoch}

    def load_state_dict(self, state):
        _check_kind(state, "step")
        self.__init__(self.optimizer, state["milestones"], state["factor"])
        self.epoch = int(state["epoch"])


SCHEDULES = {"plateau": ReduceOnPlateau, "step": StepSchedule}


def _check_kind(state, kind):
    if state.get("kind") != kind:
        raise ValueError(f"schedule state is of kind {state.get('kind')!r}, not {kind!r}")


def schedule_from_state(optimizer, state):
    """Rebuild a schedule from its ``state_dict`` (the kind is stored in it)."""
    if state.get("kind") not in SCHEDULES:
        raise ValueError(f"schedule state kind must be one of {sorted(SCHEDULES)}; got "
                         f"{state.get('kind')!r}")
    cls = SCHEDULES[state["kind"]]
    schedule = cls.__new__(cls)
    schedule.optimizer = optimizer
    schedule.load_state_dict(state)
    return schedule
