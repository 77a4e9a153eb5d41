"""Pictures of localisation: boxes over images, and the dense box map before and after the
greedy merge. matplotlib is imported when a function is called."""

import numpy as np

from ..viz import _grid, _pyplot, plot_image_grid, to_display


def _draw(ax, box, colour, width=1.5, alpha=1.0):
    """A box (x0, y0, x1, y1) in pixel coordinates: imshow puts pixel x's centre at x, so the
    pixel square [x, x + 1) is drawn from x - 1/2."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=width,
                           edgecolor=colour, alpha=alpha))


def plot_boxes(images, truth, predicted=None, titles=None, num=16, cols=8,
               title="Ground-truth boxes (green) and predictions (red)"):
    """Images (N, H, W, 3) with their true boxes (N, 4) and, if given, predicted ones."""
    count = min(num, len(images))
    fig = plot_image_grid(images[:count], num=count, cols=cols, title=title)
    for i, ax in enumerate(fig.axes[:count]):
        _draw(ax, truth[i], "lime")
        if predicted is not None:
            _draw(ax, predicted[i], "red")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return fig


def plot_merge(image, boxes, scores, merged, truth=None, title="Greedy merge"):
    """Left: every window's box (line opacity = its classifier score); right: the merged
    boxes, the best (highest total score) thick. boxes (P, 4), scores (P,), merged (m, 4)
    highest score first, as ``geometry.greedy_merge`` returns them."""
    plt = _pyplot()
    fig, axes = _grid(plt, 2, 2, cell=3.2)
    scores = np.asarray(scores, float)
    for ax, name in zip(axes, (f"{len(boxes)} window predictions", f"{len(merged)} after merging")):
        ax.imshow(to_display(image), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if truth is not None:
            _draw(ax, truth, "lime")
    for box, score in zip(boxes, scores / max(scores.max(), 1e-12)):
        _draw(axes[0], box, "red", width=1.0, alpha=0.2 + 0.8 * score)
    for k, box in enumerate(merged):
        _draw(axes[1], box, "red", width=2.5 if k == 0 else 0.8)
    fig.suptitle(title)
    return fig
