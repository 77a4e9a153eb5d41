"""Whole networks: time per image, where the time goes by layer type, and peak memory of a training
step, beside the same network written in plain PyTorch (when PyTorch is importable).

    python benchmarks/bench_model.py            # VGG-16 at 224 (batch 1) and A-CIFAR at 32 (batch 64)
    python benchmarks/bench_model.py --quick    # smoke run: narrow networks, one repeat
    python benchmarks/bench_model.py --no-torch

Targets (reported, not asserted): VGG-16 forward+backward at 224, batch 1, within 1.5x of PyTorch
on the CPU; peak resident memory of a full VGG-16 training step under 2.5 GB.

A training step is forward, soft-max loss, backward and ``minivgg.optim.SGD.step`` (momentum 0.9,
weight decay 5e-4), against ``torch.optim.SGD`` with the same settings.
Peak memory is the peak resident set (VmHWM) of a fresh child process that only builds the
network and runs a few steps, so nothing else the benchmark did is counted; the child's resident
memory after importing its libraries is printed beside it.

Times are the minimum over repeats, minivgg's and PyTorch's runs taking turns so that both see the
same load. Per-layer-type shares come from timing each layer's forward
and backward separately in one extra pass (the sum is close to, not exactly, the whole step).
Other processes on the machine inflate absolute times: the load average is printed.
"""
# NumPy is imported before minivgg, as users do: minivgg's thread settings must hold either way
# (benchmarks/bench_import_order.py) (I001, E402).
# ruff: noqa: I001

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402  (first, as users do)
import minivgg as mv  # noqa: E402

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402


from minivgg.layers import softmax_cross_entropy  # noqa: E402
from minivgg.optim import SGD  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 1e-2, 0.9, 5e-4


def networks(quick):
    """(label, build_vgg kwargs, batch): the paper's VGG-16 and the CLI's default small net."""
    vgg16 = dict(config="D", input_size=224, num_classes=1000)
    small = dict(config="A", input_size=32, width=0.25, fc_width=128, num_classes=10)
    if quick:
        return [("VGG-16 (width 1/8, fc 512)", {**vgg16, "width": 1 / 8, "fc_width": 512}, 1),
                ("A, width 1/4, fc 128 @32", small, 8)]
    return [("VGG-16 @224", vgg16, 1), ("A, width 1/4, fc 128 @32", small, 64)]


def best_of(tasks, repeats):
    """{framework: {task: seconds}}: the minimum over ``repeats``, the frameworks' runs of a task
    taking turns, so a ratio compares timings taken under the same load."""
    best = {framework: {} for framework in tasks}
    for _ in range(repeats):
        for key in ("forward", "both", "step"):
            for framework, fns in tasks.items():
                start = time.perf_counter()
                fns[key]()
                elapsed = time.perf_counter() - start
                best[framework][key] = min(elapsed, best[framework].get(key, elapsed))
    return best


def per_layer_type(model, x, labels):
    """{layer type: (forward seconds, backward seconds)} from one timed pass."""
    spent = defaultdict(lambda: [0.0, 0.0])
    for layer in model.layers.values():
        start = time.perf_counter()
        x = layer.forward(x)
        spent[type(layer).__name__][0] += time.perf_counter() - start
    start = time.perf_counter()
    _, grad = softmax_cross_entropy(x, labels)
    spent["loss"][0] += time.perf_counter() - start
    for layer in reversed(model.layers.values()):
        start = time.perf_counter()
        grad = layer.backward(grad)
        spent[type(layer).__name__][1] += time.perf_counter() - start
    return spent


