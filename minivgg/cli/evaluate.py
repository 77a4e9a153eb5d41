"""``minivgg evaluate RUN_DIR``: the paper's test methods on a run's validation set;
``minivgg evaluate RUN1 RUN2 ... --fuse``: ConvNet fusion (Sec. 4.4), the mean posterior."""

from .common import (
    DATA_KEYS,
    FORMATTER,
    CommandError,
    add_checkpoint_option,
    check_run_dir,
    load_run,
    new_figure,
    positive_int,
    run_data,
    save_figure,
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
    add_checkpoint_option(evaluate, "best", "a run from before best.npz existed: its last")
    evaluate.add_argument("--data", metavar="PATH", default=None,
                          help="test on these images instead of the run's validation set: "
                               "CIFAR's test batch, a folder's val/, or every image of an "
                               "image folder (the run's classes, same order)")
    evaluate.add_argument("--method", nargs="+", default=["center"],
                          help="center, dense, multicrop, or a '+' combination such as "
                               "dense+multicrop; several may be given")
    evaluate.add_argument("--scales", type=positive_int, nargs="*", default=None,
                          help="test scales Q (shorter side, pixels); unset: the run's "
                               "single-scale Q (its training S, or the middle of a jittered "
                               "range; the images as they are if it did not rescale)")
    evaluate.add_argument("--flip", action="store_true",
                          help="also evaluate horizontal flips and average")
    evaluate.add_argument("--grid", type=positive_int, default=5,
                          help="multicrop: grid x grid crops per scale")
    evaluate.add_argument("--batch-size", type=positive_int, default=64,
                          help="network inputs per forward pass")
    evaluate.add_argument("--confusion", metavar="PNG", default=None,
                          help="also save the centre-crop confusion matrix to this file")
    evaluate.set_defaults(run=cmd_evaluate)


def _test_set(args, meta):
    from ..data.split import load_test_set
    if args.data is None:
        return run_data(meta.get("settings") or {})[1], "validation"
    try:
        data = load_test_set(args.data)
    except (OSError, ValueError) as error:
        raise CommandError(f"--data: {error}") from None
    classes = (meta.get("settings") or {}).get("classes")
    if classes is not None and list(data.classes) != list(classes):
        raise CommandError(f"--data: its classes {list(data.classes)} are not the run's "
                           f"{classes}")
    return data, args.data


def _run_scales(meta):
    """The single test scale Q the run's validation used (Sec. 4.1), or None."""
    from ..evaluate import paper_scales
    scale = (meta.get("augment") or {}).get("scale")
    if scale is None:
        return None
    return list(paper_scales(tuple(scale) if isinstance(scale, list) else scale))


def cmd_evaluate(args):
    from ..evaluate import combine, method_posteriors, posteriors, top_k_error
    from ..localise.run import is_localisation_run
    if len(args.run_dirs) == 1 and is_localisation_run(check_run_dir(args.run_dirs[0])):
        from .localise import print_localisation  # minivgg localise's runs: their own lines
        try:
            print_localisation(args.run_dirs[0], args.batch_size)
        except ValueError as error:           # CorruptFileError included: main says which
            raise CommandError(str(error)) from None
        return 0
    if len(args.run_dirs) > 1 and not args.fuse:
        raise CommandError(f"{len(args.run_dirs)} run folders given: pass --fuse to fuse them, "
                           f"or evaluate one at a time")
    if args.confusion and args.fuse:
        raise CommandError("--confusion is for one run, not with --fuse")
    if args.confusion:              # an existing file is never replaced; checked before the work
        extension = new_figure("--confusion", args.confusion)
    alone = "fusion averages classification runs; evaluate it alone"
    runs = [(run_dir, *load_run(run_dir, args.checkpoint, alone)) for run_dir in args.run_dirs]
    data = [{k: meta["settings"].get(k) for k in ("dataset", *DATA_KEYS)} for *_, meta in runs]
    if any(d != data[0] for d in data):
        raise CommandError(f"--fuse: the runs were trained on different data ({data[0]} vs "
                           f"{next(d for d in data if d != data[0])}); fusion needs one test set")
    val_set, source = _test_set(args, runs[0][3])
    scales = args.scales if args.scales is not None else _run_scales(runs[0][3])
    per_run = []
    for run_dir, model, arrays, meta in runs:
        if len(val_set.classes) != model.config["num_classes"]:
            raise CommandError(f"--data has {len(val_set.classes)} classes but the network "
                               f"{model.config['num_classes']}")
        print(f"{run_dir}: VGG {model.config['config']}, {meta['file']} (epoch {meta['epoch']}), "
              f"{len(val_set)} {source} images", flush=True)
        try:
            per_run.append(method_posteriors(model, val_set, mean=arrays["mean"],
                                             methods=args.method, scales=scales,
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
                           scales=scales and scales[:1], batch_size=args.batch_size)
        matrix = confusion_matrix(val_set.labels, probs.argmax(axis=1), len(val_set.classes))
        save_figure(plot_confusion(matrix, val_set.classes), args.confusion, extension)
        print(f"confusion matrix: {args.confusion}")
    return 0
