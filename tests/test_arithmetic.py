"""The paper's arithmetic: Table 2's parameter counts to the whole parameter, multiply-accumulates,
activation memory and the side argument of Sec. 2.3, each derived here from first principles."""

import csv
import io
import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from minivgg import Conv2d
from minivgg.arithmetic import (
    LayerStats,
    Summary,
    dense_plan,
    effective_receptive_field,
    field_spread,
    measure_training_memory,
    stacked_convs,
    summarize,
    training_memory,
)
from minivgg.cli import main
from minivgg.dense import to_dense
from minivgg.model import Sequential
from minivgg.published import compare
from minivgg.vgg import build_vgg, vgg_plan

# Table 1 written out: per stage, (kernel, output channels) of each convolution.
STAGES = {
    "A": [[(3, 64)], [(3, 128)], [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2],
    "B": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2],
    "C": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 2 + [(1, 256)],
          [(3, 512)] * 2 + [(1, 512)], [(3, 512)] * 2 + [(1, 512)]],
    "D": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 3, [(3, 512)] * 3, [(3, 512)] * 3],
    "E": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 4, [(3, 512)] * 4, [(3, 512)] * 4],
}
STAGES["A-LRN"] = STAGES["A"]                       # LRN has no parameters
FC = [(512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)]
TABLE_2_MILLIONS = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
# The same counts to the whole parameter, as widely quoted (torchvision's vgg11/13/16/19 agree)
TABLE_2_EXACT = {"A": 132_863_336, "A-LRN": 132_863_336, "B": 133_047_848, "C": 133_638_952,
                 "D": 138_357_544, "E": 143_667_240}


