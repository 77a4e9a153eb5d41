"""The paper's training augmentation (Sec. 3.1) and test-time cropping, on batches of images.

Training, per image and per SGD iteration: rescale isotropically so the shorter side is S
(fixed, or "scale jittering": S drawn from [Smin, Smax]); take a random crop of the network's
input size; flip it horizontally with probability 1/2; add a random RGB colour shift along the
training set's principal components (Krizhevsky et al. 2012); subtract the training mean RGB.
Every random draw comes from the np.random.Generator passed in, so a seed reproduces a batch.

Images come in as uint8, (N, H, W, 3) or a list of (H_i, W_i, 3), and go out as the float32
(N, 3, crop, crop) batch the layers take. A batch of one size with one S is processed in a
few whole-batch NumPy operations; only jittered S or mixed sizes split it into groups.

Object boxes (the localisation task, Appendix A) ride along: every crop, flip and transform
takes optional ``boxes`` (N, 4) (x0, y0, x1, y1 pixels, :mod:`minivgg.data.boxes`) and then
returns (images, boxes) with the boxes moved exactly as the pixels were. The random draws are
the same with or without boxes, so adding boxes does not change the images.
"""

import numbers

import numpy as np

from .boxes import crop_boxes, flip_boxes, rescale_boxes
from .resize import rescale_shorter_side


def check_images(images):
    """Return ``images`` if it is (N, H, W, 3) uint8 or a non-empty list of (H, W, 3) uint8,
    else raise a ValueError that says what it got."""
    items = images if isinstance(images, list) else [images]
    for item in items:
        if not isinstance(item, np.ndarray) or item.dtype != np.uint8:
            raise ValueError(f"images must be uint8 arrays (0..255); got "
                             f"{getattr(item, 'dtype', type(item).__name__)}")
        if item.ndim != (3 if isinstance(images, list) else 4) or item.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) or a list of (H, W, 3) RGB arrays; "
                             f"got shape {item.shape}")
    if len(images) == 0:
        raise ValueError("images is empty")
    return images


def _check_crop(crop):
    if not isinstance(crop, numbers.Integral) or crop < 1:
        raise ValueError(f"crop must be a positive int; got {crop!r}")
    return int(crop)


def _check_fits(shape, crop):
    if min(shape[-3:-1]) < crop:
        raise ValueError(f"crop ({crop}) is larger than the image ({shape[-3]} x {shape[-2]}); "
                         f"rescale first (scale >= crop)")


def _with_boxes(images, boxes, move):
    """``images`` alone, or (images, move(boxes)) when there are boxes."""
    return images if boxes is None else (images, move(boxes))


def random_crop(images, crop, rng, boxes=None):
    """A crop x crop window at a uniformly random position inside each image.

    images: (N, H, W, C), H, W >= crop  ->  (N, crop, crop, C), same dtype
    boxes:  optional (N, 4): then returns (crops, boxes in the crops' frames, not clipped)
    """
    _check_fits(images.shape, crop)
    N, H, W = images.shape[:3]
    top = rng.integers(0, H - crop + 1, N)
    left = rng.integers(0, W - crop + 1, N)
    # Every window as a view, (N, H - crop + 1, W - crop + 1, C, crop, crop); pick one each.
    windows = np.lib.stride_tricks.sliding_window_view(images, (crop, crop), axis=(1, 2))
    crops = windows[np.arange(N), top, left].transpose(0, 2, 3, 1)
    return _with_boxes(crops, boxes, lambda b: crop_boxes(b, top, left))


def centre_crop(images, crop, boxes=None):
    """The central crop x crop window (rounded up-left when the margin is odd).

    images: (H, W, C) or (N, H, W, C)  ->  (..., crop, crop, C), a view
    boxes:  optional (N, 4): then returns (crops, boxes in the crops' frames, not clipped)
    """
    _check_fits(images.shape, crop)
    top, left = (images.shape[-3] - crop) // 2, (images.shape[-2] - crop) // 2
    return _with_boxes(images[..., top:top + crop, left:left + crop, :], boxes,
                       lambda b: crop_boxes(b, top, left))


def horizontal_flip(images):
    """Mirror left-right: out[..., y, x, :] = images[..., y, W - 1 - x, :]. A view."""
    return images[..., ::-1, :]


def random_flip(images, rng, p=0.5, boxes=None):
    """Flip each image of (N, H, W, C) horizontally with probability p; returns a new array
    (and the boxes (N, 4) flipped with their images, if given)."""
    flipped = rng.random(len(images)) < p
    out = images.copy()
    out[flipped] = horizontal_flip(images[flipped])
    return _with_boxes(out, boxes, lambda b: flip_boxes(b, images.shape[2], flipped))


