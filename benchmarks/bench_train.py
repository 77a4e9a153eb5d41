"""Training throughput of the CLI's default small VGG (``minivgg train``), in images per second,
beside the same network in plain PyTorch on the CPU when torch is importable.

    python benchmarks/bench_train.py              # the CLI's batch (32) and 32x32 crops
    python benchmarks/bench_train.py --steps 20 --no-torch
    python benchmarks/bench_train.py --threads 1 --layers --no-epoch    # per core, layer by layer

Three numbers for minivgg:
    step      one SGD iteration on a ready batch: model.loss (forward, soft-max loss, backward)
              and minivgg.optim.SGD.step (momentum 0.9, weight decay 5e-4)
    epoch     what ``minivgg train`` sees: Trainer.train_epoch, so the paper's augmentation
              (random crop, flip, colour shift, mean subtraction) and shuffling are included
    PyTorch   the same step with torch.optim.SGD, same layers (benchmarks/bench_model.py's
              ``torch_network``), torch's own threads
Target: minivgg's step within 1.5x of PyTorch's time (goal 1.2x). Step times are medians of --steps
iterations after a warm-up, the two frameworks taking turns step by step, in wall time and in CPU
time (the process's, all threads). Other processes inflate every number: the load average is
printed; compare the columns of one run, not runs with each other. ``--threads 1`` pins
minivgg's kernels, BLAS and PyTorch to one thread each: the CPU-time ratio is then a per-core
comparison that holds on a busy machine (benchmarks/README.md has recorded runs).
"""
# NumPy is imported before minivgg, as users do: minivgg's thread settings must hold either way
# (benchmarks/bench_import_order.py) (I001, E402).
# ruff: noqa: I001

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), HERE]
import numpy as np  # noqa: E402  (first, as users do)
import minivgg  # noqa: E402, F401

import argparse  # noqa: E402
import time  # noqa: E402


from minivgg.cli import build_parser  # noqa: E402
from minivgg.data import synthetic_splits  # noqa: E402
from minivgg.optim import SGD  # noqa: E402
from minivgg.recipe import RECIPE  # noqa: E402
from minivgg.train import Trainer, pixel_std  # noqa: E402
from minivgg.vgg import build_vgg  # noqa: E402


def default_network():
    """build_vgg keyword arguments of ``minivgg train`` with no options, read from the recipe the
    CLI takes its defaults from (minivgg.recipe.RECIPE), so the benchmark follows them."""
    return dict(config=RECIPE.config, num_classes=10, input_size=RECIPE.input_size,
                width=RECIPE.width, fc_width=RECIPE.fc_width, dropout=RECIPE.dropout,
                init=RECIPE.init, classifier_std=RECIPE.classifier_std)


def median_times(fns, steps):
    """Median (wall, CPU) seconds per call of each of ``fns``, called in turn (a, b, a, b, ...)
    after one warm-up call each (Numba compilation, buffers), so a change in the machine's load
    hits both sides alike. CPU time is the process's (all threads): on a busy machine it counts
    the work done, not the time spent waiting for a core."""
    for fn in fns:
        fn()
    wall, cpu = [[] for _ in fns], [[] for _ in fns]
    for _ in range(steps):
        for fn, w, c in zip(fns, wall, cpu):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            w.append(time.perf_counter() - start)
            c.append(time.process_time() - start_cpu)
    return [(float(np.median(w)), float(np.median(c))) for w, c in zip(wall, cpu)]


def pin_threads(n, torch):
    """n threads for minivgg's kernels, BLAS (through threadpoolctl) and PyTorch."""
    from threadpoolctl import threadpool_limits
    from minivgg.kernels import jit
    jit.set_num_threads(n)
    threadpool_limits(n)
    if torch is not None:
        torch.set_num_threads(n)


def minivgg_step(kwargs, batch):
    """One SGD iteration of the CLI's network (Standardise in front, as ``minivgg train``
    builds it) on a fixed batch of pixel-scale inputs."""
    model = build_vgg(**kwargs, input_std=60.0)
    optimizer = SGD(model)
    rng = np.random.default_rng(0)
    size = kwargs["input_size"]
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32) * 60   # pixels - mean
    labels = rng.integers(0, kwargs["num_classes"], batch)
    return lambda: (model.loss(x, labels), optimizer.step())


def torch_step(torch, kwargs, batch):
    """The same step in PyTorch: benchmarks/bench_model.py's ``torch_network``, torch.optim.SGD."""
    from bench_model import torch_network
    net = torch_network(torch, kwargs)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    size = kwargs["input_size"]
    x = torch.randn(batch, 3, size, size) * 60
    labels = torch.randint(0, kwargs["num_classes"], (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), labels).backward()
        opt.step()
    return step


