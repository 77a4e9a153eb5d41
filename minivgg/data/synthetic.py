"""A built-in dataset of ten shape and texture classes, drawn procedurally from a seed.

Each image is a random background colour, a few small distractor strokes and blobs (clutter),
one foreground object of a random colour, and Gaussian pixel noise. The object is a shape
(disc, ring, square, triangle, plus, L-shape: random position, size and rotation) or a
striped/checked texture in a round patch (random period and phase; the stripes' orientation
is the class, so textures only get a small rotation jitter).

Colour carries no class information: foreground and background colours are drawn from the
same distribution whatever the class, so a class's mean image is flat grey and a linear
classifier on pixels sees almost nothing; the class lives in the object's geometry, which a
small conv net learns in a few epochs.

Shapes are drawn with coordinate-grid masks vectorised over all images of a class: each class
is a signed distance d (in pixels, > 0 inside) and a pixel's coverage is clip(d + 1/2, 0, 1),
which anti-aliases every edge over about one pixel.

Every image comes with its object's box (the localisation task of the paper's Appendix A): the
smallest (x0, y0, x1, y1) holding every pixel the object covers at least half, read off the
coverage the object was painted with, so it is tight whatever the shape and rotation. Clutter
is painted first and never hides the object.
"""

import numbers

import numpy as np

from .dataset import ImageDataset

CLASSES = ("disc", "ring", "square", "triangle", "plus", "L-shape",
           "horizontal stripes", "vertical stripes", "diagonal stripes", "checkerboard")
_TEXTURES = CLASSES.index("horizontal stripes")   # classes from here on are textures


def _box(u, v, half_u, half_v):
    """Signed distance (approximate: exact along the axes) of an axis-aligned box."""
    return np.minimum(half_u - np.abs(u), half_v - np.abs(v))


def _triangle(u, v, r):
    """Equilateral triangle, inradius 0.55 r: inside all three edges' half-planes."""
    edges = [u * np.cos(a) + v * np.sin(a) for a in np.deg2rad([-90.0, 30.0, 150.0])]
    return 0.55 * r - np.maximum(np.maximum(edges[0], edges[1]), edges[2])


def _stripes(u, v, r, period, phase):
    """Stripes across v inside a disc of radius r; sin(x) ~ x near its zeros, so
    sin(2 pi v / period) * period / (2 pi) is the distance to the nearest stripe edge there."""
    pattern = np.sin(2 * np.pi * v / period + phase[..., 0]) * period / (2 * np.pi)
    return np.minimum(pattern, r - np.hypot(u, v))


def _checkerboard(u, v, r, period, phase):
    """Squares of side 0.7 period inside a disc of radius r (signs of a product of sines);
    no smaller, or at 32x32 they blur into something like fine diagonal stripes."""
    cell = 0.7 * period
    pattern = (np.sin(np.pi * u / cell + phase[..., 0]) * np.sin(np.pi * v / cell + phase[..., 1])
               * cell / np.pi)
    return np.minimum(pattern, r - np.hypot(u, v))


# Signed distance (pixels, > 0 inside) of each class, in the object's rotated frame (u, v)
# centred on it; r, period: (m, 1, 1) pixels; phase: (m, 1, 1, 2) radians.
_SIGNED_DISTANCE = (
    lambda u, v, r, period, phase: r - np.hypot(u, v),                              # disc
    lambda u, v, r, period, phase: 0.22 * r - np.abs(np.hypot(u, v) - 0.75 * r),    # ring
    lambda u, v, r, period, phase: _box(u, v, 0.8 * r, 0.8 * r),                    # square
    lambda u, v, r, period, phase: _triangle(u, v, r),                              # triangle
    lambda u, v, r, period, phase: np.maximum(_box(u, v, 0.3 * r, r),               # plus
                                              _box(u, v, r, 0.3 * r)),
    lambda u, v, r, period, phase: np.maximum(_box(u + 0.55 * r, v, 0.3 * r, 0.9 * r),  # L
                                              _box(u, v - 0.6 * r, 0.85 * r, 0.3 * r)),
    _stripes,                                                  # horizontal (rotation ~0)
    _stripes,                                                  # vertical (rotation ~90 deg)
    _stripes,                                                  # diagonal (~45 or ~135 deg)
    _checkerboard,
)
# Rotation of each texture class, degrees (diagonal stripes: 45 or, at random, 135), give or
# take _ANGLE_JITTER, small enough that the stripe orientations never overlap.
_TEXTURE_ANGLE = np.array([0.0] * _TEXTURES + [0.0, 90.0, 45.0, 0.0])
_DIAGONAL = CLASSES.index("diagonal stripes")
_ANGLE_JITTER = 10.0


