"""The paper's Table 1 as data: one row per configuration, read by one builder (minivgg/vgg.py).

Notation (torchvision's, extended for the two rows torchvision lacks):
    64           a 3x3 convolution with 64 output channels, stride 1, padding 1 ("conv3-64")
    "conv1-256"  a 1x1 convolution with 256 channels, stride 1, no padding (configuration C)
    "conv3-64"   the paper's spelling of 64, also accepted
    "M"          a 2x2 max-pool with stride 2, which ends a stage
    "LRN"        local response normalisation (A-LRN), placed after the ReLU of the layer before it
Every configuration then ends with FC-4096, FC-4096, FC-classes and soft-max (not in the rows).

Write your own row in the same notation and pass it to ``build_vgg`` in place of a name.
"""

import re

CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, "conv1-256", "M",
          512, 512, "conv1-512", "M", 512, 512, "conv1-512", "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

ALIASES = {"vgg11": "A", "vgg11-lrn": "A-LRN", "vgg13": "B", "vgg16": "D", "vgg19": "E"}

_CONV = re.compile(r"conv([0-9]+)-([0-9]+)$")


def config_name(name):
    """Canonical name of a configuration: "d", "vgg16", "VGG16" -> "D"; "a-lrn" -> "A-LRN"."""
    if not isinstance(name, str):
        raise TypeError(f"config must be a name or a list of layers; got {type(name).__name__}")
    key = name.strip()
    key = ALIASES.get(key.lower(), key.upper())
    if key not in CONFIGS:
        known = ", ".join([*CONFIGS, *ALIASES])
        raise ValueError(f"unknown VGG configuration {name!r}; known: {known}")
    return key


def parse_config(config):
    """A row (a name or a list) -> a list of layer specs:

        ("conv", out_channels, kernel_size)   ("pool",)   ("lrn",)

    Raises ValueError naming the entry that is not in the notation.
    """
    row = CONFIGS[config_name(config)] if isinstance(config, str) else config
    if not isinstance(row, (list, tuple)) or not row:
        raise ValueError(f"a configuration must be a non-empty list of layers; got {row!r}")
    specs = []
    for entry in row:
        if isinstance(entry, int) and not isinstance(entry, bool) and entry > 0:
            specs.append(("conv", entry, 3))
        elif entry == "M":
            specs.append(("pool",))
        elif entry == "LRN":
            specs.append(("lrn",))
        elif isinstance(entry, str) and (match := _CONV.match(entry)) and int(match[2]) > 0:
            kernel, channels = int(match[1]), int(match[2])
            if kernel % 2 == 0:
                raise ValueError(f"{entry!r}: only odd kernels keep the resolution with "
                                 f"'same' padding; use 1, 3, 5 or 7")
            specs.append(("conv", channels, kernel))
        else:
            raise ValueError(f"configuration entry {entry!r} is not a layer: use a positive int "
                             f"(3x3 conv channels), 'conv<k>-<channels>', 'M' or 'LRN'")
    if specs[0][0] != "conv":
        raise ValueError("a configuration must start with a convolution")
    return specs