def pca_shift(alpha, eigvals, eigvecs):
    """The RGB vector Krizhevsky et al.'s colour shift adds: sum_i alpha_i lambda_i p_i.

    alpha:   (N, 3), one draw per image (Krizhevsky et al. 2012: alpha_i ~ N(0, 0.1), redrawn
             each time; the VGG paper cites their colour shift but gives no alpha)
    eigvals, eigvecs: lambda_i and p_i = eigvecs[:, i] from :func:`minivgg.data.rgb_pca`,
             which works on [0, 1] pixel values, hence the factor 255 here
    returns  (N, 3) float64, on the 0..255 scale
    """
    return 255.0 * (np.asarray(alpha) * eigvals) @ np.asarray(eigvecs).T


def colour_shift(images, alpha, eigvals, eigvecs):
    """Add :func:`pca_shift` to every pixel: (N, H, W, 3) float, 0..255 -> the same shape."""
    shift = pca_shift(alpha, eigvals, eigvecs)
    return images + shift[:, None, None, :].astype(images.dtype)


def check_mean(mean):
    """The mean RGB as a (3,) float32 array; ValueError unless 3 finite numbers (a NaN mean
    made every feature and posterior NaN)."""
    mean = np.asarray(mean, dtype=np.float32)
    if mean.shape != (3,) or not np.isfinite(mean).all():
        raise ValueError(f"mean must be 3 finite numbers (R, G, B on 0..255); got shape "
                         f"{mean.shape}: {mean.ravel()[:6]}")
    return mean


def _check_scale(scale, crop):
    """None (keep the size), an int S or a pair (Smin, Smax) with crop <= S, Smin <= Smax."""
    if scale is None:
        return None
    bounds = (scale, scale) if isinstance(scale, numbers.Integral) else scale
    if (not isinstance(bounds, (tuple, list)) or len(bounds) != 2
            or not all(isinstance(s, numbers.Integral) for s in bounds)):
        raise ValueError(f"scale must be None, an int S or a pair (Smin, Smax); got {scale!r}")
    if bounds[0] > bounds[1]:
        raise ValueError(f"scale: Smin ({bounds[0]}) is larger than Smax ({bounds[1]})")
    if bounds[0] < crop:
        raise ValueError(f"crop ({crop}) is larger than the smallest scale S ({bounds[0]}): "
                         f"the crop would not fit in the rescaled image")
    return int(bounds[0]), int(bounds[1])


def _to_nchw(crops, offset):
    """(N, H, W, 3) -> (N, 3, H, W) float32 plus ``offset``, (3,) or one (3,) per image (minus
    the mean, plus any colour shift), in one pass: what the first conv layer takes."""
    N, H, W, _ = crops.shape
    out = np.empty((N, 3, H, W), np.float32)
    np.add(crops.transpose(0, 3, 1, 2), np.reshape(offset, (-1, 3, 1, 1)).astype(np.float32),
           out=out)
    return out


def to_batch(images, mean):
    """Whole images, no crop (for dense evaluation): (N, H, W, 3) uint8 -> (N, 3, H, W) float32
    minus ``mean`` (3,)."""
    images = check_images(images)
    if isinstance(images, list):
        raise ValueError("to_batch needs one (N, H, W, 3) array; images of different sizes "
                         "cannot share a batch (use TestTransform to crop them)")
    return _to_nchw(images, -check_mean(mean))


def _rescale(batch, S, boxes=None):
    """(N, H, W, 3) rescaled so the shorter side is S (as it is if S is None or already S),
    and its boxes (N, 4) or None with it: (batch, boxes)."""
    if S is None or min(batch.shape[1:3]) == S:
        return batch, boxes
    out = rescale_shorter_side(batch, S)
    if boxes is not None:
        boxes = rescale_boxes(boxes, batch.shape[1:3], out.shape[1:3])
    return out, boxes


def _rescale_and_crop(images, scales, crop, crop_fn, boxes=None):
    """Rescale image i so its shorter side is scales[i] (scales None: keep sizes), then crop
    with ``crop_fn(batch, boxes)``. Images of one size that share S are rescaled and cropped
    together, in one call each.
    Returns (N, crop, crop, 3): float32, or uint8 for one batch that needed no rescale; with
    ``boxes`` (N, 4), (crops, boxes in the crops).
    """
    if isinstance(images, np.ndarray):
        if scales is None or np.all(scales == scales[0]):        # one size, one S: one call
            return crop_fn(*_rescale(images, None if scales is None else scales[0], boxes))
        groups = [np.flatnonzero(scales == S) for S in np.unique(scales)]
    else:                                                   # sizes differ: one image at a time
        groups = [np.array([i]) for i in range(len(images))]
    out = np.empty((len(images), crop, crop, 3), np.float32)
    out_boxes = None if boxes is None else np.empty((len(images), 4), np.float32)
    for idx in groups:
        batch = images[idx] if isinstance(images, np.ndarray) else images[idx[0]][None]
        result = crop_fn(*_rescale(batch, None if scales is None else scales[idx[0]],
                                   None if boxes is None else boxes[idx]))
        if boxes is None:
            out[idx] = result
        else:
            out[idx], out_boxes[idx] = result
    return out if boxes is None else (out, out_boxes)


