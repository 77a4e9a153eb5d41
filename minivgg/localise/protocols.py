"""Testing the localisation net as the paper's Appendix A.1 does.

Protocol 1 (comparing variants, Table 8): the box predicted for the ground-truth class from the
central crop of the image rescaled to Q, mapped back to the image.

Protocol 2 (fully fledged, Table 9): the localisation net made fully convolutional (as dense
classification, ``minivgg.dense``) and run over the whole image at each scale Q (and its mirror
image): every window position predicts a box. For a class, all those boxes (the union over
several nets when more than one is given) are merged greedily (``geometry.greedy_merge``), each
scored by the classification net's posterior for the class at the window that predicted it;
the merged box with the highest score is the answer. The classes are the classification net's
top 5, from its dense posteriors averaged over the same scales and flips.

Criterion (ILSVRC): a box is right if its IoU with the ground truth is above 0.5; the top-k
localisation error counts an image wrong unless one of its first k (class, box) answers has the
right class and a right box. Boxes are compared in the image's own pixels.
"""

import numpy as np

from ..data.augment import TestTransform
from ..data.boxes import crop_boxes, flip_boxes, rescale_boxes
from ..data.resize import rescale_shorter_side, rescaled_size
from ..dense import score_map, to_dense
from ..evaluate import _same_size_batches
from ..layers import MaxPool2d
from ..layers.softmax import softmax
from .geometry import from_params, greedy_merge, iou
from .net import class_boxes


