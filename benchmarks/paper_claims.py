"""The paper's experiments, small: Tables 3, 4 and 5 of Simonyan & Zisserman (ICLR 2015), with
tiny VGGs trained under one recipe on the built-in synthetic shapes (or on CIFAR-10).

    python benchmarks/paper_claims.py                  # ~15-20 min on 2 cores
    python benchmarks/paper_claims.py --quick          # ~2-3 min smoke run: tables, no claims
    python benchmarks/paper_claims.py --cifar ~/data/cifar-10-batches-py

Everything is the paper's geometry divided by 7 (224 -> 32): the crop is 32, training scale
S = 36 stands for S = 256 and S = 54 for 384, jittering S in [36, 72] for [256; 512]; the test
scales follow Sec. 4.1-4.2 (Q = S; multi-scale Q = S - 4, S, S + 4 for fixed S, the paper's
+-32 / 7, and Q = 36, 54, 72 for jittered S). Every net has the same recipe: SGD with momentum
0.9, weight decay 5e-4, dropout 0.5, the paper's augmentation (random crop, flip, PCA colour
shift), a learning rate divided by 10 twice at fixed epochs (the paper divided on plateaus,
which needs a validation set we keep for testing). Deep nets train from scratch with He
initialisation (the authors' later note: a variance-scaled init trains D and E without
warm-starting from A). fc8 alone starts from the paper's N(0, 0.01^2), so the first logits are
near zero. One deviation: the mean-subtracted pixels are also divided by their standard
deviation (``build_vgg(input_std=...)``, the ``Standardise`` layer), without which these nets did not train at lr 1e-2.

Tables 3 and 4 use dense evaluation with flips (Sec. 3.2); Table 5 compares dense, multi-crop
(grid x grid crops x 2 flips per scale) and their average on the jittered D. Errors are on a
held-out set; the +- is one binomial standard error, so differences of a few points between
nets are often noise at this size: the "claims" lines say which.
"""

import argparse
import math
import time

import numpy as np

from minivgg.data import load_cifar, synthetic_splits
from minivgg.evaluate import combine, paper_scales, posteriors, top_k_error
from minivgg.optim import SGD, StepSchedule
from minivgg.train import Trainer, pixel_std
from minivgg.vgg import build_vgg

CROP = 32
S_SMALL, S_LARGE, S_JITTER = 36, 54, (36, 72)     # the paper's 256, 384, [256; 512] / 7
STEP = 4                                           # the paper's multi-scale +-32, / 7

# (row label, configuration, training scale): the nets to train, in the order of Table 3.
RUNS = [("A", "A", S_SMALL), ("A-LRN", "A-LRN", S_SMALL), ("B", "B", S_SMALL),
        ("C", "C", S_SMALL), ("D", "D", S_SMALL), ("E", "E", S_SMALL),
        ("D S=54", "D", S_LARGE), ("D jitter", "D", S_JITTER)]


def settings(args):
    """The recipe, full or quick; everything the run depends on, printed at the top."""
    full = dict(n_train=3000, n_val=600, image_size=64, epochs=8, batch_size=32, lr=0.01,
                width=1 / 8, fc_width=128, grid=5, seed=args.seed)
    quick = dict(full, n_train=320, n_val=100, epochs=1, grid=3)
    chosen = quick if args.quick else full
    if args.epochs:
        chosen["epochs"] = args.epochs
    e = chosen["epochs"]
    chosen["milestones"] = sorted({max(1, math.ceil(0.6 * e)), max(1, math.ceil(0.85 * e))})
    return chosen


