"""``minivgg localise RUN_DIR``: a localisation net (the paper's Appendix A) fine-tuned from a
classification run, and ``minivgg evaluate LOC_RUN``'s localisation lines."""

from .common import (
    FORMATTER,
    CommandError,
    add_checkpoint_option,
    check_run_dir,
    nonnegative_int,
    positive_float,
    positive_int,
    run_checkpoint,
)

# The options --resume takes from the run itself, with their defaults
# (which are the parser's).
_RUN_OWN = {"head": "scr", "fine_tune": "all", "lr": None, "batch_size": 32, "seed": 0,
            "layout": "scattered", "out": None, "checkpoint": "last"}


def add_parser(commands):
    localise = commands.add_parser(
        "localise", formatter_class=FORMATTER,
        help="train a localisation net from a classification run (Appendix A)",
        description="Replace the classification run's last layer by a box regressor (SCR: one "
                    "box; PCR: one per class), fine-tune it with a Euclidean loss "
                    "on the built-in data's boxes, and save it in a new run folder. "
                    "'minivgg evaluate' on that folder prints the localisation errors.")
    localise.add_argument("run_dir", metavar="RUN_DIR", nargs="?",
                          help="a classification run folder written by 'minivgg train'")
    localise.add_argument("--resume", metavar="LOC_RUN", default=None,
                          help="continue the localisation run in LOC_RUN from its last "
                               "checkpoint, with its own settings (only --epochs applies)")
    localise.add_argument("--head", choices=("scr", "pcr"), default=_RUN_OWN["head"],
                          help="single-class or per-class regression")
    localise.add_argument("--fine-tune", choices=("all", "fc"), default=_RUN_OWN["fine_tune"],
                          help="train every layer, or only fc6-fc8 (the rest frozen)")
    localise.add_argument("--epochs", type=positive_int, default=None,
                          help="epochs (default: minivgg.localise.run.DEFAULT_EPOCHS; with "
                               "--resume: the run's own)")
    localise.add_argument("--lr", type=positive_float, default=_RUN_OWN["lr"],
                          help="initial learning rate (default: minivgg.localise.net.DEFAULT_LR; "
                               "the paper's 1e-3 barely moves the targets here: "
                               "minivgg/localise/net.py)")
    localise.add_argument("--batch-size", type=positive_int, default=_RUN_OWN["batch_size"],
                          help="images per step")
    localise.add_argument("--seed", type=nonnegative_int, default=_RUN_OWN["seed"],
                          help="seeds fc8 and the augmentation")
    localise.add_argument("--layout", choices=("scattered", "centred"),
                          default=_RUN_OWN["layout"],
                          help="the built-in shapes to localise (the run's sizes and seed): "
                               "'centred' objects are so alike that one fixed box fits most")
    add_checkpoint_option(localise, _RUN_OWN["checkpoint"],
                          "the default fine-tunes the classifier as training left it (the "
                          "recorded results in docs/results/ start there)")
    localise.add_argument("--out", default=_RUN_OWN["out"],
                          help="run folder to write (default: RUN_DIR-loc-HEAD-FINETUNE); "
                               "an existing run is never overwritten")
    localise.set_defaults(run=cmd_localise)


def cmd_localise(args):
    import time

    from ..localise.run import DEFAULT_EPOCHS, DEFAULT_LR, localise_run, resume_localisation

    start = time.perf_counter()
    try:
        if args.resume is not None:
            if args.run_dir is not None:
                raise CommandError("give RUN_DIR or --resume LOC_RUN, not both")
            changed = [k for k, v in _RUN_OWN.items() if getattr(args, k) != v]
            if changed:
                raise CommandError(f"--resume continues with the run's own settings; drop "
                                   f"{', '.join('--' + k.replace('_', '-') for k in changed)}")
            out = resume_localisation(check_run_dir(args.resume), epochs=args.epochs)
        else:
            if args.run_dir is None:
                raise CommandError("give RUN_DIR, a classification run folder (or --resume "
                                   "LOC_RUN)")
            out = localise_run(run_checkpoint(args.run_dir, args.checkpoint), head=args.head,
                               fine_tune=args.fine_tune, epochs=args.epochs or DEFAULT_EPOCHS,
                               lr=DEFAULT_LR if args.lr is None else args.lr,
                               batch_size=args.batch_size, seed=args.seed,
                               layout=args.layout, out_dir=args.out)
    except (ValueError, FileExistsError) as error:
        raise CommandError(str(error)) from None
    except OSError as error:                # an --out that cannot be made, disk full...
        raise CommandError(f"cannot write the localisation run: {error}") from None
    print(f"done in {time.perf_counter() - start:.0f}s; localisation run: {out}\n"
          f"test it: minivgg evaluate {out}")
    return 0


def print_localisation(run_dir, batch_size=32):
    """What ``minivgg evaluate`` prints for a localisation run: one line per protocol."""
    from ..localise.run import evaluate_localisation, load_localisation_run

    meta = load_localisation_run(run_dir)[3]
    print(f"{run_dir}: localisation net ({meta['head'].upper()}, fine-tuned: "
          f"{meta['fine_tune']}) from {meta['source']}", flush=True)
    r = evaluate_localisation(run_dir, batch_size=batch_size)
    layout = meta["settings"].get("layout", "centred")
    print(f"{layout} built-in shapes, {meta['settings']['val_size']} validation images; in "
          f"brackets the same error of the mean training box answered for every image")
    c = r["centre"]
    print(f"centre crop, ground-truth class:              localisation error "
          f"{100 * c['gt']:5.1f}%   (mean box: {100 * c['baseline']['gt']:.1f}%)")
    for key in ("dense", "dense_multi"):
        d, b = r[key], r[key]["baseline"]
        print(f"dense + flip, Q = {','.join(map(str, d['scales'])):<8} top-1 / top-5: localisation "
              f"error {100 * d['top1']:5.1f}% / {100 * d['top5']:5.1f}%   (mean box: "
              f"{100 * b['top1']:.1f}% / {100 * b['top5']:.1f}%; ground-truth class: "
              f"{100 * d['gt']:.1f}%)")
    if meta.get("source_layout", "centred") != layout:
        print(f"note: the classifier ({meta['source']}) was trained on the "
              f"{meta.get('source_layout', 'centred')} shapes: the dense protocol's classes come "
              f"from it; train it with 'minivgg train --layout {layout}' for both protocols on "
              f"this data")
    return r
