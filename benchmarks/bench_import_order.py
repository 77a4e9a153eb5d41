"""Is a training step as fast when NumPy is imported before minivgg as after? Both orders, measured.

    python benchmarks/bench_import_order.py [--rounds 3] [--steps 15]

Nearly every user writes ``import numpy as np`` before ``import minivgg``. Thread settings that
must reach OpenBLAS before it loads (``OPENBLAS_THREAD_TIMEOUT``) then come too late, and
OpenBLAS's idle threads spin after each matrix product, stealing the cores from minivgg's kernel
threads. minivgg must be equally fast either way. Each order runs in fresh processes, the two
orders taking turns (so a change in the machine's load hits both alike); each process times the
CLI's default network's SGD step (benchmarks/bench_train.py), median of --steps after a warm-up.
The ratio numpy-first / minivgg-first should be 1 within noise, in wall time and in CPU time
(all threads' work: idle threads spinning show up there even when the machine is busy).
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDERS = {"numpy first": "import numpy\nimport minivgg", "minivgg first": "import minivgg\nimport numpy"}

WORKLOAD = """{imports}
import json, sys, time
sys.path[:0] = [{here!r}, {root!r}]
from bench_train import default_network, minivgg_step
step = minivgg_step(default_network(), {batch})
step()
wall, cpu = [], []
for _ in range({steps}):
    t, c = time.perf_counter(), time.process_time()
    step()
    wall.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
print(json.dumps([sorted(wall)[len(wall) // 2], sorted(cpu)[len(cpu) // 2]]))
"""


def step_seconds(order, batch, steps):
    """(wall, CPU) seconds per step, medians, in a fresh process importing in ``order``."""
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
    median = {}
    for kind, i in (("wall", 0), ("CPU", 1)):
        for order, t in times.items():
            print(f"{kind:4s} {order:14s} " + "  ".join(f"{1e3 * s[i]:7.1f}" for s in t))
            median[kind, order] = sorted(s[i] for s in t)[len(t) // 2]
    for kind in ("wall", "CPU"):
        print(f"numpy first / minivgg first, {kind} time per step (median over processes): "
              f"{median[kind, 'numpy first'] / median[kind, 'minivgg first']:.2f}x")
    print("1.00 = no difference. CPU time counts every thread's work, spinning included, and "
          "depends less on other processes than wall time does.")

if __name__ == "__main__":
    main()
