"""Each plotting helper renders with Agg, and draws what it says: the right number of axes, images,
rectangles, bars and text, with titles and axis labels."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minivgg import viz  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def render(fig):
    """Draw the figure on the Agg canvas (layout included) and return the pixel buffer."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def boxes(ax):
    """The rectangles a helper added (not the axes background patch)."""
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_to_display_accepts_channel_first_and_rescales():
    image = np.arange(2 * 3 * 4, dtype=float).reshape(3, 2, 4) - 7
    shown = viz.to_display(image)
    assert shown.shape == (2, 4, 3)
    assert shown.min() == 0 and shown.max() == 1
    assert np.all(viz.to_display(np.ones((5, 5))) == 0.5)
    with pytest.raises(ValueError, match="image must be"):
        viz.to_display(np.ones((2, 2, 2, 2)))


def test_image_grid_titles_with_class_names():
    images = np.random.default_rng(0).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    fig = viz.plot_image_grid(images, np.array([0, 1, 2, 1, 0]), ("disc", "ring", "square"), cols=3)
    render(fig)
    assert len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes] == ["disc", "ring", "square", "ring", "disc"]
    assert fig.axes[0].get_images()[0].get_array().shape == (6, 7, 3)
    assert "5 of 5, each 6x7 pixels" in fig.get_suptitle()
    fig = viz.plot_image_grid(images, num=2)
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == ""


def test_filters_one_tile_per_filter_in_colour_for_rgb():
    weight = np.random.default_rng(0).standard_normal((10, 3, 3, 3))
    fig = viz.plot_filters(weight, cols=4)
    render(fig)
    assert len(fig.axes) == 10                                  # 3 rows of 4, 2 empty removed
    for f, ax in enumerate(fig.axes):
        (image,) = ax.get_images()
        assert image.get_array().shape == (3, 3, 3)             # kh x kw x RGB
        assert ax.get_title() == f"filter {f}"
    assert "10 of 10 filters, 3x3" in fig.get_suptitle()
    assert fig._supxlabel.get_text() == "kernel column j"


def test_filters_grey_for_many_input_channels_and_num_limits():
    fig = viz.plot_filters(np.ones((20, 8, 5, 5)), num=6)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_images()[0].get_array().shape == (5, 5)
    assert "6 of 20" in fig.get_suptitle() and "mean over input channels" in fig.get_suptitle()


def test_feature_maps_grid():
    maps = np.random.default_rng(1).random((1, 12, 7, 9))
    fig = viz.plot_feature_maps(maps, num=8, cols=4, title="conv1_1")
    render(fig)
    assert len(fig.axes) == 8
    assert all(len(ax.get_images()) == 1 for ax in fig.axes)
    assert fig.axes[3].get_title() == "channel 3"
    assert fig.get_suptitle().startswith("conv1_1") and "8 of 12 channels, each 7x9" in fig.get_suptitle()
    assert fig._supylabel.get_text() == "height (7 positions)"


def test_receptive_fields_one_rectangle_per_field_dashed_for_empirical():
    image = np.random.default_rng(2).random((3, 40, 60))
    fields = {"conv1_1": (10, 10, 3, 3), "conv2_1": (5, 5, 10, 10), "pool5": (-20, -20, 80, 80)}
    empirical = {"conv1_1": (10, 10, 3, 3), "conv2_1": (5, 5, 10, 10)}
    fig = viz.plot_receptive_fields(image, fields, empirical, heatmap=np.ones((40, 60)))
    render(fig)
    (ax,) = fig.axes
    rects = boxes(ax)
    assert len(rects) == 5
    assert [r.get_linestyle() for r in rects].count("--") == 2
    assert (rects[0].get_x(), rects[0].get_y(), rects[0].get_width()) == (10, 10, 3)
    assert len(ax.get_images()) == 2                             # the photo and the heat map
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "conv1_1: 3x3" and legend[1] == "conv1_1: 3x3 (empirical)"
    assert "pool5: 80x80" in legend
    # the view widens to show the part of pool5's field that hangs over the edge
    assert ax.get_xlim()[0] < -20 and ax.get_ylim()[1] < -20
    assert ax.get_xlabel() == "x (input pixels)" and ax.get_ylabel() == "y (input pixels)"
    assert ax.get_title() == "Receptive fields"


