"""SGD with momentum and weight decay, and the learning-rate schedules: numbers worked by hand,
and the whole network's gradients checked once more through one optimiser step."""

import numpy as np
import pytest

from minivgg.gradcheck import numerical_gradient, relative_error
from minivgg.layers.softmax import softmax_cross_entropy
from minivgg.optim import SGD, ReduceOnPlateau, StepSchedule, schedule_from_state
from minivgg.vgg import build_vgg


class TwoParams:
    """The smallest thing an optimiser can update: one weight and one bias, gradients by hand."""

    def __init__(self, weight, bias):
        self.params = {"layer.weight": np.array(weight, dtype=np.float64),
                       "layer.bias": np.array(bias, dtype=np.float64)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}


def test_momentum_update_worked_by_hand():
    model = TwoParams([1.0, -2.0], [0.5])
    opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=0.01)
    model.grads["layer.weight"][...] = [0.5, 1.0]
    model.grads["layer.bias"][...] = [2.0]
    opt.step()
    # v1 = -0.1 * (g + 0.01 w):  weight -0.1 * (0.5 + 0.01) = -0.051,  -0.1 * (1 - 0.02) = -0.098
    #                            bias   -0.1 * 2 = -0.2 (biases are not decayed)
    np.testing.assert_allclose(model.params["layer.weight"], [0.949, -2.098], rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.params["layer.bias"], [0.3], rtol=0, atol=1e-15)
    model.grads["layer.weight"][...] = [0.0, 0.0]
    model.grads["layer.bias"][...] = [-1.0]
    opt.step()
    # v2 = 0.9 v1 - 0.1 (g + 0.01 w1):  weight 0.9 * -0.051 - 0.001 * 0.949 = -0.046849
    #                                            0.9 * -0.098 - 0.001 * -2.098 = -0.086102
    #                                    bias    0.9 * -0.2 + 0.1 = -0.08
    np.testing.assert_allclose(model.params["layer.weight"], [0.949 - 0.046849, -2.098 - 0.086102],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.params["layer.bias"], [0.22], rtol=0, atol=1e-15)


def test_weight_decay_alone_shrinks_weights_geometrically_without_momentum():
    model = TwoParams([3.0, -4.0], [1.0])
    opt = SGD(model, lr=0.5, momentum=0.0, weight_decay=0.1)
    for _ in range(3):
        opt.step()                                       # all gradients zero
    np.testing.assert_allclose(model.params["layer.weight"], np.array([3.0, -4.0]) * 0.95 ** 3)
    assert model.params["layer.bias"][0] == 1.0          # biases: no decay by default

    decayed = TwoParams([3.0], [1.0])
    SGD(decayed, lr=0.5, momentum=0.0, weight_decay=0.1, decay_biases=True).step()
    assert decayed.params["layer.bias"][0] == pytest.approx(0.95)


def test_float32_parameters_stay_float32():
    model = build_vgg("A", num_classes=3, input_size=32, width=1 / 16, fc_width=8)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model.loss(x, np.array([0, 2]))
    opt = SGD(model)
    opt.step()
    assert {p.dtype for p in model.params.values()} == {np.dtype(np.float32)}
    assert {v.dtype for v in opt.velocity.values()} == {np.dtype(np.float32)}


def test_state_dict_round_trip_continues_identically():
    first, second = TwoParams([1.0, 2.0], [0.0]), TwoParams([1.0, 2.0], [0.0])
    opt = SGD(first, lr=0.1)
    first.grads["layer.weight"][...] = [1.0, -1.0]
    opt.step()
    second.params["layer.weight"][...] = first.params["layer.weight"]
    restored = SGD(second, lr=0.5, momentum=0.1)            # wrong values, overwritten below
    restored.load_state_dict(opt.state_dict())
    second.grads["layer.weight"][...] = [1.0, -1.0]
    opt.step()
    restored.step()
    np.testing.assert_array_equal(first.params["layer.weight"], second.params["layer.weight"])
    assert restored.lr == 0.1 and restored.momentum == 0.9


def test_state_dict_velocity_is_a_copy():
    model = TwoParams([1.0], [0.0])
    opt = SGD(model)
    model.grads["layer.weight"][...] = 1.0
    opt.step()
    state = opt.state_dict()
    opt.step()
    assert state["velocity"]["layer.weight"][0] != opt.velocity["layer.weight"][0]


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"), ({"momentum": 1.0}, "momentum"),
    ({"weight_decay": -1e-4}, "weight_decay"), ({"lr": float("nan")}, "lr"),
])
def test_bad_hyper_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD(TwoParams([1.0], [0.0]), **kwargs)


def test_load_state_dict_rejects_a_velocity_of_another_model():
    opt = SGD(TwoParams([1.0, 2.0], [0.0]))
    state = SGD(TwoParams([1.0], [0.0])).state_dict()
    state["velocity"] = {"layer.weight": np.zeros(1)}
    with pytest.raises(ValueError, match="layer.weight"):
        opt.load_state_dict(state)


def test_plateau_divides_by_ten_after_patience_epochs_at_most_max_reductions_times():
    opt = SGD(TwoParams([1.0], [0.0]), lr=1.0)
    schedule = ReduceOnPlateau(opt, patience=2, max_reductions=2)
    accuracies = [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    lrs, cuts = [], []
    for accuracy in accuracies:
        cuts.append(schedule.step(accuracy))
        lrs.append(opt.lr)
    # improving, improving, 1 bad, 2 bad -> cut; 0.7 improves; 2 bad -> cut; then no more cuts
    assert cuts == [False, False, False, True, False, False, True, False, False, False]
    np.testing.assert_allclose(lrs, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01])


