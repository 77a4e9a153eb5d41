"""The trainer: resuming is bit-identical, divergence stops cleanly, checkpoints are atomic, and
the pieces (History, error rates, the progress bar) do what they say."""

import io
import os

import numpy as np
import pytest

from minivgg.data import synthetic_splits
from minivgg.evaluate import posteriors, top_k_error
from minivgg.optim import SGD, StepSchedule
from minivgg.train import (
    BEST,
    CHECKPOINT,
    HISTORY,
    History,
    NonFiniteLossError,
    Progress,
    Trainer,
    error_rates,
    load_checkpoint,
    model_from_checkpoint,
)
from minivgg.vgg import build_vgg


@pytest.fixture(scope="module")
def data():
    return synthetic_splits(48, 20, size=34, seed=3)


def tiny_model(seed=0):
    return build_vgg("A", num_classes=10, input_size=32, width=1 / 16, fc_width=8, seed=seed,
                     input_std=60.0)


def make_trainer(data, run_dir, **kwargs):
    model = tiny_model()
    kwargs.setdefault("optimizer", SGD(model, lr=0.01))
    return Trainer(model, *data, batch_size=16, run_dir=run_dir, progress=False, log=None,
                   seed=5, **kwargs)


def test_resume_ends_bit_identical_to_an_uninterrupted_run(data, tmp_path):
    straight = make_trainer(data, tmp_path / "straight")
    straight.fit(3)

    interrupted = make_trainer(data, tmp_path / "resumed")
    interrupted.fit(1)
    del interrupted                                  # a new process would start from the files
    resumed = Trainer.resume(tmp_path / "resumed", *data, progress=False, log=None)
    assert resumed.epoch == 1 and len(resumed.history) == 1
    resumed.fit(3)

    for name, value in straight.model.params.items():
        assert np.array_equal(value, resumed.model.params[name]), name
    for name, value in straight.optimizer.velocity.items():
        assert np.array_equal(value, resumed.optimizer.velocity[name]), name
    assert straight.history["val_loss"] == resumed.history["val_loss"]
    assert straight.rng.bit_generator.state == resumed.rng.bit_generator.state
    # The run really moved, so equality is not two copies of the initial weights.
    assert not np.array_equal(straight.model.params["fc8.weight"],
                              tiny_model().params["fc8.weight"])


def test_resume_keeps_a_step_schedule_and_the_learning_rate(data, tmp_path):
    model = tiny_model()
    optimizer = SGD(model, lr=0.01)
    trainer = Trainer(model, *data, optimizer=optimizer,
                      schedule=StepSchedule(optimizer, milestones=(1,)), batch_size=16,
                      run_dir=tmp_path, progress=False, log=None)
    trainer.fit(1)
    resumed = Trainer.resume(tmp_path, *data, progress=False, log=None)
    assert isinstance(resumed.schedule, StepSchedule) and resumed.schedule.epoch == 1
    assert resumed.optimizer.lr == pytest.approx(0.001)
    assert resumed.history[0]["lr"] == 0.01


def test_checkpoint_holds_what_the_brief_lists(data, tmp_path):
    trainer = make_trainer(data, tmp_path)
    trainer.fit(1)
    arrays, meta = load_checkpoint(tmp_path)
    assert {f"param/{k}" for k in trainer.model.params} <= set(arrays)
    assert {f"velocity/{k}" for k in trainer.model.params} <= set(arrays)
    # The mean is the training set's, computed here from first principles.
    np.testing.assert_allclose(arrays["mean"],
                               data[0].images.reshape(-1, 3).astype(np.float64).mean(axis=0))
    assert meta["epoch"] == 1 and meta["model_config"]["config"] == "A"
    assert set(meta["dropout_rngs"]) == {"drop6", "drop7"}
    assert meta["rng"]["bit_generator"] == "PCG64"
    assert meta["schedule"]["kind"] == "plateau" and meta["optimizer"]["lr"] == 0.01
    assert History.load(tmp_path / HISTORY).records == meta["history"]
    model, _, _ = model_from_checkpoint(tmp_path)
    for name, value in trainer.model.params.items():
        assert np.array_equal(model.params[name], value)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    trainer = make_trainer(data, tmp_path)
    trainer.fit(1)
    good = {k: v.copy() for k, v in trainer.model.params.items()}
    with open(tmp_path / CHECKPOINT, "rb") as f:
        saved = f.read()
    trainer.optimizer.lr = 1e30                      # diverges within a step or two
    with np.errstate(all="ignore"), pytest.raises(NonFiniteLossError) as caught:
        trainer.fit(3)
    error = caught.value
    assert error.epoch == 2 and error.step >= 2 and not np.isfinite(error.loss)
    assert "epoch 2" in str(error) and str(tmp_path / CHECKPOINT) in str(error)
    with open(tmp_path / CHECKPOINT, "rb") as f:
        assert f.read() == saved
    model, _, meta = model_from_checkpoint(tmp_path)
    assert meta["epoch"] == 1
    for name, value in good.items():
        assert np.array_equal(model.params[name], value)


