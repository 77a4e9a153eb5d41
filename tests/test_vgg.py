"""The builder: layer names, sizes that fit, width, initialisation, the warm start, and one
end-to-end gradient check of small A and A-LRN networks."""

import numpy as np
import pytest

import minivgg as mv
from minivgg.gradcheck import MODEL_TOL, check_model
from minivgg.vgg import build_vgg, conv_layer_names, init_from_shallower

SMALL = dict(input_size=32, width=1 / 16, fc_width=16, num_classes=5)


def test_layer_names_of_d_follow_the_literature():
    model = build_vgg("D", **SMALL)
    convs_per_stage = [2, 2, 3, 3, 3]
    expected = []
    for stage, count in enumerate(convs_per_stage, start=1):
        for i in range(1, count + 1):
            expected += [f"conv{stage}_{i}", f"relu{stage}_{i}"]
        expected.append(f"pool{stage}")
    expected += ["flatten", "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]
    assert list(model.layers) == expected
    assert isinstance(model["conv3_2"], mv.Conv2d) and isinstance(model["pool5"], mv.MaxPool2d)
    assert isinstance(model["fc6"], mv.Linear) and isinstance(model["drop7"], mv.Dropout)


def test_a_lrn_normalises_after_the_first_relu_and_c_has_1x1_convs():
    names = list(build_vgg("A-LRN", **SMALL).layers)
    assert names[:4] == ["conv1_1", "relu1_1", "norm1", "pool1"]
    c = build_vgg("C", **SMALL)
    assert [c[n].kernel_size for n in ("conv3_2", "conv3_3", "conv4_3", "conv5_3")] == \
        [(3, 3), (1, 1), (1, 1), (1, 1)]
    assert c["conv3_3"].padding == (0, 0) and c["conv3_2"].padding == (1, 1)


def test_parameter_names():
    model = build_vgg("A", **SMALL)
    assert {"conv1_1.weight", "conv5_2.bias", "fc6.weight", "fc8.bias"} <= set(model.params)
    assert conv_layer_names(model) == ["conv1_1", "conv2_1", "conv3_1", "conv3_2", "conv4_1",
                                       "conv4_2", "conv5_1", "conv5_2"]


def test_shapes_width_and_fc_width():
    model = build_vgg("B", input_size=64, width=0.5, fc_width=20, num_classes=7)
    shapes = dict(model.output_shapes())
    assert shapes["conv1_2"] == (32, 64, 64)        # 64 * 0.5 channels, 'same' padding
    assert shapes["pool5"] == (256, 2, 2)           # 64 / 2**5, 512 * 0.5 channels
    assert model["fc6"].params["weight"].shape == (20, 256 * 2 * 2)
    assert shapes["fc8"] == (7,)
    tiny = build_vgg("A", input_size=32, width=1 / 128)
    assert tiny["conv1_1"].out_channels == 1        # at least one channel
    assert model(np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 7)


@pytest.mark.parametrize("size, stage, got, why", [
    (100, 3, 25, "odd"),       # 100 -> 50 -> 25: pool3 cannot halve 25
    (16, 5, 1, "too small"),   # 16 -> 8 -> 4 -> 2 -> 1: nothing left for pool5
    (33, 1, 33, "odd")])
def test_input_sizes_that_do_not_fit_say_why(size, stage, got, why):
    with pytest.raises(ValueError, match=f"input_size {size} does not fit configuration A: .*"
                                         f"pool{stage} would get {got}, which is {why}. Use a "
                                         f"multiple of 32"):
        build_vgg("A", input_size=size)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_classes=0), "num_classes must be a positive int; got 0"),
    (dict(input_size=32.0), "input_size must be a positive int"),
    (dict(width=0), "build_vgg: width must be a finite number > 0; got 0"),
    (dict(fc_width=True), "fc_width must be a positive int; got True"),
    (dict(dropout=1.0), r"build_vgg: dropout must be a finite number in \[0, 1\); got 1.0"),
    (dict(init="xavier"), "init must be one of .*'glorot'.*; got 'xavier'"),
    (dict(dtype=np.int32), "dtype must be float32 or float64")])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build_vgg("A", **{**SMALL, **kwargs})


def _relative_std_error(n):
    """The standard error of a sample standard deviation, relative: 1 / sqrt(2 n)."""
    return 1 / np.sqrt(2 * n)


