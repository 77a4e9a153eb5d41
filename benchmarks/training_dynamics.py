"""Why plain VGG training stalls or collapses, measured (docs/TRAINING.md shows the output).

    python benchmarks/training_dynamics.py                  # ~15 min on 2 idle cores
    python benchmarks/training_dynamics.py --quick          # ~2 min smoke run

For each initialisation variant below and each data set (the built-in shapes; scikit-learn's
digits; a two-class set of patches of scikit-learn's two photographs), one small VGG A is
trained for a few epochs from the same seed, recording after every SGD step the loss and each
weight's update/weight ratio, and every few steps, on a fixed probe batch, each layer's output
and gradient std, the dead-ReLU fraction (channels or units zero for the whole batch) and the
logit std. The figures go to docs/figures/training_dynamics_*.png; the table to stdout.
"""

import argparse
import json
import time

import numpy as np

from minivgg.data import synthetic_splits
from minivgg.data.digits import sklearn_digits, sklearn_photo_patches
from minivgg.data.split import stratified_split
from minivgg.dynamics import StepTrace
from minivgg.recipe import RECIPE
from minivgg.train import Trainer

# name -> (recipe changes, build_vgg overrides): what differs from the recipe.
VARIANTS = {
    "N(0, 0.01^2) everywhere (a Caffe-era reading), raw pixels": (
        dict(init="paper", standardise=False), {}),
    "He everywhere, fc8 too (the old CLI)": ({}, dict(classifier_std=None)),
    "He, fc8 N(0, 0.01^2) (the recipe)": ({}, {}),
    "the recipe + lr warm-up over 1/2 epoch": (dict(warmup_epochs=0.5), {}),
}


def datasets(quick):
    shapes = synthetic_splits(400 if quick else 2000, 200 if quick else 500, size=36, seed=0)
    digits = stratified_split(sklearn_digits(36), 0.2, seed=0)
    photos = stratified_split(sklearn_photo_patches(200, 36, seed=0), 0.2, seed=0)
    if quick:
        digits = (digits[0].subset(np.arange(400)), digits[1])
    return {"built-in shapes": shapes, "sklearn digits": digits, "sklearn photos (2 classes)":
            photos}


def run(variant, data, epochs, seed=0, **sizes):
    """Train one net; returns (per-epoch validation errors, the StepTrace). ``sizes``: recipe
    changes on top of the variant's (config, width...)."""
    changes, overrides = VARIANTS[variant]
    recipe = RECIPE.replace(**changes, **sizes)
    train, val = data
    model = recipe.build(train, seed=seed, **overrides)
    trainer = Trainer(model, train, val, recipe=recipe, seed=seed, progress=False, log=None)
    probe = trainer.transform(train.images[:64], np.random.default_rng(1))
    trace = StepTrace(probe.astype(model.dtype), train.labels[:64], every=5)
    trace.start(model)
    trainer.on_step = trace
    history = trainer.fit(epochs)
    return history["val_top1"], trace


def summarise(trace, steps):
    """A few numbers per run: at init and after ``steps`` steps."""
    steps = min(steps, trace.step)
    first = trace.records[0]["stats"]
    later = [r for r in trace.records if "stats" in r and r["step"] <= steps][-1]["stats"]
    ratios = [r["update_ratio"] for r in trace.records[1:steps + 1]]
    return {"loss_init": first["loss"], "logit_std_init": first["logit_std"],
            "dead_fc7_init": first["layers"][_index(first, "relu7")]["dead"],
            "dead_fc7_later": later["layers"][_index(later, "relu7")]["dead"],
            "dead_conv_later": float(np.mean([row["dead"] for row in later["layers"]
                                                      if row["name"].startswith("relu")
                                                      and "_" in row["name"]])),   # conv ReLUs
            "fc8_update_ratio_max": max(r["fc8.weight"] for r in ratios),
            "conv1_update_ratio_max": max(r["conv1_1.weight"] for r in ratios)}


