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

import contextlib
import json
import math
import numbers
import os
import sys
import tempfile
import time

import numpy as np

from .data import ImageDataset
from .data.augment import TrainTransform
from .data.stats import mean_rgb, rgb_pca
from .errors import CorruptFileError
from .evaluate import chance_threshold, paper_scales, posteriors, top_k_error
from .io import CheckedNpz, model_from_arrays
from .layers import Standardise
from .optim import SGD, schedule_from_state
from .recipe import RECIPE, Recipe

CHECKPOINT = "checkpoint.npz"       # the last epoch's state: what --resume continues from
BEST = "best.npz"                   # the epoch of lowest validation top-1 error: what evaluate uses
HISTORY = "history.json"
LOCK = ".lock"
# What a Trainer may change when it is made: the training half of the recipe (the model half is
# the model's business, build_vgg or Recipe.build).
TRAINING_FIELDS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "warmup_epochs",
                   "schedule", "patience", "max_reductions", "milestones", "scale", "flip",
                   "colour_shift", "standardise")


class NonFiniteLossError(FloatingPointError):
    """The loss became inf or NaN: training diverged (usually a learning rate too high)."""

    def __init__(self, epoch, step, loss, checkpoint=None):
        super().__init__(epoch, step, loss, checkpoint)
        self.epoch, self.step, self.loss, self.checkpoint = epoch, step, loss, checkpoint
        self.removed = None         # the run folder, when it held nothing and was removed

    def __str__(self):
        kept = (f"the last good checkpoint is kept: {self.checkpoint}" if self.checkpoint
                else f"nothing was saved: the run folder {self.removed} is removed"
                if self.removed else "no checkpoint was written yet")
        where = (f"epoch {self.epoch}, step {self.step}" if self.step is not None
                 else f"the validation after epoch {self.epoch}")
        return (f"loss is {self.loss} at {where}: training diverged (try a smaller learning "
                f"rate); this epoch is not saved, and {kept}")


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
        """Strict JSON: a non-finite number (which the Trainer never records) becomes null
        rather than the bare NaN / Infinity that JSON parsers other than Python's reject."""
        records = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in r.items()} for r in self.records]
        return json.dumps({"records": records}, indent=1, allow_nan=False)

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


def restore_dropout_rngs(model, states, where=""):
    """Put the saved generator states {layer name: state} back into the model's dropout layers;
    ValueError (prefixed by ``where``) unless they name exactly the model's."""
    rngs = dropout_rngs(model)
    if set(rngs) != set(states):
        raise ValueError(f"{where}the checkpoint's dropout layers {sorted(states)} are not the "
                         f"model's {sorted(rngs)}")
    for name, state in states.items():
        rngs[name].bit_generator.state = state


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
            if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
                npz.fail(f"its meta entry has no {key!r} of the right type")
        if meta["epoch"] < 0 or meta["batch_size"] < 1:
            npz.fail(f"its meta entry has epoch {meta['epoch']} and batch_size "
                     f"{meta['batch_size']} (want >= 0 and >= 1)")
        if not all(isinstance(record, dict) for record in meta["history"]):
            npz.fail("its meta entry 'history' is not a list of epoch records")
        if meta.get("kind") != "localisation":      # the Trainer's (localise/run.py checks its own)
            for entry, ok in (
                    ("settings", isinstance(meta.get("settings"), (dict, type(None)))),
                    ("history", all(_is_real(r.get("val_top1")) for r in meta["history"]))):
                if not ok:
                    npz.fail(f"its meta entry {entry!r} is not what the Trainer writes")
        if npz.shapes.get("mean") != (3,):
            npz.fail("it has no (3,) 'mean' entry (the training mean RGB)")
        arrays = {key: npz.array(key) for key in npz.shapes if key != "meta"}
    return arrays, meta


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@contextlib.contextmanager
def _restoring(path, entry):
    """Restore the state held in the checkpoint meta's ``entry``: the meta is JSON a person can
    edit, so whatever the restoring code cannot use (a missing key, a wrong type or value) is the
    file's fault, a CorruptFileError naming it rather than a KeyError from deep inside."""
    try:
        yield
    except CorruptFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        why = f"has no {error}" if isinstance(error, KeyError) else f"is unusable: {error}"
        raise CorruptFileError(f"corrupted checkpoint: {path}: its meta entry {entry!r} "
                               f"{why}") from None