def test_plateau_min_delta_counts_tiny_gains_as_no_improvement():
    opt = SGD(TwoParams([1.0], [0.0]), lr=1.0)
    schedule = ReduceOnPlateau(opt, patience=1, min_delta=0.01)
    schedule.step(0.5)
    assert schedule.step(0.505) is True
    assert opt.lr == pytest.approx(0.1)


def test_plateau_state_round_trip():
    opt = SGD(TwoParams([1.0], [0.0]), lr=1.0)
    schedule = ReduceOnPlateau(opt, patience=2)
    for accuracy in (0.5, 0.4):
        schedule.step(accuracy)
    restored_opt = SGD(TwoParams([1.0], [0.0]), lr=1.0)
    restored = schedule_from_state(restored_opt, schedule.state_dict())
    assert isinstance(restored, ReduceOnPlateau)
    assert schedule.step(0.45) is restored.step(0.45) is True
    assert restored_opt.lr == opt.lr == pytest.approx(0.1)


def test_step_schedule_cuts_at_the_milestones():
    opt = SGD(TwoParams([1.0], [0.0]), lr=1.0)
    schedule = StepSchedule(opt, milestones=(2, 4))
    lrs = []
    for _ in range(5):
        schedule.step()
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [1, 0.1, 0.1, 0.01, 0.01])
    restored_opt = SGD(TwoParams([1.0], [0.0]), lr=0.01)
    restored = schedule_from_state(restored_opt, StepSchedule(opt, (6,)).state_dict())
    assert isinstance(restored, StepSchedule) and restored.milestones == (6,)


@pytest.mark.parametrize("make, message", [
    (lambda opt: ReduceOnPlateau(opt, patience=0), "patience"),
    (lambda opt: ReduceOnPlateau(opt, factor=1.0), "factor"),
    (lambda opt: StepSchedule(opt, milestones=(0,)), "milestones"),
    (lambda opt: schedule_from_state(opt, {"kind": "cosine"}), "kind"),
])
def test_bad_schedule_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make(SGD(TwoParams([1.0], [0.0])))


def test_one_sgd_step_moves_every_parameter_by_minus_lr_times_the_numerical_gradient():
    """The whole model's backward once more, through the optimiser: on the first step (velocity
    zero) w_new - w = -lr (dL/dw + wd w) for weights and -lr dL/db for biases, with dL/dw from
    central finite differences of the loss (float64, a few entries of every tensor)."""
    model = build_vgg("A", num_classes=5, input_size=32, width=1 / 16, fc_width=8, dropout=0.0,
                      dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 32, 32))
    labels = np.array([0, 3, 4])
    lr, wd = 0.1, 5e-4

    def loss():
        return softmax_cross_entropy(model.forward(x), labels)[0]

    before = {name: p.copy() for name, p in model.params.items()}
    checked = {}
    for name, p in model.params.items():
        indices = rng.choice(p.size, size=min(p.size, 4), replace=False)
        checked[name] = (indices, numerical_gradient(loss, p, indices=indices).reshape(-1)[indices])
    model.loss(x, labels)
    SGD(model, lr=lr, momentum=0.9, weight_decay=wd).step()
    worst = 0.0
    for name, (indices, numeric) in checked.items():
        w = before[name].reshape(-1)[indices]
        expected = -lr * (numeric + (0.0 if name.endswith(".bias") else wd * w))
        actual = (model.params[name] - before[name]).reshape(-1)[indices]
        worst = max(worst, relative_error(actual, expected, floor=1e-10).max())
    assert len(checked) == 22                     # 8 conv + 3 fc layers, weight and bias each
    assert worst < 1e-4, worst


def test_the_plateau_count_starts_only_once_the_net_left_chance():

    class Opt:
        lr = 0.01

    schedule = ReduceOnPlateau(Opt, patience=1, max_reductions=3, start_above=0.2)
    for accuracy in (0.1, 0.12, 0.3, 0.1, 0.11):        # at chance, one lucky epoch: no cut
        assert not schedule.step(accuracy)
    assert Opt.lr == 0.01
    assert not schedule.step(0.3) and not schedule.step(0.3)   # left chance: the rule from here
    state = schedule.state_dict()
    assert schedule_from_state(Opt, state).state_dict() == state
    assert schedule.step(0.29) and Opt.lr == pytest.approx(0.001)
    plain = ReduceOnPlateau(Opt, patience=1)
    assert not plain.step(0.1) and plain.step(0.1)             # without it: cut at chance


def test_a_plateau_state_from_before_start_above_still_loads():

    class Opt:
        lr = 0.01

    old = {"kind": "plateau", "factor": 0.1, "patience": 1, "max_reductions": 3,
           "min_delta": 0.0, "best": 0.5, "bad_epochs": 0, "reductions": 1}
    schedule = ReduceOnPlateau(Opt)
    schedule.load_state_dict(old)
    assert schedule.start_above is None and schedule.step(0.4)      # counted as before


def test_the_trainer_counts_plateaus_from_its_validation_sets_chance():
    from minivgg.data.synthetic import synthetic_splits
    from minivgg.evaluate import chance_threshold
    from minivgg.recipe import RECIPE
    from minivgg.train import Trainer

    train, val = synthetic_splits(20, 30, size=34, seed=0)
    recipe = RECIPE.replace(width=1 / 16, fc_width=8)
    trainer = Trainer(recipe.build(train), train, val, recipe=recipe, progress=False, log=None)
    assert trainer.schedule.start_above == pytest.approx(chance_threshold(10, 30))
    assert chance_threshold(10, 100) == pytest.approx(0.16)


@pytest.mark.parametrize("value", [float("nan"), -0.5, "0.2"])
def test_start_above_must_be_an_accuracy(value):
    class Opt:
        lr = 0.01

    with pytest.raises(ValueError, match="start_above"):
        ReduceOnPlateau(Opt, start_above=value)
