"""Is a training step as fast when NumPy is imported before minivgg as after? Both orders, measured.

    python benchmarks/bench_import_order.py [--rounds 3] [--steps 15]

Nearly every user writes ``import numpy as np`` before ``import minivgg``. Thread settings that
must reach OpenBLAS before it loads (``OPENBLAS_THREAD_TIMEOUT``) then come too late, and
OpenBLAS's idle threads spin after each matrix product, stealing the cores from minivgg's kernel
threads. minivgg must be equally fast either way. Each order runs in fresh processes, the two
orders taking turns (so a change in the machine's load hits both alike); each process times the
CLI's default network's SGD step (benchmarks/bench_train.py), median of --steps after a warm-up.
The ratio numpy-first / minivgg-first should be 1 within noise.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDERS = {"numpy first": "import numpy\nimport minivgg", "minivgg first": "import minivgg\nimport numpy"}

WORKLOAD = """{imports}
import json, sys
sys.path[:0] = [{here!r}, {root!r}]
from bench_train import default_network, median_times, minivgg_step
step = minivgg_step(default_network(), {batch})
print(json.dumps(median_times([step], {steps})[0]))
"""


def step_seconds(order, batch, steps):
    code = WORKLOAD.format(imports=ORDERS[order], here=HERE, root=os.path.dirname(HERE),
                           batch=batch, steps=steps)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT",
                                                            "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per order")
    parser.add_argument("--steps", type=int, default=15, help="timed steps per process")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; the CLI's default "
          f"net, batch {args.batch}; ms per step (median of {args.steps}) in each fresh process")
    times = {order: [] for order in ORDERS}
    for _ in range(args.rounds):
        for order in ORDERS:
            times[order].append(step_seconds(order, args.batch, args.steps))
    for order, t in times.items():
        print(f"{order:14s} " + "  ".join(f"{1e3 * s:6.1f}" for s in t))
    best = {order: sorted(t)[len(t) // 2] for order, t in times.items()}
    print(f"numpy first / minivgg first, median over processes: "
          f"{best['numpy first'] / best['minivgg first']:.2f}x (1.00 = no difference)")


if __name__ == "__main__":
    main()
