"""Data: a built-in synthetic dataset, CIFAR and image-folder loaders, the paper's augmentation.

    dataset.py    ImageDataset: images, labels, class names
    synthetic.py  ten shape/texture classes drawn from a seed (no files needed)
    cifar.py      CIFAR-10/100 python pickles, from a folder or the .tar.gz
    folder.py     one sub-folder of PNG/JPEG files per class (needs Pillow)
    stats.py      training-set mean RGB and RGB principal components
    resize.py     bilinear resizing; rescale of the shorter side to S
    augment.py    crops, flips, colour shift; TrainTransform / TestTransform for the trainer
"""

from .augment import (
    TestTransform,
    TrainTransform,
    centre_crop,
    colour_shift,
    horizontal_flip,
    pca_shift,
    random_crop,
    random_flip,
    to_batch,
)
from .cifar import load_cifar
from .dataset import ImageDataset
from .folder import load_image_folder
from .resize import rescale_shorter_side, rescaled_size, resize_bilinear
from .stats import mean_rgb, rgb_pca
from .synthetic import synthetic_shapes, synthetic_splits

__all__ = ["ImageDataset", "synthetic_shapes", "synthetic_splits", "load_cifar",
           "load_image_folder", "mean_rgb", "rgb_pca", "resize_bilinear", "rescaled_size",
           "rescale_shorter_side", "random_crop", "centre_crop", "horizontal_flip",
           "random_flip", "pca_shift", "colour_shift", "TrainTransform", "TestTransform",
           "to_batch"]
