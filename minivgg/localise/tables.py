"""The recorded localisation results, from nothing, in one command:

    python -m minivgg.localise.tables --out docs/results/localisation.json --work runs/loc

It trains, with the default recipe (``minivgg.recipe.RECIPE``) at the sizes of ``PLANS``:

1. classification runs on the default (centred) built-in shapes, as ``minivgg train`` makes
   them (the README's run at smaller sizes), with the FC head and with the GAP head
   (``build_vgg(head="gap")``), two seeds each:
   the GAP head's parameters and validation error beside the FC head's;
2. from the FC run of seed 0, ``minivgg localise`` (on the scattered shapes, the run's sizes and
   seed) in every Table 8 setting: SCR and PCR, fine-tuning all layers or only fc6-fc8, same
   epochs and seed; SCR, all layers is what ``minivgg localise RUN`` makes with its defaults,
   and it is trained once more at the paper's lr 1e-3. Centre-crop protocol, ground-truth class;
   Table 9 (dense protocol): the best Table 8 setting at one scale and at three, top-1 and top-5
   localisation error (the class from the classifier), and the union of two nets (SCR + PCR, all
   layers); the classifier's own top-1 error on the centred and the scattered images;
3. Appendix B: that run's features (``features.extract_features``) of scikit-learn's handwritten
   digits (a data set and task the net never saw), a linear classifier on 1..30 labelled digits
   per class, against the same net trained from scratch on the same labels.

Every localisation error stands beside the mean training box's on the same images (the
baseline). Runs already complete in ``--work`` are reused, unfinished ones resumed. The two
parts (the FC seed-0 run, then 2 and 3's features; the other classification runs, then 3's nets
from scratch) go side by side in two processes. The JSON holds the command, the commit, the
minutes and the machine; ``--figure`` draws it.
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

from ..cli.common import save_figure
from ..recipe import RECIPE
from ..train import CHECKPOINT, Trainer, atomic_write, model_from_checkpoint
from .geometry import iou
from .protocols import dense_localise, localisation_errors
from .run import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    _data,
    answer_errors,
    dense_scales,
    evaluate_localisation,
    load_localisation_run,
    localise_run,
    mean_boxes,
    resume_localisation,
)

SETTINGS = (("scr", "fc"), ("scr", "all"), ("pcr", "fc"), ("pcr", "all"))

# The sizes of each experiment. "full" is the recorded one: its classification runs are the
# README's 'minivgg train' (the recipe's defaults: 36x36 images, data seed 0, 8 epochs) on 4000 +
# 500 images instead of 10000 + 1000, what a 2-core machine shared with other jobs allowed;
# "tiny" checks the whole pipeline in seconds (tests/test_localise.py), its numbers mean nothing.
PLANS = {
    "full": {"recipe": {}, "image_size": 36, "data": (4000, 500), "epochs": 8, "seeds": (0, 1),
             "loc_epochs": DEFAULT_EPOCHS,
             "per_class": (1, 3, 10, 30), "draws": 5, "digits": 1797, "digits_test": 797,
             "scratch_steps": 100},
    "tiny": {"recipe": {"width": 0.0625, "fc_width": 8, "batch_size": 16}, "image_size": 34,
             "data": (40, 20), "epochs": 1, "seeds": (0, 1), "loc_epochs": 1,
             "per_class": (1, 2), "draws": 2, "digits": 100, "digits_test": 40, "scratch_steps": 4},
}


def classification_run(run_dir, recipe, sizes, image_size, layout, seed, head="fc", log=None):
    """Train (or finish, or reuse) a classification run of ``recipe`` on the built-in shapes:
    the folder ``minivgg train`` would write, so ``localise_run`` can start from it. Returns
    {"run", "head", "seed", "params", "val_top1" (last epoch), "best_val_top1", "epochs",
    "seconds"}."""
    settings = {"train_size": sizes[0], "val_size": sizes[1], "image_size": image_size,
                "data_seed": 0, "layout": layout, "epochs": recipe.epochs}
    train, val = _data(settings)
    if os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        trainer = Trainer.resume(run_dir, train, val, progress=False, log=log)
    else:
        model = recipe.build(train, seed=seed, head=head)
        trainer = Trainer(model, train, val, recipe=recipe, run_dir=run_dir, seed=seed,
                          progress=False, log=log,
                          settings={**settings, "classes": list(train.classes)})
    history = trainer.fit(recipe.epochs)
    return {"run": run_dir, "layout": layout, "head": head, "seed": seed,
            "params": trainer.model.num_params(), "epochs": len(history),
            "val_top1": history[-1]["val_top1"], "best_val_top1": min(history["val_top1"]),
            "seconds": round(sum(history["seconds"]), 1)}


def _loc_run(source, head, fine_tune, epochs, log, lr=DEFAULT_LR):
    """The localisation run ``<source>-loc-<head>-<fine_tune>[-lr<lr>]``: made, finished or
    reused."""
    out = f"{os.path.normpath(source)}-loc-{head}-{fine_tune}" + (
        "" if lr == DEFAULT_LR else f"-lr{lr:g}")
    if not os.path.exists(os.path.join(out, CHECKPOINT)):
        return localise_run(source, head=head, fine_tune=fine_tune, epochs=epochs, lr=lr,
                            out_dir=out, log=log)
    return resume_localisation(out, epochs, log=log)


def localisation_tables(source, epochs, log=None):
    """Tables 8 and 9 from the classification run in ``source`` (module docstring), each row
    with the mean box's error on the same images ("baseline")."""
    from ..evaluate import evaluate

    runs = {k: _loc_run(source, *k, epochs, log) for k in SETTINGS}
    paper_lr = _loc_run(source, "scr", "all", epochs, log, lr=1e-3)
    (scr, _, mean, meta), (pcr, classifier, _, _) = (load_localisation_run(runs[k])
                                                     for k in (("scr", "all"), ("pcr", "all")))
    train, val = _data(meta["settings"])
    crop = scr.input_shape[-1]
    constant = mean_boxes(train, val.images, crop, meta["scale"])
    fixed = baselines(train, val, crop, meta["scale"])
    table8 = []
    for path in [runs[k] for k in SETTINGS] + [paper_lr]:
        run = load_localisation_run(path)[3]
        # The last epoch's validation error is the centre-crop protocol on the validation set.
        table8.append({"head": run["head"].upper(), "fine_tuned": "all layers"
                       if run["fine_tune"] == "all" else "fc6-fc8", "lr": run["lr"],
                       "epochs": run["epoch"],
                       "centre_crop_gt_error": run["history"][-1]["val_error"],
                       "curve": [r["val_error"] for r in run["history"]],
                       "baseline": fixed["mean_box"], "train_seconds": round(run["seconds"], 1)})
    best = SETTINGS[int(np.argmin([row["centre_crop_gt_error"] for row in table8[:4]]))]
    dense = evaluate_localisation(runs[best])
    table9 = [{"nets": f"{best[0].upper()} {best[1]}", "scales": r["scales"], "flip": True,
               "top1": r["top1"], "top5": r["top5"], "gt_class": r["gt"],
               "baseline": r["baseline"]} for r in (dense["dense"], dense["dense_multi"])]
    # Two nets: the union of their boxes, merged (A.1).
    for multi in (False, True):
        scales = dense_scales(meta["scale"], min(val.images.shape[1:3]), crop, multi)
        classes, boxes, _ = dense_localise([scr, pcr], classifier, val.images, mean=mean,
                                           scales=scales, flip=True)
        table9.append({"nets": "SCR all + PCR all (union)", "scales": list(scales), "flip": True,
                       **localisation_errors(classes, boxes, val.labels, val.boxes),
                       "baseline": answer_errors(classes, constant, val)})
    classifier, arrays, cls_meta = model_from_checkpoint(source)
    scale = cls_meta["augment"]["scale"]
    errors = {name: evaluate(classifier, data, mean=arrays["mean"], scales=scale)["center"]["top1"]
              for name, data in (("centred", _data(cls_meta["settings"])[1]), ("scattered", val))}
    return {"source": source, "table8": table8, "table9": table9,
            "best_table8_setting": list(best), "baselines": fixed,
            "classifier_top1_error": errors, "validation_images": len(val)}


