"""Accuracy of the CLI's default recipe on small real data sets nobody designed for it, beside a
logistic regression on the raw pixels and the same small VGG in plain PyTorch.

    python benchmarks/bench_real_data.py                   # seeds 0 1, both data sets
    python benchmarks/bench_real_data.py --seeds 0 1 2 --data digits

The data sets ship with the dependencies (nothing is downloaded), written here as image folders:
- digits: scikit-learn's 1797 handwritten digits (8x8 grey scans, 10 classes) as PNGs at their
  own size, 20% of each class held out (``--val-fraction 0.2``, split seed 0);
- photos: grey patches of three photographs that scikit-learn and matplotlib ship (china.jpg, a
  temple; flower.jpg; grace_hopper.jpg, a portrait), classified by the photo they come from;
  each patch a random square of side 48..128 pixels scaled to 36, 200 per photo for training
  from the left 60% of its width and 50 for validation from the right 40% (no pixel shared), so
  colour is no clue and the validation patches show parts of the scene never trained on.

Three classifiers per data set, on the same split:
- minivgg: ``minivgg train --data FOLDER`` with every option at the recipe's default
  (minivgg.recipe.RECIPE: VGG A at 1/4 width, 8 epochs, flips on), one run per seed;
- logistic regression (scikit-learn, L2, C=1) on the raw pixels scaled to [0, 1];
- PyTorch: benchmarks/bench_model.py's ``torch_network``, the same layers and widths in plain
  torch.nn, starting from minivgg's initial weights for the seed (``--torch-init default``:
  PyTorch's own initialisation), trained on the same augmented batches (minivgg's
  TrainTransform, divided by the pixels' std as minivgg's Standardise does), with the recipe's
  SGD, batch, epochs and lr / 10 on plateau; skipped when torch is not installed. It checks
  the implementation and the recipe apart: the same recipe in another framework.
Accuracy is on the validation split at the epoch of best validation accuracy (what best.npz
holds; chosen on that same split, so optimistic for both nets alike) and at the last epoch;
mean +- sample std over the seeds.
"""
# ruff: noqa: E402
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), HERE]

import argparse
import contextlib
import io
import json
import tempfile
import time

import numpy as np

from minivgg.cli import main as cli
from minivgg.data.augment import TestTransform, TrainTransform
from minivgg.data.split import load_splits
from minivgg.data.stats import mean_rgb, rgb_pca
from minivgg.layers import Standardise
from minivgg.recipe import RECIPE
from minivgg.train import pixel_std


def save_png(array, path):
    from PIL import Image
    Image.fromarray(array).save(path)


