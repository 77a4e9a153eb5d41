"""Localisation (the paper's Appendix A): boxes through the augmentation, IoU and the greedy
merge worked by hand, the Euclidean loss's gradient, the SCR/PCR heads, fine-tuning with frozen
layers, the annotation file, and the command line end to end."""

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.data import ImageDataset, synthetic_shapes, synthetic_splits
from minivgg.data.augment import TestTransform, TrainTransform
from minivgg.data.boxes import load_image_folder_with_boxes
from minivgg.gradcheck import LAYER_TOL, numerical_gradient, relative_error
from minivgg.layers import euclidean_loss
from minivgg.localise import (
    box_loss,
    class_boxes,
    from_params,
    greedy_merge,
    iou,
    localisation_net,
    to_params,
    train_localiser,
)
from minivgg.localise.protocols import uncrop
from minivgg.train import load_checkpoint
from minivgg.vgg import build_vgg, conv_layer_names


def mask_box(images, threshold=127.5):
    """The box (x0, y0, x1, y1) of the pixels brighter than ``threshold`` in channel 0, read
    straight off the pixels: the independent oracle for the box arithmetic."""
    inside = images[..., 0] > threshold
    cols, rows = inside.any(axis=1), inside.any(axis=2)
    W, H = cols.shape[1], rows.shape[1]
    return np.stack([cols.argmax(1), rows.argmax(1), W - cols[:, ::-1].argmax(1),
                     H - rows[:, ::-1].argmax(1)], 1).astype(np.float64)


def rectangles(n, size, rng):
    """White rectangles at random integer corners on black: (images, boxes)."""
    boxes = np.empty((n, 4))
    images = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        x0, y0 = rng.integers(0, size - 6, 2)
        x1, y1 = x0 + rng.integers(4, size - x0 + 1), y0 + rng.integers(4, size - y0 + 1)
        images[i, y0:y1, x0:x1] = 255
        boxes[i] = x0, y0, x1, y1
    return images, boxes


@pytest.mark.parametrize("scale, tol", [(None, 0.0), ((40, 80), 0.5 + 1e-4)])
def test_boxes_follow_rescale_crop_and_flip(scale, tol):
    """Crops and flips move boxes exactly; bilinear rescaling puts the half-intensity edge
    at the rescaled coordinate, so the pixel-read box is within half a pixel of it."""
    rng = np.random.default_rng(0)
    images, boxes = rectangles(40, 36, rng)
    transform = TrainTransform(32, mean=np.zeros(3), scale=scale, flip=True, colour_shift=0)
    x, moved = transform(images, np.random.default_rng(1), boxes)
    # The images are the ones the box-free call makes: the same draws.
    assert np.array_equal(x, transform(images, np.random.default_rng(1)))
    seen = mask_box(x.transpose(0, 2, 3, 1))
    visible = np.clip(moved, 0, 32)
    has_area = (visible[:, 2] - visible[:, 0] >= 1) & (visible[:, 3] - visible[:, 1] >= 1)
    assert has_area.sum() > 30
    assert np.abs(seen - visible)[has_area].max() <= tol


def test_centre_crop_boxes_map_back_to_the_image_exactly():
    images, boxes = rectangles(6, 40, np.random.default_rng(2))
    for scale in (None, 48, 37):
        transform = TestTransform(32, mean=np.zeros(3), scale=scale)
        _, in_crop = transform(images, boxes)
        assert np.allclose(uncrop(in_crop, (40, 40), 32, transform.scale), boxes, atol=1e-4)


