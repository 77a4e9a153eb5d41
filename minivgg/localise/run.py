"""A localisation run: fine-tuned from a classification run folder, saved beside it, tested.

    out = localise_run("runs/A-...", head="scr", fine_tune="all")    # -> "runs/A-...-loc-scr-all"
    results = evaluate_localisation(out)     # {"centre": {...}, "dense": {...}, ...}

The run folder holds ``checkpoint.npz`` (atomic, no pickles): "param/<name>" the localisation
net, "classifier/<name>" the classification net it came from (the dense protocol rates boxes
with it, so the run is self-contained), "mean" (3,), and "meta", JSON: {"kind": "localisation",
"model_config", "classifier_config", "head", "fine_tune", "source", "settings" (the data),
"scale", "epochs", "lr", "batch_size", "seed", "history", "seconds", and the entries every
minivgg checkpoint has: "epoch" (done so far), "optimizer" (its momentum as "velocity/<name>"),
"schedule", "rng", "dropout_rngs", "augment"}. It is written after every epoch, so a stopped
run continues with ``resume_localisation`` (``minivgg localise --resume``).
"""

import json
import os

import numpy as np

from ..data.augment import TestTransform
from ..errors import CorruptFileError
from ..evaluate import paper_scales
from ..io import model_from_arrays
from ..recipe import MAX_SCALE_RATIO
from ..train import (
    CHECKPOINT,
    _prefixed,
    load_checkpoint,
    model_from_checkpoint,
    outermost_missing,
    refuse_localisation_run,
    remove_unused_run_dir,
    save_checkpoint,
)
from .geometry import from_params, iou
from .net import DEFAULT_LR, localisation_net, mean_targets, train_localiser
from .protocols import (
    centre_crop_error,
    dense_windows,
    localisation_errors,
    merged_answers,
    top_classes,
    uncrop,
)

DEFAULT_EPOCHS = 8
DEFAULT_LAYOUT = "scattered"


def _data(settings, path=None):
    """(train, val) the run's ``settings`` describe; settings that make no built-in data (a run
    made from Python, hand-edited sizes) are a ValueError naming the checkpoint (``path``)."""
    from ..cli.common import synthetic_data
    try:
        return synthetic_data(settings)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        where = _checkpoint(path) if path is not None else "the run"
        raise ValueError(f"{where}: its settings make no built-in data ({type(error).__name__}: "
                         f"{error}); a localisation run starts from a run of 'minivgg train' on "
                         f"the built-in shapes") from None


def _numbers(epochs, lr=DEFAULT_LR, batch_size=1, seed=0):
    """The run's numbers checked and as Python's (they go into the checkpoint's JSON: an
    np.int64 epoch count failed there after the first epoch): boundary check (robust)."""
    from ..layers.base import check_count, check_real
    from ..train import _seed
    return (check_count("localise_run", epochs, "epochs"),
            check_real("localise_run", lr, "lr", open_low=True),
            check_count("localise_run", batch_size, "batch_size"), _seed(seed))


def _checkpoint(path):
    return os.path.join(path, CHECKPOINT) if os.path.isdir(path) else path


def _check_run(path, meta, crop):
    """The meta entries a localisation run is rebuilt and tested from, checked before use (a
    hand-edited scale of 1e9 would allocate without end): CorruptFileError naming the file."""
    scale = meta.get("scale")
    scales = [scale] if isinstance(scale, int) else scale if isinstance(scale, list) else None
    checks = {"head": meta.get("head") in ("scr", "pcr"),
              "fine_tune": meta.get("fine_tune") in ("all", "fc"),
              "source": isinstance(meta.get("source"), str),
              "settings": isinstance(meta.get("settings"), dict),
              "classifier_config": isinstance(meta.get("classifier_config"), dict),
              "scale": scale is None or (scales is not None and 0 < len(scales) <= 2 and all(
                  isinstance(s, int) and crop <= s <= MAX_SCALE_RATIO * crop for s in scales))}
    wrong = [key for key, ok in checks.items() if not ok]
    if wrong:
        raise CorruptFileError(f"corrupted checkpoint: {_checkpoint(path)}: its meta entry "
                               f"{wrong[0]!r} is not one a localisation run writes: "
                               f"{str(meta.get(wrong[0]))[:100]}")


