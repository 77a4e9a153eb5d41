"""The one container every loader returns: images, integer labels and the class names."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageDataset:
    """A labelled set of RGB images.

    images:  (N, H, W, 3) uint8 when all images share a size, else a list of N (H_i, W_i, 3)
             uint8 arrays (an image folder of mixed sizes)
    labels:  (N,) int64, each in ``range(len(classes))``
    classes: tuple of the class names; ``classes[labels[i]]`` names image i
    """

    images: np.ndarray | list
    labels: np.ndarray
    classes: tuple

    def __post_init__(self):
        labels = np.asarray(self.labels, dtype=np.int64)
        object.__setattr__(self, "labels", labels)      # frozen: normalise once, here
        object.__setattr__(self, "classes", tuple(self.classes))
        if labels.ndim != 1 or len(labels) != len(self.images):
            raise ValueError(f"labels must have shape ({len(self.images)},) to match images; "
                             f"got {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}) for "
                             f"{len(self.classes)} classes; got [{labels.min()}, {labels.max()}]")

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        """The images at ``indices`` (ints or a boolean mask), with their labels, same classes."""
        indices = np.arange(len(self))[indices]          # one integer array whatever was given
        if isinstance(self.images, np.ndarray):
            images = self.images[indices]
        else:
            images = [self.images[i] for i in indices]
        return ImageDataset(images, self.labels[indices], self.classes)
