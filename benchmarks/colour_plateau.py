"""What keeps A on the shapes' chance plateau: the random colours. A from scratch at the sizes of
`minivgg reproduce --quick`, on the same shapes drawn in random colours (the default) and in one
fixed pair of colours (``synthetic_shapes(colours="fixed")``, what the quick version trains on).

    python benchmarks/colour_plateau.py                  # ~3 min of CPU on 1 core
    python benchmarks/colour_plateau.py --epochs 2 --seeds 0

For each colour setting and seed it prints the validation top-1 error (%) after every epoch and
the epoch from which the net had left chance (``reproduce.left_chance_epoch``: two epochs in a
row above chance by two binomial standard errors; None: never). Everything but the colours is
the quick version's: minivgg's recipe at 1/8 width, fc6/fc7 of 128, batch 32, lr 0.01, training
scale S = 36, crops of 32, from 64x64 images (docs/TRAINING.md reads it).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minivgg import reproduce  # noqa: E402
from minivgg.data.synthetic import dataset_splits  # noqa: E402
from minivgg.evaluate import chance_threshold  # noqa: E402
from minivgg.kernels import jit  # noqa: E402
from minivgg.train import Trainer  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = reproduce.SETTINGS["quick"]
    parser.add_argument("--epochs", type=int, default=quick["epochs"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    jit.set_num_threads(1)
    recipe = reproduce.experiment_recipe(quick, reproduce.S_SMALL)
    print(f"A from scratch, {quick['n_train']} training / {quick['n_val']} validation shapes, "
          f"{args.epochs} epochs, width {quick['width']}, fc {quick['fc_width']}, batch "
          f"{quick['batch_size']}, lr {quick['lr']}")
    for colours in ("random", "fixed"):
        train, val = dataset_splits("shapes", (quick["n_train"], quick["n_val"]),
                                    size=quick["image_size"], seed=quick["data_seed"],
                                    colours=colours)
        threshold = chance_threshold(len(train.classes), len(val))
        for seed in args.seeds:
            model = recipe.build(train, seed=seed)
            optimizer = recipe.optimizer(model)
            trainer = Trainer(model, train, val, recipe=recipe, optimizer=optimizer,
                              schedule=recipe.lr_schedule(optimizer, threshold), seed=seed,
                              progress=False, log=None)
            clock = time.process_time()
            errors = trainer.fit(args.epochs)["val_top1"]
            left = reproduce.left_chance_epoch(errors, len(train.classes), len(val))
            print(f"colours {colours:<6} seed {seed}: validation error % by epoch "
                  f"{[round(100 * e, 1) for e in errors]}, left chance at epoch {left} "
                  f"({time.process_time() - clock:.0f} s CPU)", flush=True)


if __name__ == "__main__":
    main()
