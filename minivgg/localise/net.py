"""The localisation net of the paper's Appendix A: a trained classification VGG whose last layer
predicts a box instead of class scores, fine-tuned with a Euclidean loss.

    net = localisation_net(classifier, head="pcr")     # every layer copied but fc8 (random)
    history = train_localiser(net, train, val, mean=mean, fine_tune="fc", epochs=4)

Heads (A.1): single-class regression "scr", fc8 outputs one box (4 numbers) whatever the class;
per-class regression "pcr", fc8 outputs a box per class (4K numbers), and training and testing
read the box of the class in question (the ground truth's in training and in the centre-crop
protocol). PCR's loss sees only the true class's 4 outputs: the others get no gradient.
Targets are the boxes of the training crops, parametrised by ``geometry.to_params`` (not
clipped to the crop: the object's whole extent, which the dense protocol needs from windows
that see only part of it).

fc8's weights are random as in the paper; its bias starts at the mean target of the training
set (per class for PCR), a choice the paper does not make or rule out: with a zero bias PCR's
per-class outputs, each seeing 1/K of the batches, take many epochs at lr 1e-3 just to move to
the average box. The starting net therefore predicts the mean box, the baseline to beat.

Training (A.1): initialised from the classification model, the last layer random, initial lr
1e-3 in the paper. The paper does not say how its targets were scaled; with these (fractions of
the crop side, errors of ~0.1) a rate of 1e-3 barely moves the net in a few epochs, so
the default is 1e-2 (``DEFAULT_LR``; docs/results/localisation.json has SCR at both rates).
3e-2 learns faster but is not safe: from the README run's seed-0 classifier it reached 12.2%
(1e-2: 20.2%), from its seed-1 classifier it diverged in the first epoch, the random fc8's first
errors amplified by momentum (docs/results/localisation_readme_run.txt).
"all" layers fine-tuned, or "fc" (fc6, fc7 and the new fc8: "only the first two FC layers", as
Sermanet et al.), the rest frozen (``Sequential.freeze``). The augmentation is the classification
run's (random crops and flips move the boxes with the pixels,
``minivgg.data.augment``); lr / 10 when the validation error stops improving, as in Sec. 3.1.
"""

import math
import time

import numpy as np

from ..data import ImageDataset
from ..data.augment import TrainTransform
from ..layers.euclidean import euclidean_loss
from ..optim import SGD, ReduceOnPlateau
from ..train import _take, dropout_rngs, restore_dropout_rngs
from ..vgg import build_vgg
from .geometry import to_params

HEADS = ("scr", "pcr")
DEFAULT_LR = 1e-2          # the paper's 1e-3 barely moves these targets (module docstring)
FINE_TUNE = {"all": None, "fc": ("fc6", "fc7", "fc8")}      # None: every layer


def localisation_net(classifier, head="scr", seed=0, mean_box=None):
    """A VGG like ``classifier`` (built by build_vgg) with fc8 predicting boxes: 4 outputs
    (SCR) or 4 per class (PCR). Every other layer's weights are copied; fc8's weights are drawn
    afresh (``seed``), its bias is ``mean_box`` (4,) for SCR or (K, 4) for PCR (None: zero;
    :func:`mean_targets` gives the training set's). The net's ``head`` and ``num_classes``
    (the classifier's K) are attributes."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; got {head!r}")
    config = getattr(classifier, "config", None)
    if config is None:
        raise ValueError("classifier must be a VGG from build_vgg (it has no config)")
    num_classes = config["num_classes"]
    net = build_vgg(**{**config, "num_classes": 4 if head == "scr" else 4 * num_classes,
                       "seed": seed})
    net.set_params({**net.params, **{k: v for k, v in classifier.params.items()
                                     if not k.startswith("fc8.")}})
    net.head, net.num_classes = head, num_classes
    if mean_box is not None:
        net.params["fc8.bias"][...] = np.reshape(mean_box, -1)
    return net


def mean_targets(dataset, crop, head, scale=None):
    """The mean regression target of the centre crops of ``dataset``: (4,) for SCR, (K, 4) per
    class for PCR (the SCR mean for a class without images)."""
    from ..data.augment import TestTransform

    _, boxes = TestTransform(crop, mean=np.zeros(3), scale=scale)(dataset.images, dataset.boxes)
    targets = to_params(boxes, crop)
    overall = targets.mean(axis=0)
    if head == "scr":
        return overall
    K = len(dataset.classes)
    return np.array([targets[dataset.labels == k].mean(axis=0) if np.any(dataset.labels == k)
                     else overall for k in range(K)])


def class_boxes(net, out, classes):
    """The box parameters (N, 4) of ``classes`` (N,) from the net's output (N, 4 or 4K)."""
    if net.head == "scr":
        return out
    return out.reshape(len(out), net.num_classes, 4)[np.arange(len(out)), classes]


def box_loss(net, out, classes, targets):
    """Euclidean loss of the boxes of ``classes`` against ``targets`` (N, 4): (loss, dout)."""
    loss, dboxes = euclidean_loss(class_boxes(net, out, classes), targets)
    if net.head == "scr":
        return loss, dboxes
    dout = np.zeros_like(out).reshape(len(out), net.num_classes, 4)
    dout[np.arange(len(out)), classes] = dboxes
    return loss, dout.reshape(out.shape)