def baselines(train, val, crop, scale):
    """Centre-crop localisation errors of two answers that ignore the image: the mean training
    box, and a box of the mean training size at the image's centre."""
    constant = mean_boxes(train, val.images, crop, scale)
    size = np.mean(train.boxes[:, 2:] - train.boxes[:, :2], axis=0)
    middle = np.array([[w / 2, h / 2] for h, w in (im.shape[:2] for im in val.images)])
    centred = np.concatenate([middle - size / 2, middle + size / 2], axis=1)
    return {name: float(np.mean(~(iou(boxes, val.boxes) > 0.5)))
            for name, boxes in (("mean_box", constant), ("centre_box", centred))}


def digit_splits(plan):
    """Appendix B's data: (digits, test indices, pool indices, {n: [label sets]}), the label
    sets ``draws`` random choices of n digits per class from the pool, fixed by n and draw."""
    from ..data.digits import sklearn_digits

    digits = sklearn_digits(plan["image_size"]).subset(np.arange(plan["digits"]))
    order = np.random.default_rng(0).permutation(len(digits))
    test, pool = order[:plan["digits_test"]], order[plan["digits_test"]:]
    sets = {n: [np.concatenate([np.random.default_rng([n, draw]).choice(
        pool[digits.labels[pool] == k], n, replace=False) for k in range(10)])
        for draw in range(plan["draws"])] for n in plan["per_class"]}
    return digits, test, pool, sets


