"""Dense evaluation: the fully-convolutional net gives the original logits on a 224 crop, a score
map of the right size on larger images, and each score is the original head on one window."""

import numpy as np
import pytest

import minivgg as mv
from minivgg.dense import score_map, to_dense
from minivgg.gradcheck import check_layer
from minivgg.layers import SpatialAverage
from minivgg.model import Sequential
from minivgg.vgg import build_vgg


@pytest.fixture(scope="module")
def model():
    model = build_vgg("A", input_size=224, width=1 / 16, fc_width=16, num_classes=5,
                      dtype=np.float64, seed=0).eval()
    rng = np.random.default_rng(1)
    for value in model.params.values():             # non-zero biases, so they must move too
        if value.ndim == 1:
            value[...] = 0.1 * rng.standard_normal(value.shape)
    return model


def test_same_logits_on_the_training_size(model):
    x = np.random.default_rng(2).standard_normal((2, 3, 224, 224))
    dense = to_dense(model)
    np.testing.assert_allclose(dense(x), model(x), rtol=1e-12, atol=1e-14)
    assert score_map(dense, x).shape == (2, 5, 1, 1)


def test_fc_layers_become_convolutions(model):
    dense = to_dense(model)
    assert [name for name in dense.layers if "drop" in name or name == "flatten"] == []
    fc6, fc7 = dense["fc6"], dense["fc7"]
    assert fc6.kernel_size == (7, 7) and fc6.in_channels == 32 and fc6.out_channels == 16
    assert fc7.kernel_size == (1, 1) and dense["fc8"].out_channels == 5
    # fc6's weight (out, C*7*7), input flattened channel-major: entry [o, c*49 + h*7 + w]
    o, c, h, w = 3, 5, 2, 6
    assert fc6.params["weight"][o, c, h, w] == model["fc6"].params["weight"][o, c * 49 + h * 7 + w]
    assert isinstance(list(dense.layers.values())[-1], SpatialAverage)


def test_score_map_size_on_a_larger_image(model):
    # 256 / 32 = 8 positions at pool5, a 7x7 window fits 8 - 7 + 1 = 2 times; 320 -> 10 -> 4
    maps = score_map(to_dense(model), np.zeros((1, 3, 256, 320)))
    assert maps.shape == (1, 5, 2, 4)


@pytest.mark.parametrize("height, width, expected", [
    (290, 300, (3, 3)),      # floor: 290 -> 145 -> 72 -> 36 -> 18 -> 9 (Caffe's ceil: 10 -> 4)
    (255, 224, (1, 1)),      # 255 // 32 = 7: the last 31 rows make no position of their own
    (288, 287, (3, 2))])
def test_sides_not_a_multiple_of_32_round_down(model, height, width, expected):
    assert score_map(to_dense(model), np.zeros((1, 3, height, width))).shape[2:] == expected


def test_each_score_is_the_original_head_on_one_window(model):
    """Slide the original fc6-fc8 (Linear layers) over the pool5 map of a 256x320 image."""
    x = np.random.default_rng(3).standard_normal((2, 3, 256, 320))
    dense = to_dense(model)
    maps = score_map(dense, x)
    features = x
    for name in model.layers:
        features = model[name].forward(features)
        if name == "pool5":
            break
    assert features.shape[2:] == (8, 10)
    for i in range(2):
        for j in range(4):
            window = features[:, :, i:i + 7, j:j + 7].reshape(2, -1)
            scores = model["fc8"](model["relu7"](model["fc7"](model["relu6"](
                model["fc6"](window)))))
            np.testing.assert_allclose(maps[:, :, i, j], scores, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dense(x), maps.mean(axis=(2, 3)), rtol=1e-13)


def test_the_dense_net_shares_the_weights(model):
    dense = to_dense(model)
    assert np.shares_memory(dense["fc6"].params["weight"], model["fc6"].params["weight"])
    assert dense["conv1_1"] is model["conv1_1"]


def test_dropout_is_gone_even_in_training_mode():
    model = build_vgg("A", input_size=32, width=1 / 16, fc_width=8, num_classes=3, seed=0)
    dense = to_dense(model).train()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(dense(x), dense(x))
    assert dense["fc6"].kernel_size == (1, 1)               # a 32 input leaves a 1x1 map


def test_spatial_average_forward_and_backward():
    x = np.arange(2 * 3 * 2 * 4, dtype=np.float64).reshape(2, 3, 2, 4)
    y = SpatialAverage()(x)
    np.testing.assert_allclose(y[1, 2], x[1, 2].sum() / 8)
    report = check_layer(SpatialAverage(), np.random.default_rng(0).standard_normal((2, 3, 3, 5)))
    assert report.passed, str(report)


def test_errors():
    with pytest.raises(TypeError, match="to_dense needs a minivgg Sequential"):
        to_dense(object())
    convs = Sequential([("conv", mv.Conv2d(1, 1))], input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="one Flatten followed by Linear"):
        to_dense(convs)
    model = build_vgg("A", input_size=32, width=1 / 16, fc_width=8, num_classes=3)
    with pytest.raises(TypeError, match="score_map needs the network returned by to_dense"):
        score_map(model, np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="SpatialAverage: x must have 4 axes"):
        SpatialAverage()(np.zeros((2, 3)))
