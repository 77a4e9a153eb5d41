"""The paper's Tables 8 and 9 at small scale, from one classification run folder:

    python -m minivgg.localise.tables RUN_DIR --out docs/results/localisation.json

Table 8 (centre-crop protocol, ground-truth class): SCR and PCR, fine-tuning all layers or only
fc6-fc8, each a ``localise_run`` from the same classification run with the same epochs and seed.
Table 9 (dense protocol): the best Table 8 setting at one scale and at three, top-1 and top-5
localisation error (the class from the classifier), and the union of two nets (SCR + PCR, all
layers). Beside them the mean box alone, the baseline the data allow for free. Runs already in
``RUN_DIR-loc-<head>-<fine-tune>`` are reused, not retrained; new ones are written there.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from ..train import atomic_write
from .protocols import dense_localise, localisation_errors
from .run import (
    DEFAULT_EPOCHS,
    _data,
    constant_box_error,
    dense_scales,
    evaluate_localisation,
    load_localisation_run,
    localise_run,
)

SETTINGS = (("scr", "fc"), ("scr", "all"), ("pcr", "fc"), ("pcr", "all"))


def train_settings(source, settings=SETTINGS, epochs=DEFAULT_EPOCHS, log=print):
    """Make the localisation runs of ``settings`` [(head, fine_tune)] that do not exist yet."""
    for head, fine_tune in settings:
        out = f"{os.path.normpath(source)}-loc-{head}-{fine_tune}"
        if not os.path.exists(os.path.join(out, "checkpoint.npz")):
            localise_run(source, head=head, fine_tune=fine_tune, epochs=epochs, out_dir=out,
                         log=log)


def tables(source, epochs=DEFAULT_EPOCHS, log=print):
    """{"table8": [...], "table9": [...], "mean_box_error", ...} for the run in ``source``.
    Table 8's errors are the last epoch's validation error of each run (the centre-crop
    protocol on the run's validation set, as ``evaluate_localisation`` computes it)."""
    train_settings(source, SETTINGS, epochs, log)
    runs, table8 = {}, []
    for head, fine_tune in SETTINGS:
        out = f"{os.path.normpath(source)}-loc-{head}-{fine_tune}"
        meta = load_localisation_run(out)[3]
        runs[head, fine_tune] = out
        table8.append({"head": head.upper(), "fine_tuned": "all layers" if fine_tune == "all"
                       else "fc6-fc8", "epochs": len(meta["history"]),
                       "centre_crop_gt_error": meta["history"][-1]["val_error"],
                       "train_seconds": round(meta["seconds"], 1)})
    best = min(SETTINGS, key=lambda k: table8[SETTINGS.index(k)]["centre_crop_gt_error"])
    results = evaluate_localisation(runs[best])
    table9 = [{"nets": f"{best[0].upper()} {best[1]}", "scales": r["scales"], "flip": True,
               "top1": r["top1"], "top5": r["top5"], "gt_class": r["gt"]}
              for r in (results["dense"], results["dense_multi"])]
    # Two nets: the union of their boxes, merged (A.1).
    (scr, _, mean, meta), (pcr, classifier, _, _) = (load_localisation_run(runs[k])
                                                     for k in (("scr", "all"), ("pcr", "all")))
    val = _data(meta["settings"])[1]
    side = min(val.images.shape[1:3])
    for multi in (False, True):
        scales = dense_scales(meta["scale"], side, scr.input_shape[-1], multi)
        classes, boxes, _ = dense_localise([scr, pcr], classifier, val.images, mean=mean,
                                           scales=scales, flip=True)
        errors = localisation_errors(classes, boxes, val.labels, val.boxes)
        table9.append({"nets": "SCR all + PCR all (union)", "scales": list(scales),
                       "flip": True, **errors})
    train = _data(meta["settings"])[0]
    return {"table8": table8, "table9": table9, "best_table8_setting": list(best),
            "mean_box_centre_crop_error": constant_box_error(train, val, scr.input_shape[-1],
                                                             meta["scale"]),
            "validation_images": len(val)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minivgg.localise.tables",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a classification run folder written by minivgg train")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--note", default="", help="free text stored in the JSON (the recipe, "
                        "the machine, how the classification run was made)")
    parser.add_argument("--only", choices=[f"{h}-{f}" for h, f in SETTINGS], nargs="+",
                        help="only train these runs (to split the work across processes); "
                             "writes no JSON")
    args = parser.parse_args(argv)
    if args.only:
        train_settings(args.run_dir, [tuple(s.split("-")) for s in args.only], args.epochs)
        return
    start = time.perf_counter()
    result = tables(args.run_dir, args.epochs)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=os.path.dirname(__file__)).stdout.strip()
    result = {"command": "python -m minivgg.localise.tables " + " ".join(sys.argv[1:] if argv
                                                                          is None else argv),
              "commit": commit, "note": args.note,
              "seconds": round(time.perf_counter() - start, 1), **result}
    atomic_write(args.out, lambda f: f.write(json.dumps(result, indent=1).encode()))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