def transfer(source, plan):
    """Appendix B on scikit-learn's digits (module docstring): accuracy on ``digits_test`` held
    out digits against labelled digits per class for the linear classifier on the source run's
    features, the mean and sd over the ``draws`` label sets (``digit_splits``)."""
    from ..features import LinearClassifier, extract_features

    model, arrays, _ = model_from_checkpoint(source)
    digits, test, _, sets = digit_splits(plan)
    scales = (plan["image_size"], plan["image_size"] + plan["image_size"] // 3)
    start = time.perf_counter()
    feats = extract_features(model, digits.images, mean=arrays["mean"], scales=scales, flip=True)
    feature_seconds = time.perf_counter() - start
    rows = []
    for n, label_sets in sets.items():
        accuracies = [LinearClassifier(reg=1e-4).fit(feats[picked], digits.labels[picked], 10)
                      .accuracy(feats[test], digits.labels[test]) for picked in label_sets]
        rows.append({"per_class": n, "linear": float(np.mean(accuracies)),
                     "linear_sd": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1
                     else 0.0})
    return {"data": f"scikit-learn digits, {plan['image_size']}x{plan['image_size']}, "
                    f"{len(test)} test images", "feature_scales": list(scales), "flip": True,
            "feature_seconds": round(feature_seconds, 1), "rows": rows}


def scratch(plan, recipe):
    """The other side of Appendix B: {n: test accuracy} of the net trained from scratch on the
    first label set of each n (``scratch_accuracy``)."""
    digits, test, pool, sets = digit_splits(plan)
    return {n: scratch_accuracy(digits, label_sets[0], pool, test, plan, recipe)
            for n, label_sets in sets.items()}


def scratch_accuracy(digits, chosen, pool, test, plan, recipe):
    """The recipe's net trained from scratch on ``chosen`` digits for about ``scratch_steps``
    SGD steps, its accuracy on ``test`` (centre crop at the training scale). The learning rate
    is the recipe's for the first 3/4 of the steps, then a tenth of it: the plateau schedule
    would cut it after an "epoch" of a few images, long before a net can learn."""
    from ..evaluate import evaluate

    few = digits.subset(chosen)
    epochs = max(1, math.ceil(plan["scratch_steps"] * recipe.batch_size / len(chosen)))
    recipe = recipe.replace(schedule="step", milestones=(max(1, round(0.75 * epochs)),))
    model = recipe.build(few, seed=0)
    # The Trainer validates every epoch; a few other digits of the pool (not the test digits)
    # keep that cheap: nothing is decided by them.
    trainer = Trainer(model, few, digits.subset(np.setdiff1d(pool, chosen)[:20]),
                      recipe=recipe, seed=0, progress=False, log=None)
    trainer.fit(epochs)
    return 1.0 - evaluate(model, digits.subset(test), mean=trainer.mean,
                          scales=recipe.train_scale())["center"]["top1"]


def plan_recipe(plan):
    """The default recipe with the plan's changes and epochs."""
    return RECIPE.replace(**plan["recipe"], epochs=plan["epochs"])


def classifier_runs(work, plan, log, which):
    """The classification runs ``which`` [(head, seed)] of the plan (item 1)."""
    recipe = plan_recipe(plan)
    return [classification_run(os.path.join(work, f"cls-centred-{head}-{seed}"), recipe,
                               plan["data"], plan["image_size"], "centred", seed, head, log=log)
            for head, seed in which]


def localisation_part(work, plan_name, log=print):
    """The FC run of seed 0, then items 2 and 3 from it."""
    plan = PLANS[plan_name]
    (source,) = classifier_runs(work, plan, log, [("fc", 0)])
    return {"classification": [source],
            "localisation": localisation_tables(source["run"], plan["loc_epochs"], log),
            "appendix_b": transfer(source["run"], plan)}


def heads_part(work, plan_name, log=print):
    """The other classification runs (FC of the other seeds, GAP of every seed), and Appendix
    B's nets trained from scratch."""
    plan = PLANS[plan_name]
    which = [("fc", s) for s in plan["seeds"] if s != 0] + [("gap", s) for s in plan["seeds"]]
    return {"classification": classifier_runs(work, plan, log, which),
            "scratch": scratch(plan, plan_recipe(plan))}


PARTS = {"localisation": localisation_part, "heads": heads_part}


def _part(name, work, plan_name):
    """One part in a worker process: one thread for minivgg's kernels (and, from the
    environment the parent set, one BLAS thread), its log lines tagged with its name."""
    from ..kernels import jit
    jit.set_num_threads(1)
    return PARTS[name](work, plan_name, log=lambda line: print(f"[{name}] {line}", flush=True))


def record(work, plan_name="full", workers=2, log=print):
    """Every experiment of the module docstring; returns the JSON record (without command).
    The two parts are independent: with ``workers=2`` they run side by side in two fresh
    processes, one core each."""
    start = time.perf_counter()
    if workers == 1:
        parts = [PARTS[name](work, plan_name, log) for name in PARTS]
    else:
        import concurrent.futures as futures
        import multiprocessing

        from ..threads import one_blas_thread_children
        with one_blas_thread_children(), futures.ProcessPoolExecutor(
                2, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_part, PARTS, [work] * 2, [plan_name] * 2))
    localisation, heads = parts
    plan = PLANS[plan_name]
    runs = localisation.pop("classification") + heads["classification"]
    for row in localisation["appendix_b"]["rows"]:
        row["scratch"] = heads["scratch"][row["per_class"]]
    return {"plan": plan_name, "sizes": plan,
            "recipe": plan_recipe(plan).to_dict(), "classification": runs,
            "gap_vs_fc": gap_summary(runs), **localisation, "workers": workers,
            "minutes": round((time.perf_counter() - start) / 60, 1)}


