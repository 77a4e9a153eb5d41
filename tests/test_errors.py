"""Bad input meets a clear error at the public boundary, naming what was wrong."""

import numpy as np
import pytest

import minivgg as mv


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"Conv2d: x must have 4 axes \(N, C, H, W\); got shape \(3, 8, 8\)"):
        mv.Conv2d(3, 4)(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="Linear: x must have 2 axes"):
        mv.Linear(4, 2)(np.zeros((1, 4, 1), np.float32))


def test_channel_mismatch():
    with pytest.raises(ValueError, match="has 1 channels .* expects 3"):
        mv.Conv2d(3, 4)(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="has 5 channels .* expects 4"):
        mv.Linear(4, 2)(np.zeros((2, 5), np.float32))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match="kernel size 5 is larger than the padded input size 4"):
        mv.Conv2d(1, 1, 5, padding=1)(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="kernel size 2 is larger than the padded input size 1"):
        mv.MaxPool2d(2)(np.zeros((1, 1, 1, 4), np.float32))


def test_integer_and_mismatched_dtypes():
    with pytest.raises(TypeError, match="float32 or float64; got dtype uint8"):
        mv.Conv2d(3, 4)(np.zeros((1, 3, 8, 8), np.uint8))
    with pytest.raises(TypeError, match="dtype float64 but the parameters are float32"):
        mv.Conv2d(3, 4)(np.zeros((1, 3, 8, 8)))
    with pytest.raises(TypeError, match="must be a NumPy array; got list"):
        mv.ReLU()([1.0, -1.0])
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        mv.Linear(2, 2).astype(np.int32)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair of ints"):
        mv.Conv2d(3, 4, kernel_size=(3, 3, 3))
    with pytest.raises(ValueError, match="stride must be >= 1|kernel_size and stride must be >= 1"):
        mv.Conv2d(3, 4, stride=0)
    with pytest.raises(ValueError, match=r"p \(the probability of dropping a unit\) must be a finite "
                                         r"number in \[0, 1\)"):
        mv.Dropout(1.0)
    with pytest.raises(ValueError, match="convention must be one of"):
        mv.LocalResponseNorm(convention="caffe")
    with pytest.raises(ValueError, match="backend must be one of 'naive', 'numpy', 'numba'; got 'cuda'"):
        mv.set_backend("cuda")


def test_backward_misuse():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        mv.MaxPool2d().backward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(RuntimeError, match="Standardise.backward called before forward"):
        mv.layers.Standardise(2.0).backward(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="std must be a positive number; got 0"):
        mv.layers.Standardise(0)
    pool = mv.MaxPool2d()
    pool(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape \(1, 1, 2, 2\)"):
        pool.backward(np.zeros((1, 1, 4, 4), np.float32))


def test_loss_labels_are_checked():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        mv.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 3]))
    with pytest.raises(ValueError, match="labels must be 2 integers"):
        mv.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0.0, 1.0]))


@pytest.mark.parametrize("make, message", [
    (lambda: mv.LocalResponseNorm(alpha=float("nan")), "LocalResponseNorm: alpha must be a finite"),
    (lambda: mv.LocalResponseNorm(beta=-1.0), "LocalResponseNorm: beta must be a finite number >= 0"),
    (lambda: mv.LocalResponseNorm(k=float("inf")), "LocalResponseNorm: k must be a finite"),
    (lambda: mv.LocalResponseNorm(size=0), "LocalResponseNorm: size must be a positive int"),
    (lambda: mv.Conv2d(0, 4), "Conv2d: in_channels must be a positive int; got 0"),
    (lambda: mv.Conv2d(3, -2), "Conv2d: out_channels must be a positive int; got -2"),
    (lambda: mv.Conv2d(3.0, 4), "Conv2d: in_channels must be a positive int; got 3.0"),
    (lambda: mv.Linear(4, 0), "Linear: out_features must be a positive int; got 0"),
    (lambda: mv.Conv2d(3, 4, weight_std=float("nan")), "weight_std must be a finite number"),
    (lambda: mv.Dropout(float("nan")), "Dropout: p .* must be a finite number in"),
    (lambda: mv.build_vgg("A", init="paper", std=float("nan")), "std .* must be a positive finite"),
    (lambda: mv.build_vgg("A", init="paper", std=0), "std .* must be a positive finite"),
])
def test_bad_numbers_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_numpy_scalars_are_accepted():
    assert mv.Dropout(np.float32(0.5)).p == 0.5
    conv = mv.Conv2d(np.int64(3), np.int32(4), np.int64(3), weight_std=np.float32(0.1))
    assert (conv.in_channels, conv.out_channels) == (3, 4) and type(conv.in_channels) is int
    lrn = mv.LocalResponseNorm(np.int64(5), np.float32(1e-4), np.float64(0.75), np.int64(2))
    assert (lrn.size, lrn.k) == (5, 2.0)
    assert mv.Linear(np.int64(4), np.int64(2)).params["weight"].shape == (2, 4)


@pytest.mark.parametrize("layer", [lambda: mv.Conv2d(3, 4, padding=1), mv.LocalResponseNorm,
                                   mv.MaxPool2d, mv.ReLU, lambda: mv.Dropout(0.5)])
def test_empty_batches_are_refused(layer):
    with pytest.raises(ValueError, match=r"x is an empty batch \(shape \(0, 3, 8, 8\)\)"):
        layer()(np.zeros((0, 3, 8, 8), np.float32))


def test_empty_loss_batch_is_refused():
    with pytest.raises(ValueError, match="logits is an empty batch"):
        mv.softmax_cross_entropy(np.zeros((0, 10), np.float32), np.zeros(0, np.int64))


@pytest.mark.parametrize("layer", [lambda: mv.Conv2d(3, 4, padding=1), mv.LocalResponseNorm,
                                   mv.MaxPool2d, mv.ReLU, lambda: mv.Dropout(0.5, rng=0)])
def test_integer_dout_is_refused_by_name(layer):
    layer = layer()
    y = layer(np.ones((2, 3, 8, 8), np.float32))
    with pytest.raises(TypeError, match="backward: dout must be float32 or float64; got dtype int64"):
        layer.backward(np.ones(y.shape, np.int64))


def test_an_empty_batch_to_the_euclidean_loss_is_a_clear_error():
    from minivgg.layers.euclidean import euclidean_loss
    with pytest.raises(ValueError, match=r"pred is an empty batch \(shape \(0, 4\)\)"):
        euclidean_loss(np.zeros((0, 4)), np.zeros((0, 4)))
