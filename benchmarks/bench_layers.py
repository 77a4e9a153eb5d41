"""How fast are the layers, measured against this machine's own float32 GEMM (and PyTorch, if present).

    python benchmarks/bench_layers.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_layers.py --quick    # smoke run: fewer shapes and repeats
    python benchmarks/bench_layers.py --no-torch # skip PyTorch even when it is importable
    python benchmarks/bench_layers.py --threads=1  # everything (BLAS, kernels, torch) on 1 thread

On a machine shared with other jobs, multi-threaded BLAS degrades badly (its threads wait for each
other while descheduled); ``--threads=1`` compares the implementations per core, which stays
meaningful under load.

Every number is the *minimum* over repeats, and the contenders of one row (our backends, NumPy's
GEMM of the same M, N, K, PyTorch) run round-robin inside the same loop, so a ratio compares
timings taken under the same load. Absolute times drift from run to run (and with whatever else
the machine runs: the load average is printed); the ratios are the result.

GFLOP/s = 2 * multiply-adds / time; a convolution's backward (dx and dweight) does twice the
forward's multiply-adds. GB/s counts the bytes a kernel must read and write at least once.

PyTorch is never a dependency: without it, its columns are left out.
"""
# The timed closures run inside the loop iteration that made them (B023 is a false alarm).
# NumPy is imported before minivgg, as users do: minivgg's thread settings must hold either way
# (benchmarks/bench_import_order.py) (I001, E402).
# ruff: noqa: B023, I001

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# --threads N must reach OpenBLAS and Numba before they load: read it before any import
THREADS = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--threads=")), None)
if THREADS:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(THREADS)
import numpy as np  # noqa: E402  (first, as users do)
import minivgg as mv  # noqa: E402

import argparse  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402

from minivgg.backend import use_backend  # noqa: E402

try:
    import torch
    import torch.nn.functional as tF
except ImportError:                  # PyTorch is optional: only its columns depend on it
    torch = None

# (name, C_in, C_out, H=W, batch, how many times the shape occurs in VGG-16)
VGG16_CONVS = [
    ("conv1_1", 3, 64, 224, 1, 1), ("conv1_2", 64, 64, 224, 1, 1),
    ("conv2_1", 64, 128, 112, 1, 1), ("conv2_2", 128, 128, 112, 1, 1),
    ("conv3_1", 128, 256, 56, 1, 1), ("conv3_x", 256, 256, 56, 1, 2),
    ("conv4_1", 256, 512, 28, 1, 1), ("conv4_x", 512, 512, 28, 1, 2),
    ("conv5_x", 512, 512, 14, 1, 3),
]
CIFAR_CONVS = [("cifar 64->64", 64, 64, 32, 64, 0), ("cifar 3->64", 3, 64, 32, 64, 0)]
TINY_CONV = ("tiny 3->4 @8", 3, 4, 8, 1, 0)

# activation shapes (N, C, H, W) for pool / LRN / ReLU / dropout
POOL_SHAPES = [(1, 64, 224, 224), (1, 128, 112, 112), (1, 256, 56, 56), (1, 512, 28, 28),
               (1, 512, 14, 14), (64, 64, 32, 32)]
POOL3_SHAPES = [(1, 64, 224, 224), (1, 96, 55, 55), (64, 64, 32, 32)]
LRN_SHAPES = [(1, 64, 224, 224), (64, 64, 32, 32)]
ELEMENTWISE_SHAPES = [(1, 64, 224, 224), (1, 512, 28, 28), (64, 64, 32, 32), (64, 4096)]


class Untimed:
    """A callable for ``bench`` that runs ``setup`` untimed, then ``fn``, and records ``fn``'s
    time in ``.last`` (PyTorch's backward frees its graph, so each repeat needs a new forward)."""

    def __init__(self, setup, fn):
        self.setup, self.fn, self.last = setup, fn, None

    def __call__(self):
        self.setup()
        t0 = time.perf_counter()
        self.fn()
        self.last = time.perf_counter() - t0