def _prefixed(arrays, prefix):
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


def refuse_localisation_run(path, meta, advice):
    """Where a classification run is wanted: a ValueError if the checkpoint ``path`` (its
    ``meta``) is a localisation run (``minivgg localise`` made it), "PATH is a localisation run,
    fine-tuned from SOURCE; ADVICE", ``advice`` being what the caller's user can do instead."""
    if meta.get("kind") == "localisation":
        raise ValueError(f"{path} is a localisation run, fine-tuned from {meta.get('source')}; "
                         f"{advice}")


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

    model:      a VGG from ``build_vgg`` / ``Recipe.build`` (or any Sequential with ``config``
                for checkpoints); its input side is the crop size
    train_set, val_set: ImageDatasets of uint8 (N, H, W, 3) images (or lists of mixed sizes)
    recipe:     the hyper-parameters (:class:`minivgg.recipe.Recipe`, default ``RECIPE``, the
                CLI's): batch size, SGD (lr, momentum, weight decay), warm-up, schedule,
                augmentation (scale S, flips, PCA colour shift); ``**changes`` replace some of
                its training fields, e.g. ``batch_size=16, scale=None`` (stored in the checkpoint)
    optimizer:  default ``recipe.optimizer(model)``: SGD(lr 1e-2, momentum 0.9, wd 5e-4)
    schedule:   default ``recipe.lr_schedule(optimizer, chance)``: lr / 10 after ``patience``
                epochs without a better validation accuracy, at most 3 times, counted once the
                net has left chance (the validation set's ``chance_threshold``, twice in a row);
                or a ``StepSchedule``
    run_dir:    folder for ``checkpoint.npz`` (last epoch), ``best.npz`` (best validation top-1)
                and ``history.json`` (None: keep nothing). A folder that already holds a run is
                refused unless ``overwrite=True`` (continue one with ``Trainer.resume``)
    seed:       seeds the generator of shuffling and augmentation
    progress:   show the progress bar (stderr); ``log`` prints the per-epoch lines (stdout)
    settings:   any JSON-able dict stored in the checkpoint (the CLI keeps its data options there)
    """

    def __init__(self, model, train_set, val_set, *, recipe=RECIPE, optimizer=None,
                 schedule=None, run_dir=None, overwrite=False, seed=0, progress=True, log=print,
                 settings=None, **changes):
        for data, name in ((train_set, "train_set"), (val_set, "val_set")):
            if not isinstance(data, ImageDataset) or len(data) == 0:
                raise ValueError(f"{name} must be a non-empty ImageDataset; got "
                                 f"{type(data).__name__} of length {len(data)}")
        if len(train_set.classes) < 2:           # every answer right: a 0% error that means nothing
            raise ValueError(f"train_set has {len(train_set.classes)} class "
                             f"{list(train_set.classes)}: a classifier needs 2 or more")
        if not isinstance(recipe, Recipe):
            raise ValueError(f"recipe must be a minivgg.recipe.Recipe; got {type(recipe).__name__}")
        unknown = sorted(set(changes) - set(TRAINING_FIELDS))
        if unknown:
            raise TypeError(f"Trainer got an unexpected keyword argument {unknown[0]!r} (the "
                            f"recipe's training fields are {', '.join(TRAINING_FIELDS)})")
        crop = model.input_shape[-1]
        self.recipe = recipe.replace(**changes, input_size=crop)
        _check_standardised(model, self.recipe)
        self.model, self.train_set, self.val_set = model, train_set, val_set
        self.optimizer = self.recipe.optimizer(model) if optimizer is None else optimizer
        chance = chance_threshold(len(val_set.classes), len(val_set))
        self.schedule = (self.recipe.lr_schedule(self.optimizer, chance) if schedule is None
                         else schedule)
        self.batch_size = self.recipe.batch_size
        self.augment = {"scale": self.recipe.train_scale(), "flip": self.recipe.flip,
                        "colour_shift": self.recipe.colour_shift}
        # The paper's only preprocessing, from the training set alone (Sec. 2.1); the colour
        # shift's principal components likewise.
        self.mean = mean_rgb(train_set)
        self.pca = rgb_pca(train_set) if self.recipe.colour_shift > 0 else None
        self.rng = np.random.default_rng(_seed(seed))
        self.run_dir = None if run_dir is None else os.fspath(run_dir)
        self.progress, self.log = progress, log
        self.settings = dict(settings or {})
        try:                            # checked now, not in the first checkpoint, an epoch later
            json.dumps(self.settings, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"settings must be a dict of JSON values (str, int, float, list, "
                             f"dict, None): {error}") from None
        self.epoch = 0
        self.history = History()
        self.on_step = None          # called as on_step(trainer, loss) after each SGD step
        self._build_transform()                 # checks the augmentation before any folder is made
        self._made_run_dir = None               # the folders made for run_dir (its outermost)
        if self.run_dir is not None:
            self._made_run_dir = outermost_missing(self.run_dir)
            prepare_run_dir(self.run_dir, overwrite=overwrite)

    def _build_transform(self):
        self.transform = TrainTransform(self.model.input_shape[-1], mean=self.mean,
                                        pca=self.pca, **self.augment)

    @property
    def checkpoint_path(self):
        return None if self.run_dir is None else os.path.join(self.run_dir, CHECKPOINT)

    # -- one epoch ---------------------------------------------------------------------------

    def _warmup(self, step, steps):
        """The learning rate's factor at ``step`` of this epoch: rising linearly to 1 over the
        first ``warmup_epochs`` epochs of steps, then 1."""
        ramp = math.ceil(self.recipe.warmup_epochs * steps)
        done = self.epoch * steps + step + 1
        return 1.0 if done >= ramp else done / ramp

    # Data-parallel hooks (minivgg.distributed.DistributedTrainer overrides both): the inputs of
    # this process's share of a batch, and the batch's statistics over all processes (where the
    # gradients are averaged too).

    def _batch(self, idx):
        """(inputs, labels) of the training images ``idx``, augmented."""
        x = self.transform(_take(self.train_set.images, idx), self.rng)
        return x.astype(self.model.dtype, copy=False), self.train_set.labels[idx]

    def _combine(self, stats):
        """The batch's {"loss", "top1"...}: here, this process's own."""
        return stats

    def train_epoch(self):
        """One pass over the shuffled training set; returns {"loss", "top1"[, "top5"],
        "images_per_s"} averaged over the epoch (with dropout and augmentation on)."""
        model, data = self.model.train(), self.train_set
        order = self.rng.permutation(len(data))
        steps = math.ceil(len(order) / self.batch_size)
        bar = Progress(steps, f"epoch {self.epoch + 1}", enabled=self.progress)
        totals, seen, start = {}, 0, time.perf_counter()
        lr = self.optimizer.lr
        try:
            for step in range(steps):
                idx = order[step * self.batch_size:(step + 1) * self.batch_size]
                x, labels = self._batch(idx)
                loss, logits = model.loss(x, labels)
                stats = self._combine({"loss": loss, **error_rates(logits, labels)})
                loss = stats["loss"]
                if not np.isfinite(loss):
                    raise NonFiniteLossError(self.epoch + 1, step + 1, loss,
                                             self._existing_checkpoint())
                self.optimizer.lr = lr * self._warmup(step, steps)
                self.optimizer.step()
                if self.on_step is not None:
                    self.on_step(self, loss)
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value * len(idx)
                seen += len(idx)
                bar.update(step + 1, f"loss {totals['loss'] / seen:.3f}")
        finally:
            self.optimizer.lr = lr              # the schedule's rate, whatever the warm-up did
            bar.close()
        result = {key: value / seen for key, value in totals.items()}
        result["images_per_s"] = seen / (time.perf_counter() - start)
        return result

    def validate(self):
        """Centre crops of the validation set, dropout off: the images rescaled to Q = S (fixed
        S) or (Smin + Smax) / 2 (jittered S), as the trainer's quick check of progress (the
        paper's single-scale test, Sec. 4.1, used dense evaluation instead: ``minivgg.evaluate``).
        {"loss", "top1"[, "top5"]}; a non-finite score is an error, never a correct answer."""
        scale = self.augment["scale"]
        probs = posteriors(self.model, self.val_set.images, mean=self.mean, method="center",
                           scales=None if scale is None else paper_scales(scale),
                           batch_size=max(self.batch_size, 64))
        labels = self.val_set.labels
        loss = -np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-300)))
        return {"loss": float(loss), **error_rates(probs, labels)}

    def fit(self, epochs=None):
        """Train until ``epochs`` epochs are done in total (default: the recipe's; a resumed run
        continues counting). Returns the History. Raises NonFiniteLossError if the training or
        the validation loss is not finite: that epoch is then not saved.

        While it runs, the run folder is locked (``.lock``): a second Trainer on the same folder,
        in this process or another, is refused rather than interleaving its checkpoints. A first
        epoch that fails leaves no folder this Trainer made (``remove_unused_run_dir``); calling
        fit again makes it again.
        """
        epochs = self.recipe.epochs if epochs is None else epochs
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ValueError(f"epochs must be an int >= 0; got {epochs!r}")
        epochs = int(epochs)
        if self.run_dir is not None and not os.path.isdir(self.run_dir):
            # removed after a first epoch that failed (interrupted, say): made again
            self._made_run_dir = outermost_missing(self.run_dir)
            prepare_run_dir(self.run_dir)
        with RunLock(self.run_dir):
            try:
                while self.epoch < epochs:
                    self._one_epoch(epochs)
            except BaseException as error:
                if remove_unused_run_dir(self.run_dir, self._made_run_dir):
                    error.removed = self.run_dir     # its message (NonFiniteLossError, the CLI's
                raise                                # Ctrl-C) says so
        return self.history

    def _one_epoch(self, epochs):
        start, lr = time.perf_counter(), self.optimizer.lr
        train = self.train_epoch()
        val = self.validate()
        if not np.isfinite(val["loss"]):
            raise NonFiniteLossError(self.epoch + 1, None, val["loss"],
                                     self._existing_checkpoint())
        self.epoch += 1
        record = {"epoch": self.epoch, "lr": lr,
                  **{f"train_{k}": v for k, v in train.items() if k != "images_per_s"},
                  **{f"val_{k}": v for k, v in val.items()},
                  "images_per_s": train["images_per_s"],
                  "seconds": time.perf_counter() - start}
        self.schedule.step(1.0 - val["top1"])
        best = min(self.history["val_top1"], default=math.inf)
        self.history.append(record)
        if self.run_dir is not None:
            self.save(best=val["top1"] < best)
        if self.log:
            self.log(format_record(record, epochs))

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
                "recipe": self.recipe.to_dict(),
                "optimizer": optimizer, "schedule": self.schedule.state_dict(),
                "batch_size": self.batch_size, "augment": self.augment,
                "rng": self.rng.bit_generator.state,
                "dropout_rngs": {k: g.bit_generator.state
                                 for k, g in dropout_rngs(self.model).items()},
                "history": self.history.records, "settings": self.settings,
                "frozen": sorted(getattr(self.model, "frozen", ()))}
        return arrays, meta

    def save(self, best=False):
        """Write ``best.npz`` (when ``best``: this epoch has the lowest validation error so far;
        the weights, mean and meta, no momentum), ``checkpoint.npz`` and ``history.json`` into
        ``run_dir``, each atomically, in that order: after a kill between two writes a resume
        redoes the epoch bit-identically and ``history.json`` is rewritten from the checkpoint,
        which is what counts."""
        if self.run_dir is None:
            raise ValueError("save: this Trainer has no run_dir")
        arrays, meta = self.state()
        if best:
            save_checkpoint(os.path.join(self.run_dir, BEST),
                            {k: v for k, v in arrays.items() if not k.startswith("velocity/")},
                            meta)
        save_checkpoint(self.checkpoint_path, arrays, meta)
        self.history.save(os.path.join(self.run_dir, HISTORY))

    @classmethod
    def resume(cls, run_dir, train_set, val_set, *, model=None, progress=True, log=print):
        """A Trainer in the state the checkpoint in ``run_dir`` was saved in: weights, momentum,
        learning rate and schedule, generators, epoch counter, history, mean RGB, recipe. The
        datasets must be the ones the run was started with (the CLI makes them again from
        ``settings``). ``model`` is needed only when the checkpoint has no build config.
        ``history.json`` is rewritten from the checkpoint, which a kill can have left ahead of it.
        """
        path = os.path.join(run_dir, CHECKPOINT) if os.path.isdir(run_dir) else run_dir
        if model is None:
            model, arrays, meta = model_from_checkpoint(run_dir)
        else:
            arrays, meta = load_checkpoint(run_dir)
            model.set_params(_prefixed(arrays, "param/"))
        refuse_localisation_run(path, meta, "continue it with "
                                "minivgg.localise.run.resume_localisation")
        with _restoring(path, "frozen"):             # a fine-tuning run stays one when resumed
            model.freeze(meta.get("frozen", ()))
        optimizer = SGD(model)
        with _restoring(path, "optimizer"):
            optimizer.load_state_dict({**meta["optimizer"],
                                       "velocity": _prefixed(arrays, "velocity/")})
        with _restoring(path, "recipe"):
            recipe = stored_recipe(meta)
        with _restoring(path, "schedule"):
            schedule = schedule_from_state(optimizer, meta["schedule"])
        trainer = cls(model, train_set, val_set, recipe=recipe, optimizer=optimizer,
                      schedule=schedule, run_dir=run_dir, overwrite=True, progress=progress,
                      log=log, settings=meta.get("settings"))
        trainer.mean = arrays["mean"]               # the stored one, not recomputed
        trainer.pca = ((arrays["pca_eigvals"], arrays["pca_eigvecs"])
                       if "pca_eigvals" in arrays else None)
        with _restoring(path, "pca_eigvals"):
            trainer._build_transform()
        with _restoring(path, "rng"):
            trainer.rng.bit_generator.state = meta["rng"]
        with _restoring(path, "dropout_rngs"):
            restore_dropout_rngs(model, meta["dropout_rngs"])
        trainer.epoch = meta["epoch"]
        trainer.history = History(meta["history"])
        if trainer.run_dir is not None:             # None: a data-parallel rank other than 0
            with RunLock(trainer.run_dir):
                trainer.history.save(os.path.join(trainer.run_dir, HISTORY))
        return trainer


def _check_standardised(model, recipe):
    """A recipe that standardises needs a model that does: He's init on raw 0..255 pixels gives
    a first loss of ~9 nats and diverges within a few steps at lr 1e-2 (docs/TRAINING.md)."""
    first = next(iter(model.layers.values()), None)
    if recipe.standardise and not isinstance(first, Standardise):
        raise ValueError("the recipe standardises the input but the model has no Standardise "
                         "layer first: build it with recipe.build(train_set) or "
                         "build_vgg(..., input_std=pixel_std(train_set)), or train on raw "
                         "pixels knowingly with standardise=False (then init='paper' or a "
                         "smaller lr)")


def stored_recipe(meta):
    """The Recipe a checkpoint was trained with. Checkpoints from before recipes existed stored
    the batch size and augmentation on their own: those are read into the default recipe."""
    if "recipe" in meta:
        return Recipe.from_dict(meta["recipe"])
    augment = dict(meta["augment"])
    if isinstance(augment["scale"], list):
        augment["scale"] = tuple(augment["scale"])
    standardise = (meta.get("model_config") or {}).get("input_std") is not None
    return RECIPE.replace(batch_size=meta["batch_size"], standardise=standardise,
                          warmup_epochs=0.0, **augment)


def _seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}")
    return int(seed)


def prepare_run_dir(run_dir, overwrite=False):
    """Make ``run_dir`` (and its parents) and check that files can be written in it, before any
    training time is spent; refuse a folder that already holds a run unless ``overwrite``.
    Raises RunDirError naming the folder."""
    if os.path.exists(os.path.join(run_dir, CHECKPOINT)) and not overwrite:
        raise RunDirError(f"{run_dir} already holds a run ({CHECKPOINT}); continue it with "
                          f"--resume / Trainer.resume, or pass --overwrite / overwrite=True to "
                          f"replace it")
    try:
        os.makedirs(run_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as error:
        raise RunDirError(f"cannot write to run folder {run_dir}: {error.strerror or error}") \
            from None
    remove_orphans(run_dir)


def outermost_missing(path):
    """The outermost of ``path`` and its parents that does not exist (what ``os.makedirs(path)``
    would make, and :func:`remove_unused_run_dir` may remove), or None if ``path`` exists."""
    missing, path = None, os.path.abspath(path)
    while not os.path.lexists(path):
        missing, path = path, os.path.dirname(path)
    return missing


def remove_unused_run_dir(run_dir, made):
    """After a failed first epoch (diverged, interrupted), leave no litter: a run folder that
    holds nothing but a lock loses it, and is removed with the empty parents the caller made for
    it if the caller ``made`` it (``made``: the outermost folder made, ``outermost_missing``
    before making it; a folder the user made stays). A folder with anything else in it is never
    touched. Whether the run folder was removed."""
    if run_dir is None or not os.path.isdir(run_dir) or set(os.listdir(run_dir)) - {LOCK}:
        return False
    if os.path.exists(os.path.join(run_dir, LOCK)):
        os.remove(os.path.join(run_dir, LOCK))
    if not made:
        return False
    folder = os.path.abspath(run_dir)
    try:
        os.rmdir(folder)
        while folder.startswith(made + os.sep):  # the parents made for it, each only if empty
            folder = os.path.dirname(folder)
            os.rmdir(folder)
    except OSError:                             # a file appeared meanwhile (another run): kept
        return not os.path.exists(run_dir)
    return True


def remove_orphans(run_dir):
    """Delete the temporary files a killed ``atomic_write`` left behind (".<name>.*.tmp"); only
    called while no other Trainer can be writing into the folder."""
    with RunLock(run_dir):
        for entry in os.scandir(run_dir):
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
                os.remove(entry.path)


class RunDirError(OSError):
    """A run folder that cannot be used: it already holds a run, cannot be made or written, or
    another process is training in it."""


class RunLock:
    """An exclusive lock on a run folder (``fcntl.flock`` on ``run_dir/.lock``) for a ``with``
    block; re-entrant within this process (a Trainer's save inside its fit), refused
    (RunDirError) while another process holds it. ``run_dir=None`` locks nothing.
    The lock dies with its process, so a killed run never leaves a folder locked."""

    _held = {}                                   # real path -> (file, depth), in this process

    def __init__(self, run_dir):
        self.path = None if run_dir is None else os.path.realpath(run_dir)

    def __enter__(self):
        if self.path is None:
            return self
        if self.path in RunLock._held:
            file, depth = RunLock._held[self.path]
            RunLock._held[self.path] = (file, depth + 1)
            return self
        file = open(os.path.join(self.path, LOCK), "a+")
        try:
            _flock(file)
        except BlockingIOError:
            file.close()
            raise RunDirError(f"run folder {self.path} is in use by another training process "
                              f"(it holds {LOCK}); wait for it to finish") from None
        RunLock._held[self.path] = (file, 1)
        return self

    def __exit__(self, *exc):
        if self.path is None:
            return
        file, depth = RunLock._held[self.path]
        if depth > 1:
            RunLock._held[self.path] = (file, depth - 1)
        else:
            del RunLock._held[self.path]
            file.close()                         # closing releases the flock


def _flock(file):
    try:
        import fcntl
    except ImportError:                          # Windows: no advisory locks, no check
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


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
