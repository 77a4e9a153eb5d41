"""The trainer: epochs of the paper's SGD on augmented crops, a progress bar you can watch, one
summary line per epoch, and a checkpoint after every epoch that a run can resume from exactly.

    trainer = Trainer(model, train, val, run_dir="runs/A")      # SGD(lr 1e-2, mu 0.9, wd 5e-4)
    history = trainer.fit(epochs=20)                            # lr / 10 on plateau
    trainer = Trainer.resume("runs/A", train, val)              # later, in a fresh process
    trainer.fit(epochs=30)                                      # epochs 21..30

One epoch: shuffle the training set, and for each mini-batch draw the paper's augmentation
(random crop, flip, colour shift; minus the training set's mean RGB), run ``model.loss`` and
``optimizer.step()``; then evaluate centre crops of the validation set, let the schedule see
the validation accuracy, append a record to the History, and write the checkpoint.

Every random draw of training comes from generators the checkpoint stores: one for shuffling
and augmentation, and each dropout layer's own. So a run stopped after epoch k and resumed
ends with the same bits as a run that never stopped (tests/test_train.py checks this).

Checkpoint (``run_dir/checkpoint.npz``, no pickles): "param/<name>" weights, "velocity/<name>"
momentum buffers, "mean" (3,) training mean RGB, "pca_eigvals"/"pca_eigvecs" (the colour
shift's components), and "meta", a JSON string holding the build config (``input_std``
included), the optimiser's hyper-parameters, the schedule's state, the generators' states, the
epoch counter, the augmentation settings, the history, the caller's ``settings`` and the
names of the frozen layers (``model.freeze``), which ``resume`` freezes again. Files are
written to a temporary file in the run folder and renamed over the old one (``os.replace``), so
a crash mid-write never leaves a half-written checkpoint.
"""

import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from .data import ImageDataset
from .data.augment import TrainTransform
from .data.stats import mean_rgb, rgb_pca
from .errors import CorruptFileError
from .evaluate import paper_scales, posteriors, top_k_error
from .io import CheckedNpz, model_from_arrays
from .optim import SGD, ReduceOnPlateau, schedule_from_state

CHECKPOINT = "checkpoint.npz"
HISTORY = "history.json"


class NonFiniteLossError(FloatingPointError):
    """The loss became inf or NaN: training diverged (usually a learning rate too high)."""

    def __init__(self, epoch, step, loss, checkpoint=None):
        self.epoch, self.step, self.loss = epoch, step, loss
        kept = (f"the last good checkpoint is kept: {checkpoint}" if checkpoint
                else "no checkpoint was written yet")
        super().__init__(f"loss is {loss} at epoch {epoch}, step {step}: training diverged "
                         f"(try a smaller learning rate); the parameters were not updated with "
                         f"this step, and {kept}")


def pixel_std(dataset):
    """``build_vgg(input_std=...)`` for a training set: the std of its pixels per channel,
    averaged over R, G, B, in grey levels, 255 sqrt(trace(cov) / 3) (the trace of the
    covariance is the sum of its eigenvalues)."""
    eigvals, _ = rgb_pca(dataset)
    return float(255.0 * np.sqrt(eigvals.sum() / 3.0))


def error_rates(scores, labels):
    """Top-1 error, and top-5 error when there are at least 5 classes, as fractions.

    scores: (N, K) logits or posteriors, labels: (N,) ints  ->  {"top1": e1[, "top5": e5]}
    """
    errors = {"top1": top_k_error(scores, labels, 1)}
    if np.shape(scores)[1] >= 5:
        errors["top5"] = top_k_error(scores, labels, 5)
    return errors


class History:
    """Per-epoch records, oldest first: a list of dicts such as

        {"epoch": 3, "lr": 0.01, "train_loss": 0.9, "train_top1": 0.31, "train_top5": 0.04,
         "val_loss": 0.8, "val_top1": 0.27, "val_top5": 0.03, "images_per_s": 812.0,
         "seconds": 14.2}

    errors are fractions (0.27 = 27%), loss is the mean cross-entropy in nats, ``seconds`` the
    epoch's wall time including validation. ``history["val_top1"]`` is one column as a list.
    """

    def __init__(self, records=()):
        self.records = [dict(r) for r in records]

    def append(self, record):
        self.records.append(dict(record))

    def __len__(self):
        return len(self.records)

    def __getitem__(self, key):
        if isinstance(key, str):
            return [r.get(key) for r in self.records]
        return self.records[key]

    def __iter__(self):
        return iter(self.records)

    def to_json(self):
        return json.dumps({"records": self.records}, indent=1)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise ValueError('history JSON must be an object {"records": [...]}')
        return cls(data["records"])

    def save(self, path):
        """Write the JSON to ``path`` atomically."""
        atomic_write(path, lambda f: f.write(self.to_json().encode()))

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())

    def __repr__(self):
        return f"History({len(self)} epochs)"