def test_a_failure_while_writing_leaves_the_old_checkpoint_and_no_temporary_file(
        data, tmp_path, monkeypatch):
    trainer = make_trainer(data, tmp_path)
    trainer.fit(1)
    with open(tmp_path / CHECKPOINT, "rb") as f:
        saved = f.read()

    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_written)
    trainer.epoch = 7                                 # a different checkpoint would be written
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    assert sorted(os.listdir(tmp_path)) == [".lock", BEST, CHECKPOINT, HISTORY]
    with open(tmp_path / CHECKPOINT, "rb") as f:
        assert f.read() == saved


def test_history_round_trips_through_json(tmp_path):
    history = History([{"epoch": 1, "val_top1": 0.5}, {"epoch": 2, "val_top1": 0.25}])
    assert History.from_json(history.to_json()).records == history.records
    history.save(tmp_path / "h.json")
    assert History.load(tmp_path / "h.json")["val_top1"] == [0.5, 0.25]
    assert history[-1]["epoch"] == 2 and len(history) == 2
    with pytest.raises(ValueError, match="records"):
        History.from_json("[1, 2]")


def test_error_rates_worked_by_hand():
    scores = np.array([[0.9, 0.1, 0.0, 0.0, 0.0, 0.0],      # true 0: rank 0
                       [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],      # true 5: rank 5 (top-5 miss)
                       [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],      # true 1: rank 4
                       [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]])     # true 2: rank 0
    errors = error_rates(scores, np.array([0, 5, 1, 2]))
    assert errors == {"top1": 0.5, "top5": 0.25}
    assert set(error_rates(scores[:, :4], np.array([0, 1, 1, 2]))) == {"top1"}


def test_validation_and_fit_arguments_are_checked(data):
    model = tiny_model()
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(model, *data, batch_size=0)
    with pytest.raises(ValueError, match="val_set"):
        Trainer(model, data[0], data[1].images)
    with pytest.raises(ValueError, match="epochs"):
        Trainer(model, *data, progress=False).fit(-1)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint("/nonexistent/run")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_prints_a_few_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress(100, "epoch 1", stream=stream)
    for step in range(1, 101):
        bar.update(step, "loss 1.0")
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text
    assert text.splitlines() == ["epoch 1 25/100 loss 1.0", "epoch 1 50/100 loss 1.0",
                                 "epoch 1 75/100 loss 1.0"]


def test_progress_redraws_in_place_on_a_terminal():
    stream = Terminal()
    bar = Progress(4, "epoch 1", stream=stream)
    for step in range(1, 5):
        bar.update(step)
    bar.close()
    text = stream.getvalue()
    assert "\n" not in text and text.count("\r") >= 2     # first draw, the last, the erase
    assert "[" + "#" * 24 + "] 4/4" in text


def test_fit_prints_one_summary_line_per_epoch(data, tmp_path):
    lines = []
    trainer = make_trainer(data, None)
    trainer.log = lines.append
    history = trainer.fit(2)
    assert len(lines) == 2 and lines[1].startswith("epoch   2/2")
    for word in ("loss", "top-1 err", "top-5 err", "lr 1e-02", "img/s"):
        assert word in lines[0]
    assert history["epoch"] == [1, 2]
    assert all(0 <= e <= 1 for e in history["val_top1"] + history["train_top5"])


