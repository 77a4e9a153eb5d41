"""Receptive fields two ways: the recurrences (Summary) and back-propagation
(measure_receptive_fields), against each other on every layer of every configuration, and against
numbers worked out here by hand."""

import numpy as np
import pytest

import minivgg as mv
from minivgg.arithmetic import measure_receptive_fields
from minivgg.model import Sequential
from minivgg.vgg import build_vgg


def fields_by_hand(convs_per_stage):
    """Field, jump and start of every conv and pool of a VGG, by the rules of thumb: a 3x3 conv
    widens the field by one unit on each side (2 * jump pixels); a 2x2/2 pool by one more unit
    (jump) and doubles the jump; pool s moves the first centre by half of the old jump."""
    rows, field, jump, start = {}, 1, 1, 0.5
    for stage, count in enumerate(convs_per_stage, start=1):
        for i in range(1, count + 1):
            field += 2 * jump
            rows[f"conv{stage}_{i}"] = (field, jump, start)
        field, start, jump = field + jump, start + jump / 2, jump * 2
        rows[f"pool{stage}"] = (field, jump, start)
    return rows


# The same numbers written out, so a slip in the helper above shows too.
D_FIELDS = [3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212]
E_FIELDS = [3, 5, 6, 10, 14, 16, 24, 32, 40, 48, 52, 68, 84, 100, 116, 124, 156, 188, 220, 252,
            268]


@pytest.mark.parametrize("config, per_stage, literal", [
    ("D", [2, 2, 3, 3, 3], D_FIELDS), ("E", [2, 2, 4, 4, 4], E_FIELDS)])
def test_fields_of_d_and_e_layer_by_layer(config, per_stage, literal):
    summary = build_vgg(config, input_size=32, width=1 / 64, fc_width=4, num_classes=2).summary()
    expected = fields_by_hand(per_stage)
    assert [field for field, _, _ in expected.values()] == literal
    for name, (field, jump, start) in expected.items():
        row = summary[name]
        assert (row.field, row.jump, row.start) == ((field,) * 2, (jump,) * 2, (start,) * 2), name
        assert summary[f"relu{name[4:]}"].field == row.field if name.startswith("conv") else True


def test_fc6_sees_the_whole_224_crop_and_more():
    """fc6 is a 7x7 window over pool5 (jump 32): 212 + 6 * 32 = 404 pixels, centred on the image
    (pool5's first unit is at 16, the middle of 7 is 3 units on: 16 + 3 * 32 = 112)."""
    row = build_vgg("D", init=None).summary()["fc6"]
    assert row.field == (404, 404) and row.start == (112, 112)
    assert row.field_box() == (112 - 202, 112 - 202, 404, 404)
    assert row.field_box(clip=(224, 224)) == (0, 0, 224, 224)


def test_field_boxes_by_hand():
    summary = build_vgg("A", input_size=32, width=1 / 64, fc_width=4, num_classes=2).summary()
    # conv1_1 unit (0, 0) sees pixels -1..1 (one hangs over the edge into the padding)
    assert summary["conv1_1"].field_box((0, 0)) == (-1, -1, 3, 3)
    assert summary["conv1_1"].field_box((0, 0), clip=(32, 32)) == (0, 0, 2, 2)
    # pool1 unit (2, 5) covers conv1_1 units 4..5 x 10..11, which see pixels 3..6 x 9..12
    assert summary["pool1"].field_box((2, 5)) == (3, 9, 4, 4)
    assert summary["pool1"].centre_unit == (7, 7)            # (16 - 1) // 2


@pytest.mark.parametrize("config", ["A", "A-LRN", "B", "C", "D", "E"])
def test_measured_fields_agree_with_the_recurrences(config):
    """320 = 10 * 32: large enough that E's pool5 field (268) fits whole around the centre
    unit, so most fields are compared unclipped; fc fields exceed the image and are clipped."""
    model = build_vgg(config, input_size=320, width=1 / 64, fc_width=4, num_classes=2)
    summary, measured = model.summary(), measure_receptive_fields(model)
    assert list(measured) == list(model.layers)
    for row in summary.rows:
        assert measured[row.name] == row.field_box(clip=(320, 320)), row.name
    pool5 = summary["pool5"]
    assert min(pool5.field_box()) > 0 and max(np.add(pool5.field_box()[:2], pool5.field)) < 320


def test_measurement_sees_geometry_by_hand():
    """A stride-2 unpadded conv, a 3x3/2 overlapping max-pool and a 5x5 'same' conv on 21x21."""
    model = Sequential([("a", mv.Conv2d(1, 2, 3, stride=2)), ("b", mv.MaxPool2d(3, 2)),
                        ("c", mv.Conv2d(2, 1, 5, padding=2))], input_shape=(1, 21, 21))
    measured = measure_receptive_fields(model)
    # a: 10x10 units; centre (4, 4) reads pixels 8..10
    assert measured["a"] == (8, 8, 3, 3)
    # b: 4x4 units; centre (1, 1) reads a-units 2..4, i.e. pixels 4..10
    assert measured["b"] == (4, 4, 7, 7)
    # c: centre (1, 1) reads b-units -1..3 (clipped to 0..3), a-units 0..8: pixels 0..18
    assert measured["c"] == (0, 0, 19, 19)
    summary = model.summary()
    assert [summary[n].field_box(clip=(21, 21)) for n in "abc"] == list(measured.values())
    assert summary["c"].field == (3 + 2 * 2 + 4 * 4,) * 2        # 23, from r + (k - 1) * j


def test_max_pool_fields_are_the_whole_window():
    """The real max-pool would send the gradient to one arg-max; the measurement must not."""
    model = Sequential([("pool", mv.MaxPool2d(2, 2))], input_shape=(1, 6, 6))
    assert measure_receptive_fields(model) == {"pool": (2, 2, 2, 2)}


def test_layers_that_declare_themselves_elementwise_keep_the_field():
    class Scale(mv.Layer):
        elementwise = True

        def forward(self, x):
            return 2 * x
    model = Sequential([("scale", Scale()), ("conv", mv.Conv2d(1, 1, 3, padding=1))],
                       input_shape=(1, 9, 9))
    summary = model.summary()
    assert summary["scale"].field == (1, 1) and summary["conv"].field == (3, 3)
    assert measure_receptive_fields(model) == {"scale": (4, 4, 1, 1), "conv": (3, 3, 3, 3)}


def test_unknown_layers_are_refused():
    class Shift(mv.Layer):
        pass
    model = Sequential([("shift", Shift())], input_shape=(1, 4, 4))
    with pytest.raises(TypeError, match="does not know layer type Shift"):
        model.summary()
    with pytest.raises(TypeError, match="does not know layer type Shift"):
        measure_receptive_fields(model)
