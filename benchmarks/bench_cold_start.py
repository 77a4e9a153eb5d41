"""How long the Numba kernels take to compile (cold cache) and to load (warm), in CPU seconds.

    python benchmarks/bench_cold_start.py [--rounds 2]

Each measurement is a fresh process with its own ``NUMBA_CACHE_DIR``: "cold" starts from an empty
directory (every kernel compiled), "warm" runs again on the directory the cold run filled (every
kernel loaded from disk). Each process imports minivgg, then calls every kernel of
minivgg/kernels/jit.py once on small float32 inputs, as a training run's first step does (a run
compiles only the kernels it calls, when it first calls them). CPU seconds (user + system of the
process, all threads) are less sensitive to a busy machine than wall time; both are printed.
Targets: all kernels cold <= 3 s of CPU, warm <= 0.3 s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOAD = """
import json, time
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np
import minivgg
from minivgg.kernels import jit
t1, c1 = time.perf_counter(), time.process_time()
# numba's first use of its CPU target loads its registries (numba.np.*, and scipy.linalg when
# SciPy is installed): a cost any compiled or cached function pays once per process
from numba.core.registry import cpu_target
cpu_target.target_context.refresh()
setup = time.process_time() - c1
x = np.random.default_rng(0).standard_normal((2, 8, 6, 6), dtype=np.float32)
u = np.random.default_rng(1).random(x.shape, dtype=np.float32)
calls = {
    "im2col": lambda: jit.im2col(x, (3, 3), (1, 1), (1, 1)),
    "col2im": lambda: jit.col2im(jit.im2col(x, (3, 3), (1, 1), (1, 1)), x.shape, (3, 3), (1, 1),
                                 (1, 1)),
    "maxpool": lambda: jit.maxpool_backward(*jit.maxpool_forward(x, (2, 2), (2, 2)), x.shape),
    "lrn": lambda: jit.lrn_backward(x, x, jit.lrn_forward(x, 5, 1e-4, 0.75, 2.0)[1], 5, 1e-4,
                                    0.75),
    "relu": lambda: jit.relu_backward(x, jit.relu_forward(x)),
    "dropout": lambda: jit.dropout_apply(x, u, 0.5, 2.0),
}
cpu = {}
for name, call in calls.items():
    c = time.process_time()
    call()
    cpu[name] = time.process_time() - c
print(json.dumps({"import": c1 - c0, "setup": setup, "kernels": time.process_time() - c1,
                  "kernels wall": time.perf_counter() - t1, "each": cpu}))
"""


def measure(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=os.path.dirname(HERE))
    out = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="cold + warm pairs (min kept)")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = {"cold": [], "warm": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as cache_dir:
            results["cold"].append(measure(cache_dir))
            results["warm"].append(measure(cache_dir))
    for kind, runs in results.items():
        best = min(runs, key=lambda r: r["kernels"])
        each = ", ".join(f"{name} {s:.2f}" for name, s in best["each"].items())
        print(f"{kind}: all kernels {best['kernels']:.2f} s CPU ({best['kernels wall']:.2f} s "
              f"wall), of which numba's one-time setup {best['setup']:.2f}, per kernel: {each}; "
              f"before that, import numpy + minivgg {best['import']:.2f} s CPU")
    print("targets: cold <= 3 s CPU, warm <= 0.3 s CPU")


if __name__ == "__main__":
    main()
