"""Synchronous data-parallel training (the paper's Sec. 3.3) over MPI: each batch is split across
N processes, their gradients are averaged, and every process makes the same update, "exactly the
same as when training on a single GPU".

    mpiexec -n 2 minivgg train --distributed ...        # pip install -e ".[mpi]"
    mpiexec -n 2 python -m minivgg train --distributed --resume runs/A-...

From Python, make a :class:`DistributedTrainer` where you would make a ``Trainer`` (every
process runs the same script, under ``mpiexec``). One step on rank r of N, global batch B:

1. every rank draws the same shuffled order and takes the same B images; rank r keeps its rows
   ``shard(B, r, N)`` (B / N of them) and augments only those;
2. forward and backward on its rows: the gradient g_r is the mean over its n_r images;
3. one ``Allreduce`` (sum) of a single flat buffer [n_r g_r, n_r loss_r, n_r top1_r, ..., n_r]
   gives the sum over the whole batch; divided by B it is the batch's mean gradient and
   statistics, the same numbers one process computes (in another order of summation);
4. every rank applies the same SGD update to the same weights, so they stay identical.

Rank 0 alone writes the run folder (checkpoints, best.npz, history.json) and prints; the others
keep the same state in memory, and a resume loads the same checkpoint on every rank.

The random draws are split, not multiplied: each rank draws the *whole* batch's augmentation
and dropout numbers from the shared generators (a few per image, cheap) and uses its own rows
(:class:`ShardedGenerator`). So every generator stays in step on every rank, and N ranks train
exactly as one process does with the same global batch (tests/test_distributed.py), up to the
order of floating-point summation. This holds when the training images are one array (one
size) and the training scale is fixed (the default recipe); with scale jittering or images of
mixed sizes the augmentation draws come in groups of varying size, and each rank then draws its
rows' augmentation from its own generator, seeded by the shared one for each batch: the same
distribution, not the same draws as one process.

Validation is split the same way (each rank scores its share; the error counts are summed
exactly, so the schedule sees the same accuracy on every rank and as in one process). The data
set is read by every rank (it is held in memory); the augmentation and the compute are split.
Errors: a failure that every rank sees (a bad option, a diverged loss) ends every rank with the
same message from rank 0; a failure on one rank only where the others could wait forever
(making the run folder, writing the checkpoint) is shared at the start or the end of the epoch
(:func:`agree`); anything else aborts the whole job (``MPI_Abort``) rather than leave it hanging.
"""

import contextlib
import hashlib
import os
import sys
import traceback

import numpy as np

from .train import Trainer, dropout_rngs

INSTALL = ('pip install -e ".[mpi]" (in a clone of minivgg) or pip install mpi4py mpich, then '
           'start it with mpiexec -n N')
# How an MPI launcher tells a process how many were started (MPICH/Hydra, Open MPI, PMIx): read
# without importing mpi4py, to refuse N processes that would each train alone.
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


