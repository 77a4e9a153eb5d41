"""``minivgg train``: a VGG on the built-in shapes or on your images, or a run resumed.

The model, optimisation and augmentation options are made from the fields of
:class:`minivgg.recipe.Recipe` (one table below says each field's type and group), so their
defaults are the recipe's and ``--help`` prints them.
"""

import os
import sys
import time

from .common import (
    CONFIG_NAMES,
    DATA_KEYS,
    FORMATTER,
    CommandError,
    check_run_dir,
    config,
    fraction,
    nonnegative_float,
    nonnegative_int,
    open_fraction,
    positive_float,
    positive_int,
    run_data,
    save_figure,
    scale,
)

# Recipe field -> (option group, argparse keywords other than the default and help). A bool
# field becomes a --no-<field> switch. "--input" is the CLI's name of input_size.
RECIPE_OPTIONS = {
    "config": ("model", dict(type=config)),
    "width": ("model", dict(type=positive_float)),
    "fc_width": ("model", dict(type=positive_int)),
    "input_size": ("model", dict(type=positive_int, flag="--input")),
    "dropout": ("model", dict(type=fraction)),
    "init": ("model", dict(choices=("he", "glorot", "paper"))),
    "classifier_std": ("model", dict(type=positive_float)),
    "standardise": ("model", dict(off="feed the mean-subtracted pixels as they are, as the "
                                      "paper does (default: divide them by the pixels' std)")),
    "epochs": ("optimisation", dict(type=positive_int)),
    "batch_size": ("optimisation", dict(type=positive_int)),
    "lr": ("optimisation", dict(type=positive_float)),
    "momentum": ("optimisation", dict(type=fraction)),
    "weight_decay": ("optimisation", dict(type=nonnegative_float)),
    "warmup_epochs": ("optimisation", dict(type=nonnegative_float)),
    "schedule": ("optimisation", dict(choices=("plateau", "step"))),
    "patience": ("optimisation", dict(type=positive_int)),
    "max_reductions": ("optimisation", dict(type=nonnegative_int)),
    "milestones": ("optimisation", dict(type=positive_int, nargs="*")),
    "scale": ("augmentation", dict(type=scale)),
    "flip": ("augmentation", dict(off="no random horizontal flips (default: flips on)")),
    "colour_shift": ("augmentation", dict(type=nonnegative_float)),
}


