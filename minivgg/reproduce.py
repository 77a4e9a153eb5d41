"""The paper's experiments at small scale: Tables 3-6 of Simonyan & Zisserman (ICLR 2015), each
net trained with several seeds, every learning curve kept, and the paper's ten claims judged
against the seeds' spread and the test set's size.

    minivgg reproduce --out runs/paper            # the full run (docs/results/ has its record)
    minivgg reproduce --quick --out /tmp/paper    # Table 3's six nets, small: a minute or two

    report = run("full", "runs/paper")            # the same from Python: the JSON as a dict

The data are the built-in shapes, 64x64 (``minivgg.data.synthetic_shapes``; the quick version
draws them in fixed colours; ``dataset="pairs"``: the harder ``synthetic_pairs``;
docs/results/README.md says why the record uses the shapes).
Everything is the paper's geometry divided by 7 (224 -> 32): the crop is 32, training scale
S = 36 stands for 256, S = 54 for 384 and S in [36, 72] for [256; 512]; test scales as Sec.
4.1-4.2 (Q = S; multi-scale Q = S - 4, S, S + 4 for fixed S, the paper's +-32 / 7, and 36, 54,
72 for jittered S).

The protocol, where it can run here (docs/results/README.md says what differs and why):
- every net: SGD with momentum 0.9, weight decay 5e-4, batch 32, dropout 0.5, random crops,
  flips and the PCA colour shift; lr 1e-2 divided by 10 when the validation accuracy stops
  improving, three times, then one more epoch (or the epoch budget ends);
- as the paper: A and A-LRN from scratch (He's initialisation here), the deeper B, C, D, E
  warm-started from the same seed's trained A (``init_from_shallower``: its first four
  convolutions and three FC layers); to measure the alternative too (the authors' later finding),
  D and B also from scratch ("D He", "B He");
- the scale chain: D at S = 36, then D at S = 54 initialised from it at lr 1e-3, then D with
  jittered S fine-tuned from that at lr 1e-3;
- B (from scratch) against the same net with each pair of 3x3 convolutions made one 5x5, also
  from scratch, since A has no 5x5 layers to start it from (Sec. 4.1);
- testing: dense (with flips) at one and at three scales for every net; multi-crop (a grid x grid
  grid, with flips) and dense + multi-crop for the jittered D; fusion (the mean posterior) of the
  best two nets and of all nets, seed by seed.

A run that never left chance (its validation accuracy never above chance by two binomial
standard errors in two epochs in a row), or fell back to it by its last epoch, or diverged, is a
failed run: it is listed with the reason, and left out of every mean and claim.
"""

import json
import math
import os
import platform
import shutil
import sys
import time

import numpy as np

from .data.synthetic import dataset_splits
from .evaluate import chance_threshold, combine, paper_scales, posteriors, top_k_error
from .recipe import RECIPE
from .train import NonFiniteLossError, Trainer, atomic_write, model_from_checkpoint
from .vgg import init_from_shallower

CROP = 32
S_SMALL, S_LARGE, S_JITTER = 36, 54, (36, 72)      # the paper's 256, 384, [256; 512] / 7
STEP = 4                                            # the paper's multi-scale +-32, / 7
# B with each pair of 3x3 convolutions replaced by one 5x5 of the same field (Sec. 4.1).
FIVE_BY_FIVE = ["conv5-64", "M", "conv5-128", "M", "conv5-256", "M", "conv5-512", "M",
                "conv5-512", "M"]

# The nets, one row each: label, configuration, training scale, how it starts ("he": from
# scratch; "warm": init_from_shallower of that seed's net named in `parent`; "finetune": all
# weights of `parent`, at lr / 10). Parents come before their children. As the paper (Sec. 3.1):
# the shallow A and A-LRN from scratch, the deeper B-E from A; "D He" and "B He" are the same nets
# from scratch (the authors' later finding), and B's from-scratch twin is what the five-5x5 net,
# which cannot take A's 3x3 layers, is compared with.
NETS = (
    ("A", "A", S_SMALL, "he", None),
    ("D He", "D", S_SMALL, "he", None),
    ("A-LRN", "A-LRN", S_SMALL, "he", None),
    ("D", "D", S_SMALL, "warm", "A"),
    ("E", "E", S_SMALL, "warm", "A"),
    ("C", "C", S_SMALL, "warm", "A"),
    ("B", "B", S_SMALL, "warm", "A"),
    ("D S=54", "D", S_LARGE, "finetune", "D"),
    ("B He", "B", S_SMALL, "he", None),
    ("5x5", FIVE_BY_FIVE, S_SMALL, "he", None),
    ("D jitter", "D", S_JITTER, "finetune", "D S=54"),
)
MULTICROP_NETS = ("D jitter",)          # Table 5 is about the jittered D