def layer_times(kwargs, batch, torch, repeats=7):
    """{layer name: [minivgg forward, backward, PyTorch forward, backward]} seconds, the minimum
    over ``repeats`` passes, the two frameworks taking turns. One CPU thread's time when pinned
    to one thread (else wall time). PyTorch's layers run one by one, each on a detached input
    that requires a gradient, so its per-layer numbers carry autograd's per-call overhead and
    its first layer computes an input gradient that a real step skips: compare whole steps for
    the ratio, layers for where the time goes."""
    from minivgg.kernels import jit
    from minivgg.layers import softmax_cross_entropy
    clock = time.thread_time if jit.get_num_threads() == 1 else time.perf_counter
    model = build_vgg(**kwargs, input_std=60.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, kwargs["input_size"], kwargs["input_size"]), np.float32)
    labels = rng.integers(0, kwargs["num_classes"], batch)
    names = list(model.layers)

    def ours():
        spent, h = {name: [0.0, 0.0] for name in names}, x
        for name, layer in model.layers.items():
            start = clock()
            h = layer.forward(h)
            spent[name][0] = clock() - start
        _, grad = softmax_cross_entropy(h, labels)
        for name, layer in reversed(model.layers.items()):
            start = clock()
            grad = layer.backward(grad)
            spent[name][1] = clock() - start
        return spent

    passes = [ours]
    if torch is not None:
        from bench_model import torch_network
        net = torch_network(torch, kwargs)
        torch_names = [n for n in names if n != "standardise"]      # torch has no Standardise
        tx = torch.from_numpy(x)

        def theirs():
            spent, h, pairs = {name: [0.0, 0.0] for name in names}, tx, []
            for name, module in zip(torch_names, net):
                h = h.detach().requires_grad_(True)
                start = clock()
                out = module(h)
                spent[name][0] = clock() - start
                pairs.append((name, h, out))
                h = out
            grad = torch.ones_like(out) / batch
            for name, h, out in reversed(pairs):
                start = clock()
                out.backward(grad)
                spent[name][1] = clock() - start
                grad = h.grad
            return spent
        passes.append(theirs)
    best = {name: [np.inf] * 4 for name in names}
    for _ in range(repeats):
        for k, one_pass in enumerate(passes):
            for name, (f, b) in one_pass().items():
                best[name][2 * k:2 * k + 2] = np.minimum(best[name][2 * k:2 * k + 2], [f, b])
    return {name: [0.0 if t == np.inf else t for t in row] for name, row in best.items()}


def print_layer_times(times):
    print(f"{'layer':<12}{'minivgg fwd':>12}{'bwd':>8}{'PyTorch fwd':>13}{'bwd':>8}   (ms)")
    for name, row in times.items():
        print(f"{name:<12}" + "".join(f"{1e3 * t:{w}.2f}" for t, w in zip(row, (12, 8, 13, 8))))
    total = np.sum(list(times.values()), axis=0)
    print(f"{'total':<12}" + "".join(f"{1e3 * t:{w}.2f}" for t, w in zip(total, (12, 8, 13, 8))))


def epoch_images_per_s(kwargs, batch, steps):
    """images/s of Trainer.train_epoch over ``steps`` batches of synthetic images (the CLI's
    default image size), after one warm-up epoch."""
    image_size = build_parser().parse_args(["train"]).image_size
    train, val = synthetic_splits(batch * steps, 16, size=image_size)
    trainer = Trainer(build_vgg(**kwargs, input_std=pixel_std(train)), train, val,
                      batch_size=batch, progress=False, log=None)
    trainer.train_epoch()
    return trainer.train_epoch()["images_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=RECIPE.batch_size, help="images per step")
    parser.add_argument("--steps", type=int, default=15, help="timed steps")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--threads", type=int, default=None,
                        help="pin minivgg's kernels, BLAS and PyTorch to this many threads (needs "
                             "threadpoolctl); default: each library's own")
    parser.add_argument("--no-epoch", action="store_true", help="skip the Trainer epoch")
    parser.add_argument("--layers", action="store_true",
                        help="also time every layer's forward and backward, beside PyTorch's")
    args = parser.parse_args()
    kwargs = default_network()
    try:
        import torch
    except ImportError:
        torch = None
    torch = None if args.no_torch else torch
    if args.threads:
        pin_threads(args.threads, torch)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; network: VGG "
          f"{kwargs['config']}, width {kwargs['width']:g}, fc {kwargs['fc_width']}, "
          f"{kwargs['input_size']}x{kwargs['input_size']}, batch {args.batch}; threads: "
          + (f"{args.threads} (pinned)" if args.threads else "the libraries' own"))
    fns = [minivgg_step(kwargs, args.batch)]
    if torch is not None:
        fns.append(torch_step(torch, kwargs, args.batch))
    times = median_times(fns, args.steps)
    (wall, cpu) = times[0]
    print(f"minivgg step   {args.batch / wall:8.0f} images/s  ({1e3 * wall:.1f} ms per step, "
          f"{1e3 * cpu:.1f} ms CPU)")
    if torch is None:
        print("PyTorch        not importable (or --no-torch): skipped")
    else:
        (torch_wall, torch_cpu) = times[1]
        print(f"PyTorch step   {args.batch / torch_wall:8.0f} images/s  ({1e3 * torch_wall:.1f} ms "
              f"per step, {1e3 * torch_cpu:.1f} ms CPU, {torch.get_num_threads()} threads)")
        print(f"minivgg / PyTorch time per step: {wall / torch_wall:.2f}x wall, "
              f"{cpu / torch_cpu:.2f}x CPU (target: <= 1.5x, goal 1.2x)")
    if args.layers:
        print_layer_times(layer_times(kwargs, args.batch, torch))
    if args.no_epoch:
        return
    print(f"minivgg epoch  {epoch_images_per_s(kwargs, args.batch, args.steps):8.0f} images/s  "
          f"(Trainer.train_epoch: augmentation and shuffling included)")


if __name__ == "__main__":
    main()
