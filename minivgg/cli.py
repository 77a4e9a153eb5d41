"""The command line: ``minivgg train``, ``minivgg evaluate RUN_DIR``, ``minivgg summary D``.

    minivgg train                      # a small VGG on the built-in shapes, a few minutes
    minivgg train --resume runs/A-20260101-120000 --epochs 30
    minivgg evaluate runs/A-20260101-120000 --method dense+multicrop --flip
    minivgg summary D --input 224      # the per-layer arithmetic of VGG-16

The commands are thin: they parse options, make the data and call minivgg.train, .evaluate,
.arithmetic (through ``model.summary()``) and .viz. ``minivgg <command> --help`` lists every
option with its default.
"""

import argparse
import os
import sys
import time

from .assignment import add_subcommands as add_assignment_commands
from .configs import ALIASES, CONFIGS

DEFAULT_EPOCHS = 8

# What a run needs to make its data again, stored in the checkpoint so --resume and evaluate
# rebuild the same images.
DATA_KEYS = ("train_size", "val_size", "image_size", "data_seed")


class CommandError(Exception):
    """A user error found after parsing (a missing run folder...): printed without a traceback."""


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def _scale(text):
    """'none', 'S' or 'Smin,Smax' -> None, int or (int, int)."""
    if text.lower() == "none":
        return None
    parts = [int(p) for p in text.split(",")]
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected none, S or Smin,Smax; got {text}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def _config(text):
    """A configuration name, any case or alias ("a", "vgg16")."""
    from .configs import config_name
    try:
        return config_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


CONFIG_NAMES = f"{', '.join(CONFIGS)} (or {', '.join(ALIASES)})"