# Test names, as they appear in a run's "tests" and in the claims' "better" / "worse".
DENSE, MULTI, CENTER = "dense", "dense, multi-scale Q", "centre crop"
CROPS, BOTH = "multi-crop, multi-scale Q", "dense + multi-crop, multi-scale Q"

# The paper's results beside ours: top-1 / top-5 error % (Table 3, S = 256 and jittered S;
# PAPER.md), keyed by our labels; the 5x5 net is reported only as "7% higher top-1 than B".
PAPER_TABLE3 = {"A": (29.6, 10.4), "A-LRN": (29.7, 10.5), "B": (28.7, 9.9), "C": (28.1, 9.4),
                "D": (27.0, 8.8), "E": (27.3, 9.0), "D jitter": (25.6, 8.1)}
PAPER_DIFFERENCES = {"LRN does not help": 0.1, "B beats A": 0.9, "D beats B": 1.7,
                     "E matches D": -0.3, "D beats C": 1.1, "B beats the five-5x5 net": 7.0,
                     "jittered S beats fixed S": 1.2, "multi-scale Q beats single Q": 0.8,
                     "dense + multi-crop beats either alone": 0.2,
                     "fusion beats the best single net": None}

# The ten claims: (claim, table, better, worse, kind). better / worse are "label" (the net's
# Table 3 result, dense at its single Q) or "label [test]"; a tuple of candidates takes the one
# with the lower mean error ("either alone", "the best single net"). kind: "beats" (the paper
# says better has the lower error) or "no gain" (the paper says worse, the addition, does not
# lower the error: contradicted only if it does by more than the noise).
FUSIONS = ("fusion of the best two", "fusion of all")
CLAIMS = (
    ("LRN does not help", "3", "A", "A-LRN", "no gain"),
    ("B beats A", "3", "B", "A", "beats"),
    ("D beats B", "3", "D", "B", "beats"),
    ("E matches D", "3", "D", "E", "no gain"),
    ("D beats C", "3", "D", "C", "beats"),
    ("B beats the five-5x5 net", "4.1", f"B He [{CENTER}]", f"5x5 [{CENTER}]", "beats"),
    ("jittered S beats fixed S", "3", "D jitter", "D S=54", "beats"),
    ("multi-scale Q beats single Q", "4", f"D jitter [{MULTI}]", "D jitter", "beats"),
    ("dense + multi-crop beats either alone", "5", f"D jitter [{BOTH}]",
     (f"D jitter [{MULTI}]", f"D jitter [{CROPS}]"), "beats"),
    ("fusion beats the best single net", "6", FUSIONS,
     tuple(f"{net[0]} [{MULTI}]" for net in NETS), "beats"),
)
VERDICTS = ("agrees", "within noise", "contradicts")

# Sizes: "full" is the recorded run (<= 60 min on 2 cores); "quick" is a small version that
# learns, in a minute or two (below); "tiny" is for the tests (seconds). Within a mode the
# same for every net: never tuned per configuration.
_COMMON = dict(dataset="shapes", image_size=64, width=1 / 8, fc_width=128, batch_size=32, lr=0.01,
               patience=2, grid=3, workers=2, data_seed=0, colours="random")
