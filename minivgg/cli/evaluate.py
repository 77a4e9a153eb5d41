"""``minivgg evaluate RUN_DIR``: the paper's test methods on a run's best (or last) network."""

import os

from .common import FORMATTER, CommandError, check_run_dir, positive_int, run_data


def add_parser(commands):
    evaluate = commands.add_parser(
        "evaluate", formatter_class=FORMATTER, help="evaluate a run's best checkpoint",
        description="Top-1/top-5 error of a trained run (by 'minivgg train' or the Trainer) on "
                    "its validation set or on --data, with the paper's test methods (Sec. 3.2, "
                    "4).")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    evaluate.add_argument("--checkpoint", choices=("best", "last"), default="best",
                          help="best.npz (the epoch of lowest validation error) or "
                               "checkpoint.npz (the last epoch)")
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
                          help="also evaluate horizontal flips and average (default: off)")
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
    from ..evaluate import evaluate, posteriors
    from ..train import BEST, CHECKPOINT, model_from_checkpoint

    name = BEST if args.checkpoint == "best" else CHECKPOINT
    if args.checkpoint == "best" and os.path.isdir(args.run_dir) and not os.path.isfile(
            os.path.join(args.run_dir, BEST)):
        name = CHECKPOINT                        # a run from before best.npz existed
    run_dir = check_run_dir(args.run_dir, name)
    if args.confusion:
        folder = os.path.dirname(os.path.abspath(args.confusion))
        if not os.path.isdir(folder):
            raise CommandError(f"--confusion: folder {folder} does not exist")
    try:
        model, arrays, meta = model_from_checkpoint(os.path.join(run_dir, name))
    except ValueError as error:
        raise CommandError(str(error)) from None
    test_set, source = _test_set(args, meta)
    scales = args.scales if args.scales is not None else _run_scales(meta)
    if len(test_set.classes) != model.config["num_classes"]:
        raise CommandError(f"--data has {len(test_set.classes)} classes but the network "
                           f"{model.config['num_classes']}")
    print(f"{run_dir}: VGG {model.config['config']}, {name} (epoch {meta['epoch']}), "
          f"{len(test_set)} {source} images", flush=True)
    try:
        results = evaluate(model, test_set, mean=arrays["mean"], methods=args.method,
                           scales=scales, flip=args.flip, grid=args.grid,
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
        probs = posteriors(model, test_set.images, mean=arrays["mean"], method="center",
                           scales=scales and scales[:1], batch_size=args.batch_size)
        matrix = confusion_matrix(test_set.labels, probs.argmax(axis=1), len(test_set.classes))
        plot_confusion(matrix, test_set.classes).savefig(args.confusion, dpi=100)
        print(f"confusion matrix: {args.confusion}")
    return 0