def load_data(args, cfg):
    """(train, test) ImageDatasets: synthetic shapes of image_size pixels, or a fixed random
    subset of CIFAR-10 (32x32, so S > 32 upsamples)."""
    if args.cifar is None:
        return synthetic_splits(cfg["n_train"], cfg["n_val"], size=cfg["image_size"],
                                seed=cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    train, test = load_cifar(args.cifar, "train"), load_cifar(args.cifar, "test")
    return (train.subset(rng.permutation(len(train))[:cfg["n_train"]]),
            test.subset(rng.permutation(len(test))[:cfg["n_val"]]))


def train_net(label, config, scale, train, test, cfg):
    """Train one net under the shared recipe; returns (model, mean RGB, seconds)."""
    model = build_vgg(config, num_classes=len(train.classes), input_size=CROP,
                      width=cfg["width"], fc_width=cfg["fc_width"], init="he", seed=cfg["seed"],
                      input_std=cfg["pixel_std"])
    # fc8 from the paper's N(0, 0.01^2) (Sec. 3.1), not He's N(0, 2 / 128): the first logits
    # are then near 0 (loss ln K). With He's they were large enough (loss ~6) that the first
    # steps killed ReLUs and the nets collapsed to the class prior (loss ln 10) within ~10 steps.
    fc8 = model["fc8"].params["weight"]
    fc8[...] = np.random.default_rng(cfg["seed"]).normal(0.0, 0.01, fc8.shape)
    optimizer = SGD(model, lr=cfg["lr"])
    # The trainer's per-epoch check is a centre crop of a few held-out images, for the log only.
    trainer = Trainer(model, train, test.subset(np.arange(min(100, len(test)))),
                      optimizer=optimizer, schedule=StepSchedule(optimizer, cfg["milestones"]),
                      batch_size=cfg["batch_size"], scale=scale, seed=cfg["seed"],
                      progress=False, log=lambda line: print(f"    [{label}] {line}", flush=True))
    start = time.perf_counter()
    trainer.fit(cfg["epochs"])
    return model, trainer.mean, time.perf_counter() - start


def errors(probs, labels):
    return 100 * top_k_error(probs, labels, 1), 100 * top_k_error(probs, labels, 5)


def stderr(error, n):
    """One binomial standard error of an error rate (percent) measured on n images."""
    return 100 * math.sqrt(max(error / 100 * (1 - error / 100), 1 / n) / n)


def print_table(title, header, rows, n):
    print(f"\n{title}")
    print("  " + "  ".join(f"{h:>{w}}" for h, w in header))
    for row in rows:
        cells = [f"{v:>{w}}" for v, (_, w) in zip(row[:-2], header)]
        top1, top5 = row[-2:]
        cells += [f"{top1:5.1f} +-{stderr(top1, n):3.1f}", f"{top5:5.1f} +-{stderr(top5, n):3.1f}"]
        print("  " + "  ".join(cells))


def claim(text, better, worse, n):
    """One line: the claim, the two top-1 errors, and whether the data support it."""
    diff = worse - better
    noise = math.hypot(stderr(better, n), stderr(worse, n))
    verdict = ("agrees" if diff > 2 * noise else "disagrees" if diff < -2 * noise
               else "within noise")
    print(f"  {text:<44} {better:5.1f} vs {worse:5.1f}  ({verdict}, 2 s.e. = {2 * noise:.1f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~2 minute smoke run")
    parser.add_argument("--cifar", metavar="PATH", help="CIFAR-10 folder or .tar.gz")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = settings(args)
    train, test = load_data(args, cfg)
    # The RMS of the per-channel pixel std: the total RGB variance is the sum of its PCA's
    # eigenvalues (on [0, 1] values), shared by the three channels.
    cfg["pixel_std"] = round(pixel_std(train), 1)
    n = len(test)
    print(f"data: {'CIFAR-10 ' + args.cifar if args.cifar else 'synthetic shapes'}, "
          f"{len(train)} train / {n} test images of {train.images.shape[1]}x"
          f"{train.images.shape[2]}, {len(train.classes)} classes")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    print(f"chance: top-1 error {100 * (1 - 1 / len(train.classes)):.0f}%, top-5 error "
          f"{100 * max(0, 1 - 5 / len(train.classes)):.0f}%"
          + ("; --quick trains too little to learn: a smoke test of the pipeline" if args.quick
             else ""))
    print(f"crop {CROP}; train S: {S_SMALL} ('256'), {S_LARGE} ('384'), {S_JITTER} "
          f"('[256;512]'); SGD momentum 0.9, weight decay 5e-4, dropout 0.5, He init")

    def probs(label, method, multi_scale=False):
        config, scale, model, mean, _ = nets[label]
        return posteriors(model, test.images, mean=mean, method=method, flip=True,
                          grid=cfg["grid"], scales=paper_scales(scale, multi_scale, STEP))

    nets, single = {}, {}
    for label, config, scale in RUNS:
        print(f"  training {label} (S = {scale})", flush=True)
        nets[label] = (config, scale, *train_net(label, config, scale, train, test, cfg))
        single[label] = probs(label, "dense")
        # Each net's single-scale result as soon as it exists, so a cut-short run says something.
        top1, top5 = errors(single[label], test.labels)
        print(f"    [{label}] dense, Q = {paper_scales(scale)[0]}: top-1 error {top1:.1f}%, "
              f"top-5 error {top5:.1f}%", flush=True)

    multi = {label: probs(label, "dense", multi_scale=True) for label in nets}
    crops = probs("D jitter", "multicrop", multi_scale=True)

    header = [("ConvNet", 9), ("train S", 8), ("test Q", 12), ("top-1 err %", 11),
              ("top-5 err %", 11)]
    rows3 = [(label, str(nets[label][1]), str(paper_scales(nets[label][1])[0]),
              *errors(single[label], test.labels)) for label in nets]
    print_table("Table 3: single test scale (dense, flips)", header, rows3, n)
    rows4 = [(label, str(nets[label][1]),
              ",".join(map(str, paper_scales(nets[label][1], True, STEP))),
              *errors(multi[label], test.labels)) for label in nets]
    print_table("Table 4: multi-scale test (dense, flips)", header, rows4, n)
    rows5 = [("D jitter", "dense", *errors(multi["D jitter"], test.labels)),
             ("D jitter", f"{cfg['grid']}x{cfg['grid']}x2 crops",
              *errors(crops, test.labels)),
             ("D jitter", "dense+crops",
              *errors(combine(multi["D jitter"], crops), test.labels))]
    print_table(f"Table 5: dense vs multi-crop (D jitter, multi-scale Q = "
                f"{', '.join(map(str, paper_scales(S_JITTER, True)))}, flips)",
                [("ConvNet", 9), ("method", 14), ("top-1 err %", 11), ("top-5 err %", 11)],
                rows5, n)

    top1 = {row[0]: row[3] for row in rows3}
    top1_multi = {row[0]: row[3] for row in rows4}
    print("\nClaims (top-1 error, lower first if the paper is right):")
    claim("LRN does not help (A vs A-LRN)", top1["A"], top1["A-LRN"], n)
    claim("deeper is better (B vs A)", top1["B"], top1["A"], n)
    claim("deeper is better (D vs B)", top1["D"], top1["B"], n)
    claim("deeper is better (E vs B)", top1["E"], top1["B"], n)
    claim("3x3 beats 1x1 (D vs C)", top1["D"], top1["C"], n)
    claim("scale jittering helps (D jitter vs D S=36)", top1["D jitter"], top1["D"], n)
    claim("scale jittering helps (D jitter vs D S=54)", top1["D jitter"], top1["D S=54"], n)
    claim("multi-scale test helps (D jitter)", top1_multi["D jitter"], top1["D jitter"], n)
    claim("multi-crop + dense beats dense (D jitter)", rows5[2][2], rows5[0][2], n)
    claim("multi-crop + dense beats multi-crop", rows5[2][2], rows5[1][2], n)
    print("  ('LRN does not help' holds when the two are within noise.)")
    print("\ntraining time: " + ", ".join(f"{label} {nets[label][4]:.0f}s" for label in nets))


if __name__ == "__main__":
    main()