def world():
    """MPI.COMM_WORLD; ImportError naming the extra to install when mpi4py or MPI is missing."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as error:    # no mpi4py, or no MPI library under it
        raise ImportError(f"data-parallel training needs mpi4py and an MPI runtime ({error}): "
                          f"{INSTALL}") from None
    return MPI.COMM_WORLD


def launched_size():
    """How many processes an MPI launcher (mpiexec) started this one among; 1 if none did."""
    for name in LAUNCHER_SIZE:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def shard(total, rank, size):
    """Rank ``rank``'s rows of a batch of ``total`` among ``size`` ranks: (start, count, weight).
    Contiguous, as even as possible (the first ``total % size`` ranks have one more). A rank
    left without rows (a last batch smaller than ``size``) repeats the batch's last image with
    weight 0: it still runs a step, so its generators draw what the others draw."""
    count, extra = divmod(total, size)
    start = rank * count + min(rank, extra)
    count += rank < extra
    if count == 0:
        return total - 1, 1, 0
    return start, count, count


class PeerError(RuntimeError):
    """Another rank failed (its error is in the message); this one stops with it."""


def agree(comm, error=None):
    """A collective check: every rank says whether it failed. Re-raises ``error`` where there
    is one; raises PeerError on the other ranks when any rank failed; returns otherwise."""
    said = comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    failed = [(rank, text) for rank, text in enumerate(said) if text is not None]
    if failed:
        rank, text = failed[0]
        raise PeerError(f"rank {rank} failed: {text}")


class ShardedGenerator(np.random.Generator):
    """A ``np.random.Generator`` on a shared stream, which while ``rows(start, count, total)``
    is set answers a draw for ``count`` items (``integers``, ``random``, ``normal`` with size
    (count, ...) or ``out`` of that shape) with rows start..start+count of the same draw for
    ``total`` items: what one process would draw for the whole batch. ``own(generator)`` sends
    the draws to another generator instead. A draw of another size while rows are set is a
    RuntimeError: the split would no longer match one process's draws."""

    def __init__(self, bit_generator):
        super().__init__(bit_generator)
        self.rows = self.other = None

    @contextlib.contextmanager
    def sharded(self, rows=None, other=None):
        self.rows, self.other = rows, other
        try:
            yield self
        finally:
            self.rows = self.other = None

    def _draw(self, name, size, draw):
        if self.other is not None:
            return draw(self.other, size)
        if self.rows is None:
            return draw(self, size)
        start, count, total = self.rows
        shape = (size,) if np.isscalar(size) else tuple(size or ())
        if not shape or shape[0] != count:
            raise RuntimeError(f"ShardedGenerator.{name}: a draw of size {size} while splitting "
                               f"a batch's draws by rows of {count}")
        return draw(self, (total,) + shape[1:])[start:start + count]

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._draw("integers", size, lambda g, s: np.random.Generator.integers(
            g, low, high, s, dtype, endpoint))

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._draw("normal", size,
                          lambda g, s: np.random.Generator.normal(g, loc, scale, s))

    def random(self, size=None, dtype=np.float64, out=None):
        if out is None:
            return self._draw("random", size,
                              lambda g, s: np.random.Generator.random(g, s, dtype))
        out[...] = self._draw("random", out.shape,
                              lambda g, s: np.random.Generator.random(g, s, dtype))
        return out


