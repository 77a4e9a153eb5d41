"""A run folder is never overwritten unasked, checked before any epoch is spent, locked while
training, left consistent by a kill at any moment, keeps the best epoch beside the last, and
never keeps (or reports) a diverged net."""

import errno
import fcntl
import json
import os

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.data import synthetic_splits
from minivgg.train import (
    BEST,
    CHECKPOINT,
    HISTORY,
    LOCK,
    History,
    NonFiniteLossError,
    RunDirError,
    Trainer,
    load_checkpoint,
)
from minivgg.vgg import build_vgg

TINY = ["--width", "0.0625", "--fc-width", "8", "--train-size", "24", "--val-size", "10",
        "--image-size", "36", "--batch-size", "12", "--no-progress", "--no-plot"]


@pytest.fixture(scope="module")
def data():
    return synthetic_splits(24, 10, size=36, seed=2)


def trainer(data, run_dir, **kwargs):
    model = build_vgg("A", num_classes=10, input_size=32, width=1 / 16, fc_width=8,
                      input_std=60.0)
    return Trainer(model, *data, batch_size=12, run_dir=run_dir, progress=False, log=None,
                   **kwargs)


def scripted_validation(monkeypatch, errors, losses=None):
    """Make Trainer.validate return these top-1 errors (and losses) in turn."""
    values = iter(zip(errors, losses or [1.0] * len(errors)))

    def validate(self):
        top1, loss = next(values)
        return {"loss": loss, "top1": top1, "top5": 0.0}
    monkeypatch.setattr(Trainer, "validate", validate)


