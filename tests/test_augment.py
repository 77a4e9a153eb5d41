"""The paper's augmentation (Sec. 3.1): rescale, crops, flips, colour shift, and the transforms.

Images here are built so that the expected result can be read off them: pixels that encode
their own coordinates, constant images that encode their index, linear ramps whose slope
after a rescale tells the scale S that was applied.
"""

import time

import numpy as np
import pytest

from minivgg.data import (
    TestTransform,
    TrainTransform,
    centre_crop,
    colour_shift,
    horizontal_flip,
    random_crop,
    random_flip,
    rescale_shorter_side,
    rescaled_size,
    resize_bilinear,
    to_batch,
)

ZERO = np.zeros(3)


def _coordinates(n, h, w):
    """(n, h, w, 3) uint8 whose pixel (i, y, x) is (y, x, i): every window is identifiable."""
    image = np.empty((n, h, w, 3), np.uint8)
    image[..., 0] = np.arange(h)[:, None]
    image[..., 1] = np.arange(w)
    image[..., 2] = np.arange(n)[:, None, None]
    return image


def _constant(values, h=20, w=20):
    """(len(values), h, w, 3) uint8, image i filled with values[i]: follows an image's index."""
    return np.asarray(values, np.uint8)[:, None, None, None] * np.ones((1, h, w, 3), np.uint8)