class DistributedTrainer(Trainer):
    """A :class:`minivgg.train.Trainer` that trains one model on ``comm``'s ranks (default
    MPI.COMM_WORLD) together: the same arguments on every rank, ``run_dir`` written by rank 0
    only (``progress`` and ``log`` shown there only). The batch size must be a multiple of the
    number of ranks. ``Trainer.resume`` works as ``DistributedTrainer.resume`` on every rank.
    """

    def __init__(self, model, train_set, val_set, *, comm=None, run_dir=None, progress=True,
                 log=print, **kwargs):
        self.comm = world() if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        lead = self.rank == 0
        error = None
        try:
            batch = kwargs.get("batch_size", getattr(kwargs.get("recipe"), "batch_size", None))
            if batch is None:
                from .recipe import RECIPE
                batch = RECIPE.batch_size
            if batch % self.size:
                raise ValueError(f"batch_size {batch} is not divisible by the {self.size} "
                                 f"processes: choose a multiple of {self.size} (each process "
                                 f"takes batch_size / {self.size} images of every batch)")
            super().__init__(model, train_set, val_set, run_dir=run_dir if lead else None,
                             progress=progress and lead, log=log if lead else None, **kwargs)
        except (ValueError, OSError) as caught:
            error = caught
        agree(self.comm, error)
        # One start for all: rank 0's weights (the same seed makes the same ones anyway).
        params = list(self.model.params.values())
        flat = np.concatenate([p.ravel() for p in params]) if params else np.zeros(0)
        self.comm.Bcast(flat, root=0)
        _unflatten(flat, params)
        self.rng = ShardedGenerator(self.rng.bit_generator)
        for name, generator in dropout_rngs(self.model).items():
            self.model.layers[name].rng = ShardedGenerator(generator.bit_generator)

    def _batch(self, idx):
        start, count, self._weight = shard(len(idx), self.rank, self.size)
        rows = (start, count, len(idx))
        for generator in dropout_rngs(self.model).values():
            generator.rows = rows                   # until _combine: forward draws the masks
        scale = self.transform.scale
        if isinstance(self.train_set.images, np.ndarray) and (scale is None
                                                              or scale[0] == scale[1]):
            with self.rng.sharded(rows=rows):
                return super()._batch(idx[start:start + count])
        seeds = self.rng.integers(2 ** 63, size=self.size)        # the same on every rank
        with self.rng.sharded(other=np.random.default_rng(seeds[self.rank])):
            return super()._batch(idx[start:start + count])

    def _combine(self, stats):
        """Sum n_r * (gradients, statistics) over the ranks in one Allreduce, divide by the
        batch's size: the batch means on every rank; the gradients are written back."""
        for generator in dropout_rngs(self.model).values():
            generator.rows = None
        grads = self.model.grads
        trainable = [grads[name] for name in self.model.trainable]
        dtype = trainable[0].dtype if trainable else np.float64
        flat = np.concatenate([*(g.ravel() for g in trainable),
                               np.array([*stats.values(), 1.0], dtype)]) * self._weight
        from mpi4py import MPI
        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        flat /= flat[-1]
        _unflatten(flat, trainable)
        return dict(zip(stats, flat[-1 - len(stats):-1].tolist()))

    def validate(self):
        """The validation set split like a batch: each rank scores its rows and the sums are
        added up. The error counts are rounded to whole images, so every rank, and one process,
        hands the schedule the very same accuracy."""
        whole = self.val_set
        start, count, weight = shard(len(whole), self.rank, self.size)
        self.val_set = whole.subset(slice(start, start + count))
        try:
            local = super().validate()
        finally:
            self.val_set = whole
        from mpi4py import MPI
        sums = np.array([value * weight for value in local.values()], np.float64)
        self.comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        return {key: float((value if key == "loss" else np.rint(value)) / len(whole))
                for key, value in zip(local, sums)}

    def _one_epoch(self, epochs):
        error = None
        try:
            super()._one_epoch(epochs)
        except OSError as caught:                   # rank 0's checkpoint could not be written
            error = caught
        agree(self.comm, error)
        # The ranks' weights must be the same bits: a bug, or an MPI whose sums differ between
        # ranks, would otherwise let them drift apart unseen.
        digest = hashlib.sha256(b"".join(p.tobytes() for p in self.model.params.values()))
        if len(set(self.comm.allgather(digest.hexdigest()))) > 1:
            raise RuntimeError(f"the ranks' weights differ after epoch {self.epoch}: the "
                               f"data-parallel update was not the same everywhere")


def _unflatten(flat, arrays):
    """Copy consecutive pieces of ``flat`` into ``arrays`` (their shapes, in order), in place."""
    offset = 0
    for a in arrays:
        a[...] = flat[offset:offset + a.size].reshape(a.shape)
        offset += a.size


def run_command(command, args, report, agreed=()):
    """Run ``command(args)`` as one rank of ``mpiexec -n N minivgg ... --distributed``. Rank 0
    prints; the other ranks' standard output is discarded. Errors of the types ``agreed``,
    FloatingPointError (a diverged loss: the averaged loss is the same on every rank) and
    KeyboardInterrupt are raised alike on every rank: rank 0 lets them through to be reported,
    the others return 2 quietly; a PeerError is raised on rank 0 as ``report`` (the CLI's user
    error). Any other error is printed by its rank and aborts the whole job, which would
    otherwise wait forever for the rank that stopped."""
    comm = world()
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != 0:
        sys.stdout = open(os.devnull, "w")          # noqa: SIM115 (for the process's lifetime)
    elif size == 1:
        print("note: --distributed in a single process (start N with mpiexec -n N)",
              file=sys.stderr)
    try:
        return command(args)
    except (PeerError, FloatingPointError, KeyboardInterrupt, *agreed) as error:
        if rank != 0:
            return 2
        if isinstance(error, PeerError):
            raise report(str(error)) from None
        raise
    except Exception:
        if size == 1:
            raise
        traceback.print_exc()
        print(f"rank {rank}: unexpected error: aborting all {size} processes", file=sys.stderr,
              flush=True)
        comm.Abort(1)