def bench(fns, reps, budget=None):
    """Run the callables of ``fns`` round-robin ``reps`` times (after one warm-up each); return
    {name: minimum seconds}. ``budget`` (seconds) stops early once each one ran 3 times."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    start = time.perf_counter()
    for r in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            elapsed = fn.last if isinstance(fn, Untimed) else time.perf_counter() - t0
            best[name] = min(best[name], elapsed)
        if budget is not None and r >= 2 and time.perf_counter() - start > budget:
            break
    return best


def gemm(M, K, N):
    a = np.random.default_rng(0).random((M, K), dtype=np.float32)
    b = np.random.default_rng(1).random((K, N), dtype=np.float32)
    out = np.empty((M, N), np.float32)
    return lambda: np.matmul(a, b, out=out)


def rate(flops, seconds):
    return flops / seconds / 1e9


def table(title, header, rows, note=None):
    print(f"\n## {title}")
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    if note:
        print(textwrap.fill(note, 100))


def f1(x):
    return f"{x:.1f}" if x == x else "-"


def f2(x):
    return f"{x:.2f}" if x == x else "-"


NAN = float("nan")


# ------------------------------------------------------------------------------------------------
REFERENCE_FLOPS = 2 * 512 * 4608 * 784


def bench_convs(args):
    shapes = list(VGG16_CONVS) + list(CIFAR_CONVS)
    if args.quick:
        shapes = [VGG16_CONVS[1], VGG16_CONVS[5], VGG16_CONVS[8], CIFAR_CONVS[0]]
    rows, refs, totals = [], [], {"numba": 0.0, "torch": 0.0, "flops": 0.0, "ref": 0.0}
    rng = np.random.default_rng(0)
    for name, C, F, HW, N, count in [TINY_CONV] + shapes:
        x = rng.standard_normal((N, C, HW, HW), dtype=np.float32)
        macs = N * F * C * 9 * HW * HW
        backends = ["naive", "numpy", "numba"] if name.startswith("tiny") else ["numpy", "numba"]
        if args.quick and not name.startswith("tiny"):
            backends = ["numba"]
        fns = {}
        for b in backends:
            layer = mv.Conv2d(C, F, 3, padding=1, backend=b, rng=0)
            with use_backend(b):
                y = layer.forward(x)
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            fns[b + " fwd"] = (lambda layer=layer: layer.forward(x))
            fns[b + " bwd"] = (lambda layer=layer, dy=dy: layer.backward(dy))
        fns["gemm"] = gemm(F, C * 9, N * HW * HW)
        fns["gemm ref"] = REFERENCE_GEMM          # timed in the same round-robin as the layer
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            tw = torch.from_numpy(layer.params["weight"].copy()).requires_grad_()
            tb = torch.zeros(F, requires_grad=True)
            tdy = torch.from_numpy(dy)
            fns["torch fwd"] = lambda: tF.conv2d(tx, tw, tb, padding=1)
            graph = {}
            fns["torch bwd"] = Untimed(
                lambda: graph.__setitem__("y", tF.conv2d(tx, tw, tb, padding=1)),
                lambda: torch.autograd.grad(graph["y"], (tx, tw, tb), tdy))
        reps = 3 if name.startswith("tiny") else args.reps
        t = bench(fns, reps, budget=2 if args.quick else None)
        g_same = rate(2 * macs, t["gemm"])
        g_ref = rate(REFERENCE_FLOPS, t["gemm ref"])
        refs.append(g_ref)
        for b in backends:
            tf, tb_ = t[b + " fwd"], t[b + " bwd"]
            fb = rate(6 * macs, tf + tb_)
            tt = (t["torch fwd"] + t["torch bwd"]) if torch is not None else NAN
            rows.append([name, f"{N}x{C}x{HW}x{HW}->{F}", b, f2(tf * 1e3), f2(tb_ * 1e3),
                         f1(rate(2 * macs, tf)), f1(rate(4 * macs, tb_)), f1(fb),
                         f1(g_same), f1(g_ref), f2(fb / g_ref), f2(fb / g_same),
                         f2(t["torch fwd"] * 1e3) if torch is not None else "-",
                         f2(t["torch bwd"] * 1e3) if torch is not None else "-",
                         f2((tf + tb_) / tt)])
            if b == "numba" and count:
                totals["numba"] += count * (tf + tb_)
                totals["torch"] += count * tt
                totals["flops"] += count * 6 * macs
                totals["ref"] += count * (tf + tb_) * g_ref     # time-weighted reference rate
    table("Conv2d 3x3/1 pad 1, float32: forward and backward (dx, dweight, dbias)",
          ["layer", "shape", "backend", "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s", "f+b GF/s",
           "GEMM same MNK", "GEMM ref", "f+b / GEMM", "f+b / same", "torch fwd", "torch bwd", "ours / torch"],
          rows,
          note="All rates in GFLOP/s. GEMM ref: NumPy's float32 (512x4608)@(4608x784), timed "
               "in the same round-robin as the row (it drifts with the machine's load); "
               "f+b / GEMM: our forward+backward rate over it. f+b / same: over a GEMM of the "
               "layer's own "
               "M=C_out, K=9*C_in, N=batch*H*W. ours / torch: time ratio, < 1 means faster.")
    if totals["flops"] and not args.quick:
        vs = totals["numba"] / totals["torch"] if torch is not None else NAN
        ratio_to_ref = rate(totals["flops"], totals["numba"]) / (totals["ref"] / totals["numba"])
        print(f"\nVGG-16's 13 conv layers at 224x224, batch 1, forward+backward: numba "
              f"{totals['numba'] * 1e3:.0f} ms ({rate(totals['flops'], totals['numba']):.0f} "
              f"GFLOP/s = {ratio_to_ref:.2f} x the reference GEMM timed alongside)"
              + (f", PyTorch {totals['torch'] * 1e3:.0f} ms: ours / torch = {vs:.2f}"
                 if torch is not None else ""))


# ------------------------------------------------------------------------------------------------
def bench_pool(args):
    rows = []
    rng = np.random.default_rng(1)
    cases = [((2, 2), s) for s in POOL_SHAPES] + [((3, 3), s) for s in POOL3_SHAPES]
    if args.quick:
        cases = [cases[0], cases[5], cases[6]]
    for kernel, shape in cases:
        x = rng.standard_normal(shape, dtype=np.float32)
        fns = {}
        for b in ["numpy", "numba"]:
            pool = mv.MaxPool2d(kernel, 2, backend=b)
            y = pool.forward(x)
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            fns[b + " fwd"] = (lambda pool=pool: pool.forward(x))
            fns[b + " bwd"] = (lambda pool=pool, dy=dy: pool.backward(dy))
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            tdy = torch.from_numpy(dy)
            fns["torch fwd"] = lambda: tF.max_pool2d(tx, kernel, 2)   # with indices (grad on)
            graph = {}
            fns["torch bwd"] = Untimed(
                lambda: graph.__setitem__("y", tF.max_pool2d(tx, kernel, 2)),
                lambda: torch.autograd.grad(graph["y"], tx, tdy))
        t = bench(fns, 3 if args.quick else args.reps)
        nbytes_f = x.nbytes + y.nbytes + y.size * 8              # read x, write y and argmax
        nbytes_b = dy.nbytes + y.size * 8 + x.nbytes             # read dy, argmax, write dx
        for b in ["numpy", "numba"]:
            tf, tb_ = t[b + " fwd"], t[b + " bwd"]
            tt = t["torch fwd"] + t["torch bwd"] if torch is not None else NAN
            rows.append([f"{kernel[0]}x{kernel[1]}/2", "x".join(map(str, shape)), b,
                         f2(tf * 1e3), f2(tb_ * 1e3), f1(nbytes_f / tf / 1e9),
                         f1(nbytes_b / tb_ / 1e9),
                         f2(t["torch fwd"] * 1e3) if torch is not None else "-",
                         f2(t["torch bwd"] * 1e3) if torch is not None else "-",
                         f2(tf / t["torch fwd"]) if torch is not None else "-",
                         f2((tf + tb_) / tt)])
    table("MaxPool2d, float32", ["window", "input", "backend", "fwd ms", "bwd ms", "fwd GB/s",
                                 "bwd GB/s", "torch fwd", "torch bwd", "fwd / torch",
                                 "f+b / torch"], rows,
          note="torch forward runs with requires_grad, so it also computes the arg-max indices "
               "it needs for backward, as ours always does. Ratios < 1: we are faster.")


def bench_lrn(args):
    rows = []
    rng = np.random.default_rng(2)
    for shape in LRN_SHAPES[:1] if args.quick else LRN_SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        fns = {}
        for b in ["numpy", "numba"]:
            lrn = mv.LocalResponseNorm(backend=b)             # n=5, k=2, alpha=1e-4, beta=0.75
            y = lrn.forward(x)
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            fns[b + " fwd"] = (lambda lrn=lrn: lrn.forward(x))
            fns[b + " bwd"] = (lambda lrn=lrn, dy=dy: lrn.backward(dy))
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            tdy = torch.from_numpy(dy)
            # torch's alpha multiplies the mean of the squares: alpha_torch = n * alpha_ours
            lrn_t = lambda: tF.local_response_norm(tx, 5, alpha=5e-4, beta=0.75, k=2.0)  # noqa
            fns["torch fwd"] = lrn_t
            graph = {}
            fns["torch bwd"] = Untimed(lambda: graph.__setitem__("y", lrn_t()),
                                           lambda: torch.autograd.grad(graph["y"], tx, tdy))
        t = bench(fns, 3 if args.quick else args.reps)
        for b in ["numpy", "numba"]:
            tf, tb_ = t[b + " fwd"], t[b + " bwd"]
            tt = t["torch fwd"] + t["torch bwd"] if torch is not None else NAN
            rows.append(["x".join(map(str, shape)), b, f2(tf * 1e3), f2(tb_ * 1e3),
                         f1(3 * x.nbytes / tf / 1e9), f1(4 * x.nbytes / tb_ / 1e9),
                         f2(t["torch fwd"] * 1e3) if torch is not None else "-",
                         f2(t["torch bwd"] * 1e3) if torch is not None else "-",
                         f2((tf + tb_) / tt)])
    table("LocalResponseNorm n=5 (A-LRN), float32",
          ["input", "backend", "fwd ms", "bwd ms", "fwd GB/s", "bwd GB/s", "torch fwd",
           "torch bwd", "f+b / torch"], rows,
          note="GB/s: forward reads x and writes y and scale; backward reads dy, x, scale and "
               "writes dx.")


def bench_elementwise(args):
    rows = []
    rng = np.random.default_rng(3)
    for shape in ELEMENTWISE_SHAPES[:1] if args.quick else ELEMENTWISE_SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        dy = rng.standard_normal(shape, dtype=np.float32)
        for kind in ["ReLU", "Dropout"]:
            fns = {}
            for b in ["numpy", "numba"]:
                with use_backend(b):
                    layer = mv.ReLU() if kind == "ReLU" else mv.Dropout(0.5, rng=0)
                    layer.forward(x)

                    def fwd(layer=layer, b=b):
                        with use_backend(b):
                            layer.forward(x)

                    def bwd(layer=layer, b=b):
                        with use_backend(b):
                            layer.backward(dy)
                fns[b + " fwd"], fns[b + " bwd"] = fwd, bwd
            if torch is not None:
                tx = torch.from_numpy(x).requires_grad_()
                tdy = torch.from_numpy(dy)
                op = (lambda: tF.relu(tx)) if kind == "ReLU" else \
                     (lambda: tF.dropout(tx, 0.5, training=True))
                fns["torch fwd"] = op
                graph = {}
                fns["torch bwd"] = Untimed(lambda op=op: graph.__setitem__("y", op()),
                                               lambda: torch.autograd.grad(graph["y"], tx, tdy))
            t = bench(fns, 3 if args.quick else args.reps)
            # bytes: ReLU fwd reads x, writes y; bwd reads dy, y, writes dx. Dropout fwd also
            # draws the uniforms (written then read), bwd reads dy and the draws, writes dx.
            nf = 2 * x.nbytes if kind == "ReLU" else 4 * x.nbytes
            nb = 3 * x.nbytes
            for b in ["numpy", "numba"]:
                tf, tb_ = t[b + " fwd"], t[b + " bwd"]
                rows.append([kind, "x".join(map(str, shape)), b, f2(tf * 1e3), f2(tb_ * 1e3),
                             f1(nf / tf / 1e9), f1(nb / tb_ / 1e9),
                             f2(t["torch fwd"] * 1e3) if torch is not None else "-",
                             f2(t["torch bwd"] * 1e3) if torch is not None else "-",
                             f2(tf / t["torch fwd"]) if torch is not None else "-",
                             f2(tb_ / t["torch bwd"]) if torch is not None else "-"])
    table("ReLU and Dropout(p=0.5), float32",
          ["layer", "input", "backend", "fwd ms", "bwd ms", "fwd GB/s", "bwd GB/s", "torch fwd",
           "torch bwd", "fwd / torch", "bwd / torch"], rows,
          note="Dropout draws its mask from the layer's NumPy Generator (reproducible from a "
               "seed); that draw is most of its forward time.")


# ------------------------------------------------------------------------------------------------
COMPILE_SCRIPT = r"""
import time
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np
from minivgg.kernels import jit
t1, c1 = time.perf_counter(), time.process_time()
for dtype in (np.float32, np.float64):
    x = np.ones((1, 2, 6, 6), dtype)
    cols = jit.im2col(x, (3, 3), (1, 1), (1, 1))
    jit.col2im(cols, x.shape, (3, 3), (1, 1), (1, 1))
    y, a = jit.maxpool_forward(x, (2, 2), (2, 2))
    jit.maxpool_backward(y, a, x.shape)
    y, s = jit.lrn_forward(x, 5, 1e-4, 0.75, 2.0)
    jit.lrn_backward(y, x, s, 5, 1e-4, 0.75)
    y = jit.relu_forward(x)
    jit.relu_backward(x, y)
    jit.dropout_apply(x, x, 0.5, 2.0)
