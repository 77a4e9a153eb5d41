"""Boxes as the localisation net sees them: the paper's parametrisation, IoU, the greedy merge.

Parametrisation (Appendix A.1: "a 4-D vector storing its center coordinates, width, and
height"): a box (x0, y0, x1, y1) in a window of side L (the net's input) is regressed as

    t = (cx / L, cy / L, w / L, h / L),   cx = (x0 + x1) / 2, w = x1 - x0 (likewise y, h)

so every target is of order 1 whatever the input size (the paper does not say how it scaled
them; this is the choice made here).

Greedy merge (Sermanet et al. 2014, as the paper's Appendix A.1 uses it): start with every
predicted box of a class, each with a score (the classification net's posterior for that class
at the window that predicted it). Repeatedly take the two most overlapping boxes; while their
IoU is at least ``threshold``, replace them by the average of all the predictions they hold and
add their scores. The answer is the merged box with the highest total score. (OverFeat's match
score adds the centres' distance to the intersection area; overlap alone needs no distance
scale to tune, so it is used here.)
"""

import numpy as np


def to_params(boxes, side):
    """(N, 4) boxes (x0, y0, x1, y1) in a window of ``side`` pixels -> (N, 4) targets t."""
    boxes = np.asarray(boxes, np.float64)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = boxes[:, 2:] - boxes[:, :2]
    return (np.concatenate([centre, size], axis=1) / side).astype(np.float32)


def from_params(params, side):
    """The inverse of :func:`to_params`: (N, 4) t -> (N, 4) boxes. Negative sizes (an untrained
    net may predict them) become empty boxes at the centre."""
    params = np.asarray(params, np.float64) * side
    half = np.maximum(params[:, 2:], 0) / 2
    return np.concatenate([params[:, :2] - half, params[:, :2] + half], axis=1)


def area(boxes):
    boxes = np.asarray(boxes, np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1],
                                                                     0, None)


def iou(a, b):
    """Intersection over union of boxes a (..., 4) and b (..., 4), broadcast: 0 for disjoint
    boxes, 1 for equal ones, 0 where both are empty."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def greedy_merge(boxes, scores, threshold=0.5):
    """Merge overlapping predictions (module docstring). boxes (n, 4), scores (n,) ->
    (merged boxes (m, 4), their scores (m,), members: a list of m lists of input indices),
    m <= n, highest score first."""
    boxes = np.asarray(boxes, np.float64)
    scores = np.asarray(scores, np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (len(boxes),):
        raise ValueError(f"boxes must be (n, 4) and scores (n,); got {boxes.shape}, "
                         f"{scores.shape}")
    members = [[i] for i in range(len(boxes))]
    merged, totals = list(boxes), list(scores)
    while len(merged) > 1:
        overlap = iou(np.array(merged)[:, None], np.array(merged)[None])
        np.fill_diagonal(overlap, -1)
        i, j = np.unravel_index(np.argmax(overlap), overlap.shape)
        if overlap[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        members[i] += members.pop(j)
        merged.pop(j)
        merged[i] = boxes[members[i]].mean(axis=0)       # the average of every prediction held
        totals[i] += totals.pop(j)
    order = np.argsort(-np.array(totals), kind="stable")
    return np.array(merged)[order], np.array(totals)[order], [members[k] for k in order]


def localisation_error(predicted, truth, threshold=0.5):
    """ILSVRC's criterion: the fraction of images whose box has IoU <= ``threshold`` with the
    ground truth (a box is right only if IoU > 0.5). predicted, truth: (N, 4)."""
    return float(np.mean(~(iou(predicted, truth) > threshold)))
