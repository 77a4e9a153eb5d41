"""Every published VGG-16 figure, reproduced from the convention it was computed with.

    minivgg summary D --compare          # the table below, computed
    rows = compare(summarize(vgg_plan("D"), (3, 224, 224)))

Tools print different numbers for the same network (15.47, 15.48, 15.52, 15.607 "G"; 108.45 MB
or 218.59 MB of "forward/backward pass"), and the difference is always what they count: a
multiply-accumulate as one operation or two, bias additions, ReLU and pooling, which layers'
outputs, bytes in powers of 1000 or 1024. Each row of ``PUBLISHED`` states one figure as its
source prints it and its convention as a weighted sum of *terms* of the network (``terms``),
so reproducing it is arithmetic on exact integers. Figures were checked against the tools
themselves (ptflops 0.7.5, thop 0.1.1, torchinfo 1.8.0, torchscan 0.2.0, torchsummary 1.5.1
run on torchvision's VGG-16 layout); where a figure cannot be reproduced exactly the row says
why in words.

torchvision's VGG-16 has a layer minivgg's does not: ``AdaptiveAvgPool2d((7, 7))`` between pool5
and the classifier, an identity at 224 that tools still count ("final_map": its 25,088 inputs).
"""

from dataclasses import dataclass

import numpy as np


def terms(summary):
    """The network's countable quantities, exact integers, from a Summary of VGG at its size."""
    t = dict.fromkeys(("conv_macs", "fc_macs", "conv_outputs", "fc_outputs", "fc_inputs",
                       "relu_outputs", "pool_inputs", "pool_outputs", "dropout_outputs",
                       "dropout_layers", "conv_params"), 0)
    shape = summary.input_shape
    for row in summary.rows:
        values, inputs = row.activations, int(np.prod(shape))
        if row.op in ("conv", "fc"):
            t[f"{row.op}_macs"] += row.macs
            t[f"{row.op}_outputs"] += values
        if row.op == "fc":
            t["fc_inputs"] += inputs
        if row.op == "conv":
            t["conv_params"] += row.params
        if row.op == "relu":
            t["relu_outputs"] += values
        if row.op == "pool":
            t["pool_inputs"] += inputs
            t["pool_outputs"] += values
            t["final_map"] = values                  # the last pool's output: pool5
        if row.op == "dropout":
            t["dropout_outputs"] += values
            t["dropout_layers"] += 1
        shape = row.output_shape
    t["macs"] = t["conv_macs"] + t["fc_macs"]
    t["params"] = summary.total_params
    t["input"] = int(np.prod(summary.input_shape))
    return t


@dataclass(frozen=True)
class Published:
    """One published figure: ``printed`` as the source prints it; ``formula`` {term: weight}
    sums to a count of operations or values, times ``bytes_per`` (4 for float32 memory, else 1)
    divided by ``divisor`` (1e9 for G, 1e6 for MB, 2**20 for MiB) with ``digits`` decimals
    must give ``printed``."""
    source: str
    printed: str
    counts: str                # the convention, in words
    formula: dict
    divisor: float = 1e9
    digits: int = 2
    residual: str = ""         # why it is not reproduced exactly, when it is not
    bytes_per: int = 1

    def value(self, t):
        """The exact integer: operations, values, or bytes when ``bytes_per`` is set."""
        return self.bytes_per * sum(weight * t[name] for name, weight in self.formula.items())

    def reproduce(self, t):
        return f"{self.value(t) / self.divisor:.{self.digits}f}"


FLOAT32 = 4                                      # bytes per value
OUTPUTS = {"conv_outputs": 1, "relu_outputs": 1, "pool_outputs": 1, "fc_outputs": 1,
           "dropout_outputs": 1}                  # every layer's output (no Flatten: a view)
MACS_AND_BIAS = {"macs": 1, "conv_outputs": 1, "fc_outputs": 1}
LISTED = {"input": 1, "conv_outputs": 1, "pool_outputs": 1, "fc_outputs": 1}

