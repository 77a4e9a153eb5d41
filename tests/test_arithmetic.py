"""The paper's arithmetic: Table 2's parameter counts to the whole parameter, multiply-accumulates,
activation memory and the side argument of Sec. 2.3, each derived here from first principles."""

import numpy as np
import pytest

from minivgg.arithmetic import LayerStats, Summary, stacked_convs
from minivgg.vgg import build_vgg

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
    # every layer's output counted once; VGG-16's 13 conv outputs dominate
    conv_values = sum(c * side * side for _, _, c, side in convs("D"))
    assert d.total_activations > 2 * conv_values


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


def test_three_3x3_layers_need_81_percent_fewer_weights_than_one_7x7():
    facts = stacked_convs(3, channels=512)
    assert facts.stack_weights == 27 * 512 ** 2 and facts.single_weights == 49 * 512 ** 2
    assert round(100 * facts.extra) == 81
    with pytest.raises(ValueError, match="n must be a positive int; got 0"):
        stacked_convs(0)
