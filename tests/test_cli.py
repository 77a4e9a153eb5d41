"""The command line, end to end on tiny settings: train, resume, evaluate, summary, --help, and
errors that are messages rather than tracebacks."""

import json
import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

from minivgg.cli import build_parser, main
from minivgg.data import synthetic_splits
from minivgg.recipe import RECIPE
from minivgg.train import BEST, CHECKPOINT, HISTORY, load_checkpoint, model_from_checkpoint

matplotlib.use("Agg")

TINY = ["--width", "0.0625", "--fc-width", "8", "--train-size", "40", "--val-size", "20",
        "--image-size", "34", "--batch-size", "20", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny run shared by the tests that only read it."""
    path = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "--epochs", "1", "--run-dir", str(path), *TINY]) == 0
    return path


def test_train_writes_checkpoint_history_model_and_curves(run_dir, capsys):
    assert sorted(os.listdir(run_dir)) == [".lock", BEST, CHECKPOINT, "curves.png", HISTORY]
    with open(run_dir / HISTORY) as f:
        records = json.load(f)["records"]
    assert [r["epoch"] for r in records] == [1]
    model, _, _ = model_from_checkpoint(run_dir)
    assert model.config["width"] == 0.0625 and model.config["fc_width"] == 8
    # The leading Standardise divides by the training pixels' std, computed here directly.
    train = synthetic_splits(40, 20, size=34, seed=0)[0]
    std = np.sqrt(train.images.reshape(-1, 3).astype(np.float64).var(axis=0, ddof=1).mean())
    assert list(model.layers)[:2] == ["standardise", "conv1_1"]
    assert model["standardise"].std == pytest.approx(std, rel=1e-9)


def test_no_standardise_trains_the_network_as_built(tmp_path):
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path), "--no-plot",
                 "--no-standardise", *TINY]) == 0
    model, _, meta = model_from_checkpoint(tmp_path)
    assert meta["model_config"]["input_std"] is None and list(model.layers)[0] == "conv1_1"


def test_train_names_a_run_folder_and_prints_it_at_start_and_end(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--runs-dir", str(tmp_path), "--no-plot",
                 *TINY]) == 0
    (name,) = os.listdir(tmp_path)
    assert name.startswith("A-")
    out = capsys.readouterr().out.splitlines()
    path = str(tmp_path / name)
    assert out[0] == f"run folder: {path}"
    assert out[-1].endswith(f"run folder: {path}") and "validation top-1 error" in out[-1]
    assert any(line.startswith("epoch   1/1  loss") for line in out)
    assert "curves.png" not in os.listdir(path)


def test_warm_start_copies_the_shallower_nets_first_four_convolutions_and_fc_layers(
        run_dir, tmp_path, capsys):
    # lr ~ 0: the epoch leaves the weights where the warm start put them.
    assert main(["train", "--config", "D", "--epochs", "1", "--warm-start", str(run_dir),
                 "--lr", "1e-12", "--run-dir", str(tmp_path / "D"), "--no-plot", *TINY]) == 0
    shared = ["conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8"]
    assert f"warm start from {run_dir}: {', '.join(shared)}" in capsys.readouterr().out
    source = model_from_checkpoint(run_dir / BEST)[0]
    deep, _, meta = model_from_checkpoint(tmp_path / "D")
    assert meta["settings"]["warm_start"] == str(run_dir)
    for name in shared:
        np.testing.assert_allclose(deep[name].params["weight"], source[name].params["weight"],
                                   rtol=1e-6, atol=1e-9)
    # A layer A does not have starts from --init, not from anything of A's.
    assert deep["conv1_2"].params["weight"].shape[1] == source["conv1_1"].params["weight"].shape[0]


@pytest.mark.parametrize("argv, message", [
    (["--width", "0.125"], "--warm-start"),            # other widths: shapes differ, named
    (["--resume", "RUN"], "--warm-start"),
    (["--warm-start", "/nonexistent/run"], "does not exist"),
])
def test_warm_start_refuses_what_it_cannot_copy(run_dir, tmp_path, capsys, argv, message):
    argv = [str(run_dir) if a == "RUN" else a for a in argv]
    tiny = [a for a in TINY if a not in ("--width", "0.0625")] if "--width" in argv else TINY
    assert main(["train", "--config", "B", "--epochs", "1", "--warm-start", str(run_dir),
                 "--run-dir", str(tmp_path / "B"), "--no-plot", *tiny, *argv]) == 2
    assert message in capsys.readouterr().err


def test_resume_continues_to_the_new_epoch_count(tmp_path, capsys):
    path = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--run-dir", str(path), "--no-plot", *TINY]) == 0
    assert main(["train", "--resume", str(path), "--epochs", "2", "--no-progress",
                 "--no-plot"]) == 0
    arrays, meta = load_checkpoint(path)
    assert meta["epoch"] == 2 and [r["epoch"] for r in meta["history"]] == [1, 2]
    assert meta["settings"]["epochs"] == 2 and meta["settings"]["train_size"] == 40
    assert f"resuming {path}" in capsys.readouterr().out


def test_evaluate_prints_errors_per_method_and_saves_a_confusion_matrix(run_dir, tmp_path,
                                                                          capsys):
    png = tmp_path / "confusion.png"
    assert main(["evaluate", str(run_dir), "--method", "center", "dense+multicrop",
                 "--grid", "2", "--scales", "34", "--flip", "--confusion", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"{BEST} (epoch 1), 20 validation images" in out
    lines = {line.split()[0]: line for line in out.splitlines() if "top-1 error" in line}
    assert set(lines) == {"center", "dense+multicrop"}
    assert "top-5 error" in lines["center"]
    assert png.stat().st_size > 0


def test_summary_prints_the_layer_table(capsys):
    assert main(["summary", "vgg16", "--input", "224"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("VGG D, 1000 classes, built for 224x224")
    assert "conv5_3" in out and "fc8" in out
    assert "138,357,544" in out                       # Table 2: VGG-16's parameters


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "/nonexistent/run"], "does not exist"),
    (["train", "--resume", "/nonexistent/run"], "does not exist"),
    (["train", "--image-size", "16", "--input", "32"], "--image-size"),
    (["summary", "A", "--input", "20"], "input_size 20"),
    (["train", "--scale", "30", *TINY], "scale: S = 30 is smaller than input_size 32"),
])
def test_bad_arguments_are_one_line_messages(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # a run folder would go to ./runs
    assert main(argv) == 2
    assert os.listdir(tmp_path) == []                # and none was made
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_empty_folder_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert f"has no {CHECKPOINT}" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--config", "F"], ["train", "--schedule", "cosine"],
                                  ["train", "--epochs", "0"], ["summary", "Z"],
                                  ["train", "--momentum", "1.5"]])
def test_argparse_rejects_bad_choices(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_help_lists_every_option_with_its_default():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("train", "evaluate", "summary"):
        text = commands[name].format_help()
        for action in commands[name]._actions:
            if action.option_strings and action.dest != "help":
                assert action.option_strings[-1] in text, (name, action.dest)
        assert text.count("(default:") >= len([a for a in commands[name]._actions
                                               if a.option_strings and a.dest != "help"])
    train_help = " ".join(commands["train"].format_help().split())
    assert "(default: 0.01)" in train_help and "(default: 0.9)" in train_help
    assert f"epochs in total; with --resume: the run's own (default: {RECIPE.epochs})" in train_help


def test_python_dash_m_minivgg_help_runs_in_a_subprocess():
    result = subprocess.run([sys.executable, "-m", "minivgg", "train", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--resume RUN_DIR" in result.stdout and "(default:" in result.stdout
