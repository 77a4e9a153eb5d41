"""Paper-style evaluation: the methods agree where they must, metrics by hand, clear errors."""

import numpy as np
import pytest

from minivgg.data import ImageDataset
from minivgg.evaluate import (
    combine,
    confusion_matrix,
    evaluate,
    grid_offsets,
    paper_scales,
    posteriors,
    top_k_error,
)
from minivgg.layers import softmax
from minivgg.vgg import build_vgg

K = 4
MEAN = np.array([120.0, 110.0, 100.0])


@pytest.fixture(scope="module")
def model():
    # dropout=0.5 on purpose: posteriors must switch it off, or repeated calls would differ.
    return build_vgg("A", width=1 / 16, fc_width=16, input_size=32, num_classes=K, seed=1)


def images(n, height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def reference_posteriors(model, batch):
    """Soft-max of the plain network on uint8 (n, 32, 32, 3) images, computed from scratch."""
    x = (batch.astype(np.float64) - MEAN).transpose(0, 3, 1, 2).astype(np.float32)
    model.eval()
    try:
        return softmax(model.forward(np.ascontiguousarray(x)).astype(np.float64))
    finally:
        model.train()


# -- the methods agree where they must ------------------------------------------------------------

def test_center_at_input_size_is_the_plain_forward_pass(model):
    batch = images(5, 32, 32)
    got = posteriors(model, batch, mean=MEAN, method="center")
    np.testing.assert_allclose(got, reference_posteriors(model, batch), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
    assert model.training, "posteriors must restore the model's training mode"


def test_center_crops_the_middle_of_a_rescaled_image(model):
    # 40 x 48 at Q = 40 needs no rescale; its centre 32 x 32 window starts at (4, 8).
    batch = images(3, 40, 48, seed=1)
    got = posteriors(model, batch, mean=MEAN, method="center", scales=40)
    want = reference_posteriors(model, batch[:, 4:36, 8:40])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_dense_equals_center_when_the_image_is_the_crop(model):
    batch = images(6, 32, 32, seed=2)
    dense = posteriors(model, batch, mean=MEAN, method="dense", scales=32)
    center = posteriors(model, batch, mean=MEAN, method="center", scales=32)
    np.testing.assert_allclose(dense, center, rtol=1e-5, atol=1e-7)


def test_dense_differs_from_center_on_a_larger_image(model):
    # The two must not agree by accident: on 64 x 64 the score map is 2 x 2, not one crop.
    batch = images(4, 64, 64, seed=3)
    dense = posteriors(model, batch, mean=MEAN, method="dense", scales=64)
    center = posteriors(model, batch, mean=MEAN, method="center", scales=64)
    assert np.abs(dense - center).max() > 1e-4


@pytest.mark.parametrize("method", ["center", "dense", "multicrop"])
def test_flip_averages_the_image_and_its_mirror(model, method):
    batch = images(4, 48, 48, seed=4)          # even margins: the mirror's crops are mirrored crops
    kwargs = dict(mean=MEAN, method=method, scales=48, grid=3)
    both = posteriors(model, batch, flip=True, **kwargs)
    plain = posteriors(model, batch, **kwargs)
    mirrored = posteriors(model, batch[:, :, ::-1], **kwargs)
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-5, atol=1e-7)
    assert np.abs(plain - mirrored).max() > 1e-4       # else the test could not fail


def test_multicrop_grid_1_at_the_crop_scale_is_the_centre_crop(model):
    batch = images(5, 32, 45, seed=5)          # the shorter side is the crop, odd margin
    multi = posteriors(model, batch, mean=MEAN, method="multicrop", scales=32, grid=1, flip=True)
    center = posteriors(model, batch, mean=MEAN, method="center", scales=32, flip=True)
    np.testing.assert_allclose(multi, center, rtol=1e-5, atol=1e-7)


def test_multicrop_averages_the_grid_of_crops(model):
    batch = images(2, 40, 40, seed=6)          # grid 2: crops at 0 and 40 - 32 = 8 on each side
    got = posteriors(model, batch, mean=MEAN, method="multicrop", scales=40, grid=2)
    crops = [batch[:, t:t + 32, s:s + 32] for t in (0, 8) for s in (0, 8)]
    want = np.mean([reference_posteriors(model, c) for c in crops], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_multi_scale_averages_the_single_scales(model):
    batch = images(3, 40, 40, seed=7)
    kwargs = dict(mean=MEAN, method="dense")
    both = posteriors(model, batch, scales=(32, 64), **kwargs)
    single = [posteriors(model, batch, scales=q, **kwargs) for q in (32, 64)]
    np.testing.assert_allclose(both, (single[0] + single[1]) / 2, rtol=1e-6, atol=1e-8)
    assert np.abs(single[0] - single[1]).max() > 1e-4


def test_batch_size_and_mixed_sizes_do_not_change_the_answer(model):
    batch = images(5, 36, 44, seed=8)
    kwargs = dict(mean=MEAN, method="multicrop", scales=(32, 40), grid=2, flip=True)
    whole = posteriors(model, batch, batch_size=1000, **kwargs)
    np.testing.assert_allclose(posteriors(model, batch, batch_size=3, **kwargs), whole,
                               rtol=1e-5, atol=1e-7)
    # A list with an odd one out: the others must still come back in their own rows.
    mixed = [batch[0], images(1, 50, 33, seed=9)[0], *batch[1:]]
    got = posteriors(model, mixed, batch_size=8, **kwargs)
    np.testing.assert_allclose(got[[0, 2, 3, 4, 5]], whole, rtol=1e-5, atol=1e-7)


def test_grid_offsets_span_the_image():
    assert grid_offsets(40, 32, 5) == [0, 2, 4, 6, 8]
    assert grid_offsets(41, 32, 2) == [0, 9]
    assert grid_offsets(41, 32, 1) == [4]            # (41 - 32) // 2, as centre_crop rounds


def test_paper_scales():
    assert paper_scales(256) == (256,)
    assert paper_scales(256, multi_scale=True) == (224, 256, 288)
    assert paper_scales((256, 512)) == (384,)
    assert paper_scales((256, 512), multi_scale=True) == (256, 384, 512)


# -- metrics by hand -----------------------------------------------------------------------------

def test_top_k_error_by_hand():
    probs = np.array([[0.1, 0.6, 0.3],       # ranks of the true class: 0, 1, 2, 1 (tie: lower
                      [0.5, 0.2, 0.3],       # index first, like argmax)
                      [0.7, 0.2, 0.1],
                      [0.4, 0.4, 0.2]])
    labels = np.array([1, 2, 2, 1])
    assert top_k_error(probs, labels, 1) == 0.75
    assert top_k_error(probs, labels, 2) == 0.25
    assert top_k_error(probs, labels, 3) == 0.0
    assert top_k_error(probs, labels, 5) == 0.0


def test_top_1_error_is_argmax_error():
    probs = np.random.default_rng(0).random((200, 7))
    labels = np.random.default_rng(1).integers(0, 7, 200)
    assert top_k_error(probs, labels, 1) == np.mean(probs.argmax(axis=1) != labels)


def test_confusion_matrix_by_hand():
    got = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 2, 2], 3)
    np.testing.assert_array_equal(got, [[1, 1, 0],
                                        [0, 1, 0],
                                        [1, 0, 2]])
    assert got.dtype == np.int64


