"""Plotting helpers: each returns a matplotlib Figure, so a notebook cell stays one line and you can
make the same pictures of your own model.

    fig = plot_filters(model["conv1_1"].params["weight"])      # the learned first-layer filters
    fig.savefig("filters.png")

matplotlib is an optional extra (``pip install minivgg[plot]``): it is imported inside each function,
so ``import minivgg`` works without it. Images may be (H, W), (H, W, 3) or channel-first (C, H, W)
arrays of any range; they are rescaled to [0, 1] for display only.
"""

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:                  # pragma: no cover - depends on the install
        raise ImportError("minivgg.viz needs matplotlib: pip install 'minivgg[plot]'") from error
    return plt


def to_display(image):
    """An image as (H, W) or (H, W, 3) floats in [0, 1]: channel-first input is transposed, the range
    min-max rescaled (a constant image becomes 0.5 grey)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3):
        raise ValueError(f"an image must be (H, W), (H, W, 3) or (3, H, W); got shape {image.shape}")
    low, high = image.min(), image.max()
    return np.full_like(image, 0.5) if high == low else (image - low) / (high - low)


def _grid(plt, count, cols, cell=1.3, title_space=0.9):
    cols = max(1, min(cols, count))
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols + 0.8, cell * rows + title_space),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[count:]:
        ax.remove()
    return fig, axes.flat[:count]


def plot_image_grid(images, labels=None, classes=None, num=16, cols=8, title="Images"):
    """A grid of images (N, H, W, 3) uint8 or any (N, ...) accepted by :func:`to_display`, each
    titled with its class name (``classes[labels[i]]``) or label when given."""
    plt = _pyplot()
    count = min(num, len(images))
    fig, axes = _grid(plt, count, cols, cell=1.5)
    for i, ax in enumerate(axes):
        ax.imshow(to_display(images[i]), cmap="gray", interpolation="nearest")
        if labels is not None:
            name = classes[labels[i]] if classes is not None else str(labels[i])
            ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    shown = to_display(images[0])
    fig.suptitle(f"{title}\n{count} of {len(images)}, each {shown.shape[0]}x{shown.shape[1]} pixels")
    return fig


def plot_filters(weight, num=None, cols=8, title="Convolution filters"):
    """A grid of filters from a conv weight (F, C, kh, kw), one tile per output channel.

    Filters with 3 input channels (the first layer) are drawn in colour, each rescaled to [0, 1] on
    its own, so a filter that responds to red edges looks red; others show the mean over input
    channels in grey. ``num`` limits how many filters are drawn (default: all).
    """
    plt = _pyplot()
    weight = np.asarray(weight)
    if weight.ndim != 4:
        raise ValueError(f"weight must be (F, C, kh, kw); got shape {weight.shape}")
    count = weight.shape[0] if num is None else min(num, weight.shape[0])
    fig, axes = _grid(plt, count, cols)
    for f, ax in enumerate(axes):
        w = weight[f] if weight.shape[1] == 3 else weight[f].mean(axis=0)
        ax.imshow(to_display(w), cmap="gray", interpolation="nearest")
        ax.set_title(f"filter {f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    kh, kw = weight.shape[2:]
    kind = "RGB, each rescaled to [0, 1]" if weight.shape[1] == 3 else "mean over input channels"
    fig.suptitle(f"{title}\n{count} of {weight.shape[0]} filters, {kh}x{kw} ({kind})")
    fig.supxlabel("kernel column j")
    fig.supylabel("kernel row i")
    return fig


def plot_feature_maps(maps, num=16, cols=8, title="Feature maps", cmap="viridis"):
    """A grid of the first ``num`` channels of one layer's output for one image: (C, H, W) or
    (1, C, H, W). Each map has its own colour range (brighter = larger activation)."""
    plt = _pyplot()
    maps = np.asarray(maps)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (C, H, W) for one image; got shape {maps.shape}")
    count = min(num, maps.shape[0])
    fig, axes = _grid(plt, count, cols)
    for c, ax in enumerate(axes):
        ax.imshow(maps[c], cmap=cmap, interpolation="nearest")
        ax.set_title(f"channel {c}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    H, W = maps.shape[1:]
    fig.suptitle(f"{title}\n{count} of {maps.shape[0]} channels, each {H}x{W}")
    fig.supxlabel(f"width ({W} positions)")
    fig.supylabel(f"height ({H} positions)")
    return fig


def plot_receptive_fields(image, fields, empirical=None, title="Receptive fields",
                          heatmap=None, ax=None):
    """Rectangles on an image, one per layer: what part of the input one unit can see.

    fields: {label: (top, left, height, width)} in input pixels (the analytic field: thick solid
    lines, one colour per label); empirical: the same for fields measured another way (e.g. where
    a unit's gradient with respect to the input is non-zero), drawn as thin black dashes on top, so
    a field measured exactly as predicted shows as a coloured box with a dashed line inside. Boxes
    may hang over the image edge (that part of the field sees zero padding); the view widens to
    show them.
    heatmap: optional (H, W) array drawn translucent over the image where it is > 0 (e.g.
    |d unit / d input|: the pixels the unit's value actually depends on).
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    shown = to_display(image)
    H, W = shown.shape[:2]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 6.5), layout="constrained")
    else:
        fig = ax.figure
    ax.imshow(shown, cmap="gray", extent=(0, W, H, 0))
    if heatmap is not None:
        heatmap = np.ma.masked_less_equal(np.asarray(heatmap, dtype=np.float64), 0)
        ax.imshow(heatmap, cmap="magma", alpha=0.6, extent=(0, W, H, 0))
    colours = plt.get_cmap("tab10")
    top, left, bottom, right = 0.0, 0.0, float(H), float(W)
    for k, label in enumerate(fields):
        colour = colours(k % 10)
        for source, style, width, suffix in ((fields, "-", 3, ""),
                                             (empirical or {}, "--", 1.3, " (empirical)")):
            if label not in source:
                continue
            t, l, h, w = source[label]
            ax.add_patch(Rectangle((l, t), w, h, fill=False, linestyle=style, linewidth=width,
                                   edgecolor=colour if style == "-" else "black",
                                   label=f"{label}: {h}x{w}{suffix}"))
            top, left = min(top, t), min(left, l)
            bottom, right = max(bottom, t + h), max(right, l + w)
    ax.set_xlim(left - 2, right + 2)
    ax.set_ylim(bottom + 2, top - 2)
    ax.set_title(title)
    ax.set_xlabel("x (input pixels)")
    ax.set_ylabel("y (input pixels)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def plot_im2col(x, kernel=3, stride=1, padding=1, highlight=0):
    """im2col as a picture: a tiny image (H, W) or (C, H, W) whose pixels are labelled, and the
    matrix cols (C*kh*kw, Ho*Wo) whose entries are those labels (0 where the window saw padding).

    The window of output position ``highlight`` (oh*Wo + ow) is outlined on the image, and the
    column it became is outlined in the matrix: column k of cols is window k, flattened.
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    from .kernels import naive  # the loops a student writes first (notebook 01)
    from .shapes import pair

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"x must be (H, W) or (C, H, W); got shape {x.shape}")
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel, "kernel"), pair(stride, "stride"), pair(padding,
                                                                                          "padding")
    C, H, W = x.shape
    cols = naive.im2col(x[None], (kh, kw), (sh, sw), (ph, pw))[0]
    Wo = (W + 2 * pw - kw) // sw + 1
    oh, ow = divmod(highlight, Wo)
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw)), constant_values=np.nan)
    big = cols.size > 400

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained",
                                      gridspec_kw={"width_ratios": [1, max(1.5, cols.shape[1] / 8)]})
    stacked = np.concatenate([np.pad(p, ((0, 0), (0, 1)), constant_values=np.nan) for p in padded],
                             axis=1)[:, :-1]
    left.imshow(stacked, cmap="Blues", vmin=np.nanmin(x) - 1, interpolation="nearest")
    step = W + 2 * pw + 1
    for (r, c), value in np.ndenumerate(stacked):
        text = "pad" if np.isnan(value) and (c + 1) % step else ("" if np.isnan(value) else f"{value:g}")
        left.text(c, r, text, ha="center", va="center", fontsize=7 if text == "pad" else 9,
                  color="grey" if text == "pad" else "black")
    for ch in range(C):
        left.add_patch(Rectangle((ch * step + ow * sw - 0.5, oh * sh - 0.5), kw, kh, fill=False,
                                 edgecolor="red", linewidth=2.5))
    left.set_title(f"input {C}x{H}x{W}, zero-padded by {ph}\n(red: the {kh}x{kw} window of output "
                   f"position {highlight} = (row {oh}, col {ow}))")
    left.set_xlabel("x (pixel column, padding included" + (", channels side by side)" if C > 1
                                                             else ")"))
    left.set_ylabel("y (pixel row)")

    right.imshow(cols, cmap="Blues", vmin=np.nanmin(x) - 1, aspect="auto", interpolation="nearest")
    if not big:
        for (r, c), value in np.ndenumerate(cols):
            right.text(c, r, f"{value:g}", ha="center", va="center", fontsize=8,
                       color="lightgrey" if value == 0 else "black")
    right.add_patch(Rectangle((highlight - 0.5, -0.5), 1, cols.shape[0], fill=False,
                              edgecolor="red", linewidth=2.5))
    right.set_title(f"cols = im2col(x): {cols.shape[0]} rows (c, i, j) x {cols.shape[1]} columns "
                    f"(output positions)\n(red: column {highlight}, the window flattened)")
    right.set_xlabel("output position oh*Wo + ow")
    if cols.shape[0] <= 36:                       # few enough rows to name each one
        right.set_yticks(range(cols.shape[0]), [f"({c},{i},{j})" for c in range(C) for i in range(kh)
                                                for j in range(kw)])
        right.set_ylabel("row (c, i, j): channel, kernel row, kernel column")
    else:
        right.set_ylabel("row (c*kh + i)*kw + j")
    fig.suptitle("im2col: every receptive field becomes one column, so convolution is one matrix "
                 "product")
    return fig


def plot_score_map(image, score_map, label="class score", title="Class score map", cmap="jet",
                   alpha=0.5, vmin=None, vmax=None):
    """A class score map (h, w) from the fully-convolutional net stretched over the image it came
    from: left the image, right the map on top of a grey copy of the image (so colour means score
    only), with a colour bar. ``vmin``/``vmax`` fix the colour range (e.g. 0 and 1 for soft-max
    probabilities); by default it spans the map's own values.

    Each cell of the map is the score of one crop-sized window (one position of fc6-as-conv);
    stretching it over the whole image is an approximation for display only.
    """
    plt = _pyplot()
    shown = to_display(image)
    H, W = shown.shape[:2]
    score_map = np.asarray(score_map, dtype=np.float64)
    if score_map.ndim != 2:
        raise ValueError(f"score_map must be (h, w) for one class; got shape {score_map.shape}")
    grey = shown.mean(axis=-1) if shown.ndim == 3 else shown
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    left.imshow(shown, cmap="gray", extent=(0, W, H, 0))
    right.imshow(grey, cmap="gray", extent=(0, W, H, 0))
    for ax in (left, right):
        ax.set_xlabel("x (input pixels)")
        ax.set_ylabel("y (input pixels)")
    left.set_title(f"input image ({H}x{W})")
    overlay = right.imshow(score_map, cmap=cmap, alpha=alpha, extent=(0, W, H, 0),
                           interpolation="nearest", vmin=vmin, vmax=vmax)
    h, w = score_map.shape
    right.set_title(f"{title}: {h}x{w} positions")
    fig.colorbar(overlay, ax=right, label=label)
    return fig


def plot_layer_costs(names, params, memory, title="Where VGG's parameters and memory live",
                     memory_unit="MB per image (float32)"):
    """Two bar charts over the layers: parameters (millions) above, activation memory below.

    names: layer names; params: parameter count per layer; memory: activation memory per layer,
    already in ``memory_unit`` (e.g. output values * 4 bytes / 2**20). The largest bar of each is
    labelled with its value.
    """
    plt = _pyplot()
    names = list(names)
    params = np.asarray(params, dtype=np.float64) / 1e6
    memory = np.asarray(memory, dtype=np.float64)
    if not len(names) == len(params) == len(memory):
        raise ValueError(f"names, params and memory must have one entry per layer; got "
                         f"{len(names)}, {len(params)}, {len(memory)}")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 0.42 * len(names) + 2), 7),
                                      sharex=True, layout="constrained")
    x = np.arange(len(names))
    for ax, values, colour, ylabel in ((top, params, "tab:blue", "parameters (millions)"),
                                       (bottom, memory, "tab:orange", f"activations ({memory_unit})")):
        ax.bar(x, values, color=colour)
        k = int(np.argmax(values))
        ax.annotate(f"{values[k]:.3g}", (x[k], values[k]), ha="center", va="bottom", fontsize=9)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, values.max() * 1.15 if values.max() > 0 else 1)
        ax.grid(axis="y", alpha=0.3)
    top.set_title(f"parameters: {params.sum():.1f}M summed over these layers")
    bottom.set_title(f"activation memory: {memory.sum():.1f} {memory_unit.split()[0]} summed over "
                     f"these layers' outputs")
    bottom.set_xticks(x, names, rotation=70, fontsize=8)
    bottom.set_xlabel("layer")
    fig.suptitle(title)
    return fig


def plot_timings(seconds, title="Time per call", unit="ms"):
    """A horizontal bar chart of run times {label: seconds}, each bar labelled by its time and how
    many times faster than the slowest it is. The axis is logarithmic when the times span more than
    a factor of 20 (so a 1000x gap fits), linear otherwise."""
    plt = _pyplot()
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    labels = list(seconds)
    values = np.array([seconds[k] for k in labels], dtype=np.float64) * scale
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(labels) + 1.5), layout="constrained")
    y = np.arange(len(labels))
    ax.barh(y, values, color="tab:green")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    slowest = values.max()
    for k, value in enumerate(values):
        ratio = slowest / value
        speed = "slowest" if value == slowest else f"{ratio:.{0 if ratio >= 10 else 1}f}x faster"
        ax.text(value, k, f"  {value:.3g} {unit} ({speed})", va="center", fontsize=9)
    if slowest / values.min() > 20:
        ax.set_xscale("log")
        ax.set_xlim(values.min() / 2, slowest * 30)
        ax.set_xlabel(f"time per call ({unit}, log scale)")
    else:
        ax.set_xlim(0, slowest * 1.6)
        ax.set_xlabel(f"time per call ({unit})")
    ax.set_title(title)
    return fig


def plot_curves(history, title="Training curves"):
    """Loss and error per epoch, training and validation, from a :class:`minivgg.train.History`
    (or a list of its records). Left: cross-entropy loss; right: top-1 error (solid) and top-5
    error (dashed, when recorded) in %. Training values are averages over the epoch's augmented
    crops with dropout on; validation values come from centre crops after the epoch. Epochs where
    the learning rate was cut are marked with grey vertical lines."""
    plt = _pyplot()
    records = list(history)
    if not records:
        raise ValueError("history is empty: train at least one epoch")
    epochs = [r["epoch"] for r in records]
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
        name = "training" if split == "train" else "validation"
        loss_ax.plot(epochs, [r[f"{split}_loss"] for r in records], "o-", color=colour,
                     label=name)
        error_ax.plot(epochs, [100 * r[f"{split}_top1"] for r in records], "o-", color=colour,
                      label=f"{name} top-1")
        if f"{split}_top5" in records[0]:
            error_ax.plot(epochs, [100 * r[f"{split}_top5"] for r in records], "s--",
                          color=colour, label=f"{name} top-5")
    for before, after in zip(records, records[1:]):
        if after["lr"] < before["lr"]:                 # the cut took effect at this epoch
            for ax in (loss_ax, error_ax):
                ax.axvline(after["epoch"] - 0.5, color="grey", linestyle=":", linewidth=1)
            error_ax.annotate(f"lr {after['lr']:.0e}", (after["epoch"] - 0.5, 1), fontsize=8,
                              xycoords=("data", "axes fraction"), va="top", rotation=90)
    loss_ax.set(title="loss", xlabel="epoch", ylabel="cross-entropy (nats per image)")
    error_ax.set(title="error", xlabel="epoch", ylabel="error (%)", ylim=(0, 100))
    for ax in (loss_ax, error_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    final = records[-1]
    fig.suptitle(f"{title}: validation top-1 error {100 * final['val_top1']:.1f}% after "
                 f"{final['epoch']} epochs")
    return fig


def plot_confusion(matrix, classes, title="Confusion matrix"):
    """counts[i, j] = images of true class i predicted as j, e.g. from
    :func:`minivgg.evaluate.confusion_matrix`; ``classes`` names the rows and columns.

    The colour is each row's fraction (so small and large classes read alike), the number in a
    cell its count; the diagonal holds the correct predictions."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    classes = list(classes)
    if matrix.ndim != 2 or matrix.shape != (len(classes), len(classes)):
        raise ValueError(f"matrix must be (K, K) for the K = {len(classes)} classes; got shape "
                         f"{matrix.shape}")
    totals = matrix.sum(axis=1, keepdims=True)
    fractions = matrix / np.maximum(totals, 1)
    K = len(classes)
    fig, ax = plt.subplots(figsize=(0.6 * K + 3, 0.6 * K + 2), layout="constrained")
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    for i in range(K):
        for j in range(K):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if fractions[i, j] > 0.5 else "black")
    ax.set_xticks(range(K), classes, rotation=60, ha="right")
    ax.set_yticks(range(K), classes)
    ax.set(xlabel="predicted class", ylabel="true class")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}: {matrix.sum()} images, accuracy {100 * accuracy:.1f}%")
    return fig