# The quick mode: Table 3's six nets of the paper's Sec. 3.1 protocol (A and A-LRN from scratch,
# B-E warm-started from that seed's A), judged on the five Table 3 claims and fusion; the scale
# chain and the from-scratch twins are the full run's. Its shapes are drawn in one fixed pair of
# colours: with random colours every net sits at chance for hundreds of steps (docs/TRAINING.md,
# the chance plateau), which is the whole of a few-minute budget. Its rate is half the full run's:
# four epochs leave no room for the plateau rule to cut it, and at 0.01 E failed from both seeds
# and B and C lost most of what they had learned from one (docs/TRAINING.md has the runs).
QUICK_NETS = ("A", "A-LRN", "B", "C", "D", "E")
SETTINGS = {
    "full": dict(_COMMON, n_train=1500, n_val=400, n_test=1000, epochs=14, finetune_epochs=4,
                 seeds=3),
    "quick": dict(_COMMON, n_train=2000, n_val=200, n_test=300, epochs=4, finetune_epochs=2,
                  seeds=2, colours="fixed", lr=0.005, nets=QUICK_NETS),
    "tiny": dict(_COMMON, n_train=48, n_val=24, n_test=30, image_size=40, width=1 / 16,
                 fc_width=16, batch_size=16, epochs=1, finetune_epochs=1, seeds=2, grid=2,
                 workers=1),
}
MAX_RECORD_BYTES = 64 << 20          # --judge refuses a larger "record" before reading it
JSON_NAME, FIGURE_NAME, RUNS_DIR, DATA_NAME = "paper_claims.json", "paper_claims.png", "runs", \
    "data.npz"


# -- statistics: what the claims are judged by ----------------------------------------------------

def left_chance_epoch(val_top1, num_classes, n_val):
    """The epoch (1-based) from which the net had left chance: the first of two epochs in a row
    whose validation accuracy exceeds chance by the threshold (one such epoch happens by luck
    about once in 40), or None if there are none."""
    threshold = chance_threshold(num_classes, n_val)
    above = [1.0 - error > threshold for error in val_top1]
    for epoch in range(1, len(above)):
        if above[epoch - 1] and above[epoch]:
            return epoch
    return None


def failed(run, num_classes, n_val):
    """Why a run is not an architecture result, or None: it diverged, never left chance, or fell
    back to chance (its last epoch's validation accuracy not above the threshold)."""
    if run.get("diverged"):
        return f"diverged: {run['diverged']}"
    if run["left_chance_epoch"] is None:
        return "never left chance"
    if 1.0 - run["curve"][-1]["val_top1"] <= chance_threshold(num_classes, n_val):
        return "fell back to chance"
    return None


def standard_error(errors, n_test):
    """Standard error (percentage points) of the mean of several nets' top-1 errors (%): the
    seeds' spread, sample variance / k, plus the test set's binomial sampling error of the mean
    error p, p (100 - p) / n (the nets share one test set, so that part does not shrink with k)."""
    errors = np.asarray(errors, dtype=np.float64)
    if len(errors) == 0:
        raise ValueError("standard_error needs at least one error")
    spread = errors.var(ddof=1) / len(errors) if len(errors) > 1 else 0.0
    p = errors.mean()
    return math.sqrt(spread + p * (100.0 - p) / n_test)


def verdict(kind, difference, two_se):
    """The claim's verdict from difference = mean error(worse) - mean error(better), points.

    "beats": agrees if the difference exceeds two standard errors, contradicts if it is below
    minus two, else within noise. "no gain" (the paper: the addition does not help; LRN, E vs D):
    contradicts only if the addition lowers the error beyond the noise, else agrees (a difference
    within noise is what the claim predicts)."""
    if kind == "beats":
        return ("agrees" if difference > two_se else "contradicts" if difference < -two_se
                else "within noise")
    if kind == "no gain":
        return "contradicts" if difference < -two_se else "agrees"
    raise ValueError(f"kind must be 'beats' or 'no gain'; got {kind!r}")


def row_by_seed(report, label):
    """{seed: top-1 error (%)} of every successful seed of a row: "label" (the runs' "top1"),
    "label [test]" (a run's tests[test]["top1"]) or a fusion's name. Failed runs are left out."""
    if label in FUSIONS:
        return {f["seed"]: f["top1"] for f in report["fusions"] if f["config"] == label}
    config, _, test = label.partition(" [")
    test = test[:-1] if test else None
    return {run["seed"]: run["top1"] if test is None else run["tests"][test]["top1"]
            for run in report["runs"] if run["config"] == config
            and run["failed"] is None and (test is None or test in run["tests"])}


def row_errors(report, label):
    """The top-1 errors (%) of a row's successful seeds, in seed order (``row_by_seed``)."""
    errors = row_by_seed(report, label)
    return [errors[seed] for seed in sorted(errors)]


def paired_difference(better, worse, n_test):
    """(difference, two_se) of two rows compared seed by seed: ``better`` and ``worse`` map
    seed -> top-1 error (%) on the same test set; only seeds both rows have count.

    difference = mean over those k seeds of d_s = worse_s - better_s. The pairing is the
    experiment's design: the same seed means the same data order and augmentation draws, and
    for the warm-started nets the same trained A underneath, so a seed that went badly for both
    rows (a late exit from the chance plateau, say) cancels in d_s instead of widening both
    rows' spreads. Its standard error: sqrt(var(d) / k + (p_b (100 - p_b) + p_w (100 - p_w)) / n),
    the seeds' spread of d plus the binomial sampling error of both rows' mean errors p on the
    n test images, counted as if independent (they share the images, so this overstates it)."""
    seeds = sorted(set(better) & set(worse))
    if not seeds:
        raise ValueError("paired_difference needs a seed both rows have")
    d = np.array([worse[s] - better[s] for s in seeds], dtype=np.float64)
    if not np.isfinite(d).all():
        raise ValueError(f"paired_difference: a non-finite error among seeds {seeds}")
    p_b, p_w = (np.mean([row[s] for s in seeds]) for row in (better, worse))
    spread = d.var(ddof=1) / len(d) if len(d) > 1 else 0.0
    se = math.sqrt(spread + (p_b * (100.0 - p_b) + p_w * (100.0 - p_w)) / n_test)
    return float(d.mean()), 2.0 * se


def judge(report):
    """The claims of CLAIMS from the report's runs and fusions, each judged seed by seed
    (``paired_difference``): a list of dicts."""
    n_test = report["settings"]["n_test"]
    claims = []

    def pick(candidates):
        """The candidate with the lowest mean error among those with successful runs."""
        options = [c for c in ((candidates,) if isinstance(candidates, str) else candidates)
                   if row_by_seed(report, c)]
        return min(options, key=lambda c: np.mean(row_errors(report, c))) if options else None

    for text, table, better, worse, kind in CLAIMS:
        better, worse = pick(better), pick(worse)
        entry = {"claim": text, "table": table, "better": better, "worse": worse, "kind": kind,
                 "difference": None, "two_se": None, "verdict": "within noise",
                 "paper_difference": PAPER_DIFFERENCES[text]}
        b, w = (row_by_seed(report, row) if row else {} for row in (better, worse))
        entry["seeds"] = sorted(set(b) & set(w))
        if not entry["seeds"]:
            entry["note"] = "no seed with a successful run on both sides: nothing to compare"
        else:
            difference, two_se = paired_difference(b, w, n_test)
            entry["difference"], entry["two_se"] = round(difference, 3), round(two_se, 3)
            entry["verdict"] = verdict(kind, entry["difference"], entry["two_se"])
        claims.append(entry)
    return claims


# -- one net ----------------------------------------------------------------------------------

def load_data(out):
    """(train, val, test) from the run's data file (written once by ``run``)."""
    from .data import ImageDataset
    with np.load(os.path.join(out, DATA_NAME)) as data:
        classes = tuple(str(c) for c in data["classes"])
        return tuple(ImageDataset(data[f"{s}_images"], data[f"{s}_labels"], classes)
                     for s in ("train", "val", "test"))


def run_dir(out, label, seed):
    return os.path.join(out, RUNS_DIR, f"{label.replace(' ', '_').replace('=', '')}-seed{seed}")


def experiment_recipe(cfg, scale):
    """The project's recipe (``minivgg.recipe.RECIPE``: He's init, fc8 from N(0, 0.01^2),
    standardised input, dropout 0.5, momentum 0.9, weight decay 5e-4, the augmentation) at this
    experiment's sizes and training scale: the same for every net."""
    return RECIPE.replace(width=cfg["width"], fc_width=cfg["fc_width"], input_size=CROP,
                          batch_size=cfg["batch_size"], lr=cfg["lr"], patience=cfg["patience"],
                          max_reductions=3, scale=scale)


