"""What the commands share: argument types, the user-error exception, run folders and data."""

import argparse
import os

from ..configs import ALIASES, CONFIGS

# Every command's help shows the defaults.
FORMATTER = argparse.ArgumentDefaultsHelpFormatter

# What a run needs to make its data again, stored in the checkpoint so --resume and evaluate
# rebuild the same images.
DATA_KEYS = ("train_size", "val_size", "image_size", "data_seed")


class CommandError(Exception):
    """A user error found after parsing (a missing run folder...): printed without a traceback."""


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def scale(text):
    """'none', 'S' or 'Smin,Smax' -> None, int or (int, int)."""
    if text.lower() == "none":
        return None
    parts = [int(p) for p in text.split(",")]
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected none, S or Smin,Smax; got {text}")
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
    return dataset_splits(settings.get("dataset", "shapes"),
                          (settings["train_size"], settings["val_size"]),
                          size=settings["image_size"], seed=settings["data_seed"])


def check_run_dir(path):
    from ..train import CHECKPOINT
    if not os.path.isdir(path):
        raise CommandError(f"run folder {path!r} does not exist")
    if not os.path.isfile(os.path.join(path, CHECKPOINT)):
        raise CommandError(f"{path!r} has no {CHECKPOINT}: not a run folder written by "
                           f"'minivgg train', or its first epoch never finished")
    return path


