"""Appendix B's features (fc7 after ReLU from the dense net, averaged over positions, flips and
scales, L2-normalised), the linear classifier on a held-out task, and the FC-free GAP head."""

import numpy as np
import pytest

from minivgg.data import synthetic_shapes
from minivgg.dense import to_dense
from minivgg.features import LinearClassifier, extract_features
from minivgg.vgg import build_vgg


@pytest.fixture(scope="module")
def net():
    return build_vgg("A", num_classes=10, input_size=32, width=1 / 8, fc_width=16, seed=0)


@pytest.fixture(scope="module")
def images():
    return synthetic_shapes(6, 40, seed=1).images


def relu7_map(model, x):
    """The dense net's relu7 map, (N, C, h, w), computed layer by layer here."""
    dense = to_dense(model.eval())
    for name, layer in dense.layers.items():
        x = layer.forward(x)
        if name == "relu7":
            return x
    raise AssertionError("no relu7")


def test_features_are_unit_norm_and_aggregate_as_documented(net, images):
    mean = np.full(3, 100.0, np.float32)
    feats = extract_features(net, images, mean=mean, scales=(32, 64), flip=True)
    assert feats.shape == (6, 16)
    assert np.linalg.norm(feats, axis=1) == pytest.approx(np.ones(6))
    # The same descriptor assembled by hand: per scale, the relu7 map averaged over positions,
    # averaged with the flipped image's; scales averaged; then L2-normalised.
    from minivgg.data import rescale_shorter_side
    by_scale = []
    for q in (32, 64):
        x = (rescale_shorter_side(images, q) - mean).transpose(0, 3, 1, 2).astype(np.float32)
        plain = relu7_map(net, np.ascontiguousarray(x)).mean(axis=(2, 3))
        flipped = relu7_map(net, np.ascontiguousarray(x[..., ::-1])).mean(axis=(2, 3))
        by_scale.append((plain + flipped) / 2)
    assert relu7_map(net, np.zeros((1, 3, 64, 64), np.float32)).shape[2:] == (2, 2)  # 4 windows
    expected = np.mean(by_scale, axis=0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert feats == pytest.approx(expected, abs=1e-5)
    stacked = extract_features(net, images, mean=mean, scales=(32, 64), aggregate="stack")
    assert stacked.shape == (6, 32)
    assert np.linalg.norm(stacked, axis=1) == pytest.approx(np.ones(6))
    no_flip = extract_features(net, images, mean=mean, scales=32, flip=False)
    x = (rescale_shorter_side(images, 32) - mean).transpose(0, 3, 1, 2).astype(np.float32)
    unit = relu7_map(net, np.ascontiguousarray(x)).mean(axis=(2, 3))
    assert no_flip == pytest.approx(unit / np.linalg.norm(unit, axis=1, keepdims=True), abs=1e-5)


def edge_net():
    """A small VGG whose conv1_1 holds oriented edge filters (horizontal, vertical, the two
    diagonals, both signs) and the rest random: a stand-in for a trained net (training one
    takes minutes) with the one thing training surely gives, oriented edges."""
    model = build_vgg("A", num_classes=10, input_size=32, width=1 / 8, fc_width=32, seed=0,
                      init="he")
    horizontal = np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], float)
    diagonal = np.array([[-1, -1, 0], [-1, 0, 1], [0, 1, 1]], float)
    kernels = [horizontal, horizontal.T, diagonal, diagonal[:, ::-1]]
    weight = model.params["conv1_1.weight"]
    for i in range(len(weight)):
        weight[i] = kernels[i % 4] * (1 if i % 8 < 4 else -1) / 100
    return model


def test_linear_classifier_beats_chance_on_held_out_classes():
    """The four texture classes, which the net never saw labels of, 10 labels per class; the
    test accuracy must beat chance (25%) by three binomial standard deviations."""
    data = synthetic_shapes(400, 32, seed=5)
    textures = data.labels >= 6
    feats = extract_features(edge_net(), data.images[textures], mean=np.full(3, 120.0),
                             flip=False)
    labels = data.labels[textures] - 6
    train = np.arange(len(labels)) < 40
    accuracy = LinearClassifier(reg=1e-4, steps=300).fit(feats[train], labels[train], 4).accuracy(
        feats[~train], labels[~train])
    assert accuracy > 0.25 + 3 * np.sqrt(0.25 * 0.75 / np.sum(~train))


def test_linear_classifier_fits_separable_data_and_checks_its_input():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 3
    labels = rng.integers(0, 3, 90)
    feats = centres[labels] + rng.standard_normal((90, 3)) * 0.3
    assert LinearClassifier().fit(feats, labels).accuracy(feats, labels) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        LinearClassifier().fit(np.full((2, 3), np.nan), [0, 1])
    with pytest.raises(RuntimeError, match="fit"):
        LinearClassifier().predict(feats)


def test_gap_head_parameter_count_derived():
    """VGG-16's convolutions (13 layers of 3x3, channels from Table 1) plus one 512 -> 1000
    linear layer: what head="gap" leaves of the 138M."""
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    conv = sum(9 * c_in * c_out + c_out for c_in, c_out in zip(channels, channels[1:]))
    assert conv == 14_714_688                         # the well-known VGG-16 conv total
    model = build_vgg("D", head="gap", init=None)
    assert model.num_params() == conv + 512 * 1000 + 1000
    assert list(model.layers)[-2:] == ["gap", "fc8"]
    small = build_vgg("A", num_classes=10, input_size=32, width=1 / 8, head="gap", seed=0)
    assert small.forward(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 10)
    with pytest.raises(ValueError, match="head"):
        build_vgg("A", head="fc9")


def test_a_gap_model_saves_and_loads(tmp_path):
    """The loaders check a file's arrays against the plan of its config: the plan must be the
    GAP head's (fc6/fc7 absent), or a saved GAP model is refused as corrupted."""
    from minivgg.io import load_model, save_model
    model = build_vgg("A", num_classes=10, input_size=32, width=1 / 8, head="gap", seed=0)
    save_model(model, tmp_path / "gap.npz")
    loaded = load_model(tmp_path / "gap.npz")
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval().forward(x), model.eval().forward(x))


def test_features_command_writes_unit_norm_descriptors(tmp_path, capsys):
    from PIL import Image

    from minivgg.cli import main
    tiny = ["--width", "0.0625", "--fc-width", "8", "--train-size", "20", "--val-size", "10",
            "--image-size", "34", "--batch-size", "10", "--no-progress", "--no-plot"]
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "run"), *tiny]) == 0
    data = synthetic_shapes(6, 36, seed=2)
    for i, (image, label) in enumerate(zip(data.images, data.labels)):
        (tmp_path / "imgs" / data.classes[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "imgs" / data.classes[label] / f"{i}.png")
    out = tmp_path / "feats.npz"
    argv = ["features", str(tmp_path / "run"), "--data", str(tmp_path / "imgs"), "--out",
            str(out), "--scales", "32", "40", "--aggregate", "stack"]
    assert main(argv) == 0
    with np.load(out) as f:
        assert f["features"].shape == (6, 16) and len(f["labels"]) == 6
        assert np.linalg.norm(f["features"], axis=1) == pytest.approx(np.ones(6))
    assert main(argv) == 2 and "exists" in capsys.readouterr().err     # never overwritten unasked