def add_parser(commands):
    from ..data.synthetic import LAYOUTS
    from ..recipe import RECIPE, Recipe
    train = commands.add_parser(
        "train", formatter_class=FORMATTER,
        help="train a VGG on the built-in shapes or your images",
        description="Train with the paper's recipe (Sec. 3.1) at small scale (minivgg.recipe): "
                    "SGD, momentum, weight decay, dropout, lr / 10 on plateau, random crops, "
                    "flips and colour shift. Writes checkpoint.npz (last epoch), best.npz (best "
                    "validation accuracy), history.json and curves.png into the run folder.")
    groups = {name: train.add_argument_group(name) for name in ("model", "optimisation",
                                                                  "augmentation")}
    fields = Recipe.__dataclass_fields__
    for name, (group, options) in RECIPE_OPTIONS.items():
        options = dict(options)
        flag = options.pop("flag", "--" + name.replace("_", "-"))
        text = fields[name].metadata["help"]
        if "off" in options:
            groups[group].add_argument(f"--no-{name}", dest=name, action="store_false",
                                       default=None, help=options["off"])
            continue
        if name == "config":
            text = f"{text}: {CONFIG_NAMES}"
        if name == "epochs":
            text += "; with --resume: the run's own"
        # default None: only what the user gives replaces the recipe's value, printed here
        groups[group].add_argument(flag, dest=name, default=None, help=f"{text} (default: "
                                   f"{_shown(getattr(RECIPE, name))})", **options)
    model = groups["model"]
    model.add_argument("--seed", type=nonnegative_int, default=0,
                       help="seeds the weights, dropout, shuffling and augmentation")
    model.add_argument("--warm-start", metavar="RUN_DIR", default=None,
                       help="the paper's start for deep nets (Sec. 3.1): copy the first four "
                            "convolutions and fc6-fc8 of RUN_DIR's best model (a trained "
                            "shallower net, e.g. A, of the same width and classes); the other "
                            "layers start from --init")
    data = train.add_argument_group("data: your images (--data), else the built-in shapes")
    data.add_argument("--data", metavar="PATH", default=None,
                      help="an image folder (PATH/<class>/<image>.png|jpg), a folder with "
                           "train/ and val/ image folders, or CIFAR-10/100's python folder or "
                           ".tar.gz (its training batches)")
    data.add_argument("--val-fraction", type=open_fraction, default=0.1,
                      help="--data without val/: the share of each class held out for "
                           "validation (stratified, seeded by --data-seed)")
    data.add_argument("--train-size", type=positive_int, default=10000,
                      help="built-in shapes: training images")
    data.add_argument("--val-size", type=positive_int, default=1000,
                      help="built-in shapes: validation images")
    data.add_argument("--image-size", type=positive_int, default=36,
                      help="built-in shapes: side of the generated images, pixels")
    data.add_argument("--data-seed", type=nonnegative_int, default=0,
                      help="seed of the generated images, or of --data's validation split")
    data.add_argument("--layout", choices=LAYOUTS, default="centred",
                      help="built-in shapes: large objects near the middle, or smaller ones of "
                           "varied aspect anywhere (the data 'minivgg localise' uses)")
    run = train.add_argument_group("run")
    run.add_argument("--runs-dir", default="runs",
                     help="where new run folders <config>-<time> are made")
    run.add_argument("--run-dir", default=None,
                     help="use this run folder instead (refused if it holds a run, unless "
                          "--overwrite)")
    run.add_argument("--overwrite", action="store_true",
                     help="let --run-dir replace the run already in it (default: refuse)")
    run.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue the run in RUN_DIR from its last checkpoint, with its "
                          "recipe (only --epochs, --data and the display options apply)")
    run.add_argument("--distributed", action="store_true",
                     help="one run across the processes of 'mpiexec -n N' (the paper's Sec. "
                          "3.3): each batch split, gradients averaged, rank 0 writes the run; "
                          "needs the [mpi] extra (minivgg.distributed)")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar (default: shown; the per-epoch lines stay)")
    run.add_argument("--no-plot", dest="plot", action="store_false",
                     help="do not write curves.png (default: written; needs matplotlib)")
    train.set_defaults(run=cmd_train)


def _shown(value):
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return "none" if value is None else value


