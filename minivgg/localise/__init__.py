"""Localisation, the paper's Appendix A: boxes regressed by a fine-tuned classification VGG.

    geometry.py   the box parametrisation, IoU, Sermanet et al.'s greedy merge
    net.py        SCR/PCR heads on a trained classifier, the Euclidean loss, fine-tuning
    protocols.py  the centre-crop protocol (ground-truth class) and the dense protocol
    run.py        a localisation run from a classification run folder, saved and reloaded
"""

from .geometry import from_params, greedy_merge, iou, localisation_error, to_params
from .net import FINE_TUNE, HEADS, box_loss, class_boxes, localisation_net, train_localiser
from .protocols import (
    centre_crop_boxes,
    centre_crop_error,
    dense_localise,
    localisation_errors,
)

__all__ = ["to_params", "from_params", "iou", "greedy_merge", "localisation_error", "HEADS",
           "FINE_TUNE", "localisation_net", "class_boxes", "box_loss", "train_localiser",
           "centre_crop_boxes", "centre_crop_error", "dense_localise", "localisation_errors"]