def gap_summary(heads):
    """Per head: parameters and the seeds' last-epoch validation top-1 errors, mean and sd."""
    out = {}
    for head in ("fc", "gap"):
        errors = [r["val_top1"] for r in heads if r["head"] == head]
        out[head] = {"params": next(r["params"] for r in heads if r["head"] == head),
                     "val_top1": errors, "mean": float(np.mean(errors)),
                     "sd": float(np.std(errors, ddof=1)) if len(errors) > 1 else 0.0}
    return out


def figure(result, path):
    """Two panels: every localisation error beside its baseline; Appendix B's accuracy against
    the labels per class."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    loc = result["localisation"]
    rows = [(f"{r['head']} {r['fine_tuned']}, lr {r['lr']:g}\ncentre, GT class",
             r["centre_crop_gt_error"], r["baseline"]) for r in loc["table8"]]
    rows += [(f"{r['nets']}\ndense Q={','.join(map(str, r['scales']))}, top-1", r["top1"],
              r["baseline"]["top1"]) for r in loc["table9"]]
    y = np.arange(len(rows))
    left.barh(y - 0.2, [100 * r[1] for r in rows], 0.4, label="localisation net")
    left.barh(y + 0.2, [100 * r[2] for r in rows], 0.4, label="mean box (baseline)",
              color="lightgrey")
    left.set_yticks(y, [r[0] for r in rows], fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("localisation error, % (IoU > 0.5 counts)")
    left.legend(fontsize=8)
    left.set_title("Tables 8 and 9, scattered shapes")
    b = result["appendix_b"]["rows"]
    n = [r["per_class"] for r in b]
    right.errorbar(n, [100 * r["linear"] for r in b], [100 * r["linear_sd"] for r in b],
                   marker="o", label="features + linear classifier")
    right.plot(n, [100 * r["scratch"] for r in b], "s--", label="same net from scratch")
    right.axhline(10, color="grey", lw=0.8, label="chance")
    right.set_xscale("log")
    right.set_xticks(n, [str(v) for v in n])
    right.set_xlabel("labelled digits per class")
    right.set_ylabel("test accuracy, %")
    right.legend(fontsize=8)
    right.set_title("Appendix B on scikit-learn's digits")
    save_figure(fig, path, os.path.splitext(path)[1][1:].lower() or "png")   # as its name says


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minivgg.localise.tables",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--work", required=True, help="folder for the runs (reused if there)")
    parser.add_argument("--plan", choices=tuple(PLANS), default="full")
    parser.add_argument("--figure", default=None,
                        help="figure to draw the results in (.png; .pdf, .svg by the name)")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=2,
                        help="processes: the two independent parts side by side, or one after "
                             "the other")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout
    result = {"command": "python -m minivgg.localise.tables " + " ".join(
        sys.argv[1:] if argv is None else argv), "commit": commit.strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        **record(args.work, args.plan, args.workers)}
    atomic_write(args.out, lambda f: f.write(json.dumps(result, indent=1).encode()))
    if args.figure:
        figure(result, args.figure)
    print(json.dumps({k: v for k, v in result.items() if k != "classification"}, indent=1))


if __name__ == "__main__":
    main()
