"""Bilinear resizing in NumPy, and the paper's isotropic rescale of the shorter side to S."""

import numpy as np


def interpolation_matrix(n_in, n_out):
    """(n_out, n_in) float32 matrix R of linear interpolation along one axis: out = R @ in.

    Pixel centres are aligned (OpenCV's INTER_LINEAR, PyTorch's align_corners=False): output
    pixel i sits at input position src = (i + 1/2) * n_in / n_out - 1/2 (clamped to the first and
    last pixel), so row i holds weight 1 - f on pixel floor(src) and f on the next, f = src -
    floor(src). Each row sums to 1.
    """
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    matrix = np.zeros((n_out, n_in), np.float32)
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, lo), 1 - (src - lo))     # add.at: lo == hi on the last pixel
    np.add.at(matrix, (rows, hi), src - lo)
    return matrix


def resize_bilinear(images, height, width):
    """Resize to height x width by linear interpolation along rows, then along columns.

    images: (H, W, C) or (N, H, W, C), any real dtype  ->  (..., height, width, C) float32
    Bilinear interpolation is linear in the pixels: per channel, out = R_y @ image @ R_x^T with
    the interpolation matrices of the two axes, which is two batched matrix products.
    No anti-aliasing filter: shrinking by more than 2x skips input pixels and aliases (the
    paper's rescales of ImageNet images to S = 256..512 shrink far less than that).
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1; got {height} x {width}")
    x = np.moveaxis(np.asarray(images, dtype=np.float32), -1, -3)        # (..., C, H, W)
    rows = interpolation_matrix(x.shape[-2], height)
    cols = interpolation_matrix(x.shape[-1], width)
    return np.moveaxis(rows @ x @ cols.T, -3, -1)


def rescaled_size(height, width, S):
    """(height', width') with the shorter side S and the aspect ratio kept, the longer side
    rounded to the nearest pixel (halves up)."""
    if height <= width:
        return S, int(width * S / height + 0.5)
    return int(height * S / width + 0.5), S


def rescale_shorter_side(images, S):
    """Isotropic rescale so the shorter side is S: the paper's training scale (Sec. 3.1).

    images: (H, W, C) or (N, H, W, C) (a batch shares one size)  ->  (..., H', W', C) float32
    with (H', W') = rescaled_size(H, W, S).
    """
    if S < 1:
        raise ValueError(f"S must be >= 1; got {S}")
    return resize_bilinear(images, *rescaled_size(*np.shape(images)[-3:-1], S))
