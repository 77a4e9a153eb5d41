"""Testing as in the paper (Sec. 3.2, 4): class posteriors from centre crops, dense evaluation
or multi-crop grids, averaged over flips and test scales; top-k error and the confusion matrix.

    p = posteriors(model, images, mean=mean, method="dense", scales=(224, 256, 288), flip=True)
    q = posteriors(model, images, mean=mean, method="multicrop", scales=(224, 256, 288), grid=5)
    top_k_error(combine(p, q), labels, k=5)                  # Table 5's "dense + multi-crop"
    evaluate(model, val_set, mean=mean, methods=("center", "dense", "dense+multicrop"))

Every method turns one image, rescaled so its shorter side is Q, into a few *views* the net
sees: "center" its centre crop, "multicrop" a grid x grid regular grid of crops, "dense" the
whole image (through the fully-convolutional net of :func:`minivgg.dense.to_dense`); ``flip``
adds each view's mirror image. An image's posterior is the mean of the soft-max posteriors of
its views at all scales. What is averaged where:
    - dense: the class score *map* (logits) is averaged over positions first, as the paper's
      "spatially averaged (sum-pooled)" score map, then turned into posteriors (Sec. 3.2);
    - views (crops, flips) and scales: soft-max posteriors are averaged (Sec. 3.2, 4.2);
    - methods (dense + multi-crop): soft-max posteriors are averaged (Sec. 4.3), ``combine``.
"""

import math
import numbers

import numpy as np

from .data import centre_crop, horizontal_flip, rescale_shorter_side
from .data.augment import check_images, check_mean
from .dense import to_dense
from .layers.softmax import softmax
from .recipe import MAX_SCALE_RATIO  # test scales Q up to 8 crops: the paper's 512 / 224 is 2.3

METHODS = ("center", "dense", "multicrop")
MAX_GRID = 16       # multicrop: at most 16 x 16 crops per image and scale (the paper: 5 x 5)


def chance_threshold(num_classes, n_val):
    """Validation accuracy a net must exceed to have left chance: 1/K plus two binomial standard
    errors of an accuracy of 1/K measured on n_val images."""
    p = 1.0 / num_classes
    return p + 2.0 * math.sqrt(p * (1 - p) / n_val)


