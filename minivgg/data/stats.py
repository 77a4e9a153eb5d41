"""Training-set statistics: the mean RGB value (the paper's only preprocessing, Sec. 2.1) and
the RGB principal components the colour shift adds multiples of (Sec. 3.1, after Krizhevsky et
al. 2012). Compute both on the training set only, never on validation or test images."""

import numpy as np

from .dataset import ImageDataset

_CHUNK_PIXELS = 2**22        # pixels per pass: bounds the float64 temporaries to ~100 MB


def _pixel_chunks(images):
    """Yield (P, 3) float64 blocks of all pixels of ``images``, a (N, H, W, 3) array, a list of
    (H_i, W_i, 3) arrays, or an ImageDataset holding either."""
    if isinstance(images, ImageDataset):
        images = images.images
    if isinstance(images, np.ndarray):
        per_image = max(1, _CHUNK_PIXELS // max(1, images[0].size // 3)) if len(images) else 1
        for lo in range(0, len(images), per_image):
            yield images[lo:lo + per_image].reshape(-1, 3).astype(np.float64)
    else:
        for image in images:
            yield np.asarray(image).reshape(-1, 3).astype(np.float64)


def mean_rgb(images):
    """Mean of every pixel of every image, per channel, on the 0..255 scale.

    images: ImageDataset, (N, H, W, 3) uint8 or a list of (H_i, W_i, 3) uint8  ->  (3,) float64
    Images of different sizes weigh by their pixel counts (the mean over all pixels).
    """
    total, count = np.zeros(3), 0
    for pixels in _pixel_chunks(images):
        total += pixels.sum(axis=0)
        count += len(pixels)
    if count == 0:
        raise ValueError("mean_rgb needs at least one pixel; got no images")
    return total / count


def rgb_pca(images):
    """Principal components of the pixels' RGB values, scaled to [0, 1] (value / 255).

    images: as for :func:`mean_rgb`  ->  eigvals (3,), eigvecs (3, 3), both float64
    eigvals are the eigenvalues of the 3x3 covariance of the pixels (variances along each
    component, largest first); eigvecs[:, i] is the unit component p_i of eigvals[i]. The [0, 1]
    scale is the one of the widely copied ImageNet lighting constants (fb.resnet.torch: eigval
    0.2175, 0.0188, 0.0045 on [0, 1] images); on it a shift with alpha ~ N(0, 0.1) moves a
    pixel by a few grey levels. :func:`minivgg.data.augment.colour_shift` rescales to 0..255.
    """
    total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
    for pixels in _pixel_chunks(images):
        pixels = pixels / 255.0 - 0.5    # centred near 0, so the sums below cancel less
        total += pixels.sum(axis=0)
        outer += pixels.T @ pixels
        count += len(pixels)
    if count < 2:
        raise ValueError(f"rgb_pca needs at least two pixels; got {count}")
    mean = total / count
    covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
    eigvals, eigvecs = np.linalg.eigh(covariance)          # ascending; flip to largest first
    return eigvals[::-1].copy(), eigvecs[:, ::-1].copy()