def build_parser():
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="minivgg", formatter_class=formatter,
        description="VGG (Simonyan & Zisserman, ICLR 2015) from scratch: train, evaluate, "
                    "summarise.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", formatter_class=formatter,
        help="train a VGG on the built-in synthetic shapes",
        description="Train with the paper's recipe (Sec. 3.1) at small scale: SGD, momentum, "
                    "weight decay, dropout, lr / 10 on plateau, random crops, flips and colour "
                    "shift. Writes checkpoint.npz, history.json and curves.png into "
                    "the run folder.")
    model = train.add_argument_group("model")
    model.add_argument("--config", type=_config, default="A", help=f"VGG configuration: "
                       f"{CONFIG_NAMES}")
    model.add_argument("--width", type=_positive_float, default=0.25,
                       help="multiplier of every conv layer's channels (1 = the paper's 64..512)")
    model.add_argument("--fc-width", type=_positive_int, default=256,
                       help="channels of fc6 and fc7 (the paper: 4096)")
    model.add_argument("--input", type=_positive_int, default=32,
                       help="network input side = crop size, pixels (the paper: 224)")
    model.add_argument("--dropout", type=float, default=0.5, help="drop probability of fc6, fc7")
    model.add_argument("--init", choices=("glorot", "he", "paper"), default="he",
                       help="weight initialisation (minivgg.vgg.init_std)")
    model.add_argument("--no-standardise", dest="standardise", action="store_false",
                       help="feed the mean-subtracted pixels as they are, as the paper does, "
                            "instead of dividing them by the training pixels' std "
                            "(minivgg.layers.Standardise)")
    model.add_argument("--seed", type=int, default=0,
                       help="seeds the weights, dropout, shuffling and augmentation")
    data = train.add_argument_group("data (built-in synthetic shapes, 10 classes)")
    data.add_argument("--train-size", type=_positive_int, default=10000, help="training images")
    data.add_argument("--val-size", type=_positive_int, default=1000, help="validation images")
    data.add_argument("--image-size", type=_positive_int, default=36,
                      help="side of the generated images, pixels (>= --input; crops come from it)")
    data.add_argument("--data-seed", type=int, default=0, help="seed of the generated images")
    data.add_argument("--scale", type=_scale, default=None,
                      help="training scale: none (keep the images' size), S, or Smin,Smax "
                           "(scale jittering)")
    data.add_argument("--no-flip", dest="flip", action="store_false",
                      help="turn off random horizontal flips")
    data.add_argument("--colour-shift", type=float, default=0.1,
                      help="std of the PCA colour shift's alpha (0 = off)")
    optim = train.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=_positive_int, default=None,
                       help=f"epochs in total; unset: {DEFAULT_EPOCHS} for a new run, the run's "
                            f"own target with --resume")
    optim.add_argument("--batch-size", type=_positive_int, default=32, help="images per step")
    optim.add_argument("--lr", type=_positive_float, default=0.01, help="initial learning rate")
    optim.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    optim.add_argument("--weight-decay", type=float, default=5e-4, help="L2 multiplier on weights")
    optim.add_argument("--schedule", choices=("plateau", "step"), default="plateau",
                       help="plateau: lr / 10 when val accuracy stalls; step: at --milestones")
    optim.add_argument("--patience", type=_positive_int, default=1,
                       help="plateau: epochs without improvement before lr / 10")
    optim.add_argument("--max-reductions", type=int, default=3,
                       help="plateau: most lr cuts (the paper: 3)")
    optim.add_argument("--milestones", type=_positive_int, nargs="*", default=[8, 11],
                       help="step: epochs after which lr / 10")
    run = train.add_argument_group("run")
    run.add_argument("--runs-dir", default="runs",
                     help="where new run folders <config>-<time> are made")
    run.add_argument("--run-dir", default=None, help="use this run folder instead")
    run.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue the run in RUN_DIR from its last checkpoint, with its "
                          "options (only --epochs and the display options apply)")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar (the per-epoch lines stay)")
    run.add_argument("--no-plot", dest="plot", action="store_false",
                     help="do not write curves.png (needs matplotlib)")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", formatter_class=formatter, help="evaluate a run's checkpoint",
        description="Top-1/top-5 error of a trained run on its validation set, with the "
                    "paper's test methods (Sec. 3.2, 4).")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    evaluate.add_argument("--method", nargs="+", default=["center"],
                          help="center, dense, multicrop, or a '+' combination such as "
                               "dense+multicrop; several may be given")
    evaluate.add_argument("--scales", type=_positive_int, nargs="*", default=None,
                          help="test scales Q (shorter side, pixels); unset: the images as "
                               "they are")
    evaluate.add_argument("--flip", action="store_true",
                          help="also evaluate horizontal flips and average")
    evaluate.add_argument("--grid", type=_positive_int, default=5,
                          help="multicrop: grid x grid crops per scale")
    evaluate.add_argument("--batch-size", type=_positive_int, default=64,
                          help="network inputs per forward pass")
    evaluate.add_argument("--confusion", metavar="PNG", default=None,
                          help="also save the centre-crop confusion matrix to this file")
    evaluate.set_defaults(run=cmd_evaluate)

    summary = commands.add_parser(
        "summary", formatter_class=formatter, help="per-layer arithmetic of a configuration",
        description="Output shape, parameters, multiply-adds, activation memory and receptive "
                    "field of every layer (nothing is trained or run).")
    summary.add_argument("config", type=_config, metavar="CONFIG", help=CONFIG_NAMES)
    summary.add_argument("--input", type=_positive_int, default=224, help="input side, pixels")
    summary.add_argument("--width", type=_positive_float, default=1.0,
                         help="multiplier of the conv channels")
    summary.add_argument("--fc-width", type=_positive_int, default=4096,
                         help="channels of fc6 and fc7")
    summary.add_argument("--num-classes", type=_positive_int, default=1000, help="classes")
    summary.set_defaults(run=cmd_summary)

    add_assignment_commands(commands)                # "assignment make" and "grade"
    return parser


def _synthetic_data(settings):
    from .data import synthetic_splits
    return synthetic_splits(settings["train_size"], settings["val_size"],
                            size=settings["image_size"], seed=settings["data_seed"])