def test_combine_averages():
    a, b = np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])
    np.testing.assert_allclose(combine(a, b), [[0.4, 0.6]])
    np.testing.assert_allclose(combine(a), a)


def test_evaluate_reports_each_method_and_combination(model):
    data = ImageDataset(images(8, 32, 32, seed=10), np.arange(8) % K, [str(k) for k in range(K)])
    got = evaluate(model, data, mean=MEAN, methods=("center", "dense", "dense+center"),
                   scales=32, top_k=(1, 2))
    probs = reference_posteriors(model, data.images)
    want = {"top1": np.mean(probs.argmax(1) != data.labels),
            "top2": np.mean((np.argsort(-probs, axis=1)[:, :2] != data.labels[:, None]).all(1))}
    for name in ("center", "dense", "dense+center"):
        assert got[name].keys() == want.keys()
        for key in want:
            assert got[name][key] == pytest.approx(want[key])


# -- clear errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(scales=24), "scales"),
    (dict(scales=(32, 16)), "scales"),
    (dict(scales=()), "scales"),
    (dict(method="tencrop"), "method"),
    (dict(grid=0), "grid"),
    (dict(batch_size=0), "batch_size"),
    (dict(mean=(1.0, 2.0)), "mean"),
])
def test_posteriors_rejects_bad_arguments(model, kwargs, match):
    kwargs = {"mean": MEAN, **kwargs}
    with pytest.raises(ValueError, match=match):
        posteriors(model, images(2, 32, 32), **kwargs)