def convs(name):
    """(k, C_in, C_out, side of the output) for every convolution of a 224x224 network."""
    out, c_in = [], 3
    for s, stage in enumerate(STAGES[name]):
        for k, c_out in stage:
            out.append((k, c_in, c_out, 224 // 2 ** s))
            c_in = c_out
    return out


def params_by_hand(name):
    conv = sum(k * k * c_in * c_out + c_out for k, c_in, c_out, _ in convs(name))
    return conv + sum(d_in * d_out + d_out for d_in, d_out in FC)


def macs_by_hand(name):
    return (sum(side * side * k * k * c_in * c_out for k, c_in, c_out, side in convs(name))
            + sum(d_in * d_out for d_in, d_out in FC))


@pytest.fixture(scope="module")
def full_size():
    """The six full-size networks' summaries. init=None: zero weights, nothing drawn."""
    return {name: build_vgg(name, init=None).summary() for name in STAGES}


@pytest.mark.parametrize("name", list(STAGES))
def test_table_2_to_the_whole_parameter(full_size, name):
    assert params_by_hand(name) == TABLE_2_EXACT[name]
    assert round(TABLE_2_EXACT[name] / 1e6) == TABLE_2_MILLIONS[name]
    assert full_size[name].total_params == TABLE_2_EXACT[name]


@pytest.mark.parametrize("name", list(STAGES))
def test_multiply_accumulates(full_size, name):
    assert full_size[name].total_macs == macs_by_hand(name)


def test_vgg16_facts_per_layer(full_size):
    d = full_size["D"]
    assert d["conv1_1"].params == 3 * 9 * 64 + 64
    assert d["conv1_1"].macs == 224 * 224 * 64 * 27
    assert d["conv1_1"].output_shape == (64, 224, 224)
    assert d["conv1_1"].bytes == 64 * 224 * 224 * 4                # float32
    assert d["fc6"].params == 25088 * 4096 + 4096                  # 74% of the network
    assert d["fc6"].macs == 25088 * 4096
    assert d["pool5"].output_shape == (512, 7, 7)
    assert (d["relu1_1"].params, d["relu1_1"].macs, d["pool1"].macs) == (0, 0, 0)
    assert d.total_macs == 15_470_264_320                          # the quoted 15.5 GMACs
    assert d.total_params == sum(row.params for row in d.rows)
    # all outputs added up count each ReLU output, Flatten's view and dropout's identity again;
    # the distinct arrays do not count the view and the identity; an in-place ReLU leaves the
    # conv, pool and FC outputs (issue 14: 28.7M against 15.1M)
    conv_values = sum(c * side * side for _, _, c, side in convs("D"))
    pool_values = sum(stage[-1][1] * (112 // 2 ** s) ** 2 for s, stage in enumerate(STAGES["D"]))
    fc_values = 4096 + 4096 + 1000
    relu_values, view, identity = conv_values + 2 * 4096, 25088, 2 * 4096
    assert d.total_activations == conv_values + relu_values + pool_values + view + fc_values \
        + identity == 28_676_072
    assert d.distinct_activations() == d.total_activations - view - identity
    assert d.distinct_activations(inplace_relu=True) == conv_values + pool_values + fc_values \
        == 15_087_080


def test_the_table_shows_the_whole_counts(full_size):
    text = str(full_size["D"])
    assert "138,357,544" in text and "15,470,264,320" in text
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("conv3_2"))
    assert row.split()[1:3] == ["256x56x56", "590,080"]       # 9 * 256 * 256 + 256
    assert len([line for line in lines if line.startswith(("conv", "fc"))]) == 16


def test_rows_are_data_and_bytes_follow_the_dtype():
    model = build_vgg("A", input_size=32, width=1 / 16, fc_width=8, num_classes=3,
                      dtype=np.float64)
    summary = model.summary()
    assert isinstance(summary, Summary) and all(isinstance(r, LayerStats) for r in summary.rows)
    assert [r.name for r in summary.rows] == list(model.layers)
    assert summary.dtype == np.float64 and summary.input_shape == (3, 32, 32)
    assert summary["conv1_1"].bytes == 4 * 32 * 32 * 8
    assert summary.total_params == model.num_params()
    # output shapes are the model's own
    assert [(r.name, r.output_shape) for r in summary.rows] == model.output_shapes()
    with pytest.raises(KeyError, match="no layer named 'conv9_9'"):
        summary["conv9_9"]


def test_another_input_size():
    model = build_vgg("A", input_size=64, width=1 / 16, fc_width=8, num_classes=3)
    rows = model.summary((3, 64, 64))
    assert rows["conv1_1"].macs == 64 * 64 * 4 * 27
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        model.summary((64, 64))


@pytest.mark.parametrize("n, field, stack, single", [
    (1, 3, 9, 9), (2, 5, 18, 25), (3, 7, 27, 49), (4, 9, 36, 81)])
def test_stacks_of_3x3_convolutions(n, field, stack, single):
    facts = stacked_convs(n)
    assert (facts.field, facts.stack_weights, facts.single_weights) == (field, stack, single)
    assert facts.extra == pytest.approx(single / stack - 1)


def test_one_7x7_layer_needs_81_percent_more_weights_than_three_3x3_layers():
    # Sec. 2.3: 49 C^2 against 27 C^2, 81% more (so the stack has 45% fewer: 1 - 27/49)
    facts = stacked_convs(3, channels=512)
    assert facts.stack_weights == 27 * 512 ** 2 and facts.single_weights == 49 * 512 ** 2
    assert round(100 * facts.extra) == 81
    assert round(100 * (1 - facts.stack_weights / facts.single_weights)) == 45
    with pytest.raises(ValueError, match="n must be a positive int; got 0"):
        stacked_convs(0)


# ---- the plan: arithmetic without arrays, and the same numbers as the model's own layers ----

SMALL = dict(input_size=32, width=1 / 16, fc_width=8, num_classes=3)


@pytest.mark.parametrize("name", list(STAGES))
def test_the_plan_gives_the_models_numbers(name):
    model = build_vgg(name, **SMALL, input_std=2.0)
    plan = vgg_plan(name, **SMALL, input_std=2.0)
    assert [n for n, _, _ in plan] == list(model.layers)
    assert summarize(plan, (3, 32, 32)).rows == model.summary().rows


def test_the_dense_plan_gives_to_dense_numbers():
    model = build_vgg("B", input_size=64, width=1 / 16, fc_width=8, num_classes=3)
    dense = to_dense(model)
    plan = dense_plan(vgg_plan("B", input_size=64, width=1 / 16, fc_width=8, num_classes=3),
                      (2, 2))
    assert summarize(plan, (3, 96, 96)).rows == dense.summary((3, 96, 96)).rows
    assert dense.summary((3, 96, 96))["fc8"].output_shape == (3, 2, 2)


def run(argv, capsys):
    assert main(argv) == 0
    return capsys.readouterr().out


def test_json_holds_the_whole_counts_and_every_row(capsys):
    data = json.loads(run(["summary", "D", "--input", "224", "--format", "json"], capsys))
    assert data["totals"]["params"] == 138_357_544 and data["totals"]["macs"] == 15_470_264_320
    rows = {row["name"]: row for row in data["rows"]}
    assert len(rows) == 39 and rows["conv3_2"]["params"] == 9 * 256 * 256 + 256
    assert rows["fc6"]["macs"] == 25088 * 4096 and rows["pool5"]["output_shape"] == [512, 7, 7]
    assert rows["fc6"]["param_bytes"] == 4 * (25088 * 4096 + 4096)          # float32
    assert sum(row["param_bytes"] for row in rows.values()) == data["totals"]["param_bytes"]
    assert data["conventions"]["count"] == "macs" and data["conventions"]["bias"] is False
    flops = json.loads(run(["summary", "D", "--format", "json", "--count", "flops", "--bias"],
                           capsys))
    conv_out = sum(c * side * side for _, _, c, side in convs("D"))
    assert flops["totals"]["ops"] == 2 * macs_by_hand("D") + conv_out + 4096 + 4096 + 1000


def test_csv_has_a_row_per_layer_and_the_totals(capsys):
    lines = list(csv.DictReader(io.StringIO(run(["summary", "A", "--format", "csv"], capsys))))
    assert len(lines) == len(build_vgg("A", init=None, **SMALL).layers) + 1
    assert lines[-1]["name"] == "total" and int(lines[-1]["params"]) == TABLE_2_EXACT["A"]
    assert lines[0]["count"] == "macs"


def test_input_256_is_vgg16_evaluated_densely_unless_rebuilt(capsys):
    text = run(["summary", "D", "--input", "256"], capsys)
    assert "evaluated densely at 256x256" in text.splitlines()[0]
    assert "138,357,544" in text and "1000x2x2" in text             # the 2x2 class score map
    rebuilt = run(["summary", "D", "--input", "256", "--rebuild"], capsys)
    assert "built for 256x256" in rebuilt and "169,814,824" in rebuilt  # fc6: 8*8*512 inputs
    assert 512 * 8 * 8 * 4096 + TABLE_2_EXACT["D"] - 25088 * 4096 == 169_814_824


def test_a_huge_width_is_arithmetic_without_arrays(capsys):
    tracemalloc.start()
    text = run(["summary", "D", "--width", "1000"], capsys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6                                   # VGG-16 at width 1 alone is 553 MB
    c = 512_000                                          # conv5_3: 512 * 1000 channels
    assert f"{9 * c * c + c:,}" in text


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1"])
def test_width_must_be_finite_and_positive(value, capsys):
    with pytest.raises(SystemExit):
        main(["summary", "D", "--width", value])
    assert "--width: must be a finite positive number" in capsys.readouterr().err
    with pytest.raises(ValueError, match="vgg_plan: width must be a finite number > 0; got inf"):
        vgg_plan("D", width=float("inf"))


def test_units_and_conventions_in_the_table(full_size):
    d = full_size["D"]
    assert "527.8 MiB" in d.table() and "553.4 MB" in d.table(units="si")
    assert d.total_ops("flops") == 2 * d.total_macs
    assert f"{d.total_ops('macs', elementwise=True):,}" in d.table(elementwise=True)
    with pytest.raises(ValueError, match="count must be one of"):
        d.table(count="gflops")


def test_the_summary_flags_fields_larger_than_the_input():
    # at 32x32, A's theoretical field exceeds the image from conv4_1 (46 > 32)
    summary = build_vgg("A", **SMALL).summary()
    flagged = summary.field_exceeds_input
    assert flagged[0] == "conv4_1" and summary["conv4_1"].field == (46, 46)
    assert summary["conv3_2"].field == (26, 26) and "conv3_2" not in flagged
    assert "46*" in str(summary) and "* field larger than the 32x32 input" in str(summary)


# ---- every published VGG-16 figure from its convention, derived here by hand ----

def by_hand():
    """The quantities of torchvision's VGG-16 layout at 224, from Table 1 alone."""
    c = convs("D")
    conv_out = sum(co * side * side for _, _, co, side in c)
    pool_out = sum(stage[-1][1] * (112 // 2 ** s) ** 2 for s, stage in enumerate(STAGES["D"]))
    conv_macs = sum(side * side * k * k * ci * co for k, ci, co, side in c)
    fc_macs = sum(a * b for a, b in FC)
    return dict(conv_out=conv_out, pool_out=pool_out, pool_in=4 * pool_out,
                relu=conv_out + 2 * 4096, fc_out=4096 + 4096 + 1000, fc_in=25088 + 4096 + 4096,
                conv_macs=conv_macs, macs=conv_macs + fc_macs, fc_macs=fc_macs, avg=25088,
                drop=2 * 4096, input=3 * 224 * 224, params=TABLE_2_EXACT["D"])


def test_each_published_figure_from_its_convention(full_size):
    h = by_hand()
    bias = h["conv_out"] + h["fc_out"]
    listed = h["input"] + h["conv_out"] + h["pool_out"] + h["fc_out"]
    expected = {   # source: (exact value, as printed)
        "torchvision weights meta _ops": (h["macs"], "15.47"),
        "torchinfo total mult-adds": (15_483_821_032, "15.48"),      # torchinfo 1.8.0's integer
        "ptflops, aten backend": (h["macs"] + bias, "15.48"),
        "ptflops, pytorch backend": (15_523_225_576, "15.52"),       # ptflops 0.7.5's integer
        "thop (older versions)": (h["macs"] + h["conv_out"] + h["fc_macs"] - h["fc_out"],
                                  "15.607"),
        "torch-scan MACs": (h["macs"], "15.47"),
        "torch-scan FLOPs": (2 * h["macs"] + h["relu"] + 3 * h["pool_out"] + 2 * h["avg"]
                             + h["drop"], "30.96"),
        "torch-scan memory accesses": (h["conv_macs"] + h["params"] + h["conv_out"] + h["fc_in"]
                                       + h["fc_out"] + h["relu"] + 2 * h["drop"] + 2
                                       + 5 * h["pool_out"] + 2 * h["avg"], "15.52"),
        "google-research/receptive_field, to pool5": (2 * h["conv_macs"] + h["conv_out"]
                                                      + h["pool_in"], "30.713"),
        "papers: 30.94 (FLOPs)": (2 * h["macs"], "30.94"),
        "papers: 15.3 billion (MACs)": (h["conv_macs"], "15.3"),
        "CS231n notes, per-layer list": (listed, "15.2"),
        "torchinfo forward/backward pass size (MB)": (108_453_696, "108.45"),
        "torchsummary forward/backward pass size (MB)": (
            8 * (h["conv_out"] + h["relu"] + h["pool_out"] + h["fc_out"] + h["drop"]), "218.59"),
        "convnet-burden feature memory (MB)": (4 * listed, "58"),
        "convnet-burden / torchsummary params (MB)": (4 * h["params"], "527.79"),
        "torchinfo params size (MB)": (4 * h["params"], "553.43"),
    }
    assert h["macs"] + bias == 15_483_821_032                        # torchinfo = MACs + bias
    assert h["macs"] + bias + 2 * (h["relu"] + h["pool_in"] + h["avg"]) == 15_523_225_576
    assert 8 * (h["conv_out"] + h["fc_out"]) == 108_453_696
    rows = compare(full_size["D"])
    assert [p.source for p, *_ in rows] == list(expected)
    for p, text, value, matches in rows:
        assert (value, text) == expected[p.source] and matches and text == p.printed, p.source


def test_the_compare_command(capsys):
    text = run(["summary", "D", "--compare"], capsys)
    assert "(differs)" not in text and "15,607,436,312" in text
    assert "field 212, jump 32, padding field / 2 - start = 90" in text
    assert main(["summary", "B", "--compare"]) == 2


# ---- training memory: predicted against the measured peak of a training step ----

def test_training_memory_of_the_small_net_at_batch_64():
    # the CLI's default small net; VGG-16 at batch 1 in benchmarks/README.md (1907 MiB predicted,
    # 1885 measured)
    config = dict(config="A", input_size=32, width=0.25, fc_width=128, num_classes=10)
    build_vgg(**{**config, "width": 1 / 32, "fc_width": 4}).loss(      # compile the kernels
        np.zeros((2, 3, 32, 32), np.float32), np.zeros(2, int))
    model, measured = measure_training_memory(config, 64)
    predicted = training_memory(model.summary(), 64)
    assert abs(predicted.peak / measured - 1) < 0.1
    kept = predicted.total("kept")
    cols = sum(row.cols for row in model.summary().rows) * 64 * 4
    assert cols < kept and predicted.total("grads") == predicted.total("params")


def test_training_memory_follows_each_layers_algorithm():
    # conv2_1 (32 -> 64 channels on 32x32 maps) runs Winograd: the prediction counts its
    # transformed tiles and products, not im2col columns (which would predict 7% too little)
    config = dict(config="A", input_size=64, width=0.5, fc_width=16, num_classes=10)
    model, measured = measure_training_memory(config, 16)
    summary = model.summary()
    assert "winograd" in [row.algorithm for row in summary.rows]
    assert abs(training_memory(summary, 16).peak / measured - 1) < 0.03


# ---- the whole summaries as expected-output files (the torchinfo habit) ----

EXPECTED = Path(__file__).parent / "expected"


@pytest.mark.parametrize("name", list(STAGES))
def test_the_summary_is_the_expected_file(name, capsys):
    """Any changed number shows in a diff. After a deliberate change, regenerate with
    ``python -m minivgg summary NAME > tests/expected/summary_NAME.txt`` and read the diff."""
    expected = (EXPECTED / f"summary_{name}.txt").read_text()
    assert run(["summary", name], capsys) == expected


# ---- the effective receptive field (Luo et al. 2016) on cases with a known answer ----

def uniform_stack(n, kernel, padding):
    layers = []
    for k in range(n):
        conv = Conv2d(1, 1, kernel, 1, padding, dtype=np.float64)
        conv.params["weight"][...] = 1.0
        layers.append((f"conv{k}", conv))
    return Sequential(layers, input_shape=(1, 15, 15))


@pytest.mark.parametrize("n", [1, 2, 4])
def test_a_linear_stack_of_2x2_filters_gives_the_binomial_field(n):
    model = uniform_stack(n, 2, 0)
    images = np.random.default_rng(0).standard_normal((3, 1, 15, 15))
    field = effective_receptive_field(model, f"conv{n - 1}", images)
    nonzero = field[field.sum(axis=1) > 0][:, field.sum(axis=0) > 0]
    binomial = np.array([math.comb(n, k) for k in range(n + 1)], float)
    assert np.allclose(nonzero, np.outer(binomial, binomial) / 4 ** n, rtol=1e-12)
    assert field_spread(field) == pytest.approx((math.sqrt(n) / 2,) * 2)   # sqrt(n p (1 - p))


def test_a_linear_stack_of_3x3_filters_gives_its_trinomial_field():
    # the 3-tap analogue of the binomial: (1 + x + x^2)^n, variance 2n/3, inside the 2n + 1 field
    n = 5
    model = uniform_stack(n, 3, 1)
    field = effective_receptive_field(model, f"conv{n - 1}", np.ones((1, 1, 15, 15)))
    coefficients = np.array([1.0])
    for _ in range(n):
        coefficients = np.convolve(coefficients, [1.0, 1.0, 1.0])
    centre = 7
    profile = field[centre - n:centre + n + 1, centre - n:centre + n + 1]
    assert np.allclose(profile, np.outer(coefficients, coefficients) / 9 ** n, rtol=1e-12)
    assert field.sum() == pytest.approx(1) and profile.sum() == pytest.approx(1)
    assert field_spread(field) == pytest.approx((math.sqrt(2 * n / 3),) * 2)
    box = model.summary()[f"conv{n - 1}"].field_box(clip=(15, 15))
    assert box == (centre - n, centre - n, 2 * n + 1, 2 * n + 1)


def test_the_effective_field_of_a_relu_net_is_inside_the_theoretical_one_and_narrower():
    model = build_vgg("A", input_size=32, width=1 / 8, fc_width=8, num_classes=3, init="he")
    images = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    before = model["conv3_2"].params["weight"].copy()
    field = effective_receptive_field(model, "relu3_2", images)
    top, left, height, width = model.summary()["relu3_2"].field_box(clip=(32, 32))
    inside = field[top:top + height, left:left + width].sum()
    assert inside == pytest.approx(1) and np.array_equal(model["conv3_2"].params["weight"], before)
    assert max(field_spread(field)) < model.summary()["relu3_2"].field[0] / 4
    with pytest.raises(ValueError, match="no spatial map"):
        effective_receptive_field(model, "fc6", images)
    with pytest.raises(KeyError, match="conv9_9"):
        effective_receptive_field(model, "conv9_9", images)