@pytest.mark.parametrize("layout", ["centred", "scattered"])
def test_synthetic_boxes_hold_the_object_and_leave_the_images_alone(layout):
    """Without noise and clutter an image is bg + c (fg - bg), c the object's coverage: read c
    off the pixels (bg the commonest colour, fg the farthest from it) and box c >= 1/2."""
    clean = synthetic_shapes(30, 32, seed=3, noise=0.0, clutter=0.0, layout=layout)
    for image, box in zip(clean.images.astype(float), clean.boxes):
        colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
        bg = colours[counts.argmax()]
        distance = np.linalg.norm(image - bg, axis=2)
        inside = distance / distance.max() >= 0.5
        cols, rows = np.flatnonzero(inside.any(axis=0)), np.flatnonzero(inside.any(axis=1))
        seen = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
        assert np.abs(np.subtract(seen, box)).max() <= 1      # uint8 rounding at c = 1/2
    # Boxes are extra output: the images are the ones a subset of the same call gives, and a
    # subset keeps each image's box.
    again = synthetic_shapes(30, 32, seed=3, noise=0.0, clutter=0.0, layout=layout)
    assert np.array_equal(again.images, clean.images)
    assert np.array_equal(clean.subset([4, 2]).boxes, clean.boxes[[4, 2]])


def test_scattered_layout_makes_a_fixed_box_fail_where_the_centred_one_does_not():
    """The point of layout="scattered": the mean training box (the best a net that ignores the
    image can do) is right for most centred objects but wrong for most scattered ones; the
    objects vary in aspect and stay inside the image; the centred stream is the default's."""
    from minivgg.localise.run import constant_box_error
    errors = {}
    for layout in ("centred", "scattered"):
        train, val = synthetic_splits(600, 300, 36, seed=4, layout=layout)
        errors[layout] = constant_box_error(train, val, 32, 36)
        assert val.boxes.min() >= 0 and val.boxes.max() <= 36
    assert errors["centred"] < 0.15 and errors["scattered"] > 0.6, errors
    aspect = (val.boxes[:, 2] - val.boxes[:, 0]) / (val.boxes[:, 3] - val.boxes[:, 1])
    assert np.percentile(aspect, 5) < 0.7 and np.percentile(aspect, 95) > 1.4
    default = synthetic_shapes(50, 36, seed=9)
    centred = synthetic_shapes(50, 36, seed=9, layout="centred")
    assert np.array_equal(default.images, centred.images)
    assert np.array_equal(default.boxes, centred.boxes)
    with pytest.raises(ValueError, match="layout"):
        synthetic_shapes(5, 36, layout="middle")


def test_iou_by_hand():
    assert iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)      # 1 / (4 + 4 - 1)
    assert iou([0, 0, 2, 2], [0, 0, 2, 2]) == 1.0
    assert iou([0, 0, 2, 2], [2, 0, 4, 2]) == 0.0                        # touching edges
    assert iou([0, 0, 4, 2], [1, 0, 3, 2]) == pytest.approx(0.5)         # inside: 4 / 8


