"""Saving and loading, and torchvision's layout: names, shapes, round trips, errors, and (where
PyTorch is installed) the same logits as a torchvision-style network written out by hand."""

import json
import os

import numpy as np
import pytest

from minivgg.errors import CorruptFileError
from minivgg.io import (
    TORCHVISION_MEAN_RGB,
    TORCHVISION_STD_RGB,
    load_model,
    load_torchvision_state_dict,
    save_model,
    to_torchvision_state_dict,
    torchvision_names,
)
from minivgg.layers import Layer
from minivgg.vgg import VGG, build_vgg


class Scale(Layer):
    """A parameter-free input layer such as training's Standardise: nothing in torchvision or in
    build_vgg's output corresponds to it."""
    elementwise = True

    def forward(self, x):
        return 2 * x

SMALL = dict(input_size=32, width=1 / 16, fc_width=16, num_classes=5)

# Where torchvision's vgg11/13/16/19 keep their convolutions: features.N, N counting every conv,
# ReLU and max-pool from the start (read off torchvision's state-dict keys).
TORCHVISION_CONVS = {
    "A": [0, 3, 6, 8, 11, 13, 16, 18],
    "B": [0, 2, 5, 7, 10, 12, 15, 17, 20, 22],
    "D": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "E": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
}
PAPER_CONVS = {  # the same convolutions by the paper's names
    "A": ["1_1", "2_1", "3_1", "3_2", "4_1", "4_2", "5_1", "5_2"],
    "B": ["1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "4_1", "4_2", "5_1", "5_2"],
    "D": ["1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "4_1", "4_2", "4_3", "5_1", "5_2",
          "5_3"],
    "E": ["1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "3_4", "4_1", "4_2", "4_3", "4_4",
          "5_1", "5_2", "5_3", "5_4"],
}


def random_params(model, seed=1):
    rng = np.random.default_rng(seed)
    for value in model.params.values():
        value[...] = rng.standard_normal(value.shape)
    return model


@pytest.mark.parametrize("config", ["A", "B", "D", "E"])
def test_torchvision_names(config):
    mapping = torchvision_names(build_vgg(config, **SMALL))
    expected = {}
    for index, name in zip(TORCHVISION_CONVS[config], PAPER_CONVS[config]):
        for key in ("weight", "bias"):
            expected[f"conv{name}.{key}"] = f"features.{index}.{key}"
    for fc, index in (("fc6", 0), ("fc7", 3), ("fc8", 6)):
        for key in ("weight", "bias"):
            expected[f"{fc}.{key}"] = f"classifier.{index}.{key}"
    assert mapping == expected


def test_save_load_round_trip_is_exact(tmp_path):
    model = random_params(build_vgg("C", dtype=np.float64, seed=3, **SMALL))
    path = tmp_path / "c.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.dtype == np.float64
    assert list(loaded.params) == list(model.params)
    for name, value in model.params.items():
        assert np.array_equal(loaded.params[name], value), name
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    np.testing.assert_array_equal(loaded.eval()(x), model.eval()(x))
    assert os.listdir(tmp_path) == ["c.npz"]                 # no temporary file left behind


def test_saving_replaces_an_old_file_atomically(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    model = build_vgg([4, "M"], input_size=4, fc_width=3, num_classes=2)
    save_model(model, str(path))
    assert load_model(path).config["config"] == [4, "M"]
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_a_file_that_does_not_fit_its_config_names_the_layer(tmp_path):
    model = build_vgg("A", **SMALL)
    config = {**model.config, "fc_width": 32}
    path = tmp_path / "bad.npz"
    np.savez(path, __config__=np.array(json.dumps(config)), **model.params)
    with pytest.raises(CorruptFileError, match=r"corrupted model file: .*bad.npz: its arrays "
                                               r"do not fit the configuration it names: "
                                               r"fc6.weight: \(16, 32\) in the file, \(32, 32\) "
                                               r"for the config"):
        load_model(path)
    np.savez(path, **model.params)
    with pytest.raises(ValueError, match="not a minivgg model file"):
        load_model(path)
    with pytest.raises(TypeError, match="save_model needs a VGG built by build_vgg"):
        save_model(object(), tmp_path / "x.npz")


def test_torchvision_round_trip_and_layout():
    model = random_params(build_vgg("D", **SMALL))
    state = to_torchvision_state_dict(model)
    assert state["features.28.weight"].shape == (32, 32, 3, 3)      # conv5_3: (out, in, kh, kw)
    assert state["classifier.0.weight"].shape == (16, 32 * 1 * 1)   # fc6: (out, in)
    fresh = build_vgg("D", seed=9, **SMALL)
    load_torchvision_state_dict(fresh, state)
    for name, value in model.params.items():
        assert np.array_equal(fresh.params[name], value), name
    state["features.0.weight"][...] = 0                            # copies, not views
    assert model.params["conv1_1.weight"].any()


class FakeTensor:
    """What a torch tensor offers, without torch: .detach().cpu().numpy()."""

    def __init__(self, array):
        self.array = array

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.array


def test_tensor_like_values_are_accepted_and_cast():
    model = random_params(build_vgg("A", dtype=np.float64, **SMALL))
    state = {k: FakeTensor(v.astype(np.float32)) for k, v in
             to_torchvision_state_dict(model).items()}
    target = build_vgg("A", **SMALL)                                   # float32
    load_torchvision_state_dict(target, state)
    assert target.params["fc8.bias"].dtype == np.float32
    np.testing.assert_array_equal(target.params["fc8.bias"],
                                  model.params["fc8.bias"].astype(np.float32))
    with pytest.raises(TypeError, match=r"state_dict\['features.0.weight'\] must be an array"):
        load_torchvision_state_dict(target, {**state, "features.0.weight": [1.0]})


def test_state_dict_errors_name_both_namings():
    model = build_vgg("A", **SMALL)
    state = to_torchvision_state_dict(model)
    missing = {k: v for k, v in state.items() if k != "features.3.bias"}
    with pytest.raises(ValueError, match=r"missing \['features.3.bias \(conv2_1.bias\)'\]; "
                                         r"unexpected none"):
        load_torchvision_state_dict(model, missing)
    with pytest.raises(ValueError, match=r"missing none; unexpected \['features.1.weight'\]"):
        load_torchvision_state_dict(model, {**state, "features.1.weight": np.zeros(1)})
    wrong = {**state, "classifier.3.weight": np.zeros((16, 15), np.float32)}
    before = model.params["conv1_1.weight"].copy()
    with pytest.raises(ValueError, match=r"classifier.3.weight has shape \(16, 15\) in the state "
                                         r"dict but fc7.weight has shape \(16, 16\)"):
        load_torchvision_state_dict(model, {**wrong, "features.0.weight": before + 1})
    assert np.array_equal(model.params["conv1_1.weight"], before)    # nothing copied


def torch_vgg(torch, config, width, fc_width, num_classes):
    """torchvision's VGG layout written by hand (torchvision itself may not be installed)."""
    nn = torch.nn
    table = {"A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
             "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                   512, 512, 512, "M"]}[config]
    layers, channels = [], 3
    for entry in table:
        if entry == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            out = max(1, round(entry * width))
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(inplace=True)]
            channels = out
    features = nn.Sequential(*layers)
    classifier = nn.Sequential(
        nn.Linear(channels * 7 * 7, fc_width), nn.ReLU(True), nn.Dropout(),
        nn.Linear(fc_width, fc_width), nn.ReLU(True), nn.Dropout(),
        nn.Linear(fc_width, num_classes))

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, self.avgpool, self.classifier = features, nn.AdaptiveAvgPool2d(7), \
                classifier

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
    return VGG()


@pytest.mark.parametrize("config", ["A", "D"])
def test_same_logits_as_pytorch(config):
    """torchvision's preprocessing of the same 0-255 RGB images, (x / 255 - mean) / std, into the
    torch net; minivgg's usual input, x - TORCHVISION_MEAN_RGB, into the imported model (whose
    new first layer divides by the std): the logits agree."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch_vgg(torch, config, width=1 / 16, fc_width=16, num_classes=5).double().eval()
    with torch.no_grad():
        for p in net.parameters():          # biases too, so a bias mapped wrongly shows
            p.add_(0.1 * torch.randn_like(p))
    model = build_vgg(config, input_size=224, width=1 / 16, fc_width=16, num_classes=5,
                      dtype=np.float64).eval()
    load_torchvision_state_dict(model, net.state_dict())
    assert list(model.layers)[:2] == ["standardise", "conv1_1"]
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    torch_input = ((images / 255 - mean) / std).transpose(0, 3, 1, 2)
    with torch.no_grad():
        expected = net(torch.from_numpy(np.ascontiguousarray(torch_input))).numpy()
    ours = (images - np.array(TORCHVISION_MEAN_RGB)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(model(ours), expected, rtol=1e-9, atol=1e-11)
    back = to_torchvision_state_dict(model)
    assert set(back) == set(net.state_dict())


def test_torchvision_import_carries_its_preprocessing(tmp_path):
    model = random_params(build_vgg("A", dtype=np.float64, **SMALL))
    state = to_torchvision_state_dict(model)
    fresh = build_vgg("A", dtype=np.float64, **SMALL)
    load_torchvision_state_dict(fresh, state)
    assert fresh["standardise"].std == TORCHVISION_STD_RGB
    assert fresh.config["input_std"] == list(TORCHVISION_STD_RGB)
    x = np.random.default_rng(0).uniform(-120, 140, (2, 3, 32, 32))
    scaled = x / np.array(TORCHVISION_STD_RGB)[:, None, None]      # what the weights expect
    np.testing.assert_allclose(fresh.eval()(x), model.eval()(scaled), rtol=1e-12)
    save_model(fresh, tmp_path / "tv.npz")                          # the layer is kept
    np.testing.assert_array_equal(load_model(tmp_path / "tv.npz").eval()(x), fresh(x))
    load_torchvision_state_dict(fresh, state)                       # once, not twice
    assert list(fresh.layers)[:2] == ["standardise", "conv1_1"]
    plain = build_vgg("A", **SMALL)
    load_torchvision_state_dict(plain, state, standardise=False)
    assert list(plain.layers)[0] == "conv1_1"
    other = build_vgg("A", input_std=70.0, **SMALL)
    with pytest.raises(ValueError, match=r"already divides its input by std=70.0"):
        load_torchvision_state_dict(other, state)


def test_layers_build_vgg_would_not_make_are_refused(tmp_path):
    model = build_vgg("A", **SMALL)
    extended = VGG([("scale", Scale()), *model.layers.items()], model.config)
    with pytest.raises(ValueError, match=r"save_model: layer 0 is \('scale', 'Scale'\) in the "
                                         r"model but \('conv1_1', 'Conv2d'\) in what build_vgg"):
        save_model(extended, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="layer 'scale' \\(Scale\\) has no counterpart in "
                                         "torchvision's VGG"):
        torchvision_names(extended)


def test_standardised_model_saves_loads_and_maps_to_torchvision(tmp_path):
    model = build_vgg("A", num_classes=3, input_size=32, width=1 / 16, fc_width=8, input_std=70.0)
    assert list(model.layers)[0] == "standardise"
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded["standardise"].std == 70.0
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32) * 70
    np.testing.assert_array_equal(loaded.eval()(x), model.eval()(x))
    # preprocessing has no torchvision index: conv1_1 is still features.0
    assert to_torchvision_state_dict(model).keys() >= {"features.0.weight", "classifier.6.bias"}