def localise_run(source, *, head="scr", fine_tune="all", epochs=DEFAULT_EPOCHS, lr=DEFAULT_LR,
                 batch_size=32, seed=0, layout=DEFAULT_LAYOUT, out_dir=None, log=print):
    """Train a localisation net from the classification run in ``source`` (a folder written by
    ``minivgg train`` on the built-in data: its checkpoint.npz, the last epoch; or a file of
    one, such as its best.npz) on the built-in shapes of ``layout`` with the run's sizes and
    seed (the generator gives every image's box), saving ``out_dir`` (default
    ``<run folder>-loc-<head>-<fine_tune>``) after every epoch; its meta "source" is the file
    read. Refuses to overwrite an existing run (FileExistsError; :func:`resume_localisation`
    continues one). Returns out_dir."""
    epochs, lr, batch_size, seed = _numbers(epochs, lr, batch_size, seed)
    source = _checkpoint(source)
    classifier, arrays, meta = model_from_checkpoint(source)
    refuse_localisation_run(source, meta, "a localisation net starts from a classification "
                                          "run: give that one")
    folder = os.path.normpath(os.path.dirname(source) or ".")
    if os.path.basename(folder) in (".", ".."):    # "." gave a hidden .-loc-... inside it
        folder = os.path.abspath(folder)
    out_dir = out_dir or f"{folder}-loc-{head}-{fine_tune}"
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a folder; choose another --out")
    if os.path.exists(os.path.join(out_dir, CHECKPOINT)):
        raise FileExistsError(f"{out_dir} already holds a run; choose another folder (or "
                              f"continue it: minivgg localise --resume {out_dir})")
    settings, scale = {**(meta["settings"] or {}), "layout": layout}, meta["augment"]["scale"]
    scale = tuple(scale) if isinstance(scale, list) else scale
    train_set, val_set = _data(settings, source)
    crop = classifier.input_shape[-1]
    net = localisation_net(classifier, head, seed=seed,
                           mean_box=mean_targets(train_set, crop, head, scale))
    if log:
        log(f"fine-tuning {source} (epoch {meta['epoch']})")
        log(f"{layout} built-in shapes ({len(train_set)} training / {len(val_set)} validation "
            f"images): the mean training box alone has a centre-crop localisation error of "
            f"{100 * constant_box_error(train_set, val_set, crop, scale):.1f}%")
        if meta["settings"].get("layout", "centred") != layout:
            log(f"note: the classifier was trained on the {meta['settings'].get('layout', 'centred')}"
                f" shapes; its features are fine-tuned for boxes here, but the dense protocol "
                f"takes the classes from it as it is ('minivgg train --layout {layout}' trains "
                f"one on these images)")
    fixed = {f"classifier/{k}": v for k, v in classifier.params.items()}
    fixed.update({k: arrays[k] for k in ("mean", "pca_eigvals", "pca_eigvecs") if k in arrays})
    run = {"kind": "localisation", "model_config": net.config,
           "classifier_config": classifier.config, "head": head, "fine_tune": fine_tune,
           "source": os.path.abspath(source), "source_layout": meta["settings"].get("layout",
                                                                                   "centred"),
           "settings": settings, "scale": scale, "epochs": epochs, "lr": lr,
           "batch_size": batch_size, "seed": seed, "augment": {**meta["augment"], "scale": scale}}
    return _fit(out_dir, net, fixed, run, train_set, val_set, None, log)


def resume_localisation(out_dir, epochs=None, log=print):
    """Continue the localisation run in ``out_dir`` from its last checkpoint up to ``epochs``
    in all (default: the number it was started with), exactly as if it had never stopped: the
    weights, momentum, learning rate, schedule and generators are the checkpoint's. Returns
    out_dir."""
    arrays, meta = load_checkpoint(out_dir)
    net, _, _, meta = load_localisation_run(out_dir)
    if "seed" not in meta:
        raise ValueError(f"{out_dir} was made by a minivgg without resumable localisation runs")
    epochs = meta["epochs"] if epochs is None else _numbers(epochs)[0]
    if epochs < meta["epoch"]:
        raise ValueError(f"{out_dir} has already trained {meta['epoch']} epochs; epochs must be "
                         f"at least that; got {epochs}")
    fixed = {k: v for k, v in arrays.items()
             if k.startswith("classifier/") or k in ("mean", "pca_eigvals", "pca_eigvecs")}
    state = {key: meta[key] for key in ("schedule", "rng", "dropout_rngs", "history")}
    state["optimizer"] = {**meta["optimizer"], "velocity": _prefixed(arrays, "velocity/")}
    train_set, val_set = _data(meta["settings"], out_dir)
    run = {k: v for k, v in meta.items() if k not in (*state, "epoch", "seconds")}
    _check_state(out_dir, net, run, state)
    return _fit(out_dir, net, fixed, {**run, "epochs": epochs}, train_set, val_set, state, log)