# Where objects go and how big they are, per layout (radii and centres: fractions of the side).
# "centred": the default, the classification data: large objects near the middle (shapes of
# radius 0.24..0.34, any rotation; smaller ones are hard to tell apart at 32x32; textures a
# round patch of radius 0.3..0.45, turned only by the class angle and the jitter); their boxes
# are so alike that one fixed box has IoU > 0.5 with almost all of them. "scattered": for
# localisation, smaller objects anywhere in the image, kept ``margin`` inside its border, of
# aspect 1/1.8..1.8, so that no fixed box fits most of them.
LAYOUTS = {
    "centred": {"shape_radius": (0.24, 0.34), "texture_radius": (0.3, 0.45),
                "centre": (0.38, 0.62), "margin": None, "aspect": (1.0, 1.0)},
    "scattered": {"shape_radius": (0.15, 0.24), "texture_radius": (0.17, 0.26),
                  "centre": (0.0, 1.0), "margin": 0.06, "aspect": (1 / 1.8, 1.8)},
}

# colours="fixed": one light grey object on one dark grey background, RGB.
FIXED_COLOURS = (230.0, 25.0)


def _coverage(signed_distance):
    """Fraction of each pixel inside: 0 outside, 1 inside, linear over the one-pixel edge."""
    return np.clip(signed_distance + 0.5, 0.0, 1.0)


def _random_colours(rng, n, min_contrast):
    """Foreground and background colours, (n, 3) each in [0, 255], at least ``min_contrast``
    apart (Euclidean, RGB). Both are redrawn together when too close, so swapping them leaves
    the distribution unchanged: neither colour says anything about the class."""
    fg, bg = rng.uniform(0, 255, (2, n, 3))
    while True:
        close = np.linalg.norm(fg - bg, axis=1) < min_contrast
        if not close.any():
            return fg.astype(np.float32), bg.astype(np.float32)
        fg[close], bg[close] = rng.uniform(0, 255, (2, close.sum(), 3))


def _draw_clutter(images, rng, grid, clutter):
    """Paint about ``clutter`` (Poisson mean) small strokes and blobs of random colours on each
    of ``images`` (m, 3, size, size) float32, in place. A blob is a stroke of length zero."""
    m, size = images.shape[0], images.shape[-1]
    y, x = grid
    counts = rng.poisson(clutter, m)
    # Paint in order of decreasing count, so the images a slot paints are a prefix (a view,
    # not a fancy-indexed copy): this loop is most of the generation time. float32 throughout.
    order = np.argsort(-counts, kind="stable")
    layer = images[order]
    for slot in range(counts.max(initial=0)):
        k = np.count_nonzero(counts > slot)
        start = rng.uniform(0, size, (k, 2)).astype(np.float32)
        length = np.where(rng.random(k) < 0.5, 0.0, rng.uniform(0.12, 0.3, k) * size)
        angle = rng.uniform(0, 2 * np.pi, k)
        step = (length[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1))
        half_width = np.where(length == 0, rng.uniform(0.03, 0.06, k), 0.02) * size + 0.3
        colour = rng.uniform(0, 255, (k, 3, 1, 1)).astype(np.float32)
        # Distance from each pixel to the segment start + t * step, t in [0, 1].
        px = x - start[:, 0, None, None]
        py = y - start[:, 1, None, None]
        sx, sy = (step[:, i, None, None].astype(np.float32) for i in (0, 1))
        t = np.clip((px * sx + py * sy) / (sx * sx + sy * sy + np.float32(1e-9)), 0, 1)
        px -= t * sx
        py -= t * sy
        distance = np.sqrt(px * px + py * py)
        alpha = _coverage(half_width[:, None, None].astype(np.float32) - distance)[:, None]
        layer[:k] += alpha * (colour - layer[:k])
    images[order] = layer