def _short(n):
    """1792 -> '1.79k', 102764544 -> '103M': three significant digits and an SI prefix."""
    for prefix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{prefix}"
    return f"{n:g}"


# Colours and widths of the layer kinds in plot_architecture; a kind not listed is drawn grey.
_ARCH_STYLE = {"conv": ("tab:blue", None), "fc": ("tab:orange", None), "pool": ("tab:red", 0.12),
               "relu": ("tab:green", 0.05), "lrn": ("tab:purple", 0.12),
               "dropout": ("0.6", 0.05), "flatten": ("0.3", 0.05), "average": ("tab:red", 0.12)}


def plot_architecture(model, title=None, annotate=True):
    """The block diagram of a network, one patch per layer, left to right: convolutions as boxes
    whose height follows the map's side and width the number of channels (log scale), fully
    connected layers as boxes whose height follows their size, and thin bars for the layers
    without weights (ReLU green, max-pool red, LRN purple, dropout grey, flatten dark grey).
    Under each conv/FC box: its name, parameters and multiply-accumulates (``annotate``).

    model: a Sequential (a VGG) or its ``Summary`` (``summarize(vgg_plan(...))``, no arrays).
    Each patch's ``gid`` is its layer's name, so a test can check every layer is drawn.
    """
    from .arithmetic import Summary
    plt = _pyplot()
    from matplotlib.patches import Rectangle
    summary = model if isinstance(model, Summary) else model.summary()
    rows = summary.rows
    sides = [row.output_shape[1] if len(row.output_shape) == 3 else 1 for row in rows]
    top_side = max(max(sides), summary.input_shape[1])
    top_channels = max(row.output_shape[0] for row in rows)
    fc_sizes = [row.output_shape[0] for row in rows if len(row.output_shape) == 1]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.33 * len(rows) + 2), 4.6), layout="constrained")
    x, gap = 0.0, 0.06
    for row, side in zip(rows, sides):
        colour, width = _ARCH_STYLE.get(row.op, ("0.5", 0.05))
        if row.op == "conv" or (row.op == "fc" and len(row.output_shape) == 3):
            height = 0.2 + 0.8 * side / top_side
            width = 0.25 + 0.5 * np.log2(row.output_shape[0] + 1) / np.log2(top_channels + 1)
        elif row.op == "fc":
            height = 0.2 + 0.6 * np.log(row.output_shape[0] + 1) / np.log(max(fc_sizes) + 1)
            width = 0.3
        else:
            height = 0.2 + 0.8 * side / top_side
        ax.add_patch(Rectangle((x, -height / 2), width, height, facecolor=colour,
                               edgecolor="black", linewidth=0.5, alpha=0.85, gid=row.name))
        if annotate and row.op in ("conv", "fc"):
            shape = "x".join(map(str, row.output_shape))
            ax.text(x + width / 2, -height / 2 - 0.04,
                    f"{row.name}\n{shape}\n{_short(row.params)} params\n{_short(row.macs)} MACs",
                    ha="center", va="top", fontsize=6, rotation=0)
        x += width + gap
    ax.set_xlim(-gap, x)
    ax.set_ylim(-1.0, 0.65)
    ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, facecolor=_ARCH_STYLE[kind][0]) for kind in
               ("conv", "relu", "pool", "lrn", "fc", "dropout")]
    ax.legend(handles, ["convolution (height: side, width: channels)", "ReLU", "max-pool", "LRN",
                        "fully connected", "dropout"], fontsize=7, loc="upper right", ncol=3,
              frameon=False)
    ax.set_title(title or f"{summary.total_params:,} parameters, {summary.total_macs / 1e9:.2f} "
                          f"G multiply-accumulates per {summary.input_shape[1]}x"
                          f"{summary.input_shape[2]} image", fontsize=10)
    return fig


def plot_effective_fields(fields, boxes, row_labels, title="Effective receptive fields"):
    """Heat maps of effective receptive fields (``arithmetic.effective_receptive_field``), one row
    per set of weights, one column per layer, with each layer's theoretical field drawn as a box.

    fields: {row label: {layer name: (H, W) map}}; boxes: {layer name: (top, left, height,
    width)}, e.g. ``summary[name].field_box(clip=(H, W))``; row_labels: the order of the rows.
    Each map is shown on its own colour scale (square root, so the tails show).
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle
    names = list(boxes)
    fig, axes = plt.subplots(len(row_labels), len(names), squeeze=False,
                             figsize=(2.2 * len(names) + 0.5, 2.4 * len(row_labels) + 0.6),
                             layout="constrained")
    for r, label in enumerate(row_labels):
        for c, name in enumerate(names):
            ax = axes[r, c]
            ax.imshow(np.sqrt(fields[label][name]), cmap="magma")
            top, left, height, width = boxes[name]
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False,
                                   edgecolor="cyan", linewidth=1.2))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig
