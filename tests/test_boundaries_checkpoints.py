"""Hand-edited run folders: a checkpoint's meta is JSON a person can open and change, so every
entry resume, evaluate and localise read back is checked where it is read. Each bad entry is a
CorruptFileError naming the file and the entry (the CLI: one line, exit 2), before any epoch is
spent, in bounded memory, and the run folder is left as it was."""

import json
import os
import shutil
import tracemalloc

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.cli.common import synthetic_data
from minivgg.errors import CorruptFileError
from minivgg.recipe import RECIPE
from minivgg.train import CHECKPOINT, Trainer, load_checkpoint

MB = 2**20
DELETE = object()
SETTINGS = {"train_size": 20, "val_size": 10, "image_size": 34, "data_seed": 0,
            "layout": "centred", "data": None}


def make_run(path):
    """A classification run folder at epoch 0 (Trainer.save, no training): enough to resume."""
    train, val = synthetic_data(SETTINGS)
    model = RECIPE.replace(width=1 / 16, fc_width=8).build(train)
    trainer = Trainer(model, train, val, run_dir=path, progress=False, log=None,
                      settings=SETTINGS)
    trainer.save(best=True)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "run")


def edited_run(run, dest, edit=None, **changes):
    """A copy of the run folder ``run`` at ``dest`` whose checkpoint meta has ``changes``
    (a dict value is merged into the entry, DELETE removes it) and then ``edit(meta)``."""
    shutil.copytree(run, dest)
    path = dest / CHECKPOINT
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    for key, value in changes.items():
        if value is DELETE:
            del meta[key]
        else:
            meta[key] = {**meta[key], **value} if isinstance(value, dict) else value
    if edit is not None:
        edit(meta)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return dest


def _drop(entry, key):
    return lambda meta: meta[entry].pop(key)


# What a person might type into checkpoint.npz's meta, and the entry the error must name.
# Before: KeyError 'lr' / 'best', TypeError, ValueError without the file, or (history) a
# TypeError after the whole epoch had been trained.
RESUME_EDITS = {
    "optimiser without lr": (dict(edit=_drop("optimizer", "lr")), "'optimizer' has no 'lr'"),
    "optimiser lr a word": (dict(optimizer={"lr": "fast"}), "'optimizer' is unusable: lr"),
    "schedule without best": (dict(edit=_drop("schedule", "best")), "'schedule' has no 'best'"),
    "generator state empty": (dict(rng={"bit_generator": "MT19937"}), "'rng' is unusable"),
    "a dropout layer missing": (dict(edit=_drop("dropout_rngs", "drop6")), "'dropout_rngs'"),
    "frozen names no layer": (dict(frozen=["conv9_9"]), "'frozen' is unusable"),
    "frozen a number": (dict(frozen=3), "'frozen' is unusable"),
    "recipe field unknown": (dict(recipe={"zzz": 1}), "'recipe' is unusable"),
    "recipe lr NaN": (dict(recipe={"lr": float("nan")}), "'recipe' is unusable: lr must be"),
    "history record empty": (dict(history=[{}]), "'history' is not what the Trainer writes"),
    "settings a list": (dict(settings=[1]), "'settings' is not what the Trainer writes"),
    "epoch negative": (dict(epoch=-5), "epoch -5"),
    "batch size zero": (dict(batch_size=0), "batch_size 0"),
}


