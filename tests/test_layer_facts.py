"""Layer behaviour checked against numbers worked out by hand, and against the paper's facts."""

import numpy as np
import pytest

import minivgg as mv


def test_lrn_hand_worked_example_both_conventions(backend):
    # One pixel, four channels a = 1, 2, 3, 4; window n = 5 covers c-2 .. c+2, clipped:
    #   c=0: 1+4+9 = 14   c=1: 1+4+9+16 = 30   c=2: 30   c=3: 4+9+16 = 29
    a = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1)
    sums = np.array([14.0, 30.0, 30.0, 29.0])
    expected = np.array([1.0, 2.0, 3.0, 4.0]) / (2.0 + 0.1 * sums) ** 0.75
    krizhevsky = mv.LocalResponseNorm(5, alpha=0.1, beta=0.75, k=2.0)
    np.testing.assert_allclose(krizhevsky(a).ravel(), expected, rtol=1e-12)
    # PyTorch/Caffe divide alpha by n: alpha' = 5 * 0.1 gives the same layer
    pytorch = mv.LocalResponseNorm(5, alpha=0.5, beta=0.75, k=2.0, convention="pytorch")
    np.testing.assert_allclose(pytorch(a).ravel(), expected, rtol=1e-12)
    # ... and the same alpha in both conventions does not
    same_alpha = mv.LocalResponseNorm(5, alpha=0.1, beta=0.75, k=2.0, convention="pytorch")
    assert not np.allclose(same_alpha(a).ravel(), expected)


def test_lrn_paper_defaults():
    layer = mv.LocalResponseNorm()
    assert (layer.size, layer.k, layer.alpha, layer.beta) == (5, 2.0, 1e-4, 0.75)
    assert layer.alpha_per_sum == 1e-4                              # not divided by n


def test_softmax_cross_entropy_is_stable_at_extreme_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=np.float32)
    loss, dlogits = mv.softmax_cross_entropy(logits, np.array([0, 0]))
    # row 0 is right with certainty (loss 0); row 1 is wrong by 2e4 nats
    assert np.isfinite(loss) and loss == pytest.approx((0 + 2e4) / 2, rel=1e-6)
    assert np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(dlogits, [[0, 0, 0], [-0.5, 0, 0.5]], atol=1e-6)


def test_softmax_rows_sum_to_one():
    p = mv.softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(p[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_dropout_keep_rate_scaling_and_eval_identity():
    x = np.ones((200, 500), dtype=np.float32)
    layer = mv.Dropout(0.3, rng=0)
    y = layer(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.005                           # p is the DROP probability
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)         # inverted: E[y] = x
    assert abs(y.mean() - 1.0) < 0.01
    np.testing.assert_array_equal(layer.backward(x), y)             # same mask on the way back
    layer.eval()
    assert layer(x) is x and np.array_equal(layer.backward(x), x)


def test_dropout_is_reproducible_from_a_seed():
    x = np.ones((4, 50))
    assert np.array_equal(mv.Dropout(rng=7)(x), mv.Dropout(rng=7)(x))
    assert not np.array_equal(mv.Dropout(rng=7)(x), mv.Dropout(rng=8)(x))


def test_maxpool_tie_rule_first_maximum_takes_the_gradient(backend):
    x = np.array([[[[1.0, 5.0], [5.0, 2.0]]]])
    pool = mv.MaxPool2d(2)
    assert pool(x).item() == 5.0
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1))), [[[[0, 1], [0, 0]]]])


def test_overlapping_pool_windows_add_their_gradients(backend):
    x = np.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 9.0                       # the maximum of both 3x3 windows (stride 2)
    pool = mv.MaxPool2d(3, 2)
    assert pool(x).shape == (1, 1, 1, 2)
    dx = pool.backward(np.array([[[[1.0, 10.0]]]]))
    assert dx[0, 0, 1, 2] == 11.0 and dx.sum() == 11.0
