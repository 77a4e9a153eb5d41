"""The configuration table (the paper's Table 1), its aliases, user rows and their errors."""

import pytest

from minivgg.configs import ALIASES, CONFIGS, config_name, parse_config

# Table 1 read column by column: the 3x3 conv channels per stage ("1x1:N" for C's 1x1 convs).
TABLE_1 = {
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "A-LRN": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "C": [[64, 64], [128, 128], [256, 256, "1x1:256"], [512, 512, "1x1:512"],
          [512, 512, "1x1:512"]],
    "D": [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
    "E": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}
WEIGHT_LAYERS = {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19}   # Table 1's header


def expected_specs(name):
    specs = []
    for s, stage in enumerate(TABLE_1[name]):
        for entry in stage:
            is_1x1 = isinstance(entry, str)
            specs.append(("conv", int(entry[4:]) if is_1x1 else entry, 1 if is_1x1 else 3))
            if name == "A-LRN" and s == 0:
                specs.append(("lrn",))
        specs.append(("pool",))
    return specs


@pytest.mark.parametrize("name", list(TABLE_1))
def test_rows_are_table_1(name):
    specs = parse_config(name)
    assert specs == expected_specs(name)
    convs = sum(spec[0] == "conv" for spec in specs)
    assert convs + 3 == WEIGHT_LAYERS[name]                 # + fc6, fc7, fc8


def test_the_table_has_the_six_configurations():
    assert set(CONFIGS) == {"A", "A-LRN", "B", "C", "D", "E"}


@pytest.mark.parametrize("alias, name", [
    ("vgg11", "A"), ("vgg13", "B"), ("vgg16", "D"), ("vgg19", "E"), ("VGG16", "D"),
    ("Vgg19", "E"), ("d", "D"), (" e ", "E"), ("a-lrn", "A-LRN"), ("A-lrn", "A-LRN"),
    ("vgg11-LRN", "A-LRN")])
def test_aliases_are_case_insensitive(alias, name):
    assert config_name(alias) == name
    assert parse_config(alias) == parse_config(name)


def test_aliases_point_into_the_table():
    assert set(ALIASES.values()) <= set(CONFIGS)


def test_user_rows_in_the_same_notation():
    row = [16, "conv3-32", "LRN", "M", "conv1-8", 24, "M", "conv5-4"]
    assert parse_config(row) == [("conv", 16, 3), ("conv", 32, 3), ("lrn",), ("pool",),
                                 ("conv", 8, 1), ("conv", 24, 3), ("pool",), ("conv", 4, 5)]
    assert parse_config(tuple(row)) == parse_config(row)


@pytest.mark.parametrize("entry", [0, -64, True, 3.5, "X", "m", "conv3-0", "conv-64", "64",
                                   None])
def test_bad_entries_are_named(entry):
    with pytest.raises(ValueError, match="configuration entry .* is not a layer") as info:
        parse_config([64, entry, "M"])
    assert repr(entry) in str(info.value)


def test_even_kernels_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="'conv2-64': only odd kernels keep the resolution"):
        parse_config([64, "conv2-64"])


@pytest.mark.parametrize("row, message", [
    ([], "non-empty list"), ("", "unknown VGG configuration"), (5, "non-empty list"),
    (["M", 64], "must start with a convolution"), (["LRN", 64], "must start with a convolution")])
def test_bad_rows(row, message):
    with pytest.raises(ValueError, match=message):
        parse_config(row)


@pytest.mark.parametrize("name", ["F", "vgg12", "A_LRN", "resnet50"])
def test_unknown_names_list_the_known_ones(name):
    with pytest.raises(ValueError, match=f"unknown VGG configuration '{name}'; known: A, A-LRN, B, "
                                         f"C, D, E, vgg11"):
        config_name(name)


def test_a_name_must_be_a_string():
    with pytest.raises(TypeError, match="config must be a name or a list of layers; got int"):
        config_name(16)