def test_plot_curves_draws_loss_and_errors_per_epoch():
    import matplotlib
    matplotlib.use("Agg")
    from minivgg.viz import plot_curves
    history = History([{"epoch": e, "lr": lr, "train_loss": 2.0 / e, "val_loss": 2.1 / e,
                        "train_top1": 0.5 / e, "val_top1": 0.6 / e, "train_top5": 0.1 / e,
                        "val_top5": 0.2 / e} for e, lr in ((1, 0.01), (2, 0.01), (3, 0.001))])
    fig = plot_curves(history)
    loss_ax, error_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines() if line.get_label()[0] != "_"] == [
        "training", "validation"]
    labels = [line.get_label() for line in error_ax.get_lines() if line.get_label()[0] != "_"]
    assert labels == ["training top-1", "training top-5", "validation top-1",
                      "validation top-5"]
    np.testing.assert_allclose(error_ax.get_lines()[2].get_ydata(), [60, 30, 20])   # val top-1 %
    assert loss_ax.get_xlabel() == "epoch" and "nats" in loss_ax.get_ylabel()
    assert error_ax.get_ylabel() == "error (%)"
    # The lr cut before epoch 3: one dotted line on each axis, at 2.5.
    cuts = [line for line in error_ax.get_lines() if line.get_linestyle() == ":"]
    assert len(cuts) == 1 and cuts[0].get_xdata()[0] == 2.5
    assert "validation top-1 error 20.0% after 3 epochs" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="empty"):
        plot_curves([])


def test_plot_confusion_colours_row_fractions_and_writes_counts():
    import matplotlib
    matplotlib.use("Agg")
    from minivgg.viz import plot_confusion
    matrix = np.array([[8, 2, 0], [1, 1, 0], [0, 0, 5]])
    fig = plot_confusion(matrix, ["disc", "ring", "plus"])
    ax = fig.axes[0]
    assert len(fig.axes) == 2                                  # the matrix and its colour bar
    np.testing.assert_allclose(ax.images[0].get_array(),
                               [[0.8, 0.2, 0], [0.5, 0.5, 0], [0, 0, 1]])
    assert [t.get_text() for t in ax.texts] == ["8", "2", "0", "1", "1", "0", "0", "0", "5"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["disc", "ring", "plus"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert ax.get_title() == "Confusion matrix: 17 images, accuracy 82.4%"
    with pytest.raises(ValueError, match="K = 2"):
        plot_confusion(matrix, ["a", "b"])


def test_a_standardised_model_is_rebuilt_with_its_standardise_layer(data, tmp_path):
    model = build_vgg("A", num_classes=10, input_size=32, width=1 / 16, fc_width=8,
                      input_std=50.0)
    Trainer(model, *data, batch_size=16, run_dir=tmp_path, progress=False, log=None).fit(1)
    rebuilt, _, meta = model_from_checkpoint(tmp_path)
    assert meta["model_config"]["input_std"] == 50.0 and rebuilt["standardise"].std == 50.0
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert np.array_equal(rebuilt.eval().forward(x), model.eval().forward(x))


@pytest.mark.parametrize("scale, q", [(40, 40), ((36, 44), 40)])
def test_validation_tests_at_the_training_scale(data, tmp_path, scale, q):
    """Validation uses the paper's Q for the training scale, not the images' own size (34)."""
    trainer = make_trainer(data, tmp_path, scale=scale)
    val = trainer.validate()
    probs = posteriors(trainer.model, data[1].images, mean=trainer.mean, scales=(q,))
    assert val["top1"] == top_k_error(probs, data[1].labels, 1)
    expected_loss = -np.mean(np.log(probs[np.arange(len(data[1].labels)), data[1].labels]))
    assert val["loss"] == pytest.approx(expected_loss)
    unscaled = posteriors(trainer.model, data[1].images, mean=trainer.mean)
    assert not np.allclose(probs, unscaled)