def minivgg_tasks(kwargs, batch):
    """The timed closures, warmed up (JIT, buffers, page faults), and a per-layer timer."""
    model = mv.build_vgg(**kwargs, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, kwargs["input_size"], kwargs["input_size"]), np.float32)
    labels = rng.integers(0, kwargs["num_classes"], batch)
    opt = SGD(model, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    model.loss(x, labels)
    return {"forward": lambda: model.forward(x), "both": lambda: model.loss(x, labels),
            "step": lambda: (model.loss(x, labels), opt.step()),
            "shares": lambda: per_layer_type(model, x, labels)}


def torch_network(torch, kwargs):
    """The same network in torchvision's layout (convs, ReLUs, pools; Linear, ReLU, Dropout)."""
    from minivgg.configs import parse_config
    nn = torch.nn
    layers, channels, size = [], 3, kwargs["input_size"]
    for spec in parse_config(kwargs["config"]):
        if spec[0] == "conv":
            out = max(1, round(spec[1] * kwargs.get("width", 1.0)))
            layers += [nn.Conv2d(channels, out, spec[2], padding=spec[2] // 2), nn.ReLU()]
            channels = out
        elif spec[0] == "pool":
            layers.append(nn.MaxPool2d(2, 2))
            size //= 2
    fc = kwargs.get("fc_width", 4096)
    layers += [nn.Flatten(), nn.Linear(channels * size * size, fc), nn.ReLU(), nn.Dropout(),
               nn.Linear(fc, fc), nn.ReLU(), nn.Dropout(), nn.Linear(fc, kwargs["num_classes"])]
    return nn.Sequential(*layers)


def torch_tasks(torch, kwargs, batch):
    net = torch_network(torch, kwargs)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    size = kwargs["input_size"]
    x = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, kwargs["num_classes"], (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def both():
        net.zero_grad(set_to_none=False)
        loss_fn(net(x), labels).backward()

    def forward():
        with torch.no_grad():
            net(x)
    both()
    return {"forward": forward, "both": both, "step": lambda: (both(), opt.step())}


def resident_mb(field):
    """VmHWM (peak) or VmRSS (now) of this process, in MB. Not ``ru_maxrss``: Linux carries a
    parent's peak over into a child across fork and exec, so a child would report the parent's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024               # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_probe(kwargs, batch, framework):
    """Run in a child process: a few training steps; print the peak resident set as JSON."""
    if framework == "torch":
        import torch
        baseline = resident_mb("VmRSS")
        step = torch_tasks(torch, kwargs, batch)["step"]
    else:
        baseline = resident_mb("VmRSS")
        step = minivgg_tasks(kwargs, batch)["step"]
    for _ in range(2):
        step()
    print(json.dumps({"peak_mb": resident_mb("VmHWM"), "baseline_mb": baseline}))


def measure_memory(kwargs, batch, framework):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe",
                          json.dumps([kwargs, batch, framework])],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(label, batch, ours, theirs, shares, memory):
    print(f"\n== {label}, batch {batch} ==")
    print(f"{'':<22}{'minivgg':>12}{'PyTorch':>12}{'ratio':>8}   (ms per image)")
    for key, name in (("forward", "forward"), ("both", "forward+backward"),
                      ("step", "training step")):
        mine = 1e3 * ours[key] / batch
        line = f"{name:<22}{mine:>12.2f}"
        if theirs:
            other = 1e3 * theirs[key] / batch
            line += f"{other:>12.2f}{mine / other:>8.2f}"
        print(line)
    total = sum(f + b for f, b in shares.values())
    print("time by layer type (one pass, ms):    forward  backward   share")
    for kind, (f, b) in sorted(shares.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {kind:<34}{1e3 * f:>8.1f}{1e3 * b:>10.1f}{100 * (f + b) / total:>7.1f}%")
    for framework, mem in memory.items():
        print(f"peak resident memory of a training step ({framework}): {mem['peak_mb']:.0f} MB "
              f"(of which {mem['baseline_mb']:.0f} MB after imports)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: narrow nets, 1 repeat")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        return memory_probe(*json.loads(args.memory_probe))
    try:
        import torch
    except ImportError:
        torch = None
    torch = None if args.no_torch else torch
    repeats = 1 if args.quick else 3
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; backend "
          f"{mv.get_backend()}; torch {torch.__version__ if torch else 'not used'}"
          + (f" ({torch.get_num_threads()} threads)" if torch else ""))
    for label, kwargs, batch in networks(args.quick):
        tasks = {"minivgg": minivgg_tasks(kwargs, batch)}
        if torch:
            tasks["PyTorch"] = torch_tasks(torch, kwargs, batch)
        times = best_of(tasks, repeats)
        shares = tasks["minivgg"]["shares"]()
        del tasks                                  # free both networks before the next one
        memory = {"minivgg": measure_memory(kwargs, batch, "minivgg")}
        if torch:
            memory["PyTorch"] = measure_memory(kwargs, batch, "torch")
        report(label, batch, times["minivgg"], times.get("PyTorch"), shares, memory)


if __name__ == "__main__":
    main()
