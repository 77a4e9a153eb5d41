"""Bad arguments at the command line: every numeric option of every command refuses what is not
a number it can use, and values too large to use are one clear line naming the option, before
any work, any folder or any allocation (issue #14's sweep, again for this round's commands)."""

import argparse
import os
import tracemalloc

import numpy as np
import pytest
from test_boundaries_checkpoints import edited_run, make_run

from minivgg.cli import build_parser, main
from minivgg.cli.common import config, scale
from minivgg.recipe import RECIPE
from minivgg.vgg import build_vgg

NOT_NUMBERS = ("nan", "inf", "-inf", "1e400", "", " ", "abc", "-1")
MB = 2**20


def _typed_options(parser, prefix=()):
    """(command words, option, its type) of every option with a type, sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _typed_options(sub, (*prefix, name))
        elif action.type is not None and action.option_strings:
            yield " ".join(prefix), action.option_strings[-1], action.type


OPTIONS = list(_typed_options(build_parser()))


def test_the_sweep_sees_every_command():
    commands = {command.split()[0] for command, _, _ in OPTIONS}
    assert {"train", "evaluate", "summary", "localise", "features", "grade",
            "assignment"} <= commands
    assert len(OPTIONS) >= 35


@pytest.mark.parametrize("command, option, kind", OPTIONS,
                         ids=[f"{c} {o}" for c, o, _ in OPTIONS])
def test_every_numeric_option_refuses_what_is_not_a_usable_number(command, option, kind):
    # Bare int/float would take "nan", "inf" or "-1" (grade --timeout -1 gave every student 0
    # points; localise --seed -1 failed after loading the run, naming no option).
    assert kind not in (int, float), f"{command} {option} uses bare {kind.__name__}"
    if kind in (config, scale):
        return
    for text in NOT_NUMBERS:
        with pytest.raises((argparse.ArgumentTypeError, ValueError)):
            kind(text)


@pytest.mark.parametrize("argv, option", [
    (["grade", "x", "--timeout", "-1"], "--timeout"),
    (["grade", "x", "--timeout", "1e23"], "--timeout"),     # OverflowError in setrlimit
    (["grade", "x", "--memory", "0"], "--memory"),
    (["grade", "x", "--seed", "-1"], "--seed"),
    (["localise", "r", "--seed", "-1"], "--seed"),
    (["assignment", "make", "out", "--seed", "-1"], "--seed"),
])
def test_the_parser_names_the_option(argv, option, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    assert f"argument {option}: must be" in capsys.readouterr().err


def _error(argv, capsys):
    """(exit status, stderr) of ``minivgg argv``, which must not raise."""
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


TINY = ["--width", "0.0625", "--fc-width", "8", "--train-size", "40", "--val-size", "20",
        "--image-size", "34", "--batch-size", "20", "--no-progress", "--no-plot", "--epochs", "1"]
HUGE = "99999999999999999999999"


@pytest.mark.parametrize("option, says", [
    ("--train-size", "--train-size 99999999999999999999999"),   # was: '--data: Maximum allowed
    ("--val-size", "--val-size 99999999999999999999999"),       # size exceeded' (no --data given)
    ("--image-size", "over the 8 GiB limit"),
    ("--scale", "scale: S = 99999999999999999999999 is more than 8 times"),   # was a traceback
    ("--width", "over the 16 GiB limit"),           # was 'Maximum allowed dimension exceeded'
    ("--fc-width", "over the 16 GiB limit"),
])
def test_sizes_too_large_to_hold_are_refused_before_any_folder_or_allocation(option, says,
                                                                             tmp_path, capsys):
    argv = list(TINY)
    if option in argv:
        argv[argv.index(option) + 1] = HUGE
    else:
        argv += [option, HUGE]
    tracemalloc.start()
    status, err = _error(["train", "--run-dir", str(tmp_path / "run"), *argv], capsys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert status == 2 and says in err, err
    assert not (tmp_path / "run").exists()
    assert peak < 50 * MB


def test_a_large_training_scale_is_refused_by_the_recipe():
    # --scale 100000 with a 32-pixel crop: a (20, 3, 100000, 100000) batch, 2.2 TiB, after the
    # run folder was made
    with pytest.raises(ValueError, match="scale: S = 100000 is more than 8 times input_size 32"):
        RECIPE.replace(scale=100000)
    with pytest.raises(ValueError, match="S = 300"):
        RECIPE.replace(scale=(40, 300))
    assert RECIPE.replace(scale=(32, 256)).scale == (32, 256)


@pytest.mark.parametrize("option", ["--fc-width", "--num-classes", "--width"])
def test_summary_counts_too_large_for_int64_are_a_message(option, capsys):
    status, err = _error(["summary", "A", option, HUGE], capsys)   # was OverflowError
    assert status == 2 and "do not fit in 64-bit integers" in err


def test_summary_names_trained_at_when_that_is_the_size_that_does_not_fit(capsys):
    status, err = _error(["summary", "A", "--trained-at", "48", "--input", "64"], capsys)
    assert status == 2 and "error: --trained-at 48: input_size 48 does not fit" in err


def test_a_multicrop_grid_is_bounded():
    model = build_vgg("A", num_classes=3, input_size=32, width=1 / 16, fc_width=8)
    images = np.zeros((1, 32, 32, 3), np.uint8)
    from minivgg.evaluate import posteriors
    for grid in (10**19, 17, True, 0):          # 10**19: an endless loop before
        with pytest.raises(ValueError, match=r"grid must be an int in \[1, 16\]"):
            posteriors(model, images, mean=np.zeros(3), method="multicrop", grid=grid)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "run")


@pytest.mark.parametrize("source, says", [
    ("missing", "--warm-start {tmp}/missing: run folder '{tmp}/missing' does not exist"),
    ("broken", "--warm-start {tmp}/broken: corrupted checkpoint: "),
])
def test_warm_start_errors_name_the_option(source, says, tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "best.npz").write_bytes(b"PK\x03\x04 not a zip")
    status, err = _error(["train", "--config", "B", "--run-dir", str(tmp_path / "new"),
                          "--warm-start", str(tmp_path / source), *TINY], capsys)
    assert status == 2 and says.format(tmp=tmp_path) in err
    assert not (tmp_path / "new").exists()


def test_a_missing_data_folder_is_named_by_where_it_came_from(tmp_path, run_dir, capsys):
    status, err = _error(["train", "--run-dir", str(tmp_path / "new"), "--data",
                          str(tmp_path / "none"), *TINY], capsys)
    assert status == 2 and "error: --data: data not found" in err
    status, err = _error(["train", "--resume", str(run_dir), "--data", str(tmp_path / "none")],
                         capsys)
    assert status == 2 and "error: --data: data not found" in err
    # A run whose own data folder has gone: no --data was given (the message said "--data: ")
    edited = edited_run(run_dir, tmp_path / "moved", settings={"data": str(tmp_path / "gone")})
    status, err = _error(["train", "--resume", str(edited)], capsys)
    assert status == 2 and "error: the run's data folder: data not found" in err


def test_features_checks_out_before_the_work_and_refuses_a_localisation_run(tmp_path, run_dir,
                                                                          capsys, monkeypatch):
    import minivgg.features
    monkeypatch.setattr(minivgg.features, "extract_features", None)   # must not be reached
    for out, says in ((tmp_path / "no" / "f.npz", "its folder"), (tmp_path, "is a folder")):
        status, err = _error(["features", str(run_dir), "--data", str(tmp_path), "--out",
                              str(out), "--force"], capsys)      # were tracebacks, after the work
        assert status == 2 and f"--out {out}: {says}" in err
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_features_names_the_image_too_small_for_the_network():
    from minivgg.features import extract_features
    model = build_vgg("A", num_classes=3, input_size=32, width=1 / 16, fc_width=8)
    images = [np.zeros((40, 40, 3), np.uint8), np.zeros((1, 1, 3), np.uint8)]
    # was "kernel size 2 is larger than the padded input size 1", from a max-pool
    with pytest.raises(ValueError, match=r"shortest side \(1, image 1\) is smaller than the "
                                         r"network's input size 32; pass scales"):
        extract_features(model, images, mean=np.zeros(3))


def test_localise_refuses_a_file_as_out_and_an_out_it_cannot_make(tmp_path, run_dir, capsys):
    (tmp_path / "file").write_text("mine")
    status, err = _error(["localise", str(run_dir), "--epochs", "1", "--out",
                          str(tmp_path / "file")], capsys)        # was "[Errno 17] File exists"
    assert status == 2 and "exists and is not a folder" in err
    assert (tmp_path / "file").read_text() == "mine"
    status, err = _error(["localise", str(run_dir), "--epochs", "1", "--out",
                          str(tmp_path / "file" / "sub")], capsys)      # was a traceback
    assert status == 2 and "cannot write the localisation run: " in err


def test_evaluate_never_replaces_a_file_and_checks_the_figure_name_first(tmp_path, run_dir,
                                                                         capsys, monkeypatch):
    import minivgg.evaluate
    monkeypatch.setattr(minivgg.evaluate, "method_posteriors", None)   # must not be reached
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my figure")
    for path, says in ((mine, "exists; choose another name"),          # was overwritten
                       (tmp_path / "c.jpg", "must end .png, .pdf or .svg")):  # after the work
        status, err = _error(["evaluate", str(run_dir), "--confusion", str(path)], capsys)
        assert status == 2 and f"--confusion {str(path)!r}" in err and says in err, err
    assert mine.read_bytes() == b"my figure"


def test_features_and_localise_say_which_checkpoint_they_read(tmp_path, run_dir, capsys):
    """features reads the model evaluate scores (best.npz) unless --checkpoint last; localise
    fine-tunes the last epoch (checkpoint.npz: what the recorded results started from) unless
    --checkpoint best; each says the file it read (features read checkpoint.npz, silently)."""
    import json
    import shutil

    from PIL import Image

    from minivgg.data import load_image_folder, synthetic_shapes
    from minivgg.features import extract_features
    from minivgg.train import BEST, CHECKPOINT, load_checkpoint, model_from_checkpoint
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    with np.load(run / BEST) as f:                  # a best epoch unlike the last one
        arrays = {key: f[key] for key in f.files}
    arrays["param/fc8.weight"] = 3 * arrays["param/fc8.weight"] + 0.5
    arrays["meta"] = np.array(json.dumps({**json.loads(str(arrays["meta"])), "epoch": 7}))
    np.savez(run / BEST, **arrays)
    data = synthetic_shapes(4, 34, seed=2)
    for i, (image, label) in enumerate(zip(data.images, data.labels)):
        (tmp_path / "imgs" / data.classes[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "imgs" / data.classes[label] / f"{i}.png")
    for option, name, epoch in (([], BEST, 7), (["--checkpoint", "last"], CHECKPOINT, 0)):
        out = tmp_path / f"{name}.feats.npz"
        assert main(["features", str(run), "--data", str(tmp_path / "imgs"), "--out", str(out),
                     *option]) == 0
        assert f"from {run / name} (epoch {epoch})" in capsys.readouterr().out
        model, stored, _ = model_from_checkpoint(run / name)
        with np.load(out) as f:
            np.testing.assert_array_equal(f["features"], extract_features(
                model, load_image_folder(tmp_path / "imgs").images, mean=stored["mean"]))
    tiny = ["--epochs", "1", "--batch-size", "10", "--layout", "centred"]
    for option, name in (([], CHECKPOINT), (["--checkpoint", "best"], BEST)):
        out = tmp_path / f"loc-{name}"
        assert main(["localise", str(run), "--out", str(out), *tiny, *option]) == 0
        assert f"fine-tuning {run / name} (epoch" in capsys.readouterr().out
        loc_arrays, loc_meta = load_checkpoint(out)
        assert loc_meta["source"] == str(run / name)
        np.testing.assert_array_equal(loc_arrays["classifier/fc8.weight"],
                                      load_checkpoint(run / name)[0]["param/fc8.weight"])


def test_a_localisation_diverging_in_its_first_epoch_leaves_no_folder(tmp_path, run_dir,
                                                                     capsys):
    out = tmp_path / "loc"                                # it left an empty folder
    argv = ["localise", str(run_dir), "--lr", "1e30", "--epochs", "1", "--batch-size", "10",
            "--layout", "centred", "--out", str(out)]
    for _ in range(2):
        with np.errstate(all="ignore"):
            assert main(argv) == 1
        assert "training diverged" in capsys.readouterr().err
        assert not out.exists()


@pytest.mark.parametrize("command", [["features", "{best}", "--data", "{tmp}", "--out",
                                      "{tmp}/f.npz"], ["localise", "{best}"],
                                     ["evaluate", "{best}"], ["train", "--resume", "{best}"]])
def test_a_checkpoint_file_given_as_the_run_folder_is_named_a_file(command, run_dir, tmp_path,
                                                                   capsys):
    """RUN/best.npz where RUN is wanted (localise_run takes either): the message said the run
    folder 'RUN/best.npz' does not exist."""
    best = run_dir / "best.npz"
    status, err = _error([a.format(best=best, tmp=tmp_path) for a in command], capsys)
    assert status == 2 and f"'{best}' is a file: give the run folder that holds it" in err


def test_localise_from_inside_the_run_folder_writes_beside_it(run_dir, tmp_path, monkeypatch,
                                                            capsys):
    """'minivgg localise .' made a hidden folder '.-loc-scr-all' inside the run folder."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    monkeypatch.chdir(run)
    assert main(["localise", ".", "--epochs", "1", "--batch-size", "10", "--layout",
                 "centred"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["run", "run-loc-scr-all"]
    assert not any(name.startswith(".-loc") for name in os.listdir(run))
