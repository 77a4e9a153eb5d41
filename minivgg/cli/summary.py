"""``minivgg summary D``: the per-layer arithmetic of a configuration, computed from its plan
(no weight is allocated: ``summary D --width 1000`` needs no memory).

Which network: a configuration is trained at ``--trained-at`` (224, the paper's crop). An
``--input`` at least that large reads as the paper's dense evaluation (Sec. 3.2): the same
network, fc6-8 as convolutions, applied to the whole image, a class score map averaged. A smaller
input, or ``--rebuild``, builds the network for that input instead (fc6 sized to its final map).
The first line says which.
"""

import argparse
import json
import math

from .common import CONFIG_NAMES, FORMATTER, CommandError, config, new_figure, positive_int, save_figure


def width(text):
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite positive number; got {text}")
    return value


def add_parser(commands):
    summary = commands.add_parser(
        "summary", formatter_class=FORMATTER, help="per-layer arithmetic of a configuration",
        description="Output shape, parameters, multiply-adds, activation memory and receptive "
                    "field of every layer (nothing is trained or run, no weight allocated).")
    summary.add_argument("config", type=config, metavar="CONFIG", help=CONFIG_NAMES)
    summary.add_argument("--input", type=positive_int, default=224, help="input side, pixels")
    summary.add_argument("--trained-at", type=positive_int, default=224,
                         help="the side the network was built for; a larger --input is read as "
                              "dense evaluation of that network")
    summary.add_argument("--rebuild", action="store_true",
                         help="build the network for --input (fc6 sized to its final map) "
                              "instead of evaluating the --trained-at network densely")
    summary.add_argument("--width", type=width, default=1.0,
                         help="multiplier of the conv channels (a finite positive number)")
    summary.add_argument("--fc-width", type=positive_int, default=4096,
                         help="channels of fc6 and fc7")
    summary.add_argument("--num-classes", type=positive_int, default=1000, help="classes")
    summary.add_argument("--count", choices=("macs", "flops"), default="macs",
                         help="a multiply-accumulate is one operation (macs) or two (flops)")
    summary.add_argument("--bias", action="store_true", help="also count bias additions")
    summary.add_argument("--elementwise", action="store_true",
                         help="also count ReLU, pooling, LRN and averaging work")
    summary.add_argument("--units", choices=("iec", "si"), default="iec",
                         help="bytes in KiB/MiB (powers of 1024) or kB/MB (powers of 1000)")
    summary.add_argument("--format", choices=("table", "json", "csv"), default="table",
                         help="a table to read, or every column as JSON or CSV")
    summary.add_argument("--compare", action="store_true",
                         help="the figures other tools publish for this network, reproduced "
                              "from their conventions (VGG at 224)")
    summary.add_argument("--train-memory", type=positive_int, metavar="BATCH",
                         help="predicted memory of a training step for a batch of BATCH")
    summary.add_argument("--plot", metavar="FILE",
                         help="also draw the block diagram (png, pdf or svg; an existing file is "
                              "not overwritten)")
    summary.set_defaults(run=cmd_summary)


def reading(args):
    """(plan, input side, the sentence saying which network it is)."""
    from ..arithmetic import dense_plan
    from ..vgg import vgg_plan
    dense = not args.rebuild and args.input > args.trained_at
    size = args.trained_at if dense else args.input
    try:
        plan = vgg_plan(args.config, num_classes=args.num_classes, input_size=size,
                        width=args.width, fc_width=args.fc_width)
    except ValueError as error:                 # name the option the size came from
        raise ValueError(f"--{'trained-at' if dense else 'input'} {size}: {error}") from None
    if not dense:
        return plan, f"built for {size}x{size}"
    pools = sum(kind == "pool" for _, kind, _ in plan)
    final = size // 2 ** pools
    side = args.input // 2 ** pools
    if args.input % 2 ** pools:
        raise ValueError(f"--input {args.input} is not a multiple of {2 ** pools}: its max-pools "
                         f"would drop pixels; use a multiple, or --rebuild")
    maps = side - final + 1
    return (dense_plan(plan, (final, final)),
            f"built for {size}x{size}, evaluated densely at {args.input}x{args.input} (fc6 a "
            f"{final}x{final} convolution, fc7 and fc8 1x1, a {maps}x{maps} class score map "
            f"averaged; --rebuild builds the network for {args.input} instead)")


