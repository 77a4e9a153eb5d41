"""How long plain VGG nets sit on the chance plateau of the built-in shapes, and what shortens it.

    python benchmarks/chance_plateau.py            # ~20 min on 1 core; needs PyTorch
    python benchmarks/chance_plateau.py --quick    # one variant, A only

Two measurements (docs/TRAINING.md reads them):

1. At initialisation, with minivgg itself: how alike different images look to each layer. For 64
   images, the mean cosine similarity of their outputs at each ReLU / pool, and the share of the
   outputs' energy that differs between images (1 - |mean image|^2 / mean |image|^2). A plain
   ReLU net makes every image look more like every other with depth ("correlation collapse"), so
   the top layers start from nearly the same features for every class.
2. The plateau's length, in SGD steps: the first step at which an exponential moving average of
   the training loss (weight 0.05) falls below 2.0 (chance is ln 10 = 2.30), within 600 steps,
   for A and E from several seeds, under the recipe and under one change at a time (dropout,
   fc width, learning rate, batch, initialisation, warm-up, optimiser, a 2-conv net). This part
   trains the same nets in plain PyTorch as an oracle, for speed (600 steps x 20 variants x
   seeds): the recipe's init (He for conv/fc6/fc7, fc8 from N(0, 0.01^2)), SGD momentum 0.9,
   weight decay 5e-4, batch 32, lr 0.01, standardised 32x32 shapes (4000), no augmentation.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minivgg.configs import CONFIGS  # noqa: E402
from minivgg.data.synthetic import synthetic_splits  # noqa: E402
from minivgg.recipe import RECIPE  # noqa: E402
from minivgg.train import mean_rgb  # noqa: E402

WIDTH, FC = 1 / 8, 64
# (name, changes to the recipe); each row changes one thing.
VARIANTS = (
    ("the recipe (dropout 0.5)", {}),
    ("dropout 0", {"drop": 0.0}),
    ("fc6/fc7 of 1024", {"fc": 1024}),
    ("fc6/fc7 of 1024, dropout 0", {"fc": 1024, "drop": 0.0}),
    ("width 1/4, fc 256 (the CLI's net)", {"width": 0.25, "fc": 256}),
    ("width 1/4, fc 256, dropout 0", {"width": 0.25, "fc": 256, "drop": 0.0}),
    ("lr 0.003 (1000 steps)", {"lr": 0.003, "steps": 1000}),
    ("batch 64 (500 steps)", {"batch": 64, "steps": 500}),
    ("batch 128 (300 steps)", {"batch": 128, "steps": 300}),
    ("fc8 from N(0, 0.05^2)", {"fc8_std": 0.05}),
    ("orthogonal init", {"init": "orthogonal"}),
    ("lr 0.03, warm-up over 200 steps", {"lr": 0.03, "warmup": 200}),
    ("Adam, lr 1e-3", {"adam": True, "lr": 1e-3}),
)
TWO_CONV = [64, "M", 128, "M"]          # a shallow net on the same data


def correlation_collapse(configs, n=64):
    """Per config: [(layer, mean cosine similarity, image-dependent energy share)]."""
    train, _ = synthetic_splits(2000, 10, size=32, seed=0)
    x = train.images[:n].astype(np.float64).transpose(0, 3, 1, 2) - mean_rgb(train).reshape(
        1, 3, 1, 1)
    rows = {}
    for config in configs:
        recipe = RECIPE.replace(config=config, width=WIDTH, fc_width=FC, scale=None)
        model = recipe.build(train, seed=0, dtype=np.float64).eval()
        out, rows[config] = x, []
        for name, layer in model.layers.items():
            out = layer.forward(out)
            if name.startswith(("relu", "pool")):
                f = out.reshape(n, -1)
                unit = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-300)
                cosine = (unit @ unit.T)[np.triu_indices(n, 1)].mean()
                varying = ((f - f.mean(0)) ** 2).sum() / (f ** 2).sum()
                rows[config].append((name, float(cosine), float(varying)))
    return rows


def plateau_steps(torch, data, layers, seed, width=WIDTH, fc=FC, drop=0.5, fc8_std=0.01,
                  init="he", lr=0.01, batch=32, steps=600, warmup=0, adam=False):
    """The step at which the loss's moving average falls below 2.0, or None within ``steps``."""
    nn = torch.nn
    x, y = data
    torch.manual_seed(seed)
    modules, channels, pools = [], 3, 0
    for item in layers:
        if item == "M":
            modules.append(nn.MaxPool2d(2))
            pools += 1
            continue
        k, n = (1, int(item[6:])) if str(item).startswith("conv1-") else (3, item)
        n = max(1, round(n * width))
        modules += [nn.Conv2d(channels, n, k, padding=k // 2), nn.ReLU()]
        channels = n
    side = 32 >> pools
    net = nn.Sequential(*modules, nn.Flatten(), nn.Linear(channels * side * side, fc), nn.ReLU(),
                        nn.Dropout(drop), nn.Linear(fc, fc), nn.ReLU(), nn.Dropout(drop),
                        nn.Linear(fc, 10))
    weighted = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    for m in weighted:
        if init == "orthogonal":
            nn.init.orthogonal_(m.weight, gain=2 ** 0.5)
        else:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)
    nn.init.normal_(weighted[-1].weight, 0.0, fc8_std)
    optimiser = (torch.optim.Adam(net.parameters(), lr=lr) if adam else
                 torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4))
    generator = torch.Generator().manual_seed(seed)
    average, order, position = np.log(10), torch.randperm(len(y), generator=generator), 0
    for step in range(steps):
        if position + batch > len(y):
            order, position = torch.randperm(len(y), generator=generator), 0
        idx = order[position:position + batch]
        position += batch
        for group in optimiser.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup) if warmup else lr
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        average = 0.95 * average + 0.05 * loss.item()
        if average < 2.0:
            return step
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the recipe only, A only, 2 seeds")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per variant (default 2)")
    args = parser.parse_args()
    print("correlation collapse at initialisation (minivgg, width 1/8, fc 64, 64 shapes):")
    print("  layer: mean cosine similarity between images / share of energy that varies")
    for config, rows in correlation_collapse(["A"] if args.quick else ["A", "E"]).items():
        print(f"  {config}: " + "  ".join(f"{name} {c:.2f}/{v:.2f}" for name, c, v in rows))
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: the plateau lengths need it (pip install torch)")
        return
    torch.set_num_threads(1)
    train, _ = synthetic_splits(4000, 10, size=32, seed=0)
    x = train.images.astype(np.float32).transpose(0, 3, 1, 2)
    x = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / x.std()
    data = torch.tensor(x), torch.tensor(train.labels).long()
    nets = {"A": CONFIGS["A"]} if args.quick else {"A": CONFIGS["A"], "E": CONFIGS["E"]}
    variants = VARIANTS[:1] if args.quick else VARIANTS
    print(f"\nsteps until the training loss's moving average < 2.0 (None: not within the "
          f"budget), seeds 0..{args.seeds - 1}; PyTorch oracle, 1 thread")
    for name, changes in variants:
        start = time.perf_counter()
        result = {net: [plateau_steps(torch, data, layers, seed, **changes)
                        for seed in range(args.seeds)] for net, layers in nets.items()}
        cells = "  ".join(f"{net} {steps}" for net, steps in result.items())
        print(f"  {name:<36} {cells}   ({time.perf_counter() - start:.0f} s)", flush=True)
    if not args.quick:
        for name, changes in VARIANTS[:2]:
            steps = [plateau_steps(torch, data, TWO_CONV, seed, **changes)
                     for seed in range(args.seeds)]
            print(f"  a 2-conv net, {name:<22} {steps}", flush=True)


if __name__ == "__main__":
    main()