def _index(stats, name):
    return [row["name"] for row in stats["layers"]].index(name)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results)
    fig, axes = plt.subplots(len(names), 3, figsize=(15, 3.6 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        for variant, (errors, trace) in results[name].items():
            steps = [r["step"] for r in trace.records[1:]]
            row[0].plot(steps, [r["loss"] for r in trace.records[1:]], label=variant, lw=0.8)
            probes = [r for r in trace.records if "stats" in r]
            row[1].plot([r["step"] for r in probes],
                        [r["stats"]["layers"][_index(r["stats"], "relu7")]["dead"]
                         for r in probes], label=variant)
            row[2].plot(range(1, len(errors) + 1), [100 * e for e in errors], "o-",
                        label=variant)
        row[0].set(title=f"{name}: training loss per step", xlabel="SGD step", ylabel="nats")
        row[1].set(title="dead fraction of relu7 units (probe batch)", xlabel="SGD step",
                   ylim=(-0.02, 1.02))
        row[2].set(title="validation top-1 error", xlabel="epoch", ylabel="%")
    axes[0][2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def plot_layers(trace, path, title):
    """Output and gradient std per layer at init and after the first probes, one variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
    for record in [r for r in trace.records if "stats" in r][:4]:
        rows = [row for row in record["stats"]["layers"] if row["name"][:4] in ("conv", "fc6",
                                                                              "fc7", "fc8")]
        names = [row["name"] for row in rows]
        axes[0].semilogy(names, [row["out_std"] for row in rows], "o-",
                         label=f"step {record['step']}")
        axes[1].semilogy(names, [row["grad_std"] for row in rows], "o-",
                         label=f"step {record['step']}")
    axes[0].set(title=f"{title}: std of each layer's output", ylabel="std")
    axes[1].set(title="std of dL/d(output)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=60)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, 1 epoch")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="docs/figures", help="folder for the figures")
    parser.add_argument("--json", default=None, help="also write the summary numbers here")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 4)
    steps = 20
    start, results, table = time.perf_counter(), {}, {}
    for name, data in datasets(args.quick).items():
        results[name] = {}
        for variant in VARIANTS:
            errors, trace = run(variant, data, epochs)
            results[name][variant] = errors, trace
            numbers = summarise(trace, steps)
            table[f"{name} | {variant}"] = {**numbers, "val_top1": errors}
            print(f"{name:28} {variant:44} val top-1 err by epoch "
                  f"{' '.join(f'{100 * e:5.1f}' for e in errors)}  loss0 "
                  f"{numbers['loss_init']:.2f} logit std0 {numbers['logit_std_init']:.3f} "
                  f"dead relu7 {numbers['dead_fc7_init']:.2f}->"
                  f"{numbers['dead_fc7_later']:.2f} max update/weight fc8 "
                  f"{numbers['fc8_update_ratio_max']:.3f} conv1_1 "
                  f"{numbers['conv1_update_ratio_max']:.3f}", flush=True)
        plot_layers(results[name]["He everywhere, fc8 too (the old CLI)"][1],
                    f"{args.out}/training_dynamics_layers_{name.split()[1]}.png",
                    f"{name}, He everywhere")
    plot(results, f"{args.out}/training_dynamics.png")
    # The deepest net, with the recipe: how the signal fares through 16 conv layers at 32x32.
    recipe = "He, fc8 N(0, 0.01^2) (the recipe)"
    errors, trace = run(recipe, datasets(args.quick)["built-in shapes"], epochs, config="E",
                        width=1 / 8, fc_width=64)
    first = trace.records[0]["stats"]
    print(f"E, 1/8 width, recipe: val top-1 err by epoch "
          f"{' '.join(f'{100 * e:5.1f}' for e in errors)}; at init, per layer:")
    for row in first["layers"]:
        if row["name"].startswith(("conv", "fc")):
            print(f"    {row['name']:8} output std {row['out_std']:8.3g}  dL/d(output) std "
                  f"{row['grad_std']:8.3g}")
    plot_layers(trace, f"{args.out}/training_dynamics_layers_E.png", "E, 1/8 width, recipe")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    print(f"{time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