@pytest.mark.parametrize("method", ["center", "dense", "multicrop"])
def test_posteriors_rejects_images_smaller_than_the_crop(model, method):
    with pytest.raises(ValueError, match="images: the shortest side"):
        posteriors(model, images(2, 24, 40), mean=MEAN, method=method)


def test_posteriors_rejects_empty_or_non_uint8_images(model):
    with pytest.raises(ValueError, match="images"):
        posteriors(model, images(0, 32, 32), mean=MEAN)
    with pytest.raises(ValueError, match="images"):
        posteriors(model, images(2, 32, 32).astype(np.float32), mean=MEAN)


def test_evaluate_rejects_empty_dataset_and_unknown_methods(model):
    empty = ImageDataset(images(0, 32, 32), np.zeros(0, np.int64), ["a"])
    with pytest.raises(ValueError, match="dataset"):
        evaluate(model, empty, mean=MEAN)
    data = ImageDataset(images(2, 32, 32), [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="methods"):
        evaluate(model, data, mean=MEAN, methods=("dense+tencrop",))


def test_metric_arguments_are_checked():
    with pytest.raises(ValueError, match="k must"):
        top_k_error(np.ones((2, 3)), [0, 1], 0)
    with pytest.raises(ValueError, match="labels"):
        top_k_error(np.ones((2, 3)), [0, 3], 1)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix([0, 1], [0, 1, 1], 2)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix([0, 1], [0, 1], 0)
    with pytest.raises(ValueError, match="one shape"):
        combine(np.ones((2, 3)), np.ones((3, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_score_is_an_error_never_a_correct_answer(bad):
    """NaN compares false with everything, so rank counting alone called a NaN row correct:
    a diverged net (all-NaN posteriors) reported 0% top-1 and top-5 error."""
    scores = np.array([[0.1, 0.7, 0.2, 0.0, 0.0, 0.0],      # true 1: correct
                       [bad, 0.5, 0.1, 0.1, 0.1, 0.2],      # true 1: would rank first
                       [0.3, 0.2, bad, 0.1, 0.1, 0.2]])     # true 0: would rank first too
    labels = np.array([1, 1, 0])
    assert top_k_error(scores, labels, 1) == pytest.approx(2 / 3)
    assert top_k_error(scores, labels, 5) == pytest.approx(2 / 3)
    assert top_k_error(scores, labels, 6) == pytest.approx(2 / 3)        # even k = K
    assert top_k_error(np.full((4, 10), np.nan), np.arange(4), 5) == 1.0


def test_test_scales_are_bounded():
    model = build_vgg("A", num_classes=3, input_size=32, width=1 / 16, fc_width=8, init=None)
    images = np.zeros((1, 36, 36, 3), np.uint8)
    with pytest.raises(ValueError, match="scales: Q = 100000 is more than 8 times"):
        posteriors(model, images, mean=np.zeros(3), scales=100000)
