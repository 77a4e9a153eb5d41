"""Small real data sets for tests and benchmarks, from files scikit-learn ships (nothing is
downloaded): its handwritten digits (1797 8x8 grey scans of 0-9), upsampled, and patches of
its two sample photographs.

scikit-learn is a test-only dependency (the ``dev`` extra), imported only here.
"""

import numpy as np

from .dataset import ImageDataset
from .resize import resize_bilinear


def sklearn_digits(size=36):
    """The 1797 digits as an ImageDataset: (1797, size, size, 3) uint8, grey in all three
    channels (ink white on black, 0..16 scaled to 0..255), bilinearly upsampled from 8x8;
    labels 0-9, classes "0".."9"."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("sklearn_digits needs scikit-learn: pip install -e '.[dev]'") from e
    digits = load_digits()
    grey = (digits.images * (255.0 / 16.0)).astype(np.float32)[..., None]
    big = resize_bilinear(np.repeat(grey, 3, axis=-1), size, size)
    images = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    return ImageDataset(images, digits.target, [str(d) for d in range(10)])


def sklearn_photo_patches(n=200, size=36, seed=0):
    """A two-class real photo set: ``n`` square patches, half from each of the two photographs
    scikit-learn ships (china.jpg: a temple, flower.jpg), each a random crop of side 64..160
    pixels downscaled to ``size``; classes "china", "flower". Seeded; (n, size, size, 3) uint8."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError as e:
        raise ImportError("sklearn_photo_patches needs scikit-learn: pip install -e '.[dev]'") \
            from e
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images                      # two (427, 640, 3) uint8
    patches, labels = [], []
    for i in range(n):
        photo = photos[i % 2]
        side = int(rng.integers(64, 161))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = photo[None, top:top + side, left:left + side].astype(np.float32)
        patches.append(resize_bilinear(crop, size, size)[0])
        labels.append(i % 2)
    images = np.clip(np.rint(np.stack(patches)), 0, 255).astype(np.uint8)
    return ImageDataset(images, labels, ["china", "flower"])