def write_digits(root):
    """scikit-learn's digits as root/<digit>/<i>.png (8x8 grey); returns (folder, val_fraction)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        os.makedirs(os.path.join(root, str(label)), exist_ok=True)
        save_png((image * 255 / 16).astype(np.uint8), os.path.join(root, str(label), f"{i}.png"))
    return root, 0.2


def photos():
    """{name: (H, W) grey uint8} of the photographs the dependencies ship."""
    import matplotlib.cbook
    from PIL import Image
    from sklearn.datasets import load_sample_images
    china, flower = load_sample_images().images
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                     asfileobj=False)) as hopper:
        hopper = np.asarray(hopper.convert("RGB"))
    grey = {"china": china, "flower": flower, "hopper": hopper}
    return {k: np.asarray(Image.fromarray(v).convert("L")) for k, v in grey.items()}


def write_photos(root, per_class=(200, 50), size=36, seed=0):
    """root/train/<photo>/ and root/val/<photo>/ of grey patches (see the module docstring)."""
    from minivgg.data.resize import resize_bilinear
    rng = np.random.default_rng(seed)
    for name, photo in photos().items():
        H, W = photo.shape
        cut = int(0.6 * W)
        for split, n, (lo, hi) in (("train", per_class[0], (0, cut)),
                                   ("val", per_class[1], (cut, W))):
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for i in range(n):
                side = int(rng.integers(48, min(129, hi - lo + 1)))
                top, left = int(rng.integers(0, H - side + 1)), int(rng.integers(lo, hi - side + 1))
                patch = photo[None, top:top + side, left:left + side, None].astype(np.float32)
                small = resize_bilinear(np.repeat(patch, 3, axis=-1), size, size)[0, ..., 0]
                save_png(np.clip(np.rint(small), 0, 255).astype(np.uint8),
                         os.path.join(root, split, name, f"{i}.png"))
    return root, 0.2


DATASETS = {"digits": write_digits, "photos": write_photos}


def run_minivgg(folder, val_fraction, seed, run_dir):
    """(best, last) validation accuracy of ``minivgg train --data folder`` at its defaults."""
    with contextlib.redirect_stdout(io.StringIO()):
        status = cli(["train", "--data", folder, "--val-fraction", str(val_fraction),
                      "--seed", str(seed), "--run-dir", run_dir, "--no-progress", "--no-plot"])
    if status != 0:
        raise RuntimeError(f"minivgg train exited with {status}")
    with open(os.path.join(run_dir, "history.json")) as f:
        errors = [r["val_top1"] for r in json.load(f)["records"]]
    return 1 - min(errors), 1 - errors[-1]


def pixels(dataset):
    return np.stack(dataset.images).reshape(len(dataset), -1) / 255.0


def run_logistic(train, val):
    from sklearn.linear_model import LogisticRegression
    model = LogisticRegression(max_iter=3000).fit(pixels(train), train.labels)
    return float(np.mean(model.predict(pixels(val)) == val.labels))


def run_torch(torch, train, val, seed, init="recipe"):
    """(best, last) validation accuracy of the same VGG in torch.nn on the same batches, from
    minivgg's initial weights (``init="recipe"``) or PyTorch's default initialisation."""
    from bench_model import torch_network
    torch.manual_seed(seed)
    recipe = RECIPE
    net = torch_network(torch, dict(config=recipe.config, width=recipe.width,
                                    fc_width=recipe.fc_width, input_size=recipe.input_size,
                                    num_classes=len(train.classes)))
    if init == "recipe":        # minivgg's initial weights for this seed, layer by layer
        ours = [layer.params for layer in recipe.build(train, seed=seed).layers.values()
                if layer.params and not isinstance(layer, Standardise)]
        theirs = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        assert len(ours) == len(theirs)
        with torch.no_grad():
            for params, module in zip(ours, theirs):
                module.weight.copy_(torch.from_numpy(params["weight"]))
                module.bias.copy_(torch.from_numpy(params["bias"]))
    opt = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    # minivgg's ReduceOnPlateau cuts after `patience` bad epochs, torch's after patience + 1.
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=0.1, patience=recipe.patience - 1, threshold=0,
        min_lr=recipe.lr * 0.1 ** recipe.max_reductions)
    mean, std, scale = mean_rgb(train), pixel_std(train), recipe.train_scale()
    augment = TrainTransform(recipe.input_size, mean=mean, scale=scale, flip=recipe.flip,
                             colour_shift=recipe.colour_shift, pca=rgb_pca(train))
    test = TestTransform(recipe.input_size, mean=mean, scale=scale)
    x_val = torch.from_numpy(test(val.images) / std)
    rng, accuracies = np.random.default_rng(seed), []
    images = np.asarray(train.images) if not isinstance(train.images, list) else train.images
    for _ in range(recipe.epochs):
        net.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start:start + recipe.batch_size]
            x = augment(images[idx] if isinstance(images, np.ndarray)
                        else [images[i] for i in idx], rng) / std
            loss = torch.nn.functional.cross_entropy(
                net(torch.from_numpy(x)), torch.from_numpy(train.labels[idx]).long())
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            accuracy = float((net(x_val).argmax(1).numpy() == val.labels).mean())
        accuracies.append(accuracy)
        schedule.step(accuracy)
    return max(accuracies), accuracies[-1]


def summary(values):
    values = 100 * np.asarray(values)
    sd = f" +- {values.std(ddof=1):.1f}" if len(values) > 1 else ""
    return f"{values.mean():.1f}{sd}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument("--torch-init", choices=("recipe", "default"), default="recipe",
                        help="the PyTorch net's initial weights: minivgg's for the seed (the "
                             "recipe's He / fc8 N(0, 0.01^2)), or PyTorch's own default")
    args = parser.parse_args(argv)
    torch = None
    if args.torch:
        try:
            import torch
        except ImportError:
            print("torch not installed: the PyTorch column is skipped")
    begin = time.perf_counter()
    print(f"recipe: {RECIPE}\nseeds {args.seeds}; load average {os.getloadavg()[0]:.1f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.data:
            folder, val_fraction = DATASETS[name](os.path.join(tmp, name))
            train, val = load_splits(folder, val_fraction, seed=0)
            print(f"{name}: {len(train)} training / {len(val)} validation images, "
                  f"{len(train.classes)} classes", flush=True)
            results = {"logistic": [run_logistic(train, val)]}
            for seed in args.seeds:
                start = time.perf_counter()
                best, last = run_minivgg(folder, val_fraction, seed,
                                         os.path.join(tmp, f"{name}-{seed}"))
                results.setdefault("minivgg best", []).append(best)
                results.setdefault("minivgg last", []).append(last)
                took = time.perf_counter() - start
                line = f"  seed {seed}: minivgg {100 * best:.1f}% best / {100 * last:.1f}% last " \
                       f"({took:.0f} s)"
                if torch is not None:
                    start = time.perf_counter()
                    best, last = run_torch(torch, train, val, seed, args.torch_init)
                    results.setdefault("torch best", []).append(best)
                    results.setdefault("torch last", []).append(last)
                    line += f"; PyTorch {100 * best:.1f}% / {100 * last:.1f}% " \
                            f"({time.perf_counter() - start:.0f} s)"
                print(line, flush=True)
            rows.append((name, len(train), len(val), len(train.classes), results))
    print("\n| data | train / val | classes | logistic regression | minivgg (best epoch) | "
          "minivgg (last) | PyTorch (best epoch) | PyTorch (last) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n_train, n_val, k, r in rows:
        cells = [summary(r[key]) if key in r else "-" for key in
                 ("logistic", "minivgg best", "minivgg last", "torch best", "torch last")]
        print(f"| {name} | {n_train} / {n_val} | {k} | " + " | ".join(cells) + " |")
    print(f"\naccuracy in %, mean +- sd over seeds {args.seeds}; "
          f"{(time.perf_counter() - begin) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