def test_an_existing_run_is_refused_unless_overwrite(data, tmp_path, capsys):
    trainer(data, tmp_path).fit(1)
    with pytest.raises(RunDirError, match="already holds a run"):
        trainer(data, tmp_path)
    trainer(data, tmp_path, overwrite=True)
    before = (tmp_path / CHECKPOINT).read_bytes()
    assert main(["train", "--run-dir", str(tmp_path), "--epochs", "1", *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    assert main(["train", "--run-dir", str(tmp_path), "--epochs", "1", "--overwrite",
                 *TINY]) == 0


def test_a_run_dir_that_cannot_be_made_or_written_is_refused_before_training(
        data, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--run-dir", str(blocker / "run"), "--epochs", "1", *TINY]) == 2
    assert "cannot write to run folder" in capsys.readouterr().err

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr("tempfile.TemporaryFile", read_only)
    with pytest.raises(RunDirError, match="cannot write to run folder .*Permission denied"):
        trainer(data, tmp_path / "ro")


def test_disk_full_while_saving_is_a_message_and_keeps_the_last_checkpoint(
        tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--epochs", "1", *TINY]) == 0
    before = (run / CHECKPOINT).read_bytes()

    def full(file, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "savez", full)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress",
                 "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert (run / CHECKPOINT).read_bytes() == before
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")]


def test_two_trainings_of_one_folder_cannot_run_at_once(tmp_path, capsys):
    assert main(["train", "--run-dir", str(tmp_path), "--epochs", "1", *TINY]) == 0
    resume = ["train", "--resume", str(tmp_path), "--epochs", "2", "--no-progress", "--no-plot"]
    with open(tmp_path / LOCK, "a") as other:          # another process training in it
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(resume) == 2
        assert "in use by another training process" in capsys.readouterr().err
        assert load_checkpoint(tmp_path)[1]["epoch"] == 1
    assert main(resume) == 0                             # free again


def test_a_kill_between_checkpoint_and_history_is_repaired_on_resume(data, tmp_path,
                                                                       monkeypatch):
    first = trainer(data, tmp_path)
    first.fit(1)

    def killed(self, path):
        raise KeyboardInterrupt                         # the process dies right here
    monkeypatch.setattr(History, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        first.fit(2)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)[1]["epoch"] == 2
    assert len(History.load(tmp_path / HISTORY)) == 1   # one behind, as a kill leaves it
    resumed = Trainer.resume(tmp_path, *data, progress=False, log=None)
    assert History.load(tmp_path / HISTORY).records == resumed.history.records
    assert len(resumed.history) == 2


def test_orphaned_temporary_files_are_removed_when_a_run_starts(data, tmp_path):
    trainer(data, tmp_path).fit(1)
    orphan = tmp_path / f".{CHECKPOINT}.x1y2z3.tmp"        # what atomic_write leaves on kill -9
    orphan.write_bytes(b"PK half")
    mine = tmp_path / "notes.tmp"                        # not ours: kept
    mine.write_text("keep")
    Trainer.resume(tmp_path, *data, progress=False, log=None)
    assert not orphan.exists() and mine.exists()


def test_best_and_last_checkpoints(data, tmp_path, monkeypatch, capsys):
    scripted_validation(monkeypatch, [0.5, 0.3, 0.6])
    t = trainer(data, tmp_path)
    t.fit(3)
    assert load_checkpoint(os.path.join(tmp_path, BEST))[1]["epoch"] == 2
    assert load_checkpoint(tmp_path)[1]["epoch"] == 3
    best_arrays = load_checkpoint(os.path.join(tmp_path, BEST))[0]
    assert not any(k.startswith("velocity/") for k in best_arrays)
    monkeypatch.undo()
    # evaluate uses the best by default and says so; --checkpoint last takes the last
    assert main(["evaluate", str(tmp_path), "--data", str(_folder(tmp_path, data[1]))]) == 0
    assert f"{BEST} (epoch 2)" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path), "--checkpoint", "last", "--data",
                 str(tmp_path / "images")]) == 0
    assert f"{CHECKPOINT} (epoch 3)" in capsys.readouterr().out


def _folder(tmp_path, dataset):
    from PIL import Image
    root = tmp_path / "images"
    for i, (image, label) in enumerate(zip(dataset.images, dataset.labels)):
        folder = root / dataset.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    missing = set(dataset.classes) - set(os.listdir(root))
    for name in missing:                                  # every class needs a folder
        Image.fromarray(dataset.images[0]).save(_mkdir(root / name) / "0.png")
    return root


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_nan_validation_loss_stops_training_and_is_never_kept(data, tmp_path, monkeypatch):
    scripted_validation(monkeypatch, [0.5, 0.0], losses=[1.0, float("nan")])
    t = trainer(data, tmp_path)
    with pytest.raises(NonFiniteLossError, match="the validation after epoch 2"):
        t.fit(3)
    assert load_checkpoint(tmp_path)[1]["epoch"] == 1
    assert load_checkpoint(os.path.join(tmp_path, BEST))[1]["epoch"] == 1
    assert len(t.history) == 1


def test_a_diverged_net_reports_errors_not_zero_and_history_is_strict_json(data, tmp_path):
    """lr 1e4: the validation scores turn NaN; they must count as errors, never as 0%."""
    t = trainer(data, tmp_path)
    t.fit(1)
    for value in t.model.params.values():
        value[...] = np.nan
    val = t.validate()
    assert val["top1"] == 1.0 and val["top5"] == 1.0
    History([{"epoch": 1, "val_loss": float("nan")}]).save(tmp_path / "h.json")
    text = (tmp_path / "h.json").read_text()
    assert json.loads(text, parse_constant=pytest.fail)["records"][0]["val_loss"] is None


def test_a_run_diverging_in_its_first_epoch_leaves_no_folder_and_can_be_run_again(tmp_path,
                                                                                   capsys):
    """It left a folder holding only .lock. The folder the command made is removed (and says
    so); a folder the user made stays, without the lock, and its other files are untouched."""
    new = tmp_path / "new"
    argv = ["train", "--run-dir", str(new), "--epochs", "1", "--lr", "1e30", *TINY]
    for _ in range(2):                                    # the same command again: the same
        with np.errstate(all="ignore"):
            assert main(argv) == 1
        assert f"nothing was saved: the run folder {new} is removed" in capsys.readouterr().err
        assert not new.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    with np.errstate(all="ignore"):
        assert main([*argv[:2], str(mine), *argv[3:]]) == 1
    assert "no checkpoint was written yet" in capsys.readouterr().err
    assert os.listdir(mine) == []
    (mine / "notes.txt").write_text("keep")
    with np.errstate(all="ignore"):
        assert main([*argv[:2], str(mine), *argv[3:]]) == 1
    assert sorted(os.listdir(mine)) == [LOCK, "notes.txt"]
    assert main(["train", "--run-dir", str(new), "--epochs", "1", *TINY]) == 0   # a sane lr
    assert load_checkpoint(new)[1]["epoch"] == 1


def test_a_failed_first_epoch_removes_the_parents_it_made_and_fit_makes_them_again(data,
                                                                                    tmp_path):
    """Interrupted in its first epoch, a Trainer removes the folder and the parents it made (not
    one that was there before); the same Trainer's fit then makes them again (it raised
    FileNotFoundError for the lock, the notebook's flow: interrupt, run the cell again)."""
    run = tmp_path / "a" / "b" / "run"
    t = trainer(data, run)

    def interrupt(trainer, loss):
        raise KeyboardInterrupt
    t.on_step = interrupt
    with pytest.raises(KeyboardInterrupt):
        t.fit(1)
    assert os.listdir(tmp_path) == []
    t.on_step = None
    t.fit(1)
    assert load_checkpoint(run)[1]["epoch"] == 1


def test_a_file_appearing_in_a_made_folder_keeps_it_and_the_first_error(data, tmp_path,
                                                                       monkeypatch):
    """Another run's file appearing between the lock's removal and the folder's: the folder
    stays, and the error the user sees is the first epoch's, not the removal's."""
    run = tmp_path / "run"
    t = trainer(data, run)
    remove = os.remove

    def remove_then_another_run(path):
        remove(path)
        (run / "theirs.txt").write_text("keep")
    monkeypatch.setattr(os, "remove", remove_then_another_run)

    def interrupt(trainer, loss):
        raise KeyboardInterrupt
    t.on_step = interrupt
    with pytest.raises(KeyboardInterrupt):
        t.fit(1)
    assert os.listdir(run) == ["theirs.txt"]


def test_ctrl_c_says_whether_the_run_folder_was_removed(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the first epoch: the CLI says nothing was saved and the folder it made is gone
    (it said 'the last finished epoch's checkpoint is kept' though no epoch had finished); later,
    that the last finished epoch's checkpoint is kept."""
    run = tmp_path / "run"
    one_epoch = Trainer._one_epoch

    def interrupt_epoch(n):
        def one(self, epochs):
            if self.epoch + 1 == n:
                raise KeyboardInterrupt
            return one_epoch(self, epochs)
        return one
    monkeypatch.setattr(Trainer, "_one_epoch", interrupt_epoch(1))
    assert main(["train", "--run-dir", str(run), "--epochs", "2", *TINY]) == 130
    assert f"nothing was saved, the run folder {run} is removed" in capsys.readouterr().err
    assert not run.exists()
    monkeypatch.setattr(Trainer, "_one_epoch", interrupt_epoch(2))
    assert main(["train", "--run-dir", str(run), "--epochs", "2", *TINY]) == 130
    assert "keeps its last finished epoch's checkpoint" in capsys.readouterr().err
    assert load_checkpoint(run)[1]["epoch"] == 1
