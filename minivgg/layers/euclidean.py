"""The Euclidean (L2) loss the localisation net trains with (the paper's Appendix A.1: "we
replace the logistic regression objective with a Euclidean loss, which penalises the deviation
of the predicted bounding box parameters from the ground-truth")."""

import numpy as np

from .base import check_loss_input


def euclidean_loss(pred, target):
    """Half the mean squared distance between predictions and targets, and its gradient.

    pred: (N, D) float, target: (N, D)  ->  loss (a float), dpred (N, D) in pred's dtype
        L = 1 / (2N) sum_n ||pred_n - target_n||^2,        dL/dpred = (pred - target) / N
    (Caffe's EuclideanLoss: the 1/2 makes the gradient the plain difference.)
    """
    N = check_loss_input(pred, "pred", "D")
    target = np.asarray(target)
    if target.shape != pred.shape:
        raise ValueError(f"target must have pred's shape {pred.shape}; got {target.shape}")
    if not np.isfinite(target).all():
        raise ValueError("target holds inf or NaN")
    diff = pred - target.astype(pred.dtype)
    return float((diff * diff).sum() / (2 * N)), diff / N