def _new_run_dir(runs_dir, config):
    base = os.path.join(runs_dir, f"{config}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def recipe_from_args(args):
    """The default recipe with every option the user gave."""
    from ..recipe import RECIPE
    given = {name: getattr(args, name) for name in RECIPE_OPTIONS
             if getattr(args, name) is not None}
    if "milestones" in given:
        given["milestones"] = tuple(given["milestones"])
    try:
        return RECIPE.replace(**given)
    except ValueError as error:              # a combination no single option's type catches
        raise CommandError(str(error)) from None


def _resumed(args):
    from ..train import load_checkpoint, refuse_localisation_run
    run_dir = check_run_dir(args.resume)
    ignored = [name for name in RECIPE_OPTIONS if name != "epochs" and getattr(args, name)
               is not None]
    if args.warm_start is not None:
        ignored.append("warm_start")
    if ignored:
        raise CommandError(f"--resume continues with the run's own recipe; drop "
                           f"{', '.join('--' + n.replace('_', '-') for n in ignored)}")
    meta = load_checkpoint(run_dir)[1]
    try:
        refuse_localisation_run(run_dir, meta, f"continue it with 'minivgg localise --resume "
                                               f"{run_dir}'")
    except ValueError as error:
        raise CommandError(str(error)) from None
    settings = dict(meta.get("settings") or {})
    if args.data is not None:
        settings["data"] = os.path.abspath(args.data)
    train_set, val_set = run_data(settings, args.data and settings["data"])
    print(f"resuming {run_dir}", flush=True)
    try:
        trainer = _trainer_class(args).resume(run_dir, train_set, val_set, progress=args.progress)
    except ValueError as error:             # e.g. a Python-made run without a build config
        raise CommandError(str(error)) from None
    epochs = args.epochs or settings.get("epochs") or trainer.recipe.epochs
    trainer.settings = {**settings, "epochs": epochs}
    return trainer, run_dir, epochs


def _new(args):
    recipe = recipe_from_args(args)
    settings = {key: getattr(args, key) for key in DATA_KEYS}
    if args.data is not None:
        settings["data"] = os.path.abspath(args.data)
    elif args.image_size < recipe.input_size:
        raise CommandError(f"--image-size ({args.image_size}) must be at least --input "
                           f"({recipe.input_size}): crops are taken from the images")
    settings["epochs"] = recipe.epochs
    train_set, val_set = run_data(settings, settings.get("data"))
    settings["classes"] = list(train_set.classes)
    run_dir = args.run_dir or _new_run_dir(args.runs_dir, recipe.config)
    if args.distributed:                    # the name rank 0 chose (the clock differs)
        from ..distributed import world
        run_dir = world().bcast(run_dir, root=0)
    try:
        model = recipe.build(train_set, seed=args.seed)
        if args.warm_start is not None:
            _warm_start(model, args.warm_start)
            settings["warm_start"] = os.path.abspath(args.warm_start)
        trainer = _trainer_class(args)(model, train_set, val_set, recipe=recipe, run_dir=run_dir,
                          overwrite=args.overwrite, seed=args.seed, progress=args.progress,
                          settings=settings)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(f"run folder: {run_dir}", flush=True)
    source = args.data or "built-in shapes"
    print(f"VGG {recipe.config}: width {recipe.width:g}, fc {recipe.fc_width}, input "
          f"{recipe.input_size}, {model.num_params():,} parameters; data: {source}, "
          f"{len(train_set.classes)} classes", flush=True)
    return trainer, run_dir, recipe.epochs


def _warm_start(model, run_dir):
    """init_from_shallower from the best model of a finished run (the paper's warm start)."""
    from ..train import BEST, model_from_checkpoint
    from ..vgg import init_from_shallower
    try:
        source = model_from_checkpoint(os.path.join(check_run_dir(run_dir, BEST), BEST))[0]
        copied = init_from_shallower(model, source)
    except (CommandError, ValueError) as error:       # CorruptFileError is a ValueError
        raise CommandError(f"--warm-start {run_dir}: {error}") from None
    print(f"warm start from {run_dir}: {', '.join(copied)}", flush=True)


def _trainer_class(args):
    if args.distributed:
        from ..distributed import DistributedTrainer
        return DistributedTrainer
    from ..train import Trainer
    return Trainer


def cmd_train(args):
    from ..distributed import launched_size, run_command, world
    from ..errors import CorruptFileError
    if args.distributed:
        try:
            world()
        except ImportError as error:
            raise CommandError(f"--distributed: {error}") from None
        return run_command(_train, args, report=CommandError, agreed=(CommandError,
                                                                      CorruptFileError))
    if launched_size() > 1:
        raise CommandError(f"started as {launched_size()} processes (mpiexec -n "
                           f"{launched_size()}) without --distributed: each would train a run "
                           f"of its own; add --distributed to train one run across them, or "
                           f"start one process")
    return _train(args)


def _train(args):
    from ..train import BEST, RunDirError
    try:
        trainer, run_dir, epochs = _resumed(args) if args.resume else _new(args)
        print(f"{len(trainer.train_set)} training / {len(trainer.val_set)} validation images; "
              f"epochs {trainer.epoch + 1}..{epochs}", flush=True)
        start = time.perf_counter()
        history = trainer.fit(epochs)
    except RunDirError as error:
        raise CommandError(str(error)) from None
    except OSError as error:                 # disk full, folder removed under us...
        raise CommandError(f"cannot write the run: {error}; the last finished epoch's "
                           f"checkpoint is kept") from None
    if args.plot and getattr(trainer, "rank", 0) == 0:      # one curves.png, by rank 0
        _save_curves(history, os.path.join(run_dir, "curves.png"))
    last = history[-1]
    best = min(history, key=lambda r: r["val_top1"])
    print(f"done in {time.perf_counter() - start:.0f}s: validation top-1 error "
          f"{100 * last['val_top1']:.1f}% (accuracy {100 * (1 - last['val_top1']):.1f}%); best "
          f"{100 * best['val_top1']:.1f}% at epoch {best['epoch']} ({BEST}); run folder: "
          f"{run_dir}")
    return 0


def _save_curves(history, path):
    try:
        from ..viz import plot_curves
        fig = plot_curves(history)
    except ImportError as error:
        print(f"curves.png not written: {error}", file=sys.stderr)
        return
    save_figure(fig, path, "png")                  # atomically: a kill leaves the old one
