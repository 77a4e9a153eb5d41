"""``minivgg train``: a VGG on the built-in shapes, or resumed from a run folder."""

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
    positive_float,
    positive_int,
    scale,
    synthetic_data,
)

DEFAULT_EPOCHS = 8


def add_parser(commands):
    train = commands.add_parser(
        "train", formatter_class=FORMATTER,
        help="train a VGG on the built-in synthetic shapes",
        description="Train with the paper's recipe (Sec. 3.1) at small scale: SGD, momentum, "
                    "weight decay, dropout, lr / 10 on plateau, random crops, flips and colour "
                    "shift. Writes checkpoint.npz, history.json and curves.png into "
                    "the run folder.")
    model = train.add_argument_group("model")
    model.add_argument("--config", type=config, default="A", help=f"VGG configuration: "
                       f"{CONFIG_NAMES}")
    model.add_argument("--width", type=positive_float, default=0.25,
                       help="multiplier of every conv layer's channels (1 = the paper's 64..512)")
    model.add_argument("--fc-width", type=positive_int, default=256,
                       help="channels of fc6 and fc7 (the paper: 4096)")
    model.add_argument("--input", type=positive_int, default=32,
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
    data.add_argument("--train-size", type=positive_int, default=10000, help="training images")
    data.add_argument("--val-size", type=positive_int, default=1000, help="validation images")
    data.add_argument("--image-size", type=positive_int, default=36,
                      help="side of the generated images, pixels (>= --input; crops come from it)")
    data.add_argument("--data-seed", type=int, default=0, help="seed of the generated images")
    data.add_argument("--scale", type=scale, default=None,
                      help="training scale: none (keep the images' size), S, or Smin,Smax "
                           "(scale jittering)")
    data.add_argument("--no-flip", dest="flip", action="store_false",
                      help="turn off random horizontal flips")
    data.add_argument("--colour-shift", type=float, default=0.1,
                      help="std of the PCA colour shift's alpha (0 = off)")
    optim = train.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=positive_int, default=None,
                       help=f"epochs in total; unset: {DEFAULT_EPOCHS} for a new run, the run's "
                            f"own target with --resume")
    optim.add_argument("--batch-size", type=positive_int, default=32, help="images per step")
    optim.add_argument("--lr", type=positive_float, default=0.01, help="initial learning rate")
    optim.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    optim.add_argument("--weight-decay", type=float, default=5e-4, help="L2 multiplier on weights")
    optim.add_argument("--schedule", choices=("plateau", "step"), default="plateau",
                       help="plateau: lr / 10 when val accuracy stalls; step: at --milestones")
    optim.add_argument("--patience", type=positive_int, default=1,
                       help="plateau: epochs without improvement before lr / 10")
    optim.add_argument("--max-reductions", type=int, default=3,
                       help="plateau: most lr cuts (the paper: 3)")
    optim.add_argument("--milestones", type=positive_int, nargs="*", default=[8, 11],
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


def _new_run_dir(runs_dir, config):
    base = os.path.join(runs_dir, f"{config}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def cmd_train(args):
    from ..optim import SGD, ReduceOnPlateau, StepSchedule
    from ..train import Trainer, load_checkpoint, pixel_std
    from ..vgg import build_vgg

    if args.resume:
        run_dir = check_run_dir(args.resume)
        settings = load_checkpoint(run_dir)[1]["settings"]
        epochs = args.epochs or settings["epochs"]
        settings["epochs"] = epochs
        print(f"resuming {run_dir}", flush=True)
        train_set, val_set = synthetic_data(settings)
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
            train_set, val_set = synthetic_data(settings)
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
        from ..viz import plot_curves
        fig = plot_curves(history)
    except ImportError as error:
        print(f"curves.png not written: {error}", file=sys.stderr)
        return
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)
