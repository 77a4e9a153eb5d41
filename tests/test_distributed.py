"""Data-parallel training (minivgg.distributed): 2 MPI ranks train exactly as 1 process with the
same global batch, a 2-rank run resumes bit-identically, and the command line refuses what would
go wrong. The MPI runs are skipped when mpi4py or mpiexec is missing (the [mpi] extra installs
both; CI installs it)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.distributed import ShardedGenerator, shard
from minivgg.train import HISTORY, load_checkpoint
from minivgg.vgg import build_vgg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mpiexec():
    """The venv's mpiexec (the mpich wheel puts it beside python), else one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def _have_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(not (_have_mpi4py() and MPIEXEC),
                               reason="mpi4py or mpiexec missing: pip install -e '.[mpi]'")

# A tiny run: 41 training images in batches of 8, so the last batch has 1 image and rank 1 sits
# it out (it repeats the image with weight 0); 13 validation images, split 7 + 6; dropout,
# flips and colour shift all on.
TINY = ["--train-size", "41", "--val-size", "13", "--image-size", "34", "--width", "0.0625",
        "--fc-width", "16", "--batch-size", "8", "--no-progress", "--no-plot"]


def mpirun(n, args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-m", "minivgg", "train",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run three ways: 2 epochs on 2 ranks, 1 epoch on 2 ranks resumed to 2, and 2
    epochs in one process (this one)."""
    folder = tmp_path_factory.mktemp("distributed")
    two = mpirun(2, ["--distributed", "--epochs", "2", "--run-dir", "two", *TINY], folder)
    assert two.returncode == 0, two.stderr
    half = mpirun(2, ["--distributed", "--epochs", "1", "--run-dir", "resumed", *TINY], folder)
    assert half.returncode == 0, half.stderr
    resumed = mpirun(2, ["--distributed", "--resume", "resumed", "--epochs", "2",
                         "--no-progress", "--no-plot"], folder)
    assert resumed.returncode == 0, resumed.stderr
    assert main(["train", "--epochs", "2", "--run-dir", str(folder / "one"), *TINY]) == 0
    return folder, two


@needs_mpi
def test_two_ranks_end_with_the_weights_of_one_process(runs):
    """Tolerance: the two runs add the same float32 numbers in another order (each rank sums
    over its 4 images, then MPI adds the two sums; one process sums the 8 at once), so they
    differ by rounding, ~1e-7 relative per step; after 12 steps we allow 1e-5 of the largest
    weight. The weights moved by far more than that, so equal-because-untrained cannot pass."""
    folder, _ = runs
    one, meta_one = load_checkpoint(folder / "one")
    two, meta_two = load_checkpoint(folder / "two")
    assert meta_two["epoch"] == meta_one["epoch"] == 2
    init = build_vgg("A", num_classes=10, input_size=32, width=0.0625, fc_width=16, seed=0,
                     init=meta_one["recipe"]["init"],
                     classifier_std=meta_one["recipe"]["classifier_std"]).params
    for key in (k for k in one if k.startswith("param/")):
        scale = np.abs(one[key]).max()
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5 * scale, err_msg=key)
        if key.endswith("weight"):
            assert np.abs(one[key] - init[key[6:]]).max() > 1e-3 * scale, key
    for key in (k for k in one if k.startswith("velocity/")):
        np.testing.assert_allclose(two[key], one[key], rtol=0,
                                   atol=1e-5 * np.abs(one[key]).max(), err_msg=key)
    # Every generator drew exactly what one process drew: shuffling, augmentation, dropout.
    assert meta_two["rng"] == meta_one["rng"]
    assert meta_two["dropout_rngs"] == meta_one["dropout_rngs"]
    for a, b in zip(meta_one["history"], meta_two["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
        assert (a["val_top1"], a["val_top5"]) == (b["val_top1"], b["val_top5"])  # counts: exact


@needs_mpi
def test_two_rank_resume_is_bit_identical_to_an_uninterrupted_run(runs):
    folder, _ = runs
    straight, meta_straight = load_checkpoint(folder / "two")
    resumed, meta_resumed = load_checkpoint(folder / "resumed")
    assert meta_resumed["epoch"] == 2 and len(meta_resumed["history"]) == 2
    for key, value in straight.items():
        assert np.array_equal(value, resumed[key]), key
    assert meta_resumed["rng"] == meta_straight["rng"]


@needs_mpi
def test_rank_0_alone_writes_and_prints(runs):
    folder, two = runs
    assert sorted(os.listdir(folder / "two")) == sorted([".lock", "best.npz", "checkpoint.npz",
                                                         HISTORY])
    lines = two.stdout.splitlines()
    assert lines.count("run folder: two") == 1 and len(lines) == len(set(lines))


@needs_mpi
def test_scale_jittering_keeps_the_ranks_in_step(tmp_path):
    """With S jittered the draws come in groups of varying size: each rank then draws its own
    rows' augmentation, and the ranks' weights must still be the same bits after each epoch
    (DistributedTrainer checks their digests)."""
    run = mpirun(2, ["--distributed", "--epochs", "1", "--run-dir", "jitter", *TINY,
                     "--scale", "36,40"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert load_checkpoint(tmp_path / "jitter")[1]["augment"]["scale"] == [36, 40]


@needs_mpi
def test_a_run_folder_refused_by_rank_0_stops_every_rank(runs):
    """Only rank 0 looks at the run folder: the others must hear of its refusal, not wait."""
    folder, _ = runs
    again = mpirun(2, ["--distributed", "--epochs", "1", "--run-dir", "two", *TINY], folder)
    assert again.returncode != 0
    assert again.stderr.count("already holds a run") == 1, again.stderr


@needs_mpi
def test_refusals_with_two_processes(tmp_path):
    odd = mpirun(2, ["--distributed", "--epochs", "1", "--run-dir", "odd", *TINY,
                     "--batch-size", "7"], tmp_path)
    assert odd.returncode != 0
    assert odd.stderr.count("batch_size 7 is not divisible by the 2 processes") == 1
    assert not (tmp_path / "odd").exists()
    alone = mpirun(2, ["--epochs", "1", "--run-dir", "alone", *TINY], tmp_path)
    assert alone.returncode != 0 and "without --distributed" in alone.stderr
    assert not (tmp_path / "alone").exists()


def test_without_mpi4py_the_error_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mpi4py", None)        # import mpi4py -> ImportError
    assert main(["train", "--distributed", *TINY]) == 2
    assert '".[mpi]"' in capsys.readouterr().err


def test_shards_cover_the_batch_once():
    for total in range(1, 12):
        for size in (1, 2, 3, 4):
            parts = [shard(total, r, size) for r in range(size)]
            rows = [i for start, count, weight in parts if weight
                    for i in range(start, start + count)]
            assert rows == list(range(total))
            assert all(weight in (0, count) for _, count, weight in parts)


def test_a_sharded_generator_draws_its_rows_of_the_whole_batch():
    whole = np.random.default_rng(7)
    expected = (whole.integers(0, 5, 6), whole.random((6, 4), dtype=np.float32),
                whole.normal(0.0, 0.1, (6, 3)))
    for start, count in ((0, 3), (3, 3), (5, 1)):
        part = ShardedGenerator(np.random.PCG64(7))
        with part.sharded(rows=(start, count, 6)):
            out = np.empty((count, 4), np.float32)
            got = (part.integers(0, 5, count), part.random(out=out, dtype=np.float32),
                   part.normal(0.0, 0.1, (count, 3)))
        for a, b in zip(got, expected):
            assert np.array_equal(a, b[start:start + count])
        assert part.bit_generator.state == whole.bit_generator.state
    with part.sharded(rows=(0, 3, 6)), pytest.raises(RuntimeError, match="draw of size 2"):
        part.random(2)
    before = part.bit_generator.state
    with part.sharded(other=np.random.default_rng(3)):          # another generator's draws
        got = part.integers(10, 20, 4), part.normal(5.0, 0.1, (2, 3))
    other = np.random.default_rng(3)
    assert np.array_equal(got[0], other.integers(10, 20, 4))
    assert np.array_equal(got[1], other.normal(5.0, 0.1, (2, 3)))
    assert part.bit_generator.state == before
