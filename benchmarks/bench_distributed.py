"""Data-parallel training on one machine: images/s of the CLI's default net (``minivgg train``,
minivgg.recipe.RECIPE: VGG A at 1/4 width, 32x32 crops, batch 32) with one process using 2
threads against 2 MPI processes of 1 thread each (``mpiexec -n 2 minivgg train --distributed``),
and 1 process x 1 thread for scale.

    python benchmarks/bench_distributed.py                 # 2 rounds, 1024 training images
    python benchmarks/bench_distributed.py --rounds 3 --train-size 2048

Each configuration is a real ``minivgg train`` run (augmentation, shuffling, SGD, and for the
MPI one the Allreduce of the gradients) for 2 epochs on the built-in shapes; the number is the
second epoch's images/s from history.json (the first includes Numba's compilation and warm-up).
The configurations take turns, round after round, so a change of the machine's load hits them
alike; the ratio is of the medians. Needs the [mpi] extra (mpi4py and mpiexec).
Threads are set by NUMBA_NUM_THREADS (minivgg's kernels) and OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS (the matrix products).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CONFIGS = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1),
           "1 process x 1 thread": (1, 1)}


def mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def run(processes, threads, folder, args):
    """images/s of the second epoch of one ``minivgg train`` run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    env.update({name: str(threads) for name in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "OMP_NUM_THREADS")})
    command = [sys.executable, "-m", "minivgg", "train", "--epochs", "2", "--run-dir", folder,
               "--overwrite", "--no-progress", "--no-plot", "--train-size", str(args.train_size),
               "--val-size", "64"]
    if processes > 1:
        command = [mpiexec(), "-n", str(processes), *command, "--distributed"]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    with open(os.path.join(folder, "history.json")) as f:
        return json.load(f)["records"][-1]["images_per_s"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=1024)
    args = parser.parse_args(argv)
    if mpiexec() is None:
        sys.exit("needs mpiexec: pip install -e '.[mpi]'")
    start = time.perf_counter()
    print(f"load average before: {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores; "
          f"{args.train_size} training images, batch 32, 2 epochs per run")
    rates = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, (processes, threads) in CONFIGS.items():
                rate = run(processes, threads, os.path.join(tmp, "run"), args)
                rates[name].append(rate)
                print(f"round {r + 1}: {name:24s} {rate:7.1f} images/s", flush=True)
    median = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in median.items():
        print(f"median {name:24s} {value:7.1f} images/s")
    ratio = median["2 processes x 1 thread"] / median["1 process x 2 threads"]
    print(f"2 processes x 1 thread / 1 process x 2 threads: {ratio:.2f}x "
          f"(load average after: {os.getloadavg()[0]:.1f}; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