def _ramp(n, h, w, step=4):
    """(n, h, w, 3) uint8 with value step * (x + y): slope `step` along both axes."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.broadcast_to((step * (ys + xs))[None, :, :, None], (n, h, w, 3)).astype(np.uint8)


# ---------------------------------------------------------------- resizing


def test_resize_to_the_same_size_is_the_identity():
    image = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    out = resize_bilinear(image, 7, 9)
    assert out.dtype == np.float32 and np.array_equal(out, image)


def test_resize_reproduces_linear_functions_away_from_the_borders():
    # Bilinear interpolation is exact on f(y, x) = a y + b x + c. With aligned pixel centres
    # output pixel j samples input position (j + 1/2) * n_in / n_out - 1/2.
    ys, xs = np.mgrid[0:10, 0:12]
    image = (3.0 * ys + 2.0 * xs + 5.0)[:, :, None]
    out = resize_bilinear(image, 25, 31)[..., 0]
    sy = (np.arange(25) + 0.5) * 10 / 25 - 0.5
    sx = (np.arange(31) + 0.5) * 12 / 31 - 0.5
    expected = 3.0 * sy[:, None] + 2.0 * sx[None, :] + 5.0
    inner_y, inner_x = (sy >= 0) & (sy <= 9), (sx >= 0) & (sx <= 11)
    assert np.allclose(out[np.ix_(inner_y, inner_x)], expected[np.ix_(inner_y, inner_x)],
                       atol=1e-4)
    # Row 0 samples y = -0.3, clamped to the first pixel row: f(0, x).
    assert sy[0] < 0
    assert np.allclose(out[0, inner_x], 2.0 * sx[inner_x] + 5.0, atol=1e-4)


def test_halving_averages_two_by_two_blocks():
    image = np.random.default_rng(1).integers(0, 256, (3, 8, 6, 3)).astype(np.uint8)
    blocks = image.reshape(3, 4, 2, 3, 2, 3).astype(np.float64).mean(axis=(2, 4))
    assert np.allclose(resize_bilinear(image, 4, 3), blocks, atol=1e-3)


@pytest.mark.parametrize("shape, S, expected", [((30, 45), 40, (40, 60)),
                                                ((45, 30), 40, (60, 40)),
                                                ((3, 5), 4, (4, 7)),          # 6.67 -> 7
                                                ((4, 6), 5, (5, 8)),          # 7.5 -> 8
                                                ((32, 32), 20, (20, 20))])
def test_rescale_hits_S_on_the_shorter_side_and_keeps_the_aspect(shape, S, expected):
    assert rescaled_size(*shape, S) == expected
    out = rescale_shorter_side(np.zeros((2, *shape, 3), np.uint8), S)
    assert out.shape == (2, *expected, 3)
    h, w = shape
    assert abs(out.shape[2] / out.shape[1] - w / h) <= 0.5 / min(expected) * max(w / h, 1)


def test_rescale_is_isotropic():
    # A ramp of slope 3 along both axes, rescaled by 48/32, has slope 3 * 32/48 along both.
    out = rescale_shorter_side(_ramp(1, 32, 40, step=3), 48)[0, 5:-5, 5:-5, 0]
    assert out.shape == (38, 50)
    assert np.allclose(np.diff(out, axis=1), 3 * 32 / 48, atol=1e-3)
    assert np.allclose(np.diff(out, axis=0), 3 * 32 / 48, atol=1e-3)


# ---------------------------------------------------------------- crops and flips


def test_random_crops_are_windows_inside_the_image():
    images = _coordinates(300, 12, 15)
    crops = random_crop(images, 5, np.random.default_rng(0))
    assert crops.shape == (300, 5, 5, 3) and crops.dtype == np.uint8
    top, left = crops[:, 0, 0, 0].astype(int), crops[:, 0, 0, 1].astype(int)
    for n in range(300):
        assert np.array_equal(crops[n], images[n, top[n]:top[n] + 5, left[n]:left[n] + 5])
    assert top.min() == 0 and top.max() == 12 - 5                 # every offset is reachable
    assert left.min() == 0 and left.max() == 15 - 5


def test_random_crop_is_reproducible_from_the_seed():
    images = _coordinates(50, 12, 12)
    a = random_crop(images, 4, np.random.default_rng(1))
    b = random_crop(images, 4, np.random.default_rng(1))
    c = random_crop(images, 4, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_centre_crop():
    assert np.array_equal(centre_crop(_coordinates(1, 5, 7), 3)[0, :, :, :2],
                          _coordinates(1, 5, 7)[0, 1:4, 2:5, :2])
    six = centre_crop(_coordinates(2, 6, 6), 3)                    # odd margin: offset 1
    assert six.shape == (2, 3, 3, 3) and six[0, 0, 0, 0] == 1 and six[0, 0, 0, 1] == 1
    with pytest.raises(ValueError, match="crop"):
        centre_crop(_coordinates(1, 5, 7), 6)


def test_horizontal_flip_mirrors_columns():
    images = np.random.default_rng(2).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    flipped = horizontal_flip(images)
    for x in range(5):
        assert np.array_equal(flipped[:, :, x], images[:, :, 4 - x])
    assert np.array_equal(horizontal_flip(flipped), images)


def test_random_flip_flips_some_images_and_leaves_the_rest():
    images = _coordinates(400, 3, 6)
    out = random_flip(images, np.random.default_rng(3))
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert np.all(flipped ^ kept)                    # each image is exactly one of the two
    assert 160 < flipped.sum() < 240                 # p = 1/2: 200 +- 4 standard deviations
    assert np.array_equal(random_flip(images, np.random.default_rng(0), p=0.0), images)
    assert np.array_equal(random_flip(images, np.random.default_rng(0), p=1.0),
                          images[:, :, ::-1])


# ---------------------------------------------------------------- colour shift

EIGVALS = np.array([0.2, 0.05, 0.01])
EIGVECS = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))[0]    # orthonormal


def test_colour_shift_with_zero_alpha_is_the_identity():
    images = np.random.default_rng(5).uniform(0, 255, (3, 4, 4, 3))
    assert np.array_equal(colour_shift(images, np.zeros((3, 3)), EIGVALS, EIGVECS), images)


def test_colour_shift_adds_one_vector_per_image():
    images = np.random.default_rng(6).uniform(0, 255, (2, 5, 4, 3))
    alpha = np.array([[0.1, -0.2, 0.05], [-0.3, 0.0, 0.2]])
    out = colour_shift(images, alpha, EIGVALS, EIGVECS)
    for n in range(2):
        # Krizhevsky et al.: sum_i alpha_i lambda_i p_i, p_i the i-th eigenvector (a column);
        # rgb_pca's eigenvalues are for [0, 1] pixels, these images are 0..255.
        shift = 255 * sum(alpha[n, i] * EIGVALS[i] * EIGVECS[:, i] for i in range(3))
        assert np.allclose(out[n] - images[n], shift)          # same at every pixel
    assert not np.allclose(out[0] - images[0], out[1] - images[1])


# ---------------------------------------------------------------- the trainer's transforms

MEAN = np.array([120.0, 110.0, 100.0])


def test_train_transform_without_randomness_is_mean_subtraction_in_nchw():
    images = np.random.default_rng(7).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    out = TrainTransform(6, mean=MEAN, flip=False, colour_shift=0)(images,
                                                                   np.random.default_rng(0))
    assert out.shape == (4, 3, 6, 6) and out.dtype == np.float32 and out.flags.c_contiguous
    n, c, y, x = 2, 1, 4, 3
    assert out[n, c, y, x] == images[n, y, x, c] - MEAN[c]
    assert np.allclose(out, images.transpose(0, 3, 1, 2) - MEAN[None, :, None, None])


@pytest.mark.parametrize("scale", [None, 24, (20, 30)])
def test_train_transform_keeps_each_image_in_its_place(scale):
    # Constant images survive crops, flips and rescales unchanged: output i must be value i.
    values = np.arange(0, 250, 10)
    out = TrainTransform(16, mean=ZERO, scale=scale, colour_shift=0)(
        _constant(values), np.random.default_rng(8))
    assert out.shape == (len(values), 3, 16, 16)
    assert np.allclose(out, values[:, None, None, None], atol=1e-3)


def test_train_transform_handles_a_list_of_sizes_in_order():
    images = [np.full((h, w, 3), v, np.uint8) for h, w, v in [(20, 30, 5), (40, 25, 6),
                                                             (18, 18, 7)]]
    out = TrainTransform(16, mean=ZERO, scale=(18, 26), colour_shift=0)(
        images, np.random.default_rng(9))
    assert out.shape == (3, 3, 16, 16)
    assert np.allclose(out[:, 0, 0, 0], [5, 6, 7], atol=1e-3)


def test_train_transform_applies_S_isotropically_and_jitters_it():
    # A ramp of slope 4 (per pixel, both axes) rescaled so the shorter side is S has slope
    # 4 * 32 / S: read S back from the crops (flips only change the sign; the median skips
    # the flatter steps at a border, where interpolation clamps to the edge pixel).
    images = _ramp(200, 32, 32)

    def scales(transform):
        out = transform(images, np.random.default_rng(10))[:, 0]
        slope_x = np.median(np.abs(np.diff(out, axis=2)), axis=(1, 2))
        slope_y = np.median(np.abs(np.diff(out, axis=1)), axis=(1, 2))
        assert np.allclose(slope_x, slope_y, rtol=1e-3)
        return 4 * 32 / slope_x

    fixed = scales(TrainTransform(16, mean=ZERO, scale=48, colour_shift=0))
    assert np.allclose(fixed, 48, rtol=1e-3)
    jittered = np.round(scales(TrainTransform(16, mean=ZERO, scale=(40, 56), colour_shift=0)))
    assert jittered.min() >= 40 and jittered.max() <= 56
    assert len(np.unique(jittered)) >= 12                          # S is drawn per image


def test_train_transform_colour_shift_moves_each_image_by_one_vector():
    images = _constant([100] * 50)
    out = TrainTransform(8, mean=ZERO, flip=False, pca=(EIGVALS, EIGVECS))(
        images, np.random.default_rng(11))
    shift = out - 100.0
    assert np.allclose(shift, shift[:, :, :1, :1], atol=1e-3)     # the same at every pixel
    # Shifts lie in the span of lambda-weighted eigenvectors: alpha = shift / 255 in that basis
    # over the eigenvalues; with alpha ~ N(0, 0.1) its spread is about 0.1 per component.
    alpha = (shift[:, :, 0, 0] / 255) @ EIGVECS / EIGVALS
    assert 0.06 < alpha.std() < 0.14


def test_train_transform_is_reproducible_from_the_seed():
    images = np.random.default_rng(12).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    transform = TrainTransform(24, mean=MEAN, scale=(28, 40), pca=(EIGVALS, EIGVECS))
    a = transform(images, np.random.default_rng(5))
    b = transform(images, np.random.default_rng(5))
    c = transform(images, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.allclose(a, c)


@pytest.mark.parametrize("kwargs, message", [
    ({"crop": 32, "scale": 24}, "crop"),
    ({"crop": 16, "scale": (40, 30)}, "Smin"),
    ({"crop": 16, "scale": (12, 30)}, "crop"),
    ({"crop": 16, "scale": "big"}, "scale"),
    ({"crop": 16, "scale": 40.5}, "scale"),
    ({"crop": 0}, "crop"),
    ({"crop": 16, "mean": [1, 2]}, "mean"),
    ({"crop": 16, "colour_shift": 0.1}, "pca"),
    ({"crop": 16, "colour_shift": -1}, "colour_shift"),
    ({"crop": 16, "colour_shift": 0.1, "pca": (np.ones(2), np.eye(2))}, "pca"),
])
def test_train_transform_rejects_bad_arguments(kwargs, message):
    kwargs = {"mean": ZERO, "colour_shift": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        TrainTransform(**kwargs)


def test_transforms_reject_bad_images():
    transform = TrainTransform(8, mean=ZERO, colour_shift=0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="uint8"):
        transform(np.zeros((2, 8, 8, 3)), rng)
    with pytest.raises(ValueError, match="shape"):
        transform(np.zeros((2, 8, 8), np.uint8), rng)
    with pytest.raises(ValueError, match="crop"):                 # no scale: 6 < 8
        transform(np.zeros((2, 6, 6, 3), np.uint8), rng)
    with pytest.raises(ValueError, match="empty"):
        transform([], rng)


def test_test_transform_takes_the_centre_at_the_test_scale():
    images = _coordinates(3, 10, 14)
    out = TestTransform(6, mean=MEAN)(images)
    assert out.shape == (3, 3, 6, 6)
    assert np.allclose(out, (images[:, 2:8, 4:10] - MEAN).transpose(0, 3, 1, 2))
    # Trained with S in [40, 56]: test at Q = 48, the paper's single scale (slope 4 * 32 / 48).
    ramp = TestTransform(16, mean=ZERO, scale=(40, 56))(_ramp(2, 32, 32))
    assert np.allclose(np.diff(ramp[:, 0], axis=2), 4 * 32 / 48, atol=1e-3)
    assert np.array_equal(ramp[0], ramp[1])                        # no randomness


def test_to_batch_keeps_the_whole_image():
    images = np.random.default_rng(13).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    out = to_batch(images, MEAN)
    assert out.shape == (2, 3, 5, 7) and out.dtype == np.float32
    assert out[1, 2, 4, 6] == images[1, 4, 6, 2] - MEAN[2]
    with pytest.raises(ValueError, match="different sizes"):
        to_batch([images[0], images[1, :4]], MEAN)


def test_train_transform_is_fast_enough_for_training():
    images = np.random.default_rng(14).integers(0, 256, (2000, 32, 32, 3), dtype=np.uint8)
    transform = TrainTransform(32, mean=MEAN, scale=(32, 40), pca=(EIGVALS, EIGVECS))
    transform(images[:10], np.random.default_rng(0))          # warm up
    # CPU time of this process (all its threads), not wall time: other processes may share
    # the machine.
    start = time.process_time()
    transform(images, np.random.default_rng(1))
    assert time.process_time() - start < 1.0                   # >= 2000 images / s


@pytest.mark.parametrize("shift", [float("nan"), float("inf"), -0.1])
def test_a_nan_or_negative_colour_shift_is_refused_not_turned_off(shift):
    with pytest.raises(ValueError, match="colour_shift must be a finite number >= 0"):
        TrainTransform(32, mean=np.zeros(3), colour_shift=shift, pca=(np.ones(3), np.eye(3)))