def test_im2col_picture_shows_image_and_matrix_with_the_window_and_its_column():
    fig = viz.plot_im2col(np.arange(1, 17).reshape(4, 4), kernel=3, padding=1, highlight=5)
    render(fig)
    left, right = fig.axes
    matrix = right.get_images()[0].get_array()
    assert matrix.shape == (9, 16)
    # window 5 (row 1, col 1) of the padded image sees pixels 1,2,3,5,6,7,9,10,11
    assert matrix[:, 5].tolist() == [1, 2, 3, 5, 6, 7, 9, 10, 11]
    (window,) = boxes(left)
    assert (window.get_x(), window.get_y(), window.get_width(), window.get_height()) == (0.5, 0.5, 3, 3)
    (column,) = boxes(right)
    assert (column.get_x(), column.get_width(), column.get_height()) == (4.5, 1, 9)
    assert len(right.texts) == 9 * 16                            # every entry is labelled
    assert sum(t.get_text() == "pad" for t in left.texts) == 6 * 6 - 16
    assert "9 rows (c, i, j) x 16 columns" in right.get_title()
    assert left.get_ylabel() == "y (pixel row)" and right.get_xlabel() == "output position oh*Wo + ow"
    assert [t.get_text() for t in right.get_yticklabels()][:4] == ["(0,0,0)", "(0,0,1)", "(0,0,2)", "(0,1,0)"]


def test_im2col_picture_with_channels_outlines_the_window_in_each():
    fig = viz.plot_im2col(np.arange(2 * 3 * 3).reshape(2, 3, 3), kernel=2, padding=0)
    left, right = fig.axes
    assert len(boxes(left)) == 2
    assert right.get_images()[0].get_array().shape == (2 * 2 * 2, 2 * 2)


def test_score_map_over_image_with_colour_bar():
    fig = viz.plot_score_map(np.random.default_rng(3).random((50, 80, 3)), np.arange(6.).reshape(2, 3),
                             label="P(disc)")
    render(fig)
    left, right, colourbar = fig.axes
    assert len(left.get_images()) == 1 and len(right.get_images()) == 2
    overlay = right.get_images()[1]
    assert overlay.get_extent() == [0, 80, 50, 0]                 # stretched over the whole image
    assert colourbar.get_ylabel() == "P(disc)"
    assert "2x3 positions" in right.get_title() and "50x80" in left.get_title()
    assert right.get_images()[0].get_array().ndim == 2          # the image under the map is grey
    fig = viz.plot_score_map(np.ones((8, 8, 3)), np.full((2, 2), 0.1), vmin=0, vmax=1)
    assert fig.axes[1].get_images()[1].get_clim() == (0, 1)


def test_layer_costs_bars_per_layer_in_millions():
    names = ["conv1_1", "conv1_2", "fc6"]
    fig = viz.plot_layer_costs(names, [1792, 36928, 102_764_544], [12.25, 12.25, 0.0156])
    render(fig)
    top, bottom = fig.axes
    heights = [bar.get_height() for bar in top.patches]
    assert heights == pytest.approx([0.001792, 0.036928, 102.764544])
    assert [bar.get_height() for bar in bottom.patches] == pytest.approx([12.25, 12.25, 0.0156])
    assert [t.get_text() for t in bottom.get_xticklabels()] == names
    assert top.get_ylabel() == "parameters (millions)"
    assert bottom.get_ylabel().startswith("activations (MB")
    assert "102.8M summed" in top.get_title()
    assert any(t.get_text() == "103" for t in top.texts)          # the largest bar is labelled
    with pytest.raises(ValueError, match="one entry per layer"):
        viz.plot_layer_costs(names, [1, 2], [1, 2, 3])