def _check_state(path, net, run, state):
    """Restore ``state`` into throwaway objects before training (boundary check, robust): a
    hand-edited entry is a CorruptFileError naming the file now, not a KeyError after an
    epoch's work (``train_localiser`` restores it again, the same way)."""
    from ..layers.base import check_count
    from ..optim import SGD, ReduceOnPlateau
    from ..train import _is_real, _restoring
    from .net import _restore
    with _restoring(_checkpoint(path), "lr, seed, batch_size or the training state"):
        optimizer = SGD(net, lr=run["lr"])
        _restore(state, net, optimizer, ReduceOnPlateau(optimizer, patience=1),
                 np.random.default_rng(run["seed"]))
        if not all(_is_real(r.get("seconds")) for r in state["history"]):
            raise ValueError("a history record has no 'seconds'")
        check_count("resume_localisation", run["batch_size"], "batch_size")


def _fit(out_dir, net, fixed, run, train_set, val_set, state, log):
    """Train (or go on training) ``net`` as ``run`` says, writing ``out_dir``'s checkpoint
    after every epoch: the net's weights and momentum, ``fixed`` (the classifier, mean, PCA)
    and ``run`` with the training state (``net.training_state``), atomically."""
    made = outermost_missing(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    pca = (fixed["pca_eigvals"], fixed["pca_eigvecs"]) if "pca_eigvals" in fixed else None

    def save(state):
        optimizer = dict(state["optimizer"])
        payload = {f"param/{k}": v for k, v in net.params.items()}
        payload.update({f"velocity/{k}": v for k, v in optimizer.pop("velocity").items()})
        save_checkpoint(os.path.join(out_dir, CHECKPOINT), {**payload, **fixed}, {
            **run, **state, "optimizer": optimizer, "epoch": len(state["history"]),
            "seconds": sum(record["seconds"] for record in state["history"])})

    try:
        train_localiser(net, train_set, val_set, mean=fixed["mean"], fine_tune=run["fine_tune"],
                        epochs=run["epochs"], lr=run["lr"], batch_size=run["batch_size"],
                        scale=run["scale"], flip=run["augment"]["flip"], pca=pca,
                        seed=run["seed"], log=log, state=state, on_epoch=save)
    except BaseException as error:                  # a first epoch that failed: no litter
        if remove_unused_run_dir(out_dir, made):
            error.removed = out_dir
        raise
    return out_dir


def is_localisation_run(path):
    """Whether the run folder ``path`` holds a localisation run (its meta says so)."""
    try:
        return load_checkpoint(path)[1].get("kind") == "localisation"
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError):
        return False


def load_localisation_run(path):
    """(net, classifier, mean, meta) of a run written by :func:`localise_run`."""
    arrays, meta = load_checkpoint(path)
    if meta.get("kind") != "localisation":
        raise ValueError(f"{path}: not a localisation run (made by 'minivgg localise')")


    def fail(why):
        raise CorruptFileError(f"corrupted checkpoint: {_checkpoint(path)}: {why}")
    if meta["model_config"] is None:
        fail("it has no build config")
    net = model_from_arrays(meta["model_config"], _prefixed(arrays, "param/"), fail)
    _check_run(path, meta, net.input_shape[-1])         # boundary check (robust)
    classifier = model_from_arrays(meta["classifier_config"], _prefixed(arrays, "classifier/"),
                                   fail)
    net.head, net.num_classes = meta["head"], classifier.config["num_classes"]
    if net.config["num_classes"] != 4 * (net.num_classes if net.head == "pcr" else 1):
        fail(f"its {net.head.upper()} net has {net.config['num_classes']} outputs, not 4 "
             f"{'per class' if net.head == 'pcr' else ''}")
    return net, classifier, arrays["mean"], meta


