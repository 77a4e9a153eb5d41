"""Learning dynamics, measured: what each layer's activations and gradients look like, how many
ReLUs are dead, how large the logits are, and how far each SGD step moves each layer's weights.

    stats = layer_statistics(model, x, labels)      # one probe batch, nothing updated
    trace = StepTrace(probe_x, probe_labels, every=5)
    trainer.on_step = trace                         # records while trainer.fit runs
    trace.records[0]["update_ratio"]["fc8.weight"]

These are the numbers of docs/TRAINING.md (benchmarks/training_dynamics.py draws them): why the
plain recipe stalled at chance or collapsed, and what the recipe's fixes change.
"""

import numpy as np

from .layers import ReLU
from .layers.softmax import softmax_cross_entropy


def layer_statistics(model, x, labels):
    """Forward and backward of one batch, layer by layer, in eval mode (dropout off, so no
    random draw is consumed) and without touching the weights.

    x: (N, C, H, W) in the model's dtype; labels: (N,) ints
    returns {"loss": float, "logit_std": std of the logits, "layers": [per layer, front to
    back: {"name", "out_std": std of its output, "grad_std": std of dL/d(output),
    "dead": for a ReLU, the fraction of its channels (units for fc) that are zero for every
    image of the batch, else None}]}
    """
    was_training = model.training
    model.eval()
    try:
        outputs, out = [], x
        for layer in model.layers.values():
            out = layer.forward(out)
            outputs.append(out)
        loss, grad = softmax_cross_entropy(out, labels)
        grads = [None] * len(outputs)
        for i, layer in reversed(list(enumerate(model.layers.values()))):
            grads[i] = grad
            grad = layer.backward(grad)
    finally:
        model.train(was_training)
    rows = []
    for (name, layer), out, g in zip(model.layers.items(), outputs, grads):
        dead = None
        if isinstance(layer, ReLU):
            # a channel (conv: axis 1 over batch and positions) or a unit (fc) never active
            active = (out > 0).any(axis=(0, 2, 3)) if out.ndim == 4 else (out > 0).any(axis=0)
            dead = float(1.0 - active.mean())
        rows.append({"name": name, "out_std": float(out.std()), "grad_std": float(g.std()),
                     "dead": dead})
    return {"loss": float(loss), "logit_std": float(outputs[-1].std()), "layers": rows}


class StepTrace:
    """An ``on_step`` callback for the Trainer: after every SGD step the loss and, for each
    weight, the update/weight ratio ||w_t - w_{t-1}|| / ||w_{t-1}||; every ``every`` steps also
    :func:`layer_statistics` on a fixed probe batch. ``records`` is a list of dicts
    {"step", "loss", "update_ratio": {name: ratio}[, "stats": ...]}."""

    def __init__(self, probe_x, probe_labels, every=10):
        self.probe_x, self.probe_labels, self.every = probe_x, probe_labels, every
        self.records, self.previous, self.step = [], None, 0

    def start(self, model):
        """Remember the initial weights (call before training; the first ratio needs them)."""
        self.previous = {k: v.copy() for k, v in model.params.items() if k.endswith("weight")}
        self.records.append({"step": 0, "loss": None, "update_ratio": {},
                             "stats": layer_statistics(model, self.probe_x, self.probe_labels)})

    def __call__(self, trainer, loss):
        params = trainer.model.params
        if self.previous is None:
            raise RuntimeError("StepTrace.start(model) must be called before training")
        self.step += 1
        ratios = {k: float(np.linalg.norm(params[k] - w) / max(np.linalg.norm(w), 1e-30))
                  for k, w in self.previous.items()}
        record = {"step": self.step, "loss": float(loss), "update_ratio": ratios}
        if self.step % self.every == 0:
            record["stats"] = layer_statistics(trainer.model, self.probe_x, self.probe_labels)
        self.records.append(record)
        self.previous = {k: params[k].copy() for k in self.previous}
