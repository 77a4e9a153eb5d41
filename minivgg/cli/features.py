"""``minivgg features RUN --data PATH --out feats.npz``: the paper's Appendix B descriptors of a
folder of images, from a trained classification run."""

import os

import numpy as np

from .common import (
    FORMATTER,
    CommandError,
    add_checkpoint_option,
    check_run_dir,
    load_run,
    positive_int,
)


def add_parser(commands):
    features = commands.add_parser(
        "features", formatter_class=FORMATTER,
        help="image descriptors from a trained run (Appendix B)",
        description="fc7 after ReLU of the run's net applied densely to each image, averaged "
                    "over positions, the horizontal flip and the scales Q (or stacked over "
                    "scales), L2-normalised; saved with the labels for a linear classifier "
                    "(minivgg.features.LinearClassifier).")
    features.add_argument("run_dir", metavar="RUN", help="a run folder written by train")
    features.add_argument("--data", required=True, metavar="PATH",
                          help="an image folder, one sub-folder per class")
    features.add_argument("--out", required=True, metavar="NPZ",
                          help="file to write: features (N, D), labels (N,), classes")
    features.add_argument("--scales", type=positive_int, nargs="*", default=None,
                          help="test scales Q (shorter side); unset: the images as they are")
    features.add_argument("--aggregate", choices=("average", "stack"), default="average",
                          help="how the scales are combined")
    features.add_argument("--no-flip", dest="flip", action="store_false",
                          help="leave out the horizontal flip")
    add_checkpoint_option(features, "best", "the default is the model evaluate scores")
    features.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    features.set_defaults(run=cmd_features)


def cmd_features(args):
    from ..data import load_image_folder
    from ..features import extract_features
    from ..train import atomic_write

    run_dir = check_run_dir(args.run_dir)
    if os.path.exists(args.out) and not args.force:
        raise CommandError(f"{args.out} exists; pass --force to overwrite it")
    folder = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out) or not os.path.isdir(folder):     # before the work, not after
        why = "is a folder" if os.path.isdir(args.out) else f"its folder {folder} does not exist"
        raise CommandError(f"--out {args.out}: {why}; give the name of a file to write (.npz)")
    model, arrays, meta = load_run(run_dir, args.checkpoint,
                                   "features come from a classification run: give that one")
    try:
        data = load_image_folder(args.data)
        feats = extract_features(model, data.images, mean=arrays["mean"], scales=args.scales,
                                 flip=args.flip, aggregate=args.aggregate)
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(str(error)) from None
    try:
        atomic_write(args.out, lambda f: np.savez(f, features=feats, labels=data.labels,
                                                  classes=np.array(data.classes)))
    except OSError as error:                 # disk full, a read-only folder: nothing is left
        raise CommandError(f"--out {args.out}: cannot write it: {error}") from None
    print(f"{args.out}: {feats.shape[0]} images x {feats.shape[1]} features "
          f"({len(data.classes)} classes), from {os.path.join(run_dir, meta['file'])} "
          f"(epoch {meta['epoch']})")
    return 0
