"""How long the Numba kernels take to compile (cold cache) and to load (warm), in CPU seconds.

    python benchmarks/bench_cold_start.py [--rounds 2]

Each measurement is a fresh process with its own ``NUMBA_CACHE_DIR``: "cold" starts from an empty
directory (every kernel the step calls is compiled), "warm" runs again on the directory the cold
run filled (every kernel loaded from disk). Each process imports NumPy and minivgg, builds the
CLI's default network (benchmarks/bench_train.py) or the same with LRN ("A-LRN": every kernel of
minivgg/kernels/jit.py that a small-image VGG calls), and times one training step (forward, loss,
backward) on a batch of 2; the kernels' share is that step's CPU time minus a second step's.
"every kernel" adds what no small-image run calls: a Winograd convolution (kernels/winograd_jit.py,
which `auto` picks on larger maps such as VGG-16's at 224) and an overlapping 3x3/2 max-pool (the
general windows' path of the max-pool kernel), forward and backward.
Kernels compile when first called, so a run pays only for those it uses. CPU seconds (user +
system, all threads) are less sensitive to a busy machine than wall time.

What any process that uses Numba pays once, whatever it compiles, is timed apart, before the
step: importing numba, and numba's one-time setup on first use (loading its registries, and SciPy
when installed). Beside it, a one-line ``@njit(cache=True)`` function compiled (cold) or loaded
(warm): the least one kernel costs. minivgg's own share of a warm start is importing minivgg plus
loading its kernels.

For the "every kernel" cold run it also prints each kernel's compile as Numba times it (wall seconds,
including any function the kernel calls that Numba compiles apart): where the cold seconds go.

Targets: the kernels cold <= 3 s of CPU; a warm start <= 0.3 s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOAD = """
import json, sys, time
import numpy as np
c0 = time.process_time()
import minivgg
c1 = time.process_time()
import numba
c2 = time.process_time()
from numba.core.registry import cpu_target
cpu_target.target_context.refresh()
c3 = time.process_time()


@numba.njit(cache=True)
def one_line(a):
    return a + 1


one_line(1.0)
c4 = time.process_time()
sys.path[:0] = [{here!r}]
from bench_train import default_network
model = minivgg.build_vgg(**dict(default_network(), config={config!r}))
rng = np.random.default_rng(0)
size = model.config["input_size"]
x = rng.standard_normal((2, 3, size, size), dtype=np.float32)
labels = np.array([0, 1])
# "every kernel": also a Winograd convolution (auto's choice on larger maps) and an overlapping
# 3x3/2 max-pool (the max-pool kernel's general path), forward and backward
extra = [minivgg.Conv2d(8, 8, 3, padding=1, algorithm="winograd", rng=0),
         minivgg.MaxPool2d(3, 2)] if {every!r} else []
z = rng.standard_normal((2, 8, 12, 12), dtype=np.float32)
steps = []
for _ in range(2):
    c = time.process_time()
    model.loss(x, labels)
    for layer in extra:
        layer.backward(np.ones_like(layer.forward(z)))
    steps.append(time.process_time() - c)
from minivgg.kernels import jit, winograd_jit
compiles = {{}}                 # Numba's own timer of each compile (wall, with what it calls)
for name, function in [*vars(jit).items(), *vars(winograd_jit).items()]:
    for signature in getattr(function, "signatures", ()):
        metadata = function.get_metadata(signature) or {{}}      # None: loaded from the cache
        if "timers" in metadata:
            compiles[name] = compiles.get(name, 0) + metadata["timers"]["compiler_lock"]
print(json.dumps({{"import": c1 - c0, "numba": c2 - c1, "setup": c3 - c2, "one_line": c4 - c3,
                  "kernels": steps[0] - steps[1], "compiles": compiles}}))
"""


def measure(config, cache_dir, every=False):
    """Run the workload from a file (a function defined in ``python -c`` cannot be cached)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=os.path.dirname(HERE))
    script = os.path.join(cache_dir, "workload.py")
    with open(script, "w") as f:
        f.write(WORKLOAD.format(here=HERE, config=config, every=every))
    out = subprocess.run([sys.executable, script], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="cold + warm pairs (min kept)")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU seconds, minimum "
          f"over {args.rounds} fresh cache directories")
    print(f"{'network':22s} {'cache':5s} {'kernels':>8s} {'import minivgg':>15s} "
          f"{'minivgg':>8s}   {'import numba':>12s} {'numba setup':>12s} {'1-line njit':>12s}")
    for config, every, label in (("A", False, "default run (A)"), ("A-LRN", False, "A-LRN"),
                                 ("A-LRN", True, "every kernel")):
        results = {"cold": [], "warm": []}
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as cache_dir:
                results["cold"].append(measure(config, cache_dir, every))
                results["warm"].append(measure(config, cache_dir, every))
        for cache, runs in results.items():
            r = min(runs, key=lambda r: r["kernels"] + r["import"])
            print(f"{label:22s} {cache:5s} {r['kernels']:8.2f} {r['import']:15.2f} "
                  f"{r['kernels'] + r['import']:8.2f}   {r['numba']:12.2f} {r['setup']:12.2f} "
                  f"{r['one_line']:12.2f}")
    compiles = min(results["cold"], key=lambda r: r["kernels"] + r["import"])["compiles"]
    print("that last cold run, each kernel's compile (wall s, including the functions it "
          "calls):\n  " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in
                                  sorted(compiles.items(), key=lambda item: -item[1])))
    print("minivgg = its kernels + importing it: targets cold kernels <= 3 s, warm <= 0.3 s. "
          "Importing numba and its setup\non first use are paid by any process that uses Numba; "
          "'1-line njit' is the least one kernel costs.")


if __name__ == "__main__":
    main()