def test_timings_log_axis_for_wide_ranges():
    fig = viz.plot_timings({"naive": 1.0, "numpy": 0.01, "numba": 0.002})
    (ax,) = fig.axes
    assert [p.get_width() for p in ax.patches] == pytest.approx([1000, 10, 2])
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    assert [t.get_text().strip() for t in ax.texts][0] == "1e+03 ms (slowest)"
    assert "(500x faster)" in ax.texts[2].get_text()
    assert "(1.3x faster)" in viz.plot_timings({"a": 0.2, "b": 0.15}).axes[0].texts[1].get_text()
    fig = viz.plot_timings({"numpy": 0.2, "numba": 0.15}, unit="s")
    assert fig.axes[0].get_xscale() == "linear" and fig.axes[0].get_xlabel() == "time per call (s)"


def test_helpers_return_figures_that_render():
    figs = [viz.plot_filters(np.ones((2, 3, 3, 3))), viz.plot_feature_maps(np.ones((2, 4, 4))),
            viz.plot_image_grid(np.ones((2, 4, 4, 3))),
            viz.plot_receptive_fields(np.ones((8, 8)), {"a": (0, 0, 3, 3)}),
            viz.plot_im2col(np.ones((3, 3))), viz.plot_score_map(np.ones((8, 8)), np.ones((2, 2))),
            viz.plot_layer_costs(["a"], [1], [1]), viz.plot_timings({"a": 1.0})]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert render(fig).shape[2] == 4
        assert any(isinstance(im, AxesImage) for ax in fig.axes for im in ax.get_images()) or \
            any(ax.patches for ax in fig.axes)


def test_importing_minivgg_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, minivgg, minivgg.viz; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("config", ["A-LRN", "C", "E"])
def test_plot_architecture_draws_every_layer(config):
    from minivgg.vgg import build_vgg
    model = build_vgg(config, input_size=32, width=1 / 16, fc_width=8, num_classes=3)
    fig = viz.plot_architecture(model)
    render(fig)
    ax = fig.axes[0]
    assert [p.get_gid() for p in ax.patches] == list(model.layers)
    texts = " ".join(t.get_text() for t in ax.texts)
    weight_layers = [n for n in model.layers if n.startswith(("conv", "fc"))]
    assert all(name in texts for name in weight_layers)
    assert len(ax.texts) == len(weight_layers)
    if config == "A-LRN":                                 # the LRN bar is there, purple
        lrn = next(p for p in ax.patches if p.get_gid() == "norm1")
        assert lrn.get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb("tab:purple"))
    # boxes grow with the map: conv1_1 is taller than the last convolution
    heights = {p.get_gid(): p.get_height() for p in ax.patches}
    assert heights["conv1_1"] > heights[weight_layers[-4]]


def test_summary_plot_writes_a_figure_and_keeps_an_existing_file(tmp_path, capsys):
    from minivgg.cli import main
    path = tmp_path / "arch.png"
    assert main(["summary", "C", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = path.read_bytes()
    assert main(["summary", "D", "--plot", str(path)]) == 2
    assert "exists" in capsys.readouterr().err and path.read_bytes() == before


def test_plot_effective_fields_draws_a_map_and_the_theoretical_box_per_layer():
    maps = {label: {"a": np.full((8, 8), 1 / 64), "b": np.eye(8) / 8} for label in ("x", "y")}
    fig = viz.plot_effective_fields(maps, {"a": (1, 1, 3, 3), "b": (0, 0, 8, 8)}, ["x", "y"])
    render(fig)
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert len([im for im in ax.get_children() if isinstance(im, AxesImage)]) == 1
        assert len(boxes(ax)) == 1
    assert boxes(fig.axes[0])[0].get_width() == 3 and fig.axes[0].get_title() == "a"