def atomic_write(path, write):
    """Call ``write(f)`` on a temporary binary file next to ``path``, then rename it to ``path``.

    os.replace is atomic on POSIX and Windows: readers see the old file or the new one, never a
    partial one. On any exception the temporary file is removed and the old ``path`` is untouched.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)               # mkstemp makes 0600; keep the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def dropout_rngs(model):
    """{layer name: np.random.Generator} of every layer with its own generator (dropout)."""
    return {name: layer.rng for name, layer in model.layers.items()
            if isinstance(getattr(layer, "rng", None), np.random.Generator)}


def save_checkpoint(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and ``meta`` (JSON-able dict) to an .npz, atomically."""
    payload = {**arrays, "meta": np.array(json.dumps(meta))}
    atomic_write(path, lambda f: np.savez(f, **payload))


# The meta entries resume reads, with their JSON types: a checkpoint without them is corrupted.
_META_TYPES = {"epoch": int, "model_config": (dict, type(None)), "optimizer": dict,
               "schedule": dict, "batch_size": int, "augment": dict, "rng": dict,
               "dropout_rngs": dict, "history": list}


def load_checkpoint(path):
    """Read a checkpoint written by the Trainer: (arrays dict, meta dict). A folder means the
    ``checkpoint.npz`` in it. Raises FileNotFoundError naming the path when there is none, and
    CorruptFileError ("corrupted checkpoint: PATH: why") for a truncated, bit-flipped or
    malformed one, or one holding NaN/inf (``minivgg.io.CheckedNpz`` reads it, in memory
    bounded by the file's size)."""
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT)
    with CheckedNpz(path, "checkpoint") as npz:
        meta = npz.json("meta")
        if not isinstance(meta, dict):
            npz.fail("its meta entry is not a JSON object")
        for key, kind in _META_TYPES.items():
            if not isinstance(meta.get(key), kind):
                npz.fail(f"its meta entry has no {key!r} of the right type")
        if npz.shapes.get("mean") != (3,):
            npz.fail("it has no (3,) 'mean' entry (the training mean RGB)")
        arrays = {key: npz.array(key) for key in npz.shapes if key != "meta"}
    return arrays, meta


def _prefixed(arrays, prefix):
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


def model_from_checkpoint(path):
    """Rebuild the VGG a checkpoint was trained as, with its weights: (model, arrays, meta).
    The build config is checked against the stored weights' shapes before anything is built."""
    arrays, meta = load_checkpoint(path)
    if meta["model_config"] is None:
        raise ValueError(f"{path}: the checkpoint has no build config (the model was not a VGG "
                         f"from build_vgg); rebuild the model yourself and pass it as model=")

    def fail(why):
        raise CorruptFileError(f"corrupted checkpoint: {path}: {why}")
    model = model_from_arrays(meta["model_config"], _prefixed(arrays, "param/"), fail)
    return model, arrays, meta


