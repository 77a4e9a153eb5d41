"""Draw the README's pictures into docs/figures/ (no downloads; about 15 s):

    receptive_fields_vgg16.png   the field of the centre unit of six VGG-16 layers over a photograph,
                                 analytic (solid) and measured by back-propagation (dashed)
    params_vs_memory_vgg16.png   parameters and activation memory per layer of VGG-16 at 224x224
    architecture_vgg16.png       the block diagram of VGG-16 (``minivgg summary D --plot``)

    python scripts/make_readme_figures.py [--out docs/figures]

Needs matplotlib (and Pillow, which matplotlib brings). Images are saved as 256-colour PNGs to stay
small (< 200 KB each).
"""

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.cbook as cbook  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from minivgg import viz  # noqa: E402
from minivgg.arithmetic import measure_receptive_fields, summarize  # noqa: E402
from minivgg.vgg import build_vgg, vgg_plan  # noqa: E402

SHOWN = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3", "pool5")


def photo(size=224):
    """matplotlib's sample photograph (Grace Hopper), centre-cropped to a square, size x size, in [0, 1]."""
    image = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
    return np.asarray(image.crop(box).resize((size, size)), dtype=np.float32) / 255


def save_small(fig, path, dpi=90):
    """Save a figure as a 256-colour PNG (a quarter of the size of a true-colour one)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def receptive_fields(out):
    summary = build_vgg("D", init=None).summary()
    measured = measure_receptive_fields(build_vgg("D", width=1 / 64, init=None))
    fig = viz.plot_receptive_fields(
        photo(), {name: summary[name].field_box() for name in SHOWN},
        {name: measured[name] for name in SHOWN},
        title="VGG-16: what the centre unit of each layer sees\n"
              "(solid: analytic field, dashed: measured by back-propagation)")
    save_small(fig, out / "receptive_fields_vgg16.png")


def params_vs_memory(out):
    summary = build_vgg("D", init=None).summary()
    rows = [row for row in summary.rows if row.kind.startswith(("conv", "fc"))]
    fig = viz.plot_layer_costs([r.name for r in rows], [r.params for r in rows],
                               [r.bytes / 2**20 for r in rows],
                               title="VGG-16 at 224x224: parameters live in fc6, memory in the first "
                                     "convolutions", memory_unit="MiB per image (float32)")
    save_small(fig, out / "params_vs_memory_vgg16.png")


def architecture(out):
    summary = summarize(vgg_plan("D"), (3, 224, 224))
    fig = viz.plot_architecture(summary, title=f"VGG-16 (configuration D) at 224x224: "
                                f"{summary.total_params:,} parameters, "
                                f"{summary.total_macs / 1e9:.2f} G multiply-accumulates")
    save_small(fig, out / "architecture_vgg16.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "docs" / "figures"
    parser.add_argument("--out", type=Path, default=default, help=f"folder (default {default})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    receptive_fields(args.out)
    params_vs_memory(args.out)
    architecture(args.out)


if __name__ == "__main__":
    main()