class TrainTransform:
    """The paper's training augmentation: uint8 images -> a float32 (N, 3, crop, crop) batch.

    crop:         the network's input side (the paper: 224)
    mean:         (3,) training-set mean RGB, 0..255 (:func:`minivgg.data.mean_rgb`)
    scale:        None (no rescale), S (fixed training scale) or (Smin, Smax) (scale jittering:
                  an integer S drawn uniformly per image from [Smin, Smax])
    flip:         mirror each image left-right with probability 1/2
    colour_shift: std of alpha in the PCA colour shift (AlexNet's 0.1; 0 turns it off)
    pca:          (eigvals, eigvecs) from :func:`minivgg.data.rgb_pca`; needed when
                  colour_shift > 0
    """

    def __init__(self, crop, *, mean, scale=None, flip=True, colour_shift=0.1, pca=None):
        self.crop = _check_crop(crop)
        self.mean = check_mean(mean)
        self.scale = _check_scale(scale, self.crop)
        self.flip = bool(flip)
        if not (isinstance(colour_shift, numbers.Real) and 0 <= colour_shift < np.inf):
            raise ValueError(f"colour_shift must be a finite number >= 0; got {colour_shift}")
        self.colour_shift = float(colour_shift)
        if self.colour_shift > 0:
            if pca is None:
                raise ValueError("pca is required when colour_shift > 0: pass "
                                 "pca=rgb_pca(train) or colour_shift=0")
            eigvals, eigvecs = (np.asarray(a, dtype=np.float64) for a in pca)
            if eigvals.shape != (3,) or eigvecs.shape != (3, 3):
                raise ValueError(f"pca must be (eigvals (3,), eigvecs (3, 3)); got shapes "
                                 f"{eigvals.shape}, {eigvecs.shape}")
            self.pca = eigvals, eigvecs
        else:
            self.pca = None

    def __call__(self, images, rng, boxes=None):
        """images: (N, H, W, 3) uint8 or a list of (H_i, W_i, 3) uint8; rng: np.random.Generator
        -> (N, 3, crop, crop) float32, mean-subtracted; with ``boxes`` (N, 4), also the boxes
        moved through the rescale, crop and flip: (batch, boxes)."""
        images = check_images(images)
        N = len(images)
        scales = None if self.scale is None else rng.integers(self.scale[0], self.scale[1] + 1, N)
        crops = _rescale_and_crop(images, scales, self.crop,
                                  lambda batch, b: random_crop(batch, self.crop, rng, b), boxes)
        if boxes is not None:
            crops, boxes = crops
        if self.flip:
            crops = random_flip(crops, rng, boxes=boxes)
            if boxes is not None:
                crops, boxes = crops
        offset = -self.mean[None, :]                  # (1, 3): the same for every image
        if self.pca is not None:
            offset = offset + pca_shift(rng.normal(0.0, self.colour_shift, (N, 3)), *self.pca)
        batch = _to_nchw(crops, offset)
        return batch if boxes is None else (batch, boxes)


class TestTransform:
    """Single-scale test-time input: rescale the shorter side to Q, take the centre crop.

    crop:  the network's input side
    mean:  (3,) training-set mean RGB, 0..255
    scale: None (no rescale), Q, or the training (Smin, Smax), which tests at the paper's
           single scale for jittered training, Q = (Smin + Smax) / 2 (Sec. 4.1), rounded down
    __call__(images, boxes=None) -> (N, 3, crop, crop) float32, mean-subtracted; no randomness;
    with ``boxes`` (N, 4) also the boxes in the crops: (batch, boxes).
    """

    __test__ = False          # a class named Test* that pytest must not collect

    def __init__(self, crop, *, mean, scale=None):
        self.crop = _check_crop(crop)
        self.mean = check_mean(mean)
        bounds = _check_scale(scale, self.crop)
        self.scale = None if bounds is None else (bounds[0] + bounds[1]) // 2

    def __call__(self, images, boxes=None):
        images = check_images(images)
        scales = None if self.scale is None else np.full(len(images), self.scale)
        crops = _rescale_and_crop(images, scales, self.crop,
                                  lambda batch, b: centre_crop(batch, self.crop, b), boxes)
        if boxes is None:
            return _to_nchw(crops, -self.mean)
        return _to_nchw(crops[0], -self.mean), crops[1]