def train_net(task):
    """Train and test one net (in a worker process): ``task`` is {"out", "label", "seed",
    "settings"}; its parent's run folder must exist. Returns the run's record."""
    out, label, seed, cfg = task["out"], task["label"], task["seed"], task["settings"]
    _, config, scale, start, parent = next(net for net in NETS if net[0] == label)
    train, val, test = load_data(out)
    recipe, epochs = experiment_recipe(cfg, scale), cfg["epochs"]
    if start == "finetune":
        model = model_from_checkpoint(run_dir(out, parent, seed))[0]
        recipe, epochs = recipe.replace(lr=recipe.lr / 10), cfg["finetune_epochs"]
    else:
        model = recipe.build(train, seed=seed, config=config)
        if start == "warm":
            init_from_shallower(model, model_from_checkpoint(run_dir(out, parent, seed))[0])
    optimizer = recipe.optimizer(model)
    schedule = recipe.lr_schedule(optimizer, chance_threshold(len(train.classes), len(val)))
    folder = run_dir(out, label, seed)
    trainer = Trainer(model, train, val, recipe=recipe, optimizer=optimizer, schedule=schedule,
                      seed=seed, run_dir=folder, progress=False, log=None,
                      settings={"dataset": cfg["dataset"], "train_size": cfg["n_train"],
                                "val_size": cfg["n_val"], "image_size": cfg["image_size"],
                                "data_seed": cfg["data_seed"], "colours": cfg.get("colours")})
    record = {"config": label, "seed": seed, "top1": None, "top5": None,
              "left_chance_epoch": None, "tests": {}, "curve": []}
    clock = time.perf_counter()
    try:
        # The paper's stop: three cuts of the rate, then one more epoch (or the budget ends).
        while trainer.epoch < epochs:
            trainer.fit(trainer.epoch + 1)
            if schedule.reductions == 3 and trainer.history[-1]["lr"] < optimizer.lr * 1.5:
                break
    except NonFiniteLossError as error:
        record["diverged"] = str(error)
    history = trainer.history
    record["curve"] = [{k: r[k] for k in ("epoch", "lr", "train_loss", "train_top1", "val_loss",
                                          "val_top1")} for r in history]
    record["left_chance_epoch"] = left_chance_epoch(history["val_top1"], len(train.classes),
                                                    len(val))
    record["failed"] = failed(record, len(train.classes), len(val))
    if "diverged" not in record:
        record["tests"] = test_net(model, trainer.mean, test, scale, label, cfg["grid"], folder)
        record["top1"], record["top5"] = (record["tests"][DENSE][k] for k in ("top1", "top5"))
    record["seconds"] = round(time.perf_counter() - clock, 1)
    return record


def test_net(model, mean, test, scale, label, grid, folder):
    """The paper's tests of one net on the test set: {test name: {"top1", "top5"}} in %, and the
    posteriors in ``folder``/posteriors.npz (for fusion)."""
    single = paper_scales(scale)[0]
    by_scale = {q: posteriors(model, test.images, mean=mean, method="dense", scales=q, flip=True)
                for q in paper_scales(scale, True, STEP)}
    probs = {DENSE: by_scale[single], MULTI: combine(*by_scale.values()),
             CENTER: posteriors(model, test.images, mean=mean, method="center", scales=single)}
    if label in MULTICROP_NETS:
        probs[CROPS] = posteriors(model, test.images, mean=mean, method="multicrop",
                                  scales=paper_scales(scale, True, STEP), flip=True, grid=grid)
        probs[BOTH] = combine(probs[MULTI], probs[CROPS])
    for name, p in probs.items():
        if not np.isfinite(p).all():
            raise FloatingPointError(f"{label}: non-finite posteriors under {name}")
    atomic_write(os.path.join(folder, "posteriors.npz"),
                 lambda f: np.savez(f, **{name: p for name, p in probs.items()}))
    return {name: errors(p, test.labels) for name, p in probs.items()}


def errors(probs, labels):
    """{"top1", "top5"} errors in %, rounded to 0.01."""
    return {f"top{k}": round(100 * top_k_error(probs, labels, k), 2) for k in (1, 5)}


