"""``minivgg evaluate RUN_DIR``: the paper's test methods on a run's validation set."""

from .common import FORMATTER, CommandError, check_run_dir, positive_int, synthetic_data


def add_parser(commands):
    evaluate = commands.add_parser(
        "evaluate", formatter_class=FORMATTER, help="evaluate a run's checkpoint",
        description="Top-1/top-5 error of a trained run on its validation set, with the "
                    "paper's test methods (Sec. 3.2, 4).")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    evaluate.add_argument("--method", nargs="+", default=["center"],
                          help="center, dense, multicrop, or a '+' combination such as "
                               "dense+multicrop; several may be given")
    evaluate.add_argument("--scales", type=positive_int, nargs="*", default=None,
                          help="test scales Q (shorter side, pixels); unset: the images as "
                               "they are")
    evaluate.add_argument("--flip", action="store_true",
                          help="also evaluate horizontal flips and average")
    evaluate.add_argument("--grid", type=positive_int, default=5,
                          help="multicrop: grid x grid crops per scale")
    evaluate.add_argument("--batch-size", type=positive_int, default=64,
                          help="network inputs per forward pass")
    evaluate.add_argument("--confusion", metavar="PNG", default=None,
                          help="also save the centre-crop confusion matrix to this file")
    evaluate.set_defaults(run=cmd_evaluate)


def cmd_evaluate(args):
    from ..evaluate import evaluate, posteriors
    from ..train import model_from_checkpoint

    run_dir = check_run_dir(args.run_dir)
    from ..localise.run import is_localisation_run
    if is_localisation_run(run_dir):                # minivgg localise's runs: their own lines
        from .localise import print_localisation
        print_localisation(run_dir, args.batch_size)
        return 0
    model, arrays, meta = model_from_checkpoint(run_dir)
    val_set = synthetic_data(meta["settings"])[1]
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
        from ..evaluate import confusion_matrix
        from ..viz import plot_confusion
        probs = posteriors(model, val_set.images, mean=arrays["mean"], method="center",
                           batch_size=args.batch_size)
        matrix = confusion_matrix(val_set.labels, probs.argmax(axis=1), len(val_set.classes))
        plot_confusion(matrix, val_set.classes).savefig(args.confusion, dpi=100)
        print(f"confusion matrix: {args.confusion}")
    return 0