def cmd_summary(args):
    from ..arithmetic import summarize, training_memory
    try:
        plan, which = reading(args)
        summary = summarize(plan, (3, args.input, args.input))
    except ValueError as error:
        raise CommandError(str(error)) from None
    except OverflowError:                   # NumPy's int64 counts: --fc-width 1e23...
        raise CommandError(f"--width {args.width:g}, --fc-width {args.fc_width} and "
                           f"--num-classes {args.num_classes}: the network's counts do not fit "
                           f"in 64-bit integers; give smaller sizes") from None
    if args.plot:
        plot(summary, args.plot, f"VGG {args.config}, {which}")
    conventions = dict(count=args.count, bias=args.bias, elementwise=args.elementwise)
    title = f"VGG {args.config}, {args.num_classes} classes, {which}"
    if args.compare:
        print(compare(args, summary))
    elif args.train_memory:
        print(title)
        print(memory_table(training_memory(summary, args.train_memory), args.units))
    elif args.format == "json":
        print(json.dumps({"config": args.config, "network": which,
                          **summary.to_dict(**conventions)}, indent=1))
    elif args.format == "csv":
        print(to_csv(summary.to_dict(**conventions)), end="")
    else:
        print(title)
        print(summary.table(**conventions, units=args.units))
    return 0


def plot(summary, path, title):
    import textwrap
    extension = new_figure("--plot", path)
    import matplotlib
    matplotlib.use("Agg")
    from ..viz import plot_architecture
    save_figure(plot_architecture(summary, title=textwrap.fill(title, 110)), path, extension,
                dpi=120)


def compare(args, summary):
    from ..published import compare_table
    if (args.config, args.input, args.width, args.fc_width, args.num_classes) != (
            "D", 224, 1.0, 4096, 1000):
        raise CommandError("--compare holds the published figures of VGG-16 (D) at 224 with "
                           "1000 classes; drop the other options")
    return compare_table(summary)


def to_csv(data):
    import csv
    import io
    columns = list(data["rows"][0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns + list(data["conventions"])[:3])
    conventions = [data["conventions"][k] for k in ("count", "bias", "elementwise")]
    for row in data["rows"]:
        writer.writerow([" ".join(map(str, v)) if isinstance(v, list) else v
                         for v in row.values()] + conventions)
    totals = data["totals"]
    total = dict(name="total", params=totals["params"], macs=totals["macs"], ops=totals["ops"],
                 activations=totals["all_outputs"], bytes=totals["distinct_bytes"])
    writer.writerow([total.get(c, "") for c in columns] + conventions)
    return out.getvalue()


def memory_table(memory, units):
    from ..arithmetic import format_bytes
    columns = ("params", "grads", "momentum", "kept", "scratch")
    lines = [f"training step, batch {memory.batch}: what is held (bytes)",
             f"{'layer':<10}" + "".join(f"{c:>12}" for c in columns)]
    for row in memory.rows:
        if any(row[c] for c in columns):
            lines.append(f"{row['name']:<10}"
                         + "".join(f"{format_bytes(row[c], units):>12}" for c in columns))
    lines += [f"{'total':<10}" + "".join(f"{format_bytes(memory.total(c), units):>12}"
                                         for c in columns),
              f"kept: what forward keeps for backward (im2col columns or Winograd tiles, ReLU "
              f"outputs, arg-max indices, dropout draws, FC inputs); scratch: the convolutions' "
              f"temporaries, in workspaces they share, so only the largest of each counts: "
              f"{format_bytes(memory.scratch_total, units)}",
              f"input batch {format_bytes(memory.input_bytes, units)}; the largest pair of "
              f"gradients alive at once {format_bytes(memory.transient, units)}",
              f"predicted peak: {format_bytes(memory.peak, units)}, plus the runtime (Python, "
              f"NumPy, Numba's compiled kernels, BLAS buffers: about 150 MB, measured in "
              f"benchmarks/bench_model.py)"]
    return "\n".join(lines)
