"""Every configuration leaves the chance plateau within its first epochs, from every seed tried.

The recipe (minivgg.recipe.RECIPE) at 1/8 width with fc6/fc7 of 64, on data it was not designed
on: scikit-learn's 1797 handwritten digits, upsampled (1438 training / 359 validation images, 45
SGD steps an epoch), with flips off (a mirrored 2 is not a digit; docs/TRAINING.md). As the paper
(Sec. 3.1): A and A-LRN from scratch, the deeper B-E warm-started from the same seed's trained A
(``init_from_shallower``). docs/TRAINING.md has the measurements behind this: from scratch, E at
this size was still at chance after 3 epochs (seed 0: 88.9% validation error), which is why the
paper's warm start is the recipe for the deep nets, and the CLI's ``--warm-start``.

The bound: a validation error of at most 75% (chance is 90%; two binomial standard errors of
chance on 359 images is 3.2 points) by the end of the epochs given. Measured when written
(seeds 0-2): A 17-32%, A-LRN 36-38% after 3 epochs; warm-started B-E 46-74% after their first
epoch, 32-69% by their second; a failing test prints the errors it saw.
"""

import pytest

from minivgg.recipe import RECIPE
from minivgg.train import Trainer
from minivgg.vgg import init_from_shallower

pytest.importorskip("sklearn")

SMALL = RECIPE.replace(width=1 / 8, fc_width=64, flip=False)
SEEDS = (0, 1, 2)
BOUND = 0.75                 # validation top-1 error; chance is 0.90
SCRATCH_EPOCHS, WARM_EPOCHS = 3, 2


@pytest.fixture(scope="module")
def digits():
    from minivgg.data.digits import sklearn_digits
    from minivgg.data.split import stratified_split
    return stratified_split(sklearn_digits(SMALL.train_scale()), 0.2, seed=0)


def _fit(recipe, data, seed, epochs, warm_from=None):
    train, val = data
    model = recipe.build(train, seed=seed)
    if warm_from is not None:
        init_from_shallower(model, warm_from)
    history = Trainer(model, train, val, recipe=recipe, seed=seed, progress=False,
                      log=None).fit(epochs)
    return model, history["val_top1"]


@pytest.fixture(scope="module")
def trained_a(digits):
    """Seed -> (A trained from scratch, its validation errors)."""
    return {seed: _fit(SMALL, digits, seed, SCRATCH_EPOCHS) for seed in SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_a_leaves_chance_from_scratch(trained_a, seed):
    errors = trained_a[seed][1]
    assert min(errors) <= BOUND, f"A seed {seed}: validation errors {errors}"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_lrn_leaves_chance_from_scratch(digits, seed):
    errors = _fit(SMALL.replace(config="A-LRN"), digits, seed, SCRATCH_EPOCHS)[1]
    assert min(errors) <= BOUND, f"A-LRN seed {seed}: validation errors {errors}"


@pytest.mark.parametrize("config", ["B", "C", "D", "E"])
def test_deeper_nets_warm_started_from_a_leave_chance(digits, trained_a, config):
    for seed in SEEDS:
        errors = _fit(SMALL.replace(config=config), digits, seed, WARM_EPOCHS,
                      warm_from=trained_a[seed][0])[1]
        assert min(errors) <= BOUND, f"{config} seed {seed}: validation errors {errors}"


def test_the_bound_catches_a_net_that_stays_at_chance(digits):
    """The check can fail: N(0, 0.01^2) everywhere on raw pixels (no standardisation), the
    initialisation the recipe departs from, leaves A at chance for the same 3 epochs."""
    stalled = SMALL.replace(init="paper", standardise=False)
    errors = _fit(stalled, digits, 0, SCRATCH_EPOCHS)[1]
    assert min(errors) > BOUND, f"N(0, 0.01^2) A: validation errors {errors}"