def backward_trainable(model, dout):
    """Back-propagate only as far as the earliest trainable layer: below it nothing is
    updated, so fine-tuning fc6-fc8 skips the convolutions' backward (most of the cost)."""
    names = list(model.layers)
    first = next((i for i, n in enumerate(names)
                  if model[n].params and n not in model.frozen), len(names))
    for name in reversed(names[first:]):
        dout = model[name].backward(dout)


def train_localiser(net, train_set, val_set, *, mean, fine_tune="all", epochs=4, lr=DEFAULT_LR,
                    batch_size=32, scale=None, flip=True, colour_shift=0.1, pca=None, seed=0,
                    log=print, evaluate=None, state=None, on_epoch=None):
    """Fine-tune ``net`` (from :func:`localisation_net`) on boxed datasets. Returns the history,
    a list of one dict per epoch {"epoch", "lr", "train_loss", "val_error", "seconds"}, where
    val_error is ``evaluate(net)`` (default: the centre-crop protocol with the ground-truth
    class, ``protocols.centre_crop_error``). Raises FloatingPointError if the loss diverges.

    state:    None, or a :func:`training_state` saved after some epochs (with the net's weights
              as they were then): training continues from the next epoch up to ``epochs``,
              bit-identically to a run never stopped
    on_epoch: called with :func:`training_state` after every epoch (to save a checkpoint)
    """
    from .protocols import centre_crop_error

    for data, name in ((train_set, "train_set"), (val_set, "val_set")):
        if not isinstance(data, ImageDataset) or data.boxes is None or len(data) == 0:
            raise ValueError(f"{name} must be a non-empty ImageDataset with boxes")
    if fine_tune not in FINE_TUNE:
        raise ValueError(f"fine_tune must be one of {tuple(FINE_TUNE)}; got {fine_tune!r}")
    net.unfreeze()
    if FINE_TUNE[fine_tune] is not None:
        net.freeze([n for n, layer in net.layers.items()
                    if layer.params and n not in FINE_TUNE[fine_tune]])
    crop = net.input_shape[-1]
    transform = TrainTransform(crop, mean=mean, scale=scale, flip=flip,
                               colour_shift=colour_shift if pca is not None else 0.0, pca=pca)
    if evaluate is None:
        def evaluate(model):
            return centre_crop_error(model, val_set, mean=mean, scale=scale)
    optimizer = SGD(net, lr=lr)
    schedule = ReduceOnPlateau(optimizer, patience=1)
    rng = np.random.default_rng(seed)
    history = []
    if state is not None:
        history = _restore(state, net, optimizer, schedule, rng)
    for epoch in range(len(history) + 1, epochs + 1):
        start, total, epoch_lr = time.perf_counter(), 0.0, optimizer.lr
        net.train()
        order = rng.permutation(len(train_set))
        for step in range(math.ceil(len(order) / batch_size)):
            idx = order[step * batch_size:(step + 1) * batch_size]
            x, boxes = transform(_take(train_set.images, idx), rng, train_set.boxes[idx])
            labels = train_set.labels[idx]
            out = net.forward(x.astype(net.dtype, copy=False))
            loss, dout = box_loss(net, out, labels, to_params(boxes, crop))
            if not np.isfinite(loss):
                raise FloatingPointError(f"localisation loss is {loss} at epoch {epoch}, step "
                                         f"{step + 1}: training diverged (try a smaller lr)")
            backward_trainable(net, dout)
            optimizer.step()
            total += loss * len(idx)
        error = evaluate(net)
        schedule.step(1.0 - error)
        history.append({"epoch": epoch, "lr": epoch_lr, "train_loss": total / len(order),
                        "val_error": error, "seconds": time.perf_counter() - start})
        if log:
            log(f"epoch {epoch}/{epochs}  box loss {total / len(order):.4f}  centre-crop "
                f"localisation error {100 * error:5.1f}%  lr {epoch_lr:.0e}  "
                f"{history[-1]['seconds']:.1f}s")
        if on_epoch is not None:
            on_epoch(training_state(net, optimizer, schedule, rng, history))
    return history


def training_state(net, optimizer, schedule, rng, history):
    """Everything but the weights that training needs to go on exactly: the optimiser (with its
    momentum), the schedule, the shuffling/augmentation generator and dropout's, the history.
    The same entries as a classification checkpoint's (``minivgg.train.Trainer.state``)."""
    return {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "rng": rng.bit_generator.state,
            "dropout_rngs": {k: g.bit_generator.state for k, g in dropout_rngs(net).items()},
            "history": [dict(record) for record in history]}


def _restore(state, net, optimizer, schedule, rng):
    """Put a :func:`training_state` back; returns its history (a new list)."""
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    rng.bit_generator.state = state["rng"]
    restore_dropout_rngs(net, state["dropout_rngs"])
    return [dict(record) for record in state["history"]]