class Progress:
    """A progress bar for one epoch on ``stream`` (stderr).

    On a terminal the bar is redrawn in place (carriage return), at most 10 times a second. Where
    a carriage return would not erase anything (a file, a pipe, a notebook cell) it prints a plain
    line at each quarter instead, so logs stay short.
    """

    def __init__(self, total, label, stream=None, enabled=True):
        self.total, self.label = total, label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled and total > 0
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = time.perf_counter()
        self.quarter = 0

    def update(self, done, text=""):
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self.last < 0.1 and done < self.total:
                return
            filled = int(24 * done / self.total)
            bar = "#" * filled + "." * (24 - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {text} "
                              f"{now - self.start:.0f}s ")
        else:
            quarter = 4 * done // self.total
            if quarter <= self.quarter or done == self.total:
                return
            self.quarter = quarter
            self.stream.write(f"{self.label} {done}/{self.total} {text}\n")
        self.last = now
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\r\033[K")           # erase the bar: the summary line replaces it
            self.stream.flush()


class Trainer:
    """Trains ``model`` on ``train_set``, validating on ``val_set`` after each epoch.

    model:      a VGG from ``build_vgg`` (or any Sequential with ``config`` for checkpoints);
                its input side is the crop size
    train_set, val_set: ImageDatasets of uint8 (N, H, W, 3) images, H and W >= the crop
    optimizer:  default ``SGD(model)``: lr 1e-2, momentum 0.9, weight decay 5e-4 (Sec. 3.1)
    schedule:   default ``ReduceOnPlateau(optimizer)``: lr / 10 after 2 epochs without a better
                validation accuracy, at most 3 times; or a ``StepSchedule``
    batch_size: images per SGD step (the paper: 256)
    scale, flip, colour_shift: the augmentation (:class:`minivgg.data.augment.TrainTransform`):
                rescale to S (None keeps the size), random flips, PCA colour shift std (0 = off)
    run_dir:    folder for ``checkpoint.npz`` and ``history.json`` (None: keep nothing)
    seed:       seeds the generator of shuffling and augmentation
    progress:   show the progress bar (stderr); ``log`` prints the per-epoch lines (stdout)
    settings:   any JSON-able dict stored in the checkpoint (the CLI keeps its options there)
    """

    def __init__(self, model, train_set, val_set, *, optimizer=None, schedule=None,
                 batch_size=64, scale=None, flip=True, colour_shift=0.1, run_dir=None, seed=0,
                 progress=True, log=print, settings=None):
        for data, name in ((train_set, "train_set"), (val_set, "val_set")):
            if not isinstance(data, ImageDataset) or len(data) == 0:
                raise ValueError(f"{name} must be a non-empty ImageDataset; got "
                                 f"{type(data).__name__} of length {len(data)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        self.model, self.train_set, self.val_set = model, train_set, val_set
        self.optimizer = SGD(model) if optimizer is None else optimizer
        self.schedule = ReduceOnPlateau(self.optimizer) if schedule is None else schedule
        self.batch_size = batch_size
        self.augment = {"scale": scale, "flip": flip, "colour_shift": colour_shift}
        # The paper's only preprocessing, from the training set alone (Sec. 2.1); the colour
        # shift's principal components likewise.
        self.mean = mean_rgb(train_set)
        self.pca = rgb_pca(train_set) if colour_shift > 0 else None
        self.rng = np.random.default_rng(seed)
        self.run_dir = run_dir
        self.progress, self.log = progress, log
        self.settings = dict(settings or {})
        self.epoch = 0
        self.history = History()
        self._build_transform()                 # checks the augmentation before any folder is made
        if run_dir is not None:
            os.makedirs(run_dir, exist_ok=True)

    def _build_transform(self):
        self.transform = TrainTransform(self.model.input_shape[-1], mean=self.mean,
                                        pca=self.pca, **self.augment)

    @property
    def checkpoint_path(self):
        return None if self.run_dir is None else os.path.join(self.run_dir, CHECKPOINT)

    # -- one epoch ---------------------------------------------------------------------------

    def train_epoch(self):
        """One pass over the shuffled training set; returns {"loss", "top1"[, "top5"],
        "images_per_s"} averaged over the epoch (with dropout and augmentation on)."""
        model, data = self.model.train(), self.train_set
        order = self.rng.permutation(len(data))
        steps = math.ceil(len(order) / self.batch_size)
        bar = Progress(steps, f"epoch {self.epoch + 1}", enabled=self.progress)
        totals, seen, start = {}, 0, time.perf_counter()
        for step in range(steps):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            x = self.transform(_take(data.images, idx), self.rng).astype(model.dtype, copy=False)
            labels = data.labels[idx]
            loss, logits = model.loss(x, labels)
            if not np.isfinite(loss):
                bar.close()
                raise NonFiniteLossError(self.epoch + 1, step + 1, loss,
                                         self._existing_checkpoint())
            self.optimizer.step()
            for key, value in {"loss": loss, **error_rates(logits, labels)}.items():
                totals[key] = totals.get(key, 0.0) + value * len(idx)
            seen += len(idx)
            bar.update(step + 1, f"loss {totals['loss'] / seen:.3f}")
        bar.close()
        result = {key: value / seen for key, value in totals.items()}
        result["images_per_s"] = seen / (time.perf_counter() - start)
        return result

    def validate(self):
        """The paper's single-scale test (Sec. 4.1) on the validation set, dropout off: centre
        crops of the images rescaled to Q = S (fixed S) or (Smin + Smax) / 2 (jittered S), or of
        the images as they are when training does not rescale. {"loss", "top1"[, "top5"]}."""
        scale = self.augment["scale"]
        probs = posteriors(self.model, self.val_set.images, mean=self.mean, method="center",
                           scales=None if scale is None else paper_scales(scale),
                           batch_size=max(self.batch_size, 64))
        labels = self.val_set.labels
        loss = -np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-300)))
        return {"loss": float(loss), **error_rates(probs, labels)}

    def fit(self, epochs):
        """Train until ``epochs`` epochs are done in total (a resumed run continues counting).
        Returns the History. Raises NonFiniteLossError if the loss diverges."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be an int >= 0; got {epochs!r}")
        while self.epoch < epochs:
            start, lr = time.perf_counter(), self.optimizer.lr
            train = self.train_epoch()
            val = self.validate()
            self.epoch += 1
            record = {"epoch": self.epoch, "lr": lr,
                      **{f"train_{k}": v for k, v in train.items() if k != "images_per_s"},
                      **{f"val_{k}": v for k, v in val.items()},
                      "images_per_s": train["images_per_s"],
                      "seconds": time.perf_counter() - start}
            self.schedule.step(1.0 - val["top1"])
            self.history.append(record)
            if self.run_dir is not None:
                self.save()
            if self.log:
                self.log(format_record(record, epochs))
        return self.history

    # -- checkpoints ---------------------------------------------------------------------------

    def _existing_checkpoint(self):
        path = self.checkpoint_path
        return path if path is not None and os.path.exists(path) else None

    def state(self):
        """The checkpoint's contents: (arrays, meta)."""
        optimizer = self.optimizer.state_dict()
        arrays = {f"param/{k}": v for k, v in self.model.params.items()}
        arrays.update({f"velocity/{k}": v for k, v in optimizer.pop("velocity").items()})
        arrays["mean"] = self.mean
        if self.pca is not None:
            arrays["pca_eigvals"], arrays["pca_eigvecs"] = self.pca
        meta = {"epoch": self.epoch, "model_config": getattr(self.model, "config", None),
                "optimizer": optimizer, "schedule": self.schedule.state_dict(),
                "batch_size": self.batch_size, "augment": self.augment,
                "rng": self.rng.bit_generator.state,
                "dropout_rngs": {k: g.bit_generator.state
                                 for k, g in dropout_rngs(self.model).items()},
                "history": self.history.records, "settings": self.settings,
                "frozen": sorted(getattr(self.model, "frozen", ()))}
        return arrays, meta

    def save(self):
        """Write the checkpoint and history.json into ``run_dir``, each atomically."""
        if self.run_dir is None:
            raise ValueError("save: this Trainer has no run_dir")
        save_checkpoint(self.checkpoint_path, *self.state())
        self.history.save(os.path.join(self.run_dir, HISTORY))

    @classmethod
    def resume(cls, run_dir, train_set, val_set, *, model=None, progress=True, log=print):
        """A Trainer in the state the checkpoint in ``run_dir`` was saved in: weights, momentum,
        learning rate and schedule, generators, epoch counter, history, mean RGB. The datasets
        must be the ones the run was started with (the CLI regenerates them from ``settings``).
        ``model`` is needed only when the checkpoint has no build config.
        """
        if model is None:
            model, arrays, meta = model_from_checkpoint(run_dir)
        else:
            arrays, meta = load_checkpoint(run_dir)
            model.set_params(_prefixed(arrays, "param/"))
        model.freeze(meta.get("frozen", ()))         # a fine-tuning run stays one when resumed
        optimizer = SGD(model)
        optimizer.load_state_dict({**meta["optimizer"], "velocity": _prefixed(arrays, "velocity/")})
        augment = meta["augment"]
        if isinstance(augment["scale"], list):
            augment["scale"] = tuple(augment["scale"])
        trainer = cls(model, train_set, val_set, optimizer=optimizer,
                      schedule=schedule_from_state(optimizer, meta["schedule"]),
                      batch_size=meta["batch_size"], run_dir=run_dir, progress=progress,
                      log=log, settings=meta["settings"], **augment)
        trainer.mean = arrays["mean"]               # the stored one, not recomputed
        trainer.pca = ((arrays["pca_eigvals"], arrays["pca_eigvecs"])
                       if "pca_eigvals" in arrays else None)
        trainer._build_transform()
        trainer.rng.bit_generator.state = meta["rng"]
        rngs = dropout_rngs(model)
        if set(rngs) != set(meta["dropout_rngs"]):
            raise ValueError(f"{run_dir}: the checkpoint's dropout layers "
                             f"{sorted(meta['dropout_rngs'])} are not the model's {sorted(rngs)}")
        for name, state in meta["dropout_rngs"].items():
            rngs[name].bit_generator.state = state
        trainer.epoch = meta["epoch"]
        trainer.history = History(meta["history"])
        return trainer


def _take(images, idx):
    """images[idx] for an array, or the list of those images for a list of mixed sizes."""
    return images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx]


def format_record(record, epochs=None):
    """One line per epoch: losses and errors as train / val, the learning rate and speed."""
    def pair(key):
        return f"{100 * record[f'train_{key}']:5.1f}%/{100 * record[f'val_{key}']:5.1f}%"

    of = f"/{epochs}" if epochs else ""
    top5 = f"  top-5 err {pair('top5')}" if "val_top5" in record else ""
    return (f"epoch {record['epoch']:3d}{of}  loss {record['train_loss']:.3f}/"
            f"{record['val_loss']:.3f}  top-1 err {pair('top1')}{top5}  (train/val)  "
            f"lr {record['lr']:.0e}  {record['images_per_s']:.0f} img/s  "
            f"{record['seconds']:.1f}s")