def test_greedy_merge_by_hand():
    """Two nearly equal boxes (IoU 0.9 -> merged) with scores 0.3 + 0.3 beat a lone box
    scoring 0.5; the merged box is their average; a far box is never merged."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], float)
    merged, scores, members = greedy_merge(boxes, [0.3, 0.3, 0.5])
    assert members == [[0, 1], [2]]
    assert scores == pytest.approx([0.6, 0.5])
    assert merged[0] == pytest.approx([0, 0, 10, 9.5])
    # Below the threshold nothing merges and the single best box wins.
    _, scores, members = greedy_merge(boxes, [0.3, 0.3, 0.5], threshold=0.95)
    assert members[0] == [2] and len(members) == 3
    # Three boxes chain: the first pair's average then absorbs the third.
    chain = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10]], float)
    merged, _, members = greedy_merge(chain, [1, 1, 1], threshold=0.6)
    assert sorted(members[0]) == [0, 1, 2] and merged[0] == pytest.approx([1, 0, 11, 10])


def test_box_parametrisation_round_trips():
    boxes = np.array([[2, 4, 10, 30], [0, 0, 32, 32]], float)
    assert to_params(boxes, 32)[1] == pytest.approx([0.5, 0.5, 1, 1])
    assert from_params(to_params(boxes, 32), 32) == pytest.approx(boxes)


def test_euclidean_loss_gradient_and_a_wrong_one_caught():
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    loss, dpred = euclidean_loss(pred, target)
    assert loss == pytest.approx(((pred - target) ** 2).sum() / 10)
    numeric = numerical_gradient(lambda: euclidean_loss(pred, target)[0], pred)
    assert relative_error(dpred, numeric).max() < LAYER_TOL
    assert relative_error(dpred * 5, numeric).max() > 0.5      # forgetting the 1/N shows
    with pytest.raises(ValueError, match="target"):
        euclidean_loss(pred, target[:3])


@pytest.fixture(scope="module")
def classifier():
    return build_vgg("A", num_classes=10, input_size=32, width=1 / 16, fc_width=8, seed=2)


@pytest.mark.parametrize("head, outputs", [("scr", 4), ("pcr", 40)])
def test_heads_shapes_and_the_pcr_loss_touches_only_the_true_class(classifier, head, outputs):
    net = localisation_net(classifier, head).astype(np.float64).eval()
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32))
    out = net.forward(x)
    assert out.shape == (3, outputs)
    for name in ("conv1_1.weight", "fc7.weight"):                  # copied from the classifier
        assert np.array_equal(net.params[name], classifier.params[name].astype(np.float64))
    labels, targets = np.array([1, 7, 7]), np.full((3, 4), 0.5)
    assert class_boxes(net, out, labels).shape == (3, 4)
    loss, dout = box_loss(net, out, labels, targets)
    if head == "pcr":
        assert np.array_equal(class_boxes(net, out, labels), out.reshape(3, 10, 4)[[0, 1, 2],
                                                                                   labels])
        touched = np.abs(dout.reshape(3, 10, 4)).sum(axis=2) > 0
        assert np.array_equal(np.argwhere(touched)[:, 1], labels)
    numeric = numerical_gradient(lambda: box_loss(net, out, labels, targets)[0], out)
    assert relative_error(dout, numeric).max() < LAYER_TOL


def test_fine_tuning_fc_only_leaves_the_convolutions_bit_identical(classifier):
    train, val = synthetic_splits(24, 8, size=34, seed=1)
    net = localisation_net(classifier, "pcr")
    before = {k: v.copy() for k, v in net.params.items()}
    history = train_localiser(net, train, val, mean=np.full(3, 120.0), fine_tune="fc",
                              epochs=1, batch_size=12, log=None)
    assert len(history) == 1 and 0 <= history[0]["val_error"] <= 1
    for name in conv_layer_names(net):
        assert np.array_equal(net.params[f"{name}.weight"], before[f"{name}.weight"]), name
    for name in ("fc6.weight", "fc8.weight"):
        assert not np.array_equal(net.params[name], before[name]), name


def test_annotation_file_gives_each_image_its_box(tmp_path):
    from PIL import Image
    for cls, names in (("a", ["1.png", "2.png"]), ("b", ["x.png"])):
        (tmp_path / cls).mkdir()
        for name in names:
            Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / cls / name)
    (tmp_path / "boxes.csv").write_text("file,x0,y0,x1,y1\nb/x.png,1,2,3,4\n"
                                        "a/2.png,0,0,30,20\na/1.png,5,5,6,6\n")
    data = load_image_folder_with_boxes(tmp_path)
    assert data.boxes.tolist() == [[5, 5, 6, 6], [0, 0, 30, 20], [1, 2, 3, 4]]
    (tmp_path / "bad.csv").write_text("file,x0,y0,x1,y1\na/1.png,5,5,6,6\n")
    with pytest.raises(ValueError, match="no box"):
        load_image_folder_with_boxes(tmp_path, tmp_path / "bad.csv")
    (tmp_path / "out.csv").write_text("file,x0,y0,x1,y1\nb/x.png,1,2,31,4\n"
                                      "a/2.png,0,0,30,20\na/1.png,5,5,6,6\n")
    with pytest.raises(ValueError, match=r"boxes\[2\]"):         # x1 = 31 > width 30
        load_image_folder_with_boxes(tmp_path, tmp_path / "out.csv")


def test_dataset_rejects_boxes_outside_their_images():
    images = np.zeros((2, 10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match=r"boxes\[1\]"):
        ImageDataset(images, [0, 0], ("a",), [[0, 0, 5, 5], [6, 0, 5, 5]])


def test_localise_and_evaluate_from_the_command_line(tmp_path, capsys):
    tiny = ["--width", "0.0625", "--fc-width", "8", "--train-size", "40", "--val-size", "20",
            "--image-size", "34", "--batch-size", "20", "--no-progress", "--no-plot"]
    run = tmp_path / "cls"
    assert main(["train", "--epochs", "1", "--run-dir", str(run), *tiny]) == 0
    assert main(["localise", str(run), "--head", "pcr", "--fine-tune", "fc", "--epochs", "1"]) == 0
    loc = f"{run}-loc-pcr-fc"
    assert f"localisation run: {loc}" in capsys.readouterr().out
    assert main(["evaluate", loc]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "localisation error" in line]
    assert len(lines) == 3 and lines[0].startswith("centre crop")
    assert main(["localise", str(run), "--head", "pcr", "--fine-tune", "fc"]) == 2   # exists
    assert "already holds a run" in capsys.readouterr().err


def test_a_stopped_localisation_run_resumes_bit_identically(tmp_path, capsys):
    tiny = ["--width", "0.0625", "--fc-width", "8", "--train-size", "40", "--val-size", "20",
            "--image-size", "34", "--batch-size", "16", "--no-progress", "--no-plot"]
    run = tmp_path / "cls"
    assert main(["train", "--epochs", "1", "--run-dir", str(run), *tiny]) == 0
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(["localise", str(run), "--epochs", "3", "--out", str(whole)]) == 0
    assert main(["localise", str(run), "--epochs", "1", "--out", str(stopped)]) == 0
    assert main(["localise", "--resume", str(stopped), "--head", "pcr"]) == 2   # its own head
    assert "drop --head" in capsys.readouterr().err
    assert main(["localise", "--resume", str(stopped), "--epochs", "3"]) == 0
    (a, _), (b, _) = (load_checkpoint(path) for path in (whole, stopped))
    assert a.keys() == b.keys() and any(k.startswith("velocity/") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    ma, mb = (load_checkpoint(path)[1] for path in (whole, stopped))
    assert ma["epoch"] == mb["epoch"] == 3
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in ma["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in mb["history"]]
    assert main(["localise", "--resume", str(stopped), "--epochs", "2"]) == 2   # already past
    assert "already trained 3 epochs" in capsys.readouterr().err


def test_the_recorded_results_command_runs_end_to_end_and_reports_every_baseline(tmp_path):
    """The command that makes docs/results/localisation.json, at its "tiny" plan (numbers
    meaningless, structure the same): every localisation error has the mean box's beside it,
    the GAP/FC parameter counts are the models', and a second call (one process instead of
    two) reuses the finished runs and gives the same tables."""
    import json

    from minivgg.localise.tables import PLANS
    from minivgg.localise.tables import main as tables_main
    out, work = tmp_path / "r.json", tmp_path / "work"
    tables_main(["--out", str(out), "--work", str(work), "--plan", "tiny"])
    r = json.loads(out.read_text())
    assert r["command"].endswith("--plan tiny") and r["minutes"] >= 0
    loc = r["localisation"]
    assert len(loc["table8"]) == 5 and len(loc["table9"]) == 4
    assert [row["lr"] for row in loc["table8"]] == [1e-2] * 4 + [1e-3]
    assert all(row["baseline"] == loc["baselines"]["mean_box"] for row in loc["table8"])
    assert all({"top1", "top5"} <= set(row["baseline"]) for row in loc["table9"])
    recipe = PLANS["tiny"]["recipe"]
    for head in ("fc", "gap"):
        model = build_vgg("A", num_classes=10, input_size=32, head=head, init=None,
                          width=recipe["width"], fc_width=recipe["fc_width"])
        assert r["gap_vs_fc"][head]["params"] == model.num_params()
        assert len(r["gap_vs_fc"][head]["val_top1"]) == len(PLANS["tiny"]["seeds"])
    rows = r["appendix_b"]["rows"]
    assert [row["per_class"] for row in rows] == list(PLANS["tiny"]["per_class"])
    assert all(0 <= row["linear"] <= 1 and 0 <= row["scratch"] <= 1 for row in rows)
    stamp = (work / "cls-centred-fc-0-loc-scr-all" / "checkpoint.npz").stat().st_mtime_ns
    tables_main(["--out", str(out), "--work", str(work), "--plan", "tiny", "--workers", "1"])
    assert (work / "cls-centred-fc-0-loc-scr-all" / "checkpoint.npz").stat().st_mtime_ns == stamp
    assert json.loads(out.read_text())["localisation"] == loc


def test_the_committed_record_is_of_the_default_recipe_and_beats_the_mean_box():
    """docs/results/localisation.json must describe what ``minivgg localise`` does now: its rows
    at the default lr ran the default epochs, and fine-tuning all layers there ends far below the
    mean box (a recipe collapsed to the mean box, or a record left behind by a changed default,
    fails here; remake it with the command in the JSON)."""
    import json
    import pathlib

    from minivgg.localise.net import DEFAULT_LR
    from minivgg.localise.run import DEFAULT_EPOCHS
    path = pathlib.Path(__file__).parents[1] / "docs" / "results" / "localisation.json"
    table8 = json.loads(path.read_text())["localisation"]["table8"]
    default = [row for row in table8 if row["lr"] == DEFAULT_LR]
    assert {(row["head"], row["fine_tuned"]) for row in default} == {
        (head, tuned) for head in ("SCR", "PCR") for tuned in ("all layers", "fc6-fc8")}
    assert all(row["epochs"] == DEFAULT_EPOCHS == len(row["curve"]) for row in default)
    for row in default:
        if row["fine_tuned"] == "all layers":
            assert row["centre_crop_gt_error"] < row["baseline"] - 0.3, row


def test_the_results_figure_is_written_atomically(tmp_path, monkeypatch):
    """A figure that fails half-way through saving leaves the earlier file whole and no partial
    file under the name (``--figure`` of ``python -m minivgg.localise.tables``)."""
    import json
    import pathlib

    import matplotlib.figure

    from minivgg.localise.tables import figure
    record = json.loads((pathlib.Path(__file__).parents[1] / "docs" / "results"
                         / "localisation.json").read_text())
    path = tmp_path / "loc.png"
    figure(record, str(path))
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")

    def half_then_fail(self, target, **kwargs):
        out = open(target, "wb") if isinstance(target, str) else target
        out.write(before[:100])
        out.flush()
        raise OSError("disk full")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        figure(record, str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["loc.png"]


@pytest.mark.parametrize("name, magic", [("loc.pdf", b"%PDF"), ("loc.svg", b"<?xml"),
                                         ("loc", b"\x89PNG")])
def test_the_results_figure_is_in_the_format_its_name_says(name, magic, tmp_path):
    """--figure x.pdf wrote PNG bytes under the name once the save became atomic."""
    import json
    import pathlib

    from minivgg.localise.tables import figure
    record = json.loads((pathlib.Path(__file__).parents[1] / "docs" / "results"
                         / "localisation.json").read_text())
    figure(record, str(tmp_path / name))
    assert (tmp_path / name).read_bytes().startswith(magic)