def fuse(report, test_labels, out):
    """Seed by seed, the mean posterior (dense, multi-scale Q) of the best two nets (by their
    mean Table 4 error over seeds) and of all nets; failed runs are left out."""
    ok = [r for r in report["runs"] if r["failed"] is None]
    means = {}
    for r in ok:
        means.setdefault(r["config"], []).append(r["tests"][MULTI]["top1"])
    ranked = sorted(means, key=lambda c: np.mean(means[c]))
    fusions = []
    for name, members in ((FUSIONS[0], ranked[:2]), (FUSIONS[1], ranked)):
        for seed in sorted({r["seed"] for r in ok}):
            runs = [r for r in ok if r["seed"] == seed and r["config"] in members]
            if len(runs) < 2:
                continue
            probs = [np.load(os.path.join(run_dir(out, r["config"], seed), "posteriors.npz"))[MULTI]
                     for r in runs]
            fusions.append({"config": name, "seed": seed, "members": [r["config"] for r in runs],
                            **errors(combine(*probs), test_labels)})
    return fusions


# -- the whole experiment -------------------------------------------------------------------

def _tasks(cfg, out, nets):
    """Every (label, seed) of the chosen nets and their parents, in NETS' order (which starts
    the longest chains first)."""
    wanted = set(nets)
    for net in reversed(NETS):                      # children come after their parents
        if net[0] in wanted and net[4] is not None:
            wanted.add(net[4])
    return [{"out": out, "label": net[0], "seed": seed, "settings": cfg}
            for net in NETS if net[0] in wanted for seed in range(cfg["seeds"])]


def _parent(task):
    return next(net[4] for net in NETS if net[0] == task["label"])


def _init_worker():
    from .kernels import jit
    jit.set_num_threads(1)           # one core per worker: two workers beat one two-thread one


def _run_tasks(tasks, workers, log):
    """Run ``train_net`` over the tasks, each after its parent; ``workers`` processes (1: here)."""
    done, records = set(), []

    def finished(task, record):
        done.add((task["label"], task["seed"]))
        records.append(record)
        log(f"  {record['config']:>9} seed {record['seed']}: top-1 {record['top1']}%, top-5 "
            f"{record['top5']}%, left chance at epoch {record['left_chance_epoch']}, "
            f"{record['seconds']:.0f} s" + (f"; FAILED: {record['failed']}" if record["failed"]
                                            else ""))

    def ready(task):
        parent = _parent(task)
        return parent is None or (parent, task["seed"]) in done

    pending = list(tasks)
    if workers == 1:
        while pending:
            task = next(t for t in pending if ready(t))
            pending.remove(task)
            finished(task, train_net(task))
        return records
    import concurrent.futures as futures
    import multiprocessing

    from .threads import one_blas_thread_children
    # Fresh interpreters with one BLAS thread each (read when NumPy starts).
    with one_blas_thread_children():
        with futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker) as pool:
            running = {}
            while pending or running:
                for task in [t for t in pending if ready(t)]:
                    # Keep at most `workers` queued, so a parent finishing early goes first.
                    if len(running) >= workers:
                        break
                    pending.remove(task)
                    running[pool.submit(train_net, task)] = task
                finished_now, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in finished_now:
                    finished(running.pop(future), future.result())
    return records


def machine():
    """What ran it: CPU, cores, OS, versions, and how busy the machine was at the start."""
    load = f", load average {os.getloadavg()[0]:.1f} at the start" if hasattr(
        os, "getloadavg") else ""
    return (f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, NumPy "
            f"{np.__version__}{load}")


