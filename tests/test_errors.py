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
    with pytest.raises(ValueError, match=r"p \(the probability of dropping a unit\) must be in \[0, 1\)"):
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