@pytest.mark.parametrize("edit, says", RESUME_EDITS.values(), ids=RESUME_EDITS)
def test_resume_of_a_hand_edited_checkpoint_names_the_file_and_the_entry(edit, says, run_dir,
                                                                          tmp_path):
    path = edited_run(run_dir, tmp_path / "run", **edit)
    before = (path / CHECKPOINT).read_bytes()
    train, val = synthetic_data(SETTINGS)
    with pytest.raises(CorruptFileError, match="corrupted checkpoint: .*run/checkpoint.npz: .*"
                                               + says.replace("(", r"\(").replace("'", "'")):
        Trainer.resume(path, train, val, progress=False, log=None)
    assert (path / CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("edit", ["history record empty", "settings a list"])
def test_load_checkpoint_itself_refuses_what_the_trainer_never_writes(edit, run_dir, tmp_path):
    """Checked where the checkpoint is read, not only by Trainer.resume: evaluate read such a
    file as it was."""
    changes, says = RESUME_EDITS[edit]
    path = edited_run(run_dir, tmp_path / "run", **changes)
    with pytest.raises(CorruptFileError, match=f"corrupted checkpoint: .*run/checkpoint.npz: "
                                               f"its meta entry {says}"):
        load_checkpoint(path)


def test_an_unedited_copy_resumes(run_dir, tmp_path):
    path = edited_run(run_dir, tmp_path / "run")
    train, val = synthetic_data(SETTINGS)
    assert Trainer.resume(path, train, val, progress=False, log=None).epoch == 0


def test_the_cli_says_it_in_one_line(run_dir, tmp_path, capsys):
    path = edited_run(run_dir, tmp_path / "run", edit=_drop("optimizer", "lr"))
    assert main(["train", "--resume", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (f"minivgg train: error: corrupted checkpoint: {path / CHECKPOINT}: its meta "
                   f"entry 'optimizer' has no 'lr'\n")


@pytest.mark.parametrize("settings, says", [
    ({"train_size": "x"}, "the built-in shapes (--train-size x --val-size 10 --image-size 34): "
                          "need an int n >= 0"),                       # was a TypeError
    ({"val_size": 10**12}, "n=1000000000000 images of size=34 would take"),  # was MemoryError
])
def test_settings_that_make_no_data_are_named(settings, says, run_dir, tmp_path, capsys):
    path = edited_run(run_dir, tmp_path / "run", settings=settings)
    tracemalloc.start()
    status = main(["train", "--resume", str(path), "--no-progress"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    err = capsys.readouterr().err
    assert status == 2 and says in err and "Traceback" not in err
    assert peak < 20 * MB


# -- localisation runs (minivgg localise, evaluate LOC_RUN, localise --resume) -----------------

@pytest.fixture(scope="module")
def loc_run(run_dir, tmp_path_factory):
    from minivgg.localise.run import localise_run
    out = tmp_path_factory.mktemp("loc") / "loc"
    return localise_run(run_dir, epochs=1, batch_size=10, layout="centred", out_dir=out,
                        log=None)


LOC_EDITS = {
    # 1e9: the dense protocol rescaled images to 1e9 pixels (the process was killed)
    "scale huge": (dict(scale=10**9), "'scale' is not one a localisation run writes"),
    "scale a word": (dict(scale="big"), "'scale'"),
    "head unknown": (dict(head="xyz"), "'head'"),      # was: cannot reshape array of size 80
    "head missing": (dict(head=DELETE), "'head'"),      # was: KeyError 'head'
    "settings none": (dict(settings=None), "'settings'"),    # was: AttributeError
    "source missing": (dict(source=DELETE), "'source'"),
    "classifier config missing": (dict(classifier_config=DELETE), "'classifier_config'"),
    "net of the other head": (dict(head="pcr"), "SCR net has|PCR net has 4 outputs"),
}


@pytest.mark.parametrize("edit, says", LOC_EDITS.values(), ids=LOC_EDITS)
def test_evaluating_a_hand_edited_localisation_run_names_the_file(edit, says, loc_run, tmp_path,
                                                                  capsys):
    path = edited_run(loc_run, tmp_path / "loc", **edit)
    tracemalloc.start()
    status = main(["evaluate", str(path)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    assert err.startswith(f"minivgg evaluate: error: corrupted checkpoint: {path / CHECKPOINT}")
    assert __import__("re").search(says, err), err
    assert peak < 20 * MB


@pytest.mark.parametrize("edit, says", [
    (dict(edit=_drop("optimizer", "lr")), "has no 'lr'"),                   # was: KeyError
    (dict(history=[{"epoch": 1}]), "a history record has no 'seconds'"),    # after an epoch
    (dict(seed=-1), "expected non-negative integer"),
    (dict(edit=lambda meta: meta.update(rng={})), "state must be for a PCG64 RNG"),
    (dict(settings={"val_size": "x"}), "its settings make no built-in data"),
])
def test_resuming_a_hand_edited_localisation_run_names_the_file(edit, says, loc_run, tmp_path,
                                                                capsys, monkeypatch):
    import minivgg.localise.run
    monkeypatch.setattr(minivgg.localise.run, "train_localiser", None)   # no epoch may start
    path = edited_run(loc_run, tmp_path / "loc", **edit)
    before = (path / CHECKPOINT).read_bytes()
    status = main(["localise", "--resume", str(path), "--epochs", "2"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err and str(path / CHECKPOINT) in err, err
    assert says in err, err
    assert (path / CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("argv, advice", [
    # before: "...; give the classification run it was made from (SOURCE)"
    (["localise", "{loc}", "--out", "{tmp}/again"],
     "a localisation net starts from a classification run: give that one"),
    # before: "its meta entry 'history' is not what the Trainer...", then no source named
    (["train", "--resume", "{loc}", "--no-progress"],
     "continue it with 'minivgg localise --resume {loc}'"),
    (["features", "{loc}", "--data", "{tmp}", "--out", "{tmp}/f.npz"],
     "features come from a classification run: give that one"),
    # before: "--data has 10 classes but the network 4"
    (["evaluate", "{run}", "{loc}", "--fuse"],
     "fusion averages classification runs; evaluate it alone"),
])
def test_a_localisation_run_where_a_classifier_is_wanted_is_one_message_with_advice(
        argv, advice, loc_run, run_dir, tmp_path, capsys):
    def fill(text):
        return text.format(loc=loc_run, run=run_dir, tmp=tmp_path)
    status = main([fill(arg) for arg in argv])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    source = load_checkpoint(loc_run)[1]["source"]
    assert f"is a localisation run, fine-tuned from {source}; {fill(advice)}" in err, err
    assert os.listdir(tmp_path) == []


def test_trainer_resume_of_a_localisation_run_points_to_resume_localisation(loc_run):
    train, val = synthetic_data(SETTINGS)
    with pytest.raises(ValueError, match=r"is a localisation run, fine-tuned from .*; continue "
                                         r"it with minivgg.localise.run.resume_localisation"):
        Trainer.resume(loc_run, train, val, log=None)


def test_resuming_a_python_made_run_without_a_build_config_is_a_message(run_dir, tmp_path,
                                                                         capsys):
    path = edited_run(run_dir, tmp_path / "run", model_config=None)
    assert main(["train", "--resume", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err       # was a ValueError traceback
    assert "the checkpoint has no build config" in err and "Traceback" not in err


def test_evaluate_localisation_checks_its_arguments_first(loc_run):
    from minivgg.data import ImageDataset
    from minivgg.localise.run import evaluate_localisation
    val = synthetic_data(SETTINGS)[1]
    for bad, says in ((dict(val_set=ImageDataset(val.images, val.labels, val.classes)), "boxes"),
                      (dict(val_set=val.images), "ImageDataset"),        # an IndexError and an
                      (dict(batch_size=0), "batch_size")):               # AttributeError before
        with pytest.raises(ValueError, match=f"evaluate_localisation: .*{says}"):
            evaluate_localisation(loc_run, **bad)
