"""``minivgg evaluate RUN_DIR``: the paper's test methods on a run's validation set;
``minivgg evaluate RUN1 RUN2 ... --fuse``: ConvNet fusion (Sec. 4.4), the mean posterior."""

from .common import (
    DATA_KEYS,
    FORMATTER,
    CommandError,
    check_run_dir,
    positive_int,
    synthetic_data,
)


def add_parser(commands):
    evaluate = commands.add_parser(
        "evaluate", formatter_class=FORMATTER, help="evaluate a run's checkpoint",
        description="Top-1/top-5 error of a trained run on its validation set, with the "
                    "paper's test methods (Sec. 3.2, 4).")
    evaluate.add_argument("run_dirs", metavar="RUN_DIR", nargs="+",
                          help="a run folder written by train (several with --fuse)")
    evaluate.add_argument("--fuse", action="store_true",
                          help="average the posteriors of all the runs given (Sec. 4.4); they "
                               "must have the same data")
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
    from ..evaluate import combine, method_posteriors, posteriors, top_k_error
    from ..localise.run import is_localisation_run
    from ..train import model_from_checkpoint
    if len(args.run_dirs) == 1 and is_localisation_run(check_run_dir(args.run_dirs[0])):
        from .localise import print_localisation  # minivgg localise's runs: their own lines
        print_localisation(args.run_dirs[0], args.batch_size)
        return 0
    if len(args.run_dirs) > 1 and not args.fuse:
        raise CommandError(f"{len(args.run_dirs)} run folders given: pass --fuse to fuse them, "
                           f"or evaluate one at a time")
    if args.confusion and args.fuse:
        raise CommandError("--confusion is for one run, not with --fuse")
    runs = [(run_dir, *model_from_checkpoint(check_run_dir(run_dir)))
            for run_dir in args.run_dirs]
    data = [{k: meta["settings"].get(k) for k in ("dataset", *DATA_KEYS)} for *_, meta in runs]
    if any(d != data[0] for d in data):
        raise CommandError(f"--fuse: the runs were trained on different data ({data[0]} vs "
                           f"{next(d for d in data if d != data[0])}); fusion needs one test set")
    val_set = synthetic_data(runs[0][3]["settings"])[1]
    per_run = []
    for run_dir, model, arrays, meta in runs:
        print(f"{run_dir}: VGG {model.config['config']} after {meta['epoch']} epochs, "
              f"{len(val_set)} validation images", flush=True)
        try:
            per_run.append(method_posteriors(model, val_set, mean=arrays["mean"],
                                             methods=args.method, scales=args.scales,
                                             flip=args.flip, grid=args.grid,
                                             batch_size=args.batch_size))
        except ValueError as error:
            raise CommandError(str(error)) from None
    rows = [(method, combine(*(p[method] for p in per_run))) for method in per_run[0]]
    if args.fuse:
        print(f"fusion of {len(runs)} nets: the mean of their posteriors (Sec. 4.4)")
    width = max(len(m) for m, _ in rows)
    for method, probs in rows:
        text = "  ".join(f"top-{k} error {100 * top_k_error(probs, val_set.labels, k):5.2f}%"
                         for k in (1, 5))
        print(f"{method:<{width}}  {text}")
    if args.confusion:
        _, model, arrays, _ = runs[0]
        from ..evaluate import confusion_matrix
        from ..viz import plot_confusion
        probs = posteriors(model, val_set.images, mean=arrays["mean"], method="center",
                           batch_size=args.batch_size)
        matrix = confusion_matrix(val_set.labels, probs.argmax(axis=1), len(val_set.classes))
        plot_confusion(matrix, val_set.classes).savefig(args.confusion, dpi=100)
        print(f"confusion matrix: {args.confusion}")
    return 0