t2, c2 = time.perf_counter(), time.process_time()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {c2 - c1:.3f}")
"""


def bench_compile():
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
        for label in ["cold cache (compile)", "warm cache (load)", "warm cache (load), again"]:
            out = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], env=env, cwd=root,
                                 capture_output=True, text=True, check=True).stdout.split()
            rows.append([label, f2(float(out[0])), f2(float(out[1])), f2(float(out[2]))])
    table("Numba compile and cache load: every kernel, float32 and float64, in a new process",
          ["NUMBA_CACHE_DIR", "import s", "first calls s", "first calls CPU s"], rows,
          note="'first calls' is the time of calling every kernel once per dtype on a tiny "
               "input: on a cold cache that is the compile time, on a warm one the load time. "
               "Compiling is single-threaded, so on a busy machine the CPU time is the fairer "
               "number.")


# ------------------------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    parser.add_argument("--reps", type=int, default=7, help="repeats per measurement (min taken)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS, our kernels and torch (--threads=N form)")
    parser.add_argument("--only", default="conv,pool,lrn,elementwise,compile",
                        help="comma-separated sections to run")
    args = parser.parse_args(argv)
    global torch
    if args.no_torch:
        torch = None
    if args.quick:
        args.reps = min(args.reps, 3)
    threads = args.threads or min(2, os.cpu_count() or 1)
    if args.threads:
        from minivgg.kernels import jit
        jit.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(threads)

    print("# minivgg layer benchmark")
    print(f"numpy {np.__version__}, numba {numba.__version__}, "
          f"torch {torch.__version__ if torch is not None else 'not installed'}; "
          f"{os.cpu_count()} CPUs, {threads} threads for BLAS, kernels and torch")
    print("env: " + ", ".join(f"{k}={os.environ.get(k)}" for k in
                              ["OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT",
                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"]))
    load = os.getloadavg()[0]
    print(f"load average (1 min) at start: {load:.2f}" +
          ("  <- other processes are running: absolute times are inflated" if load > 0.5 else ""))
    sections = set(args.only.split(","))
    global REFERENCE_GEMM
    REFERENCE_GEMM = gemm(512, 4608, 784)
    t = bench({"gemm": REFERENCE_GEMM}, 10)["gemm"]
    print(f"reference: NumPy float32 GEMM (512x4608)@(4608x784): "
          f"{rate(REFERENCE_FLOPS, t):.0f} GFLOP/s")
    if "conv" in sections:
        bench_convs(args)
    if "pool" in sections:
        bench_pool(args)
    if "lrn" in sections:
        bench_lrn(args)
    if "elementwise" in sections:
        bench_elementwise(args)
    if "compile" in sections:
        bench_compile()
    t = bench({"gemm": REFERENCE_GEMM}, 10)["gemm"]
    print(f"\nreference GEMM again at the end: {rate(REFERENCE_FLOPS, t):.0f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
