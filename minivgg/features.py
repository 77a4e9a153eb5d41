"""Very deep features on other tasks (the paper's Appendix B): a trained VGG as a fixed feature
extractor, and a linear classifier on top.

    feats = extract_features(model, images, mean=mean, scales=(32, 40), flip=True)
    clf = LinearClassifier().fit(feats[train], labels[train]); clf.accuracy(feats[test], ...)

The descriptor, as B describes it: the image is rescaled so its shorter side is Q and the net,
fully convolutional (``minivgg.dense.to_dense``), is applied over all of it; the penultimate
layer's map after its ReLU (fc7 -> relu7: the last 1000-way layer removed) is averaged over
all positions (global average pooling); the same for the horizontally flipped image, and the
two descriptors are averaged; several scales are averaged ("pooled", ``aggregate="average"``)
or concatenated (``"stack"``); the result is L2-normalised. The network's weights are fixed.

The classifier: multinomial logistic regression with an L2 penalty, fitted by full-batch
gradient descent with momentum (the paper used a linear SVM; logistic regression is the other
standard linear classifier on these features and needs nothing beyond the soft-max the package
has).
"""

import numbers

import numpy as np

from .dense import to_dense
from .evaluate import _check_scales, _same_size_batches, check_fit
from .layers.base import check_count, check_real
from .layers.softmax import softmax_cross_entropy

AGGREGATES = ("average", "stack")


def _descriptor_net(model, layer):
    """The dense net's layers up to and including ``layer`` (relu7 by default)."""
    dense = to_dense(model)                  # dropout left out: the descriptors are deterministic
    names = list(dense.layers)
    if layer not in names:
        raise ValueError(f"layer {layer!r} is not a layer of the dense net ({', '.join(names)})")
    return [dense[name] for name in names[:names.index(layer) + 1]]


def extract_features(model, images, *, mean, scales=None, flip=True, aggregate="average",
                     layer="relu7", batch_size=32):
    """Appendix B's image descriptors (module docstring).

    model:  a VGG (build_vgg); images: (N, H, W, 3) uint8 or a list of (H_i, W_i, 3)
    mean:   (3,) the training set's mean RGB of the net
    scales: None (the images as they are), Q, or several Qs (each >= the net's input side)
    returns (N, D) float64, each row of unit L2 norm; D = the layer's channels (fc_width),
            times the number of scales for "stack"
    """
    from .data.augment import check_images, check_mean
    from .data.resize import rescale_shorter_side

    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}; got {aggregate!r}")
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    scales = _check_scales(scales, model.input_shape[-1])
    images = check_fit(check_images(images), scales, model.input_shape[-1])
    layers = _descriptor_net(model, layer)
    mean = check_mean(mean)
    per_scale = []
    for scale in scales:
        out = None
        for idx, batch in _same_size_batches(images, batch_size):
            x = batch if scale is None else rescale_shorter_side(batch, scale)
            x = (np.asarray(x, np.float32) - mean).transpose(0, 3, 1, 2)
            views = [x, x[..., ::-1]] if flip else [x]
            descriptor = 0
            for view in views:
                h = np.ascontiguousarray(view, dtype=model.dtype)
                for lay in layers:
                    h = lay.forward(h)
                descriptor = descriptor + h.mean(axis=(2, 3)) / len(views)   # over positions
            if out is None:
                out = np.zeros((len(images), descriptor.shape[1]))
            out[idx] = descriptor
        per_scale.append(out)
    features = (np.mean(per_scale, axis=0) if aggregate == "average"
                else np.concatenate(per_scale, axis=1))
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)       # an all-zero row stays zero


class LinearClassifier:
    """Multinomial logistic regression: scores = X W + b, trained on (N, D) features.

    reg:   L2 penalty reg / 2 ||W||^2 on the weights
    lr, momentum, steps: full-batch gradient descent (the loss is convex, so a fixed budget
           of steps at a safe rate reaches the optimum closely on unit-norm features)
    """

    def __init__(self, reg=1e-3, lr=1.0, momentum=0.9, steps=500):
        self.reg = check_real("LinearClassifier", reg, "reg")
        self.lr = check_real("LinearClassifier", lr, "lr", open_low=True)
        self.momentum = check_real("LinearClassifier", momentum, "momentum", high=1.0)
        self.steps = check_count("LinearClassifier", steps, "steps")
        self.weight = self.bias = None

    def fit(self, features, labels, num_classes=None):
        X = np.asarray(features, np.float64)
        y = np.asarray(labels)
        if X.ndim != 2 or y.shape != (len(X),) or len(X) == 0:
            raise ValueError(f"features must be (N, D) and labels (N,); got {X.shape}, {y.shape}")
        if not np.isfinite(X).all():
            raise ValueError("features hold inf or NaN")
        K = int(num_classes or y.max() + 1)
        W, b = np.zeros((X.shape[1], K)), np.zeros(K)
        vW, vb = np.zeros_like(W), np.zeros_like(b)
        with np.errstate(over="ignore", invalid="ignore"):     # divergence is checked below
            for _ in range(self.steps):
                _, dscores = softmax_cross_entropy(X @ W + b, y)
                vW = self.momentum * vW - self.lr * (X.T @ dscores + self.reg * W)
                vb = self.momentum * vb - self.lr * dscores.sum(axis=0)
                W, b = W + vW, b + vb
        if not (np.isfinite(W).all() and np.isfinite(b).all()):    # diverged: no classifier
            raise FloatingPointError(f"LinearClassifier: the weights became inf or NaN: lr "
                                     f"{self.lr:g} is too large for these features")
        self.weight, self.bias = W, b
        return self

    def scores(self, features):
        if self.weight is None:
            raise RuntimeError("LinearClassifier: call fit before scores/predict")
        X = np.asarray(features, np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.weight) or not np.isfinite(X).all():
            raise ValueError(f"features must be finite, (N, {len(self.weight)}); got shape "
                             f"{X.shape}{'' if np.isfinite(X).all() else ' holding inf or NaN'}")
        return X @ self.weight + self.bias

    def predict(self, features):
        return self.scores(features).argmax(axis=1)

    def accuracy(self, features, labels):
        return float(np.mean(self.predict(features) == np.asarray(labels)))