def _boxes(coverage):
    """(m, size, size) coverage -> (m, 4) float32 boxes (x0, y0, x1, y1) of the pixels covered
    at least half (the most covered pixel alone if none is: a sliver at a tiny size)."""
    inside = coverage >= np.minimum(0.5, coverage.max(axis=(1, 2), keepdims=True))
    cols, rows = inside.any(axis=1), inside.any(axis=2)           # (m, size) each
    size = coverage.shape[-1]
    return np.stack([cols.argmax(1), rows.argmax(1), size - cols[:, ::-1].argmax(1),
                     size - rows[:, ::-1].argmax(1)], axis=1).astype(np.float32)


def _render(labels, size, rng, noise, clutter, min_contrast, layout, colours):
    """Draw one image per label: (m,) int -> (m, size, size, 3) uint8 and the objects' boxes
    (m, 4) float32 (:func:`_boxes`).

    Painted channels-first, (m, 3, size, size), so that blending a colour (m, 3, 1, 1) through
    a mask (m, 1, size, size) runs along contiguous rows: 3x faster than channels-last."""
    m = len(labels)
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5     # (y, x) of pixel centres
    fg, bg = _random_colours(rng, m, min_contrast)     # drawn either way: the same stream
    if colours == "fixed":
        fg[:], bg[:] = FIXED_COLOURS
    images = np.empty((m, 3, size, size), np.float32)
    images[:] = bg[:, :, None, None]
    _draw_clutter(images, rng, grid, clutter)

    is_texture = labels >= _TEXTURES
    place = LAYOUTS[layout]
    r = np.where(is_texture, rng.uniform(*place["texture_radius"], m),
                 rng.uniform(*place["shape_radius"], m)) * size
    # Aspect a: the object's frame is stretched by sqrt(a) along u and shrunk by it along v
    # (log-uniform: a and 1/a alike). A stripe stays a line of constant v, so a texture keeps
    # its orientation; the signed distances are off by at most sqrt(a), a slightly wider or
    # sharper edge. No draw when the layout keeps objects round (the centred stream unchanged).
    stretch = (np.ones(m) if place["aspect"] == (1.0, 1.0)
               else np.sqrt(np.exp(rng.uniform(*np.log(place["aspect"]), m))))
    low, high = place["centre"]                         # fractions of the side
    if place["margin"] is not None:
        # Anywhere in that range that keeps the object's outer circle (radius r times its
        # stretch, whatever the rotation) ``margin`` inside the image.
        reach = r / size * np.maximum(stretch, 1 / stretch) + place["margin"]
        low = np.maximum(low, reach)[:, None]
        high = np.maximum(low[:, 0], np.minimum(high, 1.0 - reach))[:, None]
    centre = rng.uniform(low, high, (m, 2)) * size
    texture_angle = (_TEXTURE_ANGLE[labels] + 90.0 * (labels == _DIAGONAL) * rng.integers(0, 2, m)
                     + rng.uniform(-_ANGLE_JITTER, _ANGLE_JITTER, m))
    angle = np.deg2rad(np.where(is_texture, texture_angle, rng.uniform(0, 360, m)))
    period = rng.uniform(0.14, 0.25, m) * size
    phase = rng.uniform(0, 2 * np.pi, (m, 2))

    coverage = np.empty((m, size, size), np.float32)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        dy = grid[0] - centre[idx, 1, None, None]
        dx = grid[1] - centre[idx, 0, None, None]
        cos, sin = np.cos(angle[idx])[:, None, None], np.sin(angle[idx])[:, None, None]
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy      # the object's own frame
        k = stretch[idx, None, None]
        u, v = u / k, v * k
        coverage[idx] = _coverage(_SIGNED_DISTANCE[label](
            u, v, r[idx, None, None], period[idx, None, None], phase[idx, None, None]))
    images += coverage[:, None] * (fg[:, :, None, None] - images)

    images += rng.standard_normal(images.shape, dtype=np.float32) * np.float32(noise)
    images = np.clip(images + 0.5, 0, 255).astype(np.uint8)    # + 0.5: round, not truncate
    return images.transpose(0, 2, 3, 1), _boxes(coverage)


MAX_BYTES = 8 * 2**30       # the most image bytes a built-in set may take: refused before allocating


