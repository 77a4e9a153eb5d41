"""What the commands share: argument types, the user-error exception, run folders and data."""

import argparse
import math
import os

from ..configs import ALIASES, CONFIGS


class FORMATTER(argparse.ArgumentDefaultsHelpFormatter):
    """Every command's help shows the defaults. A switch (--no-flip, --flip) would show its
    stored value, "(default: True)" beside an option that turns something off: it says
    "(default: not given)" instead, unless its help already says its default in words; so does
    an option whose help already states the recipe's value."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default:" in text:
            return text
        if action.nargs == 0:
            return f"{text} (default: not given)"
        return super()._get_help_string(action)


# What a run needs to make its data again, stored in the checkpoint so --resume and evaluate
# rebuild the same images: the built-in data's sizes and seed, or the folder and its split.
DATA_KEYS = ("data", "val_fraction", "train_size", "val_size", "image_size", "data_seed",
             "layout")


class CommandError(Exception):
    """A user error found after parsing (a missing run folder...): printed without a traceback."""


def _number(kind, test, wanted):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not test(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}; got {text!r}")
        return value
    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0, "a finite positive number")
nonnegative_float = _number(float, lambda v: v >= 0, "a finite number >= 0")
fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
open_fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
seconds = _number(float, lambda v: 0 < v <= 7 * 86400, "a number of seconds in (0, 604800]")


def scale(text):
    """'auto', 'none', 'S' or 'Smin,Smax' -> "auto", None, int or (int, int)."""
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1 or parts[0] > parts[-1]:
        raise argparse.ArgumentTypeError(f"expected auto, none, S or Smin,Smax; got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def config(text):
    """A configuration name, any case or alias ("a", "vgg16")."""
    from ..configs import config_name
    try:
        return config_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


CONFIG_NAMES = f"{', '.join(CONFIGS)} (or {', '.join(ALIASES)})"


def synthetic_data(settings):
    """(train, val) of a run: the built-in shapes, or the set its "dataset" names (reproduce)."""
    from ..data.synthetic import dataset_splits
    options = {k: settings[k] for k in ("layout", "colours") if settings.get(k)}  # shapes only
    return dataset_splits(settings.get("dataset", "shapes"),
                          (settings["train_size"], settings["val_size"]),
                          size=settings["image_size"], seed=settings["data_seed"], **options)


def run_data(settings, data=None):
    """(train, val) of a run: from ``data`` (a path) if given, else the settings' own data
    folder, else the built-in shapes its settings describe. A run made from Python records
    none of these: then ``data`` is needed (CommandError)."""
    from ..data.split import load_splits
    where = "--data" if data is not None else "the run's data folder"
    data = data if data is not None else settings.get("data")
    sizes = ("train_size", "val_size", "image_size")
    try:
        if data is not None:
            return load_splits(data, settings.get("val_fraction", 0.1),
                               settings.get("data_seed", 0))
        if all(key in settings for key in sizes):
            where = "the built-in shapes (" + " ".join(
                f"--{key.replace('_', '-')} {settings[key]}" for key in sizes) + ")"
            return synthetic_data({"data_seed": 0, **settings})
    except (OSError, ValueError, TypeError) as error:  # TypeError: a hand-edited checkpoint
        raise CommandError(f"{where}: {error}") from None
    raise CommandError("this run records no data (it was made from Python, not by 'minivgg "
                       "train'): pass --data PATH, the images it was trained on")


def check_run_dir(path, checkpoint=None):
    """``path`` if it is a run folder holding ``checkpoint`` (default: checkpoint.npz)."""
    from ..train import CHECKPOINT
    checkpoint = checkpoint or CHECKPOINT
    if os.path.isfile(path):                # RUN/best.npz: said "does not exist"
        raise CommandError(f"{path!r} is a file: give the run folder that holds it (--checkpoint "
                           f"best|last chooses its file, where the command has the option)")
    if not os.path.isdir(path):
        raise CommandError(f"run folder {path!r} does not exist")
    if not os.path.isfile(os.path.join(path, checkpoint)):
        raise CommandError(f"{path!r} has no {checkpoint}: not a run folder written by "
                           f"'minivgg train' or the Trainer, or its first epoch never finished")
    return path


def add_checkpoint_option(parser, default, why):
    """``--checkpoint best|last``: which file of a run folder a command reads (``why``: what
    the default is for, said in the help)."""
    parser.add_argument("--checkpoint", choices=("best", "last"), default=default,
                        help=f"best.npz (the epoch of lowest validation error, what 'minivgg "
                             f"evaluate' scores) or checkpoint.npz (the last epoch); {why}")


def run_checkpoint(run_dir, which):
    """The file of ``run_dir`` that ``--checkpoint which`` names, checked to be there:
    best.npz ("best"; checkpoint.npz in a run from before best.npz existed) or checkpoint.npz
    ("last")."""
    from ..train import BEST, CHECKPOINT
    name = BEST if which == "best" else CHECKPOINT
    if which == "best" and os.path.isdir(run_dir) and not os.path.isfile(
            os.path.join(run_dir, BEST)):
        name = CHECKPOINT
    return os.path.join(check_run_dir(run_dir, name), name)


def load_run(run_dir, which, advice):
    """(model, arrays, meta) of the classification run's file of ``run_dir`` that
    ``--checkpoint which`` names (``run_checkpoint``); meta["file"] is its name, for the command
    to say which it read. A localisation run is refused with ``advice``."""
    from ..train import model_from_checkpoint, refuse_localisation_run
    path = run_checkpoint(run_dir, which)
    try:
        model, arrays, meta = model_from_checkpoint(path)
        refuse_localisation_run(run_dir, meta, advice)
    except ValueError as error:
        raise CommandError(str(error)) from None
    return model, arrays, {**meta, "file": os.path.basename(path)}


def new_figure(option, path):
    """The format ("png", "pdf" or "svg") of a figure the user asked to be written to ``path``;
    CommandError naming ``option`` if the file exists (never overwritten), its folder does not,
    or its name has another ending: checked before the work that makes the figure."""
    if os.path.exists(path):
        raise CommandError(f"{option} {path!r} exists; choose another name or remove it")
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in ("png", "pdf", "svg"):
        raise CommandError(f"{option} {path!r}: the name must end .png, .pdf or .svg")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"{option}: folder {folder} does not exist")
    return extension


def save_figure(figure, path, extension, dpi=100):
    """Write a matplotlib figure atomically (``train.atomic_write``) and close it."""
    import matplotlib.pyplot as plt

    from ..train import atomic_write
    try:
        atomic_write(path, lambda f: figure.savefig(f, format=extension, dpi=dpi))
    finally:
        plt.close(figure)