def dense_scales(scale, side, crop, multi=False):
    """The dense protocol's test scales: Q = S (the training scale; ``side``, the images' own
    shorter side, if training did not rescale; the middle of a jittered range), and with
    ``multi`` Q = {S - d, S, S + d} with d = crop / 8: the paper's {S - 32, S, S + 32} at
    S = 256, crop 224, in proportion (Sec. 4.2), none below the crop."""
    S = side if scale is None else (scale if isinstance(scale, int) else sum(scale) // 2)
    if not multi:
        return (S,)
    return tuple(dict.fromkeys(max(q, crop) for q in paper_scales(S, True, step=crop // 8)))


def evaluate_localisation(path, val_set=None, batch_size=32):
    """Localisation errors of a run on its validation set (regenerated from the run's settings
    unless given), fractions: {"centre": {"gt"}, "dense": {"scales", "flip", "top1", "top5",
    "gt"}, "dense_multi": {...}}; each protocol also has "baseline", the same errors of the
    mean training box answered for every image and class (:func:`mean_boxes`), what the data
    give away for free: the number a net must beat."""
    from ..data import ImageDataset
    from ..layers.base import check_count
    check_count("evaluate_localisation", batch_size, "batch_size")      # boundary checks (robust)
    if val_set is not None and not (isinstance(val_set, ImageDataset) and val_set.boxes is not None
                                    and len(val_set)):
        raise ValueError(f"evaluate_localisation: val_set must be a non-empty ImageDataset with "
                         f"boxes; got {type(val_set).__name__}")
    net, classifier, mean, meta = load_localisation_run(path)
    train_set, own_val = _data(meta["settings"], path)
    val_set = own_val if val_set is None else val_set
    scale, crop = meta["scale"], net.input_shape[-1]
    side = min(min(image.shape[:2]) for image in val_set.images)
    constant = mean_boxes(train_set, val_set.images, crop, scale)
    wrong = float(np.mean(~(iou(constant, val_set.boxes) > 0.5)))
    results = {"centre": {"gt": centre_crop_error(net, val_set, mean=mean, scale=scale),
                          "baseline": {"gt": wrong}}}
    for name, multi in (("dense", False), ("dense_multi", True)):
        scales = dense_scales(scale, side, crop, multi)
        windows, posteriors = dense_windows(net, classifier, val_set.images, mean=mean,
                                            scales=scales, flip=True, batch_size=batch_size)
        classes = top_classes(posteriors)
        errors = localisation_errors(classes, merged_answers(windows, classes), val_set.labels,
                                     val_set.boxes)
        truth = val_set.labels[:, None]                   # the same windows, the true class
        errors["gt"] = localisation_errors(truth, merged_answers(windows, truth), val_set.labels,
                                           val_set.boxes)["top1"]
        results[name] = {"scales": list(scales), "flip": True, **errors,
                         "baseline": {**answer_errors(classes, constant, val_set), "gt": wrong}}
    return results


def mean_boxes(train_set, images, crop, scale=None):
    """The answer of a "net" that ignores the image: the mean training box of the centre crops
    (what fc8's bias starts at), mapped back to each of ``images`` (N, 4) like a prediction."""
    box = from_params(mean_targets(train_set, crop, "scr", scale)[None], crop)
    transform_scale = None if scale is None else TestTransform(crop, mean=np.zeros(3),
                                                               scale=scale).scale
    return np.concatenate([uncrop(box, image.shape[:2], crop, transform_scale)
                           for image in images])


def answer_errors(classes, boxes, dataset):
    """Top-k localisation errors of answering one box per image, ``boxes`` (N, 4), for each of
    its classes (N, k): the baseline with the same classes as a net's answers, right where the
    class is and the box fits."""
    return localisation_errors(classes, np.repeat(boxes[:, None], classes.shape[1], 1),
                               dataset.labels, dataset.boxes)


def constant_box_error(train_set, val_set, crop, scale=None):
    """The centre-crop protocol's error of the mean box (:func:`mean_boxes`)."""
    boxes = mean_boxes(train_set, val_set.images, crop, scale)
    return float(np.mean(~(iou(boxes, val_set.boxes) > 0.5)))