def _check_sizes(n, size, smallest):
    """(n, size) as ints, refused (ValueError naming them) unless n >= 0, size >= smallest and
    the n images of size x size x 3 bytes fit in MAX_BYTES."""
    for value, name, low in ((n, "n", 0), (size, "size", smallest)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"need an int {name} >= {low}; got {name}={value!r}")
    if n * size * size * 3 > MAX_BYTES:
        raise ValueError(f"n={n} images of size={size} would take {n * size * size * 3 / 2**30:.3g} "
                         f"GiB, over the {MAX_BYTES / 2**30:g} GiB limit "
                         f"(minivgg.data.synthetic.MAX_BYTES)")
    return int(n), int(size)


def synthetic_shapes(n, size=32, seed=0, *, noise=10.0, clutter=3.0, min_contrast=100.0,
                     layout="centred", colours="random"):
    """``n`` images of the ten CLASSES, as balanced as ``n`` allows, in random order.

    n:            number of images
    size:         side of the square images, pixels (everything scales with it)
    seed:         int or np.random.SeedSequence; same seed and arguments -> same bytes
    noise:        std of the Gaussian pixel noise, grey levels (0..255)
    clutter:      mean number of distractor strokes/blobs per image (Poisson)
    min_contrast: least RGB distance between foreground and background colours, 0..300
                  (the largest possible is 255 * sqrt(3) = 441; above ~300 pairs get rare)
    layout:       "centred" (large objects near the middle) or "scattered" (smaller ones of
                  varied aspect anywhere: localisation's data), LAYOUTS
    returns:      ImageDataset with images (n, size, size, 3) uint8, labels (n,) int64 and
                  boxes (n, 4) float32, each object's (x0, y0, x1, y1) in pixels
    """
    n, size = _check_sizes(n, size, 4)
    if noise < 0 or clutter < 0 or not 0 <= min_contrast <= 300:
        raise ValueError(f"need noise >= 0, clutter >= 0 and 0 <= min_contrast <= 300; got "
                         f"noise={noise}, clutter={clutter}, min_contrast={min_contrast}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {tuple(LAYOUTS)}; got {layout!r}")
    if colours not in ("random", "fixed"):
        raise ValueError(f"colours must be 'random' or 'fixed'; got {colours!r}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES))
    images = np.empty((n, size, size, 3), np.uint8)
    boxes = np.empty((n, 4), np.float32)
    chunk = max(1, 2**21 // (size * size))       # bounds the float32 temporaries to ~25 MB each
    for lo in range(0, n, chunk):
        images[lo:lo + chunk], boxes[lo:lo + chunk] = _render(
            labels[lo:lo + chunk], size, rng, noise, clutter, min_contrast, layout, colours)
    return ImageDataset(images, labels, CLASSES, boxes)


def synthetic_splits(n_train, n_val, size=32, seed=0, **difficulty):
    """Training and validation sets drawn from independent streams spawned from ``seed``, so
    they never share an image. ``difficulty``: noise, clutter, min_contrast, layout as in
    :func:`synthetic_shapes`. Returns (train, val) ImageDatasets."""
    train_seed, val_seed = np.random.SeedSequence(seed).spawn(2)
    return (synthetic_shapes(n_train, size, train_seed, **difficulty),
            synthetic_shapes(n_val, size, val_seed, **difficulty))


# -- the harder set: pairs of parts -----------------------------------------------------------
# Each image holds two *parts*, two different shapes of the first six CLASSES, apart from each
# other, each drawn small at any rotation in its own colour, among clutter; the class is the
# unordered pair ("disc + triangle"): 15 classes. No single part, colour or position tells the
# class; a net has to find both parts and combine them, which needs features of wide context
# and composition, the paper's question for depth. Unordered, so a flip keeps the class.
PARTS = CLASSES[:_TEXTURES]
PAIRS = tuple((a, b) for a in range(len(PARTS)) for b in range(a + 1, len(PARTS)))
PAIR_CLASSES = tuple(f"{PARTS[a]} + {PARTS[b]}" for a, b in PAIRS)


def _paint_part(images, shape, rng, grid, centre, r):
    """Paint one part per image in place: images (m, 3, size, size) float32; shape (m,) part
    index; centre (m, 2) x, y and r (m,) radius, pixels. Any rotation; a random colour far from
    the image's background (its pixel at the part's centre before painting is close enough
    after the clutter: it is only a contrast floor)."""
    m = len(shape)
    fg, _ = _random_colours(rng, m, 0.0)
    bg = images[np.arange(m), :, np.clip(centre[:, 1].astype(int), 0, images.shape[-1] - 1),
                np.clip(centre[:, 0].astype(int), 0, images.shape[-1] - 1)]
    far = np.linalg.norm(fg - bg, axis=1) < 100.0
    fg[far] = 255.0 - bg[far]                       # the complement: at least 127 away per channel
    angle = rng.uniform(0, 2 * np.pi, m)
    coverage = np.empty((m,) + images.shape[2:], np.float32)
    for part in np.unique(shape):
        idx = np.flatnonzero(shape == part)
        dy = grid[0] - centre[idx, 1, None, None]
        dx = grid[1] - centre[idx, 0, None, None]
        cos, sin = np.cos(angle[idx])[:, None, None], np.sin(angle[idx])[:, None, None]
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        coverage[idx] = _coverage(_SIGNED_DISTANCE[part](u, v, r[idx, None, None], None, None))
    images += coverage[:, None] * (fg[:, :, None, None] - images)


def _render_pairs(labels, size, rng, noise, clutter):
    """(m,) pair labels -> (m, size, size, 3) uint8: background, clutter, two parts, noise."""
    m = len(labels)
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    images = np.empty((m, 3, size, size), np.float32)
    # A dark, nearly grey background (a level, give or take a tint), so the parts' shapes, not
    # the background's colour, are what varies most between images.
    level = rng.uniform(20, 90, (m, 1)) + rng.uniform(-15, 15, (m, 3))
    images[:] = level[:, :, None, None].astype(np.float32)
    _draw_clutter(images, rng, grid, clutter)
    parts = np.array(PAIRS)[labels]                             # (m, 2)
    parts = np.where(rng.random((m, 1)) < 0.5, parts, parts[:, ::-1])   # which one goes first
    # The two centres: either side of the image centre along a random direction, 0.4..0.5 of
    # the side apart, so both stay inside the central crop and the class needs both halves.
    angle = rng.uniform(0, 2 * np.pi, m)
    half = rng.uniform(0.2, 0.25, m)
    offset = half[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    for sign, shape in zip((1.0, -1.0), parts.T):
        centre = (0.5 + sign * offset) * size
        r = rng.uniform(0.17, 0.22, m) * size
        _paint_part(images, shape, rng, grid, centre.astype(np.float32), r)
    images += rng.standard_normal(images.shape, dtype=np.float32) * np.float32(noise)
    images = np.clip(images + 0.5, 0, 255).astype(np.uint8)
    return images.transpose(0, 2, 3, 1)


def synthetic_pairs(n, size=64, seed=0, *, noise=10.0, clutter=2.0):
    """``n`` images of the 15 PAIR_CLASSES (two parts each), balanced, in random order.

    n, size, seed, noise, clutter: as in :func:`synthetic_shapes` (the parts' sizes and places
    scale with ``size``; below ~32 pixels the parts are too small to tell apart)
    returns: ImageDataset with images (n, size, size, 3) uint8, labels (n,) int64
    """
    n, size = _check_sizes(n, size, 16)
    if noise < 0 or clutter < 0:
        raise ValueError(f"need noise >= 0 and clutter >= 0; got noise={noise}, "
                         f"clutter={clutter}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(PAIR_CLASSES))
    images = np.empty((n, size, size, 3), np.uint8)
    chunk = max(1, 2**21 // (size * size))
    for lo in range(0, n, chunk):
        images[lo:lo + chunk] = _render_pairs(labels[lo:lo + chunk], size, rng, noise, clutter)
    return ImageDataset(images, labels, PAIR_CLASSES)


DATASETS = {"shapes": synthetic_shapes, "pairs": synthetic_pairs}


def dataset_splits(name, sizes, size=64, seed=0, **difficulty):
    """Disjoint sets of a built-in dataset ("shapes" or "pairs", DATASETS) from independent
    streams spawned from ``seed``: ``sizes`` (n_train, n_val[, n_test]) -> ImageDatasets in that
    order. Set i is the same whatever follows it, and for "shapes" the first two are
    :func:`synthetic_splits`' (the CLI rebuilds train and val of a three-set run)."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {tuple(DATASETS)}; got {name!r}")
    return tuple(DATASETS[name](n, size, s, **difficulty)
                 for n, s in zip(sizes, np.random.SeedSequence(seed).spawn(len(sizes))))