PUBLISHED = (
    Published("torchvision weights meta _ops", "15.47", "conv + FC multiply-accumulates, no bias "
              "(called GFLOPS)", {"macs": 1}),
    Published("torchinfo total mult-adds", "15.48", "MACs + one add per conv/FC output (bias)",
              MACS_AND_BIAS),
    Published("ptflops, aten backend", "15.48", "MACs + bias adds, as torchinfo",
              MACS_AND_BIAS),
    Published("ptflops, pytorch backend", "15.52", "MACs + bias + one op per ReLU output and per "
              "pooling input, each counted twice (the module hook and the patched functional "
              "it calls both count), incl. torchvision's avgpool",
              {**MACS_AND_BIAS, "relu_outputs": 2, "pool_inputs": 2, "final_map": 2}),
    Published("thop (older versions)", "15.607", "conv MACs + one bias add per output; FC as "
              "in_features multiplies + (in_features - 1) adds per output",
              {"macs": 1, "conv_outputs": 1, "fc_macs": 1, "fc_outputs": -1}, digits=3,
              residual="thop 0.1.1 prints 15,470,314,496 (MACs + 2 per avgpool output); the "
              "older formula is read off its source; its exact integer was not printed"),
    Published("torch-scan MACs", "15.47", "multiply-accumulates (GMACs)", {"macs": 1}),
    Published("torch-scan FLOPs", "30.96", "2 per MAC (bias included: 2k - 1 + 1), ReLU 1 per "
              "value, max-pool 3 per output, avgpool 2 per output, dropout 1 per value",
              {"macs": 2, "relu_outputs": 1, "pool_outputs": 3, "final_map": 2,
               "dropout_outputs": 1}),
    Published("torch-scan memory accesses", "15.52", "conv: window reads per MAC + params + "
              "outputs; FC: inputs + params + outputs; in-place ReLU: inputs; dropout: "
              "2 per value + 1; max-pool: 4 reads + 1 write per output; avgpool 2 per output",
              {"conv_macs": 1, "params": 1, "conv_outputs": 1, "fc_inputs": 1, "fc_outputs": 1,
               "relu_outputs": 1, "dropout_outputs": 2, "dropout_layers": 1, "pool_outputs": 5,
               "final_map": 2}),
    Published("google-research/receptive_field, to pool5", "30.713", "2 per conv MAC + bias "
              "adds + one op per pooling input (no FC)",
              {"conv_macs": 2, "conv_outputs": 1, "pool_inputs": 1}, digits=3),
    Published("papers: 30.94 (FLOPs)", "30.94", "2 per MAC, conv + FC", {"macs": 2}),
    Published("papers: 15.3 billion (MACs)", "15.3", "convolution MACs only", {"conv_macs": 1},
              digits=1),
    Published("CS231n notes, per-layer list", "15.2", "input + conv + pool + FC outputs "
              "(values, millions)", LISTED, divisor=1e6, digits=1,
              residual="the notes' total says 24M values x 4 bytes ~= 93 MB; their own list "
              "sums to 15.2M (61 MB); 24M x 4 B would be 96 MB (91.6 MiB)"),
    Published("torchinfo forward/backward pass size (MB)", "108.45", "2 x outputs of the layers "
              "with parameters x 4 B, in 10^6 bytes", {"conv_outputs": 2, "fc_outputs": 2},
              divisor=1e6, bytes_per=FLOAT32),
    Published("torchsummary forward/backward pass size (MB)", "218.59", "2 x every layer's "
              "output x 4 B, in MiB (torchvision's VGG-16 before its avgpool layer)",
              {name: 2 for name in OUTPUTS}, divisor=2 ** 20, bytes_per=FLOAT32,
              residual="today's torchvision layout adds AdaptiveAvgPool2d's 25,088 outputs: "
                        "torchsummary then prints 218.78"),
    Published("convnet-burden feature memory (MB)", "58", "input + conv + pool + FC outputs x "
              "4 B, in MiB (ReLU in place)", LISTED, divisor=2 ** 20, digits=0, bytes_per=FLOAT32),
    Published("convnet-burden / torchsummary params (MB)", "527.79", "parameters x 4 B, in MiB",
              {"params": 1}, divisor=2 ** 20, bytes_per=FLOAT32),
    Published("torchinfo params size (MB)", "553.43", "parameters x 4 B, in 10^6 bytes",
              {"params": 1}, divisor=1e6, bytes_per=FLOAT32),
)


def compare(summary):
    """[(Published, reproduced text, exact integer, matches)] for a Summary of VGG-16 at 224."""
    t = terms(summary)
    return [(p, p.reproduce(t), p.value(t), p.reproduce(t) == p.printed) for p in PUBLISHED]


def compare_table(summary):
    """The comparison as text, with minivgg's own figure for the same thing."""
    lines = [f"{'source':<46}{'printed':>9}{'reproduced':>12}  exact value / what it counts"]
    for p, text, value, matches in compare(summary):
        mark = "" if matches else "  (differs)"
        unit = " B" if p.bytes_per > 1 else ""
        lines.append(f"{p.source:<46}{p.printed:>9}{text:>12}  {value:,}{unit}{mark}")
        lines.append(f"{'':<6}{p.counts}")
        if p.residual:
            lines.append(f"{'':<6}note: {p.residual}")
    pool5 = summary["pool5"]
    padding = pool5.field[1] / 2 - pool5.start[1]
    lines.append(f"receptive_field also prints RF 212, effective stride 32, effective padding 90: "
                 f"minivgg's pool5 has field {pool5.field[1]}, jump {pool5.jump[1]}, padding "
                 f"field / 2 - start = {padding:g}")
    lines.append(f"minivgg: {summary.total_params:,} parameters, {summary.total_macs:,} MACs "
                 f"(conv + FC, no bias); --count flops doubles them, --bias and --elementwise "
                 f"add the rest")
    return "\n".join(lines)
