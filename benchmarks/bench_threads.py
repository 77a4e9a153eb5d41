"""Do idle BLAS / OpenMP threads steal the cores from the next kernel? Measured, per setting.

    python benchmarks/bench_threads.py [--quick]

minivgg/threads.py sets ``OPENBLAS_THREAD_TIMEOUT=4`` and ``GOMP_SPINCOUNT=30000`` (unless the
user set them), and makes an OpenBLAS that NumPy loaded earlier apply them. Without them,
OpenBLAS's worker threads keep spinning for about 0.1 s after each matrix product, and OpenMP's
(Numba's ``parallel=True`` threading layer, PyTorch) do the same: on a 2-core machine the next
kernel then shares its cores with busy-waiting threads.

Each configuration runs in a fresh process (the variables are read once, when the libraries load),
timing three workloads, minimum over repeats:

  conv step     Conv2d 256->256 @ 56x56 forward + backward: GEMMs interleaved with the threaded
                Numba kernels im2col / col2im, then ReLU and max-pool (what training does)
  kernel after GEMM   one im2col right after a GEMM (the victim of spinning BLAS threads)
  prange after GEMM   a Numba ``parallel=True`` loop right after a GEMM: only it uses Numba's
                threading layer (minivgg's kernels use their own threads, see kernels/jit.py)

"library defaults" passes the libraries' own defaults explicitly (OpenBLAS: timeout 2^28 cycles;
GNU OpenMP: spin count 300000) so that minivgg's ``setdefault`` leaves them alone.
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

CONFIGS = [
    ("minivgg defaults", {}),
    ("library defaults", {"OPENBLAS_THREAD_TIMEOUT": "28", "GOMP_SPINCOUNT": "300000"}),
    ("only OPENBLAS_THREAD_TIMEOUT=4", {"GOMP_SPINCOUNT": "300000"}),
    ("only GOMP_SPINCOUNT=30000", {"OPENBLAS_THREAD_TIMEOUT": "28"}),
    ("minivgg + workqueue layer", {"NUMBA_THREADING_LAYER": "workqueue"}),
    ("library + workqueue layer", {"OPENBLAS_THREAD_TIMEOUT": "28", "GOMP_SPINCOUNT": "300000",
                                   "NUMBA_THREADING_LAYER": "workqueue"}),
]

WORKLOAD = r"""
import json, os, sys, time
import numpy as np                       # first, as users do: minivgg applies its settings anyway
import minivgg as mv
import numba
from numba import njit, prange
from minivgg.kernels import jit

reps = int(sys.argv[1])

@njit(parallel=True)
def prange_relu(x, y):
    for i in prange(x.size):
        y[i] = x[i] if x[i] > 0 else 0

def best(fn):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3

rng = np.random.default_rng(0)
conv, relu, pool = mv.Conv2d(256, 256, 3, padding=1, rng=0), mv.ReLU(), mv.MaxPool2d(2)
x = rng.standard_normal((1, 256, 56, 56), dtype=np.float32)

def conv_step():
    y = pool(relu(conv(x)))
    conv.backward(relu.backward(pool.backward(np.ones_like(y))))

a = rng.random((512, 4608), dtype=np.float32)
b = rng.random((4608, 784), dtype=np.float32)
cols = np.empty((1, 2304, 3136), np.float32)

def kernel_after_gemm():
    a @ b
    t0 = time.perf_counter()
    jit.im2col(x, (3, 3), (1, 1), (1, 1), out=cols)
    return time.perf_counter() - t0

flat = rng.standard_normal(4 * 1024 * 1024, dtype=np.float32)
out = np.empty_like(flat)

def prange_after_gemm():
    a @ b
    t0 = time.perf_counter()
    prange_relu(flat, out)
    return time.perf_counter() - t0

def best_inner(fn):
    fn()
    return min(fn() for _ in range(reps)) * 1e3

result = {
    "conv step": best(conv_step),
    "GEMM alone": best(lambda: a @ b),
    "im2col alone": best(lambda: jit.im2col(x, (3, 3), (1, 1), (1, 1), out=cols)),
    "im2col after GEMM": best_inner(kernel_after_gemm),
    "prange alone": best(lambda: prange_relu(flat, out)),
    "prange after GEMM": best_inner(prange_after_gemm),
    "layer": numba.threading_layer(),
    "env": {k: os.environ.get(k) for k in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")},
}
print(json.dumps(result))
"""

COLUMNS = ["conv step", "GEMM alone", "im2col alone", "im2col after GEMM", "prange alone",
           "prange after GEMM"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, two configurations")
    parser.add_argument("--rounds", type=int, default=2,
                        help="run every configuration this many times, alternating (min kept)")
    args = parser.parse_args(argv)
    reps, configs = (5, CONFIGS[:2]) if args.quick else (15, CONFIGS)
    rounds = 1 if args.quick else args.rounds
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    print("# idle-thread interference, 2 threads; times in ms (minimum over repeats and rounds)")
    print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}")
    results = {}
    for _ in range(rounds):                   # alternate configurations: drift hits all alike
        for name, extra in configs:
            env = {k: v for k, v in os.environ.items()
                   if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT",
                                "NUMBA_THREADING_LAYER")}
            env.update(extra)
            proc = subprocess.run([sys.executable, "-c", WORKLOAD, str(reps)], env=env, cwd=root,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name}: failed\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            old = results.get(name)
            if old:
                r.update({c: min(r[c], old[c]) for c in COLUMNS})
            results[name] = r
    header = ["configuration", "numba layer"] + COLUMNS
    rows = [[name, r["layer"]] + [f"{r[c]:.2f}" for c in COLUMNS] for name, r in results.items()]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    base = results.get("minivgg defaults")
    if base:
        print()
        for name, r in results.items():
            if name != "minivgg defaults":
                print(f"{name}: " + ", ".join(f"{c} x{r[c] / base[c]:.2f}" for c in
                                              ("conv step", "im2col after GEMM",
                                               "prange after GEMM")) + " vs minivgg defaults")
    print(textwrap.fill(f"\nload average at end {os.getloadavg()[0]:.2f}. A ratio above 1: that "
                        "configuration is slower than minivgg's defaults.", 100))


if __name__ == "__main__":
    main()