def top_k_error(probs, labels, k=1):
    """Fraction of samples whose true class is not among the k highest scores.

    probs: (N, K) posteriors or any scores, labels: (N,) ints in [0, K)  ->  float in [0, 1]
    Ties are broken towards the lower class index, as np.argmax does, so k = 1 gives
    mean(argmax(probs) != labels). k >= K gives 0 for finite scores: every class is in the top
    k. A sample with any non-finite score (NaN, inf: a diverged net) is an error whatever k:
    NaN compares false with everything, so counting ranks alone would put its true class first.
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"probs must be a non-empty (N, K) array; got shape {probs.shape}")
    labels = _check_labels(labels, len(probs), "labels")
    if not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}")
    if labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must lie in [0, {probs.shape[1]}); got {labels.max()}")
    true = probs[np.arange(len(probs)), labels][:, None]
    lower_index = np.arange(probs.shape[1]) < labels[:, None]
    rank = (probs > true).sum(axis=1) + ((probs == true) & lower_index).sum(axis=1)
    wrong = (rank >= k) | ~np.isfinite(probs).all(axis=1)
    return float(np.mean(wrong))


def confusion_matrix(labels, predictions, num_classes):
    """counts[i, j] = number of samples of true class i predicted as class j.

    labels, predictions: (N,) ints in [0, num_classes)  ->  (num_classes, num_classes) int64;
    rows sum to the class sizes, the trace is the number of correct predictions.
    """
    if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int; got {num_classes!r}")
    labels = _check_labels(labels, -1, "labels")
    predictions = _check_labels(predictions, len(labels), "predictions")
    for values, name in ((labels, "labels"), (predictions, "predictions")):
        if values.max() >= num_classes:
            raise ValueError(f"{name} must lie in [0, {num_classes}); got {values.max()}")
    counts = np.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def combine(*posteriors):
    """Average several (N, K) posteriors of the same images, e.g. dense and multi-crop (Sec. 4.3:
    "averaging their soft-max class posteriors"). Returns (N, K) float64."""
    if not posteriors:
        raise ValueError("combine needs at least one posteriors array")
    shapes = {np.shape(p) for p in posteriors}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"posteriors must all be (N, K) arrays of one shape; got "
                         f"{[np.shape(p) for p in posteriors]}")
    return np.mean([np.asarray(p, dtype=np.float64) for p in posteriors], axis=0)


def paper_scales(train_scale, multi_scale=False, step=32):
    """The test scales Q the paper pairs with a training scale (Sec. 4.1, 4.2).

    train_scale: S (fixed) or (Smin, Smax) (jittered)
    single scale: (S,) for fixed S, ((Smin + Smax) // 2,) for jittered
    multi-scale:  (S - step, S, S + step) for fixed S (the paper: step 32 at S = 256..384),
                  (Smin, (Smin + Smax) // 2, Smax) for jittered
    """
    if isinstance(train_scale, numbers.Integral):
        return (train_scale - step, train_scale, train_scale + step) if multi_scale else (
            train_scale,)
    smin, smax = train_scale
    middle = (smin + smax) // 2
    return (smin, middle, smax) if multi_scale else (middle,)


def grid_offsets(size, crop, grid):
    """Where ``grid`` crops of side ``crop`` start along an image side of ``size`` pixels: evenly
    spaced from one edge to the other, (size - crop) * i // (grid - 1) for i < grid, so the
    corners are covered; one crop (grid = 1) sits at (size - crop) // 2, where centre_crop
    puts it. The paper's 5x5 grid (Sec. 4.3) does not say where its crops lie; this is a choice.
    """
    if grid == 1:
        return [(size - crop) // 2]
    return [(size - crop) * i // (grid - 1) for i in range(grid)]


def _views(images, method, scale, crop, grid, flip, mean):
    """The network inputs of one batch of same-size images at one test scale.

    images: (n, H, W, 3) uint8; scale: Q or None (keep the size)
    returns (n * V, 3, h, w) float32, mean-subtracted, image by image, and V: 1 ("center",
    "dense") or grid**2 ("multicrop") views per image, doubled by ``flip`` (the views, then
    their mirror images); h = w = crop for the crop methods, the rescaled size for "dense".
    """
    if scale is not None and min(images.shape[1:3]) != scale:
        images = rescale_shorter_side(images, scale)            # float32, Sec. 3.2's Q
    if method == "dense":
        views = images[:, None]                                 # (n, V, h, w, 3)
    elif method == "center":
        views = centre_crop(images, crop)[:, None]
    else:
        tops = grid_offsets(images.shape[1], crop, grid)
        lefts = grid_offsets(images.shape[2], crop, grid)
        views = np.stack([images[:, t:t + crop, s:s + crop] for t in tops for s in lefts], 1)
    if flip:
        views = np.concatenate([views, horizontal_flip(views)], axis=1)
    n, V, h, w = views.shape[:4]
    # Minus the training mean RGB, channels first: what training feeds the net (Sec. 2.1).
    x = (views.reshape(n * V, h, w, 3) - mean).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32), V


def _same_size_batches(images, per_batch):
    """Yield (indices, (n, H, W, 3) uint8) with n <= per_batch; a list of differently sized
    images is grouped by size first, so a batch is always one array."""
    if isinstance(images, np.ndarray):
        for lo in range(0, len(images), per_batch):
            yield np.arange(lo, min(lo + per_batch, len(images))), images[lo:lo + per_batch]
        return
    shapes = [image.shape for image in images]
    for shape in dict.fromkeys(shapes):
        group = [i for i, s in enumerate(shapes) if s == shape]
        for lo in range(0, len(group), per_batch):
            idx = group[lo:lo + per_batch]
            yield np.array(idx), np.stack([images[i] for i in idx])


def _check_scales(scales, crop):
    """None -> (None,) (test at the images' own size); Q or (Q1, Q2, ...) -> a tuple of ints."""
    if scales is None:
        return (None,)
    scales = (scales,) if isinstance(scales, numbers.Integral) else tuple(scales)
    if not scales or not all(isinstance(q, numbers.Integral) for q in scales):
        raise ValueError(f"scales must be None, an int Q or a non-empty sequence of ints; got "
                         f"{scales!r}")
    if min(scales) < crop:
        raise ValueError(f"scales: Q = {min(scales)} is smaller than the network's input size "
                         f"{crop}; the shorter side must be at least the crop (Sec. 3.2)")
    if max(scales) > MAX_SCALE_RATIO * crop:
        raise ValueError(f"scales: Q = {max(scales)} is more than {MAX_SCALE_RATIO} times the "
                         f"network's input size {crop} (at most {MAX_SCALE_RATIO * crop}; the "
                         f"paper's largest is 512 for 224): an image that large would not fit "
                         f"in memory, and a net sees nothing at that scale")
    return tuple(int(q) for q in scales)


def check_fit(images, scales, crop):
    """``images``, if each is at least ``crop`` on its shorter side or ``scales`` rescales them
    (``_check_scales``' tuple); else a ValueError saying which image is too small."""
    if None in scales:
        sides = [min(image.shape[-3:-1]) for image in images]
        small = int(np.argmin(sides))
        if sides[small] < crop:
            raise ValueError(f"images: the shortest side ({sides[small]}, image {small}) is "
                             f"smaller than the network's input size {crop}; pass scales=Q >= "
                             f"{crop} to rescale them")
    return images


def _check_labels(values, n, name):
    values = np.asarray(values)
    if values.ndim != 1 or (n >= 0 and len(values) != n) or not np.issubdtype(values.dtype,
                                                                              np.integer):
        expected = f"({n},)" if n >= 0 else "(N,)"
        raise ValueError(f"{name} must be an integer array of shape {expected}; got shape "
                         f"{values.shape}, dtype {values.dtype}")
    if len(values) == 0:
        raise ValueError(f"{name} is empty")
    if values.min() < 0:
        raise ValueError(f"{name} must be >= 0; got {values.min()}")
    return values


def posteriors(model, images, *, mean, method="center", scales=None, flip=False, grid=5,
               batch_size=64):
    """Class posteriors of every image, by one of the paper's test methods.

    model:   a VGG (input size ``model.input_shape[-1]``, the crop); put in eval mode for the
             call (dropout off) and restored afterwards
    images:  (N, H, W, 3) uint8 or a list of N (H_i, W_i, 3) uint8
    mean:    (3,) the training set's mean RGB (0..255), subtracted as in training
    method:  "center" (single crop), "dense" (fully-convolutional, Sec. 3.2) or "multicrop"
             (grid x grid crops, Sec. 4.3)
    scales:  None (the images as they are), Q, or several Qs whose posteriors are averaged
             (multi-scale testing, Sec. 4.2); every Q must be >= the crop
    flip:    also run each view's horizontal mirror and average (Sec. 3.2); the paper's 50
             crops per scale are grid=5, flip=True
    batch_size: network inputs (crops or whole images) per forward pass; bounds the memory
    returns  (N, K) float64, rows sum to 1
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    crop = model.input_shape[-1]
    scales = _check_scales(scales, crop)
    if isinstance(grid, bool) or not isinstance(grid, numbers.Integral) or not 1 <= grid <= MAX_GRID:
        raise ValueError(f"grid must be an int in [1, {MAX_GRID}] (grid x grid crops of each image "
                         f"in one batch; the paper's is 5); got {grid!r}")
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    images = check_fit(check_images(images), scales, crop)
    mean = check_mean(mean)

    views_per_image = (grid * grid if method == "multicrop" else 1) * (2 if flip else 1)
    per_batch = max(1, batch_size // views_per_image)
    was_training = model.training
    model.eval()                                    # dropout off while testing
    net = to_dense(model).eval() if method == "dense" else model
    try:
        out = None
        for scale in scales:
            for idx, batch in _same_size_batches(images, per_batch):
                x, V = _views(batch, method, scale, crop, grid, flip, mean)
                logits = net.forward(x.astype(net.dtype, copy=False))
                probs = softmax(logits).reshape(len(idx), V, -1).mean(axis=1)
                if out is None:
                    out = np.zeros((len(images), probs.shape[1]))
                out[idx] += probs
    finally:
        model.train(was_training)
    return out / len(scales)


def evaluate(model, dataset, *, mean, methods=("center",), scales=None, flip=False, grid=5,
             top_k=(1, 5), batch_size=64):
    """Top-k errors of ``model`` on an ImageDataset under one or several test methods.

    methods: names from METHODS, or several joined by "+" ("dense+multicrop"): the average of
             their posteriors (Sec. 4.3). Each base method runs once, whatever uses it.
    scales, flip, grid, batch_size, mean: as in :func:`posteriors`, shared by all methods
    top_k:   the k's to report (k > K reports 0)
    returns  {method: {"top1": error, "top5": error, ...}}, errors as fractions in [0, 1]
    """
    results = method_posteriors(model, dataset, mean=mean, methods=methods, scales=scales,
                                flip=flip, grid=grid, batch_size=batch_size)
    return {name: {f"top{k}": top_k_error(probs, dataset.labels, k) for k in top_k}
            for name, probs in results.items()}


def method_posteriors(model, dataset, *, mean, methods=("center",), scales=None, flip=False,
                      grid=5, batch_size=64):
    """{method: (N, K) posteriors} for the methods of :func:`evaluate` (same arguments): what
    it scores, and what ConvNet fusion (Sec. 4.4) averages over several nets."""
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    if isinstance(methods, str):
        methods = (methods,)
    parts = {name: name.split("+") for name in methods}
    for name, names in parts.items():
        if not names or any(m not in METHODS for m in names):
            raise ValueError(f"methods: {name!r} is not one of {METHODS} or a '+' combination "
                             f"of them")
    cache = {}
    for m in dict.fromkeys(m for names in parts.values() for m in names):
        cache[m] = posteriors(model, dataset.images, mean=mean, method=m, scales=scales,
                              flip=flip, grid=grid, batch_size=batch_size)
    return {name: combine(*(cache[m] for m in names)) for name, names in parts.items()}