@pytest.mark.parametrize("init", ["paper", "glorot", "he"])
def test_initial_weights_have_the_scheme_std(init):
    model = build_vgg("A", input_size=32, width=0.5, fc_width=256, num_classes=10, init=init,
                      std=0.02, classifier_std=None)      # fc8 drawn like the others
    for name, layer in model.layers.items():
        if not layer.params:
            continue
        weight = layer.params["weight"]
        fan_out, fan_in = weight.shape[0], weight[0].size
        receptive = weight[0, 0].size              # kh * kw for a conv, 1 for a Linear
        expected = {"paper": 0.02, "glorot": np.sqrt(2 / (fan_in + fan_out * receptive)),
                    "he": np.sqrt(2 / fan_in)}[init]
        tolerance = 5 * _relative_std_error(weight.size)        # 5 standard errors
        assert abs(weight.std() / expected - 1) < tolerance, (name, weight.std(), expected)
        assert abs(weight.mean()) < 5 * expected / np.sqrt(weight.size)
        assert not layer.params["bias"].any()


def test_the_literal_reading_of_the_paper_is_std_01():
    model = build_vgg("A", input_size=32, width=0.5, fc_width=256, init="paper", std=0.1)
    assert abs(model.params["conv4_1.weight"].std() / 0.1 - 1) < 0.02


def test_init_none_draws_nothing_and_seeds_reproduce():
    assert not any(p.any() for p in build_vgg("A", init=None, **SMALL).params.values())
    a, b = build_vgg("A", seed=3, **SMALL), build_vgg("A", seed=3, **SMALL)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    c = build_vgg("A", seed=4, **SMALL)
    assert not np.array_equal(a.params["conv1_1.weight"], c.params["conv1_1.weight"])


def test_config_records_how_the_model_was_built():
    model = build_vgg("vgg16", dtype=np.float64, **SMALL)
    assert model.config["config"] == "D" and model.config["dtype"] == "float64"
    assert model.config["fc_width"] == 16 and model.input_shape == (3, 32, 32)
    assert model.dtype == np.float64
    custom = build_vgg([8, "M", 16, "M"], input_size=8, fc_width=4, num_classes=2)
    assert custom.config["config"] == [8, "M", 16, "M"]
    assert dict(custom.output_shapes())["pool2"] == (16, 2, 2)


def test_init_from_shallower_copies_the_papers_seven_layers():
    source = build_vgg("A", seed=1, **SMALL)
    target = build_vgg("D", seed=2, **SMALL)
    before = {k: v.copy() for k, v in target.params.items()}
    copied = init_from_shallower(target, source)
    assert copied == ["conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8"]
    for name, value in target.params.items():
        layer = name.split(".")[0]
        expected = source.params[name] if layer in copied else before[name]
        assert np.array_equal(value, expected), name
    # the copies are copies: training the source later does not move the target
    source.params["conv1_1.weight"][...] += 1
    assert not np.array_equal(target.params["conv1_1.weight"], source.params["conv1_1.weight"])


def test_init_from_shallower_refuses_mismatches_before_copying():
    target = build_vgg("D", **SMALL)
    before = {k: v.copy() for k, v in target.params.items()}
    wider = build_vgg("A", **{**SMALL, "fc_width": 32})
    with pytest.raises(ValueError, match=r"fc6.weight has shape \(32, 32\) in the source but "
                                         r"\(16, 32\) in the target"):
        init_from_shallower(target, wider)
    assert all(np.array_equal(v, before[k]) for k, v in target.params.items())
    with pytest.raises(ValueError, match="conv1_2 of the source has no layer of that name"):
        init_from_shallower(build_vgg("A", **SMALL), build_vgg("B", **SMALL))


@pytest.mark.parametrize("config", ["A", "A-LRN"])
def test_whole_network_gradient_check(config):
    """Loss, dropout (masks rewound by check_model), max-pools, LRN and every parameter.

    The seed matters: a ReLU input within a finite-difference step of 0 is a kink the central
    difference straddles (seed 1 puts a conv3_1 pre-activation of A-LRN at 9e-9, and conv1_1's
    weight gradient then looks 10% wrong); seed 2 has none closer than 1e-5."""
    model = build_vgg(config, input_size=32, width=1 / 16, fc_width=16, num_classes=3,
                      dtype=np.float64, seed=2)
    rng = np.random.default_rng(1)
    for value in model.params.values():          # non-zero biases, so they are checked too
        if value.ndim == 1:
            value[...] = 0.1 * rng.standard_normal(value.shape)
    x = rng.standard_normal((2, 3, 32, 32))
    report = check_model(model, x, np.array([0, 2]), max_entries=12)
    assert report.passed, str(report)
    assert report.tol == MODEL_TOL
    assert {c.name for c in report.checks} == {"x", *model.params}
    assert model.training and model["drop6"].p == 0.5


@pytest.mark.parametrize("kwargs", [dict(init="paper", std=float("nan")),
                                    dict(init="paper", std=float("inf")), dict(classifier_std=-0.01),
                                    dict(classifier_std=float("nan"))])
def test_non_finite_or_negative_init_stds_are_refused(kwargs):
    name = next(iter(k for k in kwargs if k.endswith("std")))
    with pytest.raises(ValueError, match=name):
        build_vgg("A", **SMALL, **kwargs)