def run(mode="full", out="reproduce", *, nets=None, dataset=None, overwrite=False, command=None,
        log=print):
    """Train every net of NETS for every seed, test them, fuse them, judge the claims; write
    ``out``/paper_claims.json and paper_claims.png (and ``out``/runs/: each net's run folder).

    mode: "full", "quick" or "tiny" (SETTINGS); nets: labels of NETS to train (with the nets
    they start from), default the mode's "nets" (quick: QUICK_NETS), else all; claims without
    runs on both sides say so; dataset: "shapes" (the default) or "pairs"
    (minivgg.data.synthetic.DATASETS). Refuses an ``out``
    that already holds a run unless ``overwrite``. Returns the report (the JSON as a dict)."""
    if mode not in SETTINGS:
        raise ValueError(f"mode must be one of {tuple(SETTINGS)}; got {mode!r}")
    labels = [net[0] for net in NETS]
    nets = list(SETTINGS[mode].get("nets", labels) if nets is None else nets)
    if not nets or any(n not in labels for n in nets):
        raise ValueError(f"nets must be labels of NETS {labels}; got {nets!r}")
    cfg = dict(SETTINGS[mode], mode=mode, nets=nets)
    if dataset is not None:
        cfg["dataset"] = dataset
    out = os.fspath(out)
    existing = [p for p in (JSON_NAME, RUNS_DIR, DATA_NAME) if os.path.exists(os.path.join(out, p))]
    if existing and not overwrite:
        raise FileExistsError(f"out: {out} already holds a run ({', '.join(existing)}); choose "
                              f"another folder or pass overwrite=True (--overwrite)")
    shutil.rmtree(os.path.join(out, RUNS_DIR), ignore_errors=True)
    os.makedirs(os.path.join(out, RUNS_DIR), exist_ok=True)
    start = time.perf_counter()
    load = machine()
    if cfg["dataset"] != "shapes":
        cfg.pop("colours")                          # the shapes' option; pairs have their own
    options = {"colours": cfg["colours"]} if "colours" in cfg else {}
    train, val, test = dataset_splits(cfg["dataset"], (cfg["n_train"], cfg["n_val"], cfg["n_test"]),
                                      size=cfg["image_size"], seed=cfg["data_seed"], **options)
    atomic_write(os.path.join(out, DATA_NAME), lambda f: np.savez(
        f, **{f"{name}_{part}": getattr(d, part) for name, d in
              (("train", train), ("val", val), ("test", test)) for part in ("images", "labels")},
        classes=np.array(train.classes)))
    tasks = _tasks(cfg, out, nets)
    log(f"data: {len(train)} train / {len(val)} val / {len(test)} test images of "
        f"{cfg['image_size']}x{cfg['image_size']}, {len(train.classes)} classes ({cfg['dataset']}); "
        f"{cfg['seeds']} seeds x {len(tasks) // cfg['seeds']} nets on {cfg['workers']} worker(s)")
    runs = _run_tasks(tasks, cfg["workers"], log)
    order = {net[0]: i for i, net in enumerate(NETS)}
    runs.sort(key=lambda r: (order[r["config"]], r["seed"]))
    report = {"command": command or f"minivgg.reproduce.run({mode!r}, {out!r})",
              "minutes": None, "machine": load, "settings": cfg,
              "chance_top1": round(100 * (1 - 1 / len(train.classes)), 2),
              "runs": runs, "fusions": None, "claims": None,
              "paper_table3": {k: list(v) for k, v in PAPER_TABLE3.items()}}
    report["fusions"] = fuse(report, test.labels, out)
    report["claims"] = judge(report)
    report["minutes"] = round((time.perf_counter() - start) / 60, 1)
    _write_record(out, report)
    log(format_claims(report))
    return report


def _write_record(folder, report, figure=None):
    figure = plot(report) if figure is None else figure     # drawn first: both files or none
    atomic_write(os.path.join(folder, JSON_NAME),
                 lambda f: f.write(json.dumps(report, indent=1).encode()))
    atomic_write(os.path.join(folder, FIGURE_NAME),
                 lambda f: figure.savefig(f, format="png", dpi=90))
    import matplotlib.pyplot as plt
    plt.close(figure)


def rejudge(path, command=None):
    """Judge the claims of a recorded run again, from the runs and fusions in its
    paper_claims.json, with this version's ``judge`` and without training: the JSON and the
    figure beside it are rewritten; the run's own "command" and "minutes" stay, and "judged"
    says what judged it. Returns the report."""
    try:
        if os.path.getsize(path) > MAX_RECORD_BYTES:
            raise ValueError(f"larger than {MAX_RECORD_BYTES >> 20} MiB; a record is well under 1 MiB")
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable paper_claims.json ({error})") from None
    missing = sorted({"runs", "fusions", "settings"} - set(report if isinstance(report, dict)
                                                            else {}))
    if missing:
        raise ValueError(f"{path}: not a record of 'minivgg reproduce' (no {', '.join(missing)})")
    try:
        _check_errors(report)
        report["claims"] = judge(report)
        report["judged"] = command or f"minivgg.reproduce.rejudge({os.fspath(path)!r})"
        figure = plot(report)           # before anything is written: a record it cannot draw
        format_claims(report)           # or print is refused whole, the old files kept
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as error:
        raise ValueError(f"{path}: a malformed record ({type(error).__name__}: {error})") from None
    _write_record(os.path.dirname(os.path.abspath(path)), report, figure)
    return report