def uncrop(boxes, image_hw, crop, scale=None):
    """Boxes (N, 4) in the centre crop of an image of ``image_hw`` rescaled to Q = ``scale``
    (None: not rescaled) -> the same boxes in the image's own pixels, exactly."""
    H, W = image_hw
    H2, W2 = (H, W) if scale is None else rescaled_size(H, W, scale)
    return rescale_boxes(crop_boxes(boxes, -((H2 - crop) // 2), -((W2 - crop) // 2)),
                         (H2, W2), (H, W))


def centre_crop_boxes(net, images, classes, *, mean, scale=None, batch_size=64):
    """Protocol 1: the box of class ``classes[n]`` that ``net`` predicts from image n's centre
    crop (the image rescaled to Q = ``scale`` first, if given), in image n's pixels: (N, 4)."""
    crop = net.input_shape[-1]
    transform = TestTransform(crop, mean=mean, scale=scale)
    out = np.empty((len(images), 4))
    was_training = net.training
    net.eval()                                      # dropout off while testing
    for idx, batch in _same_size_batches(images, batch_size):
        params = class_boxes(net, net.forward(transform(batch).astype(net.dtype, copy=False)),
                             np.asarray(classes)[idx])
        out[idx] = uncrop(from_params(params, crop), batch.shape[1:3], crop, transform.scale)
    net.train(was_training)
    return out


def centre_crop_error(net, dataset, *, mean, scale=None, batch_size=64):
    """Protocol 1's localisation error on an ImageDataset with boxes (ground-truth class)."""
    boxes = centre_crop_boxes(net, dataset.images, dataset.labels, mean=mean, scale=scale,
                              batch_size=batch_size)
    return float(np.mean(~(iou(boxes, dataset.boxes) > 0.5)))


def _jump(model):
    """Pixels between neighbouring windows of the dense net: 2 per max-pool (32 for VGG)."""
    return 2 ** sum(isinstance(layer, MaxPool2d) for layer in model.layers.values())


def window_boxes(nets, classifier, batch, *, mean, scale=None, flip=False):
    """Every window's predictions for one batch of same-size images (n, H, W, 3) uint8.

    returns boxes (n, P, K, 4) in the images' pixels (SCR boxes repeated over the K classes),
            scores (n, P, K): the classifier's posteriors at each window, and logits (n, V, K):
            its class score map averaged over positions, per view V (1, or 2 with ``flip``);
            P = windows x views x nets
    """
    H, W = batch.shape[1:3]
    x = batch if scale is None else rescale_shorter_side(batch, scale)
    H2, W2 = x.shape[1:3]
    x = (np.asarray(x, np.float32) - np.asarray(mean, np.float32)).transpose(0, 3, 1, 2)
    views = [x] + ([x[..., ::-1]] if flip else [])
    dense_cls = to_dense(classifier)               # no dropout: to_dense leaves it out
    crop, jump = classifier.input_shape[-1], _jump(classifier)
    K = classifier.config["num_classes"]
    all_boxes, all_scores, all_logits = [], [], []
    for v, view in enumerate(views):
        view = np.ascontiguousarray(view, dtype=classifier.dtype)
        scores = score_map(dense_cls, view)                            # (n, K, h, w)
        n, _, h, w = scores.shape
        all_logits.append(scores.mean(axis=(2, 3)))
        probs = softmax(scores.transpose(0, 2, 3, 1).reshape(-1, K))   # (n h w, K)
        top, left = np.meshgrid(np.arange(h) * jump, np.arange(w) * jump, indexing="ij")
        offsets = np.tile(np.stack([left, top], -1).reshape(1, h * w, 2), (n, 1, 1))
        for net in nets:
            out = score_map(to_dense(net), view)                       # (n, D, h, w)
            out = out.transpose(0, 2, 3, 1).reshape(n * h * w, -1, 4)  # (n h w, 1 or K, 4)
            out = np.broadcast_to(out, (n * h * w, K, 4)).reshape(-1, 4)
            boxes = from_params(out, crop)
            shift = np.repeat(offsets.reshape(-1, 2), K, axis=0)
            boxes = crop_boxes(boxes, -shift[:, 1], -shift[:, 0])   # window -> image
            if v == 1:
                boxes = flip_boxes(boxes, W2)
            boxes = rescale_boxes(boxes, (H2, W2), (H, W))
            all_boxes.append(boxes.reshape(n, h * w, K, 4))
            all_scores.append(probs.reshape(n, h * w, K))
    return (np.concatenate(all_boxes, 1), np.concatenate(all_scores, 1),
            np.stack(all_logits, 1))


def dense_windows(nets, classifier, images, *, mean, scales=(None,), flip=False, batch_size=16):
    """Protocol 2's forward passes, once: every window's boxes and scores per image, pooled over
    the scales, views and nets (a list of (boxes (P, K, 4), scores (P, K)) per image), and the
    classifier's dense posteriors averaged over scales and flips (N, K)."""
    nets = [nets] if not isinstance(nets, (list, tuple)) else list(nets)
    K = classifier.config["num_classes"]
    posteriors = np.zeros((len(images), K))
    per_image = [[] for _ in images]
    for scale in scales:
        for idx, batch in _same_size_batches(images, batch_size):
            boxes, scores, logits = window_boxes(nets, classifier, batch, mean=mean, scale=scale,
                                                 flip=flip)
            posteriors[idx] += softmax(logits.reshape(-1, K)).reshape(logits.shape).mean(1)
            for k, i in enumerate(idx):
                per_image[i].append((boxes[k], scores[k]))
    windows = [(np.concatenate([b for b, _ in parts]), np.concatenate([s for _, s in parts]))
               for parts in per_image]
    return windows, posteriors / len(scales)


def merged_answers(windows, classes, threshold=0.5):
    """For image i and each of its ``classes[i]`` (N, k): the best merged box of that class
    (``geometry.greedy_merge`` of its windows' boxes and scores), (N, k, 4) in image pixels."""
    classes = np.asarray(classes)
    answers = np.empty(classes.shape + (4,))
    for i, (boxes, scores) in enumerate(windows):
        for j, c in enumerate(classes[i]):
            answers[i, j] = greedy_merge(boxes[:, c], scores[:, c], threshold)[0][0]
    return answers


def dense_localise(nets, classifier, images, *, mean, scales=(None,), flip=False, top=5,
                   classes=None, threshold=0.5, batch_size=16):
    """Protocol 2. nets: one localisation net or a list (their boxes are pooled); classifier:
    the classification VGG. Returns (classes (N, top), boxes (N, top, 4), posteriors (N, K)):
    the classifier's ``top`` classes by dense posteriors averaged over scales and flips (or the
    given ``classes`` (N, k)), and each one's merged box in the image's pixels."""
    windows, posteriors = dense_windows(nets, classifier, images, mean=mean, scales=scales,
                                        flip=flip, batch_size=batch_size)
    chosen = (top_classes(posteriors, top) if classes is None
              else np.asarray(classes).reshape(len(images), -1))
    return chosen, merged_answers(windows, chosen, threshold), posteriors


def top_classes(posteriors, top=5):
    """(N, top) the classes of highest posterior, best first (ties: the lower class)."""
    return np.argsort(-posteriors, axis=1, kind="stable")[:, :top]


def localisation_errors(classes, boxes, labels, truth, ks=(1, 5)):
    """Top-k localisation errors {"top1": e, "top5": e} (fractions): image n is wrong unless one
    of its first k answers (classes[n, j], boxes[n, j]) has the right class and IoU > 0.5."""
    right = (np.asarray(classes) == np.asarray(labels)[:, None]) & (
        iou(boxes, np.asarray(truth)[:, None]) > 0.5)
    return {f"top{k}": float(np.mean(~right[:, :k].any(axis=1)))
            for k in ks if k <= right.shape[1]}