def _new_run_dir(runs_dir, config):
    base = os.path.join(runs_dir, f"{config}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def _check_run_dir(path):
    from .train import CHECKPOINT
    if not os.path.isdir(path):
        raise CommandError(f"run folder {path!r} does not exist")
    if not os.path.isfile(os.path.join(path, CHECKPOINT)):
        raise CommandError(f"{path!r} has no {CHECKPOINT}: not a run folder written by "
                           f"'minivgg train', or its first epoch never finished")
    return path


def cmd_train(args):
    from .optim import SGD, ReduceOnPlateau, StepSchedule
    from .train import Trainer, load_checkpoint, pixel_std
    from .vgg import build_vgg

    if args.resume:
        run_dir = _check_run_dir(args.resume)
        settings = load_checkpoint(run_dir)[1]["settings"]
        epochs = args.epochs or settings["epochs"]
        settings["epochs"] = epochs
        print(f"resuming {run_dir}", flush=True)
        train_set, val_set = _synthetic_data(settings)
        trainer = Trainer.resume(run_dir, train_set, val_set, progress=args.progress)
        trainer.settings = settings
    else:
        if args.image_size < args.input:
            raise CommandError(f"--image-size ({args.image_size}) must be at least --input "
                               f"({args.input}): crops are taken from the images")
        settings = {key: getattr(args, key) for key in DATA_KEYS}
        settings["epochs"] = args.epochs or DEFAULT_EPOCHS
        run_dir = args.run_dir or _new_run_dir(args.runs_dir, args.config)
        print(f"run folder: {run_dir}", flush=True)
        try:
            train_set, val_set = _synthetic_data(settings)
            model = build_vgg(args.config, num_classes=10, input_size=args.input,
                              width=args.width, fc_width=args.fc_width, dropout=args.dropout,
                              init=args.init, seed=args.seed,
                              input_std=pixel_std(train_set) if args.standardise else None)
            optimizer = SGD(model, lr=args.lr, momentum=args.momentum,
                            weight_decay=args.weight_decay)
            schedule = (ReduceOnPlateau(optimizer, patience=args.patience,
                                        max_reductions=args.max_reductions)
                        if args.schedule == "plateau" else StepSchedule(optimizer, args.milestones))
            trainer = Trainer(model, train_set, val_set, optimizer=optimizer, schedule=schedule,
                              batch_size=args.batch_size, scale=args.scale, flip=args.flip,
                              colour_shift=args.colour_shift, run_dir=run_dir, seed=args.seed,
                              progress=args.progress, settings=settings)
        except ValueError as error:
            raise CommandError(str(error)) from None
        print(f"VGG {args.config}: width {args.width:g}, fc {args.fc_width}, input "
              f"{args.input}, {model.num_params():,} parameters", flush=True)
    print(f"{len(trainer.train_set)} training / {len(trainer.val_set)} validation images; "
          f"epochs {trainer.epoch + 1}..{settings['epochs']}", flush=True)
    start = time.perf_counter()
    history = trainer.fit(settings["epochs"])
    if args.plot:
        _save_curves(history, os.path.join(run_dir, "curves.png"))
    last = history[-1]
    print(f"done in {time.perf_counter() - start:.0f}s: validation top-1 error "
          f"{100 * last['val_top1']:.1f}% (accuracy {100 * (1 - last['val_top1']):.1f}%); "
          f"run folder: {run_dir}")
    return 0


def _save_curves(history, path):
    try:
        from .viz import plot_curves
        fig = plot_curves(history)
    except ImportError as error:
        print(f"curves.png not written: {error}", file=sys.stderr)
        return
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)


def cmd_evaluate(args):
    from .evaluate import evaluate, posteriors
    from .train import model_from_checkpoint

    run_dir = _check_run_dir(args.run_dir)
    model, arrays, meta = model_from_checkpoint(run_dir)
    val_set = _synthetic_data(meta["settings"])[1]
    print(f"{run_dir}: VGG {model.config['config']} after {meta['epoch']} epochs, "
          f"{len(val_set)} validation images", flush=True)
    try:
        results = evaluate(model, val_set, mean=arrays["mean"], methods=args.method,
                           scales=args.scales, flip=args.flip, grid=args.grid,
                           batch_size=args.batch_size)
    except ValueError as error:
        raise CommandError(str(error)) from None
    width = max(len(m) for m in results)
    for method, errors in results.items():
        text = "  ".join(f"{k.replace('top', 'top-')} error {100 * v:5.2f}%"
                         for k, v in errors.items())
        print(f"{method:<{width}}  {text}")
    if args.confusion:
        from .evaluate import confusion_matrix
        from .viz import plot_confusion
        probs = posteriors(model, val_set.images, mean=arrays["mean"], method="center",
                           batch_size=args.batch_size)
        matrix = confusion_matrix(val_set.labels, probs.argmax(axis=1), len(val_set.classes))
        plot_confusion(matrix, val_set.classes).savefig(args.confusion, dpi=100)
        print(f"confusion matrix: {args.confusion}")
    return 0


def cmd_summary(args):
    from .vgg import build_vgg
    try:
        model = build_vgg(args.config, num_classes=args.num_classes, input_size=args.input,
                          width=args.width, fc_width=args.fc_width, init=None)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(f"VGG {args.config}, {args.input}x{args.input} input, {args.num_classes} classes")
    print(model.summary())
    return 0


def main(argv=None):
    """Entry point of the ``minivgg`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"minivgg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:             # train.NonFiniteLossError
        print(f"minivgg {args.command}: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:                         # "minivgg summary E | head"
        sys.stderr.close()                          # nothing left to say, and no traceback
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; the last finished epoch's checkpoint is kept", file=sys.stderr)
        return 130