def _check_errors(report):
    """Every error a record gives (runs, fusions, their tests) is a percentage in [0, 100]: a
    hand-edited -50 or 1e300 would be judged as a score otherwise."""
    if not (isinstance(report["runs"], list) and isinstance(report["fusions"], list)):
        raise ValueError("its runs and fusions are not lists")
    for entry in report["runs"] + report["fusions"]:
        values = [entry[k] for k in ("top1", "top5") if k in entry] + [
            test[k] for test in entry.get("tests", {}).values() for k in ("top1", "top5")]
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))
               or not 0 <= v <= 100]
        if bad and entry.get("failed") is None:
            raise ValueError(f"{entry.get('config')!r} seed {entry.get('seed')!r}: a non-finite "
                             f"error or one outside [0, 100] %: {bad[0]!r}")


def format_claims(report):
    """The claims as a text table."""
    lines = [f"{'claim':<40} {'table':>5} {'better':>34} {'worse':>34} {'diff':>6} "
             f"{'2 s.e.':>6}  verdict"]
    for c in report["claims"]:
        diff = "-" if c["difference"] is None else f"{c['difference']:6.2f}"
        two_se = "-" if c["two_se"] is None else f"{c['two_se']:6.2f}"
        lines.append(f"{c['claim']:<40} {c['table']:>5} {str(c['better']):>34} "
                     f"{str(c['worse']):>34} {diff:>6} {two_se:>6}  "
                     f"{c['verdict'] if c['difference'] is not None else 'no data: ' + c['note']}")
    lines.append(f"({report['minutes']} minutes)")
    return "\n".join(lines)



def plot(report):
    """The record as one figure: Table 3 beside the paper's, the claims with their error bars,
    and every seed's learning curve."""
    import matplotlib
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (table, claims, curves) = plt.subplots(1, 3, figsize=(17, 5.2),
                                                gridspec_kw={"width_ratios": [1, 1.3, 1]})
    labels = [net[0] for net in NETS]
    colours = {label: plt.cm.tab20(i % 20) for i, label in enumerate(labels)}
    n_test = report["settings"]["n_test"]
    paper = table.twinx()
    for i, label in enumerate(labels):
        errs = row_errors(report, label)
        if errs:
            table.errorbar(i, np.mean(errs), 2 * standard_error(errs, n_test), fmt="o",
                           color=colours[label], capsize=4)
            table.plot([i] * len(errs), errs, ".", color="grey", alpha=0.6)
        if label in PAPER_TABLE3:
            paper.plot(i, PAPER_TABLE3[label][0], "x", color="black")
    table.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    table.set_ylabel("top-1 error %, here (mean, 2 s.e.; dots: seeds)")
    paper.set_ylabel("top-1 error %, the paper (x, ILSVRC)")
    table.set_title("Table 3: dense, single Q")

    rows = report["claims"]
    y = np.arange(len(rows))[::-1]
    for yi, c in zip(y, rows):
        if c["difference"] is not None:
            colour = {"agrees": "tab:green", "within noise": "tab:grey",
                      "contradicts": "tab:red"}[c["verdict"]]
            claims.errorbar(c["difference"], yi, xerr=c["two_se"], fmt="o", color=colour,
                            capsize=4)
    claims.axvline(0, color="black", lw=0.8)
    claims.set_yticks(y, [f"{c['claim']} ({c['verdict']})" for c in rows], fontsize=8)
    claims.set_xlabel("error(worse) - error(better), points, +- 2 s.e.  (> 0: as the paper)")
    theirs = claims.twiny()
    theirs.plot([c["paper_difference"] if c["paper_difference"] is not None else np.nan
                 for c in rows], y, "x", color="black")
    theirs.set_xlabel("the paper's difference, points (x)")
    claims.set_title("The claims", pad=28)

    for run in report["runs"]:
        epochs = [r["epoch"] for r in run["curve"]]
        curves.plot(epochs, [100 * r["val_top1"] for r in run["curve"]],
                    color=colours[run["config"]], alpha=0.7, lw=1,
                    label=run["config"] if run["seed"] == 0 else None)
    curves.axhline(report["chance_top1"], color="black", ls=":", lw=1, label="chance")
    curves.set_xlabel("epoch (of that net's own training)")
    curves.set_ylabel("validation top-1 error % (centre crop)")
    curves.set_title("Learning curves, every seed")
    curves.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
