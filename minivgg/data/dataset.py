"""The one container every loader returns: images, integer labels, the class names (and boxes)."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageDataset:
    """A labelled set of RGB images.

    images:  (N, H, W, 3) uint8 when all images share a size, else a list of N (H_i, W_i, 3)
             uint8 arrays (an image folder of mixed sizes)
    labels:  (N,) int64, each in ``range(len(classes))``
    classes: tuple of the class names; ``classes[labels[i]]`` names image i
    boxes:   None, or (N, 4) float32: the object's box in image i, (x0, y0, x1, y1) in pixels
             with pixel (row y, column x) covering [x, x + 1) x [y, y + 1), so a box holding
             exactly the pixels x0..x1-1 has integer corners and 0 <= x0 < x1 <= W
             (the localisation task of the paper's Appendix A; ``minivgg.data.boxes``)
    """

    images: np.ndarray | list
    labels: np.ndarray
    classes: tuple
    boxes: np.ndarray | None = None

    def __post_init__(self):
        given = np.asarray(self.labels)
        if given.dtype == bool or not (np.issubdtype(given.dtype, np.integer) or (
                np.issubdtype(given.dtype, np.floating) and np.array_equal(given, np.round(given)))):
            raise ValueError(f"labels must be integers (class indices); got {given.dtype} "
                             f"values such as {given.ravel()[:3].tolist()}")  # 2.7 became 2
        labels = given.astype(np.int64)
        object.__setattr__(self, "labels", labels)      # frozen: normalise once, here
        if len(labels):                                 # uint8 RGB, as the docstring says
            from .augment import check_images
            check_images(self.images)
        object.__setattr__(self, "classes", tuple(self.classes))
        if labels.ndim != 1 or len(labels) != len(self.images):
            raise ValueError(f"labels must have shape ({len(self.images)},) to match images; "
                             f"got {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}) for "
                             f"{len(self.classes)} classes; got [{labels.min()}, {labels.max()}]")
        if self.boxes is not None:
            from .boxes import check_boxes  # boxes.py reads annotation files: keep it apart
            object.__setattr__(self, "boxes", check_boxes(self.boxes, self.images))

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        """The images at ``indices`` (ints or a boolean mask), with their labels, same classes."""
        indices = np.arange(len(self))[indices]          # one integer array whatever was given
        if isinstance(self.images, np.ndarray):
            images = self.images[indices]
        else:
            images = [self.images[i] for i in indices]
        boxes = None if self.boxes is None else self.boxes[indices]
        return ImageDataset(images, self.labels[indices], self.classes, boxes)
